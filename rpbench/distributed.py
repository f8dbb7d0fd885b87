"""Run a sweep's cells in parallel on a Dask cluster (``--workers N`` or ``--scheduler ADDR|auto``).

Each cell is shipped as (entry, cell index, seed, K, n): the worker plans the entry itself (planning is
deterministic and cached per worker process) and measures that one cell with the same code as a
serial run.  Every cell derives its generator from its own definition, so the rows do not depend
on the number or kind of workers; results are handed back in plan order, so the CSV is the same
as a serial run's, row for row (timing aside).  Optional extra: ``pip install 'rpbench[dask]'``;
``dask-jobqueue`` provides SLURM/PBS clusters whose scheduler address ``--scheduler`` accepts.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from rpbench.engine import DEFAULT_MAX_MEMORY
from rpbench.errors import UsageError
from rpbench.suite import Entry

if TYPE_CHECKING:
    from dask.distributed import Client, Future

    from rpbench.runner import Plan


@dataclass(frozen=True)
class Job:
    """One cell to measure: which entry of the run, which of its cells, which seed, K and n."""

    entry: Entry
    index: int
    seed: int
    samples: int
    batch: int


_PLANS: dict[tuple[str, str, tuple[str, ...]], Plan] = {}


def _plan(entry: Entry, device: str, plugins: tuple[str, ...]) -> Plan:
    """The entry's plan in this process, planned once (tasks and their truths are cached with it)."""
    from rpbench.options import resolve_device
    from rpbench.registry import load_builtins, load_plugin
    from rpbench.runner import parse_estimators, plan

    key = (repr(entry), device, plugins)
    if key not in _PLANS:
        load_builtins()
        for plugin in plugins:
            load_plugin(plugin)
        requests = parse_estimators(entry.estimators)
        _PLANS[key] = plan(
            entry.task, entry.params, requests, entry.batch_sizes, resolve_device(device), entry.equal_cost
        )
    return _PLANS[key]


def measure_job(
    job: Job,
    device: str,
    level: float,
    plugins: tuple[str, ...],
    threads: int,
    max_memory: int = DEFAULT_MAX_MEMORY,
    hosts: Mapping[str, int] | None = None,
    cache_folder: Path | None = None,
) -> tuple[list[dict], dict]:
    """Measure one cell in this (worker) process; rows and per-coordinate summaries, on the CPU.

    The worker draws the estimates with the client's torch thread count (reductions split over a
    different number of threads can round differently in the last bits, and the rows must be a
    serial run's), but times them with its share of its machine's cores
    (:func:`rpbench.timing.thread_share` over the workers on its host, ``hosts``), so that workers
    side by side do not oversubscribe the cores and inflate each other's costs.  References are
    read from and written to the on-disk cache in ``cache_folder`` (``None``: none), which the
    workers share with the client.
    """
    import torch

    from rpbench.runner import execute, plan_estimator_params
    from rpbench.timing import threads_for_timing
    from rpbench.truth import truth_of
    from rpbench.truth_cache import ReferenceCache

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    side_by_side = (hosts or {}).get(_my_host(), 1)
    the_plan = _plan(job.entry, device, plugins)
    cell = the_plan.cells[job.index]
    entry = job.entry
    params = plan_estimator_params(the_plan.cells)
    (result,) = execute(
        [cell],
        job.samples,
        job.batch,
        job.seed,
        entry.repeats,
        level,
        estimator_params=params,
        max_memory=max_memory,
        target_rel_ci=entry.target_rel_ci,
        max_samples=entry.max_samples,
        min_time=entry.min_time,
        parallel_cells=side_by_side,
        timing_threads=threads_for_timing(entry.timing_threads, side_by_side),
        truth_for=functools.partial(truth_of, cache=None if cache_folder is None else ReferenceCache(cache_folder)),
    )
    coords = {g: {k: v.cpu() for k, v in c.items()} for g, c in result.coords.items()}
    return result.rows, coords


def host_of(address: str) -> str:
    """The host part of a Dask worker address (``tcp://10.0.0.5:41234`` → ``tcp://10.0.0.5``)."""
    return address.rsplit(":", 1)[0]


def _my_host() -> str:
    from dask.distributed import get_worker

    try:
        return host_of(get_worker().address)
    except ValueError:  # not on a worker (called directly)
        return ""


def workers_per_host(client: Client) -> dict[str, int]:
    """How many of the cluster's workers share each host: the cells each host measures side by side."""
    counts: dict[str, int] = {}
    for address in client.scheduler_info().get("workers", {}):
        counts[host_of(address)] = counts.get(host_of(address), 0) + 1
    return counts


def connect(workers: int | None, scheduler: str | None) -> Client:
    """A Dask client: a LocalCluster of ``workers`` processes, or the scheduler at ``scheduler``.

    Called before the run folder is created, so that a scheduler nobody listens on leaves nothing behind.
    """
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise UsageError(
            "--workers/--scheduler need the optional package dask[distributed]; "
            "install it with: pip install 'rpbench[dask]'"
        ) from None
    if scheduler and scheduler != "auto":
        try:
            return Client(scheduler, timeout="10s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise UsageError(f"--scheduler {scheduler}: cannot connect ({exc}); give tcp://host:port or auto") from None
    _ENVIRON_BEFORE.append({name: os.environ.get(name) for name in _THREAD_VARIABLES})
    cluster = LocalCluster(
        n_workers=workers or 2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
    )
    return Client(cluster)


_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
_ENVIRON_BEFORE: list[dict[str, str | None]] = []
"""The thread variables before each LocalCluster: its nannies set them to 1 in this process's
environment (for the workers they spawn), where every later subprocess would inherit them."""


def disconnect(client: Client) -> None:
    """Close the client, and the LocalCluster it started (if any), and put back the environment."""
    cluster = getattr(client, "cluster", None)
    client.close()
    if cluster is not None:
        cluster.close()
        for name, value in (_ENVIRON_BEFORE.pop() if _ENVIRON_BEFORE else {}).items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


Outcome = tuple[list[dict], dict] | BaseException
"""A job's rows and per-coordinate summaries, or the exception its worker raised (or died of)."""


def run_parallel(
    client: Client,
    jobs: Sequence[Job],
    device: str,
    level: float,
    plugins: Sequence[str],
    max_memory: int = DEFAULT_MAX_MEMORY,
    cache_folder: Path | None = None,
) -> Iterator[tuple[Job, Outcome]]:
    """Measure ``jobs`` on the cluster; each job with its outcome, in the order of ``jobs``."""
    import torch

    threads = torch.get_num_threads()
    hosts = workers_per_host(client)
    args = device, level, tuple(plugins), threads, max_memory, hosts, cache_folder
    yield from map_in_order(client, measure_job, jobs, *args)


J = TypeVar("J")


def map_in_order(
    client: Client, function: Callable[..., Any], jobs: Sequence[J], *args: Any
) -> Iterator[tuple[J, Any]]:
    """``function(job, *args)`` for every job on the cluster; each job with its result (or the
    exception it raised), in the order of ``jobs``, each as soon as every earlier one is in.

    When a worker dies, Dask suspects every job it held, also the innocent ones queued behind the
    killer, and gives up on a job once it has been suspected too often (``KilledWorker``).  Such
    jobs run again at the end, one at a time, so that a job is only reported dead when it killed
    a worker while it was the only job on the cluster.
    """
    from dask.distributed import as_completed

    def submit(job: J) -> Future:
        return client.submit(function, job, *args, pure=False)

    futures = {submit(job): i for i, job in enumerate(jobs)}
    ready: dict[int, Any] = {}
    suspects: list[int] = []
    position = 0
    for future in as_completed(futures):
        outcome = _outcome(future)
        if _killed_worker(outcome):
            suspects.append(futures[future])
        else:
            ready[futures[future]] = outcome
        while position in ready:  # results as soon as every earlier job's result is in
            yield jobs[position], ready.pop(position)
            position += 1
    for index in sorted(suspects):  # alone on the cluster: only a job that kills a worker itself fails
        ready[index] = _outcome(submit(jobs[index]))
        while position in ready:
            yield jobs[position], ready.pop(position)
            position += 1


def _outcome(future: Future) -> Any:
    """The future's result, or the exception its job raised on its worker (or its worker died of)."""
    try:
        return future.result()
    except Exception as exc:
        return exc


def _killed_worker(outcome: object) -> bool:
    from dask.distributed import KilledWorker

    return isinstance(outcome, KilledWorker)
