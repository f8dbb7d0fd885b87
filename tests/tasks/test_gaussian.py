"""The Gaussian task's closed forms against independent numerical integration; its precision."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from rpbench.errors import UsageError
from rpbench.tasks.gaussian import FUNCTIONS
from tests.conftest import DTYPES, ROUND_OFF_EPS, gaussian

POINTS = [(1.0, 1.0, 0.5), (-0.7, 1.8, 2.0), (0.3, 0.4, -1.2), (2.5, 2.0, 0.1)]
NUMPY_G = {
    "linear": lambda x, k: x,
    "quadratic": lambda x, k: (x - k) ** 2,
    "cos": lambda x, k: np.cos(k * x),
    "expquad": lambda x, k: np.exp(-k * x * x),
    "step": lambda x, k: (x > k).astype(float),
}


def expectation_by_quadrature(fn: str, mu: float, sigma: float, k: float) -> float:
    density = stats.norm(mu, sigma).pdf
    points = [k] if fn == "step" else None
    value, _ = integrate.quad(
        lambda x: NUMPY_G[fn](np.array(x), k) * density(x), mu - 40 * sigma, mu + 40 * sigma, points=points, limit=400
    )
    return value


@pytest.mark.parametrize("fn", sorted(FUNCTIONS))
@pytest.mark.parametrize(("mu", "sigma", "k"), POINTS)
def test_closed_form_expectation_and_gradient_match_quadrature(fn: str, mu: float, sigma: float, k: float) -> None:
    if fn == "expquad" and 1 + 2 * k * sigma**2 <= 0:
        pytest.skip("infinite expectation")
    function = FUNCTIONS[fn]
    assert function.expectation(mu, sigma, k) == pytest.approx(expectation_by_quadrature(fn, mu, sigma, k), abs=1e-8)
    h = 1e-5
    d_mu = (expectation_by_quadrature(fn, mu + h, sigma, k) - expectation_by_quadrature(fn, mu - h, sigma, k)) / (2 * h)
    d_sigma = (expectation_by_quadrature(fn, mu, sigma + h, k) - expectation_by_quadrature(fn, mu, sigma - h, k)) / (
        2 * h
    )
    exact_mu, exact_sigma = function.gradient(mu, sigma, k)
    assert exact_mu == pytest.approx(d_mu, abs=1e-5)
    assert exact_sigma == pytest.approx(d_sigma, abs=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_task_gradient_has_one_entry_per_dimension_and_scales_the_value(dtype: str) -> None:
    """The closed form is the same float64 numbers in either precision (not rounded to float32)."""
    task = gaussian(dim=3, fn="cos", k=1.5, mu=0.2, sigma=0.7, dtype=dtype)
    grad = task.exact_gradient()
    assert grad["mu"].shape == (3,) and grad["sigma"].shape == (3,)
    assert grad["mu"].dtype == grad["sigma"].dtype == torch.float64
    d_mu, d_sigma = FUNCTIONS["cos"].gradient(0.2, 0.7, 1.5)
    assert torch.equal(grad["mu"], torch.full((3,), d_mu, dtype=torch.float64))
    assert torch.equal(grad["sigma"], torch.full((3,), d_sigma, dtype=torch.float64))
    assert task.exact_value() == 3 * FUNCTIONS["cos"].expectation(0.2, 0.7, 1.5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_log_prob_matches_torch_distributions(dtype: str) -> None:
    task = gaussian(dim=2, mu=0.5, sigma=1.3, dtype=dtype)
    z = torch.randn(7, 2, dtype=task.dtype, generator=torch.Generator().manual_seed(0))
    normal = torch.distributions.Normal(torch.tensor(0.5, dtype=torch.float64), torch.tensor(1.3, dtype=torch.float64))
    expected = normal.log_prob(z.double()).sum(-1, keepdim=True)
    got = task.log_prob(task.theta, z)
    assert got.dtype == task.dtype
    tolerance = ROUND_OFF_EPS * torch.finfo(task.dtype).eps
    torch.testing.assert_close(got.double(), expected, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sample_is_reparameterized(dtype: str) -> None:
    task = gaussian(mu=2.0, sigma=3.0, dtype=dtype)
    eps = torch.tensor([[0.5]], dtype=task.dtype)
    assert task.sample(task.theta, eps).item() == 3.5  # exact in both precisions


def test_the_precision_follows_the_configuration() -> None:
    """float64 by default (also where a configuration leaves dtype out); float32 on request: θ, the
    noise, the samples and the objective in that precision."""
    from rpbench.registry import get_task
    from tests.conftest import CPU

    assert gaussian().dtype == torch.float64
    partial = {"dim": 1, "mu": 1.0, "sigma": 1.0, "fn": "quadratic", "k": 0.5}
    assert get_task("gaussian")(partial, CPU).dtype == torch.float64
    task = gaussian(dtype="float32", dim=2, fn="cos")
    assert task.dtype == torch.float32
    assert all(value.dtype == torch.float32 for value in task.theta.values())
    noise = task.noise(torch.Generator().manual_seed(0), (4, 3))
    assert noise.dtype == torch.float32 and noise.shape == (4, 3, 2)
    z = task.sample(task.theta, noise)
    assert z.dtype == task.objective(task.theta, z).dtype == task.log_prob(task.theta, z).dtype == torch.float32
    # the same standard normals, rounded: a float32 draw is not a float64 draw
    wide = gaussian(dtype="float64", dim=2, fn="cos").noise(torch.Generator().manual_seed(0), (4, 3))
    assert not torch.equal(noise.double(), wide)


def test_step_is_not_differentiable_and_the_rest_are() -> None:
    assert "differentiable" not in gaussian(fn="step").capabilities
    for fn in ("linear", "quadratic", "cos", "expquad"):
        assert {"differentiable", "reparameterizable", "log-prob", "gaussian"} <= gaussian(fn=fn).capabilities


def test_expquad_with_infinite_expectation_is_refused() -> None:
    with pytest.raises(UsageError, match="1 \\+ 2 k sigma"):
        gaussian(fn="expquad", k=-1.0, sigma=1.0)


def test_known_values() -> None:
    # x², μ=1, σ=1: E = μ² + σ² = 2, ∂μ = 2μ = 2, ∂σ = 2σ = 2.
    assert FUNCTIONS["quadratic"].gradient(1.0, 1.0, 0.0) == (2.0, 2.0)
    # step at its threshold: ∂μ Φ((μ−k)/σ) = φ(0)/σ.
    assert FUNCTIONS["step"].gradient(0.0, 2.0, 0.0)[0] == pytest.approx(1 / (2 * math.sqrt(2 * math.pi)))
