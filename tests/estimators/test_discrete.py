"""Discrete-latent estimators against the exact (enumerated) gradient of small VAEs."""

from __future__ import annotations

import functools
import itertools

import pytest
import torch

from rpbench.engine import flatten_groups
from rpbench.metrics import SIGNIFICANT_LEVEL, summarize
from rpbench.registry import ESTIMATORS, load_builtins
from rpbench.tasks.base import Task
from rpbench.truth import truth_of
from tests.conftest import estimates, vae

load_builtins()
FAST = {"rebar": {"tune_steps": 20}, "relax": {"tune_steps": 20}}


@functools.cache
def categorical() -> Task:
    return vae("discrete-vae", latents=2, categories=3)


@functools.cache
def bernoulli() -> Task:
    return vae("bernoulli-vae", latents=6)


def strict(task: Task, name: str, samples: int = 3000, batch: int = 2, **config: object) -> dict[str, dict]:
    """Per group: metrics at the 4-SE level against the enumerated truth."""
    truth = truth_of(task)
    assert truth is not None and truth.kind == "enumeration"
    draws = flatten_groups(estimates(task, name, samples, batch=batch, **(FAST.get(name, {}) | config)))
    return {g: summarize(v, truth.gradient[g], [1.0], level=SIGNIFICANT_LEVEL) for g, v in draws.items()}


def applicable(task: Task, batch: int = 2) -> list[str]:
    return sorted(n for n, cls in ESTIMATORS.items() if not cls.biased and cls.why_not(task, batch) is None)


def test_the_expected_estimators_apply() -> None:
    assert applicable(categorical()) == ["rebar", "relax", "score", "score+loo", "score+ma", "score+opt"]
    assert applicable(bernoulli()) == ["arm", "disarm", "rebar", "relax", "score", "score+loo", "score+ma", "score+opt"]


@pytest.mark.parametrize("name", applicable(categorical()))
def test_unbiased_on_an_enumerable_categorical_vae(name: str) -> None:
    for group, row in strict(categorical(), name).items():
        assert row["bias_lo"] == 0.0, (name, group, row["bias"], row["bias_lo"])  # zero inside the 4-SE ball


@pytest.mark.parametrize("name", applicable(bernoulli()))
def test_unbiased_on_an_enumerable_bernoulli_vae(name: str) -> None:
    for group, row in strict(bernoulli(), name).items():
        assert row["bias_lo"] == 0.0, (name, group, row["bias"], row["bias_lo"])


@pytest.mark.parametrize(("task", "name"), [(categorical, "gumbel"), (categorical, "st-gumbel"), (bernoulli, "gumbel")])
def test_relaxed_estimators_fail_the_same_check(task, name: str) -> None:
    assert strict(task(), name)["encoder"]["bias_lo"] > 0.0


def test_gumbel_softmax_bias_falls_and_variance_grows_as_tau_falls() -> None:
    task = categorical()
    truth = truth_of(task)
    rows = []
    for tau in (2.0, 1.0, 0.5):
        values = flatten_groups(estimates(task, "gumbel", 4000, tau=tau))["encoder"]
        rows.append(summarize(values, truth.gradient["encoder"], [1.0]))
    for hotter, colder in itertools.pairwise(rows):
        assert colder["bias_hi"] < hotter["bias_lo"]  # less biased, beyond the CIs
        assert colder["variance_lo"] > hotter["variance_hi"]  # more variable, beyond the CIs
    assert rows[-1]["bias_lo"] > 0  # still biased at τ = 0.5


@pytest.mark.parametrize("task", [categorical, bernoulli])
def test_gumbel_rao_has_the_expectation_of_straight_through_and_less_variance(task) -> None:
    the_task = task()
    st = flatten_groups(estimates(the_task, "st-gumbel", 4000, tau=0.5))["encoder"]
    gr = flatten_groups(estimates(the_task, "gumbel-rao", 4000, tau=0.5, m=10))["encoder"]
    # ST's mean against GR's mean, with GR's standard error carried as that of a reference.
    se = gr.std(0) / gr.shape[0] ** 0.5
    same = summarize(st, gr.mean(0), [1.0], level=SIGNIFICANT_LEVEL, exact_se=se)
    assert same["bias_lo"] == 0.0
    st_row, gr_row = summarize(st, None, [1.0]), summarize(gr, None, [1.0])
    assert gr_row["variance_hi"] < st_row["variance_lo"]
    # and the check can fail: against the exact gradient, ST's mean differs (it is biased)
    exact = truth_of(the_task).gradient["encoder"]
    assert summarize(st, exact, [1.0], level=SIGNIFICANT_LEVEL)["bias_lo"] > 0.0


def test_disarm_variance_is_below_arm() -> None:
    task = bernoulli()
    arm = summarize(flatten_groups(estimates(task, "arm", 4000))["encoder"], None, [1.0])
    disarm = summarize(flatten_groups(estimates(task, "disarm", 4000))["encoder"], None, [1.0])
    assert disarm["variance_hi"] < arm["variance_lo"]


def test_rebar_needs_prepare_and_tuning_keeps_variance_low() -> None:
    task = categorical()
    cls = ESTIMATORS["rebar"]
    estimator = cls({"eta": 1.0, "lam": 0.5, "tune_steps": 0})
    with pytest.raises(RuntimeError, match="prepare"):
        estimator.estimate(task, 10, 1, torch.Generator().manual_seed(0))
    untuned = summarize(flatten_groups(estimates(task, "rebar", 2000, tune_steps=0))["encoder"], None, [1.0])
    tuned = summarize(flatten_groups(estimates(task, "rebar", 2000, tune_steps=30))["encoder"], None, [1.0])
    score = summarize(flatten_groups(estimates(task, "score", 2000, batch=1))["encoder"], None, [1.0])
    assert tuned["variance"] < 2 * untuned["variance"]
    assert tuned["variance_hi"] < score["variance_lo"]  # far below REINFORCE without a baseline


def test_estimators_are_labelled_biased_or_not() -> None:
    biased = {name for name, cls in ESTIMATORS.items() if cls.biased}
    assert biased == {"gumbel", "st-gumbel", "gumbel-rao"}
