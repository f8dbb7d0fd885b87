"""Worker for the Storchastic 0.3.7 side of the categorical VAE (PyTorch).

The model is rpbench's ``discrete-vae`` task itself: its encoder/decoder modules
(``task.build_networks()``) loaded with the task's parameter tensors ``theta``, its fixed minibatch
``task.x`` of binarised ``digits`` images, its KL term (``Categorical.kl_to_uniform`` of the
encoder logits, closed form) and its Bernoulli log-likelihood (``binary_cross_entropy_with_logits``
summed over pixels).  A Storchastic user minimises a loss, so the costs are ``KL`` and
``−log p(x|z)`` — the negative of rpbench's per-image objective — and Storchastic averages them over
its ``data`` plate (the images) and its ``z`` plate (the samples).  The estimates are therefore
negated to give the gradient of rpbench's objective, with the same scale.

Estimators (``cell["estimator"]`` names our counterpart):

* ``score+loo`` → ``storch.method.ScoreFunction("z", n_samples=n, baseline_factory="batch_average")``.
  Its ``BatchAverageBaseline`` is, per image, the mean cost of the *other* samples,
  ``(Σ_j c_j − c_i)/(n − 1)`` — exactly rpbench's leave-one-out baseline — and the estimate is
  ``(1/n) Σ_i (c_i − b_i) ∇ log q(z_i)`` plus the pathwise terms (KL, decoder).
* ``gumbel`` → ``storch.method.GumbelSoftmax("z", n_samples=n, straight_through=False,
  initial_temperature=τ, annealing_rate=0.0)``: the relaxed (not straight-through) sample fed to the
  decoder.  Its default ``annealing_rate=1e-5`` would lower τ after every ``storch.backward()``, so it
  is set to zero.

One timed ``run`` is K estimates as a user loops them: per estimate, zero the gradients, one
storch forward (``denote_independent`` → encoder → ``OneHotCategorical`` → method → decoder →
``add_cost``), one ``storch.backward()``, and read every parameter's ``.grad`` into a preallocated
``(K, P)`` buffer.  The global torch RNG is seeded before the loop, untimed.

Precision: the task's ``dtype`` (float32 by default, or float64): the modules are converted to it
before the task's weights are loaded, and the gradient buffers are in it.

rpbench's task is built before Storchastic is imported (it patches ``torch`` globally).
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
import torch.nn.functional as F
from peer_protocol import KeepingWorker, affinity, serve
from torch import nn

from rpbench.distributions import Categorical
from rpbench.registry import get_task

GROUPS = ("encoder", "decoder")


@dataclass
class Cell:
    """One Storchastic cell: the model, the method and the estimates its timed runs produced."""

    encoder: nn.Module
    decoder: nn.Module
    x: torch.Tensor
    latents: int
    categories: int
    method: Any
    samples: int
    dtype: torch.dtype
    kept: dict[str, list[np.ndarray]] = field(default_factory=dict)


class StorchasticWorker(KeepingWorker):
    """Storchastic estimators on rpbench's categorical VAE."""

    def __init__(self) -> None:
        super().__init__()
        torch.set_num_threads(self.threads)
        self.cells: dict[str, Cell] = {}

    def info(self) -> dict[str, Any]:
        return {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "storchastic": version("storchastic"),
            "pyro-ppl": version("pyro-ppl"),
            "entmax": version("entmax"),
            "torch_threads": torch.get_num_threads(),
            "affinity": affinity(),
        }

    def setup(self, cell: dict[str, Any]) -> dict[str, Any]:
        if cell["task"] != "discrete-vae":
            raise ValueError("the Storchastic worker only runs the discrete-vae task")
        task_cls = get_task(cell["task"])
        config = {p.name: p.default_values[0] for p in task_cls.params}
        config.update(cell["task_config"])
        task = task_cls(config, torch.device("cpu"))  # before Storchastic patches torch
        encoder, decoder = (network.to(task.dtype) for network in task.build_networks())
        encoder.load_state_dict(task.theta["encoder"])
        decoder.load_state_dict(task.theta["decoder"])

        import storch  # noqa: F401  (patches torch; only in this process)
        from storch.method import GumbelSoftmax, ScoreFunction

        batch = int(cell["batch"])
        if cell["estimator"] == "score+loo":
            method = ScoreFunction("z", n_samples=batch, baseline_factory="batch_average")
        elif cell["estimator"] == "gumbel":
            tau = float(cell.get("estimator_config", {}).get("tau", 1.0))
            method = GumbelSoftmax("z", n_samples=batch, straight_through=False, initial_temperature=tau)
            method.annealing_rate.fill_(0.0)  # annealing off: τ stays fixed across backward calls
        else:
            raise ValueError(f"no Storchastic counterpart for estimator {cell['estimator']!r}")
        built = Cell(
            encoder,
            decoder,
            task.x,
            int(config["latents"]),
            int(config["categories"]),
            method,
            int(cell["samples"]),
            task.dtype,
        )
        started = time.perf_counter()
        torch.manual_seed(0)
        self._loop(built, self._buffers(built, min(built.samples, 20)))
        warmed = time.perf_counter()
        self.cells[cell["id"]] = built
        temperature = getattr(method, "temperature", None)
        return {
            "warmup_seconds": warmed - started,
            "dtype": str(task.dtype).replace("torch.", ""),
            "temperature_after_warmup": None if temperature is None else float(temperature),
        }

    @staticmethod
    def _estimate(cell: Cell) -> None:
        """One storch forward and ``storch.backward()``: fills every parameter's ``.grad``."""
        import storch
        from torch.distributions import OneHotCategorical

        x = storch.denote_independent(cell.x, 0, "data")
        logits = cell.encoder(x)
        logits = logits.reshape((*logits.shape[:-1], cell.latents, cell.categories))
        storch.add_cost(Categorical.kl_to_uniform(logits), "kl")
        z = cell.method(OneHotCategorical(logits=logits))
        pixel_logits = cell.decoder(z.reshape((*z.shape[:-2], cell.latents * cell.categories)))
        nll = F.binary_cross_entropy_with_logits(pixel_logits, x.expand_as(pixel_logits), reduction="none").sum(-1)
        storch.add_cost(nll, "reconstruction")
        storch.backward()

    @staticmethod
    def _buffers(cell: Cell, k: int) -> dict[str, torch.Tensor]:
        """Preallocated ``(K, P)`` rows for each group's gradients."""
        modules = {"encoder": cell.encoder, "decoder": cell.decoder}
        return {g: torch.empty(k, sum(p.numel() for p in m.parameters()), dtype=cell.dtype) for g, m in modules.items()}

    def _loop(self, cell: Cell, buffers: dict[str, torch.Tensor]) -> None:
        """One estimate per buffer row, one storch forward + backward each: rows are ∇(loss), not negated."""
        params = {"encoder": list(cell.encoder.parameters()), "decoder": list(cell.decoder.parameters())}
        for row in range(next(iter(buffers.values())).shape[0]):
            for ps in params.values():
                for p in ps:
                    p.grad = None
            self._estimate(cell)
            for group, ps in params.items():
                torch.cat([p.grad.reshape(-1) for p in ps], out=buffers[group][row])

    def run(self, cell_id: str, seed: int) -> float:
        cell = self.cells[cell_id]
        buffers = self._buffers(cell, cell.samples)
        torch.manual_seed(seed)
        started = time.perf_counter()
        self._loop(cell, buffers)
        seconds = time.perf_counter() - started
        for group in GROUPS:
            # the loss is −(rpbench's objective): negate to get the gradient of the objective
            cell.kept.setdefault(group, []).append(-buffers[group].numpy())
        return seconds


if __name__ == "__main__":
    serve(StorchasticWorker(), "storchastic")
