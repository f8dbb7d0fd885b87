"""Bring a task to a reproducible trained state: Adam on its objective with its stated estimator.

A VAE task with ``steps > 0`` is measured after that many Adam steps (lr 1e-3) from its
initialisation, on random training minibatches, with gradients from the estimator the task names
(``train_estimator``: Gumbel-Softmax for the categorical VAE, DisARM for the Bernoulli VAE,
pathwise for the Gaussian VAE).  The task declares what that needs
(:class:`~rpbench.tasks.protocols.Trainable`); this module, above tasks and estimators, runs it.
The seed of the model (``model_seed``) fixes the initialisation, the estimator's noise (a
generator seeded ``model_seed + 1`` on the task's device) and the minibatch stream (a CPU
generator seeded ``model_seed + 2``), so every estimator is measured at the same state.  A trained
state is computed once per process for each :attr:`~rpbench.tasks.protocols.Trainable.state_key`.
"""

from __future__ import annotations

from typing import cast

import torch

from rpbench.registry import get_estimator
from rpbench.tasks.base import Task
from rpbench.tasks.protocols import ModelState, Trainable

LEARNING_RATE = 1e-3

_TRAINED: dict[tuple[object, ...], ModelState] = {}


def train(task: Task, steps: int, seed: int) -> ModelState:
    """The state after ``steps`` Adam steps (lr 1e-3) ascending the objective from the initial state.

    Each step draws a minibatch (:meth:`~rpbench.tasks.protocols.Trainable.draw_minibatch`, from a
    CPU generator seeded ``seed + 2``) and one estimate of ``n`` samples of ``task.train_estimator``
    (noise from a generator on the task's device seeded ``seed + 1``).  Returns the state on the
    CPU (``initial_state``'s structure); the task is left as it was.
    """
    if not isinstance(task, Trainable):
        raise TypeError(f"task {task.name} does not declare what training needs (rpbench.tasks.protocols.Trainable)")
    name, overrides, batch = task.train_estimator
    cls = get_estimator(name)
    estimator = cls({**{p.name: p.default_values[0] for p in cls.params}, **overrides})
    theta = {
        group: {k: v.clone().to(task.device) for k, v in params.items()}
        for group, params in task.initial_state().items()
    }
    optimizer = torch.optim.Adam([leaf for params in theta.values() for leaf in params.values()], lr=LEARNING_RATE)
    generator = torch.Generator(device=task.device).manual_seed(seed + 1)
    cpu_generator = torch.Generator().manual_seed(seed + 2)
    for _ in range(steps):
        x = task.draw_minibatch(cpu_generator)
        with task.evaluated_at(theta, x):
            estimate = estimator.estimate(task, 1, batch, generator)
        for group, params in theta.items():
            gradients = cast(dict[str, torch.Tensor], estimate[group])
            for key, value in params.items():
                value.grad = -gradients[key][0].detach()  # ascend the objective
        optimizer.step()
    return {group: {k: v.detach().cpu() for k, v in params.items()} for group, params in theta.items()}


def warm_up(*tasks: Task) -> None:
    """Bring every task that needs training to its trained state; the others are left alone.

    A task needs training when it is :class:`~rpbench.tasks.protocols.Trainable` and has no state
    yet (``training_steps > 0``).  Its state is trained once per ``state_key`` in this process
    (:func:`train` with ``training_steps`` and ``model_seed``) and loaded into every task of that
    key; calling it again is free.
    """
    for task in tasks:
        if not isinstance(task, Trainable) or task.has_state:
            continue
        key = task.state_key
        if key not in _TRAINED:
            _TRAINED[key] = train(task, task.training_steps, task.model_seed)
        task.load_state(_TRAINED[key])
