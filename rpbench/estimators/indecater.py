"""IndeCateR: the score function Rao-Blackwellised over each independent categorical variable.

De Smet, Sansone & Zuidberg Dos Martires (2023), "Differentiable Sampling of Categorical
Distributions Using the CatLog-Derivative Trick", NeurIPS (arXiv:2311.12569), the IndeCateR
estimator.  For independent categorical latents ``b_l`` (``l = 1…L`` per unit, ``C``
classes each; Bernoulli latents are ``C = 2``) the CatLog-derivative trick sums the score of
each variable over its ``C`` values with the other variables as drawn::

    ĝ = (1/n) Σ_i Σ_l Σ_c ∇θ q_l(c) · f(b_{i,−l}, b_{i,l} = c)  (+ ∇θ f(b_i) where f depends on θ)

Unbiased.  f's own parameters (a decoder, a closed-form KL) take the gradient at the sample itself,
``∇θ f(b_i)``, as the authors' DVAE code does (``ML-KULeuven/catlog``, ``DVAE/dave.py``: the loss
of the sample plus the stop-gradient sum).  Per unit: the variants replace variable l in every
unit at once, which is exact because ``f_u`` reads only unit u's latents.  The L·C variants of each
sample are built as one tensor and f is evaluated on it once.

Requires :class:`~rpbench.tasks.protocols.RelaxableLatent` (``logits``, ``perturb``,
``latent_shape`` and the ``latent`` family's ``hard``, ``soft`` and ``event_dims``); the objective
must accept hard latents with extra leading axes ``(n, L, C, *latent_shape)``.
"""

from __future__ import annotations

from typing import cast

import torch

from rpbench.estimators.base import Estimator, amortizer, as_protocol, per_estimate_gradients, tree_map
from rpbench.registry import register_estimator
from rpbench.tasks.base import Task, Theta
from rpbench.tasks.protocols import RelaxableLatent


def variable_sizes(task: RelaxableLatent) -> tuple[int, int]:
    """``(L, C)`` of one unit: variables and the values each takes (2 for Bernoulli latents)."""
    shape = task.latent_shape
    return (shape[1], shape[2]) if task.event_dims == 2 else (shape[1], 2)


def substituted(hard: torch.Tensor, event_dims: int) -> torch.Tensor:
    """Every sample with one variable set to each of its values: ``(n, L, C, *latent_shape)``.

    ``hard`` is ``(n, U, L, C)`` one-hot (``event_dims`` 2) or ``(n, U, L)`` binary (1); entry
    ``[i, l, c]`` is sample i with variable l of every unit set to value c.
    """
    dtype, device = hard.dtype, hard.device
    if event_dims == 2:
        variables, classes = hard.shape[-2:]
        select = torch.eye(variables, dtype=dtype, device=device).reshape(
            variables, 1, 1, variables, 1
        )  # (L', 1, U, L, 1)
        values = torch.eye(classes, dtype=dtype, device=device).reshape(1, classes, 1, 1, classes)  # (1, C', U, 1, C)
    else:
        variables = hard.shape[-1]
        select = torch.eye(variables, dtype=dtype, device=device).reshape(variables, 1, 1, variables)  # (L', 1, U, L)
        values = torch.arange(2, dtype=dtype, device=device).reshape(1, 2, 1, 1)  # (1, 2, U, 1)
    rows = hard.unsqueeze(1).unsqueeze(1)
    return rows * (1 - select) + select * values


def value_probabilities(task: RelaxableLatent, logits: torch.Tensor) -> torch.Tensor:
    """``q_l(c)`` per unit, ``(U, L, C)``: ``softmax`` over classes, or ``(1 − σ(φ), σ(φ))`` for Bernoulli."""
    probabilities = task.latent.soft(logits, 1.0)
    if task.event_dims == 2:
        return probabilities
    return torch.stack([1 - probabilities, probabilities], dim=-1)


def indecater_surrogate(task: Task, theta: Theta, noise: torch.Tensor, shift: int = 0) -> torch.Tensor:
    """Surrogate whose gradient is the IndeCateR estimate for one estimate's noise ``(n, *latent_shape)``.

    ``mean_{i,u} [f_u(b_i) + Σ_{l,c} q_{u,l}(c) stop_grad(f_u(b_{i,−l}, c))]``.  ``shift`` ≠ 0 pairs
    the weights of variable l with the variants of variable l + shift (a deliberately wrong variant
    for the tests).
    """
    relaxable = cast(RelaxableLatent, task)  # checked by the estimator
    logits = relaxable.logits(theta)
    hard = relaxable.latent.hard(relaxable.perturb(theta, noise)).detach()
    f = task.objective(theta, hard)  # (n, U): f's own parameters, at the sample
    fixed = tree_map(torch.detach, theta)
    variants = task.objective(fixed, substituted(hard, relaxable.event_dims)).detach()  # (n, L, C, U)
    if shift:
        variants = variants.roll(shift, dims=1)
    weighted = torch.einsum("ulc,nlcu->nu", value_probabilities(relaxable, logits), variants)
    return (f + weighted).mean()


@register_estimator
class IndeCateR(Estimator):
    """IndeCateR: per-variable Rao-Blackwellised score function for independent categorical latents.

    De Smet, Sansone & Zuidberg Dos Martires (2023), NeurIPS.  Unbiased; ``L·C`` variants
    of f per sample (``2·L`` for Bernoulli latents) besides f at the sample itself.
    """

    name = "indecater"
    summary = "IndeCateR: score function summed over each variable's C values, others as drawn"
    reference = "De Smet et al. 2023"
    needs = frozenset({"relaxable"})
    cost = "(L·C + 1)·n"
    shift = 0

    def evaluations(self, task: Task, batch: int) -> int:
        """f at the sample and at its L·C one-variable variants (Bernoulli: C = 2), per sample."""
        variables, values = variable_sizes(as_protocol(task, RelaxableLatent, self.name))
        return (variables * values + 1) * batch

    def memory_factor(self, task: Task) -> float:
        """The L·C variants of each sample are evaluated at once (without gradients) beside the sample."""
        variables, values = variable_sizes(as_protocol(task, RelaxableLatent, self.name))
        return float(variables * values + 1)

    def estimate(self, task: Task, samples: int, batch: int, generator: torch.Generator) -> Theta:
        as_protocol(task, RelaxableLatent, self.name)
        noise = task.noise(generator, (samples, batch))
        return per_estimate_gradients(
            lambda th, eps: indecater_surrogate(task, th, eps, self.shift),
            task.theta,
            noise,
            amortize=amortizer(task),
        )
