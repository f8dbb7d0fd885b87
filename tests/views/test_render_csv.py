"""The CSV pivot: each metric column with its bounds, ratios with theirs."""

from __future__ import annotations

import math

from rpbench.views.loader import Run
from rpbench.views.render_csv import pivot_frame
from rpbench.views.report_layout import build_grid


def test_a_pivot_has_value_and_bounds_per_column(gaussian_run: Run) -> None:
    frame = pivot_frame(build_grid(gaussian_run, "variance"), "variance", None)
    column = "variance[group=mu;sigma=1;fn=quadratic]"
    bounds = frame[[column, column.replace("variance[", "variance_lo["), column.replace("variance[", "variance_hi[")]]
    finite = bounds.dropna()
    value, lo, hi = (finite.iloc[:, i] for i in range(3))
    assert len(finite) >= 4 and ((lo <= value) & (value <= hi)).all()


def test_ratios_have_bounds_around_them(gaussian_run: Run) -> None:
    frame = pivot_frame(build_grid(gaussian_run, "variance"), "variance", "pathwise")
    column = "variance_ratio[group=mu;sigma=1;fn=quadratic]"
    score = frame.loc[frame["estimator"] == "score"].iloc[0]
    lo, hi = score[column.replace("_ratio[", "_ratio_lo[")], score[column.replace("_ratio[", "_ratio_hi[")]
    assert lo < score[column] < hi and not math.isnan(lo)
    assert (frame.loc[frame["estimator"] == "pathwise", column] == 1.0).all()
