"""VIMCO: the score function of the importance-weighted bound with per-particle leave-one-out signals.

Mnih & Rezende (2016), "Variational Inference for Monte Carlo Objectives", ICML (the VIMCO estimator).
For one evaluation of the M-sample bound ``L̂ = log (1/M) Σ_m w_m`` (``w_m = p(x, z_m)/q(z_m|x)``,
:class:`~rpbench.tasks.protocols.ImportanceWeighted`) the estimate is::

    ĝ = Σ_m (L̂ − L̂_{−m}) ∇θ log q(z_m | x)  +  ∇θ L̂ |_{z fixed}
    L̂_{−m} = log (1/M) (Σ_{j≠m} w_j + ŵ_{−m}),   log ŵ_{−m} = (1/(M−1)) Σ_{j≠m} log w_j

The second term is ``Σ_m w̃_m ∇θ log w_m`` (normalised weights w̃): the decoder's gradient and the
encoder's direct one.  ``L̂_{−m}`` replaces particle m's weight by the geometric mean of the others,
so it does not depend on ``z_m`` and ``E[L̂_{−m} ∇ log q(z_m)] = 0``: unbiased.  It needs
``particles ≥ 2`` (with one particle there is nothing to leave out, and the paper defines none);
``n`` independent bound evaluations are averaged, one signal per particle of each.
"""

from __future__ import annotations

import torch

from rpbench.distributions import log_mean_exp
from rpbench.estimators.base import Estimator, amortizer, as_protocol, per_estimate_gradients
from rpbench.registry import register_estimator
from rpbench.tasks.base import Task, Theta
from rpbench.tasks.protocols import ImportanceWeighted


def vimco_signals(log_w: torch.Tensor) -> torch.Tensor:
    """The learning signals ``L̂ − L̂_{−m}`` of log weights ``(..., M)``: ``(..., M)``, without gradients."""
    log_w = log_w.detach()
    particles = log_w.shape[-1]
    others = (log_w.sum(-1, keepdim=True) - log_w) / (particles - 1)  # log ŵ_{−m}: geometric mean of the others
    diagonal = torch.eye(particles, dtype=torch.bool, device=log_w.device)
    left_out = torch.where(diagonal, others.unsqueeze(-1), log_w.unsqueeze(-2))  # row m: z_m's weight replaced
    return log_mean_exp(log_w).unsqueeze(-1) - log_mean_exp(left_out)


def vimco_surrogate(task: ImportanceWeighted, theta: Theta, z: torch.Tensor) -> torch.Tensor:
    """``mean [L̂ + Σ_m stop_grad(signal_m) log q(z_m)]`` over the bounds of samples ``z`` (detached)."""
    log_q = task.particle_log_prob(theta, z)  # (n, U, M)
    log_w = task.particle_log_joint(theta, z) - log_q
    return (log_mean_exp(log_w) + (vimco_signals(log_w) * log_q).sum(-1)).mean()


@register_estimator
class Vimco(Estimator):
    """VIMCO (Mnih & Rezende 2016): the bound's score function with geometric-mean leave-one-out signals."""

    name = "vimco"
    summary = "score function of the importance-weighted bound, leave-one-out per particle; needs particles >= 2"
    reference = "Mnih & Rezende 2016"
    needs = frozenset({"log-prob", "importance-weighted"})

    @classmethod
    def why_not(cls, task: Task, batch: int) -> str | None:
        reason = super().why_not(task, batch)
        if reason is None and as_protocol(task, ImportanceWeighted, cls.name).particles < 2:
            return "needs particles >= 2 (the leave-one-out signal of one particle is undefined); got particles=1"
        return reason

    def estimate(self, task: Task, samples: int, batch: int, generator: torch.Generator) -> Theta:
        bound = as_protocol(task, ImportanceWeighted, self.name)
        noise = task.noise(generator, (samples, batch))
        return per_estimate_gradients(
            lambda th, eps: vimco_surrogate(bound, th, task.sample(th, eps).detach()),
            task.theta,
            noise,
            amortize=amortizer(task),
        )
