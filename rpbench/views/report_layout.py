"""The layout of a report table: estimator configurations × task configurations, and its caption.

Rows are estimator configurations (:func:`~rpbench.views.labels.estimator_labels`), columns the
task keys that vary plus the parameter group (or the keys chosen); what no column shows goes to
the caption.  The figure of :mod:`rpbench.views.plot` uses the same labels and caption.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from rpbench.columns import ADAPTIVE_KEY, RUN_KEYS
from rpbench.errors import UsageError
from rpbench.views.constants import RUN_KEY_NAMES, WITH_CI
from rpbench.views.labels import (
    equal_cost_of,
    estimator_labels,
    format_value,
    is_true,
    settings_text,
    varying,
    with_batch,
)
from rpbench.views.loader import Run
from rpbench.views.resolution import exact_estimator, resolution


def parameters(run: Run) -> tuple[list[str], list[str]]:
    """The run's task and estimator parameters that have a value in some row (all-empty ones left out)."""
    frame = run.results

    def filled(names: list[str]) -> list[str]:
        return [n for n in names if frame[n].notna().any()]

    return filled(run.task_params), filled(run.estimator_params)


def select_group(frame: pd.DataFrame, group: str | None) -> pd.DataFrame:
    """The rows of one parameter group (all rows for ``None``); an unknown group is a :class:`UsageError`."""
    if group is None:
        return frame
    if "group" not in frame.columns:
        raise UsageError(f"group {group!r}: these results have no parameter groups (a training run?); drop the group")
    groups = list(dict.fromkeys(frame["group"].astype(str)))
    if group not in groups:
        raise UsageError(f"group {group!r} is not in these results; groups: {', '.join(groups)}")
    return frame[frame["group"].astype(str) == group]


def check_metric_column(frame: pd.DataFrame, metric: str) -> None:
    """A :class:`UsageError` where the run has no column for ``metric`` (written by an older version)."""
    if metric not in frame.columns:
        raise UsageError(f"metric {metric!r}: this run has no such column (it was written before rpbench had it)")


def interval(frame: pd.DataFrame, metric: str, absolute: bool = False) -> tuple[pd.Series, pd.Series, pd.Series]:
    """The metric and its CI bounds (NaN where there is none).  With ``absolute``, ``bias`` becomes
    |bias| with its interval mapped to |·| (0 at the bottom where the interval contains 0).  A metric
    of a training run's final table has its bounds (over seeds) in ``_lo``/``_hi`` columns too."""
    value = frame[metric].astype(float)
    bounded = {f"{metric}_lo", f"{metric}_hi"} <= set(frame.columns)
    if metric not in WITH_CI and not bounded:
        nan = pd.Series(np.nan, index=frame.index)
        return value, nan, nan
    lo, hi = frame[f"{metric}_lo"].astype(float), frame[f"{metric}_hi"].astype(float)
    if metric != "bias" or not absolute:
        return value, lo, hi
    straddles = (lo <= 0) & (hi >= 0)
    abs_lo = np.where(straddles, 0.0, np.minimum(lo.abs(), hi.abs()))
    abs_hi = np.maximum(lo.abs(), hi.abs())
    return value.abs(), pd.Series(abs_lo, index=frame.index), pd.Series(abs_hi, index=frame.index)


@dataclass
class Grid:
    """A metric laid out as estimator configurations × task configurations.

    ``columns`` holds each table column's key values (display strings, in the order of ``keys``);
    the frames are indexed by row label and column position; ``resolution`` holds each cell's
    round-off level (:mod:`rpbench.views.resolution`), ``metric_of`` each column's metric.
    """

    rows: list[str]
    biased: dict[str, bool]
    keys: list[str]
    columns: list[tuple[str, ...]]
    value: pd.DataFrame
    lo: pd.DataFrame
    hi: pd.DataFrame
    significant: pd.DataFrame
    caption: str
    resolution: pd.DataFrame
    metric_of: list[str] = field(default_factory=list)


def _column_keys(
    frame: pd.DataFrame, task_keys: list[str], est_params: list[str], chosen: list[str] | None
) -> list[str]:
    vary = varying(frame, [*task_keys, "group"])
    if chosen is None:  # outermost: the task (in a suite), then the group, then the parameters
        first = [k for k in ("task", "group") if k in vary]
        return [*first, *[k for k in vary if k not in first]]
    valid = [*task_keys, *est_params, "group"]
    unknown = [k for k in chosen if k not in valid]
    if unknown:
        raise UsageError(f"columns: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(valid)}")
    left = [k for k in vary if k not in chosen]
    if left:
        raise UsageError(
            f"columns: {', '.join(left)} also vary in these results; keys that vary: {', '.join(vary)} "
            "(put them in the columns, or filter the rows first, e.g. by group)"
        )
    return list(dict.fromkeys(chosen))


def _check_unique(frame: pd.DataFrame, work: pd.DataFrame, keys: list[str]) -> None:
    """A :class:`UsageError` if two results would share a table cell, naming what tells them apart."""
    clash = work.duplicated(["_row", "_col"], keep=False)
    if not clash.any():
        return
    first = work.loc[clash, ["_row", "_col"]].iloc[0]
    same = (work["_row"] == first["_row"]) & (work["_col"] == first["_col"])
    differ = varying(frame[same.to_numpy()], keys)
    raise UsageError(
        f"several results fall in one table cell ({first['_row']}); keys that tell them apart: "
        f"{', '.join(differ) or 'none (duplicate rows)'}; put them in the columns or filter the rows"
    )


def _order(frame: pd.DataFrame, keys: list[str]) -> list[tuple[str, ...]]:
    """Distinct column tuples, nested by key order, each key's values in order of appearance."""
    tuples = list(dict.fromkeys(zip(*(frame[k] for k in keys), strict=True))) if keys else [()]
    rank = {k: {v: i for i, v in enumerate(dict.fromkeys(frame[k]))} for k in keys}
    return sorted(tuples, key=lambda t: [rank[k][v] for k, v in zip(keys, t, strict=True)])


def run_keys_of(run: Run) -> list[str]:
    """The run's budget keys (role ``key``, kind ``run``): K, n, seed, device — with adaptive K the
    starting K instead of K, which is then an outcome (the K reached)."""
    return [c.name for c in run.columns if c.role == "key" and c.kind == "run"] or list(RUN_KEYS)


def build_grid(run: Run, metric: str, columns: list[str] | None = None, run_keys: Sequence[str] | None = None) -> Grid:
    """Pivot the run's rows to estimator configurations × task configurations (see ``report_text``).

    ``run_keys``: the run's settings (default :func:`run_keys_of`; a training run's final table has
    its own, without the seed).
    """
    run_keys = run_keys_of(run) if run_keys is None else run_keys
    budget = equal_cost_of(run.meta)
    if budget is not None:  # each estimator's n is its own (a row's), not a setting of the columns
        run_keys = [k for k in run_keys if k != "batch"]
    frame = run.results
    task_params, est_params = parameters(run)
    task_keys = ["task", *task_params, *run_keys]
    keys = _column_keys(frame, task_keys, est_params, columns)
    work = frame.copy()
    work["_row"] = estimator_labels(work, est_params, exclude=keys)
    if budget is not None:
        work["_row"] = [with_batch(label, n) for label, n in zip(work["_row"], work["batch"], strict=True)]
    for key in keys:
        work[key] = work[key].map(format_value).astype(object)
    work["_col"] = list(zip(*(work[k] for k in keys), strict=True)) if keys else [()] * len(work)
    _check_unique(frame, work, [*task_keys, *est_params, "group"])
    check_metric_column(work, metric)
    value, lo, hi = interval(work, metric)
    if metric == "snr":  # an exact estimator's SNR is infinite (round-off would make it 1e15)
        exact = exact_estimator(work)
        value, lo, hi = (series.mask(exact, math.inf) for series in (value, lo, hi))
    flags = work["bias_significant"].map(is_true) if "bias_significant" in work.columns else False
    work = work.assign(_value=value, _lo=lo, _hi=hi, _sig=flags, _res=resolution(work, metric))
    rows = list(dict.fromkeys(work["_row"]))
    order = _order(work, keys)
    position = {column: j for j, column in enumerate(order)}

    def pivot(name: str) -> pd.DataFrame:
        """Rows × column positions (0, 1, …) of one quantity; NaN where an estimator has no result."""
        blocks = work.groupby("_col", sort=False)
        table = {position[c]: dict(zip(block["_row"], block[name], strict=True)) for c, block in blocks}
        return pd.DataFrame(table, index=rows, columns=range(len(order)))

    caption = settings_caption(frame, task_keys, keys, run_keys)
    if budget is not None:
        caption += (
            f"; equal cost: at most {budget} evaluations of f per estimate (each estimator at the largest n within it)"
        )
    biased = dict(zip(work["_row"], work["biased"].map(is_true), strict=True))
    shown_keys, shown = _displayed(work, keys, order)
    value, lo, hi, significant, res = (pivot(name) for name in ("_value", "_lo", "_hi", "_sig", "_res"))
    return Grid(
        rows, biased, shown_keys, shown, value, lo, hi, significant, caption, res.fillna(0.0), [metric] * len(shown)
    )


def scaled(grid: Grid, factor: float) -> Grid:
    """The grid with every value and bound divided by ``factor`` (a unit: µs for seconds)."""
    return replace(grid, value=grid.value / factor, lo=grid.lo / factor, hi=grid.hi / factor)


def stack(grids: Sequence[tuple[str, Grid]]) -> Grid:
    """Grids of several metrics of the same rows side by side: ``metric`` becomes the outermost key
    (its value the label given with each grid)."""
    first = grids[0][1]
    columns = [(label, *c) for label, grid in grids for c in grid.columns]

    def joined(name: str) -> pd.DataFrame:
        frames = [getattr(grid, name) for _, grid in grids]
        frame = pd.concat(frames, axis=1)
        frame.columns = range(len(columns))
        return frame

    frames = {name: joined(name) for name in ("value", "lo", "hi", "significant", "resolution")}
    metric_of = [m for _, grid in grids for m in grid.metric_of]
    return Grid(
        first.rows,
        first.biased,
        ["metric", *first.keys],
        columns,
        frames["value"],
        frames["lo"],
        frames["hi"],
        frames["significant"],
        first.caption,
        frames["resolution"],
        metric_of,
    )


def _displayed(
    work: pd.DataFrame, keys: list[str], order: list[tuple[str, ...]]
) -> tuple[list[str], list[tuple[str, ...]]]:
    """Header keys and column tuples as headers show them: where several tasks share a table, a key
    that is constant within a column's task is left blank there (the caption gives it, task by
    task), and a key blank in every column is dropped."""
    if "task" in keys:
        tasks = work.groupby("task", sort=False)
        inside = {task: set(varying(rows, keys)) | {"task", "group"} for task, rows in tasks}
        where = keys.index("task")
        order = [tuple(v if k in inside[c[where]] else "" for k, v in zip(keys, c, strict=True)) for c in order]
    kept = [i for i in range(len(keys)) if any(c[i] for c in order)]
    return [keys[i] for i in kept], [tuple(c[i] for i in kept) for c in order]


CAPTION_RUN_KEYS: tuple[str, ...] = (ADAPTIVE_KEY, *RUN_KEYS)
"""The budget keys a caption may name (``K0`` where adaptive K started, ``K``, ``n``, …)."""


def settings_caption(
    frame: pd.DataFrame, task_keys: Sequence[str], shown: Iterable[str], run_keys: Sequence[str] = CAPTION_RUN_KEYS
) -> str:
    """The settings a table or figure does not show: ``task: constant parameters; K=…, n=…, seed=…``.

    With several tasks, each task's own constants come task by task, then what all rows share.
    ``run_keys`` are the keys of the ``K=…, n=…`` part (a training run has its own).
    """
    shown = set(shown) | ({"group"} if "group" not in frame.columns else set())
    tasks = list(frame.groupby("task", sort=False))
    common = [k for k in task_keys if k not in shown and not varying(frame, [k])]
    if len(tasks) == 1:
        return _caption_part(frame, common, with_task=True, with_group="group" not in shown, run_keys=run_keys)
    parts = []
    for name, rows in tasks:
        own = [k for k in task_keys if k not in common and k != "task" and not varying(rows, [k])]
        part = _caption_part(rows, own, with_task=False, with_group=False, sep=", ", run_keys=run_keys)
        parts.extend([f"{name}: {part}"] if part else [])
    last = _caption_part(frame, common, with_task=False, with_group="group" not in shown, run_keys=run_keys)
    return "; ".join([*parts, last])


def _caption_part(
    frame: pd.DataFrame,
    keys: list[str],
    with_task: bool,
    with_group: bool,
    sep: str = "; ",
    run_keys: Sequence[str] = CAPTION_RUN_KEYS,
) -> str:
    first = frame.iloc[0]
    params = settings_text(first, [k for k in keys if k not in ("task", *run_keys)])
    run = ", ".join(f"{RUN_KEY_NAMES.get(k, k)}={format_value(first[k])}" for k in run_keys if k in keys)
    group = f"group {first['group']}" if with_group else ""
    task = f"{first['task']}: " if with_task and "task" in keys else ""
    return task + sep.join(part for part in (params, group, run) if part)
