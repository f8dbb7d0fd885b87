"""Antithetic estimators for Bernoulli latents: ARM and DisARM.

With logits φ, logistic noise ``l`` (``u = σ(l)``) and the antithetic pair ``b⁺ = 1[φ + l > 0]``,
``b⁻ = 1[φ − l > 0]`` (each marginally ``Bern(σ(φ))``), the gradient with respect to the logits
of unit u is estimated from that unit's own objective ``f_u``; the parameters' gradient follows
by the chain rule through φ(θ), and ``½(∇θ f(b⁺) + ∇θ f(b⁻))`` covers f's own parameters.
Requires :class:`~rpbench.tasks.protocols.BernoulliLatent` (``logits``, logistic ``noise``,
``latent.hard``).
"""

from __future__ import annotations

import torch

from rpbench.estimators.base import Estimator, as_protocol, per_estimate_gradients
from rpbench.registry import register_estimator
from rpbench.tasks.base import Task, Theta
from rpbench.tasks.protocols import BernoulliLatent


class _Antithetic(Estimator):
    needs = frozenset({"bernoulli"})
    cost = "2n"

    def evaluations(self, task: Task, batch: int) -> int:
        """f at both samples of each antithetic pair."""
        return 2 * batch

    @staticmethod
    def logit_gradient(
        f_plus: torch.Tensor,
        f_minus: torch.Tensor,
        b_plus: torch.Tensor,
        b_minus: torch.Tensor,
        noise: torch.Tensor,
        logits: torch.Tensor,
    ) -> torch.Tensor:
        raise NotImplementedError

    def estimate(self, task: Task, samples: int, batch: int, generator: torch.Generator) -> Theta:
        bernoulli = as_protocol(task, BernoulliLatent, self.name)

        def surrogate(theta: Theta, noise: torch.Tensor) -> torch.Tensor:
            logits = bernoulli.logits(theta)
            b_plus = bernoulli.latent.hard(logits + noise).detach()
            b_minus = bernoulli.latent.hard(logits - noise).detach()
            f_plus, f_minus = task.objective(theta, b_plus), task.objective(theta, b_minus)
            g = self.logit_gradient(f_plus.detach(), f_minus.detach(), b_plus, b_minus, noise, logits.detach())
            return (0.5 * (f_plus + f_minus) + (g.detach() * logits).sum(-1)).mean()

        return per_estimate_gradients(surrogate, task.theta, task.noise(generator, (samples, batch)))


@register_estimator
class ARM(_Antithetic):
    """ARM: ``∂/∂φ = (f(b⁺) − f(b⁻)) (u − ½)``.

    Yin & Zhou (2019), "ARM: Augment-REINFORCE-Merge Gradient for Stochastic Binary Networks",
    ICLR.  Unbiased.
    """

    name = "arm"
    summary = "ARM antithetic estimator for Bernoulli latents"
    reference = "Yin & Zhou 2019"

    @staticmethod
    def logit_gradient(f_plus, f_minus, b_plus, b_minus, noise, logits):
        return (f_plus - f_minus).unsqueeze(-1) * (torch.sigmoid(noise) - 0.5)


@register_estimator
class DisARM(_Antithetic):
    """DisARM: ``∂/∂φ_d = ½ (f(b⁺) − f(b⁻)) (−1)^{b⁻_d} 1[b⁺_d ≠ b⁻_d] σ(|φ_d|)``.

    Dong, Mnih & Tucker (2020), "DisARM: An Antithetic Gradient Estimator for Binary Latent
    Variables", NeurIPS (arXiv:2006.10680).  Unbiased, variance no larger than ARM's.
    """

    name = "disarm"
    summary = "DisARM antithetic estimator for Bernoulli latents (ARM with the noise integrated out)"
    reference = "Dong, Mnih & Tucker 2020"

    @staticmethod
    def logit_gradient(f_plus, f_minus, b_plus, b_minus, noise, logits):
        sign = 1.0 - 2.0 * b_minus
        return (
            0.5
            * (f_plus - f_minus).unsqueeze(-1)
            * sign
            * (b_plus != b_minus).to(logits.dtype)
            * torch.sigmoid(logits.abs())
        )
