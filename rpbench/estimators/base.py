"""The estimator contract and the batched-gradient helper every surrogate estimator uses.

An estimator turns samples into K independent gradient estimates at once::

    estimates = estimator.estimate(task, samples=K, batch=n, generator=g)
    # {"mu": Tensor(K, D), "sigma": Tensor(K, D)}: one row per independent estimate

Most estimators are a *surrogate loss* per estimate whose autograd gradient is the estimate
(score function: ``stop_grad(f(z)) log q_θ(z)``; pathwise: ``f(g_θ(ε))``).
:func:`per_estimate_gradients` evaluates ``∇θ surrogate`` for all K estimates in one
``torch.func.vmap`` over noise drawn beforehand from the cell's seeded generator (randomness
inside vmap would give every lane the same noise).  Estimators that are not the gradient of one
surrogate (measure-valued derivatives, for one) return their estimates directly through the same
signature.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar, cast

import torch
from torch.func import grad, vmap

from rpbench.params import Config, ParamSpec
from rpbench.tasks.base import CAPABILITIES, Task, Theta
from rpbench.tasks.protocols import Amortized, protocol_members


class Estimator(ABC):
    """One configured estimator.  Subclasses register with ``@register_estimator``.

    Class attributes declare what ``list`` shows and what decides applicability:
    ``needs`` (task capabilities, see :data:`rpbench.tasks.base.CAPABILITIES`; checked when the
    class registers), ``min_batch`` (samples per estimate it requires), ``biased`` (biased by
    construction), ``reference``.  Where a capability implies a protocol
    (:data:`rpbench.tasks.protocols.PROTOCOLS`), ``estimate`` reaches the task's extra methods
    through :func:`as_protocol`.
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    reference: ClassVar[str]
    params: ClassVar[tuple[ParamSpec, ...]] = ()
    needs: ClassVar[frozenset[str]] = frozenset()
    min_batch: ClassVar[int] = 1
    biased: ClassVar[bool] = False
    biased_when: ClassVar[str] = ""
    """The configurations that are biased where the estimator is not biased in every one (``list``
    shows it; :meth:`is_biased` decides for a configuration)."""
    cost: ClassVar[str] = "n"
    """Evaluations of f per estimate as ``list`` shows them, in ``n`` (samples per estimate) and the
    task's sizes (``D``, ``L``, ``C``); :meth:`evaluations` computes the number for a task."""

    def __init__(self, config: Mapping[str, object] | None = None) -> None:
        self.config: Config = dict(config or {})  # type: ignore[arg-type]

    @classmethod
    def why_not(cls, task: Task, batch: int) -> str | None:
        """Why this estimator does not apply to ``task`` with ``batch`` samples, or ``None``."""
        missing = sorted(cls.needs - task.capabilities)
        if missing:
            needs = "; ".join(f"{m} ({CAPABILITIES.get(m, m)})" for m in missing)
            return f"needs {needs}"
        if batch < cls.min_batch:
            return f"needs --batch >= {cls.min_batch} samples per estimate; got --batch {batch}"
        return None

    def is_biased(self) -> bool:
        """Whether this configuration is biased by construction (the results' ``biased`` column):
        :attr:`biased`, unless a parameter makes it so (:attr:`biased_when`)."""
        return type(self).biased

    def evaluations(self, task: Task, batch: int) -> int:
        """Evaluations of the objective f per estimate of ``batch`` samples: the unit of equal-cost
        comparisons (the ``evaluations`` column, ``run --equal-cost``).  One per sample unless an
        estimator evaluates f more often (ARM twice, REBAR three times, MVD 4·D times); work done
        once per cell (a pilot, tuning, a Taylor expansion) is not counted."""
        return batch

    def memory_factor(self, task: Task) -> float:
        """How many times a plain sample's activations one of this estimator's samples holds.

        The engine sizes its chunks from it (:func:`rpbench.engine.bytes_per_estimate`); estimators
        that evaluate f many times per sample (one per coordinate, per relaxation) say so.
        """
        return 1.0

    def prepare(self, task: Task, batch: int, generator: torch.Generator) -> None:  # noqa: B027
        """One-off set-up at the measured model state (e.g. tuning a control variate); untimed.

        The engine calls it once per cell, before the estimates are drawn, with its own seeded
        generator; its wall-clock time is reported as ``setup_seconds``.
        """

    def adapt(self, task: Task, batch: int, generator: torch.Generator) -> None:  # noqa: B027
        """Online update of learned parts (a control variate) after a training step; untimed in ``run``.

        ``rpbench train`` calls it after every step, at the new model state, and counts its time in
        the step's cost; estimators without learned parts do nothing.
        """

    def state_dict(self) -> dict[str, Any]:
        """What :meth:`adapt` has learned, for a training checkpoint (empty: nothing is learned online).

        Estimators that override :meth:`adapt` override this and :meth:`load_state_dict`, so that a
        resumed training run continues exactly where it stopped.
        """
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from :meth:`state_dict`'s ``state`` (after :meth:`prepare` at the run's start)."""
        if state:
            raise ValueError(f"{self.name}: learns nothing online, yet its checkpoint holds {sorted(state)}")

    @abstractmethod
    def estimate(self, task: Task, samples: int, batch: int, generator: torch.Generator) -> Theta:
        """``samples`` independent estimates, each from ``batch`` samples: ``{group: (K, ...)}``."""


Surrogate = Callable[..., torch.Tensor]


def tree_leaves(tree: Theta | torch.Tensor) -> list[torch.Tensor]:
    """The tensors of a parameter tree (dicts of tensors or dicts), in order."""
    if isinstance(tree, dict):
        return [leaf for value in tree.values() for leaf in tree_leaves(value)]
    return [tree]


def tree_map(fn: Callable[..., torch.Tensor], *trees: Theta) -> Theta:
    """Apply ``fn`` leaf-wise to parameter trees of the same structure (dicts of tensors or dicts)."""
    first = trees[0]
    if isinstance(first, dict):
        return {key: tree_map(fn, *(tree[key] for tree in trees)) for key in first}
    return fn(*trees)


Amortize = Callable[[Theta], tuple[Theta, Callable[[Theta], Theta]]]
"""A task's ``amortize(θ) -> (θ', pullback)``: θ' stands a noise-free part of θ (a VAE's encoder) by
its output, and ``pullback`` maps K per-estimate gradients with respect to θ' to K with respect to θ."""


def copy_gradients(losses: Callable[[Theta], torch.Tensor], theta: Theta, samples: int) -> Theta:
    """Per-estimate gradients by differentiating K copies of θ in one backward pass (no vmap).

    ``losses(theta_k)`` gets every tensor of θ with a leading ``(K, 1)`` (one copy per estimate,
    broadcasting over the samples inside it) and returns the K per-estimate losses; the gradient of
    their sum with respect to copy k is estimate k's gradient, because estimate k reaches no other
    copy.  For tasks with :attr:`~rpbench.tasks.base.Task.broadcasts_theta` this does the work of
    :func:`per_estimate_gradients` with fewer temporaries (the per-lane bookkeeping of vmap/grad).
    """
    copies = tree_map(lambda t: t.detach().expand(samples, 1, *t.shape).clone().requires_grad_(True), theta)
    leaves = tree_leaves(copies)
    total = losses(copies).sum()
    if total.requires_grad:  # f may not depend on θ at all along the path (a step function)
        grads = torch.autograd.grad(total, leaves, allow_unused=True, materialize_grads=True)
    else:
        grads = tuple(torch.zeros_like(leaf) for leaf in leaves)
    in_order = iter(grads)  # tree_map visits the leaves in tree_leaves' order
    return tree_map(lambda _: next(in_order).squeeze(1), copies)


P = TypeVar("P")


def as_protocol(task: Task, protocol: Callable[..., P], estimator: str) -> P:
    """``task`` as the protocol an estimator needs (a class of :mod:`rpbench.tasks.protocols`), checked.

    A task that offers the capability but lacks the protocol's members is a task's bug; the
    ``TypeError`` names what it lacks.  (``protocol`` is typed as a callable so that type checkers
    accept a protocol class and infer the result's type.)
    """
    if not _is_instance(task, protocol):
        missing = [member for member in protocol_members(protocol) if not hasattr(task, member)]  # type: ignore[arg-type]
        lacks = f" (it lacks {', '.join(missing)})" if missing else ""
        raise TypeError(f"estimator {estimator}: task {task.name} is not a {protocol.__name__}{lacks}")
    return cast(P, task)


@dataclass(frozen=True)
class Amortization:
    """A task's :class:`~rpbench.tasks.protocols.Amortized` hooks: called, θ′ and the pullback (K
    estimates); :meth:`encoded`, θ with the encoder's output computed once, differentiably (one
    estimate: the encoder runs once per step however often the surrogate reads it)."""

    task: Amortized

    def __call__(self, theta: Theta) -> tuple[Theta, Callable[[Theta], Theta]]:
        return self.task.amortize(theta)

    def encoded(self, theta: Theta) -> Theta:
        return self.task.encoded(theta)


def amortizer(task: Task) -> Amortization | None:
    """The task's :class:`~rpbench.tasks.protocols.Amortized` hooks, if it has them."""
    return Amortization(cast(Amortized, task)) if _is_instance(task, Amortized) else None


_CONFORMS: dict[tuple[type, object], bool] = {}


def _is_instance(task: Task, protocol: object) -> bool:
    """``isinstance(task, protocol)`` for a runtime protocol, decided once per task class (the
    members are methods and properties of the class; a runtime check walks them every call)."""
    key = (type(task), protocol)
    if key not in _CONFORMS:
        _CONFORMS[key] = isinstance(task, protocol)  # type: ignore[arg-type]
    return _CONFORMS[key]


def per_estimate_gradients(
    surrogate: Surrogate, theta: Theta, *batched: torch.Tensor, amortize: Amortize | None = None
) -> Theta:
    """``∇θ surrogate(θ, *args_k)`` for every k, as one ``vmap`` over the leading axis of ``batched``.

    ``surrogate(theta, *args)`` must return a scalar for one estimate's arguments.  With
    ``amortize`` (a task's hook, :func:`amortizer`) the ``vmap`` differentiates with respect to
    ``θ'`` (e.g. the encoder's output in place of its weights, computed once rather than per
    estimate) and the hook's pullback maps the K gradients back to ``θ`` in one batched backward.
    The surrogate must reach the replaced part of θ only through the task (as ``task.encode``
    does).  A single estimate (a leading axis of 1: a training step) is one plain autograd call,
    without ``vmap`` or the amortized pullback (the same gradient, without their fixed cost), the
    encoder's output computed once (:meth:`Amortization.encoded`).
    """
    if batched and all(b.shape[0] == 1 for b in batched):  # one estimate (a training step): plain autograd
        copies = tree_map(lambda leaf: leaf.detach().requires_grad_(True), theta)
        leaves = tree_leaves(copies)
        inputs = amortize.encoded(copies) if isinstance(amortize, Amortization) else copies
        value = surrogate(inputs, *(b[0] for b in batched))
        grads = iter(torch.autograd.grad(value, leaves, allow_unused=True, materialize_grads=True))
        return tree_map(lambda _: next(grads).unsqueeze(0), copies)
    in_dims = (None,) + (0,) * len(batched)
    if amortize is None:
        return vmap(grad(surrogate), in_dims=in_dims)(theta, *batched)
    reduced, pullback = amortize(theta)
    return pullback(vmap(grad(surrogate), in_dims=in_dims)(reduced, *batched))
