"""LAX: the score function with a learned, reparameterized control variate, for continuous latents.

With a reparameterized sample ``z = T(θ, ε)`` and a learned control variate ``c_φ``::

    ĝ = [f(z) − c_φ(z)] ∇θ log q_θ(z) + ∇θ c_φ(T(θ, ε))  (+ ∇θ f where f depends on θ)

is unbiased for any ``c_φ``, because ``∇θ E[c_φ(z)] = E[c_φ(z) ∇θ log q_θ(z)] = E[∇θ c_φ(T(θ, ε))]``
(Grathwohl, Choi, Wu, Roeder & Duvenaud 2018, "Backpropagation through the Void", ICLR, §3.1,
eq. 5).  φ is trained, as RELAX's parameters are, by descending ``E‖ĝ‖²`` for ``tune_steps`` Adam
steps before the estimates are drawn and online in training (the machinery is
:class:`rpbench.estimators.rebar.TunedControlVariate`, shared with REBAR and RELAX).

Where the paper leaves room: ``c_φ`` is, per unit, the authors' RELAX network (an MLP over the last
axis of z, ``concat(z_u, x_u) → cv_hidden → cv_hidden → 1`` with tanh, ``x_u`` the unit's input
where the task is :class:`~rpbench.tasks.protocols.Conditioned`), its output layer at zero, so
untuned LAX is the plain score function.  c_φ is not f: one evaluation of f per sample.  Requires
``reparameterizable`` (``sample`` differentiable in θ) and ``log-prob``.
"""

from __future__ import annotations

import torch

from rpbench.estimators.base import tree_map
from rpbench.estimators.rebar import (
    CV_HIDDEN_PARAM,
    TUNE_STEPS,
    Params,
    TunedControlVariate,
    input_features,
    input_term,
    network,
    network_parameters,
    unit_inputs,
)
from rpbench.registry import register_estimator
from rpbench.tasks.base import Task, Theta


@register_estimator
class Lax(TunedControlVariate):
    """LAX: score function with a learned control variate ``c_φ(z)`` and its reparameterized correction.

    Grathwohl, Choi, Wu, Roeder & Duvenaud (2018), "Backpropagation through the Void: Optimizing
    control variates for black-box gradient estimation", ICLR, §3.1, eq. 5.  ``c_φ`` per unit: an
    MLP of two tanh layers of ``cv_hidden`` units over the last axis of z (and x_u where the task
    has inputs), its output layer at zero.  Unbiased.
    """

    name = "lax"
    summary = "LAX: score function + learned control variate c_phi(z) with its reparameterized correction"
    reference = "Grathwohl et al. 2018"
    needs = frozenset({"reparameterizable", "log-prob"})
    params = (TUNE_STEPS, CV_HIDDEN_PARAM)
    cost = "n"

    def evaluations(self, task: Task, batch: int) -> int:
        """f once per sample (c_φ is a network, not f)."""
        return batch

    def control_parameters(self, task: Task, generator: torch.Generator) -> Params:
        probe = task.sample(task.theta, task.noise(torch.Generator(device=task.device).manual_seed(0), (1,)))
        return network_parameters(
            int(probe.shape[-1]),
            input_features(task),
            int(self.config["cv_hidden"]),
            generator,
            task.dtype,
            task.device,
        )

    def draw(self, task: Task, generator: torch.Generator, samples: int, batch: int) -> tuple[torch.Tensor, ...]:
        return (task.noise(generator, (samples, batch)),)

    def surrogate(self, task: Task, theta: Theta, params: Params, *noise: torch.Tensor, tuning: bool) -> torch.Tensor:
        """``f(θ, z̄) + [f(z̄) − c_φ(z̄)] log q_θ(z̄) + c_φ(T(θ, ε))`` with ``z̄`` the detached sample.

        While tuning, the score weight is recomputed at a detached θ, so that it carries the
        gradient to φ but none to θ.
        """
        (eps,) = noise
        from_input = input_term(params, unit_inputs(task))
        z = task.sample(theta, eps)
        fixed = z.detach()
        f = task.objective(theta, fixed)
        c_z = network(params, z, from_input).reshape(f.shape)
        if tuning:
            stop = task.sample(tree_map(torch.detach, theta), eps)
            weight = f.detach() - network(params, stop, from_input).reshape(f.shape)
        else:
            weight = (f - c_z).detach()
        return (f + weight * task.log_prob(theta, fixed) + c_z).mean()
