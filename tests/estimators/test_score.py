"""Score-function family: baselines computed as documented."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from rpbench.errors import UsageError
from rpbench.estimators.score import (
    Score,
    ScoreLeaveOneOut,
    ScoreMovingAverage,
    ScoreOptimal,
    exponential_moving_average,
)
from rpbench.params import resolve_grid
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
    # decay = 0: b_k = mean f of estimate k−1, so ĝ_k = mean_i (f_{k,i} − f̄_{k−1}) s_{k,i}.
    task = gaussian(fn="quadratic", k=0.0, mu=0.6, sigma=1.3)
    samples, batch = 8, 3
    got = ScoreMovingAverage({"decay": 0.0}).estimate(task, samples, batch, torch.Generator().manual_seed(5))
    burn_in = 5  # ceil(5 / (1 − decay)) estimates drawn first and discarded
    eps = task.noise(torch.Generator().manual_seed(5), (burn_in + samples, batch))[..., 0]
    f = (0.6 + 1.3 * eps) ** 2
    baseline = f.mean(1)[burn_in - 1 : -1, None]  # the estimate before each measured one
    centred, scored = f[burn_in:] - baseline, eps[burn_in:]
    torch.testing.assert_close(got["mu"][:, 0], (centred * scored / 1.3).mean(1), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(got["sigma"][:, 0], (centred * (scored**2 - 1) / 1.3).mean(1), rtol=1e-12, atol=1e-12)
    # and the check can fail: a baseline that includes the current estimate gives other numbers
    biased = f[burn_in:] - f.mean(1)[burn_in:, None]
    assert not torch.allclose(got["mu"][:, 0], (biased * scored / 1.3).mean(1))
    # with the variance it is there for: below REINFORCE's where f has a large mean
    offset = gaussian(fn="quadratic", k=0.0)
    draws = estimates(offset, "score+ma", samples=4000, decay=0.0)
    plain = estimates(offset, "score", samples=4000)
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
    """As the CLI and suites parse it: pilot >= 2 (one sample has no spread to weigh)."""
    owner = "estimator score+opt"
    with pytest.raises(UsageError, match=r"pilot='1' is out of range; expected a number >= 2"):
        resolve_grid(ScoreOptimal.params, {"pilot": ["1"]}, owner)
    with pytest.raises(UsageError, match=r"pilot='2.5' is not a valid int"):
        resolve_grid(ScoreOptimal.params, {"pilot": ["2.5"]}, owner)
    assert resolve_grid(ScoreOptimal.params, {"pilot": ["2", "500"]}, owner) == {"pilot": (2, 500)}
    assert resolve_grid(ScoreOptimal.params, {}, owner) == {"pilot": (1000,)}


def test_optimal_baseline_is_the_closed_form_on_a_gaussian() -> None:
    """f = (x − k)², a = μ − k: ``b_μ = E[f ε²]/E[ε²] = a² + 3σ²``, ``b_σ = E[f (ε²−1)²]/E[(ε²−1)²] = a² + 5σ²``."""
    mu, sigma, k = 1.5, 0.8, -0.5
    task = gaussian(fn="quadratic", mu=mu, sigma=sigma, k=k)
    estimator = ScoreOptimal({"pilot": 200_000})
    estimator.prepare(task, 1, torch.Generator().manual_seed(8))
    a2 = (mu - k) ** 2
    baseline = {group: float(value) for group, value in estimator._baseline.items()}
    assert baseline["mu"] == pytest.approx(a2 + 3 * sigma**2, rel=0.02)
    assert baseline["sigma"] == pytest.approx(a2 + 5 * sigma**2, rel=0.02)
    # and the check can fail: the mean of f (a plain average baseline) is a² + σ², not either
    assert baseline["mu"] != pytest.approx(a2 + sigma**2, rel=0.02)


def test_score_is_f_times_the_score_on_the_same_noise() -> None:
    # ĝ_μ = mean_i f(x_i) ε_i / σ, ĝ_σ = mean_i f(x_i)(ε_i² − 1) / σ for x = μ + σε.
    task = gaussian(fn="cos", k=1.7, mu=-0.2, sigma=1.4, dim=2)
    got = Score().estimate(task, 6, 4, torch.Generator().manual_seed(6))
    eps = task.noise(torch.Generator().manual_seed(6), (6, 4))
    f = torch.cos(1.7 * (-0.2 + 1.4 * eps)).sum(-1, keepdim=True)  # one unit: Σ_d g(x_d)
    torch.testing.assert_close(got["mu"], (f * eps / 1.4).mean(1), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(got["sigma"], (f * (eps**2 - 1) / 1.4).mean(1), rtol=1e-12, atol=1e-12)


def test_score_estimates_have_the_law_of_f_times_the_score() -> None:
    """At μ = 0, σ = 1 with f = x², one sample's ĝ_μ = ε³: its cube root is standard normal."""
    task = gaussian(fn="quadratic", k=0.0, mu=0.0, sigma=1.0)
    draws = estimates(task, "score", samples=5000)
    eps = (draws["mu"].sign() * draws["mu"].abs() ** (1 / 3)).numpy().ravel()
    assert stats.kstest(eps, "norm").pvalue > 1e-3
    assert np.isclose(eps.mean(), 0, atol=4 / np.sqrt(5000))
    # and the check can fail: ĝ_σ = ε²(ε² − 1) is not the cube of a normal
    sigma = draws["sigma"]
    assert stats.kstest((sigma.sign() * sigma.abs() ** (1 / 3)).numpy().ravel(), "norm").pvalue < 1e-6


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
