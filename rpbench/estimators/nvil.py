"""NVIL: the score function with a learned, input-dependent baseline and optional variance normalisation.

Mnih & Gregor (2014), "Neural Variational Inference and Learning in Belief Networks", ICML, §3
(variance reduction: centring the learning signal, variance normalisation) and Algorithm 1.  The
learning signal of unit ``u`` (a VAE's image ``x_u``) is its objective ``f_u(z)``, centred by a
baseline that depends on the input but not on the sample::

    b_u = c + C_ψ(x_u),    ĝ = (1/n) Σ_i [∇θ f(z_i) + (f(z_i) − b) ∇θ log q_θ(z_i)]   (per unit)

so ``E[b ∇θ log q] = b E[∇θ log q] = 0`` and the estimate stays unbiased whatever ``c`` and ψ are.
``C_ψ`` is an MLP with one tanh hidden layer (:data:`BASELINE_HIDDEN` units by default, as in
Tucker et al.'s reference code, tensorflow/models research/rebar ``_create_baseline``, which its
``get_nvil_gradient`` uses without variance normalisation); on a task without inputs (no
:class:`~rpbench.tasks.protocols.Conditioned`) the baseline is ``c`` alone.

Fitting, as in the paper's Algorithm 1: ``c`` is a running mean (decay :data:`SIGNAL_DECAY`) of the
residual ``f − C_ψ(x)`` (a stochastic fixed-point step towards the ``c`` that minimises
``E[(f − c − C_ψ(x))²]``), and ψ takes one Adam step on that squared error per fitting step, over
fresh samples at the current state.  :meth:`Nvil.prepare` takes ``fit_steps`` such steps at the
measured state before any estimate is drawn (untimed: ``setup_seconds``), each over
:data:`FIT_SAMPLES` samples; ``rpbench train`` calls :meth:`Nvil.adapt` after every step: one
fitting step over the step's ``batch`` samples (the paper fits the baseline online, on the
training samples).  The baseline network's forward pass is not an evaluation of f: the cost is
``n``.

Variance normalisation (``normalize=1``; the paper's §3): the estimate is divided by
``max(1, σ̂)``, with ``σ̂²`` the running mean (same decay) of the squared centred signal
``(f − b)²`` measured while fitting, fixed for the cell.  Then ``E ĝ = ∇L / max(1, σ̂)``: the
direction is unbiased, the scale is not, so ``normalize=1`` rows are labelled ``biased``.  (The
paper divides only the learning signal, the score term, and leaves the generative model's
gradient ``∇θ log p(x, h)`` unscaled; a VAE here has an analytic KL in ``f``, so dividing only the
score term would bias the encoder's direction.  Dividing the whole estimate is what keeps its
direction; with Adam, a constant scale of the encoder's gradient is nearly a no-op.)
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

import torch

from rpbench.estimators.base import Estimator, tree_map
from rpbench.estimators.score import score_estimates
from rpbench.params import Number, ParamSpec, at_least
from rpbench.registry import register_estimator
from rpbench.tasks.base import Task, Theta
from rpbench.tasks.protocols import Conditioned

BASELINE_HIDDEN = 100
"""Tanh units of ``C_ψ``'s hidden layer: ``n_hidden=100`` in Tucker et al.'s ``_create_baseline`` (one
tanh layer, a linear output); Archer & Merel's Theano NVIL also uses a 100-unit hidden layer."""
FIT_SAMPLES = 16
"""Fresh samples of z per fitting step in :meth:`Nvil.prepare` (each gives one f per unit)."""
FIT_LR = 1e-2
"""Adam's learning rate for ψ: Tucker et al. train the baseline at 10× the model's learning rate
(``rpbench train``'s default is 1e-3)."""
FIT_STEPS = 100
"""Default fitting steps at the measured state.  Measured (default discrete-vae and bernoulli-vae,
K = 1000 estimates of n = 1, the encoder's variance with its 95% interval): the variance falls from
0.404 and 57.6 (untrained: c at the pilot mean) to 0.343 and 39.8 after 25 steps, and is flat from
50 steps on (0.329–0.339 and 38.7–39.6, overlapping intervals, up to 800 steps); 100 is on the plateau."""
SIGNAL_DECAY = 0.8
"""Decay α of the running mean ``c`` and of the running squared signal ``σ̂²`` (the paper's Algorithm 1
keeps both as exponential moving averages; 0.8 is the paper's α as we know it, not checked against a
stored copy; Archer & Merel's Theano NVIL takes α as a setting)."""


def zero_or_one(value: Number) -> str | None:
    """Range check of a switch: 0 or 1."""
    return None if value in (0, 1) else "0 or 1"


@register_estimator
class Nvil(Estimator):
    """NVIL: score function with the baseline ``c + C_ψ(x_u)`` fitted to each unit's objective.

    Mnih & Gregor (2014), "Neural Variational Inference and Learning in Belief Networks", ICML,
    §3 and Algorithm 1.  Unbiased with ``normalize=0`` (the default); ``normalize=1`` divides the
    estimate by ``max(1, σ̂)`` (the paper's variance normalisation), which biases its scale (not
    its direction), and labels the rows biased.  Where the task offers inputs
    (:class:`~rpbench.tasks.protocols.Conditioned`) ``C_ψ`` reads them; otherwise the baseline is
    the scalar ``c``.  See the module's docstring for the fitting.
    """

    name = "nvil"
    summary = "score function, learned input-dependent baseline c + C_psi(x) (NVIL); normalize=1: scale-biased"
    reference = "Mnih & Gregor 2014 §3"
    needs = frozenset({"log-prob"})
    biased_when = "normalize=1"
    params = (
        ParamSpec(
            "baseline_hidden",
            int,
            BASELINE_HIDDEN,
            "tanh hidden units of the baseline network C_psi(x)",
            check=at_least(1),
            expect="an integer >= 1",
        ),
        ParamSpec(
            "fit_steps",
            int,
            FIT_STEPS,
            "fitting steps of the baseline at the measured state (untimed)",
            check=at_least(0),
            expect="an integer >= 0",
        ),
        ParamSpec(
            "normalize",
            int,
            0,
            "1: divide by max(1, sigma) of the centred signal (scale-biased)",
            check=zero_or_one,
            expect="0 or 1",
        ),
    )

    # -- the baseline ------------------------------------------------------------------------------
    def is_biased(self) -> bool:
        """``normalize=1`` divides the estimate by ``max(1, σ̂)``: the right direction at the wrong scale."""
        return bool(int(self.config.get("normalize", 0)))

    def prepare(self, task: Task, batch: int, generator: torch.Generator) -> None:
        """Fresh baseline at the current state: ``c`` and ``σ̂²`` from one pilot draw (the mean and the
        mean squared deviation of f), ``C_ψ`` with a zero output layer, then ``fit_steps`` fitting steps."""
        self.network = self._initial_network(task, generator)
        self._optimizer = torch.optim.Adam(list(self.network.values()), lr=FIT_LR) if self.network else None
        f = _objective_values(task, task.noise(generator, (FIT_SAMPLES,)))
        self.offset = f.mean()
        self.signal_square = ((f - self.offset) ** 2).mean()
        for _ in range(int(self.config["fit_steps"])):
            self._fit_step(task, FIT_SAMPLES, generator)

    def adapt(self, task: Task, batch: int, generator: torch.Generator) -> None:
        """Online, as in the paper: one fitting step over ``batch`` fresh samples at the current state."""
        if not hasattr(self, "offset"):
            raise RuntimeError(f"{self.name}: prepare() must run before adapt()")
        self._fit_step(task, batch, generator)

    def baseline(self, task: Task) -> torch.Tensor:
        """``b_u = c + C_ψ(x_u)`` per unit at the task's current inputs, ``(U,)`` (``(1,)``: ``c``, where
        the task has no inputs), without gradients."""
        if not hasattr(self, "offset"):
            raise RuntimeError(f"{self.name}: prepare() must run before estimate()")
        with torch.no_grad():
            return self.offset + self._learned(task)

    @property
    def scale(self) -> torch.Tensor:
        """``max(1, σ̂)``: what ``normalize=1`` divides the estimate by."""
        return self.signal_square.sqrt().clamp_min(1.0)

    def _initial_network(self, task: Task, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """ψ: a tanh layer initialised as ``torch.nn.Linear`` is (uniform ±1/√features, here with a
        zero bias) and a zero output layer (so the untrained baseline is ``c``); empty without inputs."""
        if not isinstance(task, Conditioned):
            return {}
        features = task.inputs.shape[-1]
        hidden = int(self.config["baseline_hidden"])
        dtype, device = task.dtype, task.device
        bound = 1.0 / math.sqrt(features)
        first = (torch.rand(hidden, features, generator=generator, dtype=dtype, device=device) * 2 - 1) * bound
        params = {
            "hidden.weight": first,
            "hidden.bias": torch.zeros(hidden, dtype=dtype, device=device),
            "out.weight": torch.zeros(hidden, dtype=dtype, device=device),
        }
        return {k: v.requires_grad_(True) for k, v in params.items()}

    def _learned(self, task: Task) -> torch.Tensor:
        """``C_ψ(x_u)`` per unit, ``(U,)`` (a zero ``(1,)``, broadcasting, where the task has no inputs)."""
        if not self.network:
            return torch.zeros(1, dtype=task.dtype, device=task.device)
        x = task.inputs  # type: ignore[attr-defined]
        hidden = torch.tanh(x @ self.network["hidden.weight"].T + self.network["hidden.bias"])
        return hidden @ self.network["out.weight"]

    def _fit_step(self, task: Task, samples: int, generator: torch.Generator) -> None:
        """One step of Algorithm 1 on ``samples`` fresh samples: Adam on ``mean (f − c − C_ψ(x))²``
        for ψ, then the running mean ``c`` and the running squared signal ``σ̂²`` (both at the old c)."""
        f = _objective_values(task, task.noise(generator, (samples,)))  # (samples, U)
        learned = self._learned(task)
        if self._optimizer is not None:
            loss = ((f - self.offset - learned) ** 2).mean()
            self._optimizer.zero_grad()
            loss.backward()
            self._optimizer.step()
        residual = f - learned.detach()
        signal_square = ((residual - self.offset) ** 2).mean()
        self.offset = SIGNAL_DECAY * self.offset + (1 - SIGNAL_DECAY) * residual.mean()
        self.signal_square = SIGNAL_DECAY * self.signal_square + (1 - SIGNAL_DECAY) * signal_square

    # -- checkpoints -------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """``c``, ``σ̂²``, ψ and ψ's Adam state (after :meth:`prepare`), copied: later steps do not change it."""
        if not hasattr(self, "offset"):
            return {}
        return {
            "offset": self.offset.clone(),
            "signal_square": self.signal_square.clone(),
            "network": {k: v.detach().clone() for k, v in self.network.items()},
            "optimizer": copy.deepcopy(self._optimizer.state_dict()) if self._optimizer is not None else {},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from a checkpoint: ψ's tensors are copied into the ones Adam holds."""
        if not hasattr(self, "offset") or set(state.get("network", {})) != set(self.network):
            raise ValueError(f"{self.name}: a checkpoint needs prepare() first and the baseline's parameters")
        self.offset = state["offset"].clone()
        self.signal_square = state["signal_square"].clone()
        with torch.no_grad():
            for key, value in self.network.items():
                value.copy_(state["network"][key])
        if self._optimizer is not None:
            self._optimizer.load_state_dict(state["optimizer"])

    # -- the estimate ------------------------------------------------------------------------------
    def estimate(self, task: Task, samples: int, batch: int, generator: torch.Generator) -> Theta:
        b = self.baseline(task)
        noise = task.noise(generator, (samples, batch))
        estimates = score_estimates(task, noise, b.expand(samples, -1))
        if not int(self.config.get("normalize", 0)):
            return estimates
        scale = self.scale
        return tree_map(lambda g: g / scale, estimates)


def _objective_values(task: Task, noise: torch.Tensor) -> torch.Tensor:
    """``f(z)`` for noise ``(m, ...)`` at the task's θ, without gradients: ``(m, U)``."""
    with torch.no_grad():
        return task.objective(task.theta, task.sample(task.theta, noise))
