"""DReG: unbiased against the reference gradient of the bound, its M = 1 identity, and the SNR trend.

The wrong variant that must fail: normalised weights w̃ in place of w̃² on the encoder's path (the
pathwise gradient without its score terms, which is biased).
"""

from __future__ import annotations

import pytest
import torch

import rpbench.estimators.dreg as dreg
from rpbench.engine import flatten_groups
from rpbench.estimators.base import amortizer, as_protocol, per_estimate_gradients, tree_map
from rpbench.metrics import SIGNIFICANT_LEVEL, summarize
from rpbench.registry import ESTIMATORS, get_estimator, load_builtins
from rpbench.tasks.protocols import ImportanceWeighted
from rpbench.truth import truth_of
from tests.conftest import categorical, estimates, gaussian, vae

load_builtins()


def bound_task(particles: int, dtype: str = "float64"):
    return vae("vae", minibatch=2, latents=2, particles=particles, dtype=dtype, reference=20_000)


def strict(task, name: str, samples: int = 3000, batch: int = 2) -> dict[str, dict]:
    truth = truth_of(task)
    assert truth is not None and truth.se is not None
    draws = flatten_groups(estimates(task, name, samples, batch=batch))
    return {
        g: summarize(v, truth.gradient[g], [1.0], level=SIGNIFICANT_LEVEL, exact_se=truth.se[g])
        for g, v in draws.items()
    }


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("particles", [1, 4])
def test_unbiased_against_the_reference_of_the_bound(particles: int, dtype: str) -> None:
    rows = strict(bound_task(particles, dtype), "dreg")
    assert {g: row["bias_lo"] for g, row in rows.items()} == {"encoder": 0.0, "decoder": 0.0}


def test_squared_weights_matter(monkeypatch: pytest.MonkeyPatch) -> None:
    """w̃ instead of w̃² on the encoder's path (score terms dropped, not reparameterized) is biased."""

    def plain_weights(task, bound, theta, noise):
        z = task.sample(theta, noise)
        held = {g: tree_map(torch.detach, v) if g in task.variational_groups else v for g, v in theta.items()}
        log_w = bound.particle_log_joint(task.without_model_gradient(theta), z) - bound.particle_log_prob(held, z)
        weights = torch.softmax(log_w.detach(), -1)
        return ((weights * log_w).sum(-1) + (weights * bound.particle_log_joint(theta, z.detach())).sum(-1)).mean()

    monkeypatch.setattr(dreg, "dreg_surrogate", plain_weights)
    assert strict(bound_task(8), "dreg")["encoder"]["bias_lo"] > 0.0


def sticking_the_landing(task, noise: torch.Tensor) -> dict[str, torch.Tensor]:
    """Roeder, Wu & Duvenaud (2017): ∇ of ``log p(x, z(φ)) − log q_{φ held}(z(φ))`` for one sample, by hand."""
    theta = tree_map(lambda t: t.detach().requires_grad_(True), task.theta)
    mean, raw = torch.func.functional_call(task.encoder, theta["encoder"], (task.x,)).chunk(2, -1)
    scale = torch.nn.functional.softplus(raw) + 1e-4
    z = mean + scale * noise
    held = torch.distributions.Normal(mean.detach(), scale.detach())
    logits = torch.func.functional_call(task.decoder, theta["decoder"], (z,))
    log_px = torch.distributions.Bernoulli(logits=logits).log_prob(task.x).sum(-1)
    log_pz = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
    (log_px + log_pz - held.log_prob(z).sum(-1)).mean().backward()
    return {k: v.grad for k, v in theta["encoder"].items()}


def test_one_particle_is_sticking_the_landing_and_the_pathwise_decoder_gradient() -> None:
    task = bound_task(1)
    noise = task.noise(torch.Generator().manual_seed(3), (1, 1))
    estimator = ESTIMATORS["dreg"]({})
    got = estimator.estimate(task, 1, 1, torch.Generator().manual_seed(3))
    path = ESTIMATORS["pathwise"]({}).estimate(task, 1, 1, torch.Generator().manual_seed(3))
    for k, v in sticking_the_landing(task, noise[0, 0]).items():
        torch.testing.assert_close(got["encoder"][k][0], v, rtol=1e-10, atol=1e-12)
    for k, v in path["decoder"].items():
        torch.testing.assert_close(got["decoder"][k], v, rtol=1e-10, atol=1e-12)
    assert not torch.allclose(got["encoder"]["0.weight"], path["encoder"]["0.weight"])  # pathwise keeps its score


def test_declares_two_decoder_passes_per_sample() -> None:
    assert ESTIMATORS["dreg"]({}).evaluations(bound_task(3), 5) == 10


def test_refused_for_discrete_latents_and_without_a_bound() -> None:
    cls = get_estimator("dreg")
    assert "reparameterizable" in (cls.why_not(categorical(), 1) or "")
    assert "importance-weighted" in (cls.why_not(gaussian(), 1) or "")


def test_one_estimate_is_lane_zero_of_many() -> None:
    """The plain-autograd path of one estimate (a training step) and the amortized vmap of K agree.
    (Given the same noise: torch's normal fill of 36 values is not the first half of its fill of 72.)"""
    task = bound_task(3)
    noise = task.noise(torch.Generator().manual_seed(4), (2, 3))
    bound = as_protocol(task, ImportanceWeighted, "dreg")
    lanes = [
        flatten_groups(
            per_estimate_gradients(
                lambda th, eps: dreg.dreg_surrogate(task, bound, th, eps), task.theta, part, amortize=amortizer(task)
            )
        )
        for part in (noise[:1], noise)
    ]
    for group in lanes[0]:
        torch.testing.assert_close(lanes[0][group][0], lanes[1][group][0], rtol=1e-9, atol=1e-12)
    assert not torch.allclose(lanes[1]["encoder"][0], lanes[1]["encoder"][1])


def encoder_snr(name: str, particles: int) -> dict[str, float]:
    draws = flatten_groups(estimates(bound_task(particles), name, 4000, batch=1, seed=7))["encoder"]
    return summarize(draws, None, [1.0])


def test_the_pathwise_encoder_snr_falls_with_the_particles_and_dregs_does_not() -> None:
    """Rainforth et al. (2018): the bound's pathwise encoder SNR falls as M grows; DReG's does not."""
    few, many = encoder_snr("pathwise", 2), encoder_snr("pathwise", 16)
    assert many["snr_hi"] < few["snr_lo"]
    assert encoder_snr("dreg", 16)["snr_lo"] > many["snr_hi"]
