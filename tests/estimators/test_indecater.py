"""IndeCateR (rpbench.estimators.indecater) against the enumerated gradient of small VAEs.

``ĝ = Σ_l Σ_c ∇θ q_l(c) f(b_{−l}, b_l = c) + ∇θ f(b)`` (De Smet, Sansone & Zuidberg Dos Martires 2023):
unbiased; biased when the weights of variable l meet the variants of another variable, or when the
weights are not differentiated; its variance is below the plain score function's.
"""

from __future__ import annotations

from typing import cast

import pytest
import torch

from rpbench.engine import flatten_groups
from rpbench.estimators.base import Estimator, amortizer, per_estimate_gradients, tree_map
from rpbench.estimators.indecater import IndeCateR, substituted, value_probabilities
from rpbench.metrics import summarize
from rpbench.tasks.base import Task, Theta
from rpbench.tasks.protocols import RelaxableLatent
from tests.conftest import assert_one_estimate_is_lane_zero, bernoulli, bias_lo, categorical, estimates, vae


class ShiftedIndeCateR(IndeCateR):
    """Deliberately wrong: the weights ``q_l(c)`` paired with the variants of variable l + 1."""

    shift = 1


class FixedWeightIndeCateR(IndeCateR):
    """Deliberately wrong: the weights ``q_l(c)`` not differentiated (only ``∇θ f(b)`` remains)."""

    def estimate(self, task: Task, samples: int, batch: int, generator: torch.Generator) -> Theta:
        relaxable = cast(RelaxableLatent, task)

        def surrogate(theta: Theta, noise: torch.Tensor) -> torch.Tensor:
            hard = relaxable.latent.hard(relaxable.perturb(theta, noise)).detach()
            fixed = tree_map(torch.detach, theta)
            variants = task.objective(fixed, substituted(hard, relaxable.event_dims))
            weights = value_probabilities(relaxable, relaxable.logits(theta)).detach()
            return (task.objective(theta, hard) + torch.einsum("ulc,nlcu->nu", weights, variants)).mean()

        noise = task.noise(generator, (samples, batch))
        return per_estimate_gradients(surrogate, task.theta, noise, amortize=amortizer(task))


@pytest.mark.parametrize("make", [categorical, bernoulli])
def test_unbiased_and_wrong_variants_are_not(make) -> None:
    """float32 here; tests/estimators/test_discrete.py checks both precisions against their own truth."""
    task = make()
    assert bias_lo(task, IndeCateR()) == {"encoder": 0.0, "decoder": 0.0}
    wrong: Estimator
    for wrong in (ShiftedIndeCateR(), FixedWeightIndeCateR()):
        assert bias_lo(task, wrong, samples=1000)["encoder"] > 0.0, type(wrong).__name__


@pytest.mark.parametrize("make", [categorical, bernoulli])
def test_variance_is_below_the_score_functions(make) -> None:
    task = make()
    indecater = summarize(flatten_groups(estimates(task, "indecater", 2000, batch=2))["encoder"], None, [1.0])
    score = summarize(flatten_groups(estimates(task, "score", 2000, batch=2))["encoder"], None, [1.0])
    assert indecater["variance_hi"] < score["variance_lo"]


@pytest.mark.parametrize("make", [categorical, bernoulli])
def test_each_variant_changes_one_variable_to_each_value(make) -> None:
    task = make("float64")
    hard = task.sample(task.theta, task.noise(torch.Generator().manual_seed(0), (3,)))  # (n, U, L[, C])
    variants = substituted(hard, task.event_dims)
    variables = task.latent_shape[1]
    values = task.latent_shape[2] if task.event_dims == 2 else 2
    assert variants.shape == (3, variables, values, *task.latent_shape)
    for var in range(variables):
        for c in range(values):
            expected = hard.clone()
            if task.event_dims == 2:
                expected[:, :, var] = torch.nn.functional.one_hot(torch.tensor(c), values).to(hard.dtype)
            else:
                expected[:, :, var] = float(c)
            assert torch.equal(variants[:, var, c], expected), (var, c)
    # the weights are each variable's probabilities of its values: they sum to one per variable
    weights = value_probabilities(task, task.logits(task.theta))
    torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:-1], dtype=weights.dtype))


def test_declares_what_it_needs_and_costs() -> None:
    assert IndeCateR.needs == frozenset({"relaxable"}) and not IndeCateR.biased
    assert IndeCateR().evaluations(categorical(), 5) == (2 * 3 + 1) * 5
    assert IndeCateR().evaluations(bernoulli(), 5) == (6 * 2 + 1) * 5
    assert IndeCateR().memory_factor(categorical()) == 7.0
    assert "relaxable" in (IndeCateR.why_not(vae("vae", latents=2), 1) or "")


@pytest.mark.parametrize("make", [categorical, bernoulli])
def test_a_single_estimate_is_the_batched_ones_first(make) -> None:
    """One estimate (a training step: plain autograd, no vmap) equals lane 0 of K = 2 on the same noise."""
    task, estimator = make("float64"), IndeCateR()
    assert_one_estimate_is_lane_zero(task, estimator)
