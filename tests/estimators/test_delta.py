"""Delta-method control variates: exact for quadratics, unchanged mean elsewhere."""

from __future__ import annotations

import pytest
import torch

from rpbench.estimators.delta import PathwiseDelta, ScoreDelta, TaylorExpansion
from rpbench.estimators.pathwise import Pathwise
from rpbench.estimators.score import Score
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


@pytest.mark.parametrize(("controlled", "base"), [(PathwiseDelta, Pathwise), (ScoreDelta, Score)])
def test_beta_zero_recovers_the_base_estimator(controlled, base) -> None:
    """β = 0: the same estimates as the base estimator's on the same noise, not just the same variance."""
    task = gaussian(fn="cos", k=2.0, dim=2)
    with_cv = controlled({"beta": 0.0}).estimate(task, 500, 3, torch.Generator().manual_seed(1))
    plain = base().estimate(task, 500, 3, torch.Generator().manual_seed(1))
    for group in plain:
        torch.testing.assert_close(with_cv[group], plain[group], rtol=1e-12, atol=1e-12)
    # and the check can fail: β = 1 changes every estimate
    changed = controlled({"beta": 1.0}).estimate(task, 500, 3, torch.Generator().manual_seed(1))
    assert not torch.isclose(changed["mu"], plain["mu"]).any()
