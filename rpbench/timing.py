"""Wall-clock that holds on a shared machine: calibrated values, a median with an order-statistic
interval, and a machine-speed reference timed beside every cell.

The method follows :func:`timeit.Timer.autorange` and pyperf (Stinner, "pyperf: toolkit to run
Python benchmarks"): a computation that takes less than ``min_time`` is repeated ``loops`` times
inside each timed value (1, 2, 5, 10, 20, 50, … until one value lasts at least ``min_time``),
the calibration runs are a discarded warm-up, and ``repeats`` values are then taken.  A value is
the seconds of one call (total over ``loops``).  The values are summarised by their **median**,
with the distribution-free interval for a median between two order statistics (the number of
values below the true median is Binomial(n, ½) whatever the distribution; e.g. Conover 1999,
*Practical Nonparametric Statistics*, §3.2), and their **minimum** (timeit's advice: the least
disturbed value).

A machine's speed and its load move every timing.  :class:`Reference` is a fixed small workload
(a 64 × 128 by 128 × 128 float32 layer, tanh, square, mean, backward: dispatch, BLAS and
autograd, like an estimator's) timed in the same process, one value right before each of the
cell's values; ``relative_cost = sec_per_estimate / reference`` is then a cost in units of that
workload, which compares across machines and across loads (:mod:`rpbench.views.compare`'s speed gate).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

DEFAULT_MIN_TIME = 0.05
"""``--min-time``: seconds one timed value lasts at least (a cell shorter than that is repeated
inside each value; one longer is timed once per value)."""

DEFAULT_TIMING_THREADS = 1
"""``--timing-threads``: torch's intra-op threads while a cell is timed (0: the process's own).  One
thread measures a core's cost, which other processes on the machine can only share out, not
distort: with two threads on two cores beside two busy processes, every parallel operation waits
for its descheduled half, and ``relative_cost`` moved 0.25–0.87× where one thread kept it within
0.59–1.26× (``scripts/timing_under_load.py``, in the README's *Timing*)."""

DEFAULT_REPEATS = 7
"""``--repeats``: timed values per cell; 7 is the fewest whose extremes give the 95 % median
interval of :func:`median_interval` at the Bonferroni level ``1 − 0.05/2`` that ``work_variance`` needs."""

REFERENCE_VERSION = 1
"""Bump when :class:`Reference`'s workload changes: ratios against different workloads do not compare."""
REFERENCE_WORKLOAD = "float32 (64x128)@(128x128), tanh, square, mean, backward to the weight"
"""What :class:`Reference` computes, as ``run.json`` records it beside :data:`REFERENCE_VERSION`."""

LOOP_STEPS = (1, 2, 5)
"""Autorange's inner-loop counts: 1, 2, 5, 10, 20, 50, … (as :func:`timeit.Timer.autorange`)."""


def loop_counts() -> Callable[[], int]:
    """The next inner-loop count of autorange on each call: 1, 2, 5, 10, 20, 50, 100, …"""
    state = {"i": 0}

    def step() -> int:
        i = state["i"]
        state["i"] += 1
        return LOOP_STEPS[i % 3] * 10 ** (i // 3)

    return step


def seconds_of(call: Callable[[], object], loops: int, sync: Callable[[], None]) -> float:
    """Seconds of ``loops`` calls of ``call``, with queued device work waited for before and after."""
    sync()
    start = time.perf_counter()
    for _ in range(loops):
        call()
    sync()
    return time.perf_counter() - start


def autorange(call: Callable[[], object], min_time: float, sync: Callable[[], None] = lambda: None) -> int:
    """The inner-loop count at which ``loops`` calls last at least ``min_time`` seconds.

    One call first warms caches and allocators up; it and every calibration run are discarded.
    ``min_time <= 0`` makes only the warm-up call and times single calls.
    """
    seconds_of(call, 1, sync)
    if min_time <= 0:
        return 1
    counts = loop_counts()
    while True:
        loops = counts()
        if seconds_of(call, loops, sync) >= min_time:
            return loops


@dataclass(frozen=True)
class Summary:
    """A median with its order-statistic interval (NaN bounds where too few values), and the minimum."""

    median: float
    lo: float
    hi: float
    minimum: float


def order_statistic_ranks(n: int, level: float) -> tuple[int, int] | None:
    """1-based ranks ``(j, n + 1 − j)`` of the narrowest symmetric order-statistic interval that covers
    the median with probability at least ``level``; ``None`` where even ``[min, max]`` covers less
    (n = 5 gives at most 1 − 2/2⁵ = 93.75 %)."""
    if n < 1:
        return None
    alpha_half = (1.0 - level) / 2.0
    tail = 0.0  # P(Binomial(n, 1/2) <= j - 1)
    best = 0
    for j in range(1, n // 2 + 2):
        tail += math.comb(n, j - 1) / 2.0**n
        if tail > alpha_half + 1e-15:
            break
        best = j
    if best == 0 or best > n + 1 - best:
        return None
    return best, n + 1 - best


def median_interval(values: Sequence[float], level: float) -> Summary:
    """The median of ``values`` with its distribution-free interval at ``level``, and their minimum."""
    if not values:
        return Summary(math.nan, math.nan, math.nan, math.nan)
    ordered = sorted(values)
    n = len(ordered)
    middle = ordered[n // 2] if n % 2 else 0.5 * (ordered[n // 2 - 1] + ordered[n // 2])
    ranks = order_statistic_ranks(n, level)
    lo, hi = (math.nan, math.nan) if ranks is None else (ordered[ranks[0] - 1], ordered[ranks[1] - 1])
    return Summary(middle, lo, hi, ordered[0])


class Reference:
    """The machine-speed reference: a fixed workload on ``device``, calibrated once per process.

    Its inputs are fixed numbers (no generator), so it does the same work everywhere; one call is a
    few tens of microseconds on a laptop core.
    """

    def __init__(self, device: torch.device, min_time: float) -> None:
        self.device = device
        rows = torch.linspace(-1.0, 1.0, 64 * 128, device=device).reshape(64, 128)
        self.x = rows
        self.w = (torch.linspace(-0.05, 0.05, 128 * 128, device=device).reshape(128, 128)).requires_grad_(True)
        self.sync = device_sync(device)
        self.loops = autorange(self.call, min_time, self.sync)

    def call(self) -> None:
        """One reference workload: a layer, its loss, and the backward pass."""
        loss = torch.tanh(self.x @ self.w).square().mean()
        (grad,) = torch.autograd.grad(loss, self.w)
        del grad

    def value(self) -> float:
        """Seconds of one reference call, averaged over the calibrated loops."""
        return seconds_of(self.call, self.loops, self.sync) / self.loops


_REFERENCES: dict[tuple[str, float, int], Reference] = {}


def reference_for(device: torch.device, min_time: float) -> Reference:
    """This process's :class:`Reference` on ``device`` (calibrated at first use per thread count)."""
    key = (str(device), min_time, torch.get_num_threads())
    if key not in _REFERENCES:
        _REFERENCES[key] = Reference(device, min_time)
    return _REFERENCES[key]


def device_sync(device: torch.device) -> Callable[[], None]:
    """A function that waits for queued work on ``device`` (nothing on the CPU)."""
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


@dataclass
class Timing:
    """A cell's timed values: seconds of one pass over its K estimates, each with the reference
    value taken right before it, the inner loops, and the conditions it was measured in."""

    seconds: list[float]
    reference: list[float] = field(default_factory=list)
    loops: int = 1
    load_average: float = math.nan
    threads: int = 0
    cpus: int = 0


def time_cell(
    call: Callable[[], object],
    repeats: int,
    min_time: float | None,
    device: torch.device,
    with_reference: bool = True,
    threads: int | None = None,
) -> Timing:
    """``repeats`` calibrated values of ``call`` (one pass over a cell's chunks), interleaved with the
    machine-speed reference, and the load, threads and CPUs they were measured with.

    ``threads``: torch's intra-op threads while timing (a worker's share of the cores,
    :func:`thread_share`), put back afterwards; ``None`` keeps the process's.  ``min_time``
    ``None``: :data:`DEFAULT_MIN_TIME` as it is when called.
    """
    if min_time is None:
        min_time = DEFAULT_MIN_TIME
    before = torch.get_num_threads()
    if threads is not None and threads != before:
        torch.set_num_threads(threads)
    try:
        sync = device_sync(device)
        loops = autorange(call, min_time, sync)
        reference = reference_for(device, min_time) if with_reference else None
        seconds: list[float] = []
        references: list[float] = []
        for _ in range(repeats):
            if reference is not None:
                references.append(reference.value())
            seconds.append(seconds_of(call, loops, sync) / loops)
        return Timing(seconds, references, loops, load_now(), torch.get_num_threads(), cpus_available())
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def load_now() -> float:
    """The 1-minute load average (NaN where the platform has none)."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan


def cpus_available() -> int:
    """CPUs this process may run on (its affinity where the platform tells, else the CPU count)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def threads_for_timing(requested: int, side_by_side: int = 1) -> int | None:
    """Torch threads for timing a cell: ``requested`` (0: the process's own count), at most the share
    of the cores of each of the ``side_by_side`` cells measured at once; ``None``: leave as it is."""
    share = thread_share(side_by_side)
    wanted = torch.get_num_threads() if requested == 0 else requested
    chosen = min(wanted, share) if side_by_side > 1 else wanted
    return None if chosen == torch.get_num_threads() else chosen


def thread_share(workers: int, cpus: int | None = None) -> int:
    """Torch threads for each of ``workers`` processes measuring side by side: an equal share of the
    CPUs (at least one), so that the workers do not oversubscribe the cores and slow each other."""
    total = cpus_available() if cpus is None else cpus
    return max(1, total // max(1, workers))
