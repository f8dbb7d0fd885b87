"""Held-out evaluation of a VAE's state: the ELBO and the S-sample importance-weighted bound.

For each eval image x and S samples z_s ~ q(z | x), with log weights
``log w_s = log p(x, z_s) − log q(z_s | x)``:

* ELBO(x) is estimated by ``mean_s log w_s`` (unbiased; Kingma & Welling 2014);
* the importance-weighted bound ``L_S(x) = E[log (1/S) Σ_s w_s]`` (Burda, Grosse & Salakhutdinov
  2016, "Importance weighted autoencoders") by ``logsumexp_s log w_s − log S``: between the ELBO
  and ``log p(x)``, which it reaches as S grows.

Both are averaged over the task's fixed eval split; ``eval_elbo_se`` is the standard error of
that average over images (it contains the images' spread and the Monte Carlo noise of each).
A task with M particles (the importance-weighted objective) is evaluated on S single-particle
draws all the same, so that the held-out numbers of different M are comparable.
The same S samples serve both, drawn from a generator seeded by the caller, so that every run
and every estimator of one seed is evaluated with the same noise at the same state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from rpbench.tasks.vae import VAETask

EVAL_CHUNK = 256
"""Eval images per forward pass."""


@dataclass(frozen=True)
class Evaluation:
    """The held-out bounds of one model state, in nats per image."""

    elbo: float
    elbo_se: float
    iwae: float


@torch.no_grad()
def evaluate(task: VAETask, theta: dict, images: torch.Tensor, samples: int, generator: torch.Generator) -> Evaluation:
    """ELBO and S-sample bound of the state ``theta`` on ``images`` (see the module docstring)."""
    elbo_parts, iwae_parts = [], []
    for start in range(0, images.shape[0], EVAL_CHUNK):
        x = images[start : start + EVAL_CHUNK]
        with task.evaluated_at(theta, x):
            log_w = _log_weights(task, theta, samples, generator)
        elbo_parts.append(log_w.mean(0))
        iwae_parts.append(torch.logsumexp(log_w, 0) - math.log(samples))
    elbo, iwae = torch.cat(elbo_parts), torch.cat(iwae_parts)
    se = float(elbo.std() / math.sqrt(elbo.numel())) if elbo.numel() > 1 else math.nan
    return Evaluation(float(elbo.mean()), se, float(iwae.mean()))


def _log_weights(task: VAETask, theta: dict, samples: int, generator: torch.Generator) -> torch.Tensor:
    """``log w`` of ``samples`` single-particle draws per image, ``(S, U)`` in float64.

    A task with M particles per sample draws ``ceil(S / M)`` samples and keeps the first S of their
    particles, so that S counts draws from q whatever M is (M = 1: the S samples themselves).
    """
    z = task.sample(theta, task.noise(generator, (-(-samples // task.particles),)))  # (S', U, M·L...)
    log_w = task.particle_log_joint(theta, z) - task.particle_log_prob(theta, z)  # (S', U, M)
    return log_w.movedim(-1, 1).reshape(-1, log_w.shape[1])[:samples].to(torch.float64)
