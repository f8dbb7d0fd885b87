"""The console summary of a run: per task and parameter group, task configurations × estimators."""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd
from rich.table import Table

from rpbench.columns import ADAPTIVE_KEY
from rpbench.views.constants import HIGHER_IS_BETTER, NO_BEST, RUN_KEY_NAMES, SHOWN_METRICS, check_choice
from rpbench.views.labels import estimator_labels, format_value, is_true, settings_text, short_number
from rpbench.views.loader import Run


def _cell(record: dict[str, object] | None, metric: str, best: float | None) -> str:
    if record is None:
        return ""
    value = float(record[metric])  # type: ignore[arg-type]
    text = short_number(value) + ("*" if is_true(record.get("bias_significant")) else "")
    return f"[bold green]{text}[/]" if best is not None and value == best else text


def _budget_text(row: Mapping[str, object] | pd.Series, keys: list[str], sep: str) -> str:
    """``K=1000, n=4`` (``K0`` for adaptive K's starting K)."""
    return sep.join(f"{RUN_KEY_NAMES.get(k, k)}={format_value(row[k])}" for k in keys)


def _task_tables(frame: pd.DataFrame, metric: str, task_params: list[str], estimator_params: list[str]) -> list[Table]:
    """The tables of one task's rows (see :func:`summary_tables`)."""
    frame = frame.reset_index(drop=True)
    params = [p for p in task_params if frame[p].notna().any()]
    frame["_label"] = estimator_labels(frame, [p for p in estimator_params if frame[p].notna().any()])
    varying = [p for p in params if frame[p].nunique(dropna=False) > 1]
    fixed = [p for p in params if p not in varying]
    # A budget key that varies (a list of n or K) tells lines apart; with adaptive K the K reached
    # (``samples``) is an outcome and the starting K (``start_samples``) the key.
    adaptive = ADAPTIVE_KEY in frame.columns
    budget_keys = [ADAPTIVE_KEY if adaptive else "samples", "batch"]
    swept = [k for k in budget_keys if frame[k].nunique(dropna=False) > 1]
    texts = [(settings_text(r, varying, sep=" "), _budget_text(r, swept, " ")) for r in frame.to_dict("records")]
    frame["_config"] = [" ".join(part for part in pair if part) or "default" for pair in texts]
    labels = list(dict.fromkeys(frame["_label"]))
    better = max if metric in HIGHER_IS_BETTER else min
    first = frame.iloc[0]
    budget = _budget_text(first, [k for k in budget_keys if k not in swept], ", ")
    if adaptive:
        reached = sorted(frame["samples"].dropna().astype(int).unique())
        span = f"{reached[0]}" if len(reached) == 1 else f"{reached[0]}–{reached[-1]}"
        budget = ", ".join(part for part in (budget, f"K reached {span}") if part)
    caption = f"{first['task']}: " + ", ".join([p for p in [settings_text(first, fixed)] if p] + [budget])
    tables = []
    for group, by_group in frame.groupby("group", sort=False):
        table = Table(title=f"{metric}, group {group} (best in bold; * = biased beyond 4 SE)", caption=caption)
        table.add_column("configuration", style="cyan", no_wrap=True)
        for label in labels:
            table.add_column(label, justify="right")
        for config, block in by_group.groupby("_config", sort=False):
            records = {str(r["_label"]): r for r in block.to_dict("records")}
            finite = [float(r[metric]) for r in records.values() if not math.isnan(float(r[metric]))]
            best = better(finite) if finite and metric not in NO_BEST else None
            table.add_row(str(config), *(_cell(records.get(label), metric, best) for label in labels))
        tables.append(table)
    return tables


def summary_tables(run: Run, metric: str = "variance") -> list[Table]:
    """For each task of the run, per parameter group: one line per task configuration that varies,
    one column per estimator configuration.

    The best value of each line is bold green (none for ``mean``); ``*`` marks a significantly
    biased row (its bias is more than 4 standard errors from zero).  The caption gives the task,
    its constant parameters and the budget.  An unknown metric is a :class:`UsageError`.
    """
    check_choice(metric, SHOWN_METRICS, "metric")
    frame = run.results
    return [
        table
        for _, rows in frame.groupby("task", sort=False)
        for table in _task_tables(rows.copy(), metric, run.task_params, run.estimator_params)
    ]
