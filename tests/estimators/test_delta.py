"""Delta-method control variates: exact for quadratics, unchanged mean elsewhere.

In float64 and float32 alike, "exact" meaning to the precision's round-off
(:func:`tests.conftest.round_off`)."""

from __future__ import annotations

import pytest
import torch

from rpbench.estimators.delta import PathwiseDelta, ScoreDelta, TaylorExpansion
from rpbench.estimators.pathwise import Pathwise
from rpbench.estimators.score import Score
from tests.conftest import DTYPES, ROUND_OFF_EPS, estimates, gaussian, round_off


@pytest.mark.parametrize("dtype", DTYPES)
def test_taylor_expansion_of_a_quadratic_is_the_function_itself(dtype: str) -> None:
    task = gaussian(fn="quadratic", dim=2, mu=0.7, k=-0.3, dtype=dtype)
    taylor = TaylorExpansion(task)
    x = torch.randn(10, 2, dtype=task.dtype, generator=torch.Generator().manual_seed(0))
    tolerance = ROUND_OFF_EPS * torch.finfo(task.dtype).eps
    torch.testing.assert_close(taylor(x), task.objective(task.theta, x), rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("dtype", DTYPES)
def test_taylor_expectation_matches_the_closed_form_for_a_quadratic(dtype: str) -> None:
    task = gaussian(fn="quadratic", mu=0.7, sigma=1.3, k=-0.3, dtype=dtype)
    expectation = TaylorExpansion(task).expectation(task.theta)
    assert expectation.dtype == task.dtype
    assert expectation.item() == pytest.approx(task.exact_value(), rel=ROUND_OFF_EPS * torch.finfo(task.dtype).eps)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["score+delta", "pathwise+delta"])
def test_delta_control_variate_removes_all_variance_on_a_quadratic(name: str, dtype: str) -> None:
    task = gaussian(fn="quadratic", mu=1.0, sigma=2.0, k=0.5, dtype=dtype)
    draws = estimates(task, name, samples=200)
    for group, values in draws.items():
        exact = task.exact_gradient()[group]
        allowed = round_off(values.dtype, exact)  # per coordinate, float64
        wide = values.to(torch.float64)
        assert (wide.var(0) < allowed**2).all()
        assert ((wide.mean(0) - exact).abs() < allowed).all()
    # and the check can fail: the score function without the control variate has variance far above it
    plain = estimates(task, "score", samples=200)["mu"].to(torch.float64)
    assert (plain.var(0) > round_off(task.dtype, task.exact_gradient()["mu"]) ** 2).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("controlled", "base"), [(PathwiseDelta, Pathwise), (ScoreDelta, Score)])
def test_beta_zero_recovers_the_base_estimator(controlled, base, dtype: str) -> None:
    """β = 0: the same estimates as the base estimator's on the same noise, not just the same variance."""
    task = gaussian(fn="cos", k=2.0, dim=2, dtype=dtype)
    tolerance = ROUND_OFF_EPS * torch.finfo(task.dtype).eps
    with_cv = controlled({"cv_beta": 0.0}).estimate(task, 500, 3, torch.Generator().manual_seed(1))
    plain = base().estimate(task, 500, 3, torch.Generator().manual_seed(1))
    for group in plain:
        torch.testing.assert_close(with_cv[group], plain[group], rtol=tolerance, atol=tolerance)
    # and the check can fail: β = 1 changes every estimate, typically far beyond round-off
    changed = controlled({"cv_beta": 1.0}).estimate(task, 500, 3, torch.Generator().manual_seed(1))
    assert (changed["mu"] != plain["mu"]).all()
    assert (changed["mu"] - plain["mu"]).abs().median() > 1000 * tolerance
