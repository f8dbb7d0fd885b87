"""A metric's series across the recorded runs of each machine, with its change points.

The runs of one machine are taken in commit-date order (:func:`rpbench.history.store.recorded_runs`).
Each pair of consecutive runs is compared row by row by :func:`rpbench.views.compare.compare_runs`,
the statistics of ``rpbench compare`` (:mod:`rpbench.views.compare_tests`), on the rows both hold:
a row whose metric changed significantly and by more than the tolerance is marked ``regression``
or ``improvement`` at the later run.  Rows are matched by their configuration without the run's base
``seed``: two runs at different seeds measure the same configuration independently, which is what
the tests assume.  A key column that the later run has and the earlier lacks is a
parameter added between the two commits: where it is *neutral* (its default is what the earlier
code measured) the earlier rows are taken at that default; runs whose key columns differ otherwise
are not compared with each other, and runs of different machines never are.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from rpbench.errors import UsageError
from rpbench.history.store import RecordedRun, recorded_runs
from rpbench.params import ParamSpec
from rpbench.registry import get_estimator, get_task
from rpbench.views.compare import compare_runs, parse_metrics
from rpbench.views.compare_match import canonical
from rpbench.views.loader import Run

SHORT_COMMIT = 10
SERIES_COLUMNS = ("machine", "commit", "dirty", "commit_date", "run_id")
RUN_SEED = ("seed",)


def history_table(
    history: str | Path,
    metric: str,
    where: Sequence[str] = (),
    machine: str | None = None,
    tolerance: float = 0.1,
    level: float = 0.99,
) -> pd.DataFrame:
    """One row per recorded run × result row: the run, the row's key, ``metric`` with its interval
    (``METRIC_lo``, ``METRIC_hi``) and ``change`` (``regression``, ``improvement`` or empty)."""
    (chosen,) = _one_metric(metric)
    runs = _on_machine(recorded_runs(history), machine, history)
    filtered = _filtered(runs, where)
    frames = []
    previous: dict[str, Run] = {}  # the last run of each machine
    for recorded, run in filtered:
        changes = _changes(previous.get(recorded.machine), run, chosen, tolerance, level)
        previous[recorded.machine] = run
        frame = run.results[[*run.key_columns, chosen, f"{chosen}_lo", f"{chosen}_hi"]].copy()
        frame["change"] = [changes.get(_key(run, i), "") for i in range(len(frame))]
        for column, value in zip(SERIES_COLUMNS, _series_values(recorded), strict=True):
            frame.insert(SERIES_COLUMNS.index(column), column, value)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def _one_metric(metric: str) -> list[str]:
    chosen = parse_metrics(metric)
    if len(chosen) != 1:
        raise UsageError(f"--metric {metric}: one metric at a time, e.g. --metric variance")
    return chosen


def _on_machine(runs: list[RecordedRun], machine: str | None, history: str | Path) -> list[RecordedRun]:
    if not runs:
        raise UsageError(f"{history}: the history holds no runs yet (`rpbench record RUN_DIR --history {history}`)")
    if machine is None:
        return runs
    kept = [r for r in runs if r.machine.startswith(machine)]
    if not kept:
        known = ", ".join(dict.fromkeys(f"{r.machine} ({r.machine_info.get('device_name')})" for r in runs))
        raise UsageError(f"--machine {machine}: no run of that machine; machines: {known}")
    return kept


def _filtered(runs: list[RecordedRun], where: Sequence[str]) -> list[tuple[RecordedRun, Run]]:
    """Each run with only the rows ``--where`` keeps; runs with none left out (an error if every run is)."""
    kept, first_error = [], None
    for recorded in runs:
        try:
            kept.append((recorded, recorded.run.where(list(where))))
        except UsageError as error:
            first_error = first_error or error
    if not kept:
        raise first_error or UsageError("no run to show")
    return kept


def _series_values(recorded: RecordedRun) -> tuple[object, ...]:
    return (recorded.machine, recorded.git_commit[:SHORT_COMMIT], recorded.dirty, recorded.commit_date, recorded.run_id)


def _key(run: Run, position: int) -> tuple[str, ...]:
    row = run.results.iloc[position]
    return tuple(canonical(row[column]) for column in _identity(run))


def _changes(earlier: Run | None, run: Run, metric: str, tolerance: float, level: float) -> dict[tuple[str, ...], str]:
    """The verdict of each row of ``run`` against the same machine's previous run (``{}`` where none)."""
    if earlier is None:
        return {}
    earlier = _with_neutral_defaults(earlier, run)
    if _identity(earlier) != _identity(run):
        return {}
    common = _rows(earlier) & _rows(run)
    if not common:
        return {}
    comparison = compare_runs(_common(earlier, common), _common(run, common), [metric], tolerance, math.inf, level)
    verdicts = {}
    for change in comparison.changes:
        key = tuple(canonical(change.key[column]) for column in _identity(run))
        verdicts[key] = "regression" if change.regression else "improvement" if change.improvement else ""
    return verdicts


def _with_neutral_defaults(earlier: Run, later: Run) -> Run:
    """``earlier`` with the key columns that ``later`` added filled in at their defaults, where each is a
    *neutral* parameter (:class:`~rpbench.params.ParamSpec`): one added later whose default is what
    every run before it measured.  Any other difference in key columns leaves ``earlier`` as it is
    (and so not compared)."""
    added = [c for c in later.key_columns if c not in earlier.key_columns]
    if not added:
        return earlier
    results = earlier.results.copy()
    for name in added:
        defaults = _neutral_defaults(name, results)
        if defaults is None:
            return earlier
        results[name] = defaults
    columns = [*earlier.columns, *(c for c in later.columns if c.name in added)]
    return dataclasses.replace(earlier, results=results, columns=columns)


def _neutral_defaults(name: str, results: pd.DataFrame) -> list[object] | None:
    """Per row, the default of the neutral parameter ``name`` of the row's task or estimator (missing
    where neither has it); ``None`` where some row's task or estimator has ``name`` but not neutral."""
    values: list[object] = []
    for task, estimator in zip(results["task"], results["estimator"], strict=True):
        specs = [p for cls in (_registered(get_task, task), _registered(get_estimator, estimator)) for p in cls]
        spec = next((p for p in specs if p.name == name), None)
        if spec is not None and not spec.neutral:
            return None
        values.append(None if spec is None else spec.default)
    return values


def _registered(lookup: Callable[[str], type], name: object) -> tuple[ParamSpec, ...]:
    try:
        return tuple(getattr(lookup(str(name)), "params", ()))
    except UsageError:  # a plugin's task or estimator that is not loaded: nothing known of it
        return ()


def _identity(run: Run) -> list[str]:
    """The key columns that identify a configuration across runs: all but the run's base seed (two runs
    at different seeds are two measurements of the same configuration)."""
    return [c for c in run.key_columns if c not in RUN_SEED]


def _rows(run: Run) -> set[tuple[str, ...]]:
    return {_key(run, i) for i in range(len(run.results))}


def _common(run: Run, keys: set[tuple[str, ...]]) -> Run:
    """``run`` with the rows whose configuration is in ``keys``, without its seed column."""
    kept = [_key(run, i) in keys for i in range(len(run.results))]
    return run.with_results(run.results[kept].drop(columns=[c for c in RUN_SEED if c in run.results]))
