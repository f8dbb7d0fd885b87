"""The regression gate: compare two runs row by row (the tests: :mod:`rpbench.views.compare_tests`).

comparison = compare_runs(load_run("results/baseline/ci.csv"), load_run("results/new"))
comparison.failed, comparison.table
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from rpbench.errors import UsageError
from rpbench.views.compare_match import canonical, match, plain
from rpbench.views.compare_tests import (
    BASELINE,
    NEW,
    Change,
    Quantiles,
    Rows,
    bias_change,
    cell_float,
    higher_is_better_change,
    speed_change,
    variance_like_change,
    z_value,
)
from rpbench.views.constants import (
    COMPARED,
    HIGHER_IS_BETTER,
    LOWER_IS_BETTER,
    RELATIVE_SPEED,
    SPEED,
    SPEED_METRICS,
)
from rpbench.views.loader import Run

REQUIRED = ("task", "estimator", "group", "variance")
TABLE_COLUMNS = ("metric", "baseline", "new", "ratio", "ratio_lo", "ratio_hi", "p_value", "verdict", "note")


@dataclass
class Comparison:
    """Every comparison made (``changes``, also the unchanged ones), and the failures among them."""

    changes: list[Change]
    regressions: list[Change]
    speed_regressions: list[Change]
    matched: int

    @property
    def improvements(self) -> list[Change]:
        """Changes that are significantly better (speed included)."""
        return [c for c in self.changes if c.improvement]

    @property
    def regressed(self) -> list[Change]:
        """Every regression: the metrics' first, then the speed regressions."""
        return [*self.regressions, *self.speed_regressions]

    @property
    def failed(self) -> bool:
        """Whether the gate fails: any metric or speed regression."""
        return bool(self.regressions or self.speed_regressions)

    @property
    def table(self) -> pd.DataFrame:
        """One row per change: its configuration columns (empty where a key does not apply, e.g.
        ``group`` for a cell's shared timing), then ``metric``, ``baseline``, ``new``, ``ratio``,
        ``ratio_lo``, ``ratio_hi``, ``p_value``, ``verdict`` and ``note``."""
        keys = list(dict.fromkeys(c for change in self.changes for c in change.key))
        records = [
            {**{k: change.key.get(k) for k in keys}, **{name: getattr(change, name) for name in TABLE_COLUMNS}}
            for change in self.changes
        ]
        return pd.DataFrame(records, columns=[*keys, *TABLE_COLUMNS])


def parse_metrics(metrics: Sequence[str] | str) -> list[str]:
    """``"variance,bias"`` or a list into the metrics to compare; a :class:`UsageError` on unknown ones."""
    names = metrics.split(",") if isinstance(metrics, str) else [m for item in metrics for m in str(item).split(",")]
    chosen = list(dict.fromkeys(m.strip() for m in names if m.strip()))
    unknown = [m for m in chosen if m not in COMPARED]
    if unknown:
        raise UsageError(
            f"--metric {', '.join(unknown)}: not a comparable metric; valid choices: {', '.join(COMPARED)} "
            f"({SPEED} is always compared, see --speed-tolerance)"
        )
    return chosen


def _check_options(tolerance: float, speed_tolerance: float, level: float) -> None:
    if not (tolerance >= 0 and math.isfinite(tolerance)):
        raise UsageError(f"--tolerance {tolerance}: a relative tolerance is a finite number >= 0, e.g. 0.1")
    if not speed_tolerance >= 0:
        raise UsageError(f"--speed-tolerance {speed_tolerance}: a relative tolerance is >= 0, e.g. 1.0 (twice as slow)")
    if not 0.0 < level < 1.0:
        raise UsageError(f"--level {level}: a confidence level lies in (0, 1), e.g. 0.99")


def _check_columns(runs: Sequence[Run], chosen: Sequence[str], speed: bool) -> None:
    for run, label in zip(runs, (BASELINE, NEW), strict=True):
        if run.kind == "train":
            raise UsageError(
                f"{label} is a training run (curves.csv); compare compares measurements: give its "
                "measure.csv (rpbench train --measure K), or read its final.csv"
            )
        missing = [c for c in REQUIRED if c not in run.results.columns]
        if missing:
            raise UsageError(f"{label} is not an rpbench results table (no column {', '.join(missing)})")
    wanted = [f"{m}{s}" for m in chosen for s in ("", "_lo", "_hi")] + ([SPEED] if speed else [])
    for run, label in zip(runs, (BASELINE, NEW), strict=True):
        absent = [c for c in wanted if c not in run.results.columns]
        if absent:
            raise UsageError(f"unusable input: {label} has no column {', '.join(absent)}")


def _metric_change(key: dict[str, object], metric: str, rows: Rows, zs: Quantiles, tolerance: float) -> Change:
    if metric in LOWER_IS_BETTER:
        return variance_like_change(key, metric, rows, zs, tolerance)
    if metric in HIGHER_IS_BETTER:
        return higher_is_better_change(key, metric, rows, zs, tolerance)
    return bias_change(key, rows, zs, tolerance)


def compare_runs(
    baseline: Run,
    new: Run,
    metrics: Sequence[str] | str = ("variance", "bias"),
    tolerance: float = 0.1,
    speed_tolerance: float = 1.0,
    level: float = 0.99,
) -> Comparison:
    """Compare NEW with BASELINE row by row (:mod:`rpbench.views.compare_tests`: the tests).

    Rows are matched by their configuration (the key columns of the runs' roles; NaN matches
    NaN, ``1`` matches ``1.0``).  Different key columns, a row without a match on the other side,
    or a duplicate configuration is a :class:`UsageError`, as is an unknown metric.
    ``tolerance`` is the relative change a metric may make before it counts, ``speed_tolerance``
    the same for ``sec_per_estimate`` (``math.inf`` switches the speed gate off), ``level`` the
    confidence level of each test.  Each run's stored intervals are at its own :attr:`Run.level`.
    """
    chosen = parse_metrics(metrics)
    _check_options(tolerance, speed_tolerance, level)
    _check_columns((baseline, new), chosen, math.isfinite(speed_tolerance))
    keys, pairs = match(baseline, new)
    zs = (z_value(baseline.level), z_value(new.level), z_value(level))
    records_b, records_n = baseline.results.to_dict("records"), new.results.to_dict("records")
    changes: list[Change] = []
    for position_b, position_n in pairs:
        rows = (records_b[position_b], records_n[position_n])
        key = {c: plain(rows[0][c]) for c in keys}
        changes.extend(_metric_change(dict(key), metric, rows, zs, tolerance) for metric in chosen)
    if math.isfinite(speed_tolerance):
        changes.extend(_speed_changes(keys, pairs, records_b, records_n, speed_tolerance))
    return Comparison(
        changes=changes,
        regressions=[c for c in changes if c.regression and c.metric not in SPEED_METRICS],
        speed_regressions=[c for c in changes if c.regression and c.metric in SPEED_METRICS],
        matched=len(pairs),
    )


def _timing(row: Mapping[str, object]) -> tuple[str, ...]:
    return tuple(repr(cell_float(row, f"{m}{s}")) for m in (SPEED, RELATIVE_SPEED) for s in ("", "_lo", "_hi"))


def _speed_changes(
    keys: Sequence[str],
    pairs: Sequence[tuple[int, int]],
    records_b: Sequence[Mapping[str, object]],
    records_n: Sequence[Mapping[str, object]],
    speed_tolerance: float,
) -> list[Change]:
    """Speed per cell: the groups of a cell share one timing, so it is compared once (key without
    ``group``) where all its rows agree on it in both tables, else row by row."""
    cells: dict[tuple[str, ...], list[Rows]] = {}
    for position_b, position_n in pairs:
        rows = (records_b[position_b], records_n[position_n])
        cells.setdefault(tuple(canonical(rows[0][c]) for c in keys if c != "group"), []).append(rows)
    changes = []
    for members in cells.values():
        shared = len({(_timing(b), _timing(n)) for b, n in members}) == 1
        for rows in members[:1] if shared else members:
            key = {c: plain(rows[0][c]) for c in keys if not (shared and c == "group")}
            changes.append(speed_change(key, rows, speed_tolerance))
    return changes


__all__ = ["Change", "Comparison", "compare_runs", "parse_metrics"]
