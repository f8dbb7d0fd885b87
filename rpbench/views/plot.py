"""Figures from a run: a metric against one parameter, with confidence bands.

One line per estimator configuration (dashed where biased by construction), one panel per
parameter group and per combination of the other task parameters that vary::

    run = load_run("results/20260101-120000-gaussian-abc123")
    save_figure(plot_figure(run, x="sigma", metric="variance"), Path("variance-vs-sigma.png"))

A training run's figure (``run.kind == "train"``) draws learning curves instead: ``eval_elbo``
(or another of :data:`~rpbench.columns.CURVE_METRICS`) against ``step`` or ``seconds``, one line
per estimator configuration (the mean over seeds, a band for the Student-t interval over seeds),
one panel per task configuration that varies::

    plot_figure(load_run("results/20260101-120000-train-abc123"), x="seconds")

Figures are drawn with matplotlib's object-oriented API (``Figure``, rendered by the Agg or PDF
canvas at save time), never through ``pyplot``: nothing needs a display and importing this module
does not change the backend of a user's session."""

from __future__ import annotations

import io
import math
import os
import textwrap
from collections.abc import Sequence
from itertools import cycle
from pathlib import Path
from typing import Any, BinaryIO, cast

import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from PIL import Image

from rpbench.errors import UsageError
from rpbench.views.constants import CURVE_METRICS, SHOWN_METRICS, TRAIN_DEFAULT_METRIC, TRAIN_X, check_choice
from rpbench.views.final import curve_frame, final_frame
from rpbench.views.labels import estimator_labels, format_value, is_true, varying
from rpbench.views.loader import Run
from rpbench.views.report_layout import interval, parameters, run_keys_of, select_group, settings_caption

Style = dict[str, Any]
"""A line's colour, marker and line style (keyword arguments of ``Axes.plot``)."""
FORMATS = {".png": "png", ".pdf": "pdf"}
DPI = 120
MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*", "<", ">")
LOG_Y_DECADES = 2.0
LOG_X_DECADES = 1.5
PANEL_SIZE = (3.8, 2.8)
ROUND_OFF = 1e-12
"""On a log axis, values below this fraction of a panel's largest are round-off (a zero variance
computed in float64) and fall below the axis, as exact zeros do."""


def figure_format(out: Path) -> str:
    """The file format named by ``out``'s extension; a :class:`UsageError` for any other."""
    fmt = FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise UsageError(f"{out}: unknown figure format {out.suffix or '(none)'!r}; valid: {', '.join(FORMATS)}")
    return fmt


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


def _bounded(bound: pd.Series, panel_values: list[float]) -> pd.Series:
    """An interval bound with ±inf (an unbounded CI) replaced by the panel's extreme finite value."""
    finite = [v for v in panel_values if math.isfinite(v)]
    if not finite:
        return bound
    return bound.replace({math.inf: max(finite), -math.inf: min(finite)})


def _draw_panel(ax: Axes, panel: pd.DataFrame, metric: str, styles: dict[str, Style]) -> list[float]:
    """Lines with markers and CI bands; returns the plotted values (for the choice of scale)."""
    lines = [
        (str(label), *interval(rows, metric, absolute=True), rows["_x"])
        for label, rows in panel.sort_values("_x").groupby("_line", sort=False)
    ]
    extent = [v for _, value, lo, hi, _ in lines for v in (*value, *lo, *hi)]
    plotted: list[float] = []
    for label, value, lo, hi, xs in lines:
        style = styles[label]
        ax.plot(xs, value, label=label, markersize=4, linewidth=1.3, **style)
        if lo.notna().any():
            lo, hi = _bounded(lo, extent), _bounded(hi, extent)
            ax.fill_between(xs, lo, hi, color=style["color"], alpha=0.15, linewidth=0)
        plotted.extend(value.tolist())
    return plotted


def _panel_grid(data: pd.DataFrame, panel_keys: list[str]) -> tuple[list[str], list[tuple[str, ...]]]:
    groups = [str(g) for g in dict.fromkeys(data["group"].astype(str))]
    combos: list[tuple[str, ...]] = [()]
    if panel_keys:
        combos = list(dict.fromkeys(zip(*(data[k] for k in panel_keys), strict=True)))
    return groups, combos


def _title(keys: list[str], combo: tuple[str, ...], group: str) -> str:
    parts = [f"{k}={v}" for k, v in zip(keys, combo, strict=True) if v]
    return ", ".join([f"group {group}", *parts])


def _prepare(run: Run, x: str) -> tuple[pd.DataFrame, list[str], list[str], list[str] | None]:
    """Rows that have x, with line labels and x positions; the panel keys; the task keys; x's categories."""
    frame = run.results
    task_params, est_params = parameters(run)
    task_keys = ["task", *task_params, *run_keys_of(run)]
    _check_x(frame, x, [*task_keys, *est_params])
    data = frame[frame[x].notna()].copy()
    panel_keys = [k for k in varying(data, task_keys) if k != x]
    data["_line"] = estimator_labels(data, est_params, exclude=[x])
    data["_x"], categories = _positions(data, x)
    for key in panel_keys:
        data[key] = data[key].map(format_value).astype(object)
    return data, panel_keys, task_keys, categories


def _style_axes(ax: Axes, plotted: list[float], log_x: bool, categories: list[str] | None) -> None:
    if _spans(plotted, LOG_Y_DECADES):
        ax.set_yscale("log", nonpositive="clip")
        top = max(v for v in plotted if math.isfinite(v))
        if min(v for v in plotted if v > 0) < top * ROUND_OFF:
            ax.set_ylim(bottom=top * ROUND_OFF)
    if log_x:
        ax.set_xscale("log")
    if categories is not None:
        ax.set_xticks(range(len(categories)), categories)
    ax.grid(True, which="major", alpha=0.3)


def _panel(
    ax: Axes,
    panel: pd.DataFrame,
    metric: str,
    styles: dict[str, Style],
    x_axis: tuple[bool, list[str] | None],
) -> None:
    """One panel: its lines and bands, its scales; a note where it has no results."""
    if panel.empty:
        ax.text(0.5, 0.5, "no results", ha="center", va="center", transform=ax.transAxes, color="grey")
        return
    plotted = _draw_panel(ax, panel, metric, styles)
    _style_axes(ax, plotted, *x_axis)


DEFAULT_X = "sigma"
DEFAULT_METRIC = "variance"
"""What a measurement run's figure shows unless asked (a training run's: ``eval_elbo`` vs ``step``)."""
CURVE_COLUMNS = 3
"""Panels per row of a training run's figure."""


def plot_figure(run: Run, x: str | None = None, metric: str | None = None, group: str | None = None) -> Figure:
    """Plot ``metric`` against the parameter ``x``: a figure to inspect or to :func:`save_figure`.

    One line per estimator configuration (labelled without ``x``) with markers and a band for
    its confidence interval, dashed where the estimator is biased by construction; ``bias`` is
    drawn as |bias| (its interval mapped to |·|).  One panel per parameter group (or only
    ``group``) and per combination of the other task parameters that vary, each titled with its
    settings.  The y axis is logarithmic where a panel's positive values span more than 2 decades,
    the x axis where x is positive and spans more than 1.5.  A bad metric, x or group is a
    :class:`UsageError`.  ``x`` and ``metric`` ``None`` are the run kind's defaults (``sigma`` and
    ``variance``; for a training run ``step`` and ``eval_elbo``, see :func:`curves_figure`).
    """
    if run.kind == "train":
        return curves_figure(run, "step" if x is None else x, TRAIN_DEFAULT_METRIC if metric is None else metric, group)
    x = DEFAULT_X if x is None else x
    metric = DEFAULT_METRIC if metric is None else metric
    check_choice(metric, SHOWN_METRICS, "metric")
    frame = select_group(run.results, group).reset_index(drop=True)
    data, panel_keys, task_keys, categories = _prepare(run.with_results(frame), x)
    groups, combos = _panel_grid(data, panel_keys)
    log_x = categories is None and _spans(data["_x"].tolist(), LOG_X_DECADES)
    styles = _styles(data)
    size = (PANEL_SIZE[0] * len(groups) + 2.8, PANEL_SIZE[1] * len(combos) + 0.9)
    fig = Figure(figsize=size, layout="constrained")
    axes = fig.subplots(len(combos), len(groups), squeeze=False, sharex=True)
    ylabel = "|bias|" if metric == "bias" else metric
    for i, combo in enumerate(combos):
        for j, name in enumerate(groups):
            mask = data["group"].astype(str) == name
            for key, value in zip(panel_keys, combo, strict=True):
                mask &= data[key] == value
            _panel(axes[i][j], data[mask], metric, styles, (log_x, categories))
            axes[i][j].set_title(_title(panel_keys, combo, name), fontsize=9)
            axes[i][j].set_ylabel(ylabel if j == 0 else "")
            axes[i][j].set_xlabel(x if i == len(combos) - 1 else "")
    caption = settings_caption(frame, task_keys, [x, *panel_keys, "group"])
    _decorate(fig, caption, f"{ylabel} vs {x} (bands: confidence intervals)", styles)
    return fig


def curves_figure(run: Run, x: str = "step", metric: str = TRAIN_DEFAULT_METRIC, group: str | None = None) -> Figure:
    """A training run's learning curves: ``metric`` (one of :data:`~rpbench.columns.CURVE_METRICS`)
    against ``x`` (``step``, or ``seconds``: each step at its mean training seconds over seeds).

    One line per estimator configuration, the mean over its seeds that did not fail
    (:func:`~rpbench.views.final.curve_frame`), with a band for the Student-t interval over seeds
    at the run's level (none with one seed); one panel per task configuration that varies.  A bad
    x or metric, or any group (a training run has none), is a one-line :class:`UsageError`.
    """
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
    data["_line"] = estimator_labels(data, est_params)
    for key in panel_keys:
        data[key] = data[key].map(format_value).astype(object)
    combos: list[tuple[str, ...]] = [()]
    if panel_keys:
        combos = list(dict.fromkeys(zip(*(data[k] for k in panel_keys), strict=True)))
    columns = min(CURVE_COLUMNS, len(combos))
    rows = math.ceil(len(combos) / columns)
    styles = _styles(data)
    fig = Figure(figsize=(PANEL_SIZE[0] * columns + 2.8, PANEL_SIZE[1] * rows + 0.9), layout="constrained")
    axes = [ax for line in fig.subplots(rows, columns, squeeze=False) for ax in line]
    for ax in axes[len(combos) :]:
        fig.delaxes(ax)
    for k, (ax, combo) in enumerate(zip(axes, combos, strict=False)):
        mask = pd.Series(True, index=data.index)
        for key, value in zip(panel_keys, combo, strict=True):
            mask &= data[key] == value
        _curve_panel(ax, data[mask], x, metric, styles)
        ax.set_title(", ".join(f"{k}={v}" for k, v in zip(panel_keys, combo, strict=True) if v), fontsize=9)
        ax.set_ylabel(metric if k % columns == 0 else "")
        ax.set_xlabel("training seconds (mean over seeds)" if x == "seconds" else x)
    seeds = _seed_text(final_frame(run, metric))
    title = f"{metric} vs {x}: mean over {seeds} (bands: {run.level:.0%} t-intervals over seeds)"
    _decorate(fig, caption, title, styles)
    return fig


def _seed_text(final: pd.DataFrame) -> str:
    counts = sorted({int(n) for n in final["seeds"] if n > 0})
    seeds = "0 seeds" if not counts else f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"
    seeds += "" if not counts else " seed" if seeds == "1" else " seeds"
    failed = int(final["failed"].sum())
    return seeds + (f"; {failed} failed run{'s' if failed != 1 else ''} left out" if failed else "")


def _curve_panel(ax: Axes, panel: pd.DataFrame, x: str, metric: str, styles: dict[str, Style]) -> None:
    """One panel of learning curves: per line its mean over seeds and the band of its t-interval."""
    for label, rows in panel.sort_values("step").groupby("_line", sort=False):
        style = styles[str(label)]
        ax.plot(rows[x], rows[metric], label=str(label), markersize=3, linewidth=1.3, **style)
        lo, hi = rows[f"{metric}_lo"], rows[f"{metric}_hi"]
        if lo.notna().any():
            ax.fill_between(rows[x], lo, hi, color=style["color"], alpha=0.15, linewidth=0)
    ax.grid(True, which="major", alpha=0.3)


def _decorate(fig: Figure, caption: str, title: str, styles: dict[str, Style]) -> None:
    """Figure title (what is plotted, the settings that are constant) and one legend for all panels."""
    width = max(40, int((fig.get_figwidth() - 2.8) * 13))
    fig.suptitle("\n".join([title, *textwrap.wrap(caption, width)]), fontsize=9)
    handles = [Line2D([], [], markersize=4, **style) for style in styles.values()]
    dashed = any(style["linestyle"] == "--" for style in styles.values())
    fig.legend(
        handles,
        list(styles),
        loc="outside right upper",
        fontsize=8,
        title="dashed: biased by construction" if dashed else None,
        title_fontsize=8,
    )


def write_figure(fig: Figure, handle: BinaryIO, fmt: str) -> None:
    """Render ``fig`` as PDF, or as a PNG at :data:`DPI` reduced to a 256-colour palette (a few
    times smaller than full colour, and indistinguishable for line plots)."""
    if fmt != "png":
        fig.savefig(handle, format=fmt, dpi=DPI)
        return
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    image = Image.open(buffer).convert("RGB").quantize(colors=256, method=Image.Quantize.FASTOCTREE)
    image.save(handle, format="PNG", optimize=True)


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
    """Write ``figure`` to ``out`` (.png at 120 dpi, or .pdf) atomically: a temporary file beside
    it, then a rename.  A bad extension or an unwritable path is a :class:`UsageError`
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


__all__ = ["check_output", "curves_figure", "figure_format", "plot_figure", "save_figure"]
