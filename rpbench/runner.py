"""Plan a run (the grid of cells) and execute it, one tidy row per (cell, parameter group).

A run is a task with a parameter grid, a list of estimator requests (each with its own grid),
a budget (K estimates of n samples each), a seed and a device.  :func:`plan` validates all of it
up front, so bad input fails before anything is computed or written.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import torch

from rpbench import metrics
from rpbench.columns import Column, result_columns
from rpbench.engine import DEFAULT_MAX_MEMORY, Draw, Enough, cell_seed, draw_estimates
from rpbench.errors import UsageError, error_text, traceback_text
from rpbench.estimators.base import Estimator, tree_leaves
from rpbench.moments import GroupMoments
from rpbench.params import Config, expand_grid, format_config, parse_assignment, resolve_grid, seed_config
from rpbench.registry import ESTIMATORS, get_estimator, get_task, load_builtins
from rpbench.suite import default_max_samples
from rpbench.tasks.base import Task
from rpbench.timing import DEFAULT_REPEATS, median_interval
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
    batches: dict[int, list[int]] = field(default_factory=dict)
    """For each n planned, the indices of the cells that apply at that n (in cell order)."""

    def cells_at(self, batch: int) -> list[int]:
        """The indices of the cells measured at ``batch`` (every cell for a plan of one n)."""
        return self.batches.get(batch, list(range(len(self.cells))))


def plan(
    task_name: str,
    task_overrides: dict[str, list[str]],
    requests: Sequence[EstimatorRequest],
    batch: int | Sequence[int],
    device: torch.device,
    equal_cost: int | None = None,
) -> Plan:
    """Validate everything and list the cells; raise :class:`UsageError` on any bad input.

    ``batch`` may be a list of n (a sweep): a cell is a task configuration × an estimator
    configuration that applies at some n, and :attr:`Plan.batches` says at which; what does not
    apply at an n (e.g. ``min_batch``) is skipped there with its reason.  A named estimator that
    applies at no n to no task configuration is an error.

    ``equal_cost`` (``--equal-cost E``) replaces ``batch``: each cell is measured at the largest n
    whose :meth:`~rpbench.estimators.base.Estimator.evaluations` are at most E (:func:`equal_cost_batch`),
    so estimators that evaluate f more often per sample get fewer samples.
    """
    batches = [batch] if isinstance(batch, int) else list(batch)
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

    chosen: dict[int, list[tuple[Estimator, list[int]]]] = {i: [] for i in range(len(tasks))}
    skipped: list[str] = []
    seen: set[tuple[str, str]] = set()
    for cls, config, named in wanted:
        key = (cls.name, format_config(config))
        if key in seen:
            continue
        seen.add(key)
        estimator = cls(config)
        if equal_cost is None:
            reasons = {n: [cls.why_not(t, n) for t in tasks] for n in batches}
        else:
            reasons = {equal_cost: [_equal_cost_reason(estimator, t, equal_cost) for t in tasks]}
        first = next(iter(reasons))
        if named and all(all(why) for why in reasons.values()):
            raise UsageError(f"estimator {cls.name} does not apply to task {task_name}: {reasons[first][0]}")
        for i, task in enumerate(tasks):
            where = f"{cls.name} on {task_name}({format_config(task.config)})"
            if equal_cost is not None:
                if reasons[equal_cost][i] is None:
                    chosen[i].append((cls(config), [equal_cost_batch(estimator, task, equal_cost)]))
                else:
                    skipped.append(f"{where}: {reasons[equal_cost][i]}")
                continue
            applies = [n for n in batches if reasons[n][i] is None]
            if applies:
                chosen[i].append((cls(config), applies))
            why_not = {n: reasons[n][i] for n in batches if reasons[n][i] is not None}
            if not applies and len(set(why_not.values())) == 1:  # the same reason at every n: said once
                skipped.append(f"{where}: {why_not[batches[0]]}")
            else:
                skipped += [f"{where} at n={n}: {why}" for n, why in why_not.items()]
    pairs = [(Cell(tasks[i], estimator), applies) for i, here in chosen.items() for estimator, applies in here]
    if not pairs:
        raise UsageError(f"no estimator applies to task {task_name} with these settings")
    if equal_cost is not None:  # the n the cells got, each cell at one
        batches = sorted({n for _, applies in pairs for n in applies})
    at = {n: [j for j, (_, applies) in enumerate(pairs) if n in applies] for n in batches}
    return Plan([cell for cell, _ in pairs], skipped, at)


def equal_cost_batch(estimator: Estimator, task: Task, budget: int) -> int:
    """The largest n whose evaluations of f per estimate are at most ``budget`` (0 where even n = 1 costs more).

    :meth:`~rpbench.estimators.base.Estimator.evaluations` grows with n (each sample costs at least one
    evaluation), so a bisection over ``1 … budget`` finds it.
    """
    low, high = 0, budget  # evaluations(low) <= budget (low = 0: nothing), the answer is <= high
    while low < high:
        middle = (low + high + 1) // 2
        if estimator.evaluations(task, middle) <= budget:
            low = middle
        else:
            high = middle - 1
    return low


def _equal_cost_reason(estimator: Estimator, task: Task, budget: int) -> str | None:
    """Why ``estimator`` cannot be measured on ``task`` within ``budget`` evaluations, or ``None``."""
    if (why := estimator.why_not(task, max(type(estimator).min_batch, 1))) is not None and "--batch" not in why:
        return why
    n = equal_cost_batch(estimator, task, budget)
    if n < type(estimator).min_batch or n < 1:
        need = max(type(estimator).min_batch, 1)
        return (
            f"--equal-cost {budget}: its smallest estimate (n={need}) costs "
            f"{estimator.evaluations(task, need)} evaluations of f ({type(estimator).cost})"
        )
    return estimator.why_not(task, n)


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
        "biased": estimator.is_biased(),
        "group": None,
        "samples": samples,
        "batch": batch,
        "seed": seed,
        "device": str(task.device),
        **task.config,
        **{name: estimator.config.get(name) for name in estimator_params},
        "cell_seed": cell_seed_of(cell, seed, samples, batch),
    }


def rel_half_width(value: float, lo: float, hi: float) -> float:
    """An interval's relative half-width ``(hi − lo) / 2 / value`` (0 for a zero value: nothing to resolve)."""
    return 0.0 if value == 0.0 else (hi - lo) / 2.0 / abs(value)


ROUNDING = 100.0
"""Adaptive K: a variance below ``(ROUNDING · ε · ‖mean‖)²`` (ε: the estimates' machine epsilon) is
rounding noise of an exact estimator, with nothing to resolve (``score+delta`` on a quadratic)."""


def target_met(moments: Mapping[str, GroupMoments], target: float, level: float, eps: float = 0.0) -> bool:
    """Adaptive K's stopping rule: every group's variance interval (:func:`rpbench.metrics.summarize`'s
    ``variance``, ``variance_lo``, ``variance_hi``) has a relative half-width below ``target``.

    A group of variance 0 (an exact control variate: the relative width is undefined) counts as
    met, and so does one whose variance is rounding noise (:data:`ROUNDING`, ``eps`` the
    estimates' machine epsilon).
    """
    for group_moments in moments.values():
        row = metrics.summarize(group_moments, None, [], level)
        value = row["variance"]
        if value <= (ROUNDING * eps) ** 2 * float(group_moments.mean.square().sum()):
            continue
        if not rel_half_width(value, row["variance_lo"], row["variance_hi"]) < target:
            return False
    return True


def failed_rows(cell: Cell, keys: Mapping[str, object], message: str) -> list[dict[str, object]]:
    """A failed cell's rows: every configuration column, one row per group, ``status=failed``."""
    return [{**keys, "group": group, "status": "failed", "error": message} for group in cell.task.theta]


def plan_columns(plans: Sequence[Plan], adaptive: bool = False) -> list[Column]:
    """Every column of a run's ``results.csv`` for its plans (one per entry), in CSV order
    (``adaptive``: with adaptive K's columns, :func:`rpbench.columns.result_columns`)."""
    task_params = [(p.name, p.kind) for the_plan in plans for cell in the_plan.cells for p in type(cell.task).params]
    estimator_params = [
        (p.name, p.kind) for the_plan in plans for cell in the_plan.cells for p in type(cell.estimator).params
    ]
    return result_columns(task_params, estimator_params, adaptive)


@dataclass
class CellResult:
    """A finished cell: one row per parameter group, and per-coordinate summaries per group."""

    cell: Cell
    rows: list[dict[str, object]]
    coords: dict[str, dict[str, torch.Tensor]]
    traceback: str = ""
    """A failed cell's traceback (empty for a cell that went well)."""


def execute(
    cells: Sequence[Cell],
    samples: int,
    batch: int,
    seed: int,
    repeats: int = DEFAULT_REPEATS,
    level: float = 0.95,
    done: Collection[int] = (),
    estimator_params: Sequence[str] | None = None,
    max_memory: int = DEFAULT_MAX_MEMORY,
    truth_for: Callable[[Task], Truth | None] = truth_of,
    target_rel_ci: float | None = None,
    max_samples: int | None = None,
    min_time: float | None = None,
    parallel_cells: int = 1,
    timing_threads: int | None = None,
) -> Iterator[CellResult]:
    """Run the cells in order; yield each as soon as it is measured.

    Every row has a column for every estimator parameter of the run (empty where that
    estimator does not take it), so columns come in the same order in every row.  Cells whose
    ``cell_seed`` is in ``done`` (finished before a resume) are skipped.  ``max_memory`` bounds
    each chunk of estimates (:func:`rpbench.engine.chunk_size`); the ``chunk`` column records the
    resulting chunk size, which, where K needs more than one, decides which noise each estimate sees.
    ``truth_for`` gives each cell's truth (:func:`rpbench.truth.truth_of`, exact or a cached
    reference; a measurement along a training trajectory passes the exact truth at the state alone).

    Adaptive K (``target_rel_ci``): each cell starts at ``samples`` and doubles K (up to
    ``max_samples``, default :func:`rpbench.suite.default_max_samples`) until :func:`target_met`;
    its rows then hold the K reached in ``samples``, the starting K in ``start_samples`` (which,
    with the rest of the cell, makes its seed) and ``target_reached``.

    Timing: ``repeats`` values of at least ``min_time`` seconds each (:func:`rpbench.timing.time_cell`);
    ``parallel_cells`` (the cells measured side by side with this one on its machine) goes into the
    rows, ``timing_threads`` (that machine's share of cores per cell) is torch's thread count while timing.
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
        if target_rel_ci is not None:
            keys["start_samples"] = samples
        try:
            truth = truth_for(task)
            exact_of = None if truth is None else truth.gradient
            cap: int | None = None
            enough: Enough | None = None
            if target_rel_ci is not None:  # adaptive K: a cap and a stopping rule
                cap = default_max_samples(samples) if max_samples is None else max_samples
                eps = torch.finfo(tree_leaves(task.theta)[0].dtype).eps
                enough = functools.partial(target_met, target=target_rel_ci, level=level, eps=eps)
            budget = (repeats, exact_of, max_memory, cap, enough, min_time, timing_threads)
            draw = draw_estimates(task, estimator, samples, batch, this_seed, *budget)
            if target_rel_ci is not None:
                keys |= {"samples": draw.samples, "target_reached": draw.target_reached}
            bad = {group: m.nonfinite for group, m in draw.moments.items()}
            if any(bad.values()):
                raise FloatingPointError(
                    "non-finite estimates: " + ", ".join(f"{g} {n} of {draw.samples}" for g, n in bad.items() if n)
                )
        except Exception as exc:  # a failing cell is recorded and the sweep goes on
            yield CellResult(cell, failed_rows(cell, keys, error_text(exc)), {}, traceback_text(exc))
            continue
        try:  # a metric that cannot be computed fails its cell, not the sweep
            evaluations = estimator.evaluations(task, batch)
            eps = float(torch.finfo(tree_leaves(task.theta)[0].dtype).eps)
            rows, coords = _summarized(draw, truth, keys, level, parallel_cells, evaluations, eps)
        except Exception as exc:
            yield CellResult(cell, failed_rows(cell, keys, error_text(exc)), {}, traceback_text(exc))
            continue
        yield CellResult(cell, rows, coords)


def _summarized(
    draw: Draw,
    truth: Truth | None,
    keys: Mapping[str, object],
    level: float,
    parallel_cells: int = 1,
    evaluations: int | None = None,
    eps: float = float(torch.finfo(torch.float64).eps),
) -> tuple[list[dict[str, object]], dict[str, dict[str, torch.Tensor]]]:
    """A measured cell's rows (one per parameter group) and per-coordinate summaries; ``evaluations``:
    the estimator's evaluations of f per estimate (:meth:`~rpbench.estimators.base.Estimator.evaluations`),
    ``eps`` the machine epsilon of its estimates (a bias within their round-off is not significant)."""
    timing = draw.timing
    conditions = {
        "timing_loops": timing.loops,
        "reference_seconds": median_interval(timing.reference, level).median,
        "load_average": timing.load_average,
        "torch_threads": timing.threads,
        "cpus": timing.cpus,
        "parallel_cells": parallel_cells,
    }
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
            **conditions,
        }
        row.update(
            metrics.summarize(moments, exact, timing.seconds, level, exact_se, timing.reference, evaluations, eps)
        )
        rows.append(row)
        coords[group] = metrics.per_coordinate(moments, exact)
    return rows, coords
