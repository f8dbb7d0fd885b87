"""Shared helpers: draw a cell's estimates directly, without the CLI."""

from __future__ import annotations

import math

import pytest
import torch

from rpbench.engine import cell_seed, estimate_all
from rpbench.registry import get_estimator, get_task
from rpbench.tasks.base import Task, Theta

CPU = torch.device("cpu")


def gaussian(**config: object) -> Task:
    """A Gaussian task configuration (defaults D=1, μ=1, σ=1, quadratic, k=0.5)."""
    full = {"dim": 1, "mu": 1.0, "sigma": 1.0, "fn": "quadratic", "k": 0.5, **config}
    return get_task("gaussian")(full, CPU)


def estimates(task: Task, estimator: str, samples: int, batch: int = 1, seed: int = 0, **config: object) -> Theta:
    """``samples`` estimates of ``estimator`` (defaults for unset parameters) on ``task``."""
    cls = get_estimator(estimator)
    full = {p.name: p.default_values[0] for p in cls.params} | config
    seed = cell_seed(seed, task.name, task.config, cls.name, full, samples, batch)
    return estimate_all(task, cls(full), samples, batch, seed)


def max_z_score(values: torch.Tensor, exact: torch.Tensor) -> float:
    """Largest |mean − exact| / SE over coordinates (SE from the K estimates).

    The SE is floored at float64 round-off (1e-12 relative) so that a zero-variance estimator
    that is exact up to rounding passes, while any real bias still fails.
    """
    k = values.shape[0]
    truth = exact.reshape(-1)
    se = torch.maximum(values.std(0) / math.sqrt(k), 1e-12 * (1.0 + truth.abs()))
    return float(((values.mean(0) - truth).abs() / se).max())


@pytest.fixture
def cpu() -> torch.device:
    return CPU


def vae(name: str, **config: object) -> Task:
    """A small VAE task (defaults shrunk for speed: minibatch 4, hidden 16) with overrides."""
    cls = get_task(name)
    full = {p.name: p.default_values[0] for p in cls.params} | {"minibatch": 4, "hidden": 16} | config
    return cls(full, CPU)


TIMING = [
    "setup_seconds",
    "sec_per_estimate",
    "sec_per_estimate_lo",
    "sec_per_estimate_hi",
    "work_variance",
    "work_variance_lo",
    "work_variance_hi",
]
"""Columns that depend on the machine's speed: left out when runs are compared for equality."""


def exit_code(args: list[str]) -> int:
    """``rpbench ARGS`` in-process; its exit code."""
    from rpbench.cli import main

    try:
        main(args)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0
