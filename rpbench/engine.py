"""Draw one cell's K estimates as one batched computation, on one device, timed.

Randomness is explicit: each cell's generator is seeded from a hash of everything that defines
the cell (seed, task and its configuration, estimator and its configuration, K, n), so a cell's
numbers do not depend on run order, on the other cells of a sweep, or on how many workers run it.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from rpbench.errors import UsageError
from rpbench.estimators.base import Estimator
from rpbench.tasks.base import Task, Theta


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


def resolve_device(text: str) -> torch.device:
    """``cpu``, ``cuda`` or ``cuda:N``; a :class:`UsageError` where it is not available here."""
    text = text.strip().lower()
    if text == "cpu":
        return torch.device("cpu")
    if text == "cuda" or text.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise UsageError(f"--device {text}: CUDA is not available on this machine; valid choices: cpu")
        device = torch.device(text)
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            choices = ", ".join(["cpu", "cuda"] + [f"cuda:{i}" for i in range(count)])
            raise UsageError(f"--device {text}: no such GPU ({count} visible); valid choices: {choices}")
        return device
    raise UsageError(f"--device {text!r} is not a device; valid choices: cpu, cuda, cuda:N")


def synchronize(device: torch.device) -> None:
    """Wait for queued work on ``device`` so that a timer reads the real cost."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


_PREPARE_STREAM = 0x5BD1E995  # a second, independent stream for estimator set-up


@dataclass
class Draw:
    """K estimates per parameter group, flattened to ``(K, P)``, and the timed repeats."""

    estimates: dict[str, torch.Tensor]
    seconds: list[float]
    setup_seconds: float = 0.0


def draw_estimates(task: Task, estimator: Estimator, samples: int, batch: int, seed: int, repeats: int = 3) -> Draw:
    """The cell's K estimates, then ``repeats`` timed re-runs of the same computation.

    The first call yields the numbers (and warms caches); each timed repeat re-seeds the
    generator, so it does exactly the same work.  Timing covers noise generation and the
    estimator, with the device synchronised before and after.
    """

    def once() -> Theta:
        generator = torch.Generator(device=task.device).manual_seed(seed)
        return estimator.estimate(task, samples, batch, generator)

    start = time.perf_counter()
    estimator.prepare(task, batch, torch.Generator(device=task.device).manual_seed(seed ^ _PREPARE_STREAM))
    synchronize(task.device)
    setup = time.perf_counter() - start
    estimates = once()
    seconds = []
    for _ in range(repeats):
        synchronize(task.device)
        start = time.perf_counter()
        once()
        synchronize(task.device)
        seconds.append(time.perf_counter() - start)
    return Draw(flatten_groups(estimates), seconds, setup)


def flatten_groups(estimates: Theta) -> dict[str, torch.Tensor]:
    """``{group: (K, P)}``: each group's tensors (nested dicts for networks) flattened and joined."""

    def flatten(value: torch.Tensor | dict) -> torch.Tensor:
        if isinstance(value, dict):
            return torch.cat([flatten(v) for v in value.values()], dim=1)
        return value.detach().reshape(value.shape[0], -1)

    return {group: flatten(value) for group, value in estimates.items()}
