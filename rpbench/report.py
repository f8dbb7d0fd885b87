"""Publication tables from a run folder: Markdown, LaTeX (booktabs) or a plain CSV pivot.

Rows are estimator configurations, columns task configurations (every task parameter that varies,
plus the parameter group), cells ``value ± half-width`` of the metric's confidence interval::

    frame = load_results(Path("results/20260101-120000-gaussian-abc123"))
    print(report_table(frame, "variance", relative_to="pathwise"))

Every helper that classifies the columns of a results frame lives here, so that :mod:`rpbench.plot`
labels lines exactly as the tables label rows.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from rpbench.errors import UsageError
from rpbench.metrics import HIGHER_IS_BETTER, SHOWN_METRICS

RESULTS_FILE = "results.csv"
META_FILE = "run.json"
FORMATS = ("markdown", "latex", "csv")
METRICS = SHOWN_METRICS
"""Metrics a table or a plot can show (the same choice as ``rpbench run --metric``)."""
NO_BEST = frozenset({"mean"})
WITH_CI = frozenset(METRICS) - {"kurtosis"}
"""Metrics that have ``<metric>_lo`` / ``<metric>_hi`` columns."""

IDENTITY = ("task", "estimator", "biased", "group")
RUN_KEYS = ("samples", "batch", "seed", "device")
OUTCOMES = frozenset(
    {
        "truth",
        "exact_se",
        "setup_seconds",
        "chunk",
        "n_coords",
        "exact",
        "bias_significant",
        "status",
        "error",
        "cell_seed",
    }
    | set(METRICS)
    | {f"{m}_{end}" for m in WITH_CI for end in ("lo", "hi")}
)
REQUIRED = (
    *IDENTITY,
    *RUN_KEYS,
    "bias_significant",
    *METRICS,
    *sorted(f"{m}_{e}" for m in WITH_CI for e in ("lo", "hi")),
)

MISSING = "–"
DAGGER_NOTE = "† biased by construction"
STAR_NOTE = "* bias beyond 4 SE"


# --------------------------------------------------------------------------- loading


def load_results(run_dir: Path) -> pd.DataFrame:
    """Read ``run_dir/results.csv`` (or the CSV itself) as a frame; the run's CI level goes to ``attrs``.

    Raises :class:`UsageError` with one line if the folder or file is missing or the CSV is not
    an rpbench results table (naming the columns it lacks).
    """
    path = Path(run_dir)
    csv = path if path.suffix == ".csv" else path / RESULTS_FILE
    if not path.exists():
        what = "file" if path.suffix == ".csv" else "run folder"
        raise UsageError(f"{path}: no such {what}; give a folder written by `rpbench run`")
    if not csv.is_file():
        raise UsageError(f"{path}: no {RESULTS_FILE} in it; give a folder written by `rpbench run`")
    try:
        frame = pd.read_csv(csv)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise UsageError(f"{csv}: cannot read it as CSV ({detail})") from None
    _check_columns(frame, csv)
    for column in ("biased", "bias_significant"):
        frame[column] = frame[column].map(_as_bool)
    frame.attrs["level"] = _run_level(csv.parent / META_FILE)
    return frame


def _check_columns(frame: pd.DataFrame, csv: Path) -> None:
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        shown = ", ".join(missing[:8]) + (f", … ({len(missing)} in all)" if len(missing) > 8 else "")
        raise UsageError(f"{csv}: not an rpbench results table; missing columns: {shown}")
    if frame.empty:
        raise UsageError(f"{csv}: has no result rows")


def _as_bool(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"true", "1", "yes"}
    return bool(value) if not pd.isna(value) else False


def _run_level(meta: Path) -> float | None:
    try:
        level = json.loads(meta.read_text(encoding="utf-8"))["options"]["level"]
        return float(level)
    except (OSError, ValueError, KeyError, TypeError):
        return None


# --------------------------------------------------------------------------- columns


def _registered_params() -> tuple[set[str], set[str]]:
    """Parameter names of the registered tasks and estimators (empty if the registry cannot load)."""
    try:
        from rpbench.registry import ESTIMATORS, TASKS, load_builtins

        load_builtins()
    except Exception:  # a report must not depend on torch being importable
        return set(), set()
    tasks = {p.name for cls in TASKS.values() for p in cls.params}
    estimators = {p.name for cls in ESTIMATORS.values() for p in cls.params}
    return tasks, estimators - tasks


def parameter_columns(frame: pd.DataFrame) -> tuple[list[str], list[str]]:
    """The task parameters and the estimator parameters among the frame's columns, in column order.

    Registered names decide; an unregistered column (a plugin's) is a parameter if it comes
    before ``truth`` or is empty for some task's rows, and an estimator parameter if it is empty
    for some rows of a task whose other rows have it.  All-empty columns are left out.
    """
    known_tasks, known_estimators = _registered_params()
    position = list(frame.columns).index("truth") if "truth" in frame.columns else len(frame.columns)
    task_params, estimator_params = [], []
    for index, column in enumerate(frame.columns):
        if column in OUTCOMES or column in IDENTITY or column in RUN_KEYS or frame[column].isna().all():
            continue
        filled = frame[column].notna().groupby(frame["task"]).agg(["any", "all"])
        partial = bool((filled["any"] & ~filled["all"]).any())
        if column in known_estimators or (column not in known_tasks and partial):
            estimator_params.append(column)
        elif column in known_tasks or index < position or not filled["any"].all():
            task_params.append(column)
    return task_params, estimator_params


def varying(frame: pd.DataFrame, keys: Iterable[str]) -> list[str]:
    """The keys whose values (empty counting as a value) differ between rows."""
    return [k for k in keys if k in frame.columns and frame[k].nunique(dropna=False) > 1]


def format_value(value: object) -> str:
    """A parameter value as it reads on the command line; empty for a missing value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (float, np.floating)):
        number = float(value)
        return str(int(number)) if number.is_integer() and abs(number) < 1e15 else f"{number:.6g}"
    return str(value)


def settings_text(row: pd.Series, keys: Sequence[str], sep: str = ", ") -> str:
    """``key=value`` pairs of a row (keys whose value is empty are left out)."""
    return sep.join(f"{k}={format_value(row[k])}" for k in keys if format_value(row[k]))


def estimator_labels(frame: pd.DataFrame, estimator_params: Sequence[str], exclude: Sequence[str] = ()) -> pd.Series:
    """Each row's estimator configuration: its name, plus ``(key=value, …)`` of the parameters
    that vary between that estimator's rows (leaving out ``exclude``, e.g. a plot's x axis)."""
    keys = [p for p in estimator_params if p not in exclude]
    labels = frame["estimator"].astype(str).to_numpy(dtype=object)
    for name, positions in frame.groupby("estimator", sort=False).indices.items():
        rows = frame.iloc[positions]
        shown = varying(rows, keys)
        if shown:
            labels[positions] = [f"{name} ({settings_text(r, shown)})" for _, r in rows.iterrows()]
    return pd.Series(labels, index=frame.index, dtype=object)


def select_group(frame: pd.DataFrame, group: str | None) -> pd.DataFrame:
    """The rows of one parameter group (all rows for ``None``); an unknown group is a :class:`UsageError`."""
    if group is None:
        return frame
    groups = list(dict.fromkeys(frame["group"].astype(str)))
    if group not in groups:
        raise UsageError(f"group {group!r} is not in these results; groups: {', '.join(groups)}")
    return frame[frame["group"].astype(str) == group]


def check_choice(value: str, choices: Sequence[str], what: str) -> None:
    """A :class:`UsageError` listing the choices unless ``value`` is one of them."""
    if value not in choices:
        raise UsageError(f"unknown {what} {value!r}; valid choices: {', '.join(choices)}")


def interval(frame: pd.DataFrame, metric: str, absolute: bool = False) -> tuple[pd.Series, pd.Series, pd.Series]:
    """The metric and its CI bounds (NaN where there is none).  With ``absolute``, ``bias`` becomes
    |bias| with its interval mapped to |·| (0 at the bottom where the interval contains 0)."""
    value = frame[metric].astype(float)
    if metric not in WITH_CI:
        nan = pd.Series(np.nan, index=frame.index)
        return value, nan, nan
    lo, hi = frame[f"{metric}_lo"].astype(float), frame[f"{metric}_hi"].astype(float)
    if metric != "bias" or not absolute:
        return value, lo, hi
    straddles = (lo <= 0) & (hi >= 0)
    abs_lo = np.where(straddles, 0.0, np.minimum(lo.abs(), hi.abs()))
    abs_hi = np.maximum(lo.abs(), hi.abs())
    return value.abs(), pd.Series(abs_lo, index=frame.index), pd.Series(abs_hi, index=frame.index)


# --------------------------------------------------------------------------- layout


@dataclass
class Grid:
    """A metric laid out as estimator configurations × task configurations.

    ``columns`` holds each table column's key values (display strings, in the order of ``keys``);
    the frames are indexed by row label and column position.
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


def build_grid(frame: pd.DataFrame, metric: str, columns: list[str] | None = None) -> Grid:
    """Pivot the frame to estimator configurations × task configurations (see :func:`report_table`)."""
    task_params, est_params = parameter_columns(frame)
    task_keys = ["task", *task_params, *RUN_KEYS]
    keys = _column_keys(frame, task_keys, est_params, columns)
    work = frame.copy()
    work["_row"] = estimator_labels(work, est_params, exclude=keys)
    for key in keys:
        work[key] = work[key].map(format_value)
    work["_col"] = list(zip(*(work[k] for k in keys), strict=True)) if keys else [()] * len(work)
    _check_unique(frame, work, [*task_keys, *est_params, "group"])
    value, lo, hi = interval(work, metric)
    work = work.assign(_value=value, _lo=lo, _hi=hi, _sig=work["bias_significant"].map(_as_bool))
    rows = list(dict.fromkeys(work["_row"]))
    order = _order(work, keys)

    position = {column: j for j, column in enumerate(order)}

    def pivot(name: str) -> pd.DataFrame:
        """Rows × column positions (0, 1, …) of one quantity; NaN where an estimator has no result."""
        blocks = work.groupby("_col", sort=False)
        table = {position[c]: dict(zip(block["_row"], block[name], strict=True)) for c, block in blocks}
        return pd.DataFrame(table, index=rows, columns=range(len(order)))

    caption = settings_caption(frame, task_keys, keys)
    biased = dict(zip(work["_row"], work["biased"].map(_as_bool), strict=True))
    shown_keys, shown = _displayed(work, keys, order)
    values = [pivot(name) for name in ("_value", "_lo", "_hi", "_sig")]
    return Grid(rows, biased, shown_keys, shown, *values, caption)


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


def settings_caption(frame: pd.DataFrame, task_keys: Sequence[str], shown: Iterable[str]) -> str:
    """The settings a table or figure does not show: ``task: constant parameters; K=…, n=…, seed=…``.

    With several tasks, each task's own constants come task by task, then what all rows share.
    """
    shown = set(shown)
    tasks = list(frame.groupby("task", sort=False))
    common = [k for k in task_keys if k not in shown and not varying(frame, [k])]
    if len(tasks) == 1:
        return _caption_part(frame, common, with_task=True, with_group="group" not in shown)
    parts = []
    for name, rows in tasks:
        own = [k for k in task_keys if k not in common and k != "task" and not varying(rows, [k])]
        part = _caption_part(rows, own, with_task=False, with_group=False, sep=", ")
        parts.extend([f"{name}: {part}"] if part else [])
    return "; ".join([*parts, _caption_part(frame, common, with_task=False, with_group="group" not in shown)])


def _caption_part(frame: pd.DataFrame, keys: list[str], with_task: bool, with_group: bool, sep: str = "; ") -> str:
    first = frame.iloc[0]
    names = {"samples": "K", "batch": "n"}
    params = settings_text(first, [k for k in keys if k not in ("task", *RUN_KEYS)])
    run = ", ".join(f"{names.get(k, k)}={format_value(first[k])}" for k in RUN_KEYS if k in keys)
    group = f"group {first['group']}" if with_group else ""
    task = f"{first['task']}: " if with_task and "task" in keys else ""
    return task + sep.join(part for part in (params, group, run) if part)


# --------------------------------------------------------------------------- numbers


@dataclass(frozen=True)
class Number:
    """A formatted number: mantissa text, optional ± text and optional power of ten."""

    text: str
    pm: str | None = None
    exponent: int | None = None


def _fixed(value: float, decimals: int) -> str:
    text = f"{round(value, decimals):.0f}" if decimals <= 0 else f"{value:.{decimals}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def _magnitude(value: float) -> int:
    return math.floor(math.log10(abs(value)))


def _sig(value: float, digits: int = 3) -> str:
    """``value`` to ``digits`` significant digits in fixed notation."""
    if value == 0:
        return "0"
    return _fixed(value, max(0, digits - 1 - _magnitude(value)))


def _plus_minus(value: float, half: float) -> tuple[str, str | None]:
    """Half-width to 2 significant digits, the value to the same decimal place."""
    if not math.isfinite(half) or half <= 0:
        return _sig(value), None
    half = float(f"{half:.2g}")
    decimals = 1 - _magnitude(half)
    return _fixed(value, decimals), _fixed(half, decimals)


def format_number(value: float, lo: float = math.nan, hi: float = math.nan, scientific: bool = False) -> Number:
    """A metric with its CI, as ``value ± half-width`` (half-width = max(hi − value, value − lo))."""
    if not math.isfinite(value):
        return Number(MISSING if math.isnan(value) else ("∞" if value > 0 else "−∞"))
    half = max(hi - value, value - lo) if math.isfinite(lo) and math.isfinite(hi) else math.nan
    if value == 0:  # a zero the column's values cannot see: its own half-width decides
        scientific = math.isfinite(half) and half > 0 and needs_scientific([half])
    if not scientific:
        return Number(*_plus_minus(value, half))
    exponent = _magnitude(max(abs(value), half if math.isfinite(half) else 0.0))
    text, pm = _plus_minus(value / 10**exponent, half / 10**exponent)
    if abs(float(text)) >= 10:  # rounding reached the next power of ten
        exponent += 1
        text, pm = _plus_minus(value / 10**exponent, half / 10**exponent)
    return Number(text, pm, exponent or None)


def needs_scientific(values: Iterable[float]) -> bool:
    """Scientific notation for a column whose values span > 3 decades, or are < 1e-3 or ≥ 1e4."""
    finite = [abs(v) for v in values if math.isfinite(v) and v != 0]
    if not finite:
        return False
    low, high = min(finite), max(finite)
    return low < 1e-3 or high >= 1e4 or high / low > 1e3


def format_ratio(ratio: float) -> Number:
    """A ratio to 3 significant digits (powers of ten outside [1e-3, 1e4))."""
    if not math.isfinite(ratio):
        return Number(MISSING)
    if ratio == 0 or 1e-3 <= abs(ratio) < 1e4:
        return Number(_sig(ratio))
    exponent = _magnitude(ratio)
    return Number(_sig(ratio / 10**exponent), None, exponent)


# --------------------------------------------------------------------------- cells


@dataclass(frozen=True)
class Cell:
    """One table cell: its number, whether it is the column's best, whether its bias is significant."""

    number: Number
    best: bool = False
    flagged: bool = False


def _best(values: pd.Series, metric: str) -> float | None:
    finite = values[np.isfinite(values.astype(float))]
    if metric in NO_BEST or finite.empty:
        return None
    return float(finite.max() if metric in HIGHER_IS_BETTER else finite.min())


def _reference_row(grid: Grid, reference: str) -> str:
    if reference in grid.rows:
        return reference
    matches = [r for r in grid.rows if r == reference or r.startswith(f"{reference} (")]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise UsageError(f"relative_to {reference!r} has several configurations; choose one of: {'; '.join(matches)}")
    raise UsageError(f"relative_to {reference!r} is not among the estimators here: {'; '.join(grid.rows)}")


def grid_cells(grid: Grid, metric: str, relative_to: str | None = None) -> dict[tuple[str, int], Cell]:
    """Format every present cell of the grid, keyed by (row label, column index)."""
    reference = _reference_row(grid, relative_to) if relative_to is not None else None
    ranked = grid.value.abs() if metric == "bias" else grid.value
    cells: dict[tuple[str, int], Cell] = {}
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
            cells[row, j] = Cell(number, is_best, bool(grid.significant.at[row, j]))
    return cells


# --------------------------------------------------------------------------- rendering


def _describe(metric: str, relative_to: str | None, level: float | None) -> str:
    shown = "bias (absolute value)" if metric == "bias" and relative_to else metric
    if relative_to is not None:
        return f"{shown} relative to {relative_to} (ratio); best per column in bold"
    if metric not in WITH_CI:
        return f"{shown}; best per column in bold"
    ci = f"{level:.0%} CI" if level else "CI"
    return f"{shown} ± half-width of its {ci}; best per column in bold"


def _notes(grid: Grid, cells: dict[tuple[str, int], Cell]) -> list[str]:
    notes = []
    if any(grid.biased.values()):
        notes.append(DAGGER_NOTE)
    if any(cell.flagged for cell in cells.values()):
        notes.append(STAR_NOTE)
    return notes


def _header(grid: Grid, column: tuple[str, ...]) -> str:
    return ", ".join(f"{k}={v}" for k, v in zip(grid.keys, column, strict=True) if v) or "value"


def _markdown_number(number: Number, relative: bool) -> str:
    text = number.text if number.pm is None else f"{number.text} ± {number.pm}"
    if number.exponent is not None:
        text = f"({text})e{number.exponent}" if number.pm is not None else f"{text}e{number.exponent}"
    return text + ("×" if relative and number.text != MISSING else "")


def _markdown_cell(cell: Cell | None, relative: bool) -> str:
    if cell is None:
        return MISSING
    text = _markdown_number(cell.number, relative)
    return (f"**{text}**" if cell.best else text) + ("\\*" if cell.flagged else "")


def _markdown_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("*", "\\*")


def render_markdown(grid: Grid, cells: dict[tuple[str, int], Cell], description: str, relative: bool) -> str:
    """A GitHub-flavoured Markdown table with a caption line before it and footnotes after it."""
    header = ["estimator", *(_markdown_escape(_header(grid, c)) for c in grid.columns)]
    body = [
        [
            _markdown_escape(_row_label(grid, row, "†")),
            *(_markdown_cell(cells.get((row, j)), relative) for j in range(len(grid.columns))),
        ]
        for row in grid.rows
    ]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def line(cells_: list[str]) -> str:
        padded = [cells_[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(cells_[1:], widths[1:], strict=True))]
        return "| " + " | ".join(padded) + " |"

    rule = "| " + " | ".join([":" + "-" * (widths[0] - 1), *("-" * (w - 1) + ":" for w in widths[1:])]) + " |"
    caption = f"{description}. {grid.caption}".rstrip(". ") + "."
    notes = [_markdown_escape(n) for n in _notes(grid, cells)]
    return "\n".join([caption, "", line(header), rule, *(line(b) for b in body), *(f"\n{n}" for n in notes)]) + "\n"


def _row_label(grid: Grid, row: str, dagger: str) -> str:
    if not grid.biased.get(row):
        return row
    name, sep, rest = row.partition(" (")
    return f"{name}{dagger}{sep}{rest}"


LATEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "|": r"\textbar{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "±": r"$\pm$",
    "×": r"$\times$",
    "–": "--",
    "−": "$-$",
    "†": r"\textsuperscript{\dag}",
    "∞": r"$\infty$",
}


def latex_escape(text: str) -> str:
    """Text safe in a LaTeX document (ASCII only; specials escaped)."""
    return "".join(LATEX_SPECIALS.get(ch, ch if ch.isascii() else "?") for ch in text)


def _latex_number(number: Number, relative: bool) -> str:
    if number.text == MISSING:
        return "--"
    text = number.text if number.pm is None else f"{number.text} \\pm {number.pm}"
    if number.exponent is not None:
        body = f"({text})" if number.pm is not None else text
        text = f"{body} \\times 10^{{{number.exponent}}}"
    suffix = r"\times" if relative else ""
    return f"${text}{suffix}$".replace("∞", r"\infty").replace("−", "-")


def _latex_cell(cell: Cell | None, relative: bool) -> str:
    if cell is None:
        return "--"
    text = _latex_number(cell.number, relative)
    if cell.best:
        text = f"{{\\boldmath{text}}}"
    return text + (r"\textsuperscript{*}" if cell.flagged else "")


def _latex_header_rows(grid: Grid) -> list[str]:
    """One header row per column key, runs of equal values merged (with \\cmidrule) above the last."""
    lines = []
    for level, key in enumerate(grid.keys):
        spans: list[tuple[int, int, str]] = []
        for j, column in enumerate(grid.columns):
            if spans and level < len(grid.keys) - 1 and grid.columns[spans[-1][0]][: level + 1] == column[: level + 1]:
                spans[-1] = (spans[-1][0], j, column[level])
            else:
                spans.append((j, j, column[level]))
        cells = [latex_escape(key)]
        rules = []
        for first, last, text in spans:
            width = last - first + 1
            cells.append(latex_escape(text) if width == 1 else f"\\multicolumn{{{width}}}{{c}}{{{latex_escape(text)}}}")
            if width > 1 and text:
                rules.append(f"\\cmidrule(lr){{{first + 2}-{last + 2}}}")
        lines.append(" & ".join(cells) + r" \\")
        lines.extend([" ".join(rules)] if rules else [])
    return lines or [r"estimator & value \\"]


def render_latex(grid: Grid, cells: dict[tuple[str, int], Cell], description: str, relative: bool) -> str:
    """A complete booktabs ``tabular`` (ASCII only); caption as a comment, footnotes in a last row."""
    width = len(grid.columns) + 1
    body = [
        " & ".join(
            [latex_escape(_row_label(grid, row, "†"))]
            + [_latex_cell(cells.get((row, j)), relative) for j in range(len(grid.columns))]
        )
        + r" \\"
        for row in grid.rows
    ]
    notes = "; ".join(latex_escape(n).replace("*", r"\textsuperscript{*}", 1) for n in _notes(grid, cells))
    comment = " ".join(f"% {description}. {grid.caption}".split())
    lines = [
        latex_escape(comment).replace(r"\%", "%", 1),
        f"\\begin{{tabular}}{{l{'r' * len(grid.columns)}}}",
        r"\toprule",
        *_latex_header_rows(grid),
        r"\midrule",
        *body,
        r"\bottomrule",
        *([f"\\multicolumn{{{width}}}{{l}}{{\\footnotesize {notes}}} \\\\"] if notes else []),
        r"\end{tabular}",
    ]
    return "\n".join(lines) + "\n"


def render_csv(grid: Grid, metric: str, relative_to: str | None) -> str:
    """The plain pivot: one row per estimator configuration, ``metric[column]`` and its bounds."""
    out = pd.DataFrame({"estimator": grid.rows, "biased": [grid.biased[r] for r in grid.rows]})
    reference = _reference_row(grid, relative_to) if relative_to is not None else None
    ranked = grid.value.abs() if metric == "bias" and reference else grid.value
    for j, column in enumerate(grid.columns):
        where = ";".join(f"{k}={v}" for k, v in zip(grid.keys, column, strict=True) if v)
        suffix = f"[{where}]" if where else ""
        if reference is not None:
            out[f"{metric}_ratio{suffix}"] = (ranked[j] / ranked.at[reference, j]).to_numpy()
        else:
            out[f"{metric}{suffix}"] = grid.value[j].to_numpy()
            out[f"{metric}_lo{suffix}"] = grid.lo[j].to_numpy()
            out[f"{metric}_hi{suffix}"] = grid.hi[j].to_numpy()
        out[f"bias_significant{suffix}"] = grid.significant[j].to_numpy()
    return out.to_csv(index=False)


def report_table(
    frame: pd.DataFrame,
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
    A bad metric, format, reference or key is a :class:`UsageError` naming the valid choices.
    """
    check_choice(metric, METRICS, "metric")
    check_choice(fmt, FORMATS, "format")
    frame = select_group(frame, group).reset_index(drop=True)
    grid = build_grid(frame, metric, columns)
    if fmt == "csv":
        return render_csv(grid, metric, relative_to)
    cells = grid_cells(grid, metric, relative_to)
    description = _describe(metric, relative_to, frame.attrs.get("level"))
    if fmt == "latex":
        return render_latex(grid, cells, description, relative_to is not None)
    return render_markdown(grid, cells, description, relative_to is not None)
