"""The Bernoulli toy: ``b ∈ {0, 1}^D``, ``b_d ~ Bern(σ(φ_d))``, ``f(b) = Σ_d (b_d − t)²`` minimised.

The toy problem of Tucker et al. (2017), "REBAR: Low-variance, unbiased gradient estimates for
discrete latent variable models", NeurIPS (its toy problem, t = 0.45), of Grathwohl et al.
(2018), "Backpropagation through the Void", ICLR (Fig. 1, t = 0.499), and of Yin & Zhou (2019),
"ARM: Augment-REINFORCE-Merge Gradient for Stochastic Binary Networks", ICLR (its toy example,
t ∈ {0.49, 0.499, 0.501, 0.51}).  At t near ½ the two states differ in f by only ``1 − 2t``, so an estimator
must resolve a tiny signal under the noise of f itself; relaxations (Gumbel-Softmax and its
straight-through variants) are biased by an amount of the same order as the gradient.

With ``p = σ(φ)`` and ``h(b) = (b − t)²`` per coordinate, ``E h = p(1 − t)² + (1 − p)t²``, so::

    L(φ) = D · (p (1 − t)² + (1 − p) t²),   ∂L/∂φ_d = (1 − 2t) σ(φ_d) σ(−φ_d)

(``dE/dp = (1 − t)² − t² = 1 − 2t`` times ``dp/dφ = σ(φ)σ(−φ)``).  φ is the same in every
coordinate (the parameter ``logit``), θ is the one group ``logits`` ``(D,)``, and there is one
unit.  The latent is Bernoulli with logistic noise (:class:`rpbench.distributions.Bernoulli`):
``b = 1[φ + l > 0]``, ``l ~ Logistic(0, 1)``; f accepts relaxed latents in ``[0, 1]^D`` too.

The single-sample variances of three estimators are known exactly as well (functions
:func:`score_variance`, :func:`arm_variance`, :func:`disarm_variance`; total over the D
coordinates, as the ``variance`` column reports it, divided by the samples per estimate).  Write
``c = 1 − 2t`` (so ``h(1) − h(0) = c``), ``m = σ(−|φ|)`` and ``g = c p (1 − p)`` (the gradient):

* score, ``ĝ_d = f(b)(b_d − p)``: with ``R = Σ_{j≠d} h(b_j)`` independent of ``b_d``,
  ``E ĝ_d² = Σ_{b ∈ {0,1}} P(b)(b − p)² E[(h(b) + R)²]`` and the first two moments of R in closed form;
* ARM (Yin & Zhou 2019), ``u = σ(l)``, ``b⁺ = 1[u > σ(−φ)]``, ``b⁻ = 1[u < σ(φ)]``,
  ``ĝ_d = (f(b⁺) − f(b⁻))(u_d − ½)``: ``f(b⁺) − f(b⁻) = Σ_j Δ_j``, ``Δ_j = c(b⁺_j − b⁻_j)``,
  mean zero, ``Δ_j ≠ 0`` exactly when ``u_j < m`` or ``u_j > 1 − m`` (probability 2m); so
  ``E ĝ_d² = E[S²]/12 + c² ∫_{u<m or u>1−m} (u − ½)² du = E[S²]/12 + (2/3) c² (1/8 − (½ − m)³)``
  with ``S = Σ_{j≠d} Δ_j``, ``E S² = 2m (D − 1) c²``;
* DisARM (Dong, Mnih & Tucker 2020), ``ĝ_d = ½(f(b⁺) − f(b⁻))(−1)^{b⁻_d} 1[b⁺_d ≠ b⁻_d] σ(|φ_d|)``:
  on ``b⁺_d ≠ b⁻_d`` the own term ``(−1)^{b⁻_d} Δ_d`` is ``c``, so
  ``E ĝ_d² = ¼ σ(|φ|)² · 2m · (c² + E S²) = ½ c² σ(|φ|)² m (1 + 2m(D − 1))``.  At D = 1, φ = 0
  DisARM is exact (variance 0): every draw has ``b⁺ ≠ b⁻`` and ``ĝ = c/4``.

Precision: ``dtype`` (float64 by default, or float32) is that of θ, the noise and the estimates;
the closed forms are evaluated in Python floats and returned as float64 tensors in either.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import torch

from rpbench.distributions import Bernoulli
from rpbench.params import ParamSpec, at_least
from rpbench.tasks.base import Task, Theta, dtype_param
from rpbench.tasks.protocols import BernoulliLatent


def sigmoid(x: float) -> float:
    """``σ(x) = 1/(1 + e^{−x})`` in double precision, without overflow for large ``|x|``."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def exact_gradient_per_coordinate(t: float, logit: float) -> float:
    """``∂/∂φ E[(b − t)²] = (1 − 2t) σ(φ) σ(−φ)`` for ``b ~ Bern(σ(φ))``."""
    return (1.0 - 2.0 * t) * sigmoid(logit) * sigmoid(-logit)


def _others_moments(dim: int, t: float, p: float) -> tuple[float, float]:
    """``E R`` and ``E R²`` of ``R = Σ_{j≠d} (b_j − t)²``, the other ``D − 1`` coordinates' terms."""
    high, low = (1.0 - t) ** 2, t**2
    mean = p * high + (1.0 - p) * low
    variance = p * high**2 + (1.0 - p) * low**2 - mean**2
    others = dim - 1
    return others * mean, others * variance + (others * mean) ** 2


def score_variance(dim: int, t: float, logit: float, batch: int = 1) -> float:
    """Total variance (over the D coordinates) of the score-function estimate ``f(b)(b − σ(φ))``
    averaged over ``batch`` independent samples (Williams 1992), in closed form."""
    p = sigmoid(logit)
    r1, r2 = _others_moments(dim, t, p)
    second = 0.0
    for b, probability in ((1.0, p), (0.0, 1.0 - p)):
        h = (b - t) ** 2
        second += probability * (b - p) ** 2 * (h * h + 2.0 * h * r1 + r2)
    return dim * (second - exact_gradient_per_coordinate(t, logit) ** 2) / batch


def _difference_second_moment(dim: int, t: float, logit: float) -> float:
    """``E S²`` of ``S = Σ_{j≠d} (h(b⁺_j) − h(b⁻_j))``: mean zero, each term ``±(1 − 2t)`` with
    probability ``2σ(−|φ|)`` (zero otherwise)."""
    return 2.0 * sigmoid(-abs(logit)) * (dim - 1) * (1.0 - 2.0 * t) ** 2


def arm_variance(dim: int, t: float, logit: float, batch: int = 1) -> float:
    """Total variance of the ARM estimate ``(f(b⁺) − f(b⁻))(u − ½)`` (Yin & Zhou 2019) averaged over
    ``batch`` antithetic pairs, in closed form (the integral over ``u_d`` of the module docstring)."""
    c, m = 1.0 - 2.0 * t, sigmoid(-abs(logit))
    second = _difference_second_moment(dim, t, logit) / 12.0 + (2.0 / 3.0) * c * c * (0.125 - (0.5 - m) ** 3)
    return dim * (second - exact_gradient_per_coordinate(t, logit) ** 2) / batch


def disarm_variance(dim: int, t: float, logit: float, batch: int = 1) -> float:
    """Total variance of the DisARM estimate (Dong, Mnih & Tucker 2020) averaged over
    ``batch`` antithetic pairs, in closed form."""
    c, m = 1.0 - 2.0 * t, sigmoid(-abs(logit))
    second = 0.25 * sigmoid(abs(logit)) ** 2 * 2.0 * m * (c * c + _difference_second_moment(dim, t, logit))
    return dim * (second - exact_gradient_per_coordinate(t, logit) ** 2) / batch


CLOSED_FORM_VARIANCES: dict[str, Callable[[int, float, float, int], float]] = {
    "score": score_variance,
    "arm": arm_variance,
    "disarm": disarm_variance,
}
"""Estimator name → its variance on this toy, ``(dim, t, logit, batch) -> float`` (for plots and tests;
the task itself knows nothing of estimators)."""


class BernoulliToy(Task, BernoulliLatent):
    """``b_d ~ Bern(σ(φ))`` in ``dim`` coordinates, ``f = Σ_d (b_d − t)²``; exact value and gradient.

    References: Tucker et al. (2017), NeurIPS; Grathwohl et al. (2018), ICLR, Fig. 1; Yin & Zhou
    (2019), ICLR (their toy problems).

    f has no parameters of its own, so the defaults of :class:`~rpbench.tasks.base.Task` are the
    right ones: ``without_model_gradient`` returns θ as it is and ``variational_groups`` is empty
    (REBAR/RELAX tune their control variates for the variance of every group, here ``logits``).
    The sample is the hard ``b``, detached: not ``reparameterizable``, and not ``differentiable``
    in the sense of the Gaussian Taylor control variates.
    """

    name = "bernoulli-toy"
    summary = "b_d ~ Bern(sigmoid(logit)) in `dim` dims; f = sum_d (b_d - t)^2; exact gradient in closed form"
    offers = "log-prob, relaxable, bernoulli"
    params = (
        ParamSpec("dim", int, 1, "number D of binary latents", check=at_least(1), expect="an integer >= 1"),
        ParamSpec("t", float, (0.45, 0.499), "target t of f = sum_d (b_d - t)^2", expect="a real number"),
        ParamSpec("logit", float, 0.0, "logit φ of every coordinate (p = σ(φ))", expect="a real number"),
        dtype_param("float64"),
    )
    latent = Bernoulli
    event_dims = 1

    def __init__(self, config: Mapping[str, object], device: torch.device) -> None:
        super().__init__(config, device)
        self.dim = int(self.config["dim"])
        self.t = float(self.config["t"])
        self.logit = float(self.config["logit"])
        self._theta = {"logits": torch.full((self.dim,), self.logit, dtype=self.dtype, device=device)}

    @property
    def theta(self) -> Theta:
        return self._theta

    @property
    def capabilities(self) -> frozenset[str]:
        return frozenset({"log-prob", "relaxable", "bernoulli"})

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return (1, self.dim)

    def logits(self, theta: Theta) -> torch.Tensor:
        """``θ["logits"]`` as one unit's logits, ``(1, D)`` (leading axes of θ, if any, kept)."""
        return theta["logits"].unsqueeze(-2)

    def perturb(self, theta: Theta, noise: torch.Tensor) -> torch.Tensor:
        return self.logits(theta) + noise

    def noise(self, generator: torch.Generator, shape: tuple[int, ...]) -> torch.Tensor:
        """Logistic(0, 1) noise ``(*shape, 1, D)``."""
        return self.latent.perturbation(generator, (*shape, *self.latent_shape), self.dtype, self.device)

    def uniform(self, generator: torch.Generator, shape: tuple[int, ...]) -> torch.Tensor:
        """Uniform noise in (0, 1), ``(*shape, 1, D)``, for the latent's conditional draws."""
        u = torch.rand(*shape, *self.latent_shape, generator=generator, dtype=self.dtype, device=self.device)
        return u.clamp(1e-12, 1 - torch.finfo(self.dtype).eps)

    def sample(self, theta: Theta, noise: torch.Tensor) -> torch.Tensor:
        """The hard sample ``1[φ + l > 0]``, detached (not reparameterizable)."""
        return self.latent.hard(self.perturb(theta, noise)).detach()

    def log_prob(self, theta: Theta, z: torch.Tensor) -> torch.Tensor:
        return self.latent.log_prob(self.logits(theta), z)

    def objective(self, theta: Theta, z: torch.Tensor) -> torch.Tensor:
        """``Σ_d (z_d − t)²`` for hard or relaxed latents ``(..., 1, D)``: ``(..., 1)``."""
        return ((z - self.t) ** 2).sum(-1)

    def exact_value(self) -> float:
        p = sigmoid(self.logit)
        return self.dim * (p * (1.0 - self.t) ** 2 + (1.0 - p) * self.t**2)

    def exact_gradient(self) -> Theta:
        """``(1 − 2t) σ(φ) σ(−φ)`` per coordinate, computed in double precision and returned in float64."""
        value = exact_gradient_per_coordinate(self.t, self.logit)
        return {"logits": torch.full((self.dim,), value, dtype=torch.float64, device=self.device)}
