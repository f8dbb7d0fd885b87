"""Shared helpers: draw a cell's estimates directly, without the CLI."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from rpbench.columns import result_columns
from rpbench.engine import cell_seed, estimate_all
from rpbench.estimators.base import Estimator
from rpbench.metrics import SIGNIFICANT_LEVEL, summarize
from rpbench.registry import get_estimator, get_task
from rpbench.tasks.base import Task, Theta
from rpbench.truth import truth_of
from rpbench.truth_cache import CACHE_ENV

CPU = torch.device("cpu")


@pytest.fixture(autouse=True, scope="session")
def session_reference_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The reference cache of the session's module-scoped fixtures (set up before any test's): a
    temporary folder, never the user's ``~/.cache/rpbench``."""
    with pytest.MonkeyPatch.context() as patch:
        folder = tmp_path_factory.mktemp("reference-cache")
        patch.setenv(CACHE_ENV, str(folder))
        yield folder


@pytest.fixture(autouse=True)
def reference_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's own, empty reference cache (``$RPBENCH_CACHE_DIR``), so no test sees another's."""
    folder = tmp_path_factory.mktemp("reference-cache")
    monkeypatch.setenv(CACHE_ENV, str(folder))
    return folder


def gaussian(**config: object) -> Task:
    """A Gaussian task configuration (defaults D=1, μ=1, σ=1, quadratic, k=0.5, float64)."""
    full = {"dim": 1, "mu": 1.0, "sigma": 1.0, "fn": "quadratic", "k": 0.5, "dtype": "float64", **config}
    return get_task("gaussian")(full, CPU)


def estimates(task: Task, estimator: str, samples: int, batch: int = 1, seed: int = 0, **config: object) -> Theta:
    """``samples`` estimates of ``estimator`` (defaults for unset parameters) on ``task``."""
    cls = get_estimator(estimator)
    full = {p.name: p.default_values[0] for p in cls.params} | config
    seed = cell_seed(seed, task.name, task.config, cls.name, full, samples, batch)
    return estimate_all(task, cls(full), samples, batch, seed)


DTYPES = ("float64", "float32")
"""The precisions of the Gaussian toy (its default first), for tests that hold in both."""

ROUND_OFF_EPS = 64
"""Round-off a mean may carry, in machine epsilons of the estimates' precision, relative to
``1 + |exact|``: the zero-variance estimators of these tests (delta-method control variates on
a quadratic) measure at most about 3 ε in either precision."""


def round_off(dtype: torch.dtype, exact: torch.Tensor) -> torch.Tensor:
    """The round-off term ``c · eps(dtype) · (1 + |exact|)`` per coordinate (``c`` = :data:`ROUND_OFF_EPS`), float64."""
    return ROUND_OFF_EPS * torch.finfo(dtype).eps * (1.0 + exact.reshape(-1).to(torch.float64).abs())


def max_z_score(values: torch.Tensor, exact: torch.Tensor) -> float:
    """Largest |mean − exact| / SE over coordinates (SE from the K estimates), computed in float64.

    The SE is floored at the round-off of the estimates' precision (:func:`round_off`) so that a
    zero-variance estimator that is exact up to rounding passes, in float32 as in float64, while
    any real bias still fails.
    """
    k = values.shape[0]
    truth = exact.reshape(-1).to(torch.float64)
    wide = values.to(torch.float64)
    se = torch.maximum(wide.std(0) / math.sqrt(k), round_off(values.dtype, truth))
    return float(((wide.mean(0) - truth).abs() / se).max())


@pytest.fixture(autouse=True)
def quick_timing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Single-pass timed values in tests (``--min-time`` 0 unless a test passes it): a calibrated
    0.05 s per value would make every cell of the suite cost most of a second.  The timing's own
    tests (tests/test_timing.py) pass ``min_time`` themselves."""
    monkeypatch.setattr("rpbench.timing.DEFAULT_MIN_TIME", 0.0)


@pytest.fixture
def cpu() -> torch.device:
    return CPU


@functools.cache
def categorical(dtype: str = "float32") -> Task:
    """The 2 × 3 categorical VAE the discrete estimators' tests share (enumerable: exact truth)."""
    return vae("discrete-vae", latents=2, categories=3, dtype=dtype)


@functools.cache
def bernoulli(dtype: str = "float32") -> Task:
    """The 6-latent Bernoulli VAE the discrete estimators' tests share (enumerable: exact truth)."""
    return vae("bernoulli-vae", latents=6, dtype=dtype)


def bias_lo(task: Task, estimator: Estimator, samples: int = 3000, batch: int = 2, seed: int = 3) -> dict[str, float]:
    """Per group, the lower end of the 4-SE bias interval against the enumerated truth (0: unbiased)."""
    truth = truth_of(task)
    assert truth is not None and truth.kind == "enumeration"
    draws = estimate_all(task, estimator, samples, batch, seed)
    return {
        group: summarize(values, truth.gradient[group], [1.0], level=SIGNIFICANT_LEVEL)["bias_lo"]
        for group, values in draws.items()
    }


def vae(name: str, **config: object) -> Task:
    """A small VAE task (defaults shrunk for speed: minibatch 4, hidden 16) with overrides."""
    cls = get_task(name)
    full = {p.name: p.default_values[0] for p in cls.params} | {"minibatch": 4, "hidden": 16} | config
    return cls(full, CPU)


TIMING = [column.name for column in result_columns([], []) if column.role == "timing"]
"""Columns that depend on the machine's speed: left out when runs are compared for equality."""


def exit_code(args: list[str]) -> int:
    """``rpbench ARGS`` in-process; its exit code."""
    from rpbench.cli import main

    try:
        main(args)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def assert_one_estimate_is_lane_zero(task: Task, estimator: Estimator) -> None:
    """One estimate (a training step: plain autograd, no vmap) equals lane 0 of K = 2 on the same noise,
    and another seed gives another estimate."""
    from rpbench.engine import flatten_groups

    one = flatten_groups(estimator.estimate(task, 1, 3, torch.Generator().manual_seed(4)))
    two = flatten_groups(estimator.estimate(task, 2, 3, torch.Generator().manual_seed(4)))
    for group in one:
        torch.testing.assert_close(one[group][0], two[group][0], rtol=1e-9, atol=1e-12)
    other = flatten_groups(estimator.estimate(task, 1, 3, torch.Generator().manual_seed(5)))
    assert not torch.allclose(one["encoder"], other["encoder"])
