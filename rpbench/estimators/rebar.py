"""REBAR and RELAX: score function with a reparameterized, relaxation-based control variate.

With ``z`` the perturbed logits, ``b = H(z)`` the hard sample, ``z̃ ~ p(z | b)`` a conditional
draw (both reparameterized) and a control variate ``c``::

    ĝ = [f(b) − c(z̃)] ∇θ log q(b) + ∇θ c(z) − ∇θ c(z̃)  (+ ∇θ f(b) where f depends on θ)

is unbiased for any ``c`` because ``z`` and ``z̃`` have the same distribution.  REBAR uses
``c = η f(σ_λ(·))`` (Tucker et al. 2017); RELAX adds a learned network, ``c = η f(σ_λ(·)) +
r_ψ(σ_λ(·))`` (Grathwohl et al. 2018).  Their free parameters (η, λ and ψ) are trained, as the
papers do, by descending a single-sample estimate of the estimator's variance, ``∇ E‖ĝ‖²``
(``E ĝ`` does not depend on them), here for ``tune_steps`` Adam steps at the measured model state
before any estimate is drawn (reported as ``setup_seconds``, not in the per-estimate cost).
The control variate is built with the decoder held fixed, so it acts on the encoder's gradient.
Requires :class:`~rpbench.tasks.protocols.RelaxableLatent` (``logits``, ``uniform``,
``latent_shape``, ``event_dims`` and the ``latent`` family's ``hard``, ``soft`` and
``conditional``) and the task's ``without_model_gradient`` and ``variational_groups``.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Callable, Mapping
from typing import Any, cast

import torch
from torch import nn
from torch.func import functional_call

from rpbench.estimators.base import Estimator, as_protocol, per_estimate_gradients, tree_leaves, tree_map
from rpbench.params import ParamSpec, at_least, positive
from rpbench.registry import register_estimator
from rpbench.tasks.base import Task, Theta
from rpbench.tasks.protocols import RelaxableLatent

TUNE_LANES = 8
"""Independent single-sample estimates per tuning step."""
TUNE_LR = 3e-3

Control = Callable[[Task, Theta, torch.Tensor], torch.Tensor]
"""``c(task, θ, z)``: the control variate per unit, ``(*S, U)``, at perturbed logits ``z`` ``(*S, *latent_shape)``."""


def controlled_surrogate(
    task: Task, theta: Theta, noise: torch.Tensor, v: torch.Tensor, control: Control, tuning: bool = False
) -> torch.Tensor:
    """Surrogate whose gradient is the REBAR/RELAX estimate for one estimate's noise.

    The score weight ``f(b) − c(z̃)`` must carry no gradient to θ.  While tuning, it must still
    carry the gradient to the control variate's parameters (ĝ depends on them through it), so it
    is recomputed from a detached θ instead of being detached itself.  ``task`` is a
    :class:`~rpbench.tasks.protocols.RelaxableLatent` (checked by the estimator).
    """
    relaxable = cast(RelaxableLatent, task)
    logits = relaxable.logits(theta)
    z = logits + noise
    hard = relaxable.latent.hard(z).detach()
    z_given = relaxable.latent.conditional(logits, hard, v)
    fixed_model = task.without_model_gradient(theta)
    f_hard = task.objective(theta, hard)
    c_given = control(task, fixed_model, z_given)
    if tuning:
        stop = tree_map(torch.detach, theta)
        stop_given = relaxable.latent.conditional(relaxable.logits(stop), hard, v)
        weight = f_hard.detach() - control(task, stop, stop_given)
    else:
        weight = (f_hard - c_given).detach()
    return (f_hard + weight * task.log_prob(theta, hard) + control(task, fixed_model, z) - c_given).mean()


class _ControlVariateEstimator(Estimator):
    """Shared tuning loop and estimate for REBAR and RELAX."""

    needs = frozenset({"relaxable", "log-prob"})
    cost = "3n"

    def evaluations(self, task: Task, batch: int) -> int:
        """f at the hard sample, at the relaxed sample and at the conditional relaxed sample."""
        return 3 * batch

    def control_parameters(self, task: Task, generator: torch.Generator) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def control(self, params: dict[str, torch.Tensor]) -> Control:
        """``c(task, theta, z)`` per unit, given the control variate's parameters."""
        raise NotImplementedError

    def prepare(self, task: Task, batch: int, generator: torch.Generator) -> None:
        """Fresh control-variate parameters, tuned for ``tune_steps`` Adam steps at the current state."""
        self.cv = {
            k: v.detach().clone().requires_grad_(True) for k, v in self.control_parameters(task, generator).items()
        }
        self._cv_optimizer = torch.optim.Adam(list(self.cv.values()), lr=TUNE_LR)
        for _ in range(int(self.config["tune_steps"])):
            self._tune_step(task, batch, generator)

    def adapt(self, task: Task, batch: int, generator: torch.Generator) -> None:
        """Online, as in the papers: one variance-descent step of η, λ (and ψ) at the current state."""
        if not hasattr(self, "cv"):
            raise RuntimeError(f"{self.name}: prepare() must run before adapt()")
        self._tune_step(task, batch, generator)

    def state_dict(self) -> dict[str, Any]:
        """The control variate's parameters and their Adam state (after :meth:`prepare`)."""
        if not hasattr(self, "cv"):
            return {}
        return {"cv": {k: v.detach().clone() for k, v in self.cv.items()}, "optimizer": self._cv_optimizer.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from a checkpoint: the tensors are copied into the ones Adam holds."""
        if not hasattr(self, "cv") or set(state.get("cv", {})) != set(self.cv):
            raise ValueError(f"{self.name}: a checkpoint needs prepare() first and the control variate's parameters")
        with torch.no_grad():
            for key, value in self.cv.items():
                value.copy_(state["cv"][key])
        self._cv_optimizer.load_state_dict(state["optimizer"])

    def _tune_step(self, task: Task, batch: int, generator: torch.Generator) -> None:
        """One Adam step descending ``E‖ĝ‖²`` (of the variational groups) over ``TUNE_LANES`` estimates."""
        relaxable = as_protocol(task, RelaxableLatent, self.name)
        noise = task.noise(generator, (TUNE_LANES, batch))
        v = relaxable.uniform(generator, (TUNE_LANES, batch))
        control = self.control(self.cv)
        grads = per_estimate_gradients(
            lambda th, eps, u, c=control: controlled_surrogate(task, th, eps, u, c, tuning=True),
            task.theta,
            noise,
            v,
        )
        targets = {g: grads[g] for g in task.variational_groups} if task.variational_groups else grads
        loss = functools.reduce(operator.add, [(leaf**2).sum() for leaf in tree_leaves(targets)]) / TUNE_LANES
        self._cv_optimizer.zero_grad()
        loss.backward()
        self._cv_optimizer.step()

    def memory_factor(self, task: Task) -> float:
        """f at the hard sample and at two relaxations, with their gradients."""
        return 4.0

    def estimate(self, task: Task, samples: int, batch: int, generator: torch.Generator) -> Theta:
        if not hasattr(self, "cv"):
            raise RuntimeError(f"{self.name}: prepare() must run before estimate()")
        relaxable = as_protocol(task, RelaxableLatent, self.name)
        control = self.control({k: v.detach() for k, v in self.cv.items()})
        noise = task.noise(generator, (samples, batch))
        v = relaxable.uniform(generator, (samples, batch))
        return per_estimate_gradients(
            lambda th, eps, u: controlled_surrogate(task, th, eps, u, control), task.theta, noise, v
        )


TUNE_STEPS = ParamSpec(
    "tune_steps", int, 50, "Adam steps that tune the control variate", check=at_least(0), expect="an integer >= 0"
)
ETA = ParamSpec("eta", float, 1.0, "initial scale η of the relaxed control variate", expect="a real number")
LAM = ParamSpec(
    "lam", float, 0.5, "initial temperature λ of the relaxed control variate", check=positive, expect="a number > 0"
)


@register_estimator
class Rebar(_ControlVariateEstimator):
    """REBAR: score function with the control variate ``η f(σ_λ(z))``, η and λ tuned for variance.

    Tucker, Mnih, Maddison, Lawson & Sohl-Dickstein (2017), "REBAR: Low-variance, unbiased gradient
    estimates for discrete latent variable models", NeurIPS.  Unbiased.
    """

    name = "rebar"
    summary = "REBAR: score function + relaxed control variate eta*f(sigma_lam(z)), eta/lam tuned"
    reference = "Tucker et al. 2017"
    params = (ETA, LAM, TUNE_STEPS)

    def control_parameters(self, task: Task, generator: torch.Generator) -> dict[str, torch.Tensor]:
        dtype, device = task.dtype, task.device
        return {
            "eta": torch.tensor(float(self.config["eta"]), dtype=dtype, device=device),
            "log_lam": torch.tensor(math.log(float(self.config["lam"])), dtype=dtype, device=device),
        }

    def control(self, params: dict[str, torch.Tensor]) -> Control:
        def c(task: Task, theta: Theta, z: torch.Tensor) -> torch.Tensor:
            relaxed = cast(RelaxableLatent, task).latent.soft(z, params["log_lam"].exp())
            return params["eta"] * task.objective(theta, relaxed)

        return c


@register_estimator
class Relax(_ControlVariateEstimator):
    """RELAX: REBAR's control variate plus a learned network ``r_ψ(σ_λ(z))``, trained for variance.

    Grathwohl, Choi, Wu, Roeder & Duvenaud (2018), "Backpropagation through the Void: Optimizing
    control variates for black-box gradient estimation", ICLR.  ``r_ψ`` is an MLP with one tanh
    hidden layer of ``cv_hidden`` units per unit of the minibatch, its output layer initialised at
    zero (so RELAX starts as REBAR).  Unbiased.
    """

    name = "relax"
    summary = "RELAX: REBAR control variate + learned network r_psi, trained to minimise variance"
    reference = "Grathwohl et al. 2018"
    params = (
        ETA,
        LAM,
        TUNE_STEPS,
        ParamSpec(
            "cv_hidden",
            int,
            32,
            "hidden units of the control-variate network",
            check=at_least(1),
            expect="an integer >= 1",
        ),
    )

    def control_parameters(self, task: Task, generator: torch.Generator) -> dict[str, torch.Tensor]:
        dtype, device = task.dtype, task.device
        inputs = math.prod(as_protocol(task, RelaxableLatent, self.name).latent_shape[1:])
        hidden = int(self.config["cv_hidden"])
        bound = 1.0 / math.sqrt(inputs)
        first = (torch.rand(hidden, inputs, generator=generator, dtype=dtype, device=device) * 2 - 1) * bound
        return {
            "eta": torch.tensor(float(self.config["eta"]), dtype=dtype, device=device),
            "log_lam": torch.tensor(math.log(float(self.config["lam"])), dtype=dtype, device=device),
            "0.weight": first,
            "0.bias": torch.zeros(hidden, dtype=dtype, device=device),
            "2.weight": torch.zeros(1, hidden, dtype=dtype, device=device),
            "2.bias": torch.zeros(1, dtype=dtype, device=device),
        }

    def control(self, params: dict[str, torch.Tensor]) -> Control:
        network = nn.Sequential(nn.Linear(1, 1), nn.Tanh(), nn.Linear(1, 1))
        weights = {k: v for k, v in params.items() if k[0].isdigit()}

        def c(task: Task, theta: Theta, z: torch.Tensor) -> torch.Tensor:
            relaxable = cast(RelaxableLatent, task)
            relaxed = relaxable.latent.soft(z, params["log_lam"].exp())
            flat = relaxed.reshape(*relaxed.shape[: relaxed.dim() - relaxable.event_dims], -1)
            learned = functional_call(network, weights, (flat,))[..., 0]
            return params["eta"] * task.objective(theta, relaxed) + learned

        return c
