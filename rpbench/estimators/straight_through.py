"""Straight-through estimators without a relaxation of the sample: plain ST and ReinMax.

Both forward the hard sample ``D`` (an exact draw from q: Gumbel-max for the categorical,
``1[φ + l > 0]`` for the Bernoulli) and replace its missing derivative by a surrogate Jacobian that
depends only on ``D`` and the logits θ.  Given ``D`` the estimate is deterministic, so its
expectation (and with it the bias) is a finite sum over ``D`` on an enumerable model.  Both are
biased.  Each estimator is written as an expression with stop-gradients whose value is ``D`` and
whose vector-Jacobian product is the estimator's backward, so it runs under ``torch.func.vmap``
like every surrogate (no custom ``autograd.Function``).

Requires :class:`~rpbench.tasks.protocols.RelaxableLatent` (``logits``, ``perturb`` and the
``latent`` family's ``hard``, ``soft`` and ``event_dims``: 2 for one-hot categorical latents, 1
for binary ones).
"""

from __future__ import annotations

import torch

from rpbench.estimators.base import Estimator, amortizer, as_protocol, per_estimate_gradients
from rpbench.params import ParamSpec, at_least, positive
from rpbench.registry import register_estimator
from rpbench.tasks.base import Task, Theta
from rpbench.tasks.protocols import LatentFamily, RelaxableLatent


def softmax_jvp(probabilities: torch.Tensor, tangent: torch.Tensor) -> torch.Tensor:
    """``(diag(π) − ππᵀ) δ`` over the last axis: the softmax Jacobian's form at ``π``, applied to ``δ``.

    The matrix is symmetric, so the same map is its transpose: what ReinMax's backward applies to
    the incoming gradient at ``π₀`` and at ``π₁``.
    """
    return probabilities * tangent - probabilities * (probabilities * tangent).sum(-1, keepdim=True)


class _StraightThrough(Estimator):
    """Pathwise through ``y(θ, D)``: value the hard sample ``D``, Jacobian the estimator's."""

    needs = frozenset({"relaxable"})
    biased = True
    cost = "n"

    def evaluations(self, task: Task, batch: int) -> int:
        """f once per sample, at the hard sample (the backward reuses that pass)."""
        return batch

    def forward_backward(self, family: LatentFamily, logits: torch.Tensor, hard: torch.Tensor) -> torch.Tensor:
        """``y`` for logits ``(*latent_shape)`` and hard samples ``(*S, *latent_shape)``: ``hard``'s shape."""
        raise NotImplementedError

    def unit_surrogate(self, task: Task, theta: Theta, hard: torch.Tensor) -> torch.Tensor:
        """``f_u(y(θ, D))`` per unit, ``(*S, U)``, for given hard samples: its gradient is the estimate.

        Deterministic given ``D``; tests sum it over every ``D`` weighted by ``q(D)`` for the exact
        expectation of the estimator.
        """
        relaxable = as_protocol(task, RelaxableLatent, self.name)
        return task.objective(theta, self.forward_backward(relaxable.latent, relaxable.logits(theta), hard))

    def estimate(self, task: Task, samples: int, batch: int, generator: torch.Generator) -> Theta:
        relaxable = as_protocol(task, RelaxableLatent, self.name)

        def surrogate(theta: Theta, noise: torch.Tensor) -> torch.Tensor:
            hard = relaxable.latent.hard(relaxable.perturb(theta, noise)).detach()
            return self.unit_surrogate(task, theta, hard).mean()

        noise = task.noise(generator, (samples, batch))
        return per_estimate_gradients(surrogate, task.theta, noise, amortize=amortizer(task))


@register_estimator
class StraightThrough(_StraightThrough):
    """Straight-through: ``y = D + p − stop_grad(p)`` with ``p = softmax(θ/τ)`` (``σ(φ/τ)`` for Bernoulli).

    Bengio, Léonard & Courville (2013), "Estimating or Propagating Gradients Through Stochastic
    Neurons for Conditional Computation", arXiv:1308.3432 (the straight-through estimator); the
    "ST" of Jang, Gu & Poole (2017), ICLR (Table 1), backward through the probabilities (τ = 1).
    The hard sample is an exact draw from q (no relaxation of the forward; Gumbel-max is only
    how the categorical sample is drawn).  ``tau`` scales the logits in the backward only, as in
    the ReinMax README's ST (Liu et al. 2023), ``D + softmax(θ/τ) − stop_grad(softmax(θ/τ))``;
    the default τ = 1 is Bengio et al.'s and Jang et al.'s ST.  Biased.
    """

    name = "st"
    summary = "straight-through: exact hard sample forward, backward through softmax/sigmoid(logits/tau) (biased)"
    reference = "Bengio et al. 2013; Jang et al. 2017"
    params = (
        ParamSpec(
            "tau", float, 1.0, "temperature τ of the backward's probabilities", check=positive, expect="a number > 0"
        ),
    )

    def forward_backward(self, family: LatentFamily, logits: torch.Tensor, hard: torch.Tensor) -> torch.Tensor:
        soft = family.soft(logits, float(self.config["tau"]))
        return hard + soft - soft.detach()


@register_estimator
class ReinMax(_StraightThrough):
    """ReinMax: straight-through with a second-order (Heun) backward.

    Liu, Dong, Liu, Yu & Gao (2023), "Bridging Discrete and Backpropagation: Straight-Through and
    Beyond", NeurIPS (arXiv:2304.08612), the ReinMax algorithm; the backward of ``ReinMaxCore`` in
    microsoft/ReinMax ``reinmax/reinmax.py``.  With ``π₀ = softmax(θ)``, the sample ``D ~ π₀`` and
    ``π₁ = ½(softmax(θ/τ) + D)``, the gradient at θ for an incoming gradient ``g = ∂f/∂D`` is

        ``2 (diag(π₁) − π₁π₁ᵀ) g − ½ (diag(π₀) − π₀π₀ᵀ) g``

    (their final centring over the classes is a no-op: each term already sums to zero).  Here
    ``y = D + 2 J(π₁) δ − ½ J(π₀) δ`` with ``δ = θ − stop_grad(θ)`` (value 0) and ``π₀, π₁``
    held fixed, whose vector-Jacobian product is exactly that backward (tested against the formula).

    Bernoulli latents are the 2-class categorical with logits ``(φ, 0)``: the formula then reduces to
    ``∂/∂φ = [2 p₁(1 − p₁) − ½ p₀(1 − p₀)] g`` with ``p₀ = σ(φ)``, ``p₁ = ½(σ(φ/τ) + b)``, which is
    what is computed (tested equal to the 2-class form).  ``tau``: the reference code has no
    default and refuses τ < 1 ("ReinMax prefers to set tau >= 1"); the default here is τ = 1, the
    least it accepts.  Biased (second-order accurate in the authors' analysis).
    """

    name = "reinmax"
    summary = "ReinMax: straight-through with a second-order (Heun) backward, tau >= 1 (biased)"
    reference = "Liu et al. 2023"
    params = (
        ParamSpec(
            "tau", float, 1.0, "temperature τ of π₁ = ½(softmax(θ/τ) + D)", check=at_least(1.0), expect="a number >= 1"
        ),
    )

    def forward_backward(self, family: LatentFamily, logits: torch.Tensor, hard: torch.Tensor) -> torch.Tensor:
        tau = float(self.config["tau"])
        fixed = logits.detach()
        delta = logits - fixed  # zero, with θ's derivative
        if family.event_dims == 1:  # Bernoulli: the 2-class categorical with logits (φ, 0)
            p0 = torch.sigmoid(fixed)
            p1 = 0.5 * (torch.sigmoid(fixed / tau) + hard)
            return hard + (2.0 * p1 * (1.0 - p1) - 0.5 * p0 * (1.0 - p0)) * delta
        pi0 = torch.softmax(fixed, -1)
        pi1 = 0.5 * (torch.softmax(fixed / tau, -1) + hard)
        return hard + 2.0 * softmax_jvp(pi1, delta) - 0.5 * softmax_jvp(pi0, delta)
