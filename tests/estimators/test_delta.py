"""Delta-method control variates: exact for quadratics, unchanged mean elsewhere."""

from __future__ import annotations

import pytest
import torch

from rpbench.estimators.delta import TaylorExpansion
from tests.conftest import estimates, gaussian


def test_taylor_expansion_of_a_quadratic_is_the_function_itself() -> None:
    task = gaussian(fn="quadratic", dim=2, mu=0.7, k=-0.3)
    taylor = TaylorExpansion(task)
    x = torch.randn(10, 2, dtype=torch.float64)
    assert torch.allclose(taylor(x), task.objective(task.theta, x))


def test_taylor_expectation_matches_the_closed_form_for_a_quadratic() -> None:
    task = gaussian(fn="quadratic", mu=0.7, sigma=1.3, k=-0.3)
    assert TaylorExpansion(task).expectation(task.theta).item() == pytest.approx(task.exact_value())


@pytest.mark.parametrize("name", ["score+delta", "pathwise+delta"])
def test_delta_control_variate_removes_all_variance_on_a_quadratic(name: str) -> None:
    task = gaussian(fn="quadratic", mu=1.0, sigma=2.0, k=0.5)
    draws = estimates(task, name, samples=200)
    for group, values in draws.items():
        assert values.var(0).max() < 1e-20
        assert torch.allclose(values.mean(0), task.exact_gradient()[group])


def test_beta_zero_recovers_the_base_estimator() -> None:
    task = gaussian(fn="cos", k=2.0)
    with_cv = estimates(task, "pathwise+delta", samples=500, beta=0.0)
    assert torch.allclose(with_cv["mu"].var(), estimates(task, "pathwise", samples=20000)["mu"].var(), rtol=0.3)
