"""Publication tables of a run: a DataFrame, Markdown, LaTeX (booktabs) or a plain CSV pivot.

Rows are estimator configurations, columns task configurations (every task parameter that varies,
plus the parameter group), cells ``value ± half-width`` of the metric's confidence interval::

    run = load_run("results/20260101-120000-gaussian-abc123")
    print(report_text(run, "variance", relative_to="pathwise"))

A training run's table (:attr:`Run.kind <rpbench.views.loader.Run.kind>` ``"train"``) shows the
final values of :func:`~rpbench.views.final.final_frame`: cells ``mean ± half-width`` of the
Student-t interval over seeds, of ``eval_elbo`` unless asked (higher is better)::

    print(report_text(load_run("results/20260101-120000-train-abc123"), at_seconds=60))
"""

from __future__ import annotations

import math

import pandas as pd

from rpbench.errors import UsageError
from rpbench.views.constants import (
    CURVE_HIGHER_IS_BETTER,
    CURVE_METRICS,
    NO_BEST,
    REPORT_FORMATS,
    SHOWN_METRICS,
    TRAIN_DEFAULT_METRIC,
    check_choice,
)
from rpbench.views.final import final_run
from rpbench.views.labels import format_value
from rpbench.views.loader import Run
from rpbench.views.render_csv import pivot_frame, render_csv
from rpbench.views.render_latex import render_latex
from rpbench.views.render_markdown import render_markdown
from rpbench.views.report_cells import describe, grid_cells, reference_row
from rpbench.views.report_layout import Grid, build_grid, select_group

DEFAULT_METRIC = "variance"
"""What a measurement run's table shows unless asked (a training run's: ``eval_elbo``)."""


def default_metric(run: Run) -> str:
    """The metric a table or figure of ``run`` shows unless asked: by the run's kind."""
    return TRAIN_DEFAULT_METRIC if run.kind == "train" else DEFAULT_METRIC


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


def _span(values: pd.Series) -> str:
    numbers = sorted({format_value(float(v)) for v in values.dropna()}, key=float)
    return numbers[0] if len(numbers) == 1 else f"{numbers[0]}–{numbers[-1]}" if numbers else "–"


def train_description(final: pd.DataFrame, metric: str, level: float, at_seconds: float | None) -> str:
    """A training table's caption words: what the cells show, over how many seeds, at which point."""
    seeds = final.loc[final["seeds"] > 0, "seeds"]
    counted = _span(seeds.astype(float)) if not seeds.empty else "0"
    counted += " seed (no interval with one seed)" if counted == "1" else " seeds"
    mean_seconds = final["seconds"].mean()
    when = "no evaluation point" if math.isnan(mean_seconds) else f"{mean_seconds:.3g} s of training on average"
    if at_seconds is None:
        point = f"each seed's last evaluation (step {_span(final['step'])}, {when})"
    else:
        point = f"each seed's last evaluation within {at_seconds:g} s of training (step {_span(final['step'])}, {when})"
    failed = int(final["failed"].sum())
    parts = [
        f"{metric}: mean ± half-width of its {level:.0%} t-interval over {counted}, at {point}",
        *([f"{failed} failed run{'s' if failed != 1 else ''} left out"] if failed else []),
        *(["higher is better; best per column in bold"] if metric in CURVE_HIGHER_IS_BETTER else []),
        *(["best per column in bold"] if metric not in CURVE_HIGHER_IS_BETTER | NO_BEST else []),
    ]
    return "; ".join(parts)


def _train_csv(grid: Grid, final: Run, metric: str, columns: list[str] | None) -> str:
    """The plain pivot of a training table: the mean and bounds per column, then seeds and failed runs."""
    frame = pivot_frame(grid, metric, None)
    frame = frame.drop(columns=[c for c in frame.columns if c.startswith("bias_significant")])
    run_keys = [c.name for c in final.columns if c.role == "key" and c.kind == "run"]
    for count in ("seeds", "failed"):
        counts = pivot_frame(build_grid(final, count, columns, run_keys), count, None)
        kept = [c for c in counts.columns if c.startswith(count) and not c.startswith(f"{count}_")]
        frame = frame.join(counts[kept].astype("Int64"))
    return frame.to_csv(index=False)


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
    if run.kind == "train":
        grid, _ = _train_grid(run, metric, group, columns, relative_to, at_seconds)
    else:
        _check_measure(run, at_seconds)
        grid = _grid(run, metric, group, columns)
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


def report_text(
    run: Run,
    metric: str | None = None,
    fmt: str = "markdown",
    relative_to: str | None = None,
    group: str | None = None,
    columns: list[str] | None = None,
    at_seconds: float | None = None,
) -> str:
    """A table of ``metric``: estimator configurations × task configurations, as ``fmt``.

    Columns are, by default, every task parameter that varies plus the parameter group;
    ``columns`` chooses the keys (task or estimator parameters, ``group``), and every other task
    key must then be constant.  ``group`` keeps one parameter group.  Cells are ``value ± CI
    half-width`` (scientific notation where a column spans > 3 decades or leaves [1e-3, 1e4)),
    the best per column bold, ``*`` on rows whose bias is significant, ``–`` where an estimator
    does not apply; ``relative_to`` shows ratios to that estimator's value in the same column.
    ``fmt`` is ``markdown``, ``latex`` or ``csv`` (the numeric pivot with both bounds).  A bad
    metric, format, reference or key is a :class:`~rpbench.errors.UsageError` naming the choices.

    ``metric`` ``None`` is the run kind's default (``variance``; ``eval_elbo`` for a training run).
    A training run's table (``run.kind == "train"``) shows each configuration's mean over seeds
    at each seed's last evaluation point (``at_seconds``: its last within that many seconds of
    training) ± the half-width of the Student-t interval over seeds (none with one seed), the
    highest bold for the ELBO metrics; the caption gives the seeds, the steps, the mean seconds and
    the failed runs left out.  ``relative_to`` and ``group`` do not apply there.
    """
    metric = default_metric(run) if metric is None else metric
    check_choice(fmt, REPORT_FORMATS, "format")
    if run.kind == "train":
        grid, final = _train_grid(run, metric, group, columns, relative_to, at_seconds)
        if fmt == "csv":
            return _train_csv(grid, final, metric, columns)
        cells = grid_cells(grid, metric)
        description = train_description(final.results, metric, run.level, at_seconds)
        render = render_latex if fmt == "latex" else render_markdown
        return render(grid, cells, description, False)
    _check_measure(run, at_seconds)
    check_choice(metric, SHOWN_METRICS, "metric")
    grid = _grid(run, metric, group, columns)
    if fmt == "csv":
        return render_csv(grid, metric, relative_to)
    cells = grid_cells(grid, metric, relative_to)
    description = describe(metric, relative_to, run.level)
    if fmt == "latex":
        return render_latex(grid, cells, description, relative_to is not None)
    return render_markdown(grid, cells, description, relative_to is not None)


__all__ = ["default_metric", "report_frame", "report_text"]
