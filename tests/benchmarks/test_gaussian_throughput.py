"""Throughput of the batched engine on the Gaussian toy (estimates per second).

``make bench`` runs these with timing and saves JSON; ``make test`` runs each once with
``--benchmark-disable`` (a smoke test that the benchmarked code works).  The per-estimate loop
is the baseline the batched ``vmap`` engine is compared with.
"""

from __future__ import annotations

import pytest
import torch

from rpbench.estimators.pathwise import pathwise_surrogate
from rpbench.registry import get_estimator, get_task

K = 1000
CPU = torch.device("cpu")


def task(dim: int = 100):
    return get_task("gaussian")({"dim": dim, "mu": 1.0, "sigma": 1.0, "fn": "cos", "k": 1.0}, CPU)


@pytest.mark.parametrize("name", ["pathwise", "score", "score+opt", "score+ma", "pathwise+delta", "mvd"])
def test_batched_estimates(benchmark, name: str) -> None:
    the_task = task(dim=100 if name != "mvd" else 10)
    cls = get_estimator(name)
    estimator = cls({p.name: p.default_values[0] for p in cls.params})

    def run() -> dict[str, torch.Tensor]:
        return estimator.estimate(the_task, K, 1, torch.Generator().manual_seed(0))

    result = benchmark(run)
    assert result["mu"].shape[0] == K


def test_per_estimate_loop_baseline(benchmark) -> None:
    the_task = task()
    noise = the_task.noise(torch.Generator().manual_seed(0), (K, 1))

    def run() -> list[torch.Tensor]:
        grads = []
        for k in range(K):
            theta = {name: value.clone().requires_grad_(True) for name, value in the_task.theta.items()}
            pathwise_surrogate(the_task, theta, noise[k]).backward()
            grads.append(theta["mu"].grad)
        return grads

    assert len(benchmark(run)) == K
