"""REBAR and RELAX: score function with a reparameterized, relaxation-based control variate.

With ``φ`` the logits, ``z = φ + noise`` the perturbed logits, ``b = H(z)`` the hard sample, ``z̃ ~
p(z | b)`` a conditional draw (both reparameterized in φ) and a control variate ``c_l`` for the
logits of latent variable ``l``, the estimate of the gradient with respect to those logits is::

    ĝ_l = [f(b) − c_l(z̃)] ∂_l log q(b) + ∂_l c_l(z) − ∂_l c_l(z̃)

unbiased for any ``c_l``, coordinate by coordinate, because ``z`` and ``z̃`` have the same law
(Tucker et al. 2017, eq. 5).  The gradient of θ follows by the chain rule through φ(θ), plus
``∇θ f(b)`` where f depends on θ itself (a VAE's KL and decoder).  REBAR uses ``c_l = η_l
f(σ_λ(·))`` with one ``η_l = 2 sigmoid(ρ_l) ∈ (0, 2)`` per latent variable (Tucker et al.'s code
parameterises η so); RELAX adds a learned network, ``c_l = η_l f(σ_λ(·)) + r_ψ(σ_λ(·), x)``
(Grathwohl et al. 2018, §3.3).  The η_l enter the chain rule at the logits: the control variate's
part of the surrogate is evaluated at logits whose value is φ and whose gradient is scaled by η,
so one backward pass gives every coordinate's own η_l.

Their free parameters (ρ, λ and ψ) are trained, as the papers do, by descending a single-sample
estimate of the estimator's variance, ``∇ E‖ĝ‖²`` (``E ĝ`` does not depend on them), here for
``tune_steps`` Adam steps at the measured model state before any estimate is drawn (reported as
``setup_seconds``, not in the per-estimate cost); ``rpbench train`` continues them online
(:meth:`TunedControlVariate.adapt`).  The control variate is built with the decoder held fixed, so
it acts on the encoder's gradient.  Requires :class:`~rpbench.tasks.protocols.RelaxableLatent`
(``logits``, ``uniform``, ``latent_shape``, ``event_dims`` and the ``latent`` family's ``hard``,
``soft``, ``log_prob`` and ``conditional``) and the task's ``without_model_gradient`` and
``variational_groups``; RELAX's network reads :class:`~rpbench.tasks.protocols.Conditioned`'s
``inputs`` where the task has them.

:class:`TunedControlVariate` is the tuning machinery (prepare, adapt, checkpoints, the variance
descent) that LAX (:mod:`rpbench.estimators.lax`) shares; :func:`network_parameters` and
:func:`network` are the control-variate MLP both RELAX and LAX use.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import torch

from rpbench.estimators.base import Estimator, as_protocol, per_estimate_gradients, tree_leaves, tree_map
from rpbench.params import ParamSpec, at_least, positive
from rpbench.registry import register_estimator
from rpbench.tasks.base import Task, Theta
from rpbench.tasks.protocols import Conditioned, RelaxableLatent

TUNE_LANES = 8
"""Independent single-sample estimates per tuning step."""
TUNE_LR = 1e-2
"""Adam's learning rate for the control variate's parameters (Tucker et al.'s and Grathwohl et al.'s
code use ten times the model's, 3·10⁻⁴ and 10⁻⁴ there)."""
CV_HIDDEN = 200
"""Width of both hidden tanh layers of the control-variate network (Grathwohl et al.'s RELAX code:
``concat(x, z) → 200 → 200 → 1``)."""

Params = dict[str, torch.Tensor]


# -- the control-variate network (RELAX's r_ψ, LAX's c_φ) ------------------------------------------
def network_parameters(
    inputs: int, features: int, hidden: int, generator: torch.Generator, dtype: torch.dtype, device: torch.device
) -> Params:
    """An MLP ``concat(s, x) → hidden → hidden → 1`` (tanh), its output layer at zero.

    The first layer's weight is split into the part that reads the sample ``s`` (``inputs``
    features) and the part that reads the unit's input ``x`` (``features``, 0 where the task has
    none), so that ``x``'s contribution is computed once per unit rather than once per sample.
    Glorot-uniform weights and zero biases (TensorFlow's dense-layer default, which the reference
    code uses); the output layer is zero, so the network starts as the zero function.
    """

    def glorot(fan_out: int, fan_in: int) -> torch.Tensor:
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        return (torch.rand(fan_out, fan_in, generator=generator, dtype=dtype, device=device) * 2 - 1) * bound

    first = glorot(hidden, inputs + features)
    return {
        "net.0.sample": first[:, :inputs].contiguous(),
        "net.0.input": first[:, inputs:].contiguous(),
        "net.0.bias": torch.zeros(hidden, dtype=dtype, device=device),
        "net.1.weight": glorot(hidden, hidden),
        "net.1.bias": torch.zeros(hidden, dtype=dtype, device=device),
        "net.2.weight": torch.zeros(1, hidden, dtype=dtype, device=device),
        "net.2.bias": torch.zeros(1, dtype=dtype, device=device),
    }


def input_term(params: Params, x: torch.Tensor | None) -> torch.Tensor:
    """The first layer's pre-activation from the units' inputs ``x`` ``(U, features)`` and its bias: ``(U, hidden)``
    (the bias alone, ``(hidden,)``, without inputs)."""
    if x is None or params["net.0.input"].shape[1] == 0:
        return params["net.0.bias"]
    return x @ params["net.0.input"].T + params["net.0.bias"]


def network(params: Params, sample: torch.Tensor, from_input: torch.Tensor) -> torch.Tensor:
    """The network at samples ``(..., inputs)`` (``from_input`` from :func:`input_term`, broadcasting): ``(..., 1)``."""
    h = torch.tanh(sample @ params["net.0.sample"].T + from_input)
    h = torch.tanh(h @ params["net.1.weight"].T + params["net.1.bias"])
    return h @ params["net.2.weight"].T + params["net.2.bias"]


def unit_inputs(task: Task) -> torch.Tensor | None:
    """The units' inputs ``(U, features)`` where the task is :class:`Conditioned`, else ``None``."""
    return cast(Conditioned, task).inputs if isinstance(task, Conditioned) else None


def input_features(task: Task) -> int:
    x = unit_inputs(task)
    return 0 if x is None else int(x.shape[-1])


# -- the shared tuning machinery -------------------------------------------------------------------
class TunedControlVariate(Estimator):
    """A score-function estimator with a control variate whose parameters descend ``E‖ĝ‖²``.

    Subclasses say what the parameters are (:meth:`control_parameters`), what noise one estimate
    needs (:meth:`draw`) and the surrogate whose gradient is one estimate (:meth:`surrogate`).
    """

    def control_parameters(self, task: Task, generator: torch.Generator) -> Params:
        """The control variate's initial parameters (tensors that do not require grad)."""
        raise NotImplementedError

    def draw(self, task: Task, generator: torch.Generator, samples: int, batch: int) -> tuple[torch.Tensor, ...]:
        """The noise of ``samples`` estimates of ``batch`` samples, each tensor with leading ``(samples, batch)``."""
        raise NotImplementedError

    def surrogate(self, task: Task, theta: Theta, params: Params, *noise: torch.Tensor, tuning: bool) -> torch.Tensor:
        """Scalar whose gradient in θ is one estimate.  With ``tuning`` that gradient must also be
        differentiable in ``params`` (the score weight carries no gradient to θ, but does to them)."""
        raise NotImplementedError

    def prepare(self, task: Task, batch: int, generator: torch.Generator) -> None:
        """Fresh control-variate parameters, tuned for ``tune_steps`` Adam steps at the current state."""
        self.cv = {
            k: v.detach().clone().requires_grad_(True) for k, v in self.control_parameters(task, generator).items()
        }
        self._cv_optimizer = torch.optim.Adam(list(self.cv.values()), lr=self.tune_lr())
        for _ in range(int(self.config["tune_steps"])):
            self._tune_step(task, batch, generator)

    def tune_lr(self) -> float:
        """Adam's learning rate for the control variate (:data:`TUNE_LR`)."""
        return TUNE_LR

    def adapt(self, task: Task, batch: int, generator: torch.Generator) -> None:
        """Online, as in the papers: one variance-descent step of the control variate at the current state."""
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

    def tuning_loss(self, task: Task, batch: int, generator: torch.Generator) -> torch.Tensor:
        """``‖ĝ‖²`` of the variational groups over ``TUNE_LANES`` estimates, differentiable in the parameters."""
        noise = self.draw(task, generator, TUNE_LANES, batch)
        params = self.cv
        grads = per_estimate_gradients(
            lambda th, *eps: self.surrogate(task, th, params, *eps, tuning=True), task.theta, *noise
        )
        targets = {g: grads[g] for g in task.variational_groups} if task.variational_groups else grads
        return functools.reduce(operator.add, [(leaf**2).sum() for leaf in tree_leaves(targets)]) / TUNE_LANES

    def _tune_step(self, task: Task, batch: int, generator: torch.Generator) -> None:
        """One Adam step descending ``E‖ĝ‖²``."""
        loss = self.tuning_loss(task, batch, generator)
        self._cv_optimizer.zero_grad()
        loss.backward()
        self._cv_optimizer.step()

    def estimate(self, task: Task, samples: int, batch: int, generator: torch.Generator) -> Theta:
        if not hasattr(self, "cv"):
            raise RuntimeError(f"{self.name}: prepare() must run before estimate()")
        params = {k: v.detach() for k, v in self.cv.items()}
        noise = self.draw(task, generator, samples, batch)
        return per_estimate_gradients(
            lambda th, *eps: self.surrogate(task, th, params, *eps, tuning=False), task.theta, *noise
        )


# -- REBAR and RELAX -------------------------------------------------------------------------------
@dataclass(frozen=True)
class RelaxedControl:
    """REBAR's/RELAX's control variate at given parameters: ``c_l = η_l F + R``.

    ``eta`` broadcasts against the logits (``(L,)`` for Bernoulli, ``(L, 1)`` for categorical
    latents: one η per variable); ``F(z) = f(σ_λ(z))`` (per unit); ``R`` is RELAX's network (absent
    for REBAR).
    """

    eta: torch.Tensor
    tau: torch.Tensor
    net: Params | None = None
    from_input: torch.Tensor | None = None

    def relaxed(self, task: Task, theta: Theta, z: torch.Tensor) -> torch.Tensor:
        """``f(σ_λ(z))`` per unit, ``(*S, U)``."""
        return task.objective(theta, cast(RelaxableLatent, task).latent.soft(z, self.tau))

    def learned(self, task: Task, z: torch.Tensor) -> torch.Tensor | None:
        """``r_ψ(σ_λ(z), x_u)`` per unit, ``(*S, U)``, or ``None`` (REBAR)."""
        if self.net is None:
            return None
        relaxable = cast(RelaxableLatent, task)
        soft = relaxable.latent.soft(z, self.tau)
        flat = soft.reshape(*soft.shape[: soft.dim() - relaxable.event_dims], -1)
        assert self.from_input is not None
        return network(self.net, flat, self.from_input)[..., 0]


def _scaled_gradient(value: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``value`` itself, whose gradient is multiplied by ``scale`` (broadcasting) on the way back."""
    fixed = value.detach()
    return fixed + scale * (value - fixed)


def relaxed_surrogate(
    task: Task, theta: Theta, noise: torch.Tensor, v: torch.Tensor, control: RelaxedControl, tuning: bool = False
) -> torch.Tensor:
    """Surrogate whose gradient is the REBAR/RELAX estimate for one estimate's noise.

    The η-scaled part (``−F(z̃) log q(b) + F(z) − F(z̃)``) is evaluated at logits whose gradient
    is multiplied by η_l, the network's part (``−R(z̃) log q(b) + R(z) − R(z̃)``) at the logits
    themselves.  The score weights ``F(z̃)``, ``R(z̃)`` carry no gradient to θ; while tuning they
    must still carry it to λ and ψ (ĝ depends on them through it), so they are recomputed from a
    detached θ instead of being detached themselves.
    """
    relaxable = cast(RelaxableLatent, task)
    latent = relaxable.latent
    logits = relaxable.logits(theta)
    hard = latent.hard(logits + noise).detach()
    fixed_model = task.without_model_gradient(theta)
    f_hard = task.objective(theta, hard)
    scaled = _scaled_gradient(logits, control.eta)
    f_z = control.relaxed(task, fixed_model, scaled + noise)
    f_given = control.relaxed(task, fixed_model, latent.conditional(scaled, hard, v))
    if tuning:
        stop = tree_map(torch.detach, theta)
        stop_given = latent.conditional(relaxable.logits(stop), hard, v)
        f_weight = control.relaxed(task, stop, stop_given)
    else:
        f_weight = f_given.detach()
    total = f_hard + f_hard.detach() * latent.log_prob(logits, hard)
    total = total - f_weight * latent.log_prob(scaled, hard) + f_z - f_given
    r_z = control.learned(task, logits + noise)
    if r_z is not None:  # RELAX
        r_given = cast(torch.Tensor, control.learned(task, latent.conditional(logits, hard, v)))
        r_weight = cast(torch.Tensor, control.learned(task, stop_given)) if tuning else r_given.detach()
        total = total - r_weight * latent.log_prob(logits, hard) + r_z - r_given
    return total.mean()


class _RelaxedControlVariate(TunedControlVariate):
    """REBAR's and RELAX's shared parameters (ρ, log λ), noise and surrogate."""

    needs = frozenset({"relaxable", "log-prob"})
    cost = "3n"

    def evaluations(self, task: Task, batch: int) -> int:
        """f at the hard sample, at the relaxed sample and at the conditional relaxed sample."""
        return 3 * batch

    def memory_factor(self, task: Task) -> float:
        """f at the hard sample and at two relaxations, with their gradients."""
        return 4.0

    def control_parameters(self, task: Task, generator: torch.Generator) -> Params:
        """ρ with ``2 sigmoid(ρ) = eta`` for each latent variable (``latent_shape[1]`` of them), and log λ."""
        relaxable = as_protocol(task, RelaxableLatent, self.name)
        variables = relaxable.latent_shape[1]
        eta = float(self.config["eta"])
        rho = math.log(eta / (2.0 - eta))  # the inverse of 2 sigmoid(ρ)
        return {
            "rho": torch.full((variables,), rho, dtype=task.dtype, device=task.device),
            "log_lam": torch.tensor(math.log(float(self.config["lam"])), dtype=task.dtype, device=task.device),
        }

    def control(self, task: Task, params: Params) -> RelaxedControl:
        """The control variate at ``params``."""
        relaxable = cast(RelaxableLatent, task)
        eta = 2.0 * torch.sigmoid(params["rho"])
        return RelaxedControl(eta.reshape(-1, *([1] * (relaxable.event_dims - 1))), params["log_lam"].exp())

    def draw(self, task: Task, generator: torch.Generator, samples: int, batch: int) -> tuple[torch.Tensor, ...]:
        relaxable = as_protocol(task, RelaxableLatent, self.name)
        return task.noise(generator, (samples, batch)), relaxable.uniform(generator, (samples, batch))

    def surrogate(self, task: Task, theta: Theta, params: Params, *noise: torch.Tensor, tuning: bool) -> torch.Tensor:
        noise_z, v = noise
        return relaxed_surrogate(task, theta, noise_z, v, self.control(task, params), tuning=tuning)


TUNE_STEPS = ParamSpec(
    "tune_steps", int, 200, "Adam steps that tune the control variate", check=at_least(0), expect="an integer >= 0"
)


def _open_unit_pair(value: float) -> str | None:
    """Range check: ``0 < value < 2`` (η = 2 sigmoid(ρ))."""
    return None if 0.0 < value < 2.0 else "a number in (0, 2)"


ETA = ParamSpec(
    "eta",
    float,
    1.0,
    "initial scale η of the relaxed control variate, each latent variable's (η = 2 sigmoid(ρ))",
    check=_open_unit_pair,
    expect="a number in (0, 2)",
)
LAM = ParamSpec(
    "lam", float, 0.5, "initial temperature λ of the relaxed control variate", check=positive, expect="a number > 0"
)
CV_HIDDEN_PARAM = ParamSpec(
    "cv_hidden",
    int,
    CV_HIDDEN,
    "units of each of the control-variate network's two hidden tanh layers",
    check=at_least(1),
    expect="an integer >= 1",
)


@register_estimator
class Rebar(_RelaxedControlVariate):
    """REBAR: score function with the control variate ``η_l f(σ_λ(z))``, η and λ tuned for variance.

    Tucker, Mnih, Maddison, Lawson & Sohl-Dickstein (2017), "REBAR: Low-variance, unbiased gradient
    estimates for discrete latent variable models", NeurIPS, eq. 5 and §3.3.  One η per latent
    variable, ``η = 2 sigmoid(ρ)`` as in the authors' code (which keeps one per parameter tensor of
    q); one temperature λ.  Unbiased.
    """

    name = "rebar"
    summary = "REBAR: score function + relaxed control variate eta_l*f(sigma_lam(z)), eta/lam tuned"
    reference = "Tucker et al. 2017"
    params = (ETA, LAM, TUNE_STEPS)


@register_estimator
class Relax(_RelaxedControlVariate):
    """RELAX: REBAR's control variate plus a learned network ``r_ψ(σ_λ(z), x)``, trained for variance.

    Grathwohl, Choi, Wu, Roeder & Duvenaud (2018), "Backpropagation through the Void: Optimizing
    control variates for black-box gradient estimation", ICLR, §3.3 and eq. 8.  ``r_ψ`` is, per
    unit, the authors' code's MLP: ``concat(relaxed sample, x_u) → cv_hidden → cv_hidden → 1`` with
    tanh (x_u where the task is :class:`~rpbench.tasks.protocols.Conditioned`, else the sample
    alone); its output layer starts at zero, so RELAX starts as REBAR.  Unbiased.
    """

    name = "relax"
    summary = "RELAX: REBAR control variate + learned network r_psi(z, x), trained to minimise variance"
    reference = "Grathwohl et al. 2018"
    params = (ETA, LAM, TUNE_STEPS, CV_HIDDEN_PARAM)

    def control_parameters(self, task: Task, generator: torch.Generator) -> Params:
        relaxable = as_protocol(task, RelaxableLatent, self.name)
        inputs = math.prod(relaxable.latent_shape[1:])
        net = network_parameters(
            inputs, input_features(task), int(self.config["cv_hidden"]), generator, task.dtype, task.device
        )
        return super().control_parameters(task, generator) | net

    def control(self, task: Task, params: Params) -> RelaxedControl:
        base = super().control(task, params)
        net = {k: v for k, v in params.items() if k.startswith("net.")}
        return RelaxedControl(base.eta, base.tau, net, input_term(net, unit_inputs(task)))
