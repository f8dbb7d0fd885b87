"""Measure-valued derivative: the coupling construction and the diagonal replacement."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats

from rpbench.estimators.mvd import _replace_diagonal
from tests.conftest import DTYPES, estimates, gaussian, max_z_score


def test_replace_diagonal_perturbs_one_coordinate_per_row() -> None:
    x = torch.tensor([[1.0, 2.0, 3.0]])
    values = torch.tensor([[10.0, 20.0, 30.0]])
    out = _replace_diagonal(x, values)
    assert out.shape == (1, 3, 3)
    assert torch.equal(out[0], torch.tensor([[10.0, 2.0, 3.0], [1.0, 20.0, 3.0], [1.0, 2.0, 30.0]]))


def test_mvd_draws_rayleigh_pairs_and_a_coupled_normal() -> None:
    """On f = x every MVD estimate exposes its draws (one sample, D = 1):

    * mean: ``(f(μ + σW) − f(μ − σW)) / (σ√(2π)) = 2W/√(2π)``, so ``W`` must be Rayleigh(1);
    * scale: ``(f(μ + σM) − f(μ + σ·MU)) / σ = M(1 − U)``, standard normal exactly when M is
      double-sided Maxwell and the normal side is coupled to it as M·U (see rpbench.estimators.mvd).
    """
    task = gaussian(fn="linear", mu=0.3, sigma=1.7)
    draws = estimates(task, "mvd", samples=20000, batch=1)
    weibull = (draws["mu"][:, 0] * math.sqrt(2 * math.pi) / 2).numpy()
    coupled = draws["sigma"][:, 0].numpy()
    assert stats.kstest(weibull, "rayleigh").pvalue > 1e-3
    assert stats.kstest(coupled, "norm").pvalue > 1e-3
    # and the checks can fail: neither law passes for the other's draws
    assert stats.kstest(coupled, "rayleigh").pvalue < 1e-6
    assert stats.kstest(weibull, "norm").pvalue < 1e-6


@pytest.mark.parametrize("dtype", DTYPES)
def test_mvd_is_unbiased_on_the_step_where_pathwise_is_not(dtype: str) -> None:
    task = gaussian(fn="step", k=0.5, dim=2, dtype=dtype)
    draws = estimates(task, "mvd", samples=20000, batch=1)
    assert draws["mu"].dtype == task.dtype
    exact = task.exact_gradient()
    assert max_z_score(draws["mu"], exact["mu"]) < 4
    assert max_z_score(draws["sigma"], exact["sigma"]) < 4


@pytest.mark.parametrize("dtype", DTYPES)
def test_mvd_gradient_of_a_linear_function_is_positive_per_pair_and_one_on_average(dtype: str) -> None:
    # f = x: f(μ + σW) − f(μ − σW) = 2σW > 0, and E[W] = √(π/2): the estimate averages to 1.
    task = gaussian(fn="linear", dtype=dtype)
    draws = estimates(task, "mvd", samples=20000)
    assert bool((draws["mu"] > 0).all())
    assert max_z_score(draws["mu"], torch.ones(1, dtype=torch.float64)) < 4
    assert max_z_score(draws["sigma"], torch.zeros(1, dtype=torch.float64)) < 4  # ∂σ E[x] = 0
    # and the check can fail: the mean estimate is not centred at 0
    assert max_z_score(draws["mu"], torch.zeros(1, dtype=torch.float64)) > 4
