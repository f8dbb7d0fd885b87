"""Figures from a run: a metric against one parameter, with confidence bands, in a grid of panels.

One line per estimator configuration (dashed where biased by construction), one panel per
parameter group and per combination of the other task parameters that vary::

    run = load_run("results/20260101-120000-gaussian-abc123")
    save_figure(plot_figure(run, x="sigma", metric="variance"), Path("variance-vs-sigma.pdf"))
    plot_figure(run, x="sigma", cols=2, yscale="log", size="one-column")

A training run's figure (``run.kind == "train"``) draws learning curves instead: ``eval_elbo``
(or another of :data:`~rpbench.columns.CURVE_METRICS`) against ``step`` or ``seconds``, one line
per estimator configuration (the mean over seeds, a band for the Student-t interval over seeds),
one panel per task configuration that varies::

    plot_figure(load_run("results/20260101-120000-train-abc123"), x="seconds")

Both follow the same layout rules: panels in a grid of ``cols`` columns with shared axes and one
y scale for the whole figure (:data:`YSCALES`); on a log axis a value that is zero, negative or
round-off (below :data:`ROUND_OFF` of the largest) is a ▼ at the bottom edge, named in the note;
short panel titles (the settings that vary, TeX-labelled by :mod:`rpbench.views.plot_text`); the
title, the constant settings and the note above the grid, one legend below it; a size preset
(:data:`SIZES`) fixes the width and the fonts, the rows the height.

Figures are drawn with matplotlib's object-oriented API (``Figure``, rendered by the Agg, PDF or
SVG canvas at save time), never through ``pyplot``: nothing needs a display and importing this
module does not change the backend of a user's session."""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import cycle
from pathlib import Path
from typing import Any, BinaryIO, cast

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import NullLocator
from matplotlib.transforms import blended_transform_factory
from PIL import Image

from rpbench.errors import UsageError
from rpbench.views.constants import CURVE_METRICS, SHOWN_METRICS, TRAIN_DEFAULT_METRIC, TRAIN_X, check_choice
from rpbench.views.final import curve_frame, final_frame
from rpbench.views.labels import equal_cost_of, estimator_labels, format_value, is_true, varying, with_batch
from rpbench.views.loader import Run
from rpbench.views.plot_text import (
    escape,
    group_label,
    key_label,
    metric_label,
    setting_label,
    tex_settings,
    visible_length,
    wrap,
)
from rpbench.views.report_layout import interval, parameters, run_keys_of, select_group, settings_caption

Style = dict[str, Any]
"""A line's colour, marker and line style (keyword arguments of ``Axes.plot``)."""
FORMATS = {".png": "png", ".pdf": "pdf", ".svg": "svg"}
YSCALES: tuple[str, ...] = ("auto", "log", "linear", "symlog")
"""``auto``: log where the figure's values are positive and span more than :data:`LOG_Y_DECADES`
decades (or, against a budget ``batch``/``samples`` on a log axis, are positive), else linear."""
MARKERS = ("o", "s", "^", "D", "P", "X", "*", "<", ">", "h")
"""Line markers (``v`` is left out: it marks a value below the axis)."""
BELOW = "v"
BELOW_GID = "below-axis"
"""The marker of a value below a log axis, and the ``gid`` of its artists."""
LOG_Y_DECADES = 2.0
LOG_X_DECADES = 1.5
BUDGET_X = ("batch", "samples")
"""Run keys that are budgets: on a log x axis wherever positive, ticked at their values."""
MAX_BUDGET_TICKS = 8
"""A budget axis is ticked at each of its values where it has at most this many."""
X_ALIASES = {"n": "batch", "K": "samples"}
"""``--x n`` and ``--x K``, as the captions name the budget keys."""
ROUND_OFF = 1e-12
"""On a log axis, values below this fraction of the figure's largest are round-off (a zero variance
computed in float64) and fall below the axis, as exact zeros do."""


@dataclass(frozen=True)
class Size:
    """A size preset: the figure's width (``None``: ``panel_width`` per column), each panel's height
    over its width and at most (inches), the font size of the text (ticks one point smaller) and
    the PNG resolution."""

    width: float | None
    panel_width: float
    aspect: float
    max_height: float
    font: float
    dpi: int


SIZES: dict[str, Size] = {
    "default": Size(None, 3.8, 0.72, 2.8, 9.0, 120),
    "two-column": Size(6.75, 0.0, 0.72, 2.6, 8.0, 300),
    "one-column": Size(3.25, 0.0, 0.8, 2.2, 7.0, 300),
}
"""``default`` (3.8 in per column, 120 dpi: for screens), ``two-column`` (6.75 in wide) and
``one-column`` (3.25 in wide), both 300 dpi; the height follows from the number of rows."""
DEFAULT_COLS = 3
MAX_COLS = 4
ONE_COLUMN_COLS = 2
"""Columns of the grid unless asked (:func:`_grid_cols`): 3, or 4 from 10 panels on, 2 in the
``one-column`` preset; never more than the panels; a multiple of the parameter groups."""


@dataclass
class Line:
    """One line of a panel: its points (x, value and the interval, NaN where there is none)."""

    label: str
    x: np.ndarray
    y: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    x_text: list[str]


@dataclass
class Panel:
    """One panel: the settings that tell it apart (its title, word by word) and its lines."""

    words: list[str]
    lines: list[Line]

    @property
    def title(self) -> str:
        return ", ".join(self.words)


@dataclass
class Spec:
    """What a figure shows besides its panels: labels, title lines, the x axis, the note's parts."""

    xlabel: str
    ylabel: str
    title: str
    caption: str
    bands: str
    x_symbol: str
    log_x: bool = False
    categories: list[str] | None = None
    x_ticks: list[float] | None = None
    notes: list[str] = field(default_factory=list)


def figure_format(out: Path) -> str:
    """The file format named by ``out``'s extension; a :class:`UsageError` for any other."""
    fmt = FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise UsageError(f"{out}: unknown figure format {out.suffix or '(none)'!r}; valid: {', '.join(FORMATS)}")
    return fmt


def check_options(cols: int | None, yscale: str, size: str) -> None:
    """A one-line :class:`UsageError` for a bad number of columns, y scale or size preset."""
    if cols is not None and (isinstance(cols, bool) or not isinstance(cols, int) or cols < 1):
        raise UsageError(f"cols {cols!r}: expected a whole number of columns >= 1 (default: up to {DEFAULT_COLS})")
    check_choice(yscale, YSCALES, "yscale")
    check_choice(size, tuple(SIZES), "size")


def _check_x(frame: pd.DataFrame, x: str, params: list[str]) -> None:
    """A :class:`UsageError` unless ``x`` is a parameter with at least two values, listing those."""
    candidates = [k for k in params if frame[k].nunique() > 1]
    if x not in candidates:
        what = (
            "is not a column" if x not in frame.columns else "is not a parameter" if x not in params else "is constant"
        )
        choices = ", ".join(candidates) or "none (every parameter is constant)"
        raise UsageError(f"x {x!r} {what} in these results; parameters that vary: {choices}")


def _spans(values: Sequence[float], decades: float) -> bool:
    """All positive, and the largest over the smallest exceeds ``10**decades``."""
    finite = [v for v in values if math.isfinite(v)]
    positive = [v for v in finite if v > 0]
    if not positive or any(v < 0 for v in finite):
        return False
    return max(positive) / min(positive) > 10**decades


def _positions(data: pd.DataFrame, x: str) -> tuple[pd.Series, list[str] | None]:
    """Numeric x as is; otherwise categories at 0, 1, … (their labels returned for the ticks)."""
    if pd.api.types.is_numeric_dtype(data[x]):
        return data[x].astype(float), None
    labels = list(dict.fromkeys(data[x].map(format_value)))
    return data[x].map(format_value).map({v: float(i) for i, v in enumerate(labels)}), labels


def _styles(data: pd.DataFrame) -> dict[str, Style]:
    """One colour and marker per line (the same in every panel); dashed where biased."""
    labels = list(dict.fromkeys(data["_line"]))
    palette = "tab10" if len(labels) <= 10 else "tab20"
    colours = list(cast(ListedColormap, colormaps[palette]).colors)  # type: ignore[arg-type]
    biased = dict(zip(data["_line"], data["biased"].map(is_true), strict=True))
    return {
        label: {"color": colour, "marker": marker, "linestyle": "--" if biased[label] else "-"}
        for label, colour, marker in zip(labels, cycle(colours), cycle(MARKERS), strict=False)
    }


def _bounded(bound: np.ndarray, extent: list[float]) -> np.ndarray:
    """An interval bound with ±inf (an unbounded CI) replaced by the figure's extreme finite value."""
    finite = [v for v in extent if math.isfinite(v)]
    if not finite:
        return bound
    return np.clip(bound, min(finite), max(finite))


def _array(series: pd.Series) -> np.ndarray:
    return np.asarray(series.astype(float), dtype=float)


def _mask(data: pd.DataFrame, keys: Sequence[str], combo: Sequence[str]) -> pd.Series:
    mask = pd.Series(True, index=data.index)
    for key, value in zip(keys, combo, strict=True):
        mask &= data[key] == value
    return mask


def _combos(data: pd.DataFrame, keys: list[str]) -> list[tuple[str, ...]]:
    if not keys:
        return [()]
    return list(dict.fromkeys(zip(*(data[k] for k in keys), strict=True)))


def _prepare(run: Run, x: str) -> tuple[pd.DataFrame, list[str], list[str], list[str] | None]:
    """Rows that have x, with line labels and x positions; the panel keys; the task keys; x's categories."""
    frame = run.results
    task_params, est_params = parameters(run)
    own_batch = equal_cost_of(run.meta) is not None and x != "batch"  # equal cost: n is each line's own
    run_keys = [k for k in run_keys_of(run) if not (own_batch and k == "batch")]
    task_keys = ["task", *task_params, *run_keys]
    _check_x(frame, x, [*task_keys, *est_params, *(["batch"] if own_batch else [])])
    data = frame[frame[x].notna()].copy()
    panel_keys = [k for k in varying(data, task_keys) if k != x]
    labels = estimator_labels(data, est_params, exclude=[x])
    if own_batch:
        labels = pd.Series([with_batch(a, n) for a, n in zip(labels, data["batch"], strict=True)], index=data.index)
    data["_line"] = labels.map(tex_settings)
    data["_x"], categories = _positions(data, x)
    data["_x_text"] = data[x].map(format_value)
    for key in panel_keys:
        data[key] = data[key].map(format_value).astype(object)
    return data, panel_keys, task_keys, categories


def _equal_cost_words(run: Run) -> str:
    """The caption's words for an equal-cost run (each line at its own n), or nothing."""
    budget = equal_cost_of(run.meta)
    return "" if budget is None else f"; equal cost: at most {budget} evaluations of f per estimate"


def _measure_lines(panel: pd.DataFrame, metric: str) -> list[Line]:
    lines = []
    for label, rows in panel.sort_values("_x", kind="stable").groupby("_line", sort=False):
        value, lo, hi = interval(rows, metric, absolute=True)
        x_text = [str(t) for t in rows["_x_text"]]
        lines.append(Line(str(label), _array(rows["_x"]), _array(value), _array(lo), _array(hi), x_text))
    return lines


DEFAULT_X = "sigma"
DEFAULT_METRIC = "variance"
"""What a measurement run's figure shows unless asked (a training run's: ``eval_elbo`` vs ``step``)."""


def plot_figure(
    run: Run,
    x: str | None = None,
    metric: str | None = None,
    group: str | None = None,
    *,
    cols: int | None = None,
    yscale: str = "auto",
    size: str = "default",
) -> Figure:
    """Plot ``metric`` against the parameter ``x``: a figure to inspect or to :func:`save_figure`.

    One line per estimator configuration (labelled without ``x``) with markers and a band for
    its confidence interval, dashed where the estimator is biased by construction; ``bias`` is
    drawn as |bias| (its interval mapped to |·|).  One panel per parameter group (or only
    ``group``) and per combination of the other task parameters that vary, titled with those
    settings, in a grid of ``cols`` columns with shared axes.  ``yscale`` is one scale for the
    whole figure (:data:`YSCALES`; ``auto`` picks log where the values span more than 2 decades);
    the x axis is logarithmic where x is positive and spans more than 1.5 decades, or is a budget
    (``batch``, ``samples``; also named ``n``, ``K``).  ``size`` is a preset of :data:`SIZES`.  A bad
    metric, x, group or option is a :class:`UsageError`.  ``x`` and ``metric`` ``None`` are the run
    kind's defaults (``sigma`` and ``variance``; for a training run ``step`` and ``eval_elbo``, see
    :func:`curves_figure`).
    """
    if run.kind == "train":
        x = "step" if x is None else x
        metric = TRAIN_DEFAULT_METRIC if metric is None else metric
        return curves_figure(run, x, metric, group, cols=cols, yscale=yscale, size=size)
    check_options(cols, yscale, size)
    x = DEFAULT_X if x is None else x
    x = X_ALIASES.get(x, x) if x not in run.results.columns else x
    metric = DEFAULT_METRIC if metric is None else metric
    check_choice(metric, SHOWN_METRICS, "metric")
    frame = select_group(run.results, group).reset_index(drop=True)
    data, panel_keys, task_keys, categories = _prepare(run.with_results(frame), x)
    groups = [str(g) for g in dict.fromkeys(data["group"].astype(str))]
    panels = []
    for combo in _combos(data, panel_keys):
        for name in groups:
            rows = data[_mask(data, panel_keys, combo) & (data["group"].astype(str) == name)]
            words = [group_label(name)] if len(groups) > 1 else []
            words += [setting_label(k, v) for k, v in zip(panel_keys, combo, strict=True) if v]
            panels.append(Panel(words, _measure_lines(rows, metric) if not rows.empty else []))
    positions = data["_x"].tolist()
    budget = x in BUDGET_X and categories is None and min(positions) > 0
    ylabel = metric_label(metric)
    of = f" of the {group_label(groups[0])}" if len(groups) == 1 else ""
    spec = Spec(
        xlabel=key_label(x),
        ylabel=ylabel,
        title=f"{ylabel}{of} vs {key_label(x)}",
        caption=tex_settings(settings_caption(frame, task_keys, [x, *panel_keys, "group"]) + _equal_cost_words(run)),
        bands=f"Bands: {run.level:.0%} confidence intervals.",
        x_symbol=key_label(x),
        log_x=budget or (categories is None and _spans(positions, LOG_X_DECADES)),
        categories=categories,
        x_ticks=sorted(set(positions)) if budget and len(set(positions)) <= MAX_BUDGET_TICKS else None,
    )
    cols = _grid_cols(cols, len(panels), size, len(groups))
    return _figure(panels, _styles(data), spec, cols, _auto_scale(panels, yscale, budget), size)


def curves_figure(
    run: Run,
    x: str = "step",
    metric: str = TRAIN_DEFAULT_METRIC,
    group: str | None = None,
    *,
    cols: int | None = None,
    yscale: str = "auto",
    size: str = "default",
) -> Figure:
    """A training run's learning curves: ``metric`` (one of :data:`~rpbench.columns.CURVE_METRICS`)
    against ``x`` (``step``, or ``seconds``: each step at its mean training seconds over seeds).

    One line per estimator configuration, the mean over its seeds that did not fail
    (:func:`~rpbench.views.final.curve_frame`), with a band for the Student-t interval over seeds
    at the run's level (none with one seed); one panel per task configuration that varies, laid
    out as :func:`plot_figure` lays out its panels (``cols``, ``yscale``, ``size``).  A bad x,
    metric or option, or any group (a training run has none), is a one-line :class:`UsageError`.
    """
    check_options(cols, yscale, size)
    check_choice(x, TRAIN_X, "x")
    check_choice(metric, CURVE_METRICS, "metric")
    select_group(run.results, group)
    data = curve_frame(run, metric)
    if data.empty:
        raise UsageError(f"no ok evaluation point with a {metric} in these results (every run failed?)")
    task_params, est_params = parameters(run)
    run_keys = [c.name for c in run.columns if c.role == "key" and c.kind == "run" and c.name != "seed"]
    task_params = [k for k in task_params if k in data.columns]  # a seed alias (model_seed) is not a setting
    shown_run_keys = [k for k in run_keys if k in data.columns]
    task_keys = ["task", *task_params, *shown_run_keys]
    panel_keys = varying(data, task_keys)
    caption = settings_caption(data, task_keys, panel_keys, shown_run_keys)
    data["_line"] = estimator_labels(data, est_params).map(tex_settings)
    for key in panel_keys:
        data[key] = data[key].map(format_value).astype(object)
    panels = []
    for combo in _combos(data, panel_keys):
        rows = data[_mask(data, panel_keys, combo)]
        lines = []
        for label, line in rows.sort_values("step", kind="stable").groupby("_line", sort=False):
            value, lo, hi = (_array(line[c]) for c in (metric, f"{metric}_lo", f"{metric}_hi"))
            x_text = [format_value(s) for s in line["step"]]
            lines.append(Line(str(label), _array(line[x]), value, lo, hi, x_text))
        words = [setting_label(k, v) for k, v in zip(panel_keys, combo, strict=True) if v]
        panels.append(Panel(words, lines))
    seeds = _seed_text(final_frame(run, metric))
    spec = Spec(
        xlabel="training seconds (mean over seeds)" if x == "seconds" else escape(x),
        ylabel=metric_label(metric),
        title=f"{metric_label(metric)} vs {escape(x)}: mean over {seeds}",
        caption=tex_settings(caption),
        bands=f"Bands: {run.level:.0%} t-intervals over seeds.",
        x_symbol="step",
    )
    return _figure(panels, _styles(data), spec, cols, _auto_scale(panels, yscale, False), size)


def _seed_text(final: pd.DataFrame) -> str:
    counts = sorted({int(n) for n in final["seeds"] if n > 0})
    seeds = "0 seeds" if not counts else f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"
    seeds += "" if not counts else " seed" if seeds == "1" else " seeds"
    failed = int(final["failed"].sum())
    return seeds + (f"; {failed} failed run{'s' if failed != 1 else ''} left out" if failed else "")


# --------------------------------------------------------------------------- the y scale


def _values(panels: list[Panel]) -> list[float]:
    return [float(v) for p in panels for line in p.lines for v in line.y if math.isfinite(v)]


def _auto_scale(panels: list[Panel], yscale: str, budget: bool) -> str:
    """``yscale`` as asked; for ``auto``, log where every value is >= 0 and the positive ones above
    round-off span more than :data:`LOG_Y_DECADES` decades (any span against a budget), else linear."""
    values = _values(panels)
    positive = [v for v in values if v > 0]
    if yscale == "log" and not positive:
        raise UsageError("yscale 'log': no positive value to draw on a log axis; use linear or symlog")
    if yscale != "auto":
        return yscale
    if not positive or any(v < 0 for v in values):
        return "linear"
    top = max(positive)
    shown = [v for v in positive if v >= top * ROUND_OFF]
    return "log" if budget or max(shown) / min(shown) > 10**LOG_Y_DECADES else "linear"


def _log_limits(panels: list[Panel], floor: float) -> tuple[float, float]:
    """The shared y range of a log figure: its values and interval ends above ``floor``, padded."""
    values = [v for v in _values(panels) if v >= floor]
    ends = [float(v) for p in panels for line in p.lines for v in (*line.lo, *line.hi) if math.isfinite(v)]
    low = min([*values, *(v for v in ends if v >= floor)])
    high = max([*values, *(v for v in ends if v >= floor)])
    if high <= low:
        return low / 2, high * 2
    pad = (high / low) ** 0.04
    return low / pad, high * pad


def _symlog_threshold(panels: list[Panel]) -> float:
    """The linear range of a symlog axis: the power of ten at or below the smallest |value| above round-off."""
    values = [abs(v) for v in _values(panels) if v != 0]
    if not values:
        return 1.0
    shown = [v for v in values if v >= max(values) * ROUND_OFF]
    return float(10 ** math.floor(math.log10(min(shown))))


# --------------------------------------------------------------------------- the grid


def _grid_cols(cols: int | None, n: int, size: str, groups: int = 1) -> int:
    """``cols`` (at most one per panel), or the default: :data:`DEFAULT_COLS`, 4 from 10 panels on
    (:data:`ONE_COLUMN_COLS` in the one-column preset), a multiple of the parameter groups where
    there are several and more panels than groups (so that a column is a group)."""
    if cols is None:
        cols = ONE_COLUMN_COLS if size == "one-column" else max(DEFAULT_COLS, min(MAX_COLS, math.ceil(math.sqrt(n))))
        if 2 <= groups <= cols and n > groups:
            cols -= cols % groups
    return max(1, min(cols, n))


def _legend_columns(labels: list[str], width: float, font: float) -> int:
    """Legend entries per row that fit the figure's width (balanced over the rows)."""
    em = font / 72
    entry = max(visible_length(label) for label in labels) * 0.6 * em + 3.2 * em
    per_row = max(1, min(len(labels), int(width * 0.96 / entry)))
    rows = math.ceil(len(labels) / per_row)
    return math.ceil(len(labels) / rows)


@dataclass
class YAxis:
    """The shared y axis while the panels are drawn: its scale, on a log axis its range and the
    round-off floor, and what fell below it (kind → line label → each panel, and which of its
    points unless all)."""

    scale: str
    floor: float
    limits: tuple[float, float] | None
    marker: float
    below: dict[str, dict[str, list[tuple[Panel, str]]]] = field(default_factory=dict)


BELOW_KINDS = ("exact zero", "negative", "round-off", "below the axis")
"""The kinds of a value below a log axis, in the order the note lists them."""


def _figure(
    panels: list[Panel], styles: dict[str, Style], spec: Spec, cols: int | None, scale: str, size: str
) -> Figure:
    """The panels in a grid with shared axes and one y scale; title, caption and note above, legend below."""
    preset = SIZES[size]
    ncols = _grid_cols(cols, len(panels), size)
    nrows = math.ceil(len(panels) / ncols)
    font = preset.font
    width = preset.width if preset.width is not None else preset.panel_width * ncols + 0.7
    floor = max(_values(panels) or [0.0]) * ROUND_OFF
    yaxis = YAxis(scale, floor, _log_limits(panels, floor) if scale == "log" else None, font * 0.45)

    fig = Figure(figsize=(width, 1.0), dpi=preset.dpi, layout="constrained")
    grid = fig.subplots(nrows, ncols, squeeze=False, sharex=True, sharey=True)
    axes = [ax for row in grid for ax in row]
    for ax in axes[len(panels) :]:
        fig.delaxes(ax)
    for k, (ax, panel) in enumerate(zip(axes, panels, strict=False)):
        _draw(ax, panel, styles, spec, yaxis)
        ax.set_title(panel.title, fontsize=font)
        bottom = k + ncols >= len(panels)  # no panel below: this one shows the x axis
        ax.tick_params(labelsize=font - 1, labelbottom=bottom)
        ax.set_xlabel(spec.xlabel if bottom else "", fontsize=font)
        ax.set_ylabel(spec.ylabel if k % ncols == 0 else "", fontsize=font)
    _scales(axes[0], spec, yaxis, panels)

    notes = [spec.bands, *_below_notes(yaxis.below, panels, floor)]
    if scale == "symlog":
        notes.append(f"Symlog axis: linear within ±{_symlog_threshold(panels):.0e}.")
    chars = max(30, int(width * 72 / (font * 0.56)))
    header = [spec.title, *wrap(spec.caption, chars), *wrap(" ".join(notes), chars)]
    fig.suptitle("\n".join(header), fontsize=font)
    legend_rows = _legend(fig, styles, bool(yaxis.below), font, width)

    line = font * 1.45 / 72
    titles = line if any(p.title for p in panels) else 0.0
    panel_height = min((width - 0.5) / ncols * preset.aspect, preset.max_height)
    height = nrows * (panel_height + titles + 0.1) + 0.45 + len(header) * line + legend_rows * line * 1.15 + 0.3
    fig.set_size_inches(width, height)
    return fig


def _draw(ax: Axes, panel: Panel, styles: dict[str, Style], spec: Spec, yaxis: YAxis) -> None:
    """A panel's lines with markers and their bands; on a log axis each value below it is left out
    of its line and drawn as a ▼ at the bottom edge (:func:`_mark_below`)."""
    if not panel.lines:
        ax.text(0.5, 0.5, "no results", ha="center", va="center", transform=ax.transAxes, color="grey")
        return
    extent = [float(v) for line in panel.lines for v in (*line.y, *line.lo, *line.hi) if math.isfinite(v)]
    marked = 0
    for line in panel.lines:
        style = styles[line.label]
        y, lo, hi = line.y.copy(), _bounded(line.lo, extent), _bounded(line.hi, extent)
        if yaxis.limits is not None:
            off = np.isfinite(y) & (y < yaxis.limits[0])
            if off.any():
                _mark_below(ax, panel, line, off, style, spec, yaxis, marked)
                marked += 1
                y[off], lo[off], hi[off] = np.nan, np.nan, np.nan
            lo = np.maximum(lo, yaxis.limits[0])  # an interval reaching below the axis: to its edge
        ax.plot(line.x, y, label=line.label, markersize=yaxis.marker, linewidth=1.3, **style)
        if np.isfinite(lo).any():
            ax.fill_between(line.x, lo, hi, color=style["color"], alpha=0.15, linewidth=0)
    ax.grid(True, which="major", alpha=0.3)


def _mark_below(
    ax: Axes, panel: Panel, line: Line, off: np.ndarray, style: Style, spec: Spec, yaxis: YAxis, rank: int
) -> None:
    """▼ in the line's colour at the bottom edge for each point of ``off`` (the ``rank``-th marked
    line of the panel a step higher, so that none hides another), recorded by kind in ``yaxis.below``."""
    y = line.y
    kinds = {"exact zero": y == 0, "negative": y < 0}
    kinds["round-off" if np.all(y[off & (y > 0)] < yaxis.floor) else "below the axis"] = y > 0
    for kind, mask in kinds.items():
        xs = [t for t, m in zip(line.x_text, off & mask, strict=True) if m]
        if xs:
            at = "" if len(xs) == len(line.x_text) else _at(xs, len(line.x_text), spec.x_symbol)
            yaxis.below.setdefault(kind, {}).setdefault(line.label, []).append((panel, at))
    edge = blended_transform_factory(ax.transData, ax.transAxes)  # x in data, y in axes units
    heights = np.full(int(off.sum()), 0.035 + 0.05 * rank)
    ax.plot(
        line.x[off],
        heights,
        linestyle="none",
        marker=BELOW,
        color=style["color"],
        markersize=yaxis.marker * 1.2,
        transform=edge,
        clip_on=False,
        gid=BELOW_GID,
        zorder=4,
    )


def _at(xs: list[str], points: int, x_symbol: str) -> str:
    """Which of a line's points in a panel are below the axis: their x, or how many."""
    return f"at {x_symbol}={', '.join(xs)}" if len(xs) <= 3 else f"at {len(xs)} of {points} points"


def _places(label: str, places: list[tuple[Panel, str]], panels: list[Panel]) -> str:
    """Where a line is below the axis, as briefly as is exact: the panels with the same points
    below (all, or some: ``at σ=0.1``) named by the settings they share where no other panel with
    the line shares them (``fn=step``; nothing where that is every panel), else one by one."""
    having = [p for p in panels if any(line.label == label for line in p.lines)]
    by_points: dict[str, list[Panel]] = {}
    for panel, at in places:
        by_points.setdefault(at, []).append(panel)
    texts = []
    for at, where in by_points.items():
        common = [w for w in where[0].words if all(w in p.words for p in where)]
        if [p for p in having if all(w in p.words for w in common)] == where:
            texts.append(", ".join(part for part in (", ".join(common), at) if part))
        else:
            texts.extend(", ".join(part for part in (p.title, at) if part) for p in where)
    return "; ".join(texts)


def _below_notes(below: dict[str, dict[str, list[tuple[Panel, str]]]], panels: list[Panel], floor: float) -> list[str]:
    """The note's sentence on the ▼ markers: by kind, each line with where it is below the axis."""
    if not below:
        return []
    parts = []
    for kind in sorted(below, key=BELOW_KINDS.index):
        texts = []
        for label, places in below[kind].items():
            where = _places(label, places, panels)
            texts.append(f"{label} ({where})" if where else label)
        name = f"round-off (below {floor:.0e})" if kind == "round-off" else kind
        parts.append(f"{name}: {', '.join(texts)}")
    return [f"▼ on the bottom edge: {'; '.join(parts)}."]


def _scales(ax: Axes, spec: Spec, yaxis: YAxis, panels: list[Panel]) -> None:
    """The one y scale and the x axis of every panel (the axes are shared: set on one)."""
    if yaxis.limits is not None:
        ax.set_yscale("log", nonpositive="clip")
        ax.set_ylim(*yaxis.limits)
    elif yaxis.scale == "symlog":
        ax.set_yscale("symlog", linthresh=_symlog_threshold(panels))
    else:
        ax.set_yscale("linear")
    if spec.log_x:
        ax.set_xscale("log")
    if spec.x_ticks is not None:
        ax.set_xticks(spec.x_ticks, [format_value(v) for v in spec.x_ticks])
        ax.xaxis.set_minor_locator(NullLocator())
    if spec.categories is not None:
        ax.set_xticks(range(len(spec.categories)), [escape(c) for c in spec.categories])


def _legend(fig: Figure, styles: dict[str, Style], below: bool, font: float, width: float) -> int:
    """One legend for all panels, below the grid; the rows it takes."""
    handles = [Line2D([], [], markersize=font * 0.45, **style) for style in styles.values()]
    labels = list(styles)
    if below:
        handles.append(Line2D([], [], linestyle="none", marker=BELOW, color="grey", markersize=font * 0.55))
        labels.append("below the axis (see note)")
    dashed = any(style["linestyle"] == "--" for style in styles.values())
    ncols = _legend_columns(labels, width, font - 0.5)
    fig.legend(
        handles,
        labels,
        loc="outside lower center",
        ncols=ncols,
        fontsize=font - 0.5,
        title="dashed: biased by construction" if dashed else None,
        title_fontsize=font - 0.5,
        frameon=False,
        columnspacing=1.2,
        handlelength=2.2,
    )
    return math.ceil(len(labels) / ncols) + (1 if dashed else 0)


# --------------------------------------------------------------------------- files


def write_figure(fig: Figure, handle: BinaryIO, fmt: str) -> None:
    """Render ``fig`` as PDF or SVG (without a creation date), or as a PNG at the figure's dpi (its
    size preset's) reduced to a 256-colour palette (a few times smaller than full colour, and
    indistinguishable for line plots)."""
    if fmt == "pdf":
        fig.savefig(handle, format=fmt, metadata={"CreationDate": None})
        return
    if fmt == "svg":
        fig.savefig(handle, format=fmt, metadata={"Date": None})
        return
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=fig.dpi)
    image = Image.open(buffer).convert("RGB").quantize(colors=256, method=Image.Quantize.FASTOCTREE)
    image.save(handle, format="PNG", optimize=True, dpi=(fig.dpi, fig.dpi))


def check_output(out: Path) -> str:
    """The figure format of ``out``, after making sure its folder exists and a file can go there.

    Called before drawing, so that a bad path fails at once; a :class:`UsageError` otherwise.
    """
    fmt = figure_format(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{out}: cannot create its folder ({exc.strerror or exc}); choose a writable path") from None
    if out.is_dir() or not os.access(out.parent, os.W_OK):
        why = "is a folder" if out.is_dir() else "its folder is not writable"
        raise UsageError(f"{out}: cannot write the figure there ({why}); choose a writable path")
    return fmt


def save_figure(figure: Figure, out: Path) -> Path:
    """Write ``figure`` to ``out`` (.png at the figure's dpi, .pdf or .svg) atomically: a temporary
    file beside it, then a rename.  A bad extension or an unwritable path is a :class:`UsageError`
    (:func:`check_output`, which a caller may also run before drawing)."""
    out = Path(out)
    fmt = check_output(out)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as handle:
            write_figure(figure, handle, fmt)
        os.replace(tmp, out)
    except OSError as exc:
        if tmp.parent.is_dir():
            tmp.unlink(missing_ok=True)
        raise UsageError(
            f"{out}: cannot write the figure there ({exc.strerror or exc}); choose a writable path"
        ) from None
    return out


__all__ = [
    "SIZES",
    "YSCALES",
    "check_options",
    "check_output",
    "curves_figure",
    "figure_format",
    "plot_figure",
    "save_figure",
]
