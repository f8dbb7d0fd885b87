"""Bring a VAE task to a reproducible trained state: Adam on its ELBO with a stated estimator."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from rpbench.data import binarize

if TYPE_CHECKING:
    from rpbench.tasks.vae import VAETask

LEARNING_RATE = 1e-3


def train(
    task: VAETask, encoder: dict[str, torch.Tensor], decoder: dict[str, torch.Tensor], steps: int, seed: int
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """``steps`` Adam steps (lr 1e-3) ascending the ELBO on random training minibatches.

    Gradients come from ``task.train_estimator`` (one estimate of n samples per step); minibatches
    are drawn, and dynamically binarised where asked, from a generator seeded by ``seed``.
    """
    from rpbench.registry import get_estimator

    name, overrides, batch = task.train_estimator
    cls = get_estimator(name)
    estimator = cls({**{p.name: p.default_values[0] for p in cls.params}, **overrides})
    theta = {
        "encoder": {k: v.clone().to(task.device) for k, v in encoder.items()},
        "decoder": {k: v.clone().to(task.device) for k, v in decoder.items()},
    }
    leaves = [v for group in theta.values() for v in group.values()]
    optimizer = torch.optim.Adam(leaves, lr=LEARNING_RATE)
    generator = torch.Generator(device=task.device).manual_seed(seed + 1)
    cpu_generator = torch.Generator().manual_seed(seed + 2)
    images, mode = task.data.train, str(task.config["binarize"])
    measured_x, task._theta = task.x, theta
    try:
        for _ in range(steps):
            index = torch.randint(images.shape[0], (task.minibatch,), generator=cpu_generator)
            task.x = binarize(images[index], mode, cpu_generator).to(task.device)
            estimate = estimator.estimate(task, 1, batch, generator)
            for group, params in theta.items():
                for key, value in params.items():
                    value.grad = -estimate[group][key][0].detach()  # ascend the ELBO
            optimizer.step()
    finally:
        task.x = measured_x
    return (
        {k: v.detach().cpu() for k, v in theta["encoder"].items()},
        {k: v.detach().cpu() for k, v in theta["decoder"].items()},
    )
