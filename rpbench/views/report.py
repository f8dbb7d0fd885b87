"""Publication tables of a run: a DataFrame, Markdown, LaTeX (booktabs) or a plain CSV pivot.

Rows are estimator configurations, columns task configurations (every task parameter that varies,
plus the parameter group), cells the metric with its confidence interval as it is
(``16.6 [3.5, 82.1]``; rules in :mod:`rpbench.views.report_cells`); several metrics side by side::

    run = load_run("results/20260101-120000-gaussian-abc123")
    print(report_text(run, "variance", relative_to="pathwise"))
    print(report_text(run, "variance,snr,sec_per_estimate", fmt="latex", caption="…", label="tab:gauss"))

A training run's table (:attr:`Run.kind <rpbench.views.loader.Run.kind>` ``"train"``) shows the
final values of :func:`~rpbench.views.final.final_frame`: cells ``mean ± half-width`` of the
Student-t interval over seeds, of ``eval_elbo`` unless asked (higher is better)::

    print(report_text(load_run("results/20260101-120000-train-abc123"), at_seconds=60))
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from rpbench.errors import UsageError
from rpbench.views.constants import (
    CURVE_HIGHER_IS_BETTER,
    CURVE_METRICS,
    REPORT_FORMATS,
    SHOWN_METRICS,
    TRAIN_DEFAULT_METRIC,
    check_choice,
)
from rpbench.views.final import final_run
from rpbench.views.labels import format_value
from rpbench.views.loader import Run
from rpbench.views.numbers import time_unit
from rpbench.views.render_csv import pivot_frame
from rpbench.views.render_latex import render_latex
from rpbench.views.render_markdown import render_markdown
from rpbench.views.report_cells import (
    TableCell,
    best_words,
    grid_cells,
    interval_words,
    reference_row,
    round_off_note,
)
from rpbench.views.report_layout import Grid, build_grid, scaled, select_group, stack

DEFAULT_METRIC = "variance"
"""What a measurement run's table shows unless asked (a training run's: ``eval_elbo``)."""
TIME_METRICS: frozenset[str] = frozenset({"sec_per_estimate", "work_variance"})
"""Metrics in seconds (``work_variance``: variance × seconds), shown in a unit chosen per metric."""


PER_COST: dict[str, str] = {"evaluations": "eval_variance", "seconds": "work_variance"}
"""``report --per``: the cost the variance is weighted by, and the metric that is that product."""


def per_cost(metrics: Sequence[str], per: str | None) -> list[str]:
    """``metrics`` with the variance weighted by the cost ``per`` names (``--per evaluations``:
    ``eval_variance``; ``--per seconds``: ``work_variance``), so that a table compares estimators
    at equal cost; metrics with no per-cost form are refused."""
    if per is None:
        return list(metrics)
    if per not in PER_COST:
        raise UsageError(f"--per {per!r}: valid choices: {', '.join(PER_COST)}")
    out = []
    for name in metrics:
        if name not in ("variance", *PER_COST.values()):
            raise UsageError(f"--per {per} weights the variance by its cost; metric {name!r} has none (use variance)")
        out.append(PER_COST[per] if name == "variance" else name)
    return out


def default_metric(run: Run) -> str:
    """The metric a table or figure of ``run`` shows unless asked: by the run's kind."""
    return TRAIN_DEFAULT_METRIC if run.kind == "train" else DEFAULT_METRIC


def metric_list(run: Run, metric: str | Sequence[str] | None) -> list[str]:
    """The metrics asked for: one name, a comma list (``variance,snr``) or a sequence; each checked."""
    if metric is None:
        return [default_metric(run)]
    names = [m.strip() for m in metric.split(",")] if isinstance(metric, str) else [str(m) for m in metric]
    names = list(dict.fromkeys(n for n in names if n))
    if not names:
        raise UsageError("metric: give at least one metric name")
    for name in names:
        check_choice(name, CURVE_METRICS if run.kind == "train" else SHOWN_METRICS, "metric")
    return names


def _grid(run: Run, metric: str, group: str | None, columns: list[str] | None) -> Grid:
    check_choice(metric, SHOWN_METRICS, "metric")
    rows = select_group(run.results, group).reset_index(drop=True)
    return build_grid(run.with_results(rows), metric, columns)


def _check_measure(run: Run, at_seconds: float | None) -> None:
    if at_seconds is not None:
        raise UsageError("at_seconds is for training runs (curves.csv); this is a measurement run")


def _train_grid(
    run: Run,
    metric: str,
    group: str | None,
    columns: list[str] | None,
    relative_to: str | None,
    at_seconds: float | None,
) -> tuple[Grid, Run]:
    """The grid of a training run's final values (and the run of :func:`final_run` it lays out)."""
    check_choice(metric, CURVE_METRICS, "metric")
    select_group(run.results, group)  # a training run has no groups: any group is an error
    if relative_to is not None:
        raise UsageError("relative_to: a training run's table shows values, not ratios; drop relative_to")
    final = final_run(run, metric, at_seconds)
    run_keys = [c.name for c in final.columns if c.role == "key" and c.kind == "run"]
    return build_grid(final, metric, columns, run_keys), final


def _metric_grid(
    run: Run,
    metric: str,
    group: str | None,
    columns: list[str] | None,
    relative_to: str | None,
    at_seconds: float | None,
) -> tuple[Grid, Run | None]:
    """The grid of one metric, and for a training run the final run it lays out (``None`` else)."""
    if run.kind == "train":
        return _train_grid(run, metric, group, columns, relative_to, at_seconds)
    _check_measure(run, at_seconds)
    return _grid(run, metric, group, columns), None


def _span(values: pd.Series) -> str:
    numbers = sorted({format_value(float(v)) for v in values.dropna()}, key=float)
    return numbers[0] if len(numbers) == 1 else f"{numbers[0]}–{numbers[-1]}" if numbers else "–"


def train_context(final: pd.DataFrame, at_seconds: float | None) -> tuple[str, str]:
    """A training table's caption words: over how many seeds (the interval's name), and at which
    point of training the values are taken (with the failed runs left out)."""
    seeds = final.loc[final["seeds"] > 0, "seeds"]
    counted = _span(seeds.astype(float)) if not seeds.empty else "0"
    counted += " seed (no interval with one seed)" if counted == "1" else " seeds"
    mean_seconds = final["seconds"].mean()
    when = "no evaluation point" if math.isnan(mean_seconds) else f"{mean_seconds:.3g} s of training on average"
    within = "" if at_seconds is None else f" within {at_seconds:g} s of training"
    point = f"at each seed's last evaluation{within} (step {_span(final['step'])}, {when})"
    failed = int(final["failed"].sum())
    if failed:
        point += f"; {failed} failed run{'s' if failed != 1 else ''} left out"
    return f"t-interval over {counted}", point


def _train_pivot(grid: Grid, final: Run, metric: str, columns: list[str] | None) -> pd.DataFrame:
    """The plain pivot of a training table: the mean and bounds per column, then seeds and failed runs."""
    frame = pivot_frame(grid, metric, None)
    frame = frame.drop(columns=[c for c in frame.columns if c.startswith("bias_significant")])
    run_keys = [c.name for c in final.columns if c.role == "key" and c.kind == "run"]
    for count in ("seeds", "failed"):
        counts = pivot_frame(build_grid(final, count, columns, run_keys), count, None)
        kept = [c for c in counts.columns if c.startswith(count) and not c.startswith(f"{count}_")]
        frame = frame.join(counts[kept].astype("Int64"))
    return frame


def report_frame(
    run: Run,
    metric: str | None = None,
    relative_to: str | None = None,
    group: str | None = None,
    columns: list[str] | None = None,
    at_seconds: float | None = None,
) -> pd.DataFrame:
    """The table of :func:`report_text` as numbers: one row per estimator configuration (the index,
    labelled as the tables label rows), one column per task configuration.

    Values are the metric's values (NaN where an estimator has no result), or with
    ``relative_to`` the ratio to that estimator's value in the same column (of |bias| for bias).
    Columns are a :class:`pandas.MultiIndex` with one level per column key (a plain index for
    one key; a single column ``value`` where nothing varies).  ``attrs["caption"]`` holds the
    settings the columns do not show.  The bounds of the intervals are in ``report_text(…, fmt="csv")``.

    ``metric`` ``None`` is the run kind's default (:func:`default_metric`: ``variance``, or
    ``eval_elbo`` for a training run, whose values are the means over seeds at each seed's last
    evaluation point, or its last within ``at_seconds`` of training).
    """
    metric = default_metric(run) if metric is None else metric
    grid, _ = _metric_grid(run, metric, group, columns, relative_to, at_seconds)
    values = grid.value
    if relative_to is not None:
        reference = reference_row(grid, relative_to)
        ranked = values.abs() if metric == "bias" else values
        values = ranked / ranked.loc[reference]
    frame = values.copy()
    if len(grid.keys) > 1:
        frame.columns = pd.MultiIndex.from_tuples(grid.columns, names=grid.keys)
    elif grid.keys:
        frame.columns = pd.Index([c[0] for c in grid.columns], name=grid.keys[0])
    else:
        frame.columns = pd.Index(["value"])
    frame.index.name = "estimator"
    frame.attrs["caption"] = grid.caption
    return frame


def _in_unit(grid: Grid, metric: str, relative: bool) -> tuple[str, Grid]:
    """A time metric's label with the unit that suits its values, and its grid in that unit."""
    if metric not in TIME_METRICS or relative:
        return metric, grid
    seconds = [float(v) for v in grid.value.to_numpy().ravel()]
    unit, factor = time_unit(seconds)
    return f"{metric} ({'variance × ' if metric == 'work_variance' else ''}{unit})", scaled(grid, factor)


def describe(
    labels: list[str],
    metrics: list[str],
    cells: dict[tuple[str, int], TableCell],
    grid: Grid,
    relative_to: str | None,
    level: float | None,
    best_includes_biased: bool,
    interval: str = "CI",
    value: str = "value",
    latex: bool = False,
) -> str:
    """The caption's words: what the cells show, how their intervals read (as LaTeX writes them
    where ``latex``), what bold and 0 mean."""
    shown = ", ".join(labels)
    if relative_to is not None:
        shown = ", ".join(
            "bias (absolute value)" if m == "bias" else label for m, label in zip(metrics, labels, strict=True)
        )
        ci = f"{level:.0%} " if level else ""
        parts = [
            f"{shown} relative to {relative_to}: ratio [{ci}interval from the two cells' intervals, "
            "none where a bound is not positive]"
        ]
    else:
        parts = [f"{shown}: {interval_words(cells, level, interval, value, latex)}"]
    if any(m in CURVE_HIGHER_IS_BETTER for m in metrics):
        parts.append("higher is better")
    parts.extend(words for words in (best_words(metrics, best_includes_biased), round_off_note(grid, cells)) if words)
    return "; ".join(parts)


def _metric_grids(
    run: Run,
    metrics: list[str],
    group: str | None,
    columns: list[str] | None,
    relative_to: str | None,
    at_seconds: float | None,
) -> tuple[list[tuple[str, Grid]], Run | None]:
    """One grid per metric (a training run's from its final values, with the last final run)."""
    grids: list[tuple[str, Grid]] = []
    final = None
    for metric in metrics:
        grid, final = _metric_grid(run, metric, group, columns, relative_to, at_seconds)
        grids.append(_in_unit(grid, metric, relative_to is not None))
    return grids, final


def report_text(
    run: Run,
    metric: str | Sequence[str] | None = None,
    fmt: str = "markdown",
    relative_to: str | None = None,
    group: str | None = None,
    columns: list[str] | None = None,
    at_seconds: float | None = None,
    caption: str | None = None,
    label: str | None = None,
    best_includes_biased: bool = False,
) -> str:
    """A table of ``metric`` (one, or several side by side: ``"variance,snr"``): estimator
    configurations × task configurations, as ``fmt``.

    Columns are, by default, every task parameter that varies plus the parameter group;
    ``columns`` chooses the keys (task or estimator parameters, ``group``), and every other task
    key must then be constant.  ``group`` keeps one parameter group.  Cells are the value with its
    interval as it is (``16.6 [3.5, 82.1]``, ``value ± half-width`` where every interval is
    symmetric), round-off shown as 0, times in a unit per metric; bold marks the significant best
    (:mod:`rpbench.views.report_cells`; biased rows only with ``best_includes_biased``), ``*``
    rows whose bias is significant, ``–`` where an estimator does not apply; ``relative_to``
    shows ratios to that estimator's value in the same column, with intervals.  ``fmt`` is
    ``markdown``, ``latex`` or ``csv`` (the numeric pivot with both bounds).  ``caption`` and
    ``label`` put a LaTeX table in a ``table`` float with ``\\caption`` (the given words, then what
    the cells show) and ``\\label``; in Markdown the caption leads the caption line.  A bad metric,
    format, reference or key is a :class:`~rpbench.errors.UsageError` naming the choices.

    ``metric`` ``None`` is the run kind's default (``variance``; ``eval_elbo`` for a training run).
    A training run's table (``run.kind == "train"``) shows each configuration's mean over seeds
    at each seed's last evaluation point (``at_seconds``: its last within that many seconds of
    training) ± the half-width of the Student-t interval over seeds (none with one seed); the
    caption gives the seeds, the steps, the mean seconds and the failed runs left out.
    ``relative_to`` and ``group`` do not apply there.
    """
    check_choice(fmt, REPORT_FORMATS, "format")
    metrics = metric_list(run, metric)
    if fmt == "csv":
        return _csv(run, metrics, group, columns, relative_to, at_seconds)
    grids, final = _metric_grids(run, metrics, group, columns, relative_to, at_seconds)
    grid = stack(grids) if len(grids) > 1 else grids[0][1]
    cells = grid_cells(grid, relative_to, best_includes_biased)
    labels = [label for label, _ in grids]
    if final is not None:
        interval, point = train_context(final.results, at_seconds)
        words = describe(
            labels, metrics, cells, grid, None, run.level, best_includes_biased, interval, "mean", fmt == "latex"
        )
        description = f"{words}; {point}"
    else:
        description = describe(
            labels, metrics, cells, grid, relative_to, run.level, best_includes_biased, latex=fmt == "latex"
        )
    relative = relative_to is not None
    if fmt == "latex":
        return render_latex(grid, cells, description, relative, caption=caption, label=label)
    return render_markdown(grid, cells, description, relative, caption=caption)


def _csv(
    run: Run,
    metrics: list[str],
    group: str | None,
    columns: list[str] | None,
    relative_to: str | None,
    at_seconds: float | None,
) -> str:
    """The numeric pivot of every metric asked for (in seconds), joined on the estimator rows."""
    frames = []
    for metric in metrics:
        grid, final = _metric_grid(run, metric, group, columns, relative_to, at_seconds)
        pivot = pivot_frame(grid, metric, relative_to) if final is None else _train_pivot(grid, final, metric, columns)
        frames.append(pivot)
    joined = frames[0]
    for frame in frames[1:]:
        joined = joined.join(frame.drop(columns=[c for c in frame.columns if c in joined.columns]))
    return joined.to_csv(index=False)


__all__ = ["default_metric", "metric_list", "report_frame", "report_text"]
