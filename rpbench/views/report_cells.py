"""The cells of a report table: each number formatted, the best of each column, the bias marks."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rpbench.errors import UsageError
from rpbench.views.constants import BEST_IS_HIGHEST, DAGGER_NOTE, NO_BEST, STAR_NOTE, WITH_CI
from rpbench.views.numbers import Number, format_number, format_ratio, needs_scientific
from rpbench.views.report_layout import Grid


@dataclass(frozen=True)
class TableCell:
    """One table cell: its number, whether it is the column's best, whether its bias is significant."""

    number: Number
    best: bool = False
    flagged: bool = False


def _best(values: pd.Series, metric: str) -> float | None:
    finite = values[np.isfinite(values.astype(float))]
    if metric in NO_BEST or finite.empty:
        return None
    return float(finite.max() if metric in BEST_IS_HIGHEST else finite.min())


def reference_row(grid: Grid, reference: str) -> str:
    """The row of ``relative_to``: an estimator name with one configuration, or a full row label."""
    if reference in grid.rows:
        return reference
    matches = [r for r in grid.rows if r == reference or r.startswith(f"{reference} (")]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise UsageError(f"relative_to {reference!r} has several configurations; choose one of: {'; '.join(matches)}")
    raise UsageError(f"relative_to {reference!r} is not among the estimators here: {'; '.join(grid.rows)}")


def grid_cells(grid: Grid, metric: str, relative_to: str | None = None) -> dict[tuple[str, int], TableCell]:
    """Format every present cell of the grid, keyed by (row label, column index)."""
    reference = reference_row(grid, relative_to) if relative_to is not None else None
    ranked = grid.value.abs() if metric == "bias" else grid.value
    cells: dict[tuple[str, int], TableCell] = {}
    for j in range(len(grid.columns)):
        best = _best(ranked[j], metric)
        scientific = needs_scientific(grid.value[j])
        base = ranked.at[reference, j] if reference is not None else math.nan
        for row in grid.rows:
            value = float(grid.value.at[row, j])
            if math.isnan(value):
                continue
            if reference is None:
                number = format_number(value, float(grid.lo.at[row, j]), float(grid.hi.at[row, j]), scientific)
            elif row == reference:
                number = Number("1")
            else:
                ratio = float(ranked.at[row, j]) / base if base and math.isfinite(base) else math.nan
                number = format_ratio(ratio)
            is_best = best is not None and float(ranked.at[row, j]) == best
            cells[row, j] = TableCell(number, is_best, bool(grid.significant.at[row, j]))
    return cells


def describe(metric: str, relative_to: str | None, level: float | None) -> str:
    """The caption's first words: what the cells show."""
    shown = "bias (absolute value)" if metric == "bias" and relative_to else metric
    if relative_to is not None:
        return f"{shown} relative to {relative_to} (ratio); best per column in bold"
    if metric not in WITH_CI:
        return f"{shown}; best per column in bold"
    ci = f"{level:.0%} CI" if level else "CI"
    return f"{shown} ± half-width of its {ci}; best per column in bold"


def notes(grid: Grid, cells: dict[tuple[str, int], TableCell]) -> list[str]:
    """The footnotes the table's marks need."""
    found = []
    if any(grid.biased.values()):
        found.append(DAGGER_NOTE)
    if any(cell.flagged for cell in cells.values()):
        found.append(STAR_NOTE)
    return found


def header(grid: Grid, column: tuple[str, ...]) -> str:
    """A column's header: its ``key=value`` pairs (``value`` where the table has one column)."""
    return ", ".join(f"{k}={v}" for k, v in zip(grid.keys, column, strict=True) if v) or "value"


def row_label(grid: Grid, row: str, dagger: str) -> str:
    """A row's label, with ``dagger`` after the estimator's name where it is biased by construction."""
    if not grid.biased.get(row):
        return row
    name, sep, rest = row.partition(" (")
    return f"{name}{dagger}{sep}{rest}"
