"""Measured variances of pathwise and score estimates against closed forms.

For ``x = μ + σε`` and one sample:

* pathwise: ``ĝ_μ = g'(x)``, ``ĝ_σ = g'(x) ε``;
* score:    ``ĝ_μ = g(x) ε / σ``, ``ĝ_σ = g(x) (ε² − 1) / σ``.

For ``g = (x − k)²`` with ``a = μ − k`` the variances follow from the normal moments
(E ε² = 1, E ε⁴ = 3, E ε⁶ = 15, E ε⁸ = 105):

* pathwise: Var_μ = 4σ², Var_σ = 4a² + 8σ²;
* score:    Var_μ = (a⁴ + 18a²σ² + 15σ⁴)/σ² − 4a², Var_σ = (2a⁴ + 60a²σ² + 78σ⁴)/σ² − 4σ².

With n samples per estimate every variance divides by n.  For the other smooth functions the
single-sample variance is computed by Gauss–Hermite quadrature of the same expressions.  The
measured variances match in float64 and float32 (round-off is far inside the ±4 SE intervals).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rpbench.metrics import SIGNIFICANT_LEVEL, summarize
from tests.conftest import DTYPES, estimates, gaussian, round_off


def quadratic_variance(estimator: str, group: str, mu: float, sigma: float, k: float) -> float:
    a = mu - k
    table = {
        ("pathwise", "mu"): 4 * sigma**2,
        ("pathwise", "sigma"): 4 * a**2 + 8 * sigma**2,
        ("score", "mu"): (a**4 + 18 * a**2 * sigma**2 + 15 * sigma**4) / sigma**2 - 4 * a**2,
        ("score", "sigma"): (2 * a**4 + 60 * a**2 * sigma**2 + 78 * sigma**4) / sigma**2 - 4 * sigma**2,
    }
    return table[estimator, group]


G = {
    "linear": (lambda x, k: x, lambda x, k: np.ones_like(x)),
    "cos": (lambda x, k: np.cos(k * x), lambda x, k: -k * np.sin(k * x)),
    "expquad": (lambda x, k: np.exp(-k * x * x), lambda x, k: -2 * k * x * np.exp(-k * x * x)),
    "quadratic": (lambda x, k: (x - k) ** 2, lambda x, k: 2 * (x - k)),
}


def quadrature_variance(fn: str, estimator: str, group: str, mu: float, sigma: float, k: float) -> float:
    eps, weights = np.polynomial.hermite_e.hermegauss(150)
    weights = weights / np.sqrt(2 * np.pi)
    x = mu + sigma * eps
    g, dg = G[fn]
    single = {
        ("pathwise", "mu"): dg(x, k),
        ("pathwise", "sigma"): dg(x, k) * eps,
        ("score", "mu"): g(x, k) * eps / sigma,
        ("score", "sigma"): g(x, k) * (eps**2 - 1) / sigma,
    }[estimator, group]
    mean = np.sum(weights * single)
    return float(np.sum(weights * single**2) - mean**2)


def strict_interval(values: torch.Tensor, exact: torch.Tensor) -> tuple[float, float, float]:
    """The measured variance and its ±4 SE interval (kurtosis-aware, see rpbench.metrics)."""
    row = summarize(values, exact, [1.0], level=SIGNIFICANT_LEVEL)
    return row["variance"], row["variance_lo"], row["variance_hi"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("estimator", ["pathwise", "score"])
@pytest.mark.parametrize(("mu", "sigma", "k", "batch"), [(1.0, 1.0, 0.0, 1), (1.0, 1.0, 0.5, 1), (-0.5, 2.0, 1.0, 4)])
def test_quadratic_variance_matches_closed_form(
    estimator: str, mu: float, sigma: float, k: float, batch: int, dtype: str
) -> None:
    task = gaussian(fn="quadratic", mu=mu, sigma=sigma, k=k, dtype=dtype)
    draws = estimates(task, estimator, samples=50_000, batch=batch, seed=5)
    for group, values in draws.items():
        closed = quadratic_variance(estimator, group, mu, sigma, k) / batch
        assert closed == pytest.approx(quadrature_variance("quadratic", estimator, group, mu, sigma, k) / batch)
        measured, lo, hi = strict_interval(values, task.exact_gradient()[group])
        assert lo <= closed <= hi, (estimator, group, measured, closed)


def test_closing_note_point_mu1_sigma1_x_squared() -> None:
    # f = x², μ = 1, σ = 1 (k = 0): Var_μ(pathwise) = 4, Var_μ(score) = 30.
    assert quadratic_variance("pathwise", "mu", 1, 1, 0) == 4
    assert quadratic_variance("score", "mu", 1, 1, 0) == 30
    assert quadratic_variance("pathwise", "sigma", 1, 1, 0) == 12
    assert quadratic_variance("score", "sigma", 1, 1, 0) == 136


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("estimator", ["pathwise", "score"])
@pytest.mark.parametrize("fn", ["linear", "cos", "expquad"])
@pytest.mark.parametrize(("mu", "sigma", "k"), [(1.0, 1.0, 0.5), (0.3, 1.5, 2.0)])
def test_smooth_function_variance_matches_quadrature(
    estimator: str, fn: str, mu: float, sigma: float, k: float, dtype: str
) -> None:
    task = gaussian(fn=fn, mu=mu, sigma=sigma, k=k, dtype=dtype)
    draws = estimates(task, estimator, samples=50_000, seed=9)
    for group, values in draws.items():
        closed = quadrature_variance(fn, estimator, group, mu, sigma, k)
        exact = task.exact_gradient()[group]
        measured, lo, hi = strict_interval(values, exact)
        if closed < 1e-12:  # zero up to quadrature round-off
            assert measured < float(round_off(values.dtype, exact).max()) ** 2
        else:
            assert lo <= closed <= hi, (estimator, fn, group, measured, closed)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("estimator", "group"), [("pathwise", "sigma"), ("score", "mu")])
def test_a_wrong_closed_form_is_rejected(estimator: str, group: str, dtype: str) -> None:
    task = gaussian(fn="quadratic", mu=1.0, sigma=1.0, k=0.0, dtype=dtype)
    values = estimates(task, estimator, samples=50_000, seed=5)[group]
    _, lo, hi = strict_interval(values, task.exact_gradient()[group])
    wrong = 1.5 * quadratic_variance(estimator, group, 1.0, 1.0, 0.0)
    assert not lo <= wrong <= hi


def test_variance_is_a_trace_in_several_dimensions() -> None:
    task = gaussian(dim=3, fn="quadratic", mu=1.0, sigma=1.0, k=0.5)
    values = estimates(task, "pathwise", samples=50_000, seed=2)["mu"]
    _, lo, hi = strict_interval(values, task.exact_gradient()["mu"])
    assert lo <= 3 * 4.0 <= hi  # three independent coordinates of variance 4σ² each
