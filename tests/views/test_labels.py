"""Labels and number formats shared by the views."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from rpbench.views.labels import (
    estimator_labels,
    format_value,
    is_true,
    key_text,
    parse_bool,
    settings_text,
    short_number,
    varying,
)


def test_values_read_as_on_the_command_line() -> None:
    assert [format_value(v) for v in (2, np.int64(8), 2.0, 0.5, 1e-7, True, np.True_, "cos")] == [
        "2",
        "8",
        "2",
        "0.5",
        "1e-07",
        "True",
        "True",
        "cos",
    ]
    assert [format_value(v) for v in (None, math.nan, pd.NA, np.float64("nan"))] == ["", "", "", ""]


def test_settings_leave_out_empty_values() -> None:
    row = {"sigma": 1.0, "fn": None, "latents": 2}
    assert settings_text(row, ["sigma", "fn", "latents"]) == "sigma=1, latents=2"
    assert settings_text(row, ["sigma", "latents"], sep=" ") == "sigma=1 latents=2"
    assert key_text({"estimator": "score", "k": 2.0, "decay": None}, ["estimator", "decay", "k"]) == (
        "estimator=score, k=2.0"
    )


def test_labels_show_settings_only_when_an_estimator_is_swept() -> None:
    frame = pd.DataFrame(
        {
            "estimator": ["score+ma", "score+ma", "score", "gumbel"],
            "decay": [0.5, 0.9, None, None],
            "tau": [None] * 3 + [1],
        }
    )
    before = frame.copy()
    labels = estimator_labels(frame, ["decay", "tau"])
    assert frame.equals(before)  # the frame is left as it was
    assert labels.tolist() == ["score+ma (decay=0.5)", "score+ma (decay=0.9)", "score", "gumbel"]
    assert estimator_labels(frame, ["decay"], exclude=["decay"]).tolist() == ["score+ma", "score+ma", "score", "gumbel"]
    assert varying(frame, ["decay", "tau", "colour"]) == ["decay", "tau"]
    assert varying(frame[frame["estimator"] == "gumbel"], ["decay", "tau"]) == []


def test_short_numbers() -> None:
    assert [short_number(v) for v in (0.0, 2.5, 0.125, 12345.0, 0.0001234, math.nan, None, math.inf, -math.inf)] == [
        "0",
        "2.5",
        "0.125",
        "1.23e+04",
        "1.23e-04",
        "–",
        "–",
        "∞",
        "−∞",
    ]


def test_bools() -> None:
    assert [parse_bool(t) for t in ("True", "false", " 1 ", "no", "maybe", "")] == [
        True,
        False,
        True,
        False,
        None,
        None,
    ]
    assert [is_true(v) for v in (True, np.True_, "true", False, "False", None, pd.NA, math.nan)] == [True] * 3 + [
        False
    ] * 5
