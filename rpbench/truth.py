"""The true gradient of a task, per parameter group: exact where possible, else a reference.

* closed form or enumeration — whatever ``task.exact_gradient()`` returns (standard error 0);
* reference — the mean of ``task.config["reference"]`` samples of the task's unbiased
  ``reference_estimator``, with its per-coordinate standard error, which the metrics carry into
  the bias interval.  It is seeded by the task configuration alone, so every estimator and every
  run seed is compared with the same reference; it is computed once per task configuration.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from rpbench.engine import DEFAULT_MAX_MEMORY, cell_seed, chunk_size, flatten_groups
from rpbench.registry import get_estimator
from rpbench.tasks.base import Task

REFERENCE_CHUNK = 256
"""Most estimates drawn at once while accumulating a reference (fewer where the memory budget says so)."""


@dataclass(frozen=True)
class Truth:
    """The true gradient per group (flattened), how it was obtained, and its standard error."""

    kind: str
    gradient: dict[str, torch.Tensor]
    se: dict[str, torch.Tensor] | None = None


_CACHE: dict[tuple, Truth] = {}


def truth_of(task: Task) -> Truth | None:
    """The truth for ``task``; ``None`` if it has neither an exact gradient nor a reference."""
    exact = task.exact_gradient()
    if exact is not None:
        return Truth(task.truth_kind, {group: _flatten(value) for group, value in exact.items()})
    spec = getattr(task, "reference_estimator", None)
    if spec is None:
        return None
    key = (task.name, str(task.device), *sorted(task.config.items()))
    if key not in _CACHE:
        _CACHE[key] = reference_truth(task, *spec, total=int(task.config["reference"]))
    return _CACHE[key]


def _flatten(value: torch.Tensor | dict) -> torch.Tensor:
    """One group's tensors (nested dicts for networks) as one vector, in the estimates' order."""
    if isinstance(value, dict):
        return torch.cat([_flatten(v) for v in value.values()])
    return value.detach().reshape(-1)


def reference_truth(task: Task, name: str, overrides: dict[str, object], batch: int, total: int) -> Truth:
    """Mean and standard error of ``total // batch`` estimates of the unbiased estimator ``name``."""
    cls = get_estimator(name)
    config = {**{p.name: p.default_values[0] for p in cls.params}, **overrides}
    estimator = cls(config)
    seed = cell_seed(0, task.name, task.config, f"reference:{name}", config, total, batch)
    generator = torch.Generator(device=task.device).manual_seed(seed)
    count = max(2, total // batch)
    mean: dict[str, torch.Tensor] = {}
    centred: dict[str, torch.Tensor] = {}  # Σ (x − mean)² per coordinate, merged chunk by chunk
    done = 0
    most = min(REFERENCE_CHUNK, chunk_size(task, estimator, count, batch, DEFAULT_MAX_MEMORY))
    while done < count:
        chunk = min(most, count - done)
        estimates = flatten_groups(estimator.estimate(task, chunk, batch, generator))
        for group, values in estimates.items():
            values = values.detach().to(torch.float64)
            chunk_mean = values.mean(0)
            chunk_centred = ((values - chunk_mean) ** 2).sum(0)
            if group not in mean:
                mean[group], centred[group] = chunk_mean, chunk_centred
                continue
            # Chan, Golub & LeVeque (1979): merge two groups' means and centred sums of squares
            delta = chunk_mean - mean[group]
            merged = done + chunk
            mean[group] = mean[group] + delta * (chunk / merged)
            centred[group] = centred[group] + chunk_centred + delta**2 * (done * chunk / merged)
        done += chunk
    variance = {g: c / (count - 1) for g, c in centred.items()}
    se = {g: (v / count).sqrt() for g, v in variance.items()}
    return Truth(f"reference:{name}x{count * batch}", mean, se)


def se_norm(se: torch.Tensor | None) -> float:
    """The length of the reference's standard-error vector (0 for exact truth)."""
    return 0.0 if se is None else math.sqrt(float((se.to(torch.float64) ** 2).sum()))
