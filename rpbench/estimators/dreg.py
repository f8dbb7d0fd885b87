"""DReG: doubly reparameterized gradients of the importance-weighted bound (continuous latents).

Tucker, Lawson, Gu & Maddison (2019), "Doubly Reparameterized Gradient Estimators for Monte Carlo
Objectives", ICLR (the IWAE-DReG estimator).  For one evaluation of the M-sample bound with reparameterized
particles ``z_m = g_φ(ε_m)``, log weights ``log w_m = log p_θ(x, z_m) − log q_φ(z_m | x)`` and
normalised weights ``w̃_m = w_m / Σ_j w_j``::

    ĝ_φ = Σ_m w̃_m² ∂ log w_m / ∂z_m · ∂z_m / ∂φ        (q's parameters held fixed inside log q)
    ĝ_θ = Σ_m w̃_m ∇θ log p_θ(x, z_m)                    (the bound's own model gradient)

The pathwise gradient of the bound also carries the score terms ``−Σ_m w̃_m ∇φ log q_φ(z_m)`` (φ
held at the sample), whose expectation is zero and whose variance makes the encoder's SNR fall as M
grows (Rainforth et al. 2018, "Tighter variational bounds are not necessarily better"); DReG
replaces them by the reparameterization of that score term, unbiased.  With M = 1 the encoder part
is "sticking the landing" (Roeder, Wu & Duvenaud 2017) and the model part the pathwise one.  Each
sample evaluates the decoder twice at its particles (once along the path to φ, the decoder held
fixed; once for θ, the particles held fixed): cost ``2n``.
"""

from __future__ import annotations

import torch

from rpbench.estimators.base import Estimator, amortizer, as_protocol, per_estimate_gradients, tree_map
from rpbench.registry import register_estimator
from rpbench.tasks.base import Task, Theta
from rpbench.tasks.protocols import ImportanceWeighted


def dreg_surrogate(task: Task, bound: ImportanceWeighted, theta: Theta, noise: torch.Tensor) -> torch.Tensor:
    """``mean [Σ_m sg(w̃_m²) log w_m(z_m(φ)) + Σ_m sg(w̃_m) log p_θ(x, sg z_m)]``, q held in ``log w``."""
    z = task.sample(theta, noise)  # differentiable in φ
    held = {g: tree_map(torch.detach, v) if g in task.variational_groups else v for g, v in theta.items()}
    log_w = bound.particle_log_joint(task.without_model_gradient(theta), z) - bound.particle_log_prob(held, z)
    weights = torch.softmax(log_w.detach(), -1)
    model = bound.particle_log_joint(theta, z.detach())
    return ((weights**2 * log_w).sum(-1) + (weights * model).sum(-1)).mean()


@register_estimator
class Dreg(Estimator):
    """IWAE-DReG (Tucker et al. 2019): the bound's gradient with the encoder's score terms reparameterized."""

    name = "dreg"
    summary = "doubly reparameterized gradient of the importance-weighted bound (continuous latents)"
    reference = "Tucker, Lawson, Gu & Maddison 2019"
    needs = frozenset({"reparameterizable", "importance-weighted"})
    cost = "2n"

    def evaluations(self, task: Task, batch: int) -> int:
        return 2 * batch

    def estimate(self, task: Task, samples: int, batch: int, generator: torch.Generator) -> Theta:
        bound = as_protocol(task, ImportanceWeighted, self.name)
        noise = task.noise(generator, (samples, batch))
        return per_estimate_gradients(
            lambda th, eps: dreg_surrogate(task, bound, th, eps), task.theta, noise, amortize=amortizer(task)
        )
