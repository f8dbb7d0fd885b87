"""Discrete latent distributions with the noise constructions that relaxed estimators need.

Both families perturb their logits with noise and take a hard threshold:

* :class:`Categorical` — Gumbel-max: ``b = onehot(argmax(α + g))``, ``g ~ Gumbel(0, 1)``; the
  relaxation is ``softmax((α + g)/τ)`` (Jang, Gu & Poole 2017; Maddison, Mnih & Teh 2017).
* :class:`Bernoulli` — logistic: ``b = 1[φ + l > 0]``, ``l ~ Logistic(0, 1)``; the relaxation is
  ``σ((φ + l)/τ)`` (the binary Concrete).

``conditional(logits, b, v)`` draws the perturbed logits *given* the hard sample ``b``,
reparameterized by uniform noise ``v`` so that it is differentiable in the logits (Tucker et al.
2017, REBAR, appendix; Paulus, Maddison & Krause 2021, Gumbel-Rao).  Shapes: categorical logits
``(..., L, C)``, Bernoulli logits ``(..., L)``; ``log_prob`` sums the latent axes.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

_TINY = 1e-12


def _uniform(
    generator: torch.Generator, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """Uniform noise in the open interval (0, 1), at most ``1 − eps`` of ``dtype`` (in float32 that is
    1 − 1e-7 as float32 rounds it, the bound used before float64; in float64 it clips only round-off)."""
    u = torch.rand(*shape, generator=generator, dtype=dtype, device=device)
    return u.clamp(_TINY, 1.0 - torch.finfo(dtype).eps)


class Categorical:
    """``L`` independent categorical variables with ``C`` classes, one-hot samples."""

    event_dims = 2

    @staticmethod
    def perturbation(
        generator: torch.Generator, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device
    ) -> torch.Tensor:
        """Gumbel(0, 1) noise."""
        return -torch.log(-torch.log(_uniform(generator, shape, dtype, device)))

    @staticmethod
    def hard(z: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(z).scatter(-1, z.argmax(-1, keepdim=True), 1.0)  # one-hot (vmap-friendly)

    @staticmethod
    def soft(z: torch.Tensor, tau: float | torch.Tensor) -> torch.Tensor:
        return torch.softmax(z / tau, dim=-1)

    @staticmethod
    def log_prob(logits: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (b * torch.log_softmax(logits, -1)).sum((-2, -1))

    @staticmethod
    def kl_to_uniform(logits: torch.Tensor) -> torch.Tensor:
        """``KL(q ‖ uniform)`` summed over the L variables."""
        log_q = torch.log_softmax(logits, -1)
        return (log_q.exp() * log_q).sum((-2, -1)) + logits.shape[-2] * math.log(logits.shape[-1])

    @staticmethod
    def conditional(logits: torch.Tensor, b: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Gumbel-perturbed logits given ``argmax = b``: the top is ``log Z + Gumbel``, the rest
        truncated below it (``−log(E_j e^{−α_j} + E_top / Z)``, ``E = −log v``)."""
        log_e = torch.log(-torch.log(v))
        log_z = torch.logsumexp(logits, -1, keepdim=True)
        top = log_z - (b * log_e).sum(-1, keepdim=True)  # log Z − log E_top
        others = -torch.logaddexp(log_e - logits, -top)
        return torch.where(b > 0, top, others)


class Bernoulli:
    """``L`` independent Bernoulli variables with logits φ, samples in {0, 1}."""

    event_dims = 1

    @staticmethod
    def perturbation(
        generator: torch.Generator, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device
    ) -> torch.Tensor:
        """Logistic(0, 1) noise ``log u − log(1 − u)``."""
        u = _uniform(generator, shape, dtype, device)
        return torch.log(u) - torch.log1p(-u)

    @staticmethod
    def hard(z: torch.Tensor) -> torch.Tensor:
        return (z > 0).to(z.dtype)

    @staticmethod
    def soft(z: torch.Tensor, tau: float | torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(z / tau)

    @staticmethod
    def log_prob(logits: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (b * F.logsigmoid(logits) + (1 - b) * F.logsigmoid(-logits)).sum(-1)

    @staticmethod
    def kl_to_uniform(logits: torch.Tensor) -> torch.Tensor:
        """``KL(Bern(σ(φ)) ‖ Bern(½))`` summed over the L variables."""
        p = torch.sigmoid(logits)
        return (p * F.logsigmoid(logits) + (1 - p) * F.logsigmoid(-logits)).sum(-1) + logits.shape[-1] * math.log(2.0)

    @staticmethod
    def conditional(logits: torch.Tensor, b: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """``φ + logit(u')`` with ``u' = b(vθ + 1 − θ) + (1 − b) v (1 − θ)``, θ = σ(φ).

        Written in the equivalent forms ``softplus(φ + log v) − log(1 − v)`` (b = 1, positive by
        construction) and ``log v − softplus(log(1 − v) − φ)`` (b = 0, negative), which keep the
        sign of ``b`` in float32 where ``1 − θ`` loses precision.
        """
        log_v, log_not_v = torch.log(v), torch.log1p(-v)
        above = F.softplus(logits + log_v) - log_not_v
        below = log_v - F.softplus(log_not_v - logits)
        return torch.where(b > 0, above, below)


def log_mean_exp(log_w: torch.Tensor) -> torch.Tensor:
    """``log (1/M) Σ_m exp(log_w_m)`` over the last axis of M log weights, computed stably: one
    evaluation of the M-sample importance-weighted bound (Burda, Grosse & Salakhutdinov 2016)."""
    return torch.logsumexp(log_w, -1) - math.log(log_w.shape[-1])
