"""The catalog of what can be measured: the ``list`` command's tables, read from the registry.

Unlike the views (:mod:`rpbench.views`), which read results, these tables describe the registered
tasks and estimators: their parameters, what they offer and need, and which estimator applies where.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from rich.table import Table

from rpbench.estimators.base import Estimator
from rpbench.params import ParamSpec, expand_grid, resolve_grid
from rpbench.tasks.base import CAPABILITIES, Task

CPU = torch.device("cpu")


def _param_text(spec: ParamSpec) -> str:
    """``name=default`` (a sweep as a comma list)."""
    default = ",".join(str(v) for v in spec.default_values)
    return f"{spec.name}={default}"


def tasks_table(tasks: Mapping[str, type[Task]]) -> Table:
    """Every task with its parameters (defaults; lists sweep) and what it offers."""
    table = Table(title="tasks (--task; --param key=value, a comma list sweeps)")
    for column in ("task", "parameters (defaults)", "offers", "truth", "train", "description"):
        table.add_column(column)
    for name, cls in sorted(tasks.items()):
        params = "\n".join(_param_text(p) for p in cls.params)
        table.add_row(name, params, cls.offers, cls.truth, cls.trains or "no", cls.summary)
    return table


def estimators_table(estimators: Mapping[str, type[Estimator]]) -> Table:
    """Every estimator with its parameters, what it needs, its cost in evaluations of f per estimate
    (n samples; D, L, C the task's dimension, latent variables and categories), and its reference."""
    table = Table(title='estimators (--estimator NAME[:key=value,...]; "all" = every one that applies)')
    for column in ("estimator", "parameters (defaults)", "needs", "biased", "cost (f / estimate)", "reference"):
        table.add_column(column)
    for name, cls in sorted(estimators.items()):
        needs = sorted(cls.needs) + ([f"batch>={cls.min_batch}"] if cls.min_batch > 1 else [])
        table.add_row(
            name,
            "\n".join(_param_text(p) for p in cls.params) or "–",
            ", ".join(needs),
            "yes" if cls.biased else (f"with {cls.biased_when}" if cls.biased_when else "no"),
            cls.cost,
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
