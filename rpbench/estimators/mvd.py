"""Measure-valued derivatives for the diagonal Gaussian.

For ``x ~ N(μ, σ²)`` the derivative of the density splits into a difference of two densities
(Pflug 1989; Mohamed et al. 2020, JMLR 21(132), §6, Table 1):

* mean:  ``∂_μ E[f] = 1/(σ√(2π)) · (E[f(μ + σW)] − E[f(μ − σW)])``, ``W ~ Weibull(√2, 2)``
  (a standard Rayleigh variable); the two sides share ``W`` (coupling).
* scale: ``∂_σ E[f] = 1/σ · (E[f(μ + σM)] − E[f(μ + σε)])``, ``M`` double-sided Maxwell and
  ``ε ~ N(0, 1)``; coupled through ``ε = M·U`` with ``U ~ U(0, 1)``, which is standard normal.

In D dimensions coordinate d is perturbed while the others keep a shared sample from q, so each
sample costs 4·D evaluations of f.  The estimator needs no derivative of f (it is unbiased on the
step function).  Requires :class:`~rpbench.tasks.protocols.GaussianLatent` (groups ``mu`` and
``sigma``, an objective that takes points with any leading axes).
"""

from __future__ import annotations

import math

import torch

from rpbench.estimators.base import Estimator, as_protocol
from rpbench.registry import register_estimator
from rpbench.tasks.base import Task, Theta
from rpbench.tasks.protocols import GaussianLatent


def _replace_diagonal(x: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """``out[..., d, :] = x[..., :]`` with ``out[..., d, d] = values[..., d]``: shape ``(..., D, D)``."""
    dim = x.shape[-1]
    eye = torch.eye(dim, dtype=torch.bool, device=x.device)
    rows = x.unsqueeze(-2).expand(*x.shape[:-1], dim, dim)
    return torch.where(eye, values.unsqueeze(-1).expand_as(rows), rows)


@register_estimator
class MeasureValued(Estimator):
    """Measure-valued gradient estimator (Weibull for the mean, double-sided Maxwell for the scale).

    Pflug (1989); Heidergott & Vázquez-Abad (2000); Mohamed et al. (2020), JMLR 21(132), §6.
    """

    name = "mvd"
    summary = "measure-valued derivative (Weibull / double-sided Maxwell), coupled"
    reference = "Pflug 1989; Mohamed et al. 2020 §6"
    needs = frozenset({"gaussian"})
    cost = "4·D·n"

    def evaluations(self, task: Task, batch: int) -> int:
        """Two coupled evaluations per side, for the mean and the scale, of every coordinate."""
        return 4 * as_protocol(task, GaussianLatent, self.name).dim * batch

    def memory_factor(self, task: Task) -> float:
        """Four coupled evaluations of f per coordinate, each over a (D, D) block."""
        return 4.0 * as_protocol(task, GaussianLatent, self.name).dim

    def estimate(self, task: Task, samples: int, batch: int, generator: torch.Generator) -> Theta:
        gaussian = as_protocol(task, GaussianLatent, self.name)
        theta = task.theta
        mu, sigma = theta["mu"], theta["sigma"]
        shape = (samples, batch)
        base = gaussian.sample(theta, gaussian.noise(generator, shape))
        dtype, device = base.dtype, base.device

        def uniform() -> torch.Tensor:
            return torch.rand(*shape, mu.shape[-1], generator=generator, dtype=dtype, device=device)

        weibull = torch.sqrt(-2.0 * torch.log1p(-uniform()))  # Weibull(√2, 2) = Rayleigh(1)
        normals = torch.randn(*shape, mu.shape[-1], 3, generator=generator, dtype=dtype, device=device)
        sign = torch.where(uniform() < 0.5, -1.0, 1.0).to(dtype)
        maxwell = sign * normals.norm(dim=-1)  # double-sided Maxwell
        coupled_normal = maxwell * uniform()  # M·U ~ N(0, 1)

        def f_with(values: torch.Tensor) -> torch.Tensor:
            return gaussian.objective(theta, _replace_diagonal(base, values))[..., 0]  # (K, n, D): one unit

        with torch.no_grad():
            grad_mu = (f_with(mu + sigma * weibull) - f_with(mu - sigma * weibull)) / (sigma * math.sqrt(2 * math.pi))
            grad_sigma = (f_with(mu + sigma * maxwell) - f_with(mu + sigma * coupled_normal)) / sigma
        return {"mu": grad_mu.mean(dim=1), "sigma": grad_sigma.mean(dim=1)}
