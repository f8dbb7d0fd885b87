"""MuProp (rpbench.estimators.muprop) against the enumerated gradient of small VAEs.

``ĝ = [f(b) − h(b)] ∇log q(b) + ∇f(μ̄)ᵀ∇θ μ̄ + ∇θ f(b)`` with ``h`` the first-order Taylor expansion of
f at the mean-field point ``μ̄ = E_q[b]`` (Gu, Levine, Sutskever & Mnih 2016): unbiased, and biased
without its analytic term ``∇f(μ̄)ᵀ∇θ μ̄``.
"""

from __future__ import annotations

import pytest
import torch

from rpbench.engine import flatten_groups
from rpbench.estimators.base import tree_map
from rpbench.estimators.muprop import MeanFieldExpansion, MuProp
from rpbench.metrics import summarize
from tests.conftest import assert_one_estimate_is_lane_zero, bernoulli, bias_lo, categorical, estimates, vae


class MuPropWithoutCorrection(MuProp):
    """Deliberately wrong: the control variate subtracted, its analytic gradient not added back."""

    correction = False


@pytest.mark.parametrize("make", [categorical, bernoulli])
def test_unbiased_and_a_variant_without_the_correction_is_not(make) -> None:
    """float32 here; tests/estimators/test_discrete.py checks both precisions against their own truth."""
    task = make()
    assert bias_lo(task, MuProp()) == {"encoder": 0.0, "decoder": 0.0}
    wrong = bias_lo(task, MuPropWithoutCorrection(), samples=1000)
    assert wrong["encoder"] > 0.0
    assert wrong["decoder"] == 0.0  # the control variate never touches the decoder's gradient


@pytest.mark.parametrize("make", [categorical, bernoulli])
def test_the_expansion_is_first_order_taylor_at_the_mean(make) -> None:
    task = make("float64")
    expansion = MeanFieldExpansion(task)
    theta = tree_map(torch.detach, task.theta)
    center = task.latent.soft(task.logits(theta), 1.0)
    torch.testing.assert_close(expansion.center, center)
    torch.testing.assert_close(expansion(center), task.objective(theta, center))  # h(μ̄) = f(μ̄)
    direction = torch.randn(center.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    gaps = [
        (expansion(center + e * direction) - task.objective(theta, center + e * direction)).abs().max()
        for e in (1e-2, 5e-3)
    ]
    assert 3.0 < gaps[0] / gaps[1] < 5.0  # the error of a first-order expansion falls as ε²
    # and the check can fail: without the slope the error falls only as ε
    flat = [(expansion.value - task.objective(theta, center + e * direction)).abs().max() for e in (1e-2, 5e-3)]
    assert 1.5 < flat[0] / flat[1] < 2.5


def test_each_units_slope_is_its_own() -> None:
    """``∂f_u/∂b_u`` at μ̄ from one backward of Σ_u f_u: the slope of unit 0 is that of f_0 alone."""
    task = categorical("float64")
    expansion = MeanFieldExpansion(task)
    theta = tree_map(torch.detach, task.theta)
    center = expansion.center.clone().requires_grad_(True)
    (alone,) = torch.autograd.grad(task.objective(theta, center)[0], center)
    torch.testing.assert_close(expansion.slope[0], alone[0])
    assert torch.count_nonzero(alone[1:]) == 0


def test_variance_is_below_the_score_functions() -> None:
    task = bernoulli()
    muprop = summarize(flatten_groups(estimates(task, "muprop", 2000, batch=2))["encoder"], None, [1.0])
    score = summarize(flatten_groups(estimates(task, "score", 2000, batch=2))["encoder"], None, [1.0])
    assert muprop["variance_hi"] < score["variance_lo"]


def test_declares_what_it_needs_and_costs() -> None:
    assert MuProp.needs == frozenset({"relaxable", "log-prob"}) and not MuProp.biased
    assert MuProp().evaluations(categorical(), 5) == 6  # the mean-field pass once per estimate
    assert MuProp.cost == "n + 1"
    assert MuProp.why_not(categorical(), 1) is None and MuProp.why_not(bernoulli(), 1) is None
    assert "relaxable" in (MuProp.why_not(vae("vae", latents=2), 1) or "")


@pytest.mark.parametrize("make", [categorical, bernoulli])
def test_a_single_estimate_is_the_batched_ones_first(make) -> None:
    """One estimate (a training step: plain autograd, no vmap) equals lane 0 of K = 2 on the same noise."""
    task, estimator = make("float64"), MuProp()
    assert_one_estimate_is_lane_zero(task, estimator)
