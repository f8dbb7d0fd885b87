"""Draw one cell's K estimates as batched computations in memory-bounded chunks, on one device, timed.

Randomness is explicit: each cell's generator is seeded from a hash of everything that defines
the cell (seed, task and its configuration, estimator and its configuration, K, n), so a cell's
numbers do not depend on run order, on the other cells of a sweep, or on how many workers run it.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch

from rpbench.allocator import keep_freed_blocks
from rpbench.estimators.base import Estimator, tree_leaves
from rpbench.moments import GroupMoments, Moments
from rpbench.tasks.base import Task, Theta
from rpbench.timing import DEFAULT_REPEATS, Timing, device_sync, time_cell


def cell_seed(
    seed: int,
    task: str,
    task_config: Mapping[str, object],
    estimator: str,
    estimator_config: Mapping[str, object],
    samples: int,
    batch: int,
) -> int:
    """A 63-bit seed derived from everything that defines a cell."""
    key = json.dumps(
        [seed, task, sorted(task_config.items()), estimator, sorted(estimator_config.items()), samples, batch],
        default=str,
    )
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little") >> 1


PREPARE_STREAM = 0x5BD1E995
"""XORed into a seed: a second, independent stream for estimator set-up (``prepare``)."""

DEFAULT_MAX_MEMORY = 512 * 2**20
"""Default ``--max-memory``: bytes one chunk of estimates may take (the run's own state is extra)."""


def bytes_per_estimate(task: Task, estimator: Estimator, batch: int) -> int:
    """A generous estimate of the memory one estimate needs while its chunk is computed and reduced.

    Its gradient (P values, with the autograd buffers behind it: 3P), the float64 centred copy of
    the largest parameter tensor that :class:`rpbench.moments.Moments` makes (16 bytes a value),
    and the activations of its ``batch`` samples, taken as 16 values per noise value (a VAE's
    layers are a few times wider than its latent noise), times the estimator's
    :meth:`~rpbench.estimators.base.Estimator.memory_factor`.
    """
    leaves = tree_leaves(task.theta)
    itemsize = leaves[0].element_size()
    params = sum(t.numel() for t in leaves)
    largest = max(t.numel() for t in leaves)
    generator = torch.Generator(device=task.device).manual_seed(0)
    noise_per_sample = task.noise(generator, (1, 1)).numel()
    activations = 16 * noise_per_sample * batch * estimator.memory_factor(task)
    return int(itemsize * (3 * params + activations) + 16 * largest)


def chunk_size(task: Task, estimator: Estimator, samples: int, batch: int, max_memory: int) -> int:
    """Estimates per chunk: as many as ``max_memory`` holds (at least one, at most K)."""
    return max(1, min(samples, max_memory // max(1, bytes_per_estimate(task, estimator, batch))))


def chunk_seed(seed: int, index: int) -> int:
    """The seed of chunk ``index`` of a cell: the cell's own seed for the first (so a cell that fits in
    one chunk draws exactly what an unchunked draw would), a hash of (seed, index) for the rest."""
    if index == 0:
        return seed
    digest = hashlib.sha256(f"{seed}:chunk:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


@dataclass
class Draw:
    """The cell's estimates reduced per parameter group, its timing, and how it was chunked."""

    moments: dict[str, GroupMoments]
    timing: Timing
    setup_seconds: float = 0.0
    chunk: int = 0
    """Estimates per chunk (the last may hold fewer; with adaptive K the largest chunk)."""
    target_reached: bool | None = None
    """Adaptive K: whether ``enough`` held at the K drawn (``None`` for a fixed K)."""

    @property
    def seconds(self) -> list[float]:
        """Seconds of one pass over the K estimates, one per timed value."""
        return self.timing.seconds

    @property
    def samples(self) -> int:
        """K: the estimates drawn (with adaptive K, the K reached)."""
        return next(iter(self.moments.values())).k


Enough = Callable[[dict[str, GroupMoments]], bool]
"""Adaptive K's stopping rule: ``True`` when the statistics of the K drawn so far are precise enough."""


def growth_schedule(samples: int, max_samples: int) -> list[int]:
    """Adaptive K's schedule: K, 2K, 4K, … while below ``max_samples``, then ``max_samples`` itself."""
    schedule = [samples]
    while schedule[-1] < max_samples:
        schedule.append(min(2 * schedule[-1], max_samples))
    return schedule


def chunk_layout(schedule: Sequence[int], first: int, most: int) -> list[int]:
    """The chunk sizes that draw the K values of ``schedule`` one after another: the first K in chunks
    of ``first`` (as a fixed-K draw would), each further K's new estimates in chunks of at most ``most``.

    Every K of the schedule ends on a chunk boundary, so its estimates are the first chunks of the
    next one's (chunk ``i`` has its own seed, :func:`chunk_seed`).
    """
    sizes = [min(first, schedule[0] - begin) for begin in range(0, schedule[0], first)]
    for previous, total in itertools.pairwise(schedule):
        sizes += [min(most, total - begin) for begin in range(previous, total, most)]
    return sizes


def draw_estimates(
    task: Task,
    estimator: Estimator,
    samples: int,
    batch: int,
    seed: int,
    repeats: int = DEFAULT_REPEATS,
    exact: Mapping[str, torch.Tensor] | None = None,
    max_memory: int = DEFAULT_MAX_MEMORY,
    max_samples: int | None = None,
    enough: Enough | None = None,
    min_time: float | None = None,
    timing_threads: int | None = None,
) -> Draw:
    """The cell's K estimates, reduced to :class:`~rpbench.moments.GroupMoments`, then ``repeats``
    timed values of the same computation (:func:`rpbench.timing.time_cell`: each value at least
    ``min_time`` seconds, after a discarded warm-up, beside the machine-speed reference, with
    ``timing_threads`` torch threads where given).

    K estimates are drawn in chunks of :func:`chunk_size` (chunk ``i`` from its own generator,
    :func:`chunk_seed`), so memory stays flat in K.  The first pass over the chunks sums them
    (and warms caches); where there is more than one chunk a second pass redraws them from the
    same seeds and centres them on the mean (``exact``, per group, enters there).  Each timed
    pass re-seeds every chunk, so it does exactly the same work; timing covers noise
    generation and the estimator, with the device synchronised before and after.

    Adaptive K (``enough`` and ``max_samples`` given): K grows along :func:`growth_schedule` from
    ``samples`` (the first K drawn exactly as a fixed-K draw of ``samples``), each step adding
    chunks (:func:`chunk_layout`) and reducing all K drawn so far again, until ``enough`` holds
    or K reaches ``max_samples``.  Chunks are kept in memory between steps while they fit in
    ``max_memory`` (else redrawn from their seeds: the same numbers).  The timed values redraw
    the K reached, all its chunks, so ``seconds / K`` is the cost of one estimate at that K; the
    steps before it are not timed.

    Freed blocks up to ``max_memory`` are kept for reuse (:func:`rpbench.allocator.keep_freed_blocks`):
    the estimates of every call are fresh tensors, which glibc would otherwise fault in page by page.
    """
    keep_freed_blocks(max_memory)
    start = time.perf_counter()
    estimator.prepare(task, batch, torch.Generator(device=task.device).manual_seed(seed ^ PREPARE_STREAM))
    device_sync(task.device)()
    setup = time.perf_counter() - start
    adaptive = enough is not None and max_samples is not None
    schedule = growth_schedule(samples, max_samples) if adaptive and max_samples is not None else [samples]
    chunk = chunk_size(task, estimator, samples, batch, max_memory)
    most = chunk_size(task, estimator, schedule[-1], batch, max_memory)
    sizes = chunk_layout(schedule, chunk, most)
    held: dict[int, dict[str, list[torch.Tensor]]] = {}

    def once(index: int) -> dict[str, list[torch.Tensor]]:
        return draw_chunk(task, estimator, sizes, batch, seed, index)

    def blocks_at(index: int, total: int) -> dict[str, list[torch.Tensor]]:
        """Chunk ``index``: kept while the K drawn fits in one chunk's memory (``most``), else redrawn."""
        if index in held:
            return held[index]
        blocks = once(index)
        if total <= most:
            held[index] = blocks
        return blocks

    ends = list(itertools.accumulate(sizes))
    reached: bool | None = None
    count = 0
    for total in schedule:
        count = ends.index(total) + 1
        moments = reduce_chunks(count, total, functools.partial(blocks_at, total=total), exact)
        if not adaptive or any(m.nonfinite for m in moments.values()):
            break
        assert enough is not None
        reached = enough(moments)
        if reached:
            break
    held.clear()

    def one_pass() -> None:
        for index in range(count):
            once(index)

    timing = time_cell(one_pass, repeats, min_time, task.device, threads=timing_threads)
    return Draw(moments, timing, setup, max(sizes[:count]), reached)


def draw_chunk(
    task: Task, estimator: Estimator, sizes: Sequence[int], batch: int, seed: int, index: int
) -> dict[str, list[torch.Tensor]]:
    """Chunk ``index`` of a cell (``sizes[index]`` estimates from its own generator, :func:`chunk_seed`)
    as :func:`group_blocks`: what each of :func:`draw_estimates`' passes, timed ones included, computes
    per chunk (``scripts/bench_limit.py`` times the same function)."""
    generator = torch.Generator(device=task.device).manual_seed(chunk_seed(seed, index))
    return group_blocks(estimator.estimate(task, sizes[index], batch, generator))


def reduce_chunks(
    count: int,
    samples: int,
    blocks_at: Callable[[int], dict[str, list[torch.Tensor]]],
    exact: Mapping[str, torch.Tensor] | None,
) -> dict[str, GroupMoments]:
    """The two passes of :class:`~rpbench.moments.Moments` over chunks ``0 … count − 1`` (``samples`` in
    all): the first sums them, the second centres them on the mean; one chunk is read once."""
    first = blocks_at(0)
    moments = {
        group: Moments(
            [b.shape[1] for b in blocks],
            samples,
            None if exact is None else exact[group],
            blocks[0].device,
        )
        for group, blocks in first.items()
    }
    for index in range(count):
        blocks = first if index == 0 else blocks_at(index)
        for group, accumulator in moments.items():
            accumulator.add(blocks[group])
    for index in range(count):
        blocks = first if count == 1 else blocks_at(index)
        for group, accumulator in moments.items():
            accumulator.add_centred(blocks[group])
    return {group: m.result() for group, m in moments.items()}


def estimate_all(task: Task, estimator: Estimator, samples: int, batch: int, seed: int) -> dict[str, torch.Tensor]:
    """All K estimates at once, flattened to ``(K, P)`` per group (tests and small draws; no chunking).

    The same numbers as the first chunk of :func:`draw_estimates` (all of them where K fits in one).
    """
    estimator.prepare(task, batch, torch.Generator(device=task.device).manual_seed(seed ^ PREPARE_STREAM))
    generator = torch.Generator(device=task.device).manual_seed(seed)
    return flatten_groups(estimator.estimate(task, samples, batch, generator))


def group_blocks(estimates: Theta) -> dict[str, list[torch.Tensor]]:
    """``{group: [(K, p_i), …]}``: each group's tensors as 2-D views, in order, not joined."""
    return {
        group: [leaf.detach().reshape(leaf.shape[0], -1) for leaf in tree_leaves(value)]
        for group, value in estimates.items()
    }


def flatten_groups(estimates: Theta) -> dict[str, torch.Tensor]:
    """``{group: (K, P)}``: each group's tensors (nested dicts for networks) flattened and joined."""
    return {group: torch.cat(blocks, dim=1) for group, blocks in group_blocks(estimates).items()}
