"""Simulated coverage of rpbench's mean/bias interval on real cells (the README's second coverage table).

Each replication is one cell drawn and reduced exactly as ``rpbench run`` does (``plan`` →
``draw_estimates`` → ``summarize``), with its own seed, on the gaussian task at μ = 0.7, σ = 1.3,
k = 0.5 (one coordinate) for pathwise, score and MVD on every test function (pathwise on the step
is biased and left out).  A replication covers when ``mean_lo ≤ exact ≤ mean_hi`` (for an exact
truth the same as the bias interval holding 0).  Beside it: the normal interval ``mean ± z·SE``
that rpbench used before, and how often ``bias_debiased_lo`` is 0 (the debiased bias of these
unbiased estimators is consistent with zero; nominal ≥ 97.5 %, the interval being equal-tailed).

With a third argument D > 1 the task has D coordinates and the table is the coverage of the
confidence ball (``bias_lo`` = 0, i.e. ‖mean − exact‖ ≤ r), beside the χ² ball it widens.

Usage: .venv/bin/python scripts/mean_ci_coverage.py [replications] [K,K,...] [D]
"""

from __future__ import annotations

import math
import sys
from statistics import NormalDist

import numpy as np
import torch

from rpbench.engine import draw_estimates
from rpbench.metrics import _ball_radius, summarize
from rpbench.runner import parse_estimators, plan

SETTINGS = {"mu": ["0.7"], "sigma": ["1.3"], "k": ["0.5"], "fn": ["quadratic", "cos", "expquad", "step"]}


def main() -> None:
    replications = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    budgets = [int(k) for k in sys.argv[2].split(",")] if len(sys.argv) > 2 else [200, 1000]
    dim = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    z = NormalDist().inv_cdf(0.975)
    settings = {**SETTINGS, "dim": [str(dim)]}
    cells = plan("gaussian", settings, parse_estimators(["pathwise,score,mvd"]), 1, torch.device("cpu")).cells
    cells = [c for c in cells if not (c.task.config["fn"] == "step" and c.estimator.name == "pathwise")]
    found: dict[tuple[str, str, str], dict[str, float]] = {}
    for k in budgets:
        for index, cell in enumerate(cells):
            exact = cell.task.exact_gradient()
            hits: dict[str, list[float]] = {}
            for r in range(replications):
                seed = 1_000_003 * k + 10_007 * index + r
                draw = draw_estimates(cell.task, cell.estimator, k, 1, seed, repeats=0, exact=exact)
                for group, moments in draw.moments.items():
                    row = summarize(moments, exact[group], [1.0])
                    got = hits.setdefault(group, [])
                    if dim == 1:
                        truth = float(exact[group].reshape(()))
                        half = z * math.sqrt(float(moments.column_var[0]) / k)
                        got.append(row["mean_lo"] <= truth <= row["mean_hi"])
                        before = abs(float(moments.mean[0]) - truth) <= half
                    else:  # the ball holds the truth
                        got.append(row["bias_lo"] == 0.0)
                        distance = float((moments.mean - exact[group].to(torch.float64)).norm())
                        before = distance <= _ball_radius(moments, 0.95, robust=False)
                    hits.setdefault(f"{group}:normal", []).append(before)
                    hits.setdefault(f"{group}:debiased", []).append(row["bias_debiased_lo"] == 0.0)
                    hits.setdefault(f"{group}:kurtosis", []).append(row["kurtosis"])
            for group in exact:
                key = (str(cell.task.config["fn"]), cell.estimator.name, group)
                out = found.setdefault(key, {})
                out[f"ours {k}"] = float(np.mean(hits[group]))
                out[f"normal {k}"] = float(np.mean(hits[f"{group}:normal"]))
                out[f"debiased {k}"] = float(np.mean(hits[f"{group}:debiased"]))
                out[f"kurtosis {k}"] = float(np.median(hits[f"{group}:kurtosis"]))
            print(f"K={k} {cell.task.config['fn']} {cell.estimator.name} done", file=sys.stderr, flush=True)
    k0 = budgets[0]
    head = " | ".join(f"K = {k}" for k in budgets)
    before = "normal" if dim == 1 else "chi-square ball"
    print(
        f"| fn, estimator, group (D = {dim}) | median kurtosis, K = {k0} | {head} "
        f"| {before}, {head.replace(' | ', ', ')} "
        f"| bias_debiased_lo = 0, K = {k0} |  ({replications} replications)"
    )
    print("|---|---|" + "---|" * len(budgets) + "---|---|")
    for (fn, name, group), out in found.items():
        ours = " | ".join(f"{out[f'ours {k}']:.0%}" for k in budgets)
        normal = ", ".join(f"{out[f'normal {k}']:.0%}" for k in budgets)
        print(
            f"| {fn}, {name}, {group} | {out[f'kurtosis {k0}']:.0f} | {ours} | {normal} | {out[f'debiased {k0}']:.0%} |"
        )


if __name__ == "__main__":
    main()
