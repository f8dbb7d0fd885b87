"""Metrics and their intervals against direct computations, and coverage where tails are heavy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from rpbench.metrics import SIGNIFICANT_LEVEL, per_coordinate, summarize


def test_point_values_match_numpy_in_one_dimension() -> None:
    rng = np.random.default_rng(0)
    g = rng.normal(2.0, 3.0, size=(500, 1))
    row = summarize(torch.from_numpy(g), torch.tensor([1.5]), [0.5, 0.6, 0.7])
    assert row["mean"] == pytest.approx(g.mean())
    assert row["bias"] == pytest.approx(g.mean() - 1.5)
    assert row["variance"] == pytest.approx(g.var(ddof=1))
    assert row["mse"] == pytest.approx(np.mean((g - 1.5) ** 2))
    assert row["snr"] == pytest.approx(abs(g.mean()) / g.std(ddof=1))
    assert row["cosine"] == pytest.approx(np.mean(np.sign(g)))
    assert row["sec_per_estimate"] == pytest.approx(0.6 / 500)
    assert row["work_variance"] == pytest.approx(row["variance"] * row["sec_per_estimate"])
    half = stats.norm.ppf(0.975) * g.std(ddof=1) / math.sqrt(500)
    assert row["mean_lo"] == pytest.approx(g.mean() - half)
    assert row["bias_hi"] == pytest.approx(g.mean() - 1.5 + half)


def test_vector_metrics_are_norms_and_traces() -> None:
    rng = np.random.default_rng(1)
    g = rng.normal([1.0, -2.0, 0.5], [1.0, 2.0, 0.1], size=(800, 3))
    exact = np.array([1.0, -2.0, 0.4])
    row = summarize(torch.from_numpy(g), torch.from_numpy(exact), [1.0])
    assert row["n_coords"] == 3
    assert row["mean"] == pytest.approx(np.linalg.norm(g.mean(0)))
    assert row["exact"] == pytest.approx(np.linalg.norm(exact))
    assert row["bias"] == pytest.approx(np.linalg.norm(g.mean(0) - exact))
    assert row["variance"] == pytest.approx(np.trace(np.cov(g.T)))
    assert row["variance_per_coord"] == pytest.approx(np.trace(np.cov(g.T)) / 3)
    cos = (g @ exact) / (np.linalg.norm(g, axis=1) * np.linalg.norm(exact))
    assert row["cosine"] == pytest.approx(cos.mean())
    assert row["bias_lo"] <= row["bias"] <= row["bias_hi"]
    assert row["bias_lo"] >= 0


def test_unknown_truth_gives_nan_truth_metrics() -> None:
    row = summarize(torch.randn(50, 2, dtype=torch.float64), None, [1.0])
    assert math.isnan(row["bias"]) and math.isnan(row["mse"]) and math.isnan(row["cosine"])
    assert not math.isnan(row["variance"])


def test_zero_variance_gives_a_degenerate_interval() -> None:
    row = summarize(torch.full((10, 1), 2.0, dtype=torch.float64), torch.tensor([2.0]), [1.0, 1.0])
    assert row["variance"] == row["variance_lo"] == row["variance_hi"] == 0.0
    assert row["bias"] == 0.0 and not row["bias_significant"]


# Score-function estimates for x² at μ = σ = 1 (k = 0): ε ↦ estimate, true variance, true kurtosis.
HEAVY_TAILED = {
    "score, group mu": (lambda e: (1 + e) ** 2 * e, 30.0),  # kurtosis ≈ 40
    "score, group sigma": (lambda e: (1 + e) ** 2 * (e**2 - 1), 136.0),  # kurtosis ≈ 253
}


def _coverage(kind: str, case: str, replications: int = 300, k: int = 1000) -> float:
    """Share of replications whose variance interval covers the true variance."""
    estimate, truth = HEAVY_TAILED[case]
    rng = np.random.default_rng(1)
    covered = 0
    for _ in range(replications):
        g = estimate(rng.standard_normal(k))
        if kind == "ours":
            row = summarize(torch.from_numpy(g[:, None]), torch.tensor([2.0]), [1.0])
            lo, hi = row["variance_lo"], row["variance_hi"]
        else:
            s2 = g.var(ddof=1)
            lo, hi = (k - 1) * s2 / stats.chi2.ppf(0.975, k - 1), (k - 1) * s2 / stats.chi2.ppf(0.025, k - 1)
        covered += lo <= truth <= hi
    return covered / replications


@pytest.mark.parametrize(("case", "floor"), [("score, group mu", 0.92), ("score, group sigma", 0.88)])
def test_variance_interval_keeps_its_coverage_on_heavy_tailed_score_estimates(case: str, floor: float) -> None:
    # 95 % nominal; 300 replications give a binomial SE of ~1.3 points.  Where the kurtosis is
    # ~250 no interval built from 1000 draws reaches 95 % (the tail is rarely seen); ours stays
    # within a few points while the normal-theory χ² interval covers well under two thirds.
    assert _coverage("ours", case) >= floor
    assert _coverage("chi-square", case) < 0.60


def test_variance_interval_is_close_to_nominal_for_normal_estimates() -> None:
    rng = np.random.default_rng(3)
    hits = 0
    for _ in range(300):
        row = summarize(torch.from_numpy(rng.standard_normal((500, 1))), None, [1.0])
        hits += row["variance_lo"] <= 1.0 <= row["variance_hi"]
    assert 0.92 <= hits / 300 <= 0.985


def test_bias_interval_covers_zero_for_unbiased_draws_at_the_nominal_rate() -> None:
    rng = np.random.default_rng(2)
    hits = 0
    for _ in range(400):
        g = rng.standard_normal((200, 4)) * [1.0, 2.0, 0.5, 1.0]
        row = summarize(torch.from_numpy(g), torch.zeros(4, dtype=torch.float64), [1.0])
        hits += row["bias_lo"] == 0.0
    assert hits / 400 >= 0.93  # the ball is conservative for a norm: at least nominal


def test_significance_flag_needs_four_standard_errors() -> None:
    g = torch.randn(10_000, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    se = float(g.std()) / 100
    shift = float(g.mean())
    assert not summarize(g, torch.tensor([shift + 3.5 * se]), [1.0])["bias_significant"]
    assert summarize(g, torch.tensor([shift + 4.5 * se]), [1.0])["bias_significant"]
    assert pytest.approx(1 - 2 * stats.norm.sf(4)) == SIGNIFICANT_LEVEL


def test_per_coordinate_summaries() -> None:
    g = torch.tensor([[1.0, 2.0], [3.0, 6.0]], dtype=torch.float64)
    out = per_coordinate(g, torch.tensor([2.0, 3.0]))
    assert torch.equal(out["mean"], torch.tensor([2.0, 4.0], dtype=torch.float64))
    assert torch.equal(out["bias"], torch.tensor([0.0, 1.0], dtype=torch.float64))
    assert torch.equal(out["variance"], torch.tensor([2.0, 8.0], dtype=torch.float64))


def test_time_interval_is_nan_with_one_repeat_and_finite_with_several() -> None:
    g = torch.randn(20, 1, dtype=torch.float64)
    assert math.isnan(summarize(g, None, [1.0])["sec_per_estimate_lo"])
    row = summarize(g, None, [1.0, 1.2, 0.8])
    assert row["sec_per_estimate_lo"] < row["sec_per_estimate"] < row["sec_per_estimate_hi"]
