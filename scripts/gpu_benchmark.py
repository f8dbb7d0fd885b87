"""Estimates per second on the CPU and on CUDA for one representative cell per task family.

Run by scripts/gpu_check.sh; prints a Markdown table (the README's GPU section takes it as is).
"""

from __future__ import annotations

import os
import time

import torch

from rpbench.options import resolve_device
from rpbench.registry import get_estimator, get_task
from rpbench.timing import device_sync

CELLS = [  # task, task overrides, estimator, estimator overrides, K, n
    ("gaussian", {"dim": 100, "fn": "cos", "sigma": 1.0, "k": 1.0}, "pathwise", {}, 10_000, 1),
    ("gaussian", {"dim": 100, "fn": "cos", "sigma": 1.0, "k": 1.0}, "score+loo", {}, 10_000, 4),
    ("discrete-vae", {}, "gumbel", {"tau": 1.0}, 1000, 1),
    ("bernoulli-vae", {}, "disarm", {}, 1000, 2),
    ("vae", {}, "pathwise", {}, 1000, 1),
]


def rate(task_name: str, task_config: dict, name: str, config: dict, samples: int, batch: int, device: str) -> float:
    cls = get_task(task_name)
    task = cls({p.name: p.default_values[0] for p in cls.params} | task_config, resolve_device(device))
    estimator_cls = get_estimator(name)
    estimator = estimator_cls({p.name: p.default_values[0] for p in estimator_cls.params} | config)
    generator = torch.Generator(device=task.device).manual_seed(0)
    estimator.estimate(task, samples, batch, generator)  # warm-up
    device_sync(task.device)()
    start = time.perf_counter()
    for _ in range(3):
        estimator.estimate(task, samples, batch, generator)
    device_sync(task.device)()
    return 3 * samples / (time.perf_counter() - start)


def main() -> None:
    gpu = torch.cuda.get_device_name(0)
    print(f"torch {torch.__version__}, {gpu}, CPU threads {torch.get_num_threads()}, load {os.getloadavg()}")
    print("| task | estimator | K × n | CPU estimates/s | GPU estimates/s | GPU ÷ CPU |")
    print("|---|---|---|---|---|---|")
    for task_name, task_config, name, config, samples, batch in CELLS:
        cpu = rate(task_name, task_config, name, config, samples, batch, "cpu")
        cuda = rate(task_name, task_config, name, config, samples, batch, "cuda")
        print(f"| {task_name} | {name} | {samples} × {batch} | {cpu:,.0f} | {cuda:,.0f} | {cuda / cpu:.1f}× |")


if __name__ == "__main__":
    main()
