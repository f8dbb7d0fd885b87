"""Encoder-gradient variance of a tuned control variate (rebar, relax, lax) against its tuning steps.

``prepare`` with k tuning steps equals ``prepare`` with none followed by k ``adapt`` calls on the same
generator, so one tuning run measures every checkpoint.  One JSON row per checkpoint: the variance
with its 95 % CI over K estimates of n = 2 samples, the cumulative tuning seconds, λ and the range of
η.  Usage::

    PYTHONPATH=$PWD python scripts/tuning_curve.py bernoulli-vae rebar --minibatch 8 -K 300 --lr 1e-2 \\
        --checkpoints 0,50,200,500
"""

from __future__ import annotations

import argparse
import json
import time

import torch

import rpbench.estimators.rebar as rebar
from rpbench.engine import flatten_groups
from rpbench.metrics import summarize
from rpbench.registry import get_estimator, get_task, load_builtins


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task")
    parser.add_argument("estimator")
    parser.add_argument("--minibatch", type=int, default=8)
    parser.add_argument("-K", "--samples", type=int, default=300)
    parser.add_argument("--lr", type=float, default=rebar.TUNE_LR)
    parser.add_argument("--checkpoints", default="0,50,200,500,1000")
    args = parser.parse_args()
    load_builtins()
    rebar.TUNE_LR = args.lr
    task_cls = get_task(args.task)
    config = {p.name: p.default_values[0] for p in task_cls.params} | {"minibatch": args.minibatch}
    task = task_cls(config, torch.device("cpu"))
    cls = get_estimator(args.estimator)
    estimator = cls({p.name: p.default_values[0] for p in cls.params} | {"tune_steps": 0})
    generator = torch.Generator().manual_seed(1)
    estimator.prepare(task, 2, generator)
    tuning, done = 0.0, 0
    for checkpoint in (int(c) for c in args.checkpoints.split(",")):
        start = time.perf_counter()
        for _ in range(checkpoint - done):
            estimator.adapt(task, 2, generator)
        tuning, done = tuning + time.perf_counter() - start, checkpoint
        draws = flatten_groups(estimator.estimate(task, args.samples, 2, torch.Generator().manual_seed(7)))
        row = summarize(draws["encoder"], None, [1.0])
        cv = {k: v.detach() for k, v in estimator.cv.items()}  # type: ignore[attr-defined]
        extra = {}
        if "rho" in cv:
            eta = 2 * torch.sigmoid(cv["rho"])
            extra = {"lam": float(cv["log_lam"].exp()), "eta_min": float(eta.min()), "eta_max": float(eta.max())}
        out = {"task": args.task, "estimator": args.estimator, "lr": args.lr, "tune_steps": checkpoint}
        out |= {k: row[k] for k in ("variance", "variance_lo", "variance_hi")}
        print(json.dumps(out | {"tuning_seconds": round(tuning, 1)} | extra), flush=True)


if __name__ == "__main__":
    main()
