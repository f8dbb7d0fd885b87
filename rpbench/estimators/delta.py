"""Delta-method control variates: a second-order Taylor expansion of f at the mean.

``h(x) = f(μ̂) + ∇f(μ̂)ᵀ(x − μ̂) + ½ (x − μ̂)ᵀ H(μ̂) (x − μ̂)`` with ``μ̂ = stop_grad(μ)`` has a
closed-form Gaussian expectation ``E_q[h] = f(μ̂) + ∇f(μ̂)ᵀ(μ − μ̂) + ½ (μ − μ̂)ᵀH(μ − μ̂)
+ ½ Σ_d H_dd σ_d²``, so ``β (∇θ E_q[h] − ĝ_h)`` is a zero-mean correction for any base
estimate ``ĝ_h`` of ``∇θ E_q[h]``.  Mohamed, Rosca, Figurnov & Mnih (2020), JMLR 21(132), §8.1
("Delta Method Control Variates", the case study that defines it) and §7.4.3 ("Designing Control
Variates": delta methods); Paisley, Blei & Jordan (2012) for the score-function case.  Requires
:class:`~rpbench.tasks.protocols.GaussianLatent` (groups ``mu`` and ``sigma``; f of one unit at
points ``(..., D)``).
"""

from __future__ import annotations

import torch
from torch.func import grad, hessian

from rpbench.estimators.base import Estimator, as_protocol, per_estimate_gradients
from rpbench.params import ParamSpec
from rpbench.registry import register_estimator
from rpbench.tasks.base import Task, Theta
from rpbench.tasks.protocols import GaussianLatent

BETA = ParamSpec("cv_beta", float, 1.0, "weight β of the control variate", expect="a real number")


class TaylorExpansion:
    """Second-order Taylor expansion of ``task.objective`` at the current mean, and its moments."""

    def __init__(self, task: Task) -> None:
        as_protocol(task, GaussianLatent, "delta method")
        theta = task.theta
        self.center = theta["mu"].detach()
        value_at = lambda x: task.objective(theta, x).sum()  # noqa: E731  (one unit)
        with torch.no_grad():
            self.value = value_at(self.center)
        self.gradient = grad(value_at)(self.center)
        self.hessian = hessian(value_at)(self.center)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """``h(x)`` for samples ``x`` of shape ``(..., D)``: shape ``(..., 1)``, like the objective."""
        offset = x - self.center
        quadratic = 0.5 * torch.einsum("...i,ij,...j->...", offset, self.hessian, offset)
        return (self.value + offset @ self.gradient + quadratic).unsqueeze(-1)

    def expectation(self, theta: Theta) -> torch.Tensor:
        """``E_{N(μ, diag σ²)}[h]``, differentiable in μ and σ."""
        offset = theta["mu"] - self.center
        curvature = torch.diagonal(self.hessian)
        return (
            self.value
            + offset @ self.gradient
            + 0.5 * (offset @ self.hessian @ offset + curvature @ theta["sigma"] ** 2)
        )


@register_estimator
class ScoreDelta(Estimator):
    """Score function with the delta-method control variate.

    ``ĝ = (1/n) Σ_i (f(z_i) − β h(z_i)) ∇θ log q(z_i) + β ∇θ E_q[h]``.
    Mohamed et al. (2020), JMLR 21(132), §8.1; Paisley, Blei & Jordan (2012), ICML.
    """

    name = "score+delta"
    summary = "score function, delta-method (2nd-order Taylor) control variate"
    reference = "Mohamed et al. 2020 §8.1; Paisley et al. 2012"
    needs = frozenset({"log-prob", "gaussian", "differentiable"})
    params = (BETA,)

    def estimate(self, task: Task, samples: int, batch: int, generator: torch.Generator) -> Theta:
        beta = float(self.config["cv_beta"])
        taylor = TaylorExpansion(task)
        noise = task.noise(generator, (samples, batch))

        def surrogate(theta: Theta, eps: torch.Tensor) -> torch.Tensor:
            z = task.sample(theta, eps).detach()
            f = task.objective(theta, z)
            weight = f.detach() - beta * taylor(z)
            return (f + weight * task.log_prob(theta, z)).mean() + beta * taylor.expectation(theta)

        return per_estimate_gradients(surrogate, task.theta, noise)


@register_estimator
class PathwiseDelta(Estimator):
    """Pathwise estimator with the delta-method control variate.

    ``ĝ = (1/n) Σ_i ∇θ [f(g_θ(ε_i)) − β h(g_θ(ε_i))] + β ∇θ E_q[h]``: the pathwise gradient
    minus its first-order Taylor approximation, plus that approximation's mean.
    Mohamed et al. (2020), JMLR 21(132), §8.1; Miller et al. (2017), "Reducing reparameterization
    gradient variance", NeurIPS.
    """

    name = "pathwise+delta"
    summary = "pathwise, delta-method (2nd-order Taylor) control variate"
    reference = "Mohamed et al. 2020 §8.1; Miller et al. 2017"
    needs = frozenset({"reparameterizable", "gaussian", "differentiable"})
    params = (BETA,)

    def estimate(self, task: Task, samples: int, batch: int, generator: torch.Generator) -> Theta:
        beta = float(self.config["cv_beta"])
        taylor = TaylorExpansion(task)
        noise = task.noise(generator, (samples, batch))

        def surrogate(theta: Theta, eps: torch.Tensor) -> torch.Tensor:
            x = task.sample(theta, eps)
            return (task.objective(theta, x) - beta * taylor(x)).mean() + beta * taylor.expectation(theta)

        return per_estimate_gradients(surrogate, task.theta, noise)
