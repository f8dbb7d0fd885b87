"""Continuous relaxations of discrete latents: Gumbel-Softmax, straight-through, Gumbel-Rao.

They apply to tasks that are ``relaxable`` (categorical latents with Gumbel noise, Bernoulli
latents with logistic noise; see :mod:`rpbench.distributions`) and whose objective accepts
relaxed (continuous) latents.  All three are biased for any temperature τ > 0.  Requires
:class:`~rpbench.tasks.protocols.RelaxableLatent` (``logits``, ``perturb``, ``uniform`` and the
``latent`` family's ``hard``, ``soft`` and ``conditional``).
"""

from __future__ import annotations

import torch

from rpbench.estimators.base import Estimator, amortizer, as_protocol, per_estimate_gradients
from rpbench.params import ParamSpec, at_least, positive
from rpbench.registry import register_estimator
from rpbench.tasks.base import Task, Theta
from rpbench.tasks.protocols import RelaxableLatent

TAU = ParamSpec("tau", float, 1.0, "temperature τ of the relaxation", check=positive, expect="a number > 0")


def _straight_through(hard: torch.Tensor, soft: torch.Tensor) -> torch.Tensor:
    """Forward value ``hard``, gradient of ``soft``."""
    return hard + soft - soft.detach()


class _Relaxed(Estimator):
    """Pathwise through a relaxed latent built from the perturbed logits ``z``."""

    needs = frozenset({"relaxable"})
    biased = True
    params = (TAU,)

    @staticmethod
    def latent(task: RelaxableLatent, z: torch.Tensor, tau: float) -> torch.Tensor:
        """The latent that f is evaluated at, from perturbed logits ``z`` ``(*S, *latent_shape)``: same shape."""
        raise NotImplementedError

    def estimate(self, task: Task, samples: int, batch: int, generator: torch.Generator) -> Theta:
        tau = float(self.config["tau"])
        relaxable = as_protocol(task, RelaxableLatent, self.name)

        def surrogate(theta: Theta, noise: torch.Tensor) -> torch.Tensor:
            return task.objective(theta, self.latent(relaxable, relaxable.perturb(theta, noise), tau)).mean()

        noise = task.noise(generator, (samples, batch))
        return per_estimate_gradients(surrogate, task.theta, noise, amortize=amortizer(task))


@register_estimator
class GumbelSoftmax(_Relaxed):
    """Gumbel-Softmax / Concrete: ``ĝ = ∇θ f(softmax((α + g)/τ))`` (binary Concrete for Bernoulli).

    Jang, Gu & Poole (2017), "Categorical Reparameterization with Gumbel-Softmax", ICLR;
    Maddison, Mnih & Teh (2017), "The Concrete Distribution", ICLR.  Biased: f is evaluated at a
    relaxed sample; the bias vanishes as τ → 0 while the variance grows.
    """

    name = "gumbel"
    summary = "Gumbel-Softmax / Concrete relaxation at temperature tau (biased)"
    reference = "Jang et al. 2017; Maddison et al. 2017"

    @staticmethod
    def latent(task: RelaxableLatent, z: torch.Tensor, tau: float) -> torch.Tensor:
        return task.latent.soft(z, tau)


@register_estimator
class StraightThroughGumbel(_Relaxed):
    """Straight-through Gumbel-Softmax: forward the hard sample, backward through the relaxation.

    Jang, Gu & Poole (2017), ICLR, §2.2 (ST Gumbel-Softmax); Bengio, Léonard & Courville (2013)
    (straight-through).  Biased.
    """

    name = "st-gumbel"
    summary = "straight-through Gumbel-Softmax: hard forward, relaxed backward (biased)"
    reference = "Jang et al. 2017; Bengio et al. 2013"

    @staticmethod
    def latent(task: RelaxableLatent, z: torch.Tensor, tau: float) -> torch.Tensor:
        return _straight_through(task.latent.hard(z).detach(), task.latent.soft(z, tau))


@register_estimator
class GumbelRao(Estimator):
    """Gumbel-Rao: straight-through with its backward Jacobian averaged over ``m`` draws of the
    perturbed logits given the hard sample — a Rao-Blackwellisation of ST-Gumbel-Softmax with the
    same expectation and no more variance.

    Paulus, Maddison & Krause (2021), "Rao-Blackwellizing the Straight-Through Gumbel-Softmax
    Gradient Estimator", ICLR.  Biased (as ST-Gumbel).
    """

    name = "gumbel-rao"
    summary = "Gumbel-Rao: ST-Gumbel with the relaxation averaged over m conditional samples (biased)"
    reference = "Paulus et al. 2021"
    needs = frozenset({"relaxable"})
    biased = True
    params = (
        TAU,
        ParamSpec("m", int, 10, "conditional samples M per hard sample", check=at_least(1), expect="an integer >= 1"),
    )

    def memory_factor(self, task: Task) -> float:
        """The relaxation is evaluated for M conditional draws of every sample."""
        return float(self.config["m"])

    def estimate(self, task: Task, samples: int, batch: int, generator: torch.Generator) -> Theta:
        tau, draws = float(self.config["tau"]), int(self.config["m"])
        relaxable = as_protocol(task, RelaxableLatent, self.name)
        family = relaxable.latent
        noise = task.noise(generator, (samples, batch))
        conditional_noise = relaxable.uniform(generator, (samples, batch, draws))

        def surrogate(theta: Theta, eps: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
            logits = relaxable.logits(theta)
            hard = family.hard(logits + eps).detach()  # (n, latent...)
            # Noise drawn given the hard sample, then held fixed: the Jacobian is ST's, ∂soft(α + g)/∂α.
            given = family.conditional(logits.detach(), hard.unsqueeze(1), v) - logits.detach()
            soft = family.soft(logits + given, tau).mean(1)  # (n, latent...)
            return task.objective(theta, _straight_through(hard, soft)).mean()

        return per_estimate_gradients(surrogate, task.theta, noise, conditional_noise, amortize=amortizer(task))
