"""The cells of a report table: the significant best, ratio intervals, reference rows."""

from __future__ import annotations

import math

import pytest

from rpbench.errors import UsageError
from rpbench.views.report_cells import Bounded, best_rows, best_words, ratio_interval


def test_a_best_clear_of_the_others_is_marked_alone() -> None:
    cells = {"a": Bounded(1.0, 0.9, 1.1), "b": Bounded(2.0, 1.8, 2.2)}
    assert best_rows(cells, "variance") == {"a"}
    assert best_rows(cells, "snr") == {"b"}  # higher is better


def test_ties_are_all_marked_and_a_tie_of_all_marks_none() -> None:
    cells = {"a": Bounded(1.0, 0.9, 1.2), "b": Bounded(1.1, 1.15, 1.3), "c": Bounded(3.0, 2.8, 3.2)}
    assert best_rows(cells, "variance") == {"a", "b"}
    assert best_rows({k: cells[k] for k in "ab"}, "variance") == set()
    # the rule "smallest value wins" would mark a: this is the variant that must not pass
    assert best_rows({k: cells[k] for k in "ab"}, "variance") != {"a"}


def test_bias_marks_only_a_single_significantly_smallest() -> None:
    noise = {"a": Bounded(1e-17, 0.0, 2e-17), "b": Bounded(0.04, 0.0, 0.26)}
    assert best_rows(noise, "bias") == set()  # both reach zero: noise does not win
    clear = {"a": Bounded(0.05, 0.03, 0.07), "b": Bounded(0.2, 0.1, 0.3)}
    assert best_rows(clear, "bias") == {"a"}


def test_no_best_without_intervals_or_for_the_mean() -> None:
    unbounded = {"a": Bounded(1.0, math.nan, math.nan), "b": Bounded(2.0, math.nan, math.nan)}
    assert best_rows(unbounded, "variance") == set()
    assert best_rows({"a": Bounded(1.0, 0.9, 1.1), "b": Bounded(2.0, 1.8, 2.2)}, "mean") == set()
    assert best_rows({"a": Bounded(1.0, 0.9, 1.1)}, "variance") == set()  # one candidate
    assert best_rows({"a": Bounded(1.0, 0.9, 1.1), "b": Bounded(2.0, 1.8, 2.2)}, "kurtosis") == set()


def test_an_infinite_snr_wins() -> None:
    cells = {"exact": Bounded(math.inf, math.inf, math.inf), "b": Bounded(2.0, 1.8, 2.2)}
    assert best_rows(cells, "snr") == {"exact"}


def test_ratio_intervals_add_log_arms_in_quadrature() -> None:
    ratio = ratio_interval(Bounded(4.0, 2.0, 16.0), Bounded(2.0, 1.0, 4.0))
    assert ratio.value == 2.0
    assert ratio.hi == pytest.approx(2.0 * math.exp(math.hypot(math.log(4.0), math.log(2.0))))
    assert ratio.lo == pytest.approx(2.0 * math.exp(-math.hypot(math.log(2.0), math.log(2.0))))
    assert math.isnan(ratio_interval(Bounded(4.0, 2.0, 8.0), Bounded(2.0, 0.0, 4.0)).hi)  # reference reaches 0
    assert math.isnan(ratio_interval(Bounded(1.0, 0.5, 2.0), Bounded(0.0, 0.0, 0.0)).value)


def test_best_words_say_what_bold_means() -> None:
    assert "among rows without bias" in str(best_words(["variance"], False))
    assert "among rows without bias" not in str(best_words(["variance"], True))
    assert best_words(["mean"], False) is None and best_words(["kurtosis"], False) is None
    assert "single significantly smallest" in str(best_words(["bias"], False))


def test_unknown_reference_is_a_usage_error(gaussian_run: object) -> None:
    from rpbench.views.report_cells import reference_row
    from rpbench.views.report_layout import build_grid

    grid = build_grid(gaussian_run, "variance")  # type: ignore[arg-type]
    assert reference_row(grid, "pathwise") == "pathwise"
    with pytest.raises(UsageError, match="not among the estimators here"):
        reference_row(grid, "magic")
