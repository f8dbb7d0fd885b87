"""Score-function family: baselines computed as documented."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from rpbench.estimators.score import ScoreLeaveOneOut, ScoreOptimal, exponential_moving_average
from tests.conftest import estimates, gaussian, vae


def test_exponential_moving_average_matches_the_recursion() -> None:
    values = torch.tensor([3.0, 1.0, 4.0, 1.0, 5.0, 9.0], dtype=torch.float64)
    decay = 0.7
    expected, state = [], float(values[0])
    for v in values.tolist():
        state = decay * state + (1 - decay) * v
        expected.append(state)
    assert torch.allclose(exponential_moving_average(values, decay), torch.tensor(expected, dtype=torch.float64))


def test_moving_average_with_zero_decay_uses_the_previous_estimate_only() -> None:
    # decay = 0: b_k = mean f of estimate k−1, so ĝ_k = (f_k − f_{k−1}) s_k with n = 1.
    task = gaussian(fn="quadratic", k=0.0)
    draws = estimates(task, "score+ma", samples=4000, decay=0.0)
    plain = estimates(task, "score", samples=4000)
    assert draws["mu"].var() < plain["mu"].var()


def test_leave_one_out_refuses_a_single_sample() -> None:
    task = gaussian()
    assert "--batch >= 2" in ScoreLeaveOneOut.why_not(task, 1)
    assert ScoreLeaveOneOut.why_not(task, 2) is None


def test_leave_one_out_equals_the_closed_expression() -> None:
    # ĝ = 1/(n−1) Σ_i (f_i − f̄) ∇ log q(z_i), checked by hand on the same noise.
    task = gaussian(fn="cos", k=1.0, mu=0.3, sigma=0.8)
    generator = torch.Generator().manual_seed(4)
    got = ScoreLeaveOneOut().estimate(task, 5, 3, generator)
    eps = task.noise(torch.Generator().manual_seed(4), (5, 3))[..., 0]
    x = 0.3 + 0.8 * eps
    f = torch.cos(x)
    centred = f - f.mean(1, keepdim=True)
    expected_mu = (centred * eps / 0.8).sum(1) / 2
    expected_sigma = (centred * (eps**2 - 1) / 0.8).sum(1) / 2
    assert torch.allclose(got["mu"][:, 0], expected_mu)
    assert torch.allclose(got["sigma"][:, 0], expected_sigma)


def test_optimal_baseline_reduces_variance_where_the_objective_is_offset() -> None:
    # f = (x − k)² with large |μ − k| has a large mean: a constant baseline removes most variance.
    task = gaussian(fn="quadratic", mu=3.0, k=-2.0)
    plain = estimates(task, "score", samples=5000)["mu"].var()
    optimal = estimates(task, "score+opt", samples=5000)["mu"].var()
    assert optimal < 0.5 * plain


def test_optimal_baseline_pilot_size_is_validated() -> None:
    from rpbench.errors import UsageError

    spec = next(p for p in ScoreOptimal.params if p.name == "pilot")
    with pytest.raises(UsageError, match="pilot"):
        spec.parse("1", "estimator score+opt")


def test_score_noise_is_standard_normal() -> None:
    task = gaussian()
    eps = task.noise(torch.Generator().manual_seed(0), (5000, 1)).numpy().ravel()
    assert stats.kstest(eps, "norm").pvalue > 1e-3
    assert np.isclose(eps.mean(), 0, atol=4 / np.sqrt(5000))


def test_optimal_baseline_is_the_same_when_the_pilot_is_reduced_in_chunks() -> None:
    """prepare() sums the pilot in chunks (bounded memory); the baseline must not depend on them."""
    task = vae("discrete-vae", latents=2, categories=3)
    whole, chunked = ScoreOptimal({"pilot": 50}), ScoreOptimal({"pilot": 50})
    chunked.PILOT_VALUES = 7 * sum(t.numel() for g in task.theta.values() for t in g.values())  # 7 per chunk
    whole.prepare(task, 1, torch.Generator().manual_seed(3))
    chunked.prepare(task, 1, torch.Generator().manual_seed(3))
    for group in task.theta:
        for name, value in whole._baseline[group].items():
            torch.testing.assert_close(chunked._baseline[group][name], value, rtol=1e-5, atol=1e-7)
    first = whole.estimate(task, 5, 1, torch.Generator().manual_seed(4))
    again = whole.estimate(task, 5, 1, torch.Generator().manual_seed(4))  # the prepared baseline is reused
    torch.testing.assert_close(first["encoder"], again["encoder"], rtol=0, atol=0)
