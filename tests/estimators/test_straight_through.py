"""Plain straight-through and ReinMax (rpbench.estimators.straight_through) on small enumerable VAEs.

Both forward an exact hard sample D and backpropagate a surrogate Jacobian that depends only on D
and the logits, so each estimate given D is deterministic and the estimator's expectation is the
finite sum ``Σ_D q(D) ĝ(D)``.  The tests compute that sum exactly (enumerating D per unit), check
that the measured mean lies within 4 SE of it, and that it differs from the true (enumerated)
gradient: the bias is exact, not estimated.  ReinMax's backward is checked against a direct
implementation of the reference code's formula (microsoft/ReinMax, ``ReinMaxCore.backward``), and
its binary form against the 2-class categorical with logits ``(φ, 0)``.
"""

from __future__ import annotations

import pytest
import torch
from torch.func import vjp

from rpbench.distributions import Bernoulli, Categorical
from rpbench.engine import flatten_groups
from rpbench.estimators.base import tree_leaves, tree_map
from rpbench.estimators.straight_through import ReinMax, StraightThrough, _StraightThrough
from rpbench.metrics import SIGNIFICANT_LEVEL, summarize
from rpbench.registry import ESTIMATORS, load_builtins
from rpbench.tasks.base import Task
from rpbench.truth import truth_of
from tests.conftest import assert_one_estimate_is_lane_zero, bernoulli, categorical, estimates, max_z_score, vae

load_builtins()
SAMPLES = 3000


def expected_gradient(task: Task, estimator: _StraightThrough) -> dict[str, torch.Tensor]:
    """The estimator's exact expectation ``mean_u Σ_{D_u} q_u(D_u) ∇θ f_u(y(θ, D_u))``, flattened per group.

    Units are independent (``f_u`` reads only ``D_u``), so the sum runs over one unit's latent space,
    every unit at once (as :meth:`~rpbench.tasks.vae.VAETask.enumerated_elbo` does).
    """
    theta = tree_map(lambda leaf: leaf.detach().requires_grad_(True), task.theta)
    configs = task.all_latents()  # type: ignore[attr-defined]
    configs = configs.unsqueeze(1).expand(configs.shape[0], task.minibatch, *configs.shape[1:])  # type: ignore[attr-defined]
    weights = torch.exp(task.log_prob(theta, configs)).detach()  # q_u(D): the estimator never differentiates it
    total = (weights * estimator.unit_surrogate(task, theta, configs)).sum() / task.minibatch  # type: ignore[attr-defined]
    grads = iter(torch.autograd.grad(total, tree_leaves(theta), allow_unused=True, materialize_grads=True))
    gradient = tree_map(lambda _: next(grads), theta)
    return {group: torch.cat([leaf.reshape(-1) for leaf in tree_leaves(value)]) for group, value in gradient.items()}


CASES = [
    pytest.param(categorical, StraightThrough({"tau": 1.0}), True, id="categorical-st"),
    pytest.param(categorical, ReinMax({"tau": 1.0}), True, id="categorical-reinmax"),
    pytest.param(bernoulli, StraightThrough({"tau": 1.0}), True, id="bernoulli-st"),
    pytest.param(bernoulli, ReinMax({"tau": 2.0}), True, id="bernoulli-reinmax-tau2"),
    # At τ = 1 ReinMax's exact bias on this Bernoulli VAE is ~0.1% of the gradient: below 4 SE at
    # 3000 estimates, yet exactly nonzero.
    pytest.param(bernoulli, ReinMax({"tau": 1.0}), False, id="bernoulli-reinmax"),
]


@pytest.mark.parametrize(("make", "estimator", "flagged"), CASES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_bias_is_exact_on_an_enumerable_model(make, estimator: _StraightThrough, flagged: bool, dtype: str) -> None:
    task = make(dtype)
    truth = truth_of(task)
    assert truth is not None and truth.kind == "enumeration"
    expectation = expected_gradient(task, estimator)
    draws = flatten_groups(estimates(task, estimator.name, SAMPLES, batch=2, **estimator.config))
    for group, values in draws.items():
        assert max_z_score(values, expectation[group]) < 4.0, group  # the measured mean is the exact expectation
    # the decoder's gradient is f's own (pathwise at the sample): unbiased, to round-off
    torch.testing.assert_close(expectation["decoder"], truth.gradient["decoder"], rtol=1e-4, atol=1e-5)
    bias = (expectation["encoder"] - truth.gradient["encoder"]).norm() / truth.gradient["encoder"].norm()
    assert bias > (1e-4 if dtype == "float64" else 1e-3)  # exactly biased, beyond round-off
    row = summarize(draws["encoder"], truth.gradient["encoder"], [1.0], level=SIGNIFICANT_LEVEL)
    assert (row["bias_lo"] > 0.0) == flagged


def test_the_exact_expectation_check_can_fail() -> None:
    """ST's estimates against ReinMax's exact expectation (and the reverse): beyond 4 SE."""
    task = categorical("float64")
    st = flatten_groups(estimates(task, "st", SAMPLES, batch=2))["encoder"]
    reinmax = flatten_groups(estimates(task, "reinmax", SAMPLES, batch=2))["encoder"]
    assert max_z_score(st, expected_gradient(task, ReinMax({"tau": 1.0}))["encoder"]) > 4.0
    assert max_z_score(reinmax, expected_gradient(task, StraightThrough({"tau": 1.0}))["encoder"]) > 4.0


def reference_backward(logits: torch.Tensor, hard: torch.Tensor, grad: torch.Tensor, tau: float) -> torch.Tensor:
    """ReinMax's backward as the reference code writes it (``grad_at_p`` = 0: f reads only the sample)."""
    y_soft = logits.softmax(-1)
    shifted = 0.5 * ((logits / tau).softmax(-1) + hard)
    first = (2 * grad) * shifted
    first = first - shifted * first.sum(-1, keepdim=True)
    zeroth = (-0.5 * grad) * y_soft
    zeroth = zeroth - y_soft * zeroth.sum(-1, keepdim=True)
    total = zeroth + first
    return total - total.mean(-1, keepdim=True)


def random_inputs(seed: int, shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    logits = 2 * torch.randn(shape, generator=generator, dtype=torch.float64)
    hard = Categorical.hard(logits + Categorical.perturbation(generator, shape, torch.float64, torch.device("cpu")))
    grad = torch.randn(shape, generator=generator, dtype=torch.float64)
    return logits, hard, grad


@pytest.mark.parametrize("tau", [1.0, 1.5, 3.0])
def test_reinmax_backward_is_the_reference_formula(tau: float) -> None:
    logits, hard, grad = random_inputs(0, (7, 3, 5))
    estimator = ReinMax({"tau": tau})
    value, pullback = vjp(lambda t: estimator.forward_backward(Categorical, t, hard), logits)
    assert torch.equal(value, hard)  # the forward is the sample, exactly
    torch.testing.assert_close(pullback(grad)[0], reference_backward(logits, hard, grad, tau), rtol=1e-12, atol=1e-12)
    # and the check can fail: plain ST's backward, or ReinMax at another τ, is not the formula
    _, st_pullback = vjp(lambda t: StraightThrough({"tau": tau}).forward_backward(Categorical, t, hard), logits)
    assert not torch.allclose(st_pullback(grad)[0], reference_backward(logits, hard, grad, tau), atol=1e-3)
    _, other = vjp(lambda t: ReinMax({"tau": tau + 1.0}).forward_backward(Categorical, t, hard), logits)
    assert not torch.allclose(other(grad)[0], reference_backward(logits, hard, grad, tau), atol=1e-3)


@pytest.mark.parametrize("name", ["st", "reinmax"])
def test_the_binary_form_is_the_two_class_categorical(name: str) -> None:
    """A Bernoulli latent with logit φ is the categorical with logits ``(φ, 0)`` and one-hot ``(b, 1 − b)``."""
    generator = torch.Generator().manual_seed(1)
    phi = 2 * torch.randn(6, 4, generator=generator, dtype=torch.float64)
    b = Bernoulli.hard(phi + Bernoulli.perturbation(generator, (6, 4), torch.float64, torch.device("cpu")))
    grad = torch.randn(6, 4, generator=generator, dtype=torch.float64)
    estimator = ESTIMATORS[name]({"tau": 1.7})
    value, binary = vjp(lambda t: estimator.forward_backward(Bernoulli, t, b), phi)
    pair = torch.stack([b, 1 - b], -1)

    def two_class(t: torch.Tensor) -> torch.Tensor:
        return estimator.forward_backward(Categorical, torch.stack([t, torch.zeros_like(t)], -1), pair)[..., 0]

    two_value, categorical_pullback = vjp(two_class, phi)
    torch.testing.assert_close(value, b, rtol=0, atol=1e-12)
    torch.testing.assert_close(two_value, b, rtol=0, atol=1e-12)
    torch.testing.assert_close(binary(grad)[0], categorical_pullback(grad)[0], rtol=1e-12, atol=1e-12)
    # and the check can fail: the other estimator's two-class backward is another map
    other = ESTIMATORS["st" if name == "reinmax" else "reinmax"]({"tau": 1.7})

    def other_two_class(t: torch.Tensor) -> torch.Tensor:
        return other.forward_backward(Categorical, torch.stack([t, torch.zeros_like(t)], -1), pair)[..., 0]

    _, other_pullback = vjp(other_two_class, phi)
    assert not torch.allclose(binary(grad)[0], other_pullback(grad)[0], atol=1e-3)


def test_both_are_declared_biased_and_need_a_relaxable_task() -> None:
    for cls in (StraightThrough, ReinMax):
        assert cls.biased and cls.needs == frozenset({"relaxable"})
        assert cls.why_not(categorical(), 1) is None and cls.why_not(bernoulli(), 1) is None
        assert "relaxable" in (cls.why_not(vae("vae", latents=2), 1) or "")
    assert ReinMax.params[0].check is not None and ReinMax.params[0].check(0.5) is not None  # τ < 1 refused


@pytest.mark.parametrize("make", [categorical, bernoulli])
def test_a_single_estimate_is_the_batched_ones_first(make) -> None:
    """One estimate (a training step: plain autograd, no vmap) equals lane 0 of K = 2 on the same noise."""
    task, estimator = make("float64"), ReinMax({"tau": 1.5})
    assert_one_estimate_is_lane_zero(task, estimator)
