"""The cells of a report table: each number with its interval, the significant best, the marks.

Rules (each stated in the table's caption where it applies):

* A cell shows the value and its confidence interval as it is (:mod:`rpbench.views.numbers`).
* Below its row's round-off resolution (:mod:`rpbench.views.resolution`) a value shows as 0.
* **Best** is marked only where it is significant: the best value's interval does not overlap the
  runner-up's.  Where it does, every row whose interval overlaps the best one's is marked (a tie),
  or none where all tie; never on metrics without an interval, never with fewer than two rows.
  Rows that are biased (by construction, or significantly: ``*``) are not candidates unless
  ``best_includes_biased``.  For ``bias`` every row is a candidate and only a single
  significantly smallest bias is marked (ties of noise are not).
* Ratios to a reference row have an interval from the two cells' intervals: on the log scale,
  each arm the root-sum-square of the matching arms of the two (the cells are independent
  draws); none where a value is not positive (a bias).  The best is that of the values, not of
  the ratios (the reference's own uncertainty does not decide it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rpbench.errors import UsageError
from rpbench.views.constants import (
    BEST_IS_HIGHEST,
    CURVE_METRICS,
    DAGGER_NOTE,
    MISSING,
    NO_BEST,
    STAR_NOTE,
    WITH_CI,
)
from rpbench.views.numbers import Number, format_interval, format_zero
from rpbench.views.report_layout import Grid


@dataclass(frozen=True)
class TableCell:
    """One table cell: its number, whether it is marked best, whether its bias is significant,
    and whether it shows round-off as 0."""

    number: Number
    best: bool = False
    flagged: bool = False
    zero: bool = False


@dataclass(frozen=True)
class Bounded:
    """A value with its interval (NaN bounds: none)."""

    value: float
    lo: float
    hi: float

    def absolute(self) -> Bounded:
        """|value| with the interval mapped to |·| (0 at the bottom where it holds 0)."""
        top = max(abs(self.lo), abs(self.hi))
        if self.lo <= 0 <= self.hi:
            return Bounded(abs(self.value), 0.0, top)
        return Bounded(abs(self.value), min(abs(self.lo), abs(self.hi)), top)

    @property
    def has_interval(self) -> bool:
        """Both bounds known (an infinite value, an exact estimator's SNR, has infinite ones)."""
        return not (math.isnan(self.lo) or math.isnan(self.hi))


BIAS_METRICS: frozenset[str] = frozenset({"bias", "bias_debiased"})
"""Metrics of bias: every row is a candidate, and only a single significantly smallest is best."""


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


def ratio_interval(cell: Bounded, reference: Bounded) -> Bounded:
    """``cell / reference`` with its interval: log-scale arms added in quadrature; a lower bound of 0
    stays 0 (an upper one of the reference at 0 gives no upper bound); NaN bounds where a value or
    an upper bound is not positive and finite."""
    if not reference.value or not math.isfinite(reference.value):
        return Bounded(math.nan, math.nan, math.nan)
    ratio = cell.value / reference.value
    parts = (cell.value, cell.hi, reference.value, reference.hi)
    if not (all(math.isfinite(p) and p > 0 for p in parts) and cell.lo >= 0 and reference.lo >= 0):
        return Bounded(ratio, math.nan, math.nan)

    up = math.hypot(
        math.log(cell.hi / cell.value), math.inf if reference.lo <= 0 else math.log(reference.value / reference.lo)
    )
    down = math.hypot(
        math.inf if cell.lo <= 0 else math.log(cell.value / cell.lo), math.log(reference.hi / reference.value)
    )
    return Bounded(ratio, ratio * math.exp(-down), ratio * math.exp(up) if math.isfinite(up) else math.nan)


def best_rows(cells: dict[str, Bounded], metric: str) -> set[str]:
    """The rows marked best among ``cells`` (the candidates): see the module's rules."""
    if metric in NO_BEST or (metric not in WITH_CI and metric not in CURVE_METRICS):
        return set()
    bounded = {r: c for r, c in cells.items() if not math.isnan(c.value) and c.has_interval}
    if len(bounded) < 2:
        return set()
    higher = metric in BEST_IS_HIGHEST
    leader = (max if higher else min)(bounded, key=lambda r: bounded[r].value)
    best = bounded[leader]

    def overlaps(other: Bounded) -> bool:
        return other.lo <= best.hi and best.lo <= other.hi

    tied = {r for r, c in bounded.items() if overlaps(c)}
    if metric in BIAS_METRICS:
        return tied if len(tied) == 1 else set()
    return set() if len(tied) == len(bounded) else tied


def magnitude(grid: Grid, row: str, j: int, absolute: bool) -> Bounded:
    """Cell (row, j) with its interval; with ``absolute``, |value| with the interval mapped to |·|."""
    cell = Bounded(*(float(frame.at[row, j]) for frame in (grid.value, grid.lo, grid.hi)))
    return cell.absolute() if absolute else cell


def _ratio(cell: Bounded, base: Bounded, is_reference: bool, is_zero: bool) -> Bounded:
    """A cell of a ratio table: 1 for the reference, 0 for round-off, else :func:`ratio_interval`."""
    if is_reference:
        return Bounded(1.0, 1.0, 1.0)
    if is_zero:
        return Bounded(0.0, 0.0, 0.0)
    return ratio_interval(cell, base)


def _candidates(grid: Grid, present: list[str], j: int, metric: str, best_includes_biased: bool) -> list[str]:
    if best_includes_biased or metric in BIAS_METRICS or metric in CURVE_METRICS:
        return present
    return [r for r in present if not grid.biased.get(r) and not bool(grid.significant.at[r, j])]


def grid_cells(
    grid: Grid, relative_to: str | None = None, best_includes_biased: bool = False
) -> dict[tuple[str, int], TableCell]:
    """Format every present cell of the grid, keyed by (row label, column index); each column's
    metric is ``grid.metric_of[j]``."""
    reference = reference_row(grid, relative_to) if relative_to is not None else None
    cells: dict[tuple[str, int], TableCell] = {}
    for j in range(len(grid.columns)):
        metric = grid.metric_of[j]
        present = [r for r in grid.rows if not math.isnan(float(grid.value.at[r, j]))]
        signed = {r: magnitude(grid, r, j, absolute=False) for r in present}
        ranked = {r: magnitude(grid, r, j, absolute=metric == "bias") for r in present}
        resolution = {r: float(grid.resolution.at[r, j]) for r in present}
        zeros = {r for r in present if resolution[r] > 0 and abs(signed[r].value) <= resolution[r]}
        for r in zeros:  # round-off is 0, and so is its interval below the resolution: the zeros tie
            ranked[r] = Bounded(0.0, 0.0, ranked[r].hi if ranked[r].hi > resolution[r] else 0.0)
        candidates = _candidates(grid, present, j, metric, best_includes_biased)
        best = best_rows({r: ranked[r] for r in candidates}, metric)  # ratios share it: same order
        shown = signed
        if reference is not None:
            base = ranked.get(reference, Bounded(math.nan, math.nan, math.nan))
            shown = {r: _ratio(c, base, r == reference, r in zeros) for r, c in ranked.items()}
        for row in present:
            cell = shown[row]
            if reference is not None and row == reference:
                number = Number("1")
            elif row in zeros:
                number = format_zero(cell.lo, cell.hi, 0.0 if reference is not None else resolution[row])
            else:
                number = format_interval(cell.value, cell.lo, cell.hi)
            marked = row in best and number.text != MISSING
            cells[row, j] = TableCell(number, marked, bool(grid.significant.at[row, j]), row in zeros)
    return cells


def round_off_note(grid: Grid, cells: dict[tuple[str, int], TableCell]) -> str | None:
    """The caption words for cells shown as 0 (their resolution), or ``None`` where there are none."""
    levels = sorted({float(grid.resolution.at[r, j]) for (r, j), cell in cells.items() if cell.zero})
    if not levels:
        return None
    span = f"{levels[0]:.1e}" if len(levels) == 1 else f"{levels[0]:.1e}–{levels[-1]:.1e}"
    return f"0: below round-off ({span}: 1e-12 of the squared gradient, 1e-6 of the gradient for a bias or mean)"


def symmetric_table(cells: dict[tuple[str, int], TableCell]) -> bool:
    """Whether every interval of the table is symmetric (then shown as ``value ± half-width``)."""
    bounded = [cell.number for cell in cells.values() if cell.number.lo is not None]
    return bool(bounded) and all(n.symmetric for n in bounded)


def interval_words(
    cells: dict[tuple[str, int], TableCell],
    level: float | None,
    what: str = "CI",
    value: str = "value",
    latex: bool = False,
) -> str:
    """How the cells show their intervals: ``value [lo, hi]``, or ``value ± half-width`` where every
    interval of the table is symmetric."""
    ci = f"{level:.0%} {what}" if level else what
    if symmetric_table(cells):
        return f"{value} ± half-width of its {ci}"
    if latex:  # LaTeX writes the arms: value^{+(upper - value)}_{-(value - lower)}
        return f"{value} with superscript +(upper - {value}) and subscript -({value} - lower) of its {ci}"
    return f"{value} [lower, upper bound of its {ci}]"


def best_words(metrics: list[str], best_includes_biased: bool) -> str | None:
    """What bold means, for the metrics of a table."""
    if not any(m not in NO_BEST and (m in WITH_CI or m in CURVE_METRICS) for m in metrics):
        return None
    all_candidates = best_includes_biased or set(metrics) <= BIAS_METRICS | set(CURVE_METRICS)
    among = "" if all_candidates else ", among rows without bias"
    words = f"bold: the best and every row whose interval overlaps it{among} (none where all overlap)"
    if BIAS_METRICS & set(metrics):
        words += "; for bias only a single significantly smallest one"
    return words


def notes(grid: Grid, cells: dict[tuple[str, int], TableCell]) -> list[str]:
    """The footnotes the table's marks need."""
    found = []
    if any(grid.biased.values()):
        found.append(DAGGER_NOTE)
    if any(cell.flagged for cell in cells.values()):
        found.append(STAR_NOTE)
    return found


def header(grid: Grid, column: tuple[str, ...]) -> str:
    """A column's header: its ``key=value`` pairs (the metric by name; ``value`` where the table
    has one column)."""
    parts = [v if k == "metric" else f"{k}={v}" for k, v in zip(grid.keys, column, strict=True) if v]
    return ", ".join(parts) or "value"


def row_label(grid: Grid, row: str, dagger: str) -> str:
    """A row's label, with ``dagger`` after the estimator's name where it is biased by construction."""
    if not grid.biased.get(row):
        return row
    name, sep, rest = row.partition(" (")
    return f"{name}{dagger}{sep}{rest}"
