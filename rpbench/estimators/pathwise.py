"""The pathwise (reparameterization) estimator."""

from __future__ import annotations

import torch

from rpbench.estimators.base import Estimator, amortizer, copy_gradients, per_estimate_gradients
from rpbench.registry import register_estimator
from rpbench.tasks.base import Task, Theta


def pathwise_surrogate(task: Task, theta: Theta, noise: torch.Tensor) -> torch.Tensor:
    """``mean_i f_θ(g_θ(ε_i))``: its gradient is the pathwise estimate."""
    return task.objective(theta, task.sample(theta, noise)).mean()


@register_estimator
class Pathwise(Estimator):
    """Pathwise gradient ``(1/n) Σ_i ∇θ f(g_θ(ε_i))``, ε_i from the base distribution.

    Kingma & Welling (2014), "Auto-Encoding Variational Bayes"; Rezende, Mohamed & Wierstra
    (2014); reviewed in Mohamed et al. (2020), JMLR 21(132), §5.  Unbiased when f is
    differentiable (Lipschitz) along the path; on a step function it returns zero almost surely,
    and the tables show that bias.
    """

    name = "pathwise"
    summary = "reparameterization gradient of f(g_theta(eps))"
    reference = "Kingma & Welling 2014; Rezende et al. 2014; Mohamed et al. 2020 §5"
    needs = frozenset({"reparameterizable"})

    def estimate(self, task: Task, samples: int, batch: int, generator: torch.Generator) -> Theta:
        noise = task.noise(generator, (samples, batch))
        if task.broadcasts_theta:  # K copies of θ, one backward: the same numbers with less overhead
            return copy_gradients(
                lambda th: task.objective(th, task.sample(th, noise)).mean(dim=(1, 2)), task.theta, samples
            )
        return per_estimate_gradients(
            lambda th, eps: pathwise_surrogate(task, th, eps), task.theta, noise, amortize=amortizer(task)
        )
