"""``rpbench train`` end to end: plan the training runs, write ``curves.csv``, run each one.

A training run is (task configuration, estimator configuration, seed); the seed is the task's
``model_seed`` (:mod:`rpbench.training.loop`).  Runs are planned with :func:`rpbench.runner.plan`
(the same grids, parsing and applicability as ``rpbench run``) and measured one after another;
each evaluation point's row is appended to ``curves.csv`` as soon as it is measured.  Nothing
here prints: ``on_point`` gets each row.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rpbench.columns import curve_columns
from rpbench.errors import UsageError
from rpbench.options import resolve_device
from rpbench.registry import TASKS
from rpbench.results import RunWriter, create_run_dir, run_metadata
from rpbench.runner import Cell, cell_seed_of, parse_estimators, plan, plan_estimator_params
from rpbench.sweep import MemoryWriter, load_plugins
from rpbench.tasks.vae import VAETask
from rpbench.training.loop import Point, Schedule, train_curve

CURVES_FILE = "curves.csv"
Row = dict[str, object]
OnPoint = Callable[[Row], None]


@dataclass
class TrainPlan:
    """What ``rpbench train`` was asked for, validated."""

    task: str
    params: dict[str, list[str]]
    estimators: list[str]
    seeds: list[int]
    batch: int
    schedule: Schedule
    device: str = "cpu"
    plugins: list[str] = field(default_factory=list)

    def options(self) -> dict[str, object]:
        """What ``run.json`` records under ``options``."""
        return {**asdict(self), "schedule": asdict(self.schedule), "level": 0.95}


def trainable_tasks() -> list[str]:
    """The registered tasks that can be trained (their objective is an ELBO to maximise)."""
    return sorted(name for name, cls in TASKS.items() if issubclass(cls, VAETask))


def check_plan(request: TrainPlan) -> None:
    """A :class:`UsageError` naming the first bad setting."""
    schedule = request.schedule
    if request.task not in TASKS:
        raise UsageError(f"unknown task {request.task!r}; valid tasks: {', '.join(sorted(TASKS))}")
    if request.task not in trainable_tasks():
        raise UsageError(f"task {request.task} cannot be trained; trainable tasks: {', '.join(trainable_tasks())}")
    for key, flag in (("model_seed", "--seeds"), ("steps", "--steps")):
        if key in request.params:
            raise UsageError(f"--param {key}: a training run sets it itself; use {flag}")
    checks = (
        (schedule.steps >= 1, f"--steps {schedule.steps}: need at least 1 training step"),
        (1 <= schedule.eval_every <= schedule.steps, f"--eval-every {schedule.eval_every}: need 1 <= it <= --steps"),
        (math.isfinite(schedule.lr) and schedule.lr > 0, f"--lr {schedule.lr}: a learning rate is a number > 0"),
        (schedule.eval_samples >= 1, f"--eval-samples {schedule.eval_samples}: need at least 1 sample"),
        (schedule.time_budget > 0, f"--time-budget {schedule.time_budget}: need a number of seconds > 0"),
        (request.batch >= 1, f"--batch {request.batch}: need n >= 1 samples per image"),
        (bool(request.seeds) and min(request.seeds) >= 0, f"--seeds {request.seeds}: need seeds >= 0"),
    )
    for ok, message in checks:
        if not ok:
            raise UsageError(message)


def plan_cells(request: TrainPlan) -> dict[int, list[Cell]]:
    """Per seed, the (task configuration, estimator configuration) cells, planned as ``run`` plans them."""
    device = resolve_device(request.device)
    requests = parse_estimators(request.estimators)
    return {
        seed: plan(request.task, {**request.params, "model_seed": [str(seed)]}, requests, request.batch, device).cells
        for seed in request.seeds
    }


def curve_row(cell: Cell, request: TrainPlan, seed: int, estimator_params: Sequence[str], point: Point) -> Row:
    """One row of ``curves.csv``."""
    task, estimator, schedule = cell.task, cell.estimator, request.schedule
    return {
        "task": task.name,
        "estimator": estimator.name,
        "biased": estimator.biased,
        "seed": seed,
        "device": str(task.device),
        "batch": request.batch,
        "lr": schedule.lr,
        "train_steps": schedule.steps,
        "eval_samples": schedule.eval_samples,
        **{k: v for k, v in task.config.items() if k != "model_seed"},  # the run's seed is the model seed
        **{name: estimator.config.get(name) for name in estimator_params},
        "run_seed": cell_seed_of(cell, seed, schedule.steps, request.batch),
        **asdict(point),
    }


@dataclass
class TrainOutcome:
    """A finished ``rpbench train``: where it was written (or its curves' text) and its sidecar."""

    path: Path | None
    meta: dict[str, object]
    curves_text: str | None


def train(request: TrainPlan, out: Path | None, on_point: OnPoint | None = None) -> TrainOutcome:
    """Plan and run every training run; rows appended to ``curves.csv`` (or kept in memory)."""
    load_plugins(request.plugins)
    check_plan(request)
    cells = plan_cells(request)
    every = [cell for seed_cells in cells.values() for cell in seed_cells]
    params = plan_estimator_params(every)
    task_params = [(p.name, p.kind) for cell in every for p in type(cell.task).params if p.name != "model_seed"]
    columns = curve_columns(task_params, [(p.name, p.kind) for c in every for p in type(c.estimator).params])
    names = [c.name for c in columns]
    meta = {
        **run_metadata(request.options(), resolve_device(request.device)),
        "kind": "train",
        "columns": [c.to_json() for c in columns],
    }
    writer: RunWriter | MemoryWriter
    if out is None:
        writer = MemoryWriter(meta, names)
    else:
        writer = RunWriter(create_run_dir(out, request.task), meta, names, table=CURVES_FILE)
    started = time.perf_counter()
    try:
        for seed, seed_cells in cells.items():
            for cell in seed_cells:
                for row in _run_rows(cell, request, seed, params):
                    writer.add([row], {})
                    if on_point is not None:
                        on_point(row)
        writer.finish(runs=len(every), seconds=time.perf_counter() - started)
    finally:
        writer.close()
    if isinstance(writer, RunWriter):
        return TrainOutcome(writer.run_dir, writer.metadata, None)
    return TrainOutcome(None, writer.metadata, writer.results.text())


def _run_rows(cell: Cell, request: TrainPlan, seed: int, params: Sequence[str]) -> Iterator[Row]:
    """A run's rows, one per evaluation point (a failed run ends with its failed point)."""
    assert isinstance(cell.task, VAETask)
    for point in train_curve(cell.task, cell.estimator, request.batch, request.schedule):
        yield curve_row(cell, request, seed, params, point)
