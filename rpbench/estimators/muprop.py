"""MuProp: the score function with a first-order Taylor control variate around the mean-field point.

Gu, Levine, Sutskever & Mnih (2016), "MuProp: Unbiased Backpropagation for Stochastic Neural
Networks", ICLR (arXiv:1511.05176).  With ``μ̄ = E_q[b]`` (the probabilities ``softmax(θ)`` or
``σ(φ)``: the "mean-field" pass that replaces each sample by its mean) and
``h(b) = f(μ̄) + ∇f(μ̄)ᵀ(b − μ̄)``::

    ĝ = [f(b) − h(b)] ∇θ log q(b) + ∇f(μ̄)ᵀ ∇θ μ̄(θ)  (+ ∇θ f(b) where f depends on θ)

which is unbiased because ``E_q[h] = f(μ̄)`` and the expansion point is held fixed.

What is expanded: the task's objective per unit, ``f_u(b)`` (a VAE's ``log p(x_u | b) − KL(q ‖ p)``
with the KL in closed form), as a function of the latent alone: ``f(μ̄)`` and ``∇_b f(μ̄)`` are
computed at the current θ with θ held fixed (the model's parameters too, so the control variate
adds no term to the decoder's gradient; this is what ``task.without_model_gradient`` gives REBAR),
once per unit (units are independent: ``f_u`` reads only ``b_u``).  The tensorflow/models
``research/rebar`` MuProp expands the learning signal ``log p(x, b) − log q(b | x)`` instead; with
a uniform prior, ``log p(b) − log q(b | x)`` is linear in b, so its expansion is exact and the two
differ only by the zero-mean term ``−∇θ log q(b)`` that the closed-form KL leaves out.  That code
also scales the control variate by learned factors and adds an input-dependent baseline; this is
the plain MuProp estimator of Gu et al. (scale 1, no baseline).

Requires :class:`~rpbench.tasks.protocols.RelaxableLatent` (``logits``, ``perturb``, ``event_dims``
and the ``latent`` family's ``hard`` and ``soft``: f must accept the mean ``μ̄``, a relaxed
latent) and ``log-prob``.
"""

from __future__ import annotations

from typing import cast

import torch

from rpbench.estimators.base import Estimator, amortizer, as_protocol, per_estimate_gradients, tree_map
from rpbench.registry import register_estimator
from rpbench.tasks.base import Task, Theta
from rpbench.tasks.protocols import RelaxableLatent


class MeanFieldExpansion:
    """``h(b) = f(μ̄) + ∇f(μ̄)ᵀ(b − μ̄)`` per unit at the current θ, all held fixed (no gradient to θ)."""

    def __init__(self, task: Task, name: str = "muprop") -> None:
        relaxable = as_protocol(task, RelaxableLatent, name)
        fixed = tree_map(torch.detach, task.theta)
        self.event_dims = relaxable.event_dims
        with torch.enable_grad():
            center = relaxable.latent.soft(relaxable.logits(fixed), 1.0).detach().requires_grad_(True)
            value = task.objective(fixed, center)  # (U,): f_u(μ̄_u), the mean-field pass
            if value.requires_grad:  # ∂f_u/∂b_u at μ̄_u from one backward: f_u reads only b_u
                (slope,) = torch.autograd.grad(value.sum(), center, allow_unused=True, materialize_grads=True)
            else:  # an f that is flat in b along the path (a step): the expansion is a constant baseline
                slope = torch.zeros_like(center)
        self.center, self.value, self.slope = center.detach(), value.detach(), slope.detach()

    def __call__(self, b: torch.Tensor) -> torch.Tensor:
        """``h(b)`` for latents ``(*S, *latent_shape)``: ``(*S, U)``."""
        return self.value + self.dot(b - self.center)

    def dot(self, tangent: torch.Tensor) -> torch.Tensor:
        """``∇f(μ̄)ᵀ t`` per unit for ``t`` of the latent's shape (with any leading axes): ``(*S, U)``."""
        return (self.slope * tangent).sum(tuple(range(-self.event_dims, 0)))


def muprop_surrogate(
    task: Task, theta: Theta, noise: torch.Tensor, expansion: MeanFieldExpansion, correction: bool = True
) -> torch.Tensor:
    """Surrogate whose gradient is the MuProp estimate for one estimate's noise ``(n, *latent_shape)``.

    ``mean_{i,u} [f_u(b_i) + stop_grad(f_u(b_i) − h_u(b_i)) log q_u(b_i)] + mean_u ∇f_u(μ̄)ᵀ μ̄_u(θ)``;
    ``correction=False`` leaves out the analytic term (a deliberately wrong variant for the tests).
    """
    relaxable = cast(RelaxableLatent, task)  # checked by the estimator
    logits = relaxable.logits(theta)
    hard = relaxable.latent.hard(relaxable.perturb(theta, noise)).detach()
    f = task.objective(theta, hard)  # (n, U)
    score = ((f.detach() - expansion(hard)) * task.log_prob(theta, hard)).mean()
    total = f.mean() + score
    return total + expansion.dot(relaxable.latent.soft(logits, 1.0)).mean() if correction else total


@register_estimator
class MuProp(Estimator):
    """MuProp: score function minus the first-order Taylor expansion of f at the mean-field point,
    plus that expansion's analytic gradient.

    Gu, Levine, Sutskever & Mnih (2016), ICLR.  Unbiased.  The mean-field pass (f and its
    slope at ``μ̄``) depends on θ only, not on the noise: it is computed once per :meth:`estimate`
    call, shared by the K estimates, and counted once per estimate in :meth:`evaluations` (a
    training step, one estimate, pays it every time).
    """

    name = "muprop"
    summary = "MuProp: score function with a 1st-order Taylor control variate at the mean-field point"
    reference = "Gu et al. 2016"
    needs = frozenset({"relaxable", "log-prob"})
    cost = "n + 1"
    correction = True

    def evaluations(self, task: Task, batch: int) -> int:
        """f at each of the n samples, and once (with its slope) at the mean-field point ``μ̄``."""
        return batch + 1

    def estimate(self, task: Task, samples: int, batch: int, generator: torch.Generator) -> Theta:
        as_protocol(task, RelaxableLatent, self.name)
        expansion = MeanFieldExpansion(task, self.name)
        noise = task.noise(generator, (samples, batch))
        return per_estimate_gradients(
            lambda th, eps: muprop_surrogate(task, th, eps, expansion, self.correction),
            task.theta,
            noise,
            amortize=amortizer(task),
        )
