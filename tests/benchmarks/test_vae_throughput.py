"""Throughput of the batched engine on the VAE tasks: K = 200 estimates of batch n = 1, on CPU.

Per task at its default configuration (``vae`` with ``pathwise``, ``discrete-vae`` with
``gumbel``, τ = 1) three ways to get gradients from the same noise, in one benchmark group:

* ``batched`` — the engine: ``estimator.estimate(task, K, 1, generator)``, one ``vmap`` over
  the K per-estimate surrogates, with the encoder run once (the task's ``amortize`` hook: the
  lanes differentiate with respect to its output, and the K cotangents go back through the
  encoder in one batched backward);
* ``loop`` — K single-estimate autograd calls of the same surrogate on the same noise;
* ``limit`` — ONE forward and backward of the same K × n samples as one sample batch, giving
  one summed gradient (not K): the cost that batching K estimates can at best approach.

Every variant draws its noise inside the timed call (as ``estimate`` does), from the same seed,
so all three see identical samples.  Estimates per second are ``K / mean``; the issue's target is
``batched ≥ 0.8 × limit``.  Under ``--benchmark-disable`` each runs once, as a smoke test that
also checks the loop and the limit agree with the batched estimates.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import pytest
import torch

from rpbench.estimators.pathwise import pathwise_surrogate
from rpbench.registry import get_estimator, get_task
from rpbench.tasks.base import Task, Theta

K = 200
BATCH = 1
SEED = 0
TAU = 1.0
CPU = torch.device("cpu")

ESTIMATORS: dict[str, tuple[str, dict[str, object]]] = {
    "vae": ("pathwise", {}),
    "discrete-vae": ("gumbel", {"tau": TAU}),
}

TASKS = [pytest.param(name, marks=pytest.mark.benchmark(group=f"{name} K={K}")) for name in ESTIMATORS]


def gumbel_surrogate(task: Task, theta: Theta, noise: torch.Tensor) -> torch.Tensor:
    """The Gumbel-Softmax surrogate, as :class:`rpbench.estimators.relaxed.GumbelSoftmax` builds it."""
    relaxed = task.latent.soft(task.perturb(theta, noise), TAU)
    return task.objective(theta, relaxed).mean()


SURROGATES: dict[str, Callable[[Task, Theta, torch.Tensor], torch.Tensor]] = {
    "vae": pathwise_surrogate,
    "discrete-vae": gumbel_surrogate,
}


@functools.cache
def default_task(name: str) -> Task:
    cls = get_task(name)
    return cls({p.name: p.default_values[0] for p in cls.params}, CPU)


def estimator(name: str):
    estimator_name, overrides = ESTIMATORS[name]
    cls = get_estimator(estimator_name)
    return cls({p.name: p.default_values[0] for p in cls.params} | overrides)


def leaves(tree: Theta) -> list[torch.Tensor]:
    """The tensors of a (nested) parameter tree, in its order."""
    return [t for value in tree.values() for t in (leaves(value) if isinstance(value, dict) else [value])]


def fresh_theta(task: Task) -> Theta:
    """A copy of θ whose leaves require gradients."""

    def copy(tree: Theta) -> Theta:
        return {k: copy(v) if isinstance(v, dict) else v.detach().clone().requires_grad_(True) for k, v in tree.items()}

    return copy(task.theta)


def noise(task: Task) -> torch.Tensor:
    """The noise ``estimate`` draws: shape ``(K, n, ...)`` from the seeded generator."""
    return task.noise(torch.Generator().manual_seed(SEED), (K, BATCH))


@functools.cache
def batched_reference(name: str) -> torch.Tensor:
    """The engine's K estimates, flattened to ``(K, P)`` (computed once; also a warm-up)."""
    result = estimator(name).estimate(default_task(name), K, BATCH, torch.Generator().manual_seed(SEED))
    return torch.cat([t.reshape(K, -1) for t in leaves(result)], dim=1)


@pytest.mark.parametrize("name", TASKS)
def test_batched(benchmark, name: str) -> None:
    task, the_estimator = default_task(name), estimator(name)
    batched_reference(name)  # warm up
    benchmark.extra_info["estimates"] = K

    def run() -> Theta:
        return the_estimator.estimate(task, K, BATCH, torch.Generator().manual_seed(SEED))

    result = benchmark(run)
    for value, parameter in zip(leaves(result), leaves(task.theta), strict=True):
        assert value.shape == (K, *parameter.shape)
        assert torch.isfinite(value).all()
    flat = torch.cat([t.reshape(K, -1) for t in leaves(result)], dim=1)
    assert (flat.std(0) > 0).any(), "the K estimates are identical: every lane got the same noise"


@pytest.mark.parametrize("name", TASKS)
def test_loop(benchmark, name: str) -> None:
    task, surrogate = default_task(name), SURROGATES[name]
    benchmark.extra_info["estimates"] = K

    def run() -> list[torch.Tensor]:
        eps = noise(task)
        grads = []
        for k in range(K):
            theta = fresh_theta(task)
            surrogate(task, theta, eps[k]).backward()
            grads.append(torch.cat([t.grad.reshape(-1) for t in leaves(theta)]))
        return grads

    grads = benchmark(run)
    assert len(grads) == K
    torch.testing.assert_close(torch.stack(grads), batched_reference(name), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", TASKS)
def test_limit(benchmark, name: str) -> None:
    task, surrogate = default_task(name), SURROGATES[name]
    benchmark.extra_info["estimates"] = K

    def run() -> torch.Tensor:
        eps = noise(task)
        theta = fresh_theta(task)
        surrogate(task, theta, eps.reshape(K * BATCH, *eps.shape[2:])).backward()  # K × n samples, one batch
        return torch.cat([t.grad.reshape(-1) for t in leaves(theta)])

    gradient = benchmark(run)
    reference = batched_reference(name)
    assert gradient.shape == reference.shape[1:]
    assert torch.isfinite(gradient).all()
    # The mean over all K·n samples is the mean of the K estimates.
    torch.testing.assert_close(gradient, reference.mean(0), rtol=1e-4, atol=1e-5)
