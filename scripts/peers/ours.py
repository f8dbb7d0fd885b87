"""Worker for our side: rpbench's own estimators, timed as the rpbench engine times them.

A cell is a task configuration and an estimator configuration (every ParamSpec default, plus the
cell's overrides).  ``setup`` builds both, calls ``estimator.prepare(task, batch, generator)`` once
(untimed, as the engine does) and makes one warm-up call.  Each timed ``run`` is exactly the
engine's measured computation: one ``estimator.estimate(task, samples=K, batch=n, generator=g)``
returning K independent gradient estimates.  Flattening the estimates to ``(K, P)`` per group for
the agreement check happens after the clock stops.

Started by ``scripts/bench_peers.py``; speaks :mod:`peer_protocol` on stdin/stdout.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field
from importlib.metadata import version
from typing import Any

import numpy as np
import torch
from peer_protocol import KeepingWorker, affinity, serve

from rpbench.estimators.base import Estimator
from rpbench.estimators.pathwise import pathwise_surrogate
from rpbench.registry import get_estimator, get_task
from rpbench.tasks.base import Task, Theta


def flatten_group(value: torch.Tensor | dict[str, torch.Tensor], k: int) -> np.ndarray:
    """A group's estimates (a ``(K, ...)`` tensor or a dict of them) as one ``(K, P)`` array, keys in order."""
    if isinstance(value, dict):
        return np.concatenate([flatten_group(v, k) for v in value.values()], axis=1)
    return value.detach().reshape(k, -1).cpu().numpy()


def with_defaults(params: tuple, overrides: dict[str, Any]) -> dict[str, Any]:
    """Every parameter's first default value, then the overrides."""
    config = {p.name: p.default_values[0] for p in params}
    config.update(overrides)
    return config


@dataclass
class Cell:
    """One built cell and the estimates its timed runs produced."""

    task: Task
    estimator: Estimator
    samples: int
    batch: int
    groups: list[str]
    kept: dict[str, list[np.ndarray]] = field(default_factory=dict)
    limit: bool = False


LIMIT_ESTIMATORS = ("pathwise", "gumbel")


def limit_surrogate(task: Task, estimator: Estimator, theta: Theta, noise: torch.Tensor) -> torch.Tensor:
    """The estimator's surrogate for all of ``noise`` as one sample batch (pathwise, Gumbel-Softmax)."""
    if estimator.name == "pathwise":
        return pathwise_surrogate(task, theta, noise)
    tau = float(estimator.config["tau"])
    return task.objective(theta, type(estimator).latent(task, task.perturb(theta, noise), tau)).mean()


def limit_call(task: Task, estimator: Estimator, samples: int, batch: int, generator: torch.Generator) -> Theta:
    """*The limit*: ONE forward and backward of the same K × n samples as one batch, one summed gradient.

    No K estimates can be had for less: per-estimate gradients do this work and must also keep K
    gradients apart.  Noise is drawn inside the call, as ``estimate`` draws it.
    """
    noise = task.noise(generator, (samples, batch))
    theta = _fresh(task.theta)
    limit_surrogate(task, estimator, theta, noise.reshape(samples * batch, *noise.shape[2:])).backward()
    return _grads(theta)


def _fresh(tree: Theta) -> Theta:
    return {k: _fresh(v) if isinstance(v, dict) else v.detach().clone().requires_grad_(True) for k, v in tree.items()}


def _grads(tree: Theta) -> Theta:
    return {k: _grads(v) if isinstance(v, dict) else v.grad for k, v in tree.items()}


class OursWorker(KeepingWorker):
    """rpbench task × estimator cells on the CPU."""

    def __init__(self) -> None:
        super().__init__()
        torch.set_num_threads(self.threads)
        self.cells: dict[str, Cell] = {}

    def info(self) -> dict[str, Any]:
        return {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numpy": np.__version__,
            "rpbench": version("rpbench") if _installed("rpbench") else "source tree",
            "torch_threads": torch.get_num_threads(),
            "torch_interop_threads": torch.get_num_interop_threads(),
            "affinity": affinity(),
        }

    def setup(self, cell: dict[str, Any]) -> dict[str, Any]:
        device = torch.device("cpu")
        task_cls = get_task(cell["task"])
        task = task_cls(with_defaults(task_cls.params, cell["task_config"]), device)
        est_cls = get_estimator(cell["estimator"])
        estimator = est_cls(with_defaults(est_cls.params, cell.get("estimator_config", {})))
        samples, batch = int(cell["samples"]), int(cell["batch"])
        limit = bool(cell.get("limit", False))
        if limit and estimator.name not in LIMIT_ESTIMATORS:
            raise ValueError(f"the limit is defined for {', '.join(LIMIT_ESTIMATORS)}, not {estimator.name}")
        built = Cell(task, estimator, samples, batch, list(cell["groups"]), limit=limit)
        started = time.perf_counter()
        estimator.prepare(task, batch, torch.Generator().manual_seed(int(cell["seed"])))
        prepared = time.perf_counter()
        estimates = estimator.estimate(task, samples=samples, batch=batch, generator=torch.Generator().manual_seed(1))
        if limit:  # same noise: the limit's gradient is the mean of the K estimates (a check of the cell)
            summed = limit_call(task, estimator, samples, batch, torch.Generator().manual_seed(1))
            gap = max(
                float(
                    np.abs(
                        flatten_group(estimates[g], samples).mean(0) - flatten_group(_unsqueeze(summed[g]), 1)[0]
                    ).max()
                )
                for g in built.groups
            )
        warmed = time.perf_counter()
        self.cells[cell["id"]] = built
        exact = task.exact_gradient()
        exact_flat = None
        if exact is not None:
            exact_flat = {g: flatten_group(_unsqueeze(exact[g]), 1)[0].tolist() for g in built.groups}
        return {
            "prepare_seconds": prepared - started,
            "warmup_seconds": warmed - prepared,
            "dtype": str(task.dtype).replace("torch.", ""),
            "exact": exact_flat,
            "truth": task.truth_kind if exact is not None else None,
            **({"limit_vs_mean_of_estimates_max_abs": gap} if limit else {}),
        }

    def run(self, cell_id: str, seed: int) -> float:
        cell = self.cells[cell_id]
        generator = torch.Generator().manual_seed(seed)
        if cell.limit:
            started = time.perf_counter()
            limit_call(cell.task, cell.estimator, cell.samples, cell.batch, generator)
            return time.perf_counter() - started
        started = time.perf_counter()
        out = cell.estimator.estimate(cell.task, samples=cell.samples, batch=cell.batch, generator=generator)
        seconds = time.perf_counter() - started
        for group in cell.groups:
            cell.kept.setdefault(group, []).append(flatten_group(out[group], cell.samples))
        return seconds


def _unsqueeze(value: torch.Tensor | dict[str, torch.Tensor]) -> torch.Tensor | dict[str, torch.Tensor]:
    """A gradient (tensor or dict of tensors) with a leading axis of one estimate."""
    if isinstance(value, dict):
        return {k: v.unsqueeze(0) for k, v in value.items()}
    return value.unsqueeze(0)


def _installed(name: str) -> bool:
    try:
        version(name)
    except Exception:
        return False
    return True


if __name__ == "__main__":
    serve(OursWorker(), "ours")
