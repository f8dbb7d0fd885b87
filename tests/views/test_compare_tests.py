"""The statistical tests row by row, on hand-made rows whose answers are known."""

from __future__ import annotations

import math

import pytest

from rpbench.views.compare_tests import (
    bias_change,
    cell_float,
    speed_change,
    variance_like_change,
    z_value,
)

Z95 = z_value(0.95)
ZS = (Z95, Z95, z_value(0.99))


def row(value: float, half: float, metric: str = "variance", **extra: object) -> dict[str, object]:
    """A row with ``metric`` = value and a symmetric interval of ``half``, on a unit gradient."""
    return {metric: value, f"{metric}_lo": value - half, f"{metric}_hi": value + half, "exact": 1.0, **extra}


def test_z_value_and_cells() -> None:
    assert z_value(0.95) == pytest.approx(1.959964) and z_value(0.99) == pytest.approx(2.575829)
    assert cell_float({"a": "2.5"}, "a") == 2.5 and math.isnan(cell_float({"a": None}, "a"))
    assert math.isnan(cell_float({}, "a"))


def test_a_variance_ratio_far_above_the_tolerance_regresses() -> None:
    change = variance_like_change({}, "variance", (row(1.0, 0.1), row(3.0, 0.3)), ZS, 0.1)
    assert change.regression and change.ratio == pytest.approx(3.0) and change.ratio_lo > 1.1
    same = variance_like_change({}, "variance", (row(1.0, 0.1), row(1.05, 0.105)), ZS, 0.1)
    assert not same.regression and not same.improvement and same.verdict == ""


def test_bias_must_grow_significantly_and_materially() -> None:
    grown = bias_change({}, (row(0.0, 0.01, "bias"), row(0.2, 0.01, "bias")), ZS, 0.1)
    assert grown.regression and grown.p_value is not None and grown.p_value < 1e-6
    noise = bias_change({}, (row(0.0, 0.1, "bias"), row(0.05, 0.1, "bias")), ZS, 0.0)
    assert not noise.regression


def test_speed_needs_a_large_slowdown() -> None:
    slower = speed_change({}, (row(1.0, 0.1, "sec_per_estimate"), row(3.0, 0.3, "sec_per_estimate")), 1.0)
    assert slower.verdict == "speed regression"
    assert not speed_change({}, (row(1.0, 0.1, "sec_per_estimate"), row(1.5, 0.1, "sec_per_estimate")), 1.0).regression


def timed(seconds: float, relative: float | None, spread: float = 1.2) -> dict[str, object]:
    """A row timed at ``seconds`` per estimate (and ``relative`` reference workloads), each with a
    median interval of a factor ``spread`` either way."""
    out: dict[str, object] = {}
    for metric, value in (("sec_per_estimate", seconds), ("relative_cost", relative)):
        if value is not None:
            out |= {metric: value, f"{metric}_lo": value / spread, f"{metric}_hi": value * spread}
    return out


def test_speed_compares_relative_costs_where_both_rows_have_them() -> None:
    busy = speed_change({}, (timed(1.0, 0.5), timed(4.0, 0.55)), 1.0)  # the machine was 4x slower, not the code
    assert busy.metric == "relative_cost" and busy.ratio == pytest.approx(1.1) and not busy.regression
    slower = speed_change({}, (timed(1.0, 0.5), timed(12.0, 1.5)), 1.0)  # 3x the reference workloads
    assert slower.regression and slower.verdict == "speed regression" and slower.ratio == pytest.approx(3.0)
    assert slower.ratio_lo == pytest.approx(3.0 / math.exp(math.hypot(math.log(1.2), math.log(1.2))))


def test_speed_falls_back_to_seconds_without_a_reference_and_says_so() -> None:
    old = speed_change({}, (timed(1.0, None), timed(3.0, 0.5)), 1.0)  # a baseline from before the reference
    assert old.metric == "sec_per_estimate" and old.regression
    assert old.note == "no machine-speed reference: seconds compared"


def test_speed_within_the_timing_intervals_is_no_regression() -> None:
    noisy = speed_change({}, (timed(1.0, 0.5, spread=2.5), timed(4.0, 1.5, spread=2.5)), 1.0)
    assert noisy.ratio == pytest.approx(3.0) and not noisy.regression  # log 3 < √2 · log 2.5
    assert speed_change({}, (timed(4.0, 1.5), timed(1.0, 0.5)), 1.0).improvement
