"""Held-out evaluation against enumeration: the ELBO, the importance-weighted bound, log p(x)."""

from __future__ import annotations

import math

import pytest
import torch

from rpbench.tasks.vae import VAETask
from rpbench.training.evaluate import evaluate
from tests.conftest import vae


def exact(task: VAETask, images: torch.Tensor) -> tuple[float, float]:
    """The enumerated ELBO and log p(x), averaged over ``images``."""
    theta = task.theta
    with task.evaluated_at(theta, images), torch.no_grad():
        elbo = float(task.enumerated_elbo(theta))
        z = task.all_latents()
        z = z.unsqueeze(1).expand(z.shape[0], images.shape[0], *z.shape[1:])  # (|Z|, U, latent...)
        log_px = torch.logsumexp(task.log_joint(theta, z).double(), 0).mean()
    return elbo, float(log_px)


@pytest.mark.parametrize("name", ["discrete-vae", "bernoulli-vae"])
def test_the_elbo_and_the_bound_agree_with_enumeration(name: str) -> None:
    task = vae(name, latents=2, categories=3) if name == "discrete-vae" else vae(name, latents=4)
    images = task.eval_images()
    elbo, log_px = exact(task, images)
    found = evaluate(task, task.theta, images, 400, torch.Generator().manual_seed(0))
    assert abs(found.elbo - elbo) < 4 * found.elbo_se
    assert elbo < found.iwae <= log_px + 1e-6  # the bound lies between the ELBO and log p(x)
    assert log_px - found.iwae < 0.1 * (log_px - elbo)  # and nears log p(x) with 400 samples
    one = evaluate(task, task.theta, images, 1, torch.Generator().manual_seed(0))
    assert one.iwae == pytest.approx(one.elbo, abs=1e-9)  # S = 1: the bound is the ELBO


def test_a_wrong_prior_fails_the_same_check(monkeypatch: pytest.MonkeyPatch) -> None:
    task = vae("discrete-vae", latents=2, categories=3)
    images = task.eval_images()
    elbo, _ = exact(task, images)
    monkeypatch.setattr(type(task), "log_prior", lambda self, z: torch.zeros(z.shape[:-2]))  # forgets p(z)
    found = evaluate(task, task.theta, images, 400, torch.Generator().manual_seed(0))
    assert abs(found.elbo - elbo) > 4 * found.elbo_se
    assert math.isclose(found.elbo - elbo, 2 * math.log(3), rel_tol=0.05)  # off by exactly -log p(z)


def test_the_same_noise_gives_the_same_numbers() -> None:
    task = vae("vae", latents=2)
    images = task.eval_images()
    a = evaluate(task, task.theta, images, 20, torch.Generator().manual_seed(5))
    b = evaluate(task, task.theta, images, 20, torch.Generator().manual_seed(5))
    c = evaluate(task, task.theta, images, 20, torch.Generator().manual_seed(6))
    assert a == b and a != c and a.elbo <= a.iwae


@pytest.mark.parametrize("name", ["discrete-vae", "vae"])
def test_a_task_with_particles_is_evaluated_on_the_same_number_of_draws(name: str) -> None:
    """S single-particle draws whatever M is: ``ceil(S / M)`` samples of M particles, the first S kept."""
    config = {"latents": 2, "categories": 3} if name == "discrete-vae" else {"latents": 2}
    one = vae(name, dtype="float64", **config)
    many = vae(name, dtype="float64", particles=3, **config)
    images = one.eval_images()[:10]
    found = evaluate(many, many.theta, images, 7, torch.Generator().manual_seed(2))
    with many.evaluated_at(many.theta, images), one.evaluated_at(one.theta, images), torch.no_grad():
        z = many.sample(many.theta, many.noise(torch.Generator().manual_seed(2), (3,)))  # 3 × 3 ≥ 7 particles
        latents = z.shape[2] // 3
        parts = [z[:, :, m * latents : (m + 1) * latents] for m in range(3)]
        log_w = torch.stack([one.log_joint(one.theta, p) - one.log_prob(one.theta, p) for p in parts], 1)
        log_w = log_w.reshape(9, -1)[:7]  # draw s, then particle m
    assert found.elbo == pytest.approx(float(log_w.mean()), rel=1e-12)
    assert found.iwae == pytest.approx(float((torch.logsumexp(log_w, 0) - math.log(7)).mean()), rel=1e-12)
