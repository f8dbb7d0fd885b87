"""REBAR and RELAX (rpbench.estimators.rebar) against the enumerated gradient of small VAEs.

With perturbed logits ``z``, the hard sample ``b = H(z)``, a draw ``z̃ ~ p(z | b)`` and a control
variate ``c`` (Tucker et al. 2017, eq. 3–5; Grathwohl et al. 2018, eq. 6)::

    ĝ = [f(b) − c(z̃)] ∇ log q(b) + ∇ c(z) − ∇ c(z̃)

is unbiased for *any* c, because z and z̃ have the same law.  REBAR's c is ``η f(σ_λ(·))``, RELAX's
adds a learned network ``r_ψ``.  With η = 0 (and r_ψ = 0) the estimator is REINFORCE.
"""

from __future__ import annotations

import math

import pytest
import torch

from rpbench.engine import estimate_all, flatten_groups
from rpbench.errors import UsageError
from rpbench.estimators.base import Estimator, per_estimate_gradients
from rpbench.estimators.rebar import Rebar, Relax
from rpbench.estimators.score import Score
from rpbench.metrics import SIGNIFICANT_LEVEL, summarize
from rpbench.registry import ESTIMATORS
from rpbench.tasks.base import Task, Theta
from tests.conftest import bernoulli, bias_lo, categorical, vae


def initial(cls: type[Estimator], eta: float = 1.0, lam: float = 0.5, **config: object) -> Estimator:
    """The estimator at its initial control variate (no variance tuning)."""
    return cls({"eta": eta, "lam": lam, "tune_steps": 0, **config})


class _WithoutConditional:
    """Deliberately wrong: the score weight's control variate at z itself, not at z̃ ~ p(z | b).

    ``ĝ = [f(b) − c(z)] ∇ log q(b)`` (the ``∇c(z) − ∇c(z)`` terms cancel): z depends on b, so
    ``E[c(z) ∇ log q(b)] ≠ 0`` and the estimate is biased.  Uses the initial control variate (η = 1).
    """

    def estimate(self, task, samples: int, batch: int, generator: torch.Generator) -> Theta:
        control = self.control(task, self.control_parameters(task, torch.Generator().manual_seed(0)))
        noise = task.noise(generator, (samples, batch))

        def surrogate(theta: Theta, eps: torch.Tensor) -> torch.Tensor:
            z = task.logits(theta) + eps
            hard = task.latent.hard(z).detach()
            f_hard = task.objective(theta, hard)
            c_z = control.relaxed(task, task.without_model_gradient(theta), z)
            learned = control.learned(task, z)
            c_z = c_z if learned is None else c_z + learned
            return (f_hard + (f_hard - c_z).detach() * task.log_prob(theta, hard)).mean()

        return per_estimate_gradients(surrogate, task.theta, noise)


class RebarWithoutConditional(_WithoutConditional, Rebar):
    pass


class RandomEtaRebar(Rebar):
    """REBAR with a random η per latent variable, spread over (0, 2)."""

    def control_parameters(self, task: Task, generator: torch.Generator) -> dict[str, torch.Tensor]:
        params = super().control_parameters(task, generator)
        params["rho"] = 2.0 * torch.randn(params["rho"].shape, generator=generator, dtype=task.dtype)
        return params


class ZeroEtaRebar(Rebar):
    """REBAR with η = 2 sigmoid(−∞) = 0 for the variables in ``off`` (the ``eta`` parameter excludes 0)."""

    off: slice = slice(None)

    def control_parameters(self, task: Task, generator: torch.Generator) -> dict[str, torch.Tensor]:
        params = super().control_parameters(task, generator)
        params["rho"][self.off] = -math.inf
        return params


class FirstVariableOffRebar(ZeroEtaRebar):
    off = slice(0, 1)


class RandomNetworkRelax(Relax):
    """RELAX with a random, non-zero network r_ψ (its output layer is zero at initialisation)."""

    def control_parameters(self, task: Task, generator: torch.Generator) -> dict[str, torch.Tensor]:
        params = super().control_parameters(task, generator)
        params["net.2.weight"] = torch.randn(params["net.2.weight"].shape, generator=generator, dtype=task.dtype)
        params["net.2.bias"] = torch.full_like(params["net.2.bias"], 3.0)
        return params


class RandomNetworkRelaxWithoutConditional(_WithoutConditional, RandomNetworkRelax):
    pass


@pytest.mark.parametrize("task", [categorical, bernoulli])
@pytest.mark.parametrize(("eta", "lam"), [(1.0, 0.5), (0.3, 2.0)])
def test_rebar_is_unbiased_for_any_eta_and_lambda(task, eta: float, lam: float) -> None:
    assert bias_lo(task(), initial(Rebar, eta, lam)) == {"encoder": 0.0, "decoder": 0.0}


@pytest.mark.parametrize("task", [categorical, bernoulli])
def test_rebar_is_unbiased_with_a_different_eta_per_variable(task) -> None:
    assert bias_lo(task(), initial(RandomEtaRebar)) == {"encoder": 0.0, "decoder": 0.0}


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
    rebar_zero = _on_the_same_noise(initial(ZeroEtaRebar), the_task)
    rebar = _on_the_same_noise(initial(Rebar), the_task)
    relax = _on_the_same_noise(initial(Relax, cv_hidden=8), the_task)
    for group in score:
        torch.testing.assert_close(rebar_zero[group], score[group], rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(relax[group], rebar[group], rtol=1e-4, atol=1e-6)
    # and the check can fail: with η = 1 the control variate changes the encoder's estimates
    assert not torch.allclose(rebar["encoder"], score["encoder"], rtol=1e-2, atol=1e-4)
    # (the decoder's are REINFORCE's whatever η: the control variate holds the decoder fixed)
    torch.testing.assert_close(rebar["decoder"], score["decoder"], rtol=1e-4, atol=1e-6)


def test_each_eta_acts_on_its_own_variable() -> None:
    """With η = 0 for latent variable 0 only, the row of the (linear) encoder's weight that computes
    that variable's logits gets REINFORCE's estimate; every other row REBAR's."""
    task = bernoulli()
    rows = task.theta["encoder"]["0.weight"].shape  # (6 variables, pixels), flattened first

    def weight_of(estimator: Estimator) -> torch.Tensor:
        return _on_the_same_noise(estimator, task)["encoder"][:, : rows.numel()].reshape(-1, *rows)

    weight = {
        "score": weight_of(Score()),
        "first_off": weight_of(initial(FirstVariableOffRebar)),
        "rebar": weight_of(initial(Rebar)),
    }
    torch.testing.assert_close(weight["first_off"][:, 0], weight["score"][:, 0], rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(weight["first_off"][:, 1:], weight["rebar"][:, 1:], rtol=1e-4, atol=1e-6)
    assert not torch.allclose(weight["rebar"][:, 0], weight["score"][:, 0], rtol=1e-2, atol=1e-4)


def test_eta_must_lie_in_the_open_interval_zero_two() -> None:
    spec = next(p for p in Rebar.params if p.name == "eta")
    assert spec.parse("1.5", "rebar") == 1.5
    for bad in ("0", "2", "-0.5", "2.5"):
        with pytest.raises(UsageError, match=r"in \(0, 2\)"):
            spec.parse(bad, "rebar")


class FrozenRebar(Rebar):
    """Deliberately inert tuning: Adam with a zero learning rate leaves η and λ where they start."""

    def tune_lr(self) -> float:
        return 0.0


class FrozenRelax(Relax):
    def tune_lr(self) -> float:
        return 0.0


TUNING_STEPS = {"rebar": 80, "relax": 200}
"""Enough for a reduction of 15–20 % on this small VAE, beyond the CIs (REBAR: 2.07 → 1.73 [1.64, 1.83] at 60
steps; RELAX's network, trained by the same noisy objective, needs more)."""


def _encoder_variance(cls: type[Estimator], tune_steps: int, samples: int = 2000) -> dict[str, float]:
    task = bernoulli()
    estimator = cls({p.name: p.default_values[0] for p in cls.params} | {"tune_steps": tune_steps, "cv_hidden": 16})
    draws = flatten_groups(estimate_all(task, estimator, samples, 2, seed=5))
    return summarize(draws["encoder"], None, [1.0], level=SIGNIFICANT_LEVEL)


def _significantly_lower(tuned: dict[str, float], untuned: dict[str, float]) -> bool:
    """The tuned variance's 4-SE upper bound lies below the untuned one's 4-SE lower bound."""
    return tuned["variance_hi"] < untuned["variance_lo"]


@pytest.mark.slow
@pytest.mark.parametrize(("cls", "frozen"), [(Rebar, FrozenRebar), (Relax, FrozenRelax)])
def test_tuning_lowers_the_variance_significantly(cls: type[Estimator], frozen: type[Estimator]) -> None:
    """The measured reduction, with a margin from the CIs; with a zero learning rate the same check fails."""
    untuned = _encoder_variance(cls, 0)
    steps = TUNING_STEPS[cls.name]
    assert _significantly_lower(_encoder_variance(cls, steps), untuned)
    assert not _significantly_lower(_encoder_variance(frozen, steps), untuned)


def test_rebar_needs_prepare() -> None:
    estimator = ESTIMATORS["rebar"]({"eta": 1.0, "lam": 0.5, "tune_steps": 0})
    with pytest.raises(RuntimeError, match="prepare"):
        estimator.estimate(categorical(), 10, 1, torch.Generator().manual_seed(0))


def test_relax_reads_the_units_inputs() -> None:
    """On a :class:`Conditioned` task the network's first layer has a block for x_u's pixels, and
    a random network's control variate changes with the inputs."""
    task = bernoulli()
    params = Relax({"eta": 1.0, "lam": 0.5, "tune_steps": 0, "cv_hidden": 8}).control_parameters(
        task, torch.Generator().manual_seed(0)
    )
    assert params["net.0.input"].shape == (8, task.inputs.shape[-1])
    assert params["net.0.sample"].shape == (8, 6)
    assert not params["net.2.weight"].any()  # zero output layer: RELAX starts as REBAR


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
