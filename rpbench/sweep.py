"""Run a sweep end to end: what to run, its plan, its run folder, its cells (serially or on Dask).

:func:`rpbench.run` (and through it ``rpbench run``) comes here.  The steps, each a function:

1. :func:`resolve` — the entries to run, from a resumed run folder, a suite, or one task's options;
2. :func:`plan_entries` — every entry planned (bad input fails here, before anything is written);
3. :func:`execute` — connect to Dask (if asked), open the writer (a run folder, or memory),
   measure every cell not finished yet, append its rows, report it through ``on_cell`` (and the
   reference truths being drawn through ``on_reference``).

Nothing here prints.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from rpbench import runner, timing
from rpbench.columns import ADAPTIVE_KEY, Column
from rpbench.engine import DEFAULT_MAX_MEMORY
from rpbench.errors import UsageError, error_text, traceback_text
from rpbench.options import parse_memory, resolve_device
from rpbench.registry import load_builtins, load_plugin
from rpbench.results import (
    COORD_COLUMNS,
    META_FILE,
    RunWriter,
    coordinate_rows_of,
    create_run_dir,
    resumed_metadata,
    run_metadata,
)
from rpbench.runner import (
    Cell,
    Plan,
    cell_keys,
    cell_seed_of,
    failed_rows,
    parse_estimators,
    plan,
    plan_columns,
    plan_estimator_params,
)
from rpbench.suite import Entry, check_budget, load_suite, parse_suite
from rpbench.tables import AppendTable
from rpbench.timing import DEFAULT_REPEATS, DEFAULT_TIMING_THREADS, thread_share, threads_for_timing
from rpbench.truth import OnReference, truth_of
from rpbench.truth_cache import ReferenceCache

Rows = list[dict[str, object]]


@dataclass(frozen=True)
class CellReport:
    """What ``on_cell`` receives after each finished cell: its rows and the sweep's progress."""

    rows: Rows
    done: int
    total: int
    failed: int
    """Cells of the run that failed so far."""


OnCell = Callable[[CellReport], None]


@dataclass
class Resolved:
    """A run's validated options: its entries and how to measure them."""

    entries: list[Entry]
    label: str
    suite: str | None = None
    device: str = "cpu"
    level: float = 0.95
    max_memory: int = DEFAULT_MAX_MEMORY
    plugins: list[str] = field(default_factory=list)
    reference_cache: Path | None = None
    """The folder of the on-disk reference cache (:mod:`rpbench.truth_cache`; ``None``: none).  How a
    run is measured, not what: not in :meth:`options`, so a resume takes its own."""

    @property
    def adaptive(self) -> bool:
        """Whether some entry asks for adaptive K (the run's rows then have its columns)."""
        return any(entry.target_rel_ci is not None for entry in self.entries)

    def options(self) -> dict[str, object]:
        """What ``run.json`` records under ``options`` (and ``--resume`` reads back)."""
        return {
            "suite": self.suite,
            "entries": [vars(entry) for entry in self.entries],
            "device": self.device,
            "level": self.level,
            "max_memory": self.max_memory,
            "plugin": list(self.plugins),
        }


@dataclass
class Outcome:
    """A finished sweep: where it was written (or its tables' text), its sidecar and its tallies."""

    path: Path | None
    meta: dict[str, object]
    results_text: str | None
    coords_text: str | None
    rows: int
    failed: Rows
    skipped: list[str]


def load_plugins(plugins: Sequence[str]) -> None:
    """Register the built-ins and every plugin (a ``.py`` file or a module name)."""
    load_builtins()
    for plugin in plugins:
        load_plugin(plugin)


def single_entry(
    task: str | None,
    estimators: Sequence[str] | None,
    params: Mapping[str, Sequence[str]] | None,
    samples: int | Sequence[int] | None,
    batch: int | Sequence[int] | None,
    seed: int,
    repeats: int | None,
    target_rel_ci: float | None = None,
    max_samples: int | None = None,
    min_time: float | None = None,
    timing_threads: int | None = None,
    equal_cost: int | None = None,
) -> Entry:
    """The one entry of a run given by task, estimators, parameters and budget (defaults filled in).

    ``samples`` and ``batch`` may be lists (a sweep of K or n); ``target_rel_ci`` and
    ``max_samples`` ask for adaptive K (:func:`rpbench.suite.check_budget` has the rules);
    ``equal_cost`` replaces ``batch`` (each estimator's n from its evaluations of f).
    """
    if equal_cost is not None and batch is not None:
        raise UsageError("--equal-cost sets each estimator's n from its evaluations of f; drop --batch")
    entry = Entry(
        task=task or "gaussian",
        params={key: [str(v) for v in values] for key, values in (params or {}).items()},
        estimators=list(estimators or ["all"]),
        samples=_budget_value(1000 if samples is None else samples, "--samples"),
        batch=_budget_value(1 if batch is None else batch, "--batch"),
        seeds=[_seed(seed)],
        repeats=DEFAULT_REPEATS if repeats is None else repeats,
        min_time=timing.DEFAULT_MIN_TIME if min_time is None else _seconds(min_time, "--min-time"),
        timing_threads=DEFAULT_TIMING_THREADS if timing_threads is None else _count(timing_threads, "--timing-threads"),
        target_rel_ci=_number(target_rel_ci, "--target-rel-ci"),
        max_samples=max_samples,
        equal_cost=equal_cost,
    )
    if max_samples is not None and (isinstance(max_samples, bool) or not isinstance(max_samples, int)):
        raise UsageError(f"--max-samples {max_samples!r}: expected an integer >= K, e.g. 100000")
    check_budget(entry, OPTION_NAMES)
    return entry


OPTION_NAMES = {
    "samples": "--samples",
    "batch": "--batch",
    "repeats": "--repeats",
    "min_time": "--min-time",
    "timing_threads": "--timing-threads",
    "target_rel_ci": "--target-rel-ci",
    "max_samples": "--max-samples",
    "equal_cost": "--equal-cost",
}
"""How the budget's errors cite the options of ``rpbench run``."""


def _number(value: object, flag: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UsageError(f"{flag} {value!r}: expected a number > 0, e.g. 0.1")
    return float(value)


def _seconds(value: object, flag: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UsageError(f"{flag} {value!r}: expected seconds >= 0, e.g. 0.05")
    return float(value)


def _count(value: object, flag: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UsageError(f"{flag} {value!r}: expected an integer >= 0, e.g. 1")
    return value


def _budget_value(value: int | Sequence[int], flag: str) -> int | list[int]:
    """An integer or a list of integers (one value: the integer itself, as a single run records it)."""
    if isinstance(value, str):
        raise UsageError(f"{flag} {value!r}: expected an integer or a list of integers, e.g. 1,2,4,8")
    if isinstance(value, int | float) or not isinstance(value, Sequence):
        values: list[object] = [value]
    else:
        values = list(value)
    if not values:
        raise UsageError(f"{flag}: empty list; give at least one value")
    bad = [v for v in values if isinstance(v, bool) or not isinstance(v, int)]
    if bad:
        raise UsageError(f"{flag} {bad[0]!r}: expected an integer or a list of integers, e.g. 1,2,4,8")
    counts = [int(v) for v in values]  # type: ignore[call-overload]
    return counts[0] if len(counts) == 1 else counts


def _seed(value: object, flag: str = "--seed") -> int:
    """A run's seed: an integer >= 0, refused before anything is planned or written."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UsageError(f"{flag} {value!r}: expected an integer >= 0, e.g. 0")
    return value


def read_run_options(run_dir: Path) -> dict:
    """The options a run folder was started with (its ``run.json``); a :class:`UsageError` if unusable."""
    try:
        options = json.loads((run_dir / META_FILE).read_text())["options"]
        missing = [key for key in ("entries", "device", "level") if key not in options]
        if missing:
            raise KeyError(missing[0])
    except FileNotFoundError:
        raise UsageError(
            f"--resume {run_dir}: no {META_FILE} there; give a run folder that rpbench run created"
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"--resume {run_dir}: {META_FILE} is damaged or from another version ({exc!r})") from None
    return options


def resolve_resumed(run_dir: Path) -> Resolved:
    """The options of the run folder ``run_dir``, to finish it as it was planned."""
    saved = read_run_options(run_dir)
    try:
        entries = [Entry(**entry) for entry in saved["entries"]]
    except TypeError as exc:
        raise UsageError(f"--resume {run_dir}: {META_FILE} is damaged or from another version ({exc})") from None
    return Resolved(
        entries,
        "",
        saved.get("suite"),
        str(saved["device"]),
        float(saved["level"]),
        parse_memory(saved.get("max_memory", DEFAULT_MAX_MEMORY)),
        list(saved.get("plugin", [])),
    )


def resolve_suite(suite: Path | str | Mapping[str, object]) -> tuple[list[Entry], str, str]:
    """A suite file or a mapping of the same shape: its entries, its name and how to cite it in errors."""
    if isinstance(suite, Mapping):
        loaded = parse_suite(suite)
        return loaded.entries, loaded.name, "suite"
    loaded = load_suite(Path(suite))
    return loaded.entries, loaded.name, str(suite)


def plan_entries(entries: Sequence[Entry], device: torch.device, where: str | None) -> list[Plan]:
    """Every entry's plan; a :class:`UsageError` naming the suite entry where one is bad."""
    plans = []
    for i, entry in enumerate(entries, 1):
        try:
            requests = parse_estimators(entry.estimators)
            plans.append(plan(entry.task, entry.params, requests, entry.batch_sizes, device, entry.equal_cost))
        except UsageError as exc:
            raise UsageError(f"{where}: run[{i}]: {exc}" if where else str(exc)) from None
    return plans


@dataclass(frozen=True)
class Job:
    """One cell of the sweep to measure."""

    entry: Entry
    index: int
    seed: int
    cell: Cell
    estimator_params: tuple[str, ...]
    samples: int
    """K (the starting K with adaptive K): one of the entry's."""
    batch: int
    """n: one of the entry's."""

    @property
    def cell_seed(self) -> int:
        """The cell's generator seed (its identity on resume)."""
        return cell_seed_of(self.cell, self.seed, self.samples, self.batch)


def all_jobs(entries: Sequence[Entry], plans: Sequence[Plan]) -> list[Job]:
    """Every (entry, n, K, seed, cell) of the sweep, in plan order; a cell only at the n where it applies."""
    return [
        Job(entry, index, seed, the_plan.cells[index], params, samples, batch)
        for entry, the_plan in zip(entries, plans, strict=True)
        for params in [tuple(plan_estimator_params(the_plan.cells))]
        for batch, at in _batches(entry, the_plan)
        for samples in entry.sample_sizes
        for seed in entry.seeds
        for index in at
    ]


def _batches(entry: Entry, the_plan: Plan) -> list[tuple[int, list[int]]]:
    """Each n of the entry with the cells measured at it, in the order they are run: n by n, or at
    equal cost cell by cell in plan order (each cell at the n it got)."""
    if entry.equal_cost is None:
        return [(batch, the_plan.cells_at(batch)) for batch in entry.batch_sizes]
    at = {index: batch for batch, indices in the_plan.batches.items() for index in indices}
    return [(at[index], [index]) for index in sorted(at)]


class MemoryWriter:
    """The writer of a run that writes nothing (``out=None``): its tables kept in memory, as CSV text."""

    def __init__(self, metadata: Mapping[str, object], columns: Sequence[str]) -> None:
        self.metadata = dict(metadata)
        self.finished_cells: set[int] = set()
        self.results = AppendTable.in_memory(columns)
        self.coords = AppendTable.in_memory(COORD_COLUMNS)
        self.tracebacks: dict[int, str] = {}

    def add(self, rows: Rows, coords: Mapping[str, Mapping[str, torch.Tensor]]) -> None:
        """Keep one cell's rows."""
        self.coords.append(coordinate_rows_of(rows, coords))
        self.results.append(rows)

    def add_traceback(self, cell_seed: int, text: str) -> None:
        """Keep a failed cell's traceback (``tracebacks``, by cell seed)."""
        self.tracebacks[cell_seed] = text

    def finish(self, **extra: object) -> None:
        """Record what the sidecar would."""
        self.metadata.update(extra)

    def close(self) -> None:
        """Nothing to release."""


def _measure(
    jobs: Sequence[Job], resolved: Resolved, client: object | None, on_reference: OnReference | None = None
) -> Iterator[tuple[Job, Rows, dict, str]]:
    """Each job's rows, per-coordinate summaries and traceback (empty where it went well), in
    order: serially here (the references' progress to ``on_reference``), or on the Dask client."""
    if client is None:
        cache = None if resolved.reference_cache is None else ReferenceCache(resolved.reference_cache)
        truth_for = functools.partial(truth_of, cache=cache, on_reference=on_reference)
        for job in jobs:
            entry = job.entry
            (result,) = runner.execute(
                [job.cell],
                job.samples,
                job.batch,
                job.seed,
                entry.repeats,
                resolved.level,
                estimator_params=job.estimator_params,
                max_memory=resolved.max_memory,
                min_time=entry.min_time,
                timing_threads=threads_for_timing(entry.timing_threads),
                target_rel_ci=entry.target_rel_ci,
                max_samples=entry.max_samples,
                truth_for=truth_for,
            )
            yield job, result.rows, result.coords, result.traceback
        return
    from rpbench.distributed import Job as RemoteJob
    from rpbench.distributed import run_parallel

    remote = [RemoteJob(job.entry, job.index, job.seed, job.samples, job.batch) for job in jobs]
    outcomes = run_parallel(
        client,  # type: ignore[arg-type]
        remote,
        resolved.device,
        resolved.level,
        resolved.plugins,
        resolved.max_memory,
        resolved.reference_cache,
    )
    for job, (_, outcome) in zip(jobs, outcomes, strict=True):  # both in plan order
        if isinstance(outcome, BaseException):  # the worker raised or died: full failed rows, the sweep goes on
            keys = cell_keys(job.cell, job.samples, job.batch, job.seed, job.estimator_params)
            yield job, failed_rows(job.cell, keys, error_text(outcome)), {}, traceback_text(outcome)
        else:
            yield job, *outcome, ""


def execute(
    resolved: Resolved,
    out: Path | None,
    resume: Path | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    on_cell: OnCell | None = None,
    on_reference: OnReference | None = None,
) -> Outcome:
    """Plan, open the writer, measure every cell not yet finished, and close the run."""
    load_plugins(resolved.plugins)
    device = resolve_device(resolved.device)
    plans = plan_entries(resolved.entries, device, resolved.suite)
    columns = plan_columns(plans, resolved.adaptive)
    jobs = all_jobs(resolved.entries, plans)
    client = None
    if workers is not None or scheduler is not None:
        from rpbench.distributed import connect

        client = connect(workers, scheduler)  # before anything is created: a bad scheduler leaves nothing
    try:
        writer = _open_writer(resolved, columns, device, out, resume, jobs, parallel_metadata(client))
        try:
            skipped = [reason for the_plan in plans for reason in the_plan.skipped]
            return _run_jobs(writer, jobs, resolved, client, on_cell, skipped, on_reference)
        finally:
            writer.close()
    finally:
        if client is not None:
            from rpbench.distributed import disconnect

            disconnect(client)


def parallel_metadata(client: object | None) -> dict[str, object]:
    """What ``run.json`` records of how cells ran: ``workers`` (1: serially in this process), the
    workers on each host (Dask), and ``threads_per_worker``, torch's threads while a cell is timed
    (the busiest host's share of its cores, :func:`rpbench.timing.thread_share`)."""
    if client is None:
        return {"workers": 1, "threads_per_worker": torch.get_num_threads()}
    from rpbench.distributed import workers_per_host

    hosts = workers_per_host(client)  # type: ignore[arg-type]
    busiest = max(hosts.values(), default=1)
    return {"workers": sum(hosts.values()), "hosts": hosts, "threads_per_worker": thread_share(busiest)}


def _open_writer(
    resolved: Resolved,
    columns: Sequence[Column],
    device: torch.device,
    out: Path | None,
    resume: Path | None,
    jobs: Sequence[Job],
    parallel: Mapping[str, object],
) -> RunWriter | MemoryWriter:
    names = [column.name for column in columns]
    folder = resolved.reference_cache
    cache = {"used": folder is not None, "dir": None if folder is None else str(folder)}
    if resume is not None:
        meta = resumed_metadata(resume, {"columns": [column.to_json() for column in columns]})
        meta["parallel"] = dict(parallel)  # how this (last) session ran its cells
        meta["reference_cache"] = cache  # this session's: the cache changes no number
        expected = {job.cell_seed: len(job.cell.task.theta) for job in jobs}
        return RunWriter(resume, meta, names, resume=True, expected=expected)
    metadata = {
        **run_metadata(resolved.options(), device),
        "parallel": dict(parallel),
        "columns": [column.to_json() for column in columns],
        "reference_cache": cache,
    }
    if out is None:
        return MemoryWriter(metadata, names)
    return RunWriter(create_run_dir(out, resolved.label), metadata, names)


def _run_jobs(
    writer: RunWriter | MemoryWriter,
    jobs: Sequence[Job],
    resolved: Resolved,
    client: object | None,
    on_cell: OnCell | None,
    skipped: list[str],
    on_reference: OnReference | None = None,
) -> Outcome:
    started = time.perf_counter()
    todo = [job for job in jobs if job.cell_seed not in writer.finished_cells]
    done = len(jobs) - len(todo)
    rows_written, failed, failed_cells = 0, [], 0
    for job, rows, coords, traceback in _measure(todo, resolved, client, on_reference):
        if resolved.adaptive:  # a fixed-K cell of a run with adaptive ones (or a failed cell) starts where it ends
            for row in rows:
                row.setdefault(ADAPTIVE_KEY, job.samples)
        if traceback:  # before the rows: a failed row always has its traceback beside it
            writer.add_traceback(job.cell_seed, traceback)
        writer.add(rows, coords)
        done += 1
        rows_written += len(rows)
        bad = [row for row in rows if row.get("status") == "failed"]
        failed += bad
        failed_cells += bool(bad)
        if on_cell is not None:
            on_cell(CellReport(rows, done, len(jobs), failed_cells))
    writer.finish(cells=len(jobs), skipped=skipped, seconds=time.perf_counter() - started)
    path = writer.run_dir if isinstance(writer, RunWriter) else None
    texts = (None, None) if isinstance(writer, RunWriter) else (writer.results.text(), writer.coords.text())
    return Outcome(path, writer.metadata, *texts, rows_written, failed, skipped)
