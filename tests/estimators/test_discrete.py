"""Every unbiased discrete-latent estimator against the exact (enumerated) gradient of small VAEs.

A conformance test across estimators; each family's own properties (and a deliberately wrong
variant that fails each check) are in its module's tests: test_arm.py, test_indecater.py,
test_muprop.py, test_nvil.py, test_rebar.py, test_relaxed.py, test_score.py (and test_straight_through.py for the
biased ST and ReinMax, whose exact bias it computes).  The VAEs run in float32 (their default) and
float64, each against the truth enumerated in its own precision (the slowest float64 cases, REBAR's and the categorical
RELAX, are marked slow).
"""

from __future__ import annotations

import functools

import pytest
import torch

from rpbench.engine import flatten_groups
from rpbench.metrics import SIGNIFICANT_LEVEL, summarize
from rpbench.registry import ESTIMATORS, load_builtins
from rpbench.tasks.base import Task
from rpbench.truth import truth_of
from tests.conftest import bernoulli, categorical, estimates, vae

load_builtins()
FAST = {"rebar": {"tune_steps": 20}, "relax": {"tune_steps": 20}}


def strict(task: Task, name: str, samples: int = 3000, batch: int = 2, **config: object) -> dict[str, dict]:
    """Per group: metrics at the 4-SE level against the enumerated truth."""
    truth = truth_of(task)
    assert truth is not None and truth.kind == "enumeration"
    draws = flatten_groups(estimates(task, name, samples, batch=batch, **(FAST.get(name, {}) | config)))
    return {g: summarize(v, truth.gradient[g], [1.0], level=SIGNIFICANT_LEVEL) for g, v in draws.items()}


def applicable(task: Task, batch: int = 2) -> list[str]:
    return sorted(n for n, cls in ESTIMATORS.items() if not cls.biased and cls.why_not(task, batch) is None)


def test_the_expected_estimators_apply() -> None:
    assert applicable(categorical()) == [
        "indecater",
        "muprop",
        "nvil",
        "rebar",
        "relax",
        "score",
        "score+loo",
        "score+ma",
        "score+opt",
    ]
    assert applicable(bernoulli()) == [
        "arm",
        "disarm",
        "indecater",
        "muprop",
        "nvil",
        "rebar",
        "relax",
        "score",
        "score+loo",
        "score+ma",
        "score+opt",
    ]


def in_both_precisions(task: Task, slow: frozenset[str] = frozenset()) -> list:
    """(estimator, dtype) cases: every applicable unbiased estimator in float32 and in float64."""
    return [
        pytest.param(name, dtype, marks=[pytest.mark.slow] if dtype == "float64" and name in slow else [])
        for dtype in ("float32", "float64")
        for name in applicable(task)
    ]


@pytest.mark.parametrize(("name", "dtype"), in_both_precisions(categorical(), slow=frozenset({"rebar", "relax"})))
def test_unbiased_on_an_enumerable_categorical_vae(name: str, dtype: str) -> None:
    task = categorical(dtype)
    truth = truth_of(task)
    assert truth is not None and truth.gradient["encoder"].dtype == task.dtype  # enumerated in its precision
    for group, row in strict(task, name).items():
        assert row["bias_lo"] == 0.0, (name, group, row["bias"], row["bias_lo"])  # zero inside the 4-SE ball


@pytest.mark.parametrize(("name", "dtype"), in_both_precisions(bernoulli(), slow=frozenset({"rebar"})))
def test_unbiased_on_an_enumerable_bernoulli_vae(name: str, dtype: str) -> None:
    task = bernoulli(dtype)
    assert task.dtype == getattr(torch, dtype)
    for group, row in strict(task, name).items():
        assert row["bias_lo"] == 0.0, (name, group, row["bias"], row["bias_lo"])


def test_estimators_are_labelled_biased_or_not() -> None:
    biased = {name for name, cls in ESTIMATORS.items() if cls.biased}
    assert biased == {"gumbel", "st-gumbel", "gumbel-rao", "st", "reinmax"}


@functools.cache
def bound(name: str, dtype: str = "float32") -> Task:
    """The M = 3 importance-weighted bound of a small categorical or Bernoulli VAE (enumerable)."""
    config = {"latents": 2, "categories": 3} if name == "discrete-vae" else {"latents": 3}
    return vae(name, minibatch=2, particles=3, dtype=dtype, **config)


def test_on_the_bound_every_estimator_of_the_elbo_still_applies_and_vimco_joins() -> None:
    """The M particles are M·L independent latents of one sample: nothing is refused, VIMCO is added."""
    assert applicable(bound("discrete-vae")) == sorted([*applicable(categorical()), "vimco"])
    assert applicable(bound("bernoulli-vae")) == sorted([*applicable(bernoulli()), "vimco"])


@pytest.mark.parametrize(
    ("task_name", "name", "dtype"),
    [
        pytest.param(t, n, d, marks=[pytest.mark.slow] if d == "float64" and n in {"rebar", "relax"} else [])
        for t in ("discrete-vae", "bernoulli-vae")
        for d in ("float32", "float64")
        for n in applicable(bound(t))
    ],
)
def test_unbiased_on_the_enumerated_importance_weighted_bound(task_name: str, name: str, dtype: str) -> None:
    task = bound(task_name, dtype)
    for group, row in strict(task, name).items():
        assert row["bias_lo"] == 0.0, (name, group, row["bias"], row["bias_lo"])


@pytest.mark.parametrize("name", ["gumbel", "st-gumbel"])
def test_the_relaxed_bound_is_biased(name: str) -> None:
    """The relaxation of the bound (relaxed one-hots in p(x|z), p(z) and q(z)) is biased, as the ELBO's is."""
    assert max(row["bias_lo"] for row in strict(bound("discrete-vae"), name).values()) > 0.0
