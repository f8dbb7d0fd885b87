"""Console views render the numbers they are given."""

from __future__ import annotations

import io

import pandas as pd
from rich.console import Console

from rpbench.registry import ESTIMATORS, TASKS, load_builtins
from rpbench.summary import estimator_labels, estimators_table, summary_tables, tasks_table


def render(table: object) -> str:
    buffer = io.StringIO()
    Console(file=buffer, width=200, color_system=None).print(table)
    return buffer.getvalue()


def row(estimator: str, group: str, variance: float, biased: bool = False, decay: float | None = None) -> dict:
    return {
        "task": "gaussian",
        "estimator": estimator,
        "group": group,
        "samples": 10,
        "batch": 1,
        "fn": "cos",
        "k": 1.0,
        "decay": decay,
        "variance": variance,
        "bias_significant": biased,
    }


def test_summary_has_a_table_per_group_and_marks_bias() -> None:
    rows = [row("score", "mu", 2.5), row("pathwise", "mu", 0.125, biased=True), row("score", "sigma", 3.0)]
    tables = summary_tables(rows, "variance", ["fn", "k"], ["decay"])
    assert len(tables) == 2
    text = render(tables[0])
    assert "2.5" in text and "0.125*" in text and "group mu" in text


def test_labels_show_settings_only_when_an_estimator_is_swept() -> None:
    frame = pd.DataFrame(
        [row("score+ma", "mu", 1, decay=0.5), row("score+ma", "mu", 1, decay=0.9), row("score", "mu", 1)]
    )
    assert estimator_labels(frame, ["decay"]) == ["score+ma(decay=0.5)", "score+ma(decay=0.9)", "score"]


def test_list_tables_show_every_registered_name() -> None:
    load_builtins()
    text = render(tasks_table(TASKS)) + render(estimators_table(ESTIMATORS))
    for name in [*TASKS, *ESTIMATORS]:
        assert name in text
