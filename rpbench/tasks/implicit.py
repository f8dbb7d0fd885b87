"""Gamma and Beta objectives for implicit reparameterization, with closed-form expectations and gradients.

Figurnov, Mohamed & Mnih (2018), "Implicit Reparameterization Gradients", NeurIPS, §2–3: where a
distribution has a tractable CDF ``F(z | θ)`` but no explicit reparameterization ``z = g_θ(ε)``,
differentiating ``F(z | θ) = u`` at a fixed uniform ``u`` gives the pathwise derivative without
inverting F,

    ∇θ z = −∇θ F(z | θ) / q(z | θ),

so ``∇θ E_q[f(z)] = E_q[f′(z) ∇θ z]``.  This is what ``torch.distributions.Gamma.rsample`` does
(its backward is ``torch._standard_gamma_grad``, an accurate approximation of ``−∂_α F / q`` for
``Gamma(α, 1)``); Beta, as the paper treats Beta and Dirichlet (through Gamma draws), is
``X / (X + Y)`` with ``X ~ Gamma(a, 1)``, ``Y ~ Gamma(b, 1)``, each implicitly reparameterized.

Two families, each in ``dim`` independent coordinates with the same parameters in every
coordinate (like :mod:`rpbench.tasks.gaussian`), objective ``Σ_d g(z_d)`` (one unit):

* ``gamma``: ``z ~ Gamma(α, β)`` with β the **rate** (mean α/β); groups ``alpha`` and ``beta``;
* ``beta-dist``: ``z ~ Beta(a, b)``; groups ``a`` and ``b``.  (Not ``beta``: the gamma task's
  rate parameter is already a ``beta`` column of the results, and a task named like a parameter
  reads ambiguously in the tables.)

Closed forms per coordinate, ψ the digamma and ψ′ the trigamma function:

=========  ======  =============================  =======================================
family     fn      g(z)                           E[g(z)]
=========  ======  =============================  =======================================
gamma      linear  z                              α/β   (∂α = 1/β, ∂β = −α/β²)
gamma      quadr.  (z − k)²                       α/β² + (α/β − k)²
gamma      log     log z                          ψ(α) − log β   (∂α = ψ′(α), ∂β = −1/β)
beta-dist  linear  z                              a/(a+b)   (∂a = b/(a+b)², ∂b = −a/(a+b)²)
beta-dist  quadr.  (z − k)²                       ab/((a+b)²(a+b+1)) + (a/(a+b) − k)²
beta-dist  log     log z                          ψ(a) − ψ(a+b)   (∂a = ψ′(a) − ψ′(a+b), ∂b = −ψ′(a+b))
=========  ======  =============================  =======================================

The exact gradient is the autograd gradient of these closed forms, evaluated in float64 whatever
``dtype`` is (as the Gaussian's truth is not rounded to float32).

Noise and samples.  ``torch.distributions.Gamma.rsample`` takes no generator, so ``noise`` draws
the standard-gamma values ``z0 ~ Gamma(α, 1)`` at the task's current shape parameter from the
cell's generator (``torch._standard_gamma``) together with their implicit derivative
``dz0/dα`` (``torch._standard_gamma_grad``), stacked on a last axis of 2: the noise is the draw
at a fixed ``u = F(z0 | α)``.  ``sample`` is elementwise (vmap- and broadcast-friendly):
``z = (z0 + (α − stop_grad(α)) · dz0/dα) / β``, whose value is ``z0/β`` and whose derivative in
α is the implicit one.  Its value therefore does not follow a θ other than the one the noise was
drawn at (first derivatives do); every estimator here samples at the task's θ.

Choices where the paper leaves room: the implicit derivative is torch's approximation (measured
relative error ≤ 1e-3 per draw and ≈ 5e-5 in the mean, against ``−∂_α F / q`` by finite
differences of the regularized incomplete gamma function; tests/tasks/test_implicit.py); the
sampler clamps ``z0`` at the smallest normal number of the precision (in float32 a draw below
1.2e-38 happens with probability ≈ (1.2e-38)^α, relevant to ``fn=log`` for α ≲ 0.1 only); a Beta
draw is kept inside ``[tiny, 1 − ε/2]`` by a value-only shift (its derivative untouched) so that
``log q`` stays finite where float32 rounds ``X/(X+Y)`` to 1.  The capabilities are
``reparameterizable`` and ``log-prob`` only: MVD and the delta method need a Gaussian q and are
refused with that reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import ClassVar

import torch

from rpbench.params import ParamSpec, at_least, positive
from rpbench.tasks.base import Task, Theta, dtype_param

Closed = Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]
"""``E[g(z)]`` per coordinate as a differentiable function of the two parameters (0-dim float64) and k."""


@dataclass(frozen=True)
class TestFunction:
    """A scalar test function ``g`` and the closed form of ``E[g(z)]`` in the family's two parameters."""

    formula: str
    g: Callable[[torch.Tensor, float], torch.Tensor]
    expectation: Closed


def _linear(z: torch.Tensor, k: float) -> torch.Tensor:
    return z


def _quadratic(z: torch.Tensor, k: float) -> torch.Tensor:
    return (z - k) ** 2


def _log(z: torch.Tensor, k: float) -> torch.Tensor:
    return torch.log(z)


GAMMA_FUNCTIONS: dict[str, TestFunction] = {
    "linear": TestFunction("z", _linear, lambda alpha, beta, k: alpha / beta),
    "quadratic": TestFunction(
        "(z - k)^2", _quadratic, lambda alpha, beta, k: alpha / beta**2 + (alpha / beta - k) ** 2
    ),
    "log": TestFunction("log z", _log, lambda alpha, beta, k: torch.special.digamma(alpha) - torch.log(beta)),
}
"""The gamma family's test functions, ``z ~ Gamma(α, rate β)``."""


def _beta_variance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    total = a + b
    return a * b / (total**2 * (total + 1.0))


BETA_FUNCTIONS: dict[str, TestFunction] = {
    "linear": TestFunction("z", _linear, lambda a, b, k: a / (a + b)),
    "quadratic": TestFunction("(z - k)^2", _quadratic, lambda a, b, k: _beta_variance(a, b) + (a / (a + b) - k) ** 2),
    "log": TestFunction("log z", _log, lambda a, b, k: torch.special.digamma(a) - torch.special.digamma(a + b)),
}
"""The beta-dist family's test functions, ``z ~ Beta(a, b)``."""


def closed_form(function: TestFunction, p: float, q: float, k: float) -> tuple[float, tuple[float, float]]:
    """``E[g(z)]`` and its gradient in the two parameters, in float64 (autograd of the closed form)."""
    first = torch.tensor(p, dtype=torch.float64, requires_grad=True)
    second = torch.tensor(q, dtype=torch.float64, requires_grad=True)
    value = function.expectation(first, second, k)
    d_first, d_second = torch.autograd.grad(value, (first, second))
    return float(value.detach()), (float(d_first), float(d_second))


def standard_gamma_draws(shape_parameter: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """``z0 ~ Gamma(α, 1)`` elementwise for ``α = shape_parameter`` and ``dz0/dα``, stacked: ``(*α.shape, 2)``.

    ``dz0/dα = −∂_α F(z0 | α) / q(z0 | α)`` (Figurnov et al. 2018, §2–3), torch's approximation of it.
    """
    alpha = shape_parameter.detach().contiguous()
    z0 = torch._standard_gamma(alpha, generator=generator)
    return torch.stack((z0, torch._standard_gamma_grad(alpha, z0)), dim=-1)


def implicit_sample(draws: torch.Tensor, shape_parameter: torch.Tensor) -> torch.Tensor:
    """``z0 + (α − stop_grad(α)) · dz0/dα`` for ``draws`` from :func:`standard_gamma_draws`.

    The value is ``z0``; the derivative in α is the implicit one, ``dz0/dα``.  Elementwise: ``α``
    broadcasts against ``draws[..., 0]``.
    """
    return draws[..., 0] + (shape_parameter - shape_parameter.detach()) * draws[..., 1]


class _TwoParameterTask(Task):
    """Shared structure: two scalar parameters repeated over ``dim`` coordinates, a test function
    from :attr:`functions`, the closed-form truth, one unit."""

    groups: ClassVar[tuple[str, str]]
    functions: ClassVar[dict[str, TestFunction]]
    broadcasts_theta = True

    def __init__(self, config: Mapping[str, object], device: torch.device) -> None:
        super().__init__(config, device)
        self.dim = int(self.config["dim"])
        self.k = float(self.config["k"])
        self.function = self.functions[str(self.config["fn"])]
        first, second = self.groups
        self.values = (float(self.config[first]), float(self.config[second]))
        self._theta = {
            group: torch.full((self.dim,), value, dtype=self.dtype, device=device)
            for group, value in zip(self.groups, self.values, strict=True)
        }

    @property
    def theta(self) -> Theta:
        return self._theta

    @property
    def capabilities(self) -> frozenset[str]:
        return frozenset({"reparameterizable", "log-prob"})

    def objective(self, theta: Theta, z: torch.Tensor) -> torch.Tensor:
        return self.function.g(z, self.k).sum(-1, keepdim=True)  # one unit

    def exact_value(self) -> float:
        return self.dim * closed_form(self.function, self.values[0], self.values[1], self.k)[0]

    def exact_gradient(self) -> Theta:
        """The closed form's gradient, computed and returned in float64 (for either ``dtype``)."""
        _, gradient = closed_form(self.function, self.values[0], self.values[1], self.k)
        return {
            group: torch.full((self.dim,), value, dtype=torch.float64, device=self.device)
            for group, value in zip(self.groups, gradient, strict=True)
        }


DIM = ParamSpec("dim", int, 1, "dimension D of z", check=at_least(1), expect="an integer >= 1")
"""Both families' dimension: independent coordinates with the same parameters."""


def _fn_params(default_k: float) -> tuple[ParamSpec, ...]:
    return (
        ParamSpec("fn", str, ("linear", "quadratic", "log"), "test function g", choices=("linear", "quadratic", "log")),
        ParamSpec("k", float, default_k, "constant k of the quadratic (unused by linear, log)", expect="a real number"),
        dtype_param("float64"),
    )


class GammaTask(_TwoParameterTask):
    """``z ~ Gamma(α, rate β)`` in ``dim`` coordinates, objective ``Σ_d g(z_d)``, implicitly reparameterized.

    Reference: Figurnov, Mohamed & Mnih (2018), NeurIPS, §2–3 (``∇α z = −∂_α F(z | α) / q(z | α)``).
    """

    name = "gamma"
    summary = "z ~ Gamma(alpha, rate beta) in `dim` dims, implicit reparameterization; f = sum_d g(z_d); exact gradient"
    offers = "reparameterizable (implicit), log-prob"
    groups = ("alpha", "beta")
    functions = GAMMA_FUNCTIONS
    params = (
        DIM,
        ParamSpec("alpha", float, (0.5, 2.0), "shape α (every coordinate)", check=positive, expect="a number > 0"),
        ParamSpec("beta", float, 1.0, "rate β (every coordinate; mean α/β)", check=positive, expect="a number > 0"),
        *_fn_params(1.0),
    )

    def noise(self, generator: torch.Generator, shape: tuple[int, ...]) -> torch.Tensor:
        """``(*shape, D, 2)``: standard-gamma draws at the current α and their derivative in α."""
        return standard_gamma_draws(self.theta["alpha"].expand(*shape, self.dim), generator)

    def sample(self, theta: Theta, noise: torch.Tensor) -> torch.Tensor:
        return implicit_sample(noise, theta["alpha"]) / theta["beta"]

    def log_prob(self, theta: Theta, z: torch.Tensor) -> torch.Tensor:
        alpha, beta = theta["alpha"], theta["beta"]
        density = alpha * torch.log(beta) - torch.lgamma(alpha) + (alpha - 1.0) * torch.log(z) - beta * z
        return density.sum(-1, keepdim=True)


class BetaTask(_TwoParameterTask):
    """``z ~ Beta(a, b)`` as ``X/(X+Y)``, ``X ~ Gamma(a)``, ``Y ~ Gamma(b)`` each implicitly reparameterized.

    Reference: Figurnov, Mohamed & Mnih (2018), NeurIPS, §2–3 (Beta and Dirichlet through Gamma draws).
    """

    name = "beta-dist"
    summary = "z ~ Beta(a, b) in `dim` dims via implicit Gamma draws; f = sum_d g(z_d); exact gradient"
    offers = "reparameterizable (implicit), log-prob"
    groups = ("a", "b")
    functions = BETA_FUNCTIONS
    params = (
        DIM,
        ParamSpec("a", float, (0.5, 2.0), "first shape a (every coordinate)", check=positive, expect="a number > 0"),
        ParamSpec("b", float, 2.0, "second shape b (every coordinate)", check=positive, expect="a number > 0"),
        *_fn_params(0.5),
    )

    def _shapes(self, theta: Theta) -> torch.Tensor:
        return torch.stack(torch.broadcast_tensors(theta["a"], theta["b"]), dim=-1)  # (..., D, 2)

    def noise(self, generator: torch.Generator, shape: tuple[int, ...]) -> torch.Tensor:
        """``(*shape, D, 2, 2)``: for X (shape a) and Y (shape b), the standard-gamma draw and its derivative."""
        return standard_gamma_draws(self._shapes(self.theta).expand(*shape, self.dim, 2), generator)

    def sample(self, theta: Theta, noise: torch.Tensor) -> torch.Tensor:
        gammas = implicit_sample(noise, self._shapes(theta))
        z = gammas[..., 0] / gammas.sum(-1)
        info = torch.finfo(z.dtype)
        inside = z.detach().clamp(info.tiny, 1.0 - info.eps / 2)
        return z + (inside - z.detach())  # a value-only shift: log q stays finite where X/(X+Y) rounds to 1

    def log_prob(self, theta: Theta, z: torch.Tensor) -> torch.Tensor:
        a, b = theta["a"], theta["b"]
        log_beta = torch.lgamma(a) + torch.lgamma(b) - torch.lgamma(a + b)
        return ((a - 1.0) * torch.log(z) + (b - 1.0) * torch.log1p(-z) - log_beta).sum(-1, keepdim=True)
