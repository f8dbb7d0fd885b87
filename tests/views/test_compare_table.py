"""The console table of a comparison: regressions first, the configuration that tells rows apart."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from rpbench.views.compare import compare_runs
from rpbench.views.compare_table import changes_table
from rpbench.views.loader import load_run
from tests.views.test_compare import scaled, timed


def render(table: object) -> str:
    console = Console(file=io.StringIO(), width=200)
    console.print(table)
    return console.file.getvalue()  # type: ignore[attr-defined]


def test_changes_table_lists_regressions_first(tiny_dir: Path) -> None:
    base = load_run(tiny_dir)
    frame = base.results
    new = scaled(base, "variance", 1 / 3, frame["estimator"] == "pathwise")
    new = scaled(new, "variance", 3.0, frame["estimator"] == "score")
    new = timed(new, 3.0, None)
    text = render(changes_table(compare_runs(timed(base, 1.0, None), new)))
    lines = [line for line in text.splitlines() if "estimator=" in line]
    assert len(lines) == 4 + 4 + 4  # variance regressions, speed regressions, improvements
    verdicts = [("speed regression" in line, "improvement" in line) for line in lines]
    assert verdicts == [(False, False)] * 4 + [(True, False)] * 4 + [(False, True)] * 4
    assert "estimator=score group=mu k=0.5" in text and "task=" not in text
    assert "group=all" in text  # a cell's shared timing
    assert "no significant changes" in render(changes_table(compare_runs(base, base), only_changes=False))
