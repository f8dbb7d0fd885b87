"""``rpbench train`` end to end: plan the training runs, write ``curves.csv``, run each one.

A training run is (task configuration, estimator configuration, seed); the seed is the task's
``model_seed`` (:mod:`rpbench.training.loop`).  Runs are planned with :func:`rpbench.runner.plan`
(the same grids, parsing and applicability as ``rpbench run``) and measured one after another;
each evaluation point's row is appended to ``curves.csv`` as soon as it is measured, after the
run's checkpoint (:mod:`rpbench.training.checkpoints`).  ``--resume`` reads the plan back from
``run.json``, drops a torn last row, writes the points a kill cut off from the checkpoints and
continues every unfinished run from its checkpoint.  Nothing here prints: ``on_point`` gets each row.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from rpbench.columns import MEASURE_COLUMNS_KEY, MEASURE_FILE, Column, curve_columns
from rpbench.distributed import connect, disconnect, map_in_order
from rpbench.errors import UsageError, error_text
from rpbench.options import resolve_device
from rpbench.registry import TASKS
from rpbench.results import META_FILE, RunWriter, create_run_dir, resumed_metadata, run_metadata
from rpbench.runner import Cell, cell_seed_of, parse_estimators, plan, plan_estimator_params
from rpbench.sweep import MemoryWriter, load_plugins
from rpbench.tables import AppendTable, read_records
from rpbench.tasks.vae import VAETask
from rpbench.training.checkpoints import checkpoint_path, load_checkpoint, save_checkpoint
from rpbench.training.loop import Checkpoint, Point, Schedule, failed_point, train_curve
from rpbench.training.trajectory import Measurement, measurer, plan_measurement, repair_measure_table

if TYPE_CHECKING:
    from dask.distributed import Client

CURVES_FILE = "curves.csv"
FINAL_FILE = "final.csv"
"""Per configuration, the final values over seeds (:func:`rpbench.views.final.final_table`), written at the end."""
Row = dict[str, object]
Written = tuple[Row, str]
"""A row of ``curves.csv`` and its point's ``measure.csv`` records (CSV text, empty without ``--measure``)."""
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
    measure: int = 0
    """K estimates of each measured estimator at every evaluation point (``measure.csv``); 0: none."""
    measure_estimators: list[str] = field(default_factory=list)
    """The estimators measured there (``--estimator`` syntax, ``all``); none: the training estimator."""

    def options(self) -> dict[str, object]:
        """What ``run.json`` records under ``options``."""
        return {**asdict(self), "schedule": asdict(self.schedule), "level": 0.95}


def trainable_tasks() -> list[str]:
    """The registered tasks that can be trained: those that say what training does (``Task.trains``;
    today the VAEs, whose ELBO is maximised; the loop needs their model state and minibatches)."""
    return sorted(name for name, cls in TASKS.items() if cls.trains and issubclass(cls, VAETask))


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
        (request.measure == 0 or request.measure >= 2, f"--measure {request.measure}: need K >= 2 estimates (0: none)"),
        (request.measure or not request.measure_estimators, "--measure-estimators needs --measure K (K >= 2)"),
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


@dataclass(frozen=True)
class RunJob:
    """One training run: its seed, its cell's position among that seed's cells, its identity, and
    how many of its rows ``curves.csv`` already holds (on resume)."""

    seed: int
    index: int
    run_seed: int
    written: int = 0


def curve_row(cell: Cell, request: TrainPlan, job: RunJob, estimator_params: Sequence[str], point: Point) -> Row:
    """One row of ``curves.csv`` of the run ``job``; the point's measured records go to ``measure.csv``."""
    task, estimator, schedule = cell.task, cell.estimator, request.schedule
    return {
        "task": task.name,
        "estimator": estimator.name,
        "biased": estimator.is_biased(),
        "seed": job.seed,
        "device": str(task.device),
        "batch": request.batch,
        "lr": schedule.lr,
        "train_steps": schedule.steps,
        "eval_samples": schedule.eval_samples,
        **{k: v for k, v in task.config.items() if k != "model_seed"},  # the run's seed is the model seed
        **{name: estimator.config.get(name) for name in estimator_params},
        "run_seed": job.run_seed,
        **{k: v for k, v in asdict(point).items() if k != "measured"},  # measure.csv's records
    }


@dataclass
class TrainOutcome:
    """A finished ``rpbench train``: where it was written (or its curves' text) and its sidecar."""

    path: Path | None
    meta: dict[str, object]
    curves_text: str | None


def train(
    request: TrainPlan | None,
    out: Path | None,
    on_point: OnPoint | None = None,
    resume: Path | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
) -> TrainOutcome:
    """Plan and run every training run (or finish the run folder ``resume``); rows appended to
    ``curves.csv`` (or kept in memory when ``out`` is ``None``).  With ``workers`` or
    ``scheduler`` the runs train in parallel on Dask (:mod:`rpbench.distributed`), each run's rows
    written in plan order when it finishes; the curves are the serial ones (timing aside)."""
    if resume is not None:
        request = read_train_plan(resume)
    assert request is not None
    load_plugins(request.plugins)
    check_plan(request)
    if workers is not None and workers < 1:
        raise UsageError(f"--workers {workers}: need at least 1 worker process")
    if request.measure and out is None and resume is None:
        raise UsageError(f"--measure {request.measure} writes {MEASURE_FILE} into a run folder; give --out")
    client = connect(workers, scheduler) if workers is not None or scheduler is not None else None
    try:
        return _train(request, out, on_point, resume, client)
    finally:
        if client is not None:
            disconnect(client)


def _train(
    request: TrainPlan, out: Path | None, on_point: OnPoint | None, resume: Path | None, client: Client | None
) -> TrainOutcome:
    cells = plan_cells(request)
    every = [cell for seed_cells in cells.values() for cell in seed_cells]
    params = plan_estimator_params(every)
    measurement: Measurement | None = None
    measured_columns: list[Column] = []
    if request.measure:
        specs = request.measure_estimators
        measurement, measured_columns = plan_measurement(every, request.measure, specs, request.batch)
    writer = _open_writer(request, _columns(every), measured_columns, out, resume)
    run_dir = writer.run_dir if isinstance(writer, RunWriter) else None
    measured = None
    if run_dir is not None and measurement is not None:
        measured = AppendTable.open(run_dir / MEASURE_FILE, measurement.columns)
    started = time.perf_counter()
    try:
        if resume is not None:
            repair_measure_table(resume / MEASURE_FILE, resume / CURVES_FILE)
        jobs = plan_jobs(request, cells, resume)
        for rows in _rows_of_runs(request, cells, jobs, params, run_dir, client, measurement):
            for row, records in rows:
                if measured is not None:
                    measured.append_text(records)  # first: a point counts as written once its curve row is in
                writer.add([row], {})
                if on_point is not None:
                    on_point(row)
        writer.finish(runs=len(every), seconds=time.perf_counter() - started)
    finally:
        if measured is not None:
            measured.close()
        writer.close()
    if isinstance(writer, RunWriter):
        return TrainOutcome(writer.run_dir, writer.metadata, None)
    return TrainOutcome(None, writer.metadata, writer.results.text())


def _rows_of_runs(
    request: TrainPlan,
    cells: dict[int, list[Cell]],
    jobs: Sequence[RunJob],
    params: Sequence[str],
    run_dir: Path | None,
    client: Client | None,
    measurement: Measurement | None,
) -> Iterator[Iterable[Written]]:
    """Each run's new rows, run by run in plan order: streamed point by point when serial."""
    if client is None:
        for job in jobs:
            yield run_rows(cells[job.seed][job.index], request, job, params, run_dir, measurement)
        return
    threads = torch.get_num_threads()
    for job, outcome in map_in_order(client, train_job, jobs, request, params, run_dir, threads, measurement):
        if isinstance(outcome, BaseException):  # its worker died (or the job could not start)
            yield dead_run_rows(cells[job.seed][job.index], request, job, params, run_dir, error_text(outcome))
        else:
            yield outcome


_PLANS: dict[str, dict[int, list[Cell]]] = {}


def train_job(
    job: RunJob,
    request: TrainPlan,
    params: Sequence[str],
    run_dir: Path | None,
    threads: int,
    measurement: Measurement | None = None,
) -> list[Written]:
    """One run's new rows, on a Dask worker (the plan is made once per worker process).

    The worker uses the client's torch thread count, so that its numbers are the serial run's.
    """
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    key = repr(request)
    if key not in _PLANS:
        load_plugins(request.plugins)
        _PLANS[key] = plan_cells(request)
    return list(run_rows(_PLANS[key][job.seed][job.index], request, job, params, run_dir, measurement))


def dead_run_rows(
    cell: Cell, request: TrainPlan, job: RunJob, params: Sequence[str], run_dir: Path | None, error: str
) -> list[Written]:
    """The rows of a run whose worker died: the points its checkpoint holds, then a failed one at
    its step (checkpointed as the run's end, so that ``--resume`` does not train it on)."""
    store = None if run_dir is None else checkpoint_path(run_dir, job.run_seed)
    saved = (None if store is None else load_checkpoint(store)) or Checkpoint({})
    last = saved.points[-1] if saved.points else None
    failed = failed_point(last.step if last else 0, last.seconds if last else 0.0, error)
    if store is not None:
        save_checkpoint(store, Checkpoint(saved.state, [*saved.points, failed], finished=True))
    points = [*saved.points[job.written :], failed]
    return [(curve_row(cell, request, job, params, point), point.measured) for point in points]


def _columns(cells: Sequence[Cell]) -> list[Column]:
    task_params = [(p.name, p.kind) for cell in cells for p in type(cell.task).params if p.name != "model_seed"]
    return curve_columns(task_params, [(p.name, p.kind) for c in cells for p in type(c.estimator).params])


def _open_writer(
    request: TrainPlan,
    columns: Sequence[Column],
    measured: Sequence[Column],
    out: Path | None,
    resume: Path | None,
) -> RunWriter | MemoryWriter:
    names = [c.name for c in columns]
    declared = [c.to_json() for c in columns]
    if resume is not None:
        meta = resumed_metadata(resume, {"columns": declared, MEASURE_COLUMNS_KEY: [c.to_json() for c in measured]})
        return RunWriter(resume, meta, names, resume=True, table=CURVES_FILE, cell_id="run_seed")
    meta = {**run_metadata(request.options(), resolve_device(request.device)), "kind": "train", "columns": declared}
    if measured:
        meta[MEASURE_COLUMNS_KEY] = [c.to_json() for c in measured]
    if out is None:
        return MemoryWriter(meta, names)
    return RunWriter(create_run_dir(out, request.task), meta, names, table=CURVES_FILE)


def read_train_plan(run_dir: Path) -> TrainPlan:
    """The plan a training run folder was started with (its ``run.json``); one line if it is not one."""
    try:
        meta = json.loads((run_dir / META_FILE).read_text())
    except FileNotFoundError:
        raise UsageError(
            f"--resume {run_dir}: no {META_FILE} there; give a run folder that rpbench train created"
        ) from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"--resume {run_dir}: {META_FILE} is damaged ({exc})") from None
    if not isinstance(meta, dict) or meta.get("kind") != "train":
        raise UsageError(
            f"--resume {run_dir}: not a training run (rpbench train makes those); "
            "rpbench run --resume finishes measurement runs"
        )
    try:
        options = {k: v for k, v in meta["options"].items() if k != "level"}
        return TrainPlan(**{**options, "schedule": Schedule(**options["schedule"])})
    except (KeyError, TypeError, AttributeError) as exc:
        raise UsageError(f"--resume {run_dir}: {META_FILE} is damaged or from another version ({exc!r})") from None


def plan_jobs(request: TrainPlan, cells: dict[int, list[Cell]], resumed: Path | None = None) -> list[RunJob]:
    """Every run in order (seed by seed); on resume, with the rows each already has, checked
    against its checkpoint (a damaged checkpoint is refused here, before any training)."""
    steps, batch = request.schedule.steps, request.batch
    jobs = [
        RunJob(seed, index, cell_seed_of(cell, seed, steps, batch))
        for seed, seed_cells in cells.items()
        for index, cell in enumerate(seed_cells)
    ]
    if resumed is None:
        return jobs
    written = _rows_per_run(resumed / CURVES_FILE)
    for job in jobs:
        saved = load_checkpoint(checkpoint_path(resumed, job.run_seed))
        points = 0 if saved is None else len(saved.points)
        if written.get(job.run_seed, 0) > points:
            raise UsageError(
                f"--resume {resumed}: {CURVES_FILE} has {written[job.run_seed]} rows of run {job.run_seed} but its "
                f"checkpoint only {points} points; the checkpoints were changed by hand"
            )
    return [RunJob(job.seed, job.index, job.run_seed, written.get(job.run_seed, 0)) for job in jobs]


def _rows_per_run(curves: Path) -> Counter[int]:
    if not curves.exists():
        return Counter()
    header, body, _ = read_records(curves)
    position = header.index("run_seed")
    return Counter(int(record[position]) for record in body)


def run_rows(
    cell: Cell,
    request: TrainPlan,
    job: RunJob,
    params: Sequence[str],
    run_dir: Path | None,
    measurement: Measurement | None = None,
) -> Iterator[Written]:
    """The run's rows not yet in ``curves.csv`` (each with its ``measure.csv`` records): those its
    checkpoint holds beyond ``job.written``, then one per new evaluation point (a failed run ends
    with its failed point).  With a run folder, the run is checkpointed at every point and
    continues from its checkpoint."""
    assert isinstance(cell.task, VAETask)
    store = None if run_dir is None else checkpoint_path(run_dir, job.run_seed)
    start = None if store is None else load_checkpoint(store)
    for point in [] if start is None else start.points[job.written :]:
        yield curve_row(cell, request, job, params, point), point.measured
    if start is not None and start.finished:
        return

    def save(checkpoint: Checkpoint) -> None:
        assert store is not None
        save_checkpoint(store, checkpoint)

    measure = None if measurement is None else measurer(measurement, cell, job.seed, job.run_seed)
    schedule = request.schedule
    curve = train_curve(cell.task, cell.estimator, request.batch, schedule, start, save if store else None, measure)
    for point in curve:
        yield curve_row(cell, request, job, params, point), point.measured
