"""Rich console views: the run summary and the ``list`` tables."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import pandas as pd
import torch
from rich.table import Table

from rpbench.estimators.base import Estimator
from rpbench.metrics import HIGHER_IS_BETTER, SHOWN_METRICS
from rpbench.params import ParamSpec, expand_grid, resolve_grid
from rpbench.tasks.base import CAPABILITIES, Task

CPU = torch.device("cpu")
SUMMARY_METRICS = SHOWN_METRICS


def _fmt(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if value == 0:
        return "0"
    if abs(value) >= 1e4 or abs(value) < 1e-3:
        return f"{value:.2e}"
    return f"{value:.3g}"


def estimator_labels(frame: pd.DataFrame, estimator_params: Sequence[str]) -> list[str]:
    """Each row's estimator name, with ``(key=value,…)`` where the run has several of its configurations."""
    present = [p for p in estimator_params if p in frame]

    def settings(row: Mapping[str, object]) -> str:
        return ",".join(f"{k}={row[k]}" for k in present if not pd.isna(row[k]))

    records = frame.to_dict("records")
    configs: dict[str, set[str]] = {}
    for row in records:
        configs.setdefault(str(row["estimator"]), set()).add(settings(row))
    return [
        f"{row['estimator']}({settings(row)})" if len(configs[str(row["estimator"])]) > 1 else str(row["estimator"])
        for row in records
    ]


def summary_tables(
    rows: Sequence[Mapping[str, object]],
    metric: str,
    task_params: Sequence[str],
    estimator_params: Sequence[str],
) -> list[Table]:
    """Per parameter group: one line per varying task configuration, one column per estimator.

    The best value of each line is bold green; ``*`` marks a significantly biased row (its bias
    is more than 4 standard errors from zero).
    """
    frame = pd.DataFrame(list(rows))
    frame["_label"] = estimator_labels(frame, estimator_params)
    varying = [p for p in task_params if p in frame and frame[p].nunique(dropna=False) > 1]
    fixed = [f"{p}={frame[p].iloc[0]}" for p in task_params if p in frame and p not in varying]
    frame["_config"] = [" ".join(f"{p}={r[p]}" for p in varying) or "default" for r in frame.to_dict("records")]
    labels = list(dict.fromkeys(frame["_label"]))
    better = max if metric in HIGHER_IS_BETTER else min
    budget = f"K={frame['samples'].iloc[0]}, n={frame['batch'].iloc[0]}"
    tables = []
    for group, by_group in frame.groupby("group", sort=False):
        table = Table(
            title=f"{metric}, group {group} (best in bold; * = biased beyond 4 SE)",
            caption=f"{frame['task'].iloc[0]}: " + ", ".join([*fixed, budget]),
        )
        table.add_column("configuration", style="cyan", no_wrap=True)
        for label in labels:
            table.add_column(label, justify="right")
        for config, block in by_group.groupby("_config", sort=False):
            values = {r["_label"]: r for r in block.to_dict("records")}
            finite = [float(r[metric]) for r in values.values() if not math.isnan(float(r[metric]))]
            best = better(finite) if finite and metric != "mean" else None
            cells = []
            for label in labels:
                r = values.get(label)
                if r is None:
                    cells.append("")
                    continue
                text = _fmt(float(r[metric])) + ("*" if r.get("bias_significant") else "")
                cells.append(f"[bold green]{text}[/]" if best is not None and float(r[metric]) == best else text)
            table.add_row(str(config), *cells)
        tables.append(table)
    return tables


def _param_text(spec: ParamSpec) -> str:
    default = ",".join(str(v) for v in spec.default_values)
    return f"{spec.name}={default}"


def tasks_table(tasks: Mapping[str, type[Task]]) -> Table:
    """Every task with its parameters (defaults; lists sweep) and what it offers."""
    table = Table(title="tasks (--task; --param key=value, a comma list sweeps)")
    for column in ("task", "parameters (defaults)", "offers", "truth", "description"):
        table.add_column(column)
    for name, cls in sorted(tasks.items()):
        table.add_row(name, "\n".join(_param_text(p) for p in cls.params), cls.offers, cls.truth, cls.summary)
    return table


def estimators_table(estimators: Mapping[str, type[Estimator]]) -> Table:
    """Every estimator with its parameters, what it needs, and its reference."""
    table = Table(title='estimators (--estimator NAME[:key=value,...]; "all" = every one that applies)')
    for column in ("estimator", "parameters (defaults)", "needs", "biased", "reference"):
        table.add_column(column)
    for name, cls in sorted(estimators.items()):
        needs = sorted(cls.needs) + ([f"batch>={cls.min_batch}"] if cls.min_batch > 1 else [])
        table.add_row(
            name,
            "\n".join(_param_text(p) for p in cls.params) or "–",
            ", ".join(needs),
            "yes" if cls.biased else "no",
            cls.reference,
        )
    return table


def task_detail_tables(cls: type[Task], estimators: Mapping[str, type[Estimator]]) -> list[Table]:
    """``list --task NAME``: its parameters in full, and which estimator applies to which config."""
    params = Table(title=f"task {cls.name}: {cls.summary}")
    for column in ("parameter", "type", "default (sweep)", "valid values", "meaning"):
        params.add_column(column)
    for spec in cls.params:
        params.add_row(
            spec.name,
            spec.kind.__name__,
            ",".join(str(v) for v in spec.default_values),
            spec.describe_range(),
            spec.help,
        )
    capabilities = Table(title="capabilities (what estimators may rely on)")
    capabilities.add_column("capability")
    capabilities.add_column("meaning")
    for name, meaning in CAPABILITIES.items():
        capabilities.add_row(name, meaning)

    applies = Table(title=f"applicability on the default grid of {cls.name} (batch n=2; n=1 rules out batch>=2)")
    applies.add_column("estimator")
    applies.add_column("applies to")
    configs = [cls(c, CPU) for c in expand_grid(resolve_grid(cls.params, {}, cls.name))]
    for name, est in sorted(estimators.items()):
        reasons = [est.why_not(t, 2) for t in configs]
        ok = sum(r is None for r in reasons)
        why = sorted({r for r in reasons if r})
        applies.add_row(name, f"{ok}/{len(configs)} configurations" + (f" — otherwise {'; '.join(why)}" if why else ""))
    return [params, capabilities, applies]
