"""Round-off resolution: below it a table value is shown as 0, as compare counts it as zero."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from rpbench.views.compare_tests import ZERO
from rpbench.views.constants import ROUND_OFF
from rpbench.views.resolution import exact_estimator, gradient_scale_sq, resolution


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "exact": [2.0, math.nan, 0.0],
            "mean": [1.0, 3.0, 0.0],
            "n_coords": [4, 1, 1],
            "sec_per_estimate": [1e-6, 1e-6, 1e-6],
            "variance": [1e-31, 2.0, 0.0],
        }
    )


def test_the_scale_is_the_larger_of_exact_and_mean() -> None:
    assert list(gradient_scale_sq(frame())) == [4.0, 9.0, 0.0]


def test_squared_and_linear_metrics_have_their_own_resolution() -> None:
    rows = frame()
    assert list(resolution(rows, "variance")) == pytest.approx([4e-12, 9e-12, 0.0])
    assert list(resolution(rows, "variance_per_coord")) == pytest.approx([1e-12, 9e-12, 0.0])
    assert list(resolution(rows, "bias")) == pytest.approx([2e-6, 3e-6, 0.0])
    assert list(resolution(rows, "work_variance")) == pytest.approx([4e-18, 9e-18, 0.0])
    assert (resolution(rows, "snr") == 0).all() and (resolution(rows, "sec_per_estimate") == 0).all()
    assert ROUND_OFF == ZERO  # the tables and the regression gate agree on what is zero


def test_an_exact_estimator_is_one_whose_variance_is_round_off() -> None:
    # row 3 has no gradient scale: its zero variance cannot be told from a tiny one, so not flagged
    assert list(exact_estimator(frame())) == [True, False, False]
    assert list(resolution(pd.DataFrame({"variance": [1.0]}), "variance")) == [0.0]  # no scale columns
