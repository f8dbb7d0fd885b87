"""What estimators and the layers above may call on a task beyond :class:`~rpbench.tasks.base.Task`.

One protocol per latent family, and one per optional hook.  A capability that implies methods
(:data:`rpbench.tasks.base.CAPABILITIES`) names its protocol here (:data:`PROTOCOLS`): a task that
offers the capability declares the protocol among its bases, and an estimator that needs the
capability narrows its task to the protocol (:func:`rpbench.estimators.base.as_protocol`) before it
calls the methods.  ``tests/test_conformance.py`` checks every registered task against them.

Shapes below: ``S`` is the sample shape an estimator asks for (``(K, n)`` for K estimates of n
samples, or ``(n,)`` inside one lane of a ``vmap``), ``U`` the units of the objective (a VAE's
minibatch), ``L`` latent variables, ``C`` categories, ``D`` a Gaussian's dimension.  The protocols
are ``runtime_checkable``: ``isinstance`` sees that the members exist, not their shapes, which the
docstrings state and the conformance test exercises.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol, runtime_checkable

import torch

from rpbench.tasks.base import Theta

ThetaPullback = Callable[[Theta], Theta]
"""Maps K per-estimate gradients with respect to an amortized θ′ to K with respect to θ."""

ModelState = dict[str, dict[str, torch.Tensor]]
"""A network model's parameters: group (``encoder``, ``decoder``) → parameter name → tensor."""


class LatentFamily(Protocol):
    """A discrete latent family with its perturbation noise (:mod:`rpbench.distributions`).

    The hard sample is a threshold of perturbed logits ``z = logits + noise``; its relaxation at
    temperature τ is ``soft(z, τ)`` (Jang, Gu & Poole 2017; Maddison, Mnih & Teh 2017), and
    ``conditional`` draws ``z`` given the hard sample (Tucker et al. 2017, REBAR; Paulus, Maddison
    & Krause 2021, Gumbel-Rao).  Shapes: ``logits`` and ``z`` ``(..., *event)`` with ``event``
    ``(L, C)`` (categorical) or ``(L,)`` (Bernoulli); ``log_prob`` sums the event axes.
    """

    event_dims: int
    """Number of trailing axes of one unit's latent: 2 (``L, C``) or 1 (``L``)."""

    @staticmethod
    def perturbation(
        generator: torch.Generator, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device
    ) -> torch.Tensor:
        """Noise of ``shape`` (Gumbel(0, 1) or Logistic(0, 1)) to add to the logits."""
        ...

    @staticmethod
    def hard(z: torch.Tensor) -> torch.Tensor:
        """The hard sample of perturbed logits ``z`` (one-hot over the last axis, or ``1[z > 0]``), same shape."""
        ...

    @staticmethod
    def soft(z: torch.Tensor, tau: float | torch.Tensor) -> torch.Tensor:
        """The relaxation ``softmax(z/τ)`` or ``σ(z/τ)``, same shape as ``z``."""
        ...

    @staticmethod
    def log_prob(logits: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """``log q(b)`` for hard samples ``b`` ``(..., *event)``, summed over the event: ``(...)``."""
        ...

    @staticmethod
    def kl_to_uniform(logits: torch.Tensor) -> torch.Tensor:
        """``KL(q ‖ uniform)`` summed over the event: ``(...)``."""
        ...

    @staticmethod
    def conditional(logits: torch.Tensor, b: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Perturbed logits drawn given ``hard(z) = b``, reparameterized by uniform ``v`` (``b``'s shape,
        broadcasting); differentiable in ``logits``."""
        ...


@runtime_checkable
class RelaxableLatent(Protocol):
    """Capability ``relaxable``: discrete latents ``b = latent.hard(logits + noise)`` with a relaxation.

    Relaxed estimators (Gumbel-Softmax, ST-Gumbel, Gumbel-Rao), REBAR and RELAX call these.  The
    task's :meth:`~rpbench.tasks.base.Task.noise` draws ``latent.perturbation`` of shape
    ``(*S, *latent_shape)`` and its ``objective`` accepts relaxed (continuous) latents of that
    shape as well as hard ones.
    """

    @property
    def latent(self) -> LatentFamily:
        """The family (:class:`rpbench.distributions.Categorical` or :class:`~rpbench.distributions.Bernoulli`)."""
        ...

    @property
    def event_dims(self) -> int:
        """Trailing axes of one unit's latent (``latent.event_dims``)."""
        ...

    @property
    def latent_shape(self) -> tuple[int, ...]:
        """One sample's latent shape: ``(U, L, C)`` (categorical) or ``(U, L)`` (Bernoulli)."""
        ...

    def logits(self, theta: Theta) -> torch.Tensor:
        """The logits of q at ``theta``: ``latent_shape``; differentiable in θ."""
        ...

    def perturb(self, theta: Theta, noise: torch.Tensor) -> torch.Tensor:
        """Perturbed logits ``z = logits(θ) + noise`` for noise ``(*S, *latent_shape)``: same shape;
        differentiable in θ.  The sample is ``latent.hard(z)``."""
        ...

    def uniform(self, generator: torch.Generator, shape: tuple[int, ...]) -> torch.Tensor:
        """Uniform noise in (0, 1) of shape ``(*shape, *latent_shape)`` for ``latent.conditional``."""
        ...


@runtime_checkable
class CategoricalLatent(RelaxableLatent, Protocol):
    """Capability ``categorical``: ``L`` categorical latents of ``C`` classes per unit, Gumbel-max.

    ``latent`` is :class:`rpbench.distributions.Categorical`; ``latent_shape`` is ``(U, L, C)``,
    the noise Gumbel(0, 1), the hard sample one-hot over the last axis (Jang, Gu & Poole 2017).
    """

    @property
    def categories(self) -> int:
        """The number of classes ``C`` (the last axis of ``latent_shape``)."""
        ...


@runtime_checkable
class BernoulliLatent(RelaxableLatent, Protocol):
    """Capability ``bernoulli``: ``L`` Bernoulli latents per unit with logistic noise.

    ``latent`` is :class:`rpbench.distributions.Bernoulli`; ``latent_shape`` is ``(U, L)``, the
    noise Logistic(0, 1) (symmetric, so ``logits − noise`` is the antithetic perturbation that ARM
    and DisARM use: Yin & Zhou 2019; Dong, Mnih & Tucker 2020) and ``b = 1[z > 0]``.  Its
    members are :class:`RelaxableLatent`'s; the capability declares the shapes.
    """


@runtime_checkable
class GaussianLatent(Protocol):
    """Capability ``gaussian``: ``q_θ = N(μ, diag σ²)`` over a ``D``-vector, one unit.

    θ has the groups ``mu`` and ``sigma`` (the standard deviation), each ``(D,)``; the noise is
    standard normal ``(*S, D)`` and ``sample`` is ``μ + σ ε``.  The objective takes points of
    shape ``(..., D)`` with any leading axes (measure-valued derivatives evaluate it on ``(K, n,
    D, D)`` blocks, the delta method at ``μ``) and returns ``(..., 1)``.  Mohamed et al. (2020),
    JMLR 21(132), §6 (MVD) and §8.1 (delta method) assume this form.
    """

    dim: int
    """The dimension ``D``."""

    def noise(self, generator: torch.Generator, shape: tuple[int, ...]) -> torch.Tensor:
        """Standard normal noise ``(*shape, D)``."""
        ...

    def sample(self, theta: Theta, noise: torch.Tensor) -> torch.Tensor:
        """``θ["mu"] + θ["sigma"] · noise``: ``(*S, D)``."""
        ...

    def objective(self, theta: Theta, z: torch.Tensor) -> torch.Tensor:
        """``Σ_d g(z_d)`` for points ``(..., D)``: ``(..., 1)``."""
        ...


@runtime_checkable
class ImportanceWeighted(Protocol):
    """Capability ``importance-weighted``: each unit's objective is built from M particles' log weights.

    A sample of such a task holds ``M = particles`` independent particles per unit, laid out along
    the latent-variable axis (particle-major: variable ``m·L + l`` is variable ``l`` of particle
    ``m``), so estimators that treat the latents as independent variables see the M-fold product
    distribution.  With ``M ≥ 2`` the unit's objective is the importance-weighted bound
    ``log (1/M) Σ_m w_m`` (Burda, Grosse & Salakhutdinov 2016); with ``M = 1`` it is the ELBO (with
    whatever closed-form terms the task uses), whose expectation equals ``E[log w]``.  Estimators
    designed for the bound (VIMCO: Mnih & Rezende 2016; DReG: Tucker, Lawson, Gu & Maddison 2019)
    read the per-particle terms; shapes: ``z`` is ``(*S, *latent_shape)``, the results ``(*S, U, M)``.
    """

    @property
    def particles(self) -> int:
        """The number of particles ``M`` per unit (1: the ELBO)."""
        ...

    def particle_log_joint(self, theta: Theta, z: torch.Tensor) -> torch.Tensor:
        """``log p_θ(x_u, z_um)`` per unit and particle: ``(*S, U, M)``; differentiable in θ and in z."""
        ...

    def particle_log_prob(self, theta: Theta, z: torch.Tensor) -> torch.Tensor:
        """``log q_θ(z_um | x_u)`` per unit and particle: ``(*S, U, M)``; differentiable in θ and in z."""
        ...


@runtime_checkable
class Amortized(Protocol):
    """Optional hook: a noise-free part of θ (a VAE's encoder) can be run once for all K estimates.

    :func:`rpbench.estimators.base.per_estimate_gradients` uses it when an estimator passes
    ``amortize=amortizer(task)``; a task without it is differentiated with respect to θ itself.
    """

    def encode(self, theta: Theta) -> torch.Tensor:
        """The encoder's output on the measured minibatch, ``(U, out)``; where ``theta["encoder"]``
        is already that output (θ′ from :meth:`amortize`) it is returned as is."""
        ...

    def encoded(self, theta: Theta) -> Theta:
        """θ with the ``encoder`` group replaced by its output, computed with autograd (differentiable
        with respect to the encoder's weights): one estimate reads it as often as it likes."""
        ...

    def amortize(self, theta: Theta) -> tuple[Theta, ThetaPullback]:
        """θ′ (θ with the ``encoder`` group replaced by its output ``(U, out)``) and the pullback
        that maps K gradients ``{…, "encoder": (K, U, out)}`` to ``{…, "encoder": {name: (K, *param)}}``."""
        ...


@runtime_checkable
class Conditioned(Protocol):
    """Optional hook: each unit of the objective has an observed input (a VAE's image ``x_u``).

    Learned baselines and control variates that take the input as well as the sample (NVIL's
    ``C_ψ(x)``: Mnih & Gregor 2014; RELAX's ``c_φ(z, x)``: Grathwohl et al. 2018) read it here; on
    a task without it they see no input.
    """

    @property
    def inputs(self) -> torch.Tensor:
        """The units' inputs at the measured state, ``(U, features)``, in the task's dtype and device."""
        ...


@runtime_checkable
class ReferenceTruth(Protocol):
    """Optional hook: where no exact gradient is known, the truth is a reference (:mod:`rpbench.truth`)."""

    @property
    def reference_estimator(self) -> tuple[str, dict[str, object], int]:
        """``(estimator name, parameter overrides, samples per estimate)`` of an unbiased estimator."""
        ...

    @property
    def reference_samples(self) -> int:
        """Total samples of the reference (``reference_samples // batch`` estimates are averaged)."""
        ...


@runtime_checkable
class Trainable(Protocol):
    """Optional hook: the measured model state is reached by training (:mod:`rpbench.training`).

    The task holds its initial state and its data; the layer above runs ``training_steps`` steps
    of ``train_estimator`` on minibatches from :meth:`draw_minibatch`, each evaluated inside
    :meth:`evaluated_at`, and hands the result to :meth:`load_state`.  Until then a task with
    ``training_steps > 0`` has no state (``has_state`` is false and its ``theta`` raises).
    """

    @property
    def train_estimator(self) -> tuple[str, dict[str, object], int]:
        """``(estimator name, parameter overrides, samples per estimate)`` that trains the model."""
        ...

    @property
    def training_steps(self) -> int:
        """Optimizer steps from the initial state to the measured state (0: measure at initialisation)."""
        ...

    @property
    def model_seed(self) -> int:
        """The seed of the initialisation; training seeds its noise and minibatches from it."""
        ...

    @property
    def state_key(self) -> tuple[object, ...]:
        """What determines the trained state (task name and configuration): a cache key."""
        ...

    @property
    def has_state(self) -> bool:
        """Whether ``theta`` is the state to measure (false until a task that needs training is trained)."""
        ...

    def initial_state(self) -> ModelState:
        """A fresh copy of the initialisation drawn from ``model_seed``, on the CPU."""
        ...

    def draw_minibatch(self, generator: torch.Generator) -> torch.Tensor:
        """A random training minibatch ``(U, pixels)`` (binarised as configured) on ``device``."""
        ...

    def evaluated_at(self, theta: ModelState, x: torch.Tensor) -> AbstractContextManager[None]:
        """Inside the block the task is at model state ``theta`` (its tensors used as given, so an
        optimizer may step them in place) on images ``x``; afterwards it is as it was."""
        ...

    def load_state(self, theta: ModelState) -> None:
        """Set the model state to measure (tensors of :meth:`initial_state`'s structure)."""
        ...


PROTOCOLS: dict[str, type] = {
    "relaxable": RelaxableLatent,
    "categorical": CategoricalLatent,
    "bernoulli": BernoulliLatent,
    "gaussian": GaussianLatent,
    "importance-weighted": ImportanceWeighted,
}
"""Capability → the protocol a task that offers it implements."""


def protocol_members(protocol: type) -> list[str]:
    """The public members (methods, properties, attributes) a protocol declares, its bases' included."""
    names: set[str] = set()
    for base in protocol.__mro__:
        if base.__dict__.get("_is_protocol") and base.__module__ == __name__:
            names.update(vars(base).get("__annotations__", {}))
            names.update(name for name in vars(base) if not name.startswith("_"))
    return sorted(names)
