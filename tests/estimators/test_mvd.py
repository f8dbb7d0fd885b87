"""Measure-valued derivative: the coupling construction and the diagonal replacement."""

from __future__ import annotations

import torch
from scipy import stats

from rpbench.estimators.mvd import _replace_diagonal
from tests.conftest import estimates, gaussian, max_z_score


def test_replace_diagonal_perturbs_one_coordinate_per_row() -> None:
    x = torch.tensor([[1.0, 2.0, 3.0]])
    values = torch.tensor([[10.0, 20.0, 30.0]])
    out = _replace_diagonal(x, values)
    assert out.shape == (1, 3, 3)
    assert torch.equal(out[0], torch.tensor([[10.0, 2.0, 3.0], [1.0, 20.0, 3.0], [1.0, 2.0, 30.0]]))


def test_maxwell_times_uniform_is_standard_normal() -> None:
    # The coupling of the scale estimator rests on M·U ~ N(0, 1) for M double-sided Maxwell.
    g = torch.Generator().manual_seed(0)
    normals = torch.randn(20000, 3, generator=g, dtype=torch.float64)
    sign = torch.where(torch.rand(20000, generator=g, dtype=torch.float64) < 0.5, -1.0, 1.0)
    product = sign * normals.norm(dim=-1) * torch.rand(20000, generator=g, dtype=torch.float64)
    assert stats.kstest(product.numpy(), "norm").pvalue > 1e-3


def test_mvd_is_unbiased_on_the_step_where_pathwise_is_not() -> None:
    task = gaussian(fn="step", k=0.5, dim=2)
    draws = estimates(task, "mvd", samples=20000, batch=1)
    exact = task.exact_gradient()
    assert max_z_score(draws["mu"], exact["mu"]) < 4
    assert max_z_score(draws["sigma"], exact["sigma"]) < 4


def test_mvd_mean_gradient_of_a_linear_function_is_exact_per_pair() -> None:
    # f = x: f(μ + σW) − f(μ − σW) = 2σW, and E[W] = √(π/2): the estimate averages to 1.
    task = gaussian(fn="linear")
    draws = estimates(task, "mvd", samples=20000)
    assert max_z_score(draws["mu"], torch.ones(1, dtype=torch.float64)) < 4
