"""Throughput of the Bernoulli-VAE estimators (K = 200 estimates, n = 2) at the default configuration."""

from __future__ import annotations

import pytest
import torch

from rpbench.engine import flatten_groups
from rpbench.registry import get_estimator, get_task

K = 200
BATCH = 2


@pytest.fixture(scope="module")
def task():
    cls = get_task("bernoulli-vae")
    return cls({p.name: p.default_values[0] for p in cls.params}, torch.device("cpu"))


@pytest.mark.benchmark(group="bernoulli-vae K=200 n=2")
@pytest.mark.parametrize("name", ["score+loo", "disarm", "arm", "rebar", "gumbel-rao"])
def test_bernoulli_estimates(benchmark, task, name: str) -> None:
    cls = get_estimator(name)
    config = {p.name: p.default_values[0] for p in cls.params}
    config.update({"tune_steps": 0} if "tune_steps" in config else {})
    estimator = cls(config)
    estimator.prepare(task, BATCH, torch.Generator().manual_seed(1))

    def run():
        return estimator.estimate(task, K, BATCH, torch.Generator().manual_seed(0))

    estimates = flatten_groups(benchmark(run))
    assert estimates["encoder"].shape[0] == K and torch.isfinite(estimates["encoder"]).all()
