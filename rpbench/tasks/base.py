"""The task contract: a stochastic objective ``L(θ) = E_{z~q_θ}[f_θ(z)]`` and its truth.

A task instance is one configuration (one point of a sweep) on one device.  It exposes

* ``theta``: the parameters as a dict of named *groups* (``{"mu": ..., "sigma": ...}``); each
  group is reported in its own CSV row;
* a sampler ``sample(theta, noise)`` over base noise drawn by ``noise`` (differentiable in θ
  where the task is reparameterizable);
* ``log_prob(theta, z)`` and the objective ``objective(theta, z)``, both per sample and per
  *unit*: shape ``(*sample_shape, U)``.  A unit is one independent term of the objective (an
  example of a VAE's minibatch; the Gaussian toy has one), ``L(θ) = mean_u E_q[f_u(z_u)]``, so
  score-function estimators weight each unit's score by that unit's own learning signal;
* ``capabilities``: what estimators may rely on (see :data:`CAPABILITIES`);
* ``exact_gradient()``: the true gradient per group, when it is known.

A capability that implies more methods (a latent family's: ``logits``, ``perturb``, conditional
draws, …) implies a protocol of :mod:`rpbench.tasks.protocols`, which the task lists among its
bases; so do the optional hooks (``amortize``, a reference truth, what training needs).  Tasks
import nothing of estimators, the registry or training: those layers sit above them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import torch

from rpbench.params import Config, ParamSpec

DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "float64": torch.float64}
"""The precisions a task's ``dtype`` parameter offers, by name."""


def dtype_param(default: str) -> ParamSpec:
    """The ``dtype`` parameter of a task family whose precision is a choice, at its family's ``default``.

    θ, the noise, the samples and so every estimate are in this precision; the moments are
    accumulated in float64 whatever it is (:mod:`rpbench.moments`).  Neutral: at the default it
    stays out of the cells' seeds, so the numbers published before it existed reproduce bit for bit.
    """
    return ParamSpec(
        "dtype",
        str,
        default,
        "floating-point precision of θ, the noise, the samples and the estimates",
        choices=tuple(DTYPES),
        neutral=True,
    )


Theta = dict[str, Any]
"""Parameter groups: group name → a tensor (the Gaussian toy's ``mu``, ``sigma``) or, for networks,
a dict of named tensors (a VAE's ``encoder``, ``decoder``); walked by
:func:`rpbench.estimators.base.tree_leaves` / ``tree_map``.  Typed ``Any`` per group because the
two shapes of tree share one type; the latent-family protocols say which shape a task's groups take."""

CAPABILITIES: dict[str, str] = {
    "reparameterizable": "z = g_θ(ε) with ε from a fixed base distribution (pathwise applies)",
    "log-prob": "log q_θ(z) is available (score-function estimators apply)",
    "differentiable": "f is twice differentiable in z (Taylor / delta-method control variates apply)",
    "gaussian": "q_θ is a diagonal Gaussian with groups mu and sigma (MVD, delta method); protocol GaussianLatent",
    "relaxable": (
        "discrete latents b = H(logits + noise) with a continuous relaxation and conditional draws of the "
        "noise given b (Gumbel-Softmax, Gumbel-Rao, REBAR, RELAX); protocol RelaxableLatent"
    ),
    "categorical": "the latents are categorical, one-hot, with Gumbel noise; protocol CategoricalLatent",
    "bernoulli": (
        "the latents are Bernoulli with logistic noise, so antithetic pairs apply (ARM, DisARM); "
        "protocol BernoulliLatent"
    ),
    "importance-weighted": (
        "the objective's unit is log (1/M) Σ_m w_m over M particles with per-particle log weights "
        "log w_m = log p(x, z_m) − log q(z_m | x) (VIMCO, DReG); protocol ImportanceWeighted"
    ),
}
"""Capability → meaning.  A capability that implies methods names its protocol (the classes in
:mod:`rpbench.tasks.protocols`, mapped in :data:`rpbench.tasks.protocols.PROTOCOLS`).  Every
capability a task offers or an estimator needs is listed here; a plugin that introduces one adds
its entry before it registers the estimator that needs it."""


class Task(ABC):
    """One configuration of a task family.  Subclasses register with ``@register_task``."""

    name: ClassVar[str]
    summary: ClassVar[str]
    params: ClassVar[tuple[ParamSpec, ...]]
    offers: ClassVar[str] = ""
    """What ``list`` shows of the capabilities (a configuration's own are in ``capabilities``)."""
    dtype: torch.dtype = torch.float32
    """The precision of θ, the noise, the samples and so the estimates.  A family that declares a
    ``dtype`` parameter (:func:`dtype_param`) follows its configuration (the parameter's default
    where a configuration leaves it out); one that does not keeps this class attribute."""

    def __init__(self, config: Mapping[str, object], device: torch.device) -> None:
        self.config: Config = dict(config)  # type: ignore[arg-type]
        self.device = device
        declared = next((p for p in type(self).params if p.name == "dtype"), None)
        if declared is not None:
            self.dtype = DTYPES[str(self.config.get("dtype", declared.default))]

    # -- what estimators use ------------------------------------------------------------
    @property
    @abstractmethod
    def theta(self) -> Theta:
        """The parameters, one tensor per group, on ``self.device``."""

    @property
    @abstractmethod
    def capabilities(self) -> frozenset[str]:
        """Which of :data:`CAPABILITIES` this configuration offers."""

    @abstractmethod
    def noise(self, generator: torch.Generator, shape: tuple[int, ...]) -> torch.Tensor:
        """Base noise ε for ``shape`` samples (``shape + event_shape``)."""

    @abstractmethod
    def sample(self, theta: Theta, noise: torch.Tensor) -> torch.Tensor:
        """Reparameterized samples ``z = g_θ(ε)``; differentiable in ``theta``."""

    @abstractmethod
    def log_prob(self, theta: Theta, z: torch.Tensor) -> torch.Tensor:
        """``log q_θ(z_u)`` per unit, summed over each unit's event dimensions: ``(*sample, U)``."""

    @abstractmethod
    def objective(self, theta: Theta, z: torch.Tensor) -> torch.Tensor:
        """``f_θ,u(z_u)`` per unit: ``(*sample, U)``; the loss is its mean over units."""

    broadcasts_theta: ClassVar[bool] = False
    """``sample``, ``log_prob`` and ``objective`` accept θ's tensors with leading batch dimensions
    that broadcast against the samples' (elementwise models such as the Gaussian toy): estimators
    may then differentiate K copies of θ in one backward (:func:`rpbench.estimators.base.copy_gradients`)."""

    variational_groups: ClassVar[tuple[str, ...]] = ()
    """Groups of q's own parameters (e.g. ``("encoder",)``); empty means every group."""

    def without_model_gradient(self, theta: Theta) -> Theta:
        """``theta`` with the objective's own parameters (a decoder) detached.

        Control variates built from f (REBAR, RELAX) use it so that they reduce the variance of
        the variational parameters' gradient without adding noise to the model's.
        """
        return theta

    # -- truth -------------------------------------------------------------------------
    def exact_gradient(self) -> Theta | None:
        """The true gradient of ``L`` per group, or ``None`` where it is not known.

        Computed in the task's :attr:`dtype` or in a higher precision (the Gaussian toy's closed
        forms are float64 in either precision; a VAE's enumeration is in its ``dtype``)."""
        return None

    def exact_value(self) -> float | None:
        """The true objective ``L(θ)``, or ``None`` where it is not known."""
        return None

    @property
    def truth_kind(self) -> str:
        """How ``exact_gradient`` is obtained: ``closed-form`` or ``enumeration``."""
        return "closed-form"

    truth: ClassVar[str] = "closed-form"
    trains: ClassVar[str] = ""
    """What ``rpbench train`` optimises on this task (``list`` shows it); empty: it cannot be trained."""
    """What ``list`` says about the truth of this task family."""
