"""The true gradient of a task, per parameter group: exact where possible, else a reference.

* closed form or enumeration — whatever ``task.exact_gradient()`` returns (standard error 0);
* reference — for a :class:`~rpbench.tasks.protocols.ReferenceTruth` task, the mean of
  ``reference_samples // batch`` estimates of its unbiased ``reference_estimator``, with its
  per-coordinate standard error, which the metrics carry into the bias interval.  It is seeded by
  the task configuration alone, so every estimator and every run seed is compared with the same
  reference; it is computed once per task configuration.  Its mean and variance are the engine's
  float64 two-pass moments (:class:`rpbench.moments.Moments`): the estimates are drawn in chunks,
  summed, then centred on the final mean (the chunks held where they fit, else redrawn from the
  generator's saved state, so both passes see the same estimates).

A task that needs training is brought to its measured state first (:func:`rpbench.training.warm_up`).
"""

from __future__ import annotations

import math
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


def truth_of(task: Task) -> Truth | None:
    """The truth for ``task``; ``None`` if it has neither an exact gradient nor a reference."""
    warm_up(task)
    exact = exact_truth(task)
    if exact is not None:
        return exact
    if not isinstance(task, ReferenceTruth):
        return None
    key = (task.name, str(task.device), *sorted(task.config.items()))
    if key not in _CACHE:
        _CACHE[key] = reference_truth(task, *task.reference_estimator, total=task.reference_samples)
    return _CACHE[key]


def reference_truth(task: Task, name: str, overrides: dict[str, object], batch: int, total: int) -> Truth:
    """Mean and standard error of ``total // batch`` (at least 2) estimates of the unbiased estimator ``name``."""
    cls = get_estimator(name)
    config = {**{p.name: p.default_values[0] for p in cls.params}, **overrides}
    estimator = cls(config)
    seed = cell_seed(
        0, task.name, seed_config(task.config, type(task).params), f"reference:{name}", config, total, batch
    )
    generator = torch.Generator(device=task.device).manual_seed(seed)
    count = max(2, total // batch)
    most = min(REFERENCE_CHUNK, chunk_size(task, estimator, count, batch, DEFAULT_MAX_MEMORY))
    sizes = [min(most, count - start) for start in range(0, count, most)]

    def draw(size: int) -> dict[str, list[torch.Tensor]]:
        return group_blocks(estimator.estimate(task, size, batch, generator))

    # First pass: sums.  Each chunk's generator state is kept, so the second pass can redraw it.
    moments: dict[str, Moments] = {}
    states: list[torch.Tensor] = []
    held: list[dict[str, list[torch.Tensor]] | None] = []
    held_bytes = 0
    for size in sizes:
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
    # Second pass: squares about the mean of all the estimates.
    for state, size, kept in zip(states, sizes, held, strict=True):
        if kept is None:
            generator.set_state(state)
        blocks = draw(size) if kept is None else kept
        for group, accumulator in moments.items():
            accumulator.add_centred(blocks[group])
    results = {group: accumulator.result() for group, accumulator in moments.items()}
    mean = {group: r.mean for group, r in results.items()}
    se = {group: (r.column_var / count).sqrt() for group, r in results.items()}
    return Truth(f"reference:{name}x{count * batch}", mean, se)


def se_norm(se: torch.Tensor | None) -> float:
    """The length of the reference's standard-error vector (0 for exact truth)."""
    return 0.0 if se is None else math.sqrt(float((se.to(torch.float64) ** 2).sum()))
