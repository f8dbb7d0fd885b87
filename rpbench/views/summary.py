"""The console summary of a run: per task and parameter group, task configurations × estimators.

Each cell is the value with its interval, compactly (``13.1 [9.9, 17.9]``), with the rules of the
report tables (:mod:`rpbench.views.report_cells`): round-off shows as 0, the best is bold only
where it is significant and never a biased row, ``*`` marks a significant bias, a failed cell reads
``failed`` with its error in a footnote, and ``!`` marks a cell whose estimates are so heavy-tailed
that K is too small for its interval (:func:`heavy_tailed`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd
from rich.table import Table

from rpbench.columns import ADAPTIVE_KEY
from rpbench.views.constants import RUN_KEY_NAMES, SHOWN_METRICS, check_choice
from rpbench.views.labels import equal_cost_of, estimator_labels, format_value, is_true, settings_text, with_batch
from rpbench.views.loader import Run
from rpbench.views.numbers import format_interval
from rpbench.views.render_markdown import number_text
from rpbench.views.report_cells import BIAS_METRICS, Bounded, best_rows
from rpbench.views.resolution import exact_estimator, resolution

TAIL_MARK = "!"
"""The mark of a cell whose interval is unreliable at the K drawn (heavy tails)."""
TAIL_COLUMNS: tuple[str, ...] = ("tail_warning",)
"""The row flag a run carries for heavy tails (``rpbench.metrics.tail_unreliable``)."""
TAIL_REL_SE = 0.3
"""For rows written before that flag: heavy-tailed where the relative SE of the variance,
√((κ − 1)/K), exceeds 0.3 — the rule of ``rpbench.metrics.tail_unreliable`` (views import no torch)."""


def heavy_tailed(record: dict[str, object]) -> bool:
    """Whether a row's estimates are too heavy-tailed for its interval at the K drawn: the run's own
    flag (``tail_warning``) where it has one, else the same rule from its kurtosis and K."""
    for column in TAIL_COLUMNS:
        if column in record and record[column] is not None and not _nan(record[column]):
            return is_true(record[column])
    kurtosis, samples = _float(record.get("kurtosis")), _float(record.get("samples"))
    if not (math.isfinite(kurtosis) and math.isfinite(samples) and samples > 0):
        return False
    return math.sqrt(max(kurtosis - 1.0, 0.0) / samples) > TAIL_REL_SE


def _nan(value: object) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _float(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def _bounded(record: dict[str, object], metric: str) -> Bounded:
    return Bounded(*(_float(record.get(name)) for name in (metric, f"{metric}_lo", f"{metric}_hi")))


def _cell(record: dict[str, object] | None, metric: str, best: bool, footnotes: list[str]) -> str:
    if record is None:
        return ""
    if record.get("status") == "failed":
        footnotes.append(f"{record['_label']} on {record['_config']}: {record.get('error') or 'no error recorded'}")
        return f"[red]failed[{len(footnotes)}][/]"
    cell = _bounded(record, metric)
    zero = bool(record["_zero"])  # round-off: no interval, and its kurtosis is that of the noise
    text = "0" if zero else number_text(format_interval(cell.value, cell.lo, cell.hi), symmetric=False)
    text += "*" if is_true(record.get("bias_significant")) else ""
    text += TAIL_MARK if heavy_tailed(record) and not zero else ""
    return f"[bold green]{text}[/]" if best else text


def _best(records: dict[str, dict[str, object]], metric: str) -> set[str]:
    candidates = {
        label: _bounded(r, metric)
        for label, r in records.items()
        if r.get("status") != "failed"
        and (metric in BIAS_METRICS or not (is_true(r.get("biased")) or is_true(r.get("bias_significant"))))
    }
    if metric == "bias":
        candidates = {k: c.absolute() for k, c in candidates.items()}
    return best_rows(candidates, metric)


def _budget_text(row: Mapping[str, object] | pd.Series, keys: list[str], sep: str) -> str:
    """``K=1000, n=4`` (``K0`` for adaptive K's starting K)."""
    return sep.join(f"{RUN_KEY_NAMES.get(k, k)}={format_value(row[k])}" for k in keys)


def _budget_keys(frame: pd.DataFrame, equal_cost: bool = False) -> tuple[list[str], list[str]]:
    """The budget keys, and those that vary (a list of n or K tells lines apart); with adaptive K
    the K reached (``samples``) is an outcome and the starting K (``start_samples``) the key; at
    equal cost each estimator's n is in its column's label, not a budget key."""
    keys = [ADAPTIVE_KEY if ADAPTIVE_KEY in frame.columns else "samples", *([] if equal_cost else ["batch"])]
    return keys, [k for k in keys if frame[k].nunique(dropna=False) > 1]


def _prepared(
    frame: pd.DataFrame, metric: str, task_params: list[str], estimator_params: list[str], equal_cost: bool
) -> pd.DataFrame:
    """The rows with their label, configuration text, round-off flag, and an exact SNR as ∞."""
    frame = frame.reset_index(drop=True)
    params = [p for p in task_params if frame[p].notna().any()]
    frame["_label"] = estimator_labels(frame, [p for p in estimator_params if frame[p].notna().any()])
    if equal_cost:
        frame["_label"] = [with_batch(label, n) for label, n in zip(frame["_label"], frame["batch"], strict=True)]
    varying = [p for p in params if frame[p].nunique(dropna=False) > 1]
    _, swept = _budget_keys(frame, equal_cost)
    texts = [(settings_text(r, varying, sep=" "), _budget_text(r, swept, " ")) for r in frame.to_dict("records")]
    frame["_config"] = [" ".join(part for part in pair if part) or "default" for pair in texts]
    values = pd.to_numeric(frame[metric], errors="coerce")
    res = resolution(frame, metric)
    frame["_zero"] = (res > 0) & (values.abs() <= res)
    if metric == "snr":
        exact = exact_estimator(frame)
        for name in (metric, f"{metric}_lo", f"{metric}_hi"):
            if name in frame.columns:
                frame[name] = pd.to_numeric(frame[name], errors="coerce").mask(exact, math.inf)
    return frame


def _task_tables(
    frame: pd.DataFrame,
    metric: str,
    task_params: list[str],
    estimator_params: list[str],
    level: float,
    equal_cost: int | None = None,
) -> list[Table]:
    """The tables of one task's rows (see :func:`summary_tables`)."""
    frame = _prepared(frame, metric, task_params, estimator_params, equal_cost is not None)
    params = [p for p in task_params if frame[p].notna().any()]
    fixed = [p for p in params if frame[p].nunique(dropna=False) <= 1]
    labels = list(dict.fromkeys(frame["_label"]))
    first = frame.iloc[0]
    keys, swept = _budget_keys(frame, equal_cost is not None)
    budget = _budget_text(first, [k for k in keys if k not in swept], ", ")
    if equal_cost is not None:
        budget = f"{budget}, equal cost: <= {equal_cost} evaluations of f per estimate"
    if ADAPTIVE_KEY in frame.columns:
        reached = sorted(frame["samples"].dropna().astype(int).unique())
        span = f"{reached[0]}" if len(reached) == 1 else f"{reached[0]}–{reached[-1]}"
        budget = ", ".join(part for part in (budget, f"K reached {span}") if part)
    caption = f"{first['task']}: " + ", ".join([p for p in [settings_text(first, fixed)] if p] + [budget])
    tables = []
    for group, by_group in frame.groupby("group", sort=False):
        footnotes: list[str] = []
        marks = "bold: significantly best, unbiased; * = bias beyond 4 SE"
        title = f"{metric}, group {group}: value [{level:.0%} CI] ({marks})"
        table = Table(title=title, caption=caption)
        table.add_column("configuration", style="cyan", no_wrap=True)
        for label in labels:
            table.add_column(label, justify="right")
        tails = False
        for config, block in by_group.groupby("_config", sort=False):
            records = {str(r["_label"]): r for r in block.to_dict("records")}
            best = _best(records, metric)
            tails = tails or any(
                heavy_tailed(r) and not r["_zero"] for r in records.values() if r.get("status") != "failed"
            )
            cells = [_cell(records.get(label), metric, label in best, footnotes) for label in labels]
            table.add_row(str(config), *cells)
        notes = [f"[{i}] {text}" for i, text in enumerate(footnotes, 1)]
        if tails:
            notes.append(f"{TAIL_MARK} heavy tails: K is too small for this interval (raise -K or use --target-rel-ci)")
        table.caption = "\n".join([caption, *notes])
        tables.append(table)
    return tables


def summary_tables(run: Run, metric: str = "variance") -> list[Table]:
    """For each task of the run, per parameter group: one line per task configuration that varies,
    one column per estimator configuration.

    Cells are ``value [lower, upper]`` of the run's interval; the significantly best of each line
    (its interval clear of the others', among unbiased rows; none for ``mean`` or where all
    overlap) is bold green; ``*`` marks a significantly biased row (its bias is more than 4
    standard errors from zero), ``!`` a heavy-tailed one; a failed cell reads ``failed[i]`` with
    its error as footnote i.  The caption gives the task, its constant parameters and the budget.
    An unknown metric is a :class:`UsageError`.
    """
    check_choice(metric, SHOWN_METRICS, "metric")
    frame = run.results
    budget = equal_cost_of(run.meta)
    return [
        table
        for _, rows in frame.groupby("task", sort=False)
        for table in _task_tables(rows.copy(), metric, run.task_params, run.estimator_params, run.level or 0.95, budget)
    ]
