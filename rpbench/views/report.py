"""Publication tables of a run: a DataFrame, Markdown, LaTeX (booktabs) or a plain CSV pivot.

Rows are estimator configurations, columns task configurations (every task parameter that varies,
plus the parameter group), cells ``value ± half-width`` of the metric's confidence interval::

    run = load_run("results/20260101-120000-gaussian-abc123")
    print(report_text(run, "variance", relative_to="pathwise"))
"""

from __future__ import annotations

import pandas as pd

from rpbench.views.constants import REPORT_FORMATS, SHOWN_METRICS, check_choice
from rpbench.views.loader import Run
from rpbench.views.render_csv import render_csv
from rpbench.views.render_latex import render_latex
from rpbench.views.render_markdown import render_markdown
from rpbench.views.report_cells import describe, grid_cells, reference_row
from rpbench.views.report_layout import Grid, build_grid, select_group


def _grid(run: Run, metric: str, group: str | None, columns: list[str] | None) -> Grid:
    check_choice(metric, SHOWN_METRICS, "metric")
    rows = select_group(run.results, group).reset_index(drop=True)
    return build_grid(run.with_results(rows), metric, columns)


def report_frame(
    run: Run,
    metric: str = "variance",
    relative_to: str | None = None,
    group: str | None = None,
    columns: list[str] | None = None,
) -> pd.DataFrame:
    """The table of :func:`report_text` as numbers: one row per estimator configuration (the index,
    labelled as the tables label rows), one column per task configuration.

    Values are the metric's values (NaN where an estimator has no result), or with
    ``relative_to`` the ratio to that estimator's value in the same column (of |bias| for bias).
    Columns are a :class:`pandas.MultiIndex` with one level per column key (a plain index for
    one key; a single column ``value`` where nothing varies).  ``attrs["caption"]`` holds the
    settings the columns do not show.  The bounds of the intervals are in ``report_text(…, fmt="csv")``.
    """
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
    metric: str = "variance",
    fmt: str = "markdown",
    relative_to: str | None = None,
    group: str | None = None,
    columns: list[str] | None = None,
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
    """
    check_choice(metric, SHOWN_METRICS, "metric")
    check_choice(fmt, REPORT_FORMATS, "format")
    grid = _grid(run, metric, group, columns)
    if fmt == "csv":
        return render_csv(grid, metric, relative_to)
    cells = grid_cells(grid, metric, relative_to)
    description = describe(metric, relative_to, run.level)
    if fmt == "latex":
        return render_latex(grid, cells, description, relative_to is not None)
    return render_markdown(grid, cells, description, relative_to is not None)


__all__ = ["report_frame", "report_text"]
