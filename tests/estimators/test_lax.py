"""LAX (rpbench.estimators.lax) against the Gaussian toy's closed-form gradient.

``ĝ = [f(z) − c_φ(z)] ∇ log q(z) + ∇θ c_φ(T(θ, ε))`` (Grathwohl et al. 2018, eq. 5) is unbiased for
*any* c_φ; dropping the correction ``∇θ c_φ`` leaves the bias ``−∇θ E c_φ(z)``.  Tuning descends
``E‖ĝ‖²``: the measured reduction must exceed the CIs (a zero learning rate fails the same check).
"""

from __future__ import annotations

import pytest
import torch

from rpbench.engine import estimate_all, flatten_groups
from rpbench.estimators.base import Estimator
from rpbench.estimators.lax import Lax
from rpbench.estimators.rebar import Params, input_term, network, unit_inputs
from rpbench.estimators.score import Score
from rpbench.metrics import SIGNIFICANT_LEVEL, summarize
from rpbench.tasks.base import Task, Theta
from rpbench.truth import truth_of
from tests.conftest import bernoulli, gaussian, max_z_score, vae

POINTS = [
    {"dim": 1, "mu": 1.0, "sigma": 1.0, "k": 0.5, "fn": "cos"},
    {"dim": 2, "mu": -0.4, "sigma": 1.6, "k": 1.3, "fn": "step"},
]
SMALL = {"cv_hidden": 8}


class RandomNetworkLax(Lax):
    """LAX with a random, non-zero c_φ (its output layer is zero at initialisation)."""

    def control_parameters(self, task: Task, generator: torch.Generator) -> Params:
        params = super().control_parameters(task, generator)
        params["net.2.weight"] = 2.0 * torch.randn(params["net.2.weight"].shape, generator=generator, dtype=task.dtype)
        params["net.2.bias"] = torch.full_like(params["net.2.bias"], 3.0)
        return params


class LaxWithoutCorrection(RandomNetworkLax):
    """Deliberately wrong: the reparameterized correction ``∇θ c_φ(T(θ, ε))`` dropped."""

    def surrogate(self, task: Task, theta: Theta, params: Params, *noise: torch.Tensor, tuning: bool) -> torch.Tensor:
        full = super().surrogate(task, theta, params, *noise, tuning=tuning)
        (eps,) = noise
        correction = network(params, task.sample(theta, eps), input_term(params, unit_inputs(task)))
        return full - correction.mean()


def _z(task: Task, estimator: Estimator, samples: int = 20_000, batch: int = 2) -> float:
    draws = estimate_all(task, estimator, samples, batch, seed=11)
    exact = task.exact_gradient()
    assert exact is not None
    return max(max_z_score(draws[g], exact[g]) for g in draws)


@pytest.mark.parametrize("point", POINTS)
def test_unbiased_with_a_random_control_variate(point: dict) -> None:
    assert _z(gaussian(**point), RandomNetworkLax({"tune_steps": 0, **SMALL})) < 4.0


@pytest.mark.parametrize("point", POINTS)
def test_without_the_correction_the_same_check_fails(point: dict) -> None:
    assert _z(gaussian(**point), LaxWithoutCorrection({"tune_steps": 0, **SMALL})) > 4.0


def test_unbiased_after_tuning() -> None:
    assert _z(gaussian(**POINTS[1]), Lax({"tune_steps": 30, **SMALL})) < 4.0


def test_untuned_lax_is_the_score_function() -> None:
    """c_φ's output layer starts at zero: every estimate is REINFORCE's on the same noise."""
    task = gaussian(**POINTS[1])
    lax = Lax({"tune_steps": 0, **SMALL})
    lax.prepare(task, 2, torch.Generator().manual_seed(9))
    ours = lax.estimate(task, 200, 2, torch.Generator().manual_seed(4))
    score = Score().estimate(task, 200, 2, torch.Generator().manual_seed(4))
    for group in score:
        torch.testing.assert_close(ours[group], score[group])
    # and the check can fail: a random c_φ changes them
    random = RandomNetworkLax({"tune_steps": 0, **SMALL})
    random.prepare(task, 2, torch.Generator().manual_seed(9))
    assert not torch.allclose(random.estimate(task, 200, 2, torch.Generator().manual_seed(4))["mu"], score["mu"])


def _variance(estimator: Estimator, samples: int = 4000) -> dict[str, float]:
    task = gaussian(fn="cos", k=0.5)  # bounded f: the score function's variance has a tight CI
    draws = flatten_groups(estimate_all(task, estimator, samples, 1, seed=5))
    return summarize(torch.cat(list(draws.values()), dim=1), None, [1.0], level=SIGNIFICANT_LEVEL)


class FrozenLax(Lax):
    """Deliberately inert tuning: a zero learning rate."""

    def tune_lr(self) -> float:
        return 0.0


def test_tuning_lowers_the_variance_significantly() -> None:
    """The tuned variance's 4-SE upper bound below the untuned one's lower bound; frozen tuning fails it."""
    untuned = _variance(Lax({"tune_steps": 0, "cv_hidden": 16}))
    tuned = _variance(Lax({"tune_steps": 400, "cv_hidden": 16}))
    frozen = _variance(FrozenLax({"tune_steps": 400, "cv_hidden": 16}))
    assert tuned["variance_hi"] < untuned["variance_lo"]
    assert not frozen["variance_hi"] < untuned["variance_lo"]


def test_applies_to_reparameterizable_tasks_only() -> None:
    assert not Lax.biased and Lax.needs == {"reparameterizable", "log-prob"}
    assert Lax.why_not(gaussian(), 1) is None
    assert Lax.why_not(vae("vae", latents=2), 1) is None
    assert Lax.why_not(bernoulli(), 1) is not None  # discrete: no reparameterization
    assert Lax({}).evaluations(gaussian(), 3) == 3 and Lax.cost == "n"


def test_on_a_gaussian_vae_the_network_reads_the_inputs_and_the_shapes_match() -> None:
    task = vae("vae", latents=2)
    estimator = RandomNetworkLax({"tune_steps": 2, **SMALL})
    estimator.prepare(task, 2, torch.Generator().manual_seed(0))
    assert estimator.cv["net.0.input"].shape == (8, task.inputs.shape[-1])  # type: ignore[attr-defined]
    assert estimator.cv["net.0.sample"].shape == (8, 2)  # type: ignore[attr-defined]
    draws = estimator.estimate(task, 5, 2, torch.Generator().manual_seed(1))
    for group, values in flatten_groups(draws).items():
        assert values.shape[0] == 5 and torch.isfinite(values).all(), group


def test_adapt_is_one_more_tuning_step() -> None:
    task = gaussian(**POINTS[0])
    stepped = Lax({"tune_steps": 0, **SMALL})
    generator = torch.Generator().manual_seed(0)
    stepped.prepare(task, 2, generator)
    for _ in range(3):
        stepped.adapt(task, 2, generator)
    tuned = Lax({"tune_steps": 3, **SMALL})
    tuned.prepare(task, 2, torch.Generator().manual_seed(0))
    for key, value in tuned.cv.items():  # type: ignore[attr-defined]
        assert torch.equal(value.detach(), stepped.cv[key].detach()), key  # type: ignore[attr-defined]
    assert tuned.cv["net.2.weight"].detach().any()  # type: ignore[attr-defined]


def _vae_bias_lo(estimator: Estimator) -> float:
    """The encoder's 4-SE bias lower end on a small Gaussian VAE against its pathwise reference truth."""
    task = vae("vae", latents=2, reference=8000)
    truth = truth_of(task)
    assert truth is not None and truth.se is not None
    draws = flatten_groups(estimate_all(task, estimator, 2000, 2, seed=3))
    row = summarize(
        draws["encoder"], truth.gradient["encoder"], [1.0], level=SIGNIFICANT_LEVEL, exact_se=truth.se["encoder"]
    )
    return row["bias_lo"]


def test_consistent_with_a_gaussian_vae_reference() -> None:
    """A random c_φ on a VAE (x_u in the network's input): zero inside the 4-SE bias ball.  Only a
    consistency check: at this K the dropped correction's bias (:class:`LaxWithoutCorrection`) is
    also inside it, so the negative controls are the Gaussian toy's above."""
    assert _vae_bias_lo(RandomNetworkLax({"tune_steps": 0, **SMALL})) == 0.0
