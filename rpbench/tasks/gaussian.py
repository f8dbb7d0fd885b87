"""Gaussian toy objectives with closed-form expectations and gradients.

``z ~ N(μ, diag σ²)`` in ``dim`` dimensions, ``L(μ, σ) = E[Σ_d g(z_d)]`` for a scalar test
function ``g``.  Gradients are taken with respect to μ and σ (the standard deviation, not
log σ); the two are reported as the parameter groups ``mu`` and ``sigma``.  μ and σ are the same
in every coordinate, so every coordinate of the exact gradient is the same number.

The test functions are those of Mohamed, Rosca, Figurnov & Mnih (2020), "Monte Carlo Gradient
Estimation in Machine Learning", JMLR 21(132), §3 and Fig. 2, plus a linear function and a step
(where the pathwise estimator is biased: the step's derivative is zero almost everywhere).

Closed forms for ``x ~ N(μ, σ²)``, with ``φ``/``Φ`` the standard normal pdf/cdf:

==========  ===============  ===========================  ==============================
fn          g(x)             E[g(x)]                      ∂/∂μ, ∂/∂σ
==========  ===============  ===========================  ==============================
linear      x                μ                            1, 0
quadratic   (x − k)²         (μ − k)² + σ²                2(μ − k), 2σ
cos         cos(kx)          cos(kμ) e^{−k²σ²/2}           −k sin(kμ) e^{…}, −k²σ E
expquad     exp(−kx²)        s^{−1/2} e^{−kμ²/s}, s=1+2kσ²  −2kμE/s, E(4k²σμ²/s² − 2kσ/s)
step        1[x > k]         Φ((μ − k)/σ)                 φ(a)/σ, −φ(a)a/σ, a=(μ−k)/σ
==========  ===============  ===========================  ==============================

Precision: ``dtype`` (float64 by default, or float32) is that of θ, the noise, the samples and
the estimates; the closed forms are evaluated in Python floats (IEEE double) and returned as
float64 tensors whatever ``dtype`` is, so a float32 run is measured against a truth that is not
rounded to float32.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

from rpbench.errors import UsageError
from rpbench.params import ParamSpec, at_least, positive
from rpbench.tasks.base import Task, Theta, dtype_param
from rpbench.tasks.protocols import GaussianLatent

_SQRT_2PI = math.sqrt(2.0 * math.pi)


@dataclass(frozen=True)
class TestFunction:
    """A scalar test function ``g`` with ``E[g(x)]`` and its (μ, σ)-gradient in closed form."""

    formula: str
    smooth: bool
    g: Callable[[torch.Tensor, float], torch.Tensor]
    expectation: Callable[[float, float, float], float]
    gradient: Callable[[float, float, float], tuple[float, float]]


def _cos_expectation(mu: float, sigma: float, k: float) -> float:
    return math.cos(k * mu) * math.exp(-0.5 * (k * sigma) ** 2)


def _cos_gradient(mu: float, sigma: float, k: float) -> tuple[float, float]:
    damp = math.exp(-0.5 * (k * sigma) ** 2)
    return -k * math.sin(k * mu) * damp, -(k**2) * sigma * math.cos(k * mu) * damp


def _expquad_expectation(mu: float, sigma: float, k: float) -> float:
    s = 1.0 + 2.0 * k * sigma**2
    return math.exp(-k * mu**2 / s) / math.sqrt(s)


def _expquad_gradient(mu: float, sigma: float, k: float) -> tuple[float, float]:
    s = 1.0 + 2.0 * k * sigma**2
    value = _expquad_expectation(mu, sigma, k)
    return -2.0 * k * mu * value / s, value * (4.0 * k**2 * sigma * mu**2 / s**2 - 2.0 * k * sigma / s)


def _step_expectation(mu: float, sigma: float, k: float) -> float:
    return 0.5 * math.erfc(-(mu - k) / (sigma * math.sqrt(2.0)))


def _step_gradient(mu: float, sigma: float, k: float) -> tuple[float, float]:
    a = (mu - k) / sigma
    density = math.exp(-0.5 * a * a) / _SQRT_2PI
    return density / sigma, -density * a / sigma


FUNCTIONS: dict[str, TestFunction] = {
    "linear": TestFunction("x", True, lambda x, k: x, lambda m, s, k: m, lambda m, s, k: (1.0, 0.0)),
    "quadratic": TestFunction(
        "(x - k)^2",
        True,
        lambda x, k: (x - k) ** 2,
        lambda m, s, k: (m - k) ** 2 + s**2,
        lambda m, s, k: (2.0 * (m - k), 2.0 * s),
    ),
    "cos": TestFunction("cos(k x)", True, lambda x, k: torch.cos(k * x), _cos_expectation, _cos_gradient),
    "expquad": TestFunction(
        "exp(-k x^2)", True, lambda x, k: torch.exp(-k * x * x), _expquad_expectation, _expquad_gradient
    ),
    "step": TestFunction("1[x > k]", False, lambda x, k: (x > k).to(x.dtype), _step_expectation, _step_gradient),
}


class GaussianTask(Task, GaussianLatent):
    """``z ~ N(μ, diag σ²)``, objective ``Σ_d g(z_d)``; exact value and gradient in closed form.

    Reference: Mohamed et al. (2020), JMLR 21(132), §3 (the Gaussian test functions).
    """

    name = "gaussian"
    summary = "z ~ N(mu, diag sigma^2) in `dim` dims; f = sum_d g(z_d); exact gradient in closed form"
    broadcasts_theta = True
    offers = "reparameterizable, log-prob, gaussian, differentiable (not fn=step)"
    params = (
        ParamSpec("dim", int, 1, "dimension D of z", check=at_least(1), expect="an integer >= 1"),
        ParamSpec("mu", float, 1.0, "mean μ (every coordinate)", expect="a real number"),
        ParamSpec(
            "sigma", float, (1.0, 2.0), "standard deviation σ (every coordinate)", check=positive, expect="a number > 0"
        ),
        ParamSpec("fn", str, ("quadratic", "cos", "expquad", "step"), "test function g", choices=tuple(FUNCTIONS)),
        ParamSpec("k", float, (0.5, 2.0), "constant k of the test function (unused by linear)", expect="a real number"),
        dtype_param("float64"),
    )

    def __init__(self, config: Mapping[str, object], device: torch.device) -> None:
        super().__init__(config, device)
        self.dim = int(self.config["dim"])
        self.mu = float(self.config["mu"])
        self.sigma = float(self.config["sigma"])
        self.k = float(self.config["k"])
        self.function = FUNCTIONS[str(self.config["fn"])]
        if self.config["fn"] == "expquad" and 1.0 + 2.0 * self.k * self.sigma**2 <= 0:
            raise UsageError(
                f"task gaussian: fn=expquad needs 1 + 2 k sigma^2 > 0 for a finite expectation; "
                f"got k={self.k:g}, sigma={self.sigma:g}"
            )
        shape = (self.dim,)
        self._theta = {
            "mu": torch.full(shape, self.mu, dtype=self.dtype, device=device),
            "sigma": torch.full(shape, self.sigma, dtype=self.dtype, device=device),
        }

    @property
    def theta(self) -> Theta:
        return self._theta

    @property
    def capabilities(self) -> frozenset[str]:
        base = {"reparameterizable", "log-prob", "gaussian"}
        if self.function.smooth:
            base.add("differentiable")
        return frozenset(base)

    def noise(self, generator: torch.Generator, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.randn(*shape, self.dim, generator=generator, dtype=self.dtype, device=self.device)

    def sample(self, theta: Theta, noise: torch.Tensor) -> torch.Tensor:
        return theta["mu"] + theta["sigma"] * noise

    def log_prob(self, theta: Theta, z: torch.Tensor) -> torch.Tensor:
        standard = (z - theta["mu"]) / theta["sigma"]
        return (-0.5 * standard**2 - torch.log(theta["sigma"]) - 0.5 * math.log(2.0 * math.pi)).sum(-1, keepdim=True)

    def objective(self, theta: Theta, z: torch.Tensor) -> torch.Tensor:
        return self.function.g(z, self.k).sum(-1, keepdim=True)  # one unit

    def exact_value(self) -> float:
        return self.dim * self.function.expectation(self.mu, self.sigma, self.k)

    def exact_gradient(self) -> Theta:
        """The closed form, computed in double precision and returned in float64 (for either ``dtype``)."""
        d_mu, d_sigma = self.function.gradient(self.mu, self.sigma, self.k)
        return {
            "mu": torch.full((self.dim,), d_mu, dtype=torch.float64, device=self.device),
            "sigma": torch.full((self.dim,), d_sigma, dtype=torch.float64, device=self.device),
        }
