"""The true gradient of a task, per parameter group: exact where possible, else a reference.

* closed form or enumeration — whatever ``task.exact_gradient()`` returns (standard error 0);
* reference — for a :class:`~rpbench.tasks.protocols.ReferenceTruth` task, the mean of
  ``reference_samples // batch`` estimates of its unbiased ``reference_estimator``, with its
  per-coordinate standard error, which the metrics carry into the bias interval.  It is seeded by
  the task configuration alone, so every estimator and every run seed is compared with the same
  reference; it is computed once per task configuration.  Its mean and variance are the engine's
  float64 two-pass moments (:class:`rpbench.moments.Moments`): the estimates are drawn in chunks,
  summed, then centred on the final mean (the chunks held where they fit, else redrawn from the
  generator's saved state, so both passes see the same estimates).  Given a
  :class:`~rpbench.truth_cache.ReferenceCache`, a reference is also kept on disk between runs, and
  read back bit for bit.

A task that needs training is brought to its measured state first (:func:`rpbench.training.warm_up`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from rpbench.engine import DEFAULT_MAX_MEMORY, cell_seed, chunk_size, group_blocks
from rpbench.estimators.base import tree_leaves
from rpbench.moments import Moments
from rpbench.params import seed_config
from rpbench.registry import get_estimator
from rpbench.tasks.base import Task
from rpbench.tasks.protocols import ReferenceTruth
from rpbench.training import warm_up
from rpbench.truth_cache import ReferenceCache, Stored, reference_key

REFERENCE_CHUNK = 256
"""Most estimates drawn at once while accumulating a reference (fewer where the memory budget says so)."""

REFERENCE_HOLD = 128 * 2**20
"""Bytes of estimates kept between the two passes; the second pass redraws the chunks beyond it."""


@dataclass(frozen=True)
class Truth:
    """The true gradient per group (flattened), how it was obtained, and its standard error."""

    kind: str
    gradient: dict[str, torch.Tensor]
    se: dict[str, torch.Tensor] | None = None


@dataclass(frozen=True)
class ReferenceReport:
    """What ``on_reference`` receives while a reference is drawn: which one, and how far along."""

    task: str
    kind: str
    """The reference's ``truth`` (``reference:score+loox20000``)."""
    done: int
    total: int
    """Estimates to go through: each of the reference's estimates twice (its mean, then its spread)."""


OnReference = Callable[[ReferenceReport], None]

_CACHE: dict[tuple, Truth] = {}


def exact_truth(task: Task) -> Truth | None:
    """The exact truth at the task's current state (closed form or enumeration); ``None`` where there
    is none.  Never a reference, and no cache of its own, so it follows a state that moves (a training
    trajectory, :mod:`rpbench.training.measure`)."""
    exact = task.exact_gradient()
    if exact is None:
        return None
    flat = {
        group: torch.cat([leaf.detach().reshape(-1) for leaf in tree_leaves(value)]) for group, value in exact.items()
    }
    return Truth(task.truth_kind, flat)


def truth_of(task: Task, cache: ReferenceCache | None = None, on_reference: OnReference | None = None) -> Truth | None:
    """The truth for ``task``; ``None`` if it has neither an exact gradient nor a reference.

    A reference is computed once per task configuration in this process; with ``cache`` it is read
    from there where it was computed before (and written there where it was not).
    ``on_reference`` hears how far a reference being drawn has come.
    """
    warm_up(task)
    exact = exact_truth(task)
    if exact is not None:
        return exact
    if not isinstance(task, ReferenceTruth):
        return None
    key = (task.name, str(task.device), *sorted(task.config.items()))
    if key not in _CACHE:
        name, overrides, batch = task.reference_estimator
        _CACHE[key] = _reference(task, name, overrides, batch, task.reference_samples, cache, on_reference)
    return _CACHE[key]


def _reference(
    task: Task,
    name: str,
    overrides: dict[str, object],
    batch: int,
    total: int,
    cache: ReferenceCache | None,
    on_reference: OnReference | None,
) -> Truth:
    """The reference of ``task``: from ``cache`` where it holds it, else drawn (and then cached)."""
    if cache is None:
        return reference_truth(task, name, overrides, batch, total, on_reference)
    key = reference_key(task, name, estimator_config(name, overrides), batch, total)
    stored = cache.load(key)
    if stored is not None:
        return Truth(stored.kind, _on(stored.gradient, task.device), _on(stored.se, task.device))
    truth = reference_truth(task, name, overrides, batch, total, on_reference)
    cache.store(key, Stored(truth.kind, truth.gradient, truth.se or {}))
    return truth


def _on(tensors: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {group: tensor.to(device) for group, tensor in tensors.items()}


def estimator_config(name: str, overrides: dict[str, object]) -> dict[str, object]:
    """The full configuration of estimator ``name``: its defaults, with ``overrides``."""
    return {**{p.name: p.default_values[0] for p in get_estimator(name).params}, **overrides}


def reference_kind(name: str, count: int, batch: int) -> str:
    """The ``truth`` of a reference of ``count`` estimates of ``name`` with ``batch`` samples each."""
    return f"reference:{name}x{count * batch}"


def reference_truth(
    task: Task,
    name: str,
    overrides: dict[str, object],
    batch: int,
    total: int,
    on_reference: OnReference | None = None,
) -> Truth:
    """Mean and standard error of ``total // batch`` (at least 2) estimates of the unbiased estimator ``name``.

    ``on_reference`` gets a :class:`ReferenceReport` after every chunk of either pass (the first
    draws each estimate, the second centres it: redrawn, or at once where the chunk was held).
    """
    config = estimator_config(name, overrides)
    estimator = get_estimator(name)(config)
    seed = cell_seed(
        0, task.name, seed_config(task.config, type(task).params), f"reference:{name}", config, total, batch
    )
    generator = torch.Generator(device=task.device).manual_seed(seed)
    count = max(2, total // batch)
    kind = reference_kind(name, count, batch)
    most = min(REFERENCE_CHUNK, chunk_size(task, estimator, count, batch, DEFAULT_MAX_MEMORY))
    sizes = [min(most, count - start) for start in range(0, count, most)]

    def draw(size: int) -> dict[str, list[torch.Tensor]]:
        return group_blocks(estimator.estimate(task, size, batch, generator))

    # First pass: sums.  Each chunk's generator state is kept, so the second pass can redraw it.
    moments: dict[str, Moments] = {}
    states: list[torch.Tensor] = []
    held: list[dict[str, list[torch.Tensor]] | None] = []
    held_bytes = 0

    def report(done: int) -> None:
        if on_reference is not None:
            on_reference(ReferenceReport(task.name, kind, done, 2 * count))

    for size, drawn in zip(sizes, itertools.accumulate(sizes), strict=True):
        states.append(generator.get_state())
        blocks = draw(size)
        if not moments:  # no truth to compare with, and no tr(Σ²) needed: a zero Gram budget skips it
            moments = {
                group: Moments([b.shape[1] for b in bs], count, device=bs[0].device, gram_budget=0.0)
                for group, bs in blocks.items()
            }
        for group, accumulator in moments.items():
            accumulator.add(blocks[group])
        held_bytes += sum(b.numel() * b.element_size() for bs in blocks.values() for b in bs)
        held.append(blocks if held_bytes <= REFERENCE_HOLD else None)
        report(drawn)
    # Second pass: squares about the mean of all the estimates.
    for state, size, kept, centred in zip(states, sizes, held, itertools.accumulate(sizes), strict=True):
        if kept is None:
            generator.set_state(state)
        blocks = draw(size) if kept is None else kept
        for group, accumulator in moments.items():
            accumulator.add_centred(blocks[group])
        report(count + centred)
    results = {group: accumulator.result() for group, accumulator in moments.items()}
    mean = {group: r.mean for group, r in results.items()}
    se = {group: (r.column_var / count).sqrt() for group, r in results.items()}
    return Truth(kind, mean, se)


def se_norm(se: torch.Tensor | None) -> float:
    """The length of the reference's standard-error vector (0 for exact truth)."""
    return 0.0 if se is None else math.sqrt(float((se.to(torch.float64) ** 2).sum()))
