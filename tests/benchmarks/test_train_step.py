"""Cost of one training step: ``rpbench train``'s step against a plain hand-written PyTorch step.

On the default ``discrete-vae`` (20 × 10 categorical, digits, minibatch 32, 128 hidden units) with
Gumbel-Softmax (τ = 1, one sample per image), two ways to take one Adam step on the same
minibatch, in one benchmark group:

* ``rpbench`` — :meth:`rpbench.training.loop._Run.take_step`: one estimate from the registered
  estimator (the engine's per-estimate gradient machinery with K = 1) and one Adam step;
* ``hand-written`` — what a user would write: ``nn.Module`` encoder and decoder with the same
  weights, the relaxed sample ``softmax((logits + G) / τ)``, ``loss = −ELBO``, ``backward()``,
  Adam.

The issue's goal is ``rpbench ≥ 0.95 × hand-written`` steps per second (``make bench``; the ratio
of the two means).  Under ``--benchmark-disable`` each runs once, as a smoke test that also checks
that one step of each moves the model the same way (the same noise, the same gradient).
"""

from __future__ import annotations

import functools
import math

import pytest
import torch
import torch.nn.functional as F

from rpbench.registry import get_estimator, get_task
from rpbench.tasks.vae import DiscreteVAE
from rpbench.training.loop import Schedule, _Run

CPU = torch.device("cpu")
TAU = 1.0


@functools.cache
def task() -> DiscreteVAE:
    cls = get_task("discrete-vae")
    found = cls({p.name: p.default_values[0] for p in cls.params}, CPU)
    assert isinstance(found, DiscreteVAE)
    return found


def ours() -> _Run:
    estimator = get_estimator("gumbel")({"tau": TAU})
    return _Run(task(), estimator, 1, Schedule(steps=1, eval_every=1))


class HandWritten:
    """A plain PyTorch Gumbel-Softmax VAE step with the task's initial weights and noise stream."""

    def __init__(self) -> None:
        t = task()
        self.encoder, self.decoder = t.build_networks()
        state = t.initial_state()
        self.encoder.load_state_dict(state["encoder"])
        self.decoder.load_state_dict(state["decoder"])
        self.optimizer = torch.optim.Adam([*self.encoder.parameters(), *self.decoder.parameters()], lr=1e-3)
        self.noise = torch.Generator().manual_seed(t.model_seed + 1)
        self.shape = (int(t.config["latents"]), int(t.config["categories"]))

    def step(self, x: torch.Tensor) -> None:
        logits = self.encoder(x).reshape(x.shape[0], *self.shape)
        u = torch.rand(1, 1, *logits.shape, generator=self.noise).clamp(1e-12, 1 - 1e-7)[0, 0]
        z = torch.softmax((logits - torch.log(-torch.log(u))) / TAU, -1)
        out = self.decoder(z.reshape(x.shape[0], -1))
        log_px = (x * out - F.softplus(out)).sum(-1)
        log_q = torch.log_softmax(logits, -1)
        kl = (log_q.exp() * log_q).sum((-2, -1)) + self.shape[0] * math.log(self.shape[1])
        loss = -(log_px - kl).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()

    def weights(self) -> list[torch.Tensor]:
        return [p.detach() for p in (*self.encoder.parameters(), *self.decoder.parameters())]


def minibatch() -> torch.Tensor:
    return task().draw_minibatch(torch.Generator().manual_seed(2))


def test_one_step_of_each_moves_the_model_the_same_way() -> None:
    x = minibatch()
    run, plain = ours(), HandWritten()
    run.take_step(x)
    plain.step(x)
    mine = [v.detach() for group in run.theta.values() for v in group.values()]
    for a, b in zip(mine, plain.weights(), strict=True):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-4)


@pytest.mark.benchmark(group="train-step-discrete-vae")
def test_rpbench_step(benchmark: pytest.FixtureDef) -> None:
    run, x = ours(), minibatch()
    benchmark(run.take_step, x)


@pytest.mark.benchmark(group="train-step-discrete-vae")
def test_hand_written_step(benchmark: pytest.FixtureDef) -> None:
    plain, x = HandWritten(), minibatch()
    benchmark(plain.step, x)
