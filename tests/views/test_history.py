"""The console view of a history: one row per run and configuration, the change points counted and marked."""

from __future__ import annotations

import io

import pandas as pd
from rich.console import Console

from rpbench.views.history import history_view


def frame() -> pd.DataFrame:
    rows = []
    for commit, value, change in (("a" * 10, 1.0, ""), ("b" * 10, 4.0, "regression"), ("c" * 10, 1.1, "improvement")):
        for estimator in ("score", "pathwise"):
            rows.append(
                {
                    "machine": "m1",
                    "commit": commit,
                    "dirty": commit == "c" * 10,
                    "commit_date": None,
                    "run_id": f"run-{commit[0]}",
                    "estimator": estimator,
                    "sigma": 1.0,
                    "group": "mu",
                    "variance": value,
                    "variance_lo": value * 0.9,
                    "variance_hi": value * 1.1,
                    "change": change if estimator == "score" else "",
                }
            )
    return pd.DataFrame(rows)


def rendered(data: pd.DataFrame) -> str:
    out = io.StringIO()
    Console(file=out, width=200).print(history_view(data, "variance", ["estimator", "sigma", "group"]))
    return out.getvalue()


def test_rows_are_grouped_by_configuration_in_commit_order_and_changes_counted() -> None:
    text = rendered(frame())
    assert "over 3 run(s), 1 regression(s), 1 improvement(s)" in text
    lines = [line for line in text.splitlines() if "estimator=" in line]
    assert [line.split("│")[2].strip() for line in lines] == ["a" * 10, "b" * 10, "c" * 10] * 2
    assert lines[0].split("│")[1].strip() == "estimator=pathwise, group=mu"  # sigma does not vary: not shown
    assert "4 [3.6, 4.4]" in text and "[lower, upper bound of its CI]" in text
    assert sum("regression" in line for line in lines) == 1 and sum("yes" in line for line in lines) == 2
