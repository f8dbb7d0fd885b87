"""The console summary renders the numbers of a run, per task and group."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from rich.console import Console

from rpbench.columns import result_columns
from rpbench.errors import UsageError
from rpbench.views.loader import Run
from rpbench.views.summary import summary_tables


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


def run_of(rows: list[dict]) -> Run:
    """The rows as a run whose task parameters are fn and k, its estimator parameter decay."""
    columns = result_columns([("fn", str), ("k", float), ("width", int)], [("decay", float)])
    return Run(pd.DataFrame(rows), meta={"options": {"level": 0.95}}, columns=columns)


def test_summary_has_a_table_per_group_and_marks_bias() -> None:
    rows = [row("score", "mu", 2.5), row("pathwise", "mu", 0.125, biased=True), row("score", "sigma", 3.0)]
    tables = summary_tables(run_of(rows), "variance")
    assert len(tables) == 2
    text = render(tables[0])
    assert "2.5" in text and "0.125*" in text and "group mu" in text
    assert "0.125*" in [cell for column in tables[0].columns for cell in column._cells]  # biased: never bold
    assert tables[0].caption == "gaussian: fn=cos, k=1, K=10, n=1"


def test_a_swept_estimator_gets_one_column_per_configuration() -> None:
    rows = [row("score+ma", "mu", 1.0, decay=0.5), row("score+ma", "mu", 2.0, decay=0.9), row("score", "mu", 3.0)]
    (table,) = summary_tables(run_of(rows), "variance")
    assert [c.header for c in table.columns] == [
        "configuration",
        "score+ma (decay=0.5)",
        "score+ma (decay=0.9)",
        "score",
    ]


def test_one_table_list_for_every_task_of_a_suite() -> None:
    rows = [row("score", "mu", 1.0), row("score", "mu", 2.0) | {"k": 2.0}]
    rows += [row("score", "mu", 4.0) | {"task": "toy", "fn": None, "k": None, "width": 3}]
    tables = summary_tables(run_of(rows), "variance")
    assert [t.caption for t in tables] == ["gaussian: fn=cos, K=10, n=1", "toy: width=3, K=10, n=1"]
    gaussian, toy = render(tables[0]), render(tables[1])
    assert "k=1 " in gaussian and "k=2 " in gaussian
    assert "default" in toy and "k=" not in toy


def test_an_unknown_metric_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match=r"unknown metric 'speed'; valid choices: variance"):
        summary_tables(run_of([row("score", "mu", 1.0)]), "speed")


def bounded_row(estimator: str, variance: float, lo: float, hi: float, **extra: object) -> dict:
    return row(estimator, "mu", variance) | {"variance_lo": lo, "variance_hi": hi, "status": "ok"} | extra


def cells_of(table: object) -> list[str]:
    return [cell for column in table.columns[1:] for cell in column._cells]  # type: ignore[attr-defined]


def test_cells_show_the_interval_and_bold_only_a_significant_best() -> None:
    apart = [bounded_row("score", 13.1, 9.9, 17.9), bounded_row("pathwise", 3.85, 3.53, 4.2)]
    (table,) = summary_tables(run_of(apart), "variance")
    assert cells_of(table) == ["13.1 [9.9, 17.9]", "[bold green]3.85 [3.53, 4.20][/]"]
    overlapping = [bounded_row("score", 13.1, 9.9, 17.9), bounded_row("score+opt", 16.6, 3.5, 82.1)]
    (table,) = summary_tables(run_of(overlapping), "variance")
    assert cells_of(table) == ["13.1 [9.9, 17.9]", "16.6 [3.5, 82.1]"]  # the smallest value alone would be bold
    biased = [bounded_row("score", 13.1, 9.9, 17.9), bounded_row("pathwise", 0.0, 0.0, 0.0, bias_significant=True)]
    (table,) = summary_tables(run_of(biased), "variance")
    assert cells_of(table) == ["13.1 [9.9, 17.9]", "0*"]  # a biased zero does not win


def test_a_failed_cell_reads_failed_with_its_error_in_a_footnote() -> None:
    rows = [
        bounded_row("score", 13.1, 9.9, 17.9),
        row("pathwise", "mu", float("nan")) | {"status": "failed", "error": "RuntimeError: boom"},
    ]
    (table,) = summary_tables(run_of(rows), "variance")
    assert cells_of(table)[1] == "[red]failed[1][/]"
    assert "[1] pathwise on default: RuntimeError: boom" in str(table.caption)


def test_heavy_tails_are_marked_where_k_is_too_small_for_the_kurtosis() -> None:
    rows = [
        bounded_row("score", 13.1, 9.9, 17.9, kurtosis=5.0, samples=1000),
        bounded_row("score+opt", 16.6, 3.5, 82.1, kurtosis=300.0, samples=1000),
    ]
    (table,) = summary_tables(run_of(rows), "variance")  # √(299/1000) = 0.55 > 0.3; √(4/1000) is not
    assert cells_of(table) == ["13.1 [9.9, 17.9]", "16.6 [3.5, 82.1]!"]
    assert "! heavy tails: K is too small" in str(table.caption)
    flagged = [bounded_row("score", 13.1, 9.9, 17.9, kurtosis=300.0, tail_warning=False)]
    (table,) = summary_tables(run_of(flagged), "variance")  # the run's own flag decides where it has one
    assert cells_of(table) == ["13.1 [9.9, 17.9]"]


def test_a_list_of_n_gives_a_line_per_n_and_adaptive_k_its_starting_and_reached_k() -> None:
    rows = [row("score", "mu", 1.0 / n) | {"batch": n} for n in (1, 2, 4)]
    text = render(summary_tables(run_of(rows), "variance")[0])
    assert all(f"n={n}" in text for n in (1, 2, 4)) and "0.25" in text and "K=10" in text
    columns = result_columns([("fn", str), ("k", float)], [("decay", float)], adaptive=True)
    adaptive = [row("score", "mu", 2.0) | {"samples": 800, "start_samples": 100, "target_reached": True}]
    adaptive += [row("pathwise", "mu", 1.0) | {"samples": 200, "start_samples": 100, "target_reached": True}]
    table = summary_tables(Run(pd.DataFrame(adaptive), meta={}, columns=columns), "variance")[0]
    text = render(table)
    assert "K0=100" in text and "K reached 200–800" in text and "n=1" in text
