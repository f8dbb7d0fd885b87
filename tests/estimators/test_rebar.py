"""REBAR and RELAX (rpbench.estimators.rebar) against the enumerated gradient of small VAEs.

With perturbed logits ``z``, the hard sample ``b = H(z)``, a draw ``z̃ ~ p(z | b)`` and a control
variate ``c`` (Tucker et al. 2017, eq. 3–5; Grathwohl et al. 2018, eq. 6)::

    ĝ = [f(b) − c(z̃)] ∇ log q(b) + ∇ c(z) − ∇ c(z̃)

is unbiased for *any* c, because z and z̃ have the same law.  REBAR's c is ``η f(σ_λ(·))``, RELAX's
adds a learned network ``r_ψ``.  With η = 0 (and r_ψ = 0) the estimator is REINFORCE.
"""

from __future__ import annotations

import pytest
import torch

from rpbench.engine import flatten_groups
from rpbench.estimators.base import Estimator, per_estimate_gradients
from rpbench.estimators.rebar import Rebar, Relax
from rpbench.estimators.score import Score
from rpbench.metrics import summarize
from rpbench.registry import ESTIMATORS
from rpbench.tasks.base import Task, Theta
from tests.conftest import bernoulli, bias_lo, categorical, estimates, vae


def initial(cls: type[Estimator], eta: float = 1.0, lam: float = 0.5, **config: object) -> Estimator:
    """The estimator at its initial control variate (no variance tuning)."""
    return cls({"eta": eta, "lam": lam, "tune_steps": 0, **config})


class _WithoutConditional:
    """Deliberately wrong: the score weight's control variate at z itself, not at z̃ ~ p(z | b).

    ``ĝ = [f(b) − c(z)] ∇ log q(b)`` (the ``∇c(z) − ∇c(z)`` terms cancel): z depends on b, so
    ``E[c(z) ∇ log q(b)] ≠ 0`` and the estimate is biased.  Uses the initial control variate.
    """

    def estimate(self, task, samples: int, batch: int, generator: torch.Generator) -> Theta:
        control = self.control(self.control_parameters(task, torch.Generator().manual_seed(0)))
        noise = task.noise(generator, (samples, batch))

        def surrogate(theta: Theta, eps: torch.Tensor) -> torch.Tensor:
            z = task.logits(theta) + eps
            hard = task.latent.hard(z).detach()
            f_hard = task.objective(theta, hard)
            c_z = control(task, task.without_model_gradient(theta), z)
            return (f_hard + (f_hard - c_z).detach() * task.log_prob(theta, hard)).mean()

        return per_estimate_gradients(surrogate, task.theta, noise)


class RebarWithoutConditional(_WithoutConditional, Rebar):
    pass


class RandomNetworkRelax(Relax):
    """RELAX with a random, non-zero network r_ψ (its output layer is zero at initialisation)."""

    def control_parameters(self, task: Task, generator: torch.Generator) -> dict[str, torch.Tensor]:
        params = super().control_parameters(task, generator)
        params["2.weight"] = torch.randn(params["2.weight"].shape, generator=generator, dtype=task.dtype)
        params["2.bias"] = torch.full_like(params["2.bias"], 3.0)
        return params


class RandomNetworkRelaxWithoutConditional(_WithoutConditional, RandomNetworkRelax):
    pass


@pytest.mark.parametrize("task", [categorical, bernoulli])
@pytest.mark.parametrize(("eta", "lam"), [(1.0, 0.5), (-0.6, 2.0)])
def test_rebar_is_unbiased_for_any_eta_and_lambda(task, eta: float, lam: float) -> None:
    assert bias_lo(task(), initial(Rebar, eta, lam)) == {"encoder": 0.0, "decoder": 0.0}


@pytest.mark.parametrize("task", [categorical, bernoulli])
def test_relax_is_unbiased_for_any_network(task) -> None:
    assert bias_lo(task(), initial(RandomNetworkRelax, cv_hidden=8)) == {"encoder": 0.0, "decoder": 0.0}


@pytest.mark.parametrize("task", [categorical, bernoulli])
@pytest.mark.parametrize("wrong", [RebarWithoutConditional, RandomNetworkRelaxWithoutConditional])
def test_without_the_conditional_draw_the_same_check_fails(task, wrong) -> None:
    assert bias_lo(task(), initial(wrong, cv_hidden=8))["encoder"] > 0.0


def _on_the_same_noise(estimator: Estimator, task: Task, samples: int = 50, batch: int = 2) -> dict[str, torch.Tensor]:
    estimator.prepare(task, batch, torch.Generator().manual_seed(9))
    return flatten_groups(estimator.estimate(task, samples, batch, torch.Generator().manual_seed(4)))


@pytest.mark.parametrize("task", [categorical, bernoulli])
def test_eta_zero_is_reinforce_and_relax_starts_as_rebar(task) -> None:
    """η = 0: every estimate is REINFORCE's on the same noise (so is its variance); RELAX's network
    starts at zero, so untuned RELAX is REBAR estimate for estimate."""
    the_task = task()
    score = _on_the_same_noise(Score(), the_task)
    rebar_zero = _on_the_same_noise(initial(Rebar, eta=0.0), the_task)
    rebar = _on_the_same_noise(initial(Rebar), the_task)
    relax = _on_the_same_noise(initial(Relax, cv_hidden=8), the_task)
    for group in score:
        torch.testing.assert_close(rebar_zero[group], score[group], rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(relax[group], rebar[group], rtol=1e-4, atol=1e-6)
    # and the check can fail: with η = 1 the control variate changes the encoder's estimates
    assert not torch.allclose(rebar["encoder"], score["encoder"], rtol=1e-2, atol=1e-4)
    # (the decoder's are REINFORCE's whatever η: the control variate holds the decoder fixed)
    torch.testing.assert_close(rebar["decoder"], score["decoder"], rtol=1e-4, atol=1e-6)


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


def test_both_declare_what_they_need() -> None:
    for cls in (Rebar, Relax):
        assert not cls.biased
        assert {"relaxable", "log-prob"} <= cls.needs
        assert cls.why_not(vae("vae", latents=2), 1) is not None  # a Gaussian latent: no relaxation
        assert cls.why_not(categorical(), 1) is None and cls.why_not(bernoulli(), 1) is None


@pytest.mark.parametrize("cls", [Rebar, Relax])
def test_adapt_is_one_more_tuning_step_of_the_control_variate(cls: type[Estimator]) -> None:
    """What ``rpbench train`` calls after every step: ``prepare`` with k tuning steps equals
    ``prepare`` with none followed by k ``adapt`` calls on the same generator (and they move η, λ)."""
    task = categorical()
    defaults = {p.name: p.default_values[0] for p in cls.params}
    untuned = cls(defaults | {"tune_steps": 0})
    with pytest.raises(RuntimeError, match=r"prepare\(\) must run before adapt\(\)"):
        untuned.adapt(task, 2, torch.Generator().manual_seed(0))
    generator = torch.Generator().manual_seed(0)
    untuned.prepare(task, 2, generator)
    start = {k: v.detach().clone() for k, v in untuned.cv.items()}  # type: ignore[attr-defined]
    for _ in range(3):
        untuned.adapt(task, 2, generator)
    tuned = cls(defaults | {"tune_steps": 3})
    tuned.prepare(task, 2, torch.Generator().manual_seed(0))
    for key, value in tuned.cv.items():  # type: ignore[attr-defined]
        assert torch.equal(value.detach(), untuned.cv[key].detach()), key  # type: ignore[attr-defined]
    assert any(not torch.equal(start[k], v.detach()) for k, v in tuned.cv.items())  # type: ignore[attr-defined]
