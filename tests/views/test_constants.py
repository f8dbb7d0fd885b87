"""The view-side metric constants agree with the columns' contract and with what the metrics module writes."""

from __future__ import annotations

import pytest

from rpbench import columns, metrics
from rpbench.errors import UsageError
from rpbench.views import constants


def test_metrics_a_view_shows_are_the_measured_ones() -> None:
    assert constants.SHOWN_METRICS is columns.SHOWN_METRICS  # one definition, torch-free
    assert set(constants.SHOWN_METRICS) <= set(metrics.COLUMNS)  # each one a column summarize() writes
    assert set(constants.SHOWN_METRICS) == {*columns.METRICS, "kurtosis"}
    assert set(columns.METRICS) == constants.WITH_CI and "kurtosis" not in constants.WITH_CI
    assert set(constants.COMPARED) <= set(constants.SHOWN_METRICS) and constants.SPEED in columns.METRICS
    assert set(constants.LOWER_IS_BETTER) | {"bias"} | constants.HIGHER_IS_BETTER == set(constants.COMPARED)


def test_check_choice_names_the_choices() -> None:
    constants.check_choice("csv", constants.REPORT_FORMATS, "format")
    with pytest.raises(UsageError, match=r"unknown format 'html'; valid choices: markdown, latex, csv"):
        constants.check_choice("html", constants.REPORT_FORMATS, "format")
