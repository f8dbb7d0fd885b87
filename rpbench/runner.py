"""Plan a run (the grid of cells) and execute it, one tidy row per (cell, parameter group).

A run is a task with a parameter grid, a list of estimator requests (each with its own grid),
a budget (K estimates of n samples each), a seed and a device.  :func:`plan` validates all of it
up front, so bad input fails before anything is computed or written.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import torch

from rpbench import metrics
from rpbench.columns import Column, result_columns
from rpbench.engine import DEFAULT_MAX_MEMORY, cell_seed, draw_estimates
from rpbench.errors import UsageError, error_text
from rpbench.estimators.base import Estimator
from rpbench.params import Config, expand_grid, format_config, parse_assignment, resolve_grid, seed_config
from rpbench.registry import ESTIMATORS, get_estimator, get_task, load_builtins
from rpbench.tasks.base import Task
from rpbench.training import warm_up
from rpbench.truth import Truth, se_norm, truth_of

ALL = "all"


@dataclass
class EstimatorRequest:
    """An estimator named on the command line, with its parameter overrides (lists sweep)."""

    name: str
    overrides: dict[str, list[str]] = field(default_factory=dict)


def parse_estimators(texts: Sequence[str]) -> list[EstimatorRequest]:
    """Parse ``--estimator`` values such as ``score,pathwise`` or ``score+ma:decay=0.9,0.99``.

    Commas separate estimators and the values of a swept parameter; a token with ``=`` starts a
    new parameter of the current estimator; a token that is a registered estimator name (or
    ``all``) after a complete parameter starts a new estimator.
    """
    load_builtins()
    requests: list[EstimatorRequest] = []
    for text in texts:
        current: EstimatorRequest | None = None
        key: str | None = None
        for token in (t.strip() for t in text.split(",")):
            if not token:
                raise UsageError(f"--estimator {text!r}: empty name in the list")
            if ":" in token:
                name, _, assignment = token.partition(":")
                current = EstimatorRequest(name.strip())
                requests.append(current)
                key, values = parse_assignment(assignment, f"--estimator {name.strip()}")
                current.overrides.setdefault(key, []).extend(values)
            elif "=" in token:
                if current is None:
                    raise UsageError(f"--estimator {text!r}: parameter {token!r} comes before any estimator name")
                key, values = parse_assignment(token, f"--estimator {current.name}")
                current.overrides.setdefault(key, []).extend(values)
            elif key is not None and current is not None and token not in ESTIMATORS and token != ALL:
                current.overrides[key].append(token)
            else:
                current, key = EstimatorRequest(token), None
                requests.append(current)
    if not requests:
        raise UsageError(f"--estimator: no estimator given; valid estimators: {ALL}, {', '.join(sorted(ESTIMATORS))}")
    return requests


def parse_task_params(texts: Sequence[str], task: str) -> dict[str, list[str]]:
    """``--param key=v1,v2`` (repeatable) into overrides; a repeated key extends its list."""
    overrides: dict[str, list[str]] = {}
    for text in texts:
        key, values = parse_assignment(text, f"--param (task {task})")
        overrides.setdefault(key, []).extend(values)
    return overrides


@dataclass(frozen=True)
class Cell:
    """One task configuration × one estimator configuration."""

    task: Task
    estimator: Estimator


@dataclass
class Plan:
    """The validated cells of a run and what was skipped (with why)."""

    cells: list[Cell]
    skipped: list[str]


def plan(
    task_name: str,
    task_overrides: dict[str, list[str]],
    requests: Sequence[EstimatorRequest],
    batch: int,
    device: torch.device,
) -> Plan:
    """Validate everything and list the cells; raise :class:`UsageError` on any bad input."""
    task_cls = get_task(task_name)
    grid = resolve_grid(task_cls.params, task_overrides, f"task {task_name}")
    tasks = [task_cls(config, device) for config in expand_grid(grid)]
    warm_up(*tasks)  # tasks with steps > 0 are trained here, above tasks and estimators

    wanted: list[tuple[type[Estimator], Config, bool]] = []
    for request in requests:
        if request.name == ALL:
            if request.overrides:
                raise UsageError("--estimator all takes no parameters; name the estimator to set them")
            for cls in ESTIMATORS.values():
                defaults = resolve_grid(cls.params, {}, f"estimator {cls.name}")
                wanted.extend((cls, config, False) for config in expand_grid(defaults))
            continue
        cls = get_estimator(request.name)
        estimator_grid = resolve_grid(cls.params, request.overrides, f"estimator {cls.name}")
        wanted.extend((cls, config, True) for config in expand_grid(estimator_grid))

    chosen: dict[int, list[Estimator]] = {i: [] for i in range(len(tasks))}
    skipped: list[str] = []
    seen: set[tuple[str, str]] = set()
    for cls, config, named in wanted:
        key = (cls.name, format_config(config))
        if key in seen:
            continue
        seen.add(key)
        reasons = [cls.why_not(t, batch) for t in tasks]
        if named and all(reasons):
            raise UsageError(f"estimator {cls.name} does not apply to task {task_name}: {reasons[0]}")
        for i, why in enumerate(reasons):
            if why is None:
                chosen[i].append(cls(config))
            else:
                skipped.append(f"{cls.name} on {task_name}({format_config(tasks[i].config)}): {why}")
    cells = [Cell(tasks[i], estimator) for i, estimators in chosen.items() for estimator in estimators]
    if not cells:
        raise UsageError(f"no estimator applies to task {task_name} with these settings")
    return Plan(cells, skipped)


def plan_estimator_params(cells: Sequence[Cell]) -> list[str]:
    """Every estimator parameter of a plan's cells, in first-seen order (the CSV's columns)."""
    return list(dict.fromkeys(p.name for cell in cells for p in type(cell.estimator).params))


def cell_seed_of(cell: Cell, seed: int, samples: int, batch: int) -> int:
    """The seed of a cell's generator (also its identity when a run is resumed)."""
    task, estimator = cell.task, cell.estimator
    config = seed_config(task.config, type(task).params)
    return cell_seed(seed, task.name, config, estimator.name, estimator.config, samples, batch)


def cell_keys(cell: Cell, samples: int, batch: int, seed: int, estimator_params: Sequence[str]) -> dict[str, object]:
    """The configuration columns of a cell's rows (``group`` set per row), in CSV order.

    Every estimator parameter of the plan has a column (empty where this estimator does not take
    it).  Names cannot collide: the registry refuses parameters named like a run column or like
    a parameter of the other kind (:mod:`rpbench.registry`).
    """
    task, estimator = cell.task, cell.estimator
    return {
        "task": task.name,
        "estimator": estimator.name,
        "biased": estimator.biased,
        "group": None,
        "samples": samples,
        "batch": batch,
        "seed": seed,
        "device": str(task.device),
        **task.config,
        **{name: estimator.config.get(name) for name in estimator_params},
        "cell_seed": cell_seed_of(cell, seed, samples, batch),
    }


def failed_rows(cell: Cell, keys: Mapping[str, object], message: str) -> list[dict[str, object]]:
    """A failed cell's rows: every configuration column, one row per group, ``status=failed``."""
    return [{**keys, "group": group, "status": "failed", "error": message} for group in cell.task.theta]


def plan_columns(plans: Sequence[Plan]) -> list[Column]:
    """Every column of a run's ``results.csv`` for its plans (one per entry), in CSV order."""
    task_params = [(p.name, p.kind) for the_plan in plans for cell in the_plan.cells for p in type(cell.task).params]
    estimator_params = [
        (p.name, p.kind) for the_plan in plans for cell in the_plan.cells for p in type(cell.estimator).params
    ]
    return result_columns(task_params, estimator_params)


@dataclass
class CellResult:
    """A finished cell: one row per parameter group, and per-coordinate summaries per group."""

    cell: Cell
    rows: list[dict[str, object]]
    coords: dict[str, dict[str, torch.Tensor]]


def execute(
    cells: Sequence[Cell],
    samples: int,
    batch: int,
    seed: int,
    repeats: int = 3,
    level: float = 0.95,
    done: Collection[int] = (),
    estimator_params: Sequence[str] | None = None,
    max_memory: int = DEFAULT_MAX_MEMORY,
    truth_for: Callable[[Task], Truth | None] = truth_of,
) -> Iterator[CellResult]:
    """Run the cells in order; yield each as soon as it is measured.

    Every row has a column for every estimator parameter of the run (empty where that
    estimator does not take it), so columns come in the same order in every row.  Cells whose
    ``cell_seed`` is in ``done`` (finished before a resume) are skipped.  ``max_memory`` bounds
    each chunk of estimates (:func:`rpbench.engine.chunk_size`); the ``chunk`` column records the
    resulting chunk size, which, where K needs more than one, decides which noise each estimate sees.
    ``truth_for`` gives each cell's truth (:func:`rpbench.truth.truth_of`, exact or a cached
    reference; a measurement along a training trajectory passes the exact truth at the state alone).
    """
    if samples < 2:
        raise UsageError(f"--samples {samples}: need at least 2 estimates to measure a variance")
    if estimator_params is None:
        estimator_params = plan_estimator_params(cells)
    for cell in cells:
        task, estimator = cell.task, cell.estimator
        this_seed = cell_seed_of(cell, seed, samples, batch)
        if this_seed in done:
            continue
        keys = cell_keys(cell, samples, batch, seed, estimator_params)
        try:
            truth = truth_for(task)
            exact_of = None if truth is None else truth.gradient
            draw = draw_estimates(task, estimator, samples, batch, this_seed, repeats, exact_of, max_memory)
            bad = {group: m.nonfinite for group, m in draw.moments.items()}
            if any(bad.values()):
                raise FloatingPointError(
                    "non-finite estimates: " + ", ".join(f"{g} {n} of {samples}" for g, n in bad.items() if n)
                )
        except Exception as exc:  # a failing cell is recorded and the sweep goes on
            yield CellResult(cell, failed_rows(cell, keys, error_text(exc)), {})
            continue
        rows, coords = [], {}
        for group, moments in draw.moments.items():
            exact = None if truth is None else truth.gradient[group]
            exact_se = None if truth is None or truth.se is None else truth.se[group]
            row: dict[str, object] = {
                **keys,
                "group": group,
                "status": "ok",
                "error": "",
                "truth": "none" if truth is None else truth.kind,
                "exact_se": math.nan if truth is None else se_norm(exact_se),
                "setup_seconds": draw.setup_seconds,
                "chunk": draw.chunk,
            }
            row.update(metrics.summarize(moments, exact, draw.seconds, level, exact_se))
            rows.append(row)
            coords[group] = metrics.per_coordinate(moments, exact)
        yield CellResult(cell, rows, coords)
