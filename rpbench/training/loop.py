"""One training run: a task configuration, an estimator configuration and a seed, from the same start.

The seed is the task's ``model_seed``: it fixes the initial model (every estimator of one seed
starts from the same one), the minibatch stream (a CPU generator seeded ``seed + 2``), the
estimator's noise (a generator on the task's device seeded ``seed + 1``, as
:func:`rpbench.training.warmup.train` does), the one-sample minibatch ELBO logged as
``train_elbo`` (``seed + 3``) and the evaluation noise (seeded by the seed alone, so
that step 0 gives the same numbers for every estimator).  Each step: one minibatch of
``minibatch`` images, one gradient estimate of ``batch`` samples per image from the estimator,
one Adam step ascending the task's objective (the ELBO; with ``particles = M ≥ 2`` the
M-sample importance-weighted bound, which trains the IWAE of Burda, Grosse & Salakhutdinov 2016,
and ``train_elbo`` logs that bound), then the estimator's
:meth:`~rpbench.estimators.base.Estimator.adapt` (REBAR's η and λ, RELAX's network: one
variance-descent step at the new state, inside the step's time).  Evaluation points: step 0,
every ``eval_every`` steps, and the last step (``steps``, or where ``time_budget`` seconds of
training ran out).  At every evaluation point the caller's ``save`` gets a :class:`Checkpoint`
(:mod:`rpbench.training.checkpoints` writes it), from which ``start`` continues the run exactly.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import torch

from rpbench.engine import PREPARE_STREAM
from rpbench.errors import error_text
from rpbench.estimators.base import Estimator
from rpbench.tasks.vae import VAETask
from rpbench.training.evaluate import evaluate

_EVAL_STREAM = 0xE7A1
_GENERATORS = ("noise", "minibatches", "elbo_noise")


@dataclass(frozen=True)
class Schedule:
    """How long and how a run trains: steps, evaluation points, Adam's rate, the bound's samples."""

    steps: int
    eval_every: int
    lr: float = 1e-3
    eval_samples: int = 100
    time_budget: float = math.inf
    """Training wall-clock seconds after which the run stops (an equal-time comparison)."""


@dataclass(frozen=True)
class Point:
    """One evaluation point of a run (a row of ``curves.csv`` without the configuration)."""

    step: int
    seconds: float
    train_elbo: float
    eval_elbo: float
    eval_elbo_se: float
    eval_iwae: float
    status: str = "ok"
    error: str = ""
    measured: str = ""
    """``measure.csv``'s records of this point (CSV text), where the run measures estimators (``--measure``)."""


@dataclass
class Checkpoint:
    """A run's state after its last evaluation point (``_Run.state_dict``), its points so far, and
    whether the run is over (its last step reached, its time spent, or failed)."""

    state: dict[str, Any]
    points: list[Point] = field(default_factory=list)
    finished: bool = False


SaveCheckpoint = Callable[[Checkpoint], None]
Measure = Callable[[dict[str, dict[str, torch.Tensor]], int], str]
"""``measure(theta, step)``: the ``measure.csv`` records (CSV text) of the state at an evaluation point."""


def train_curve(
    task: VAETask,
    estimator: Estimator,
    batch: int,
    schedule: Schedule,
    start: Checkpoint | None = None,
    save: SaveCheckpoint | None = None,
    measure: Measure | None = None,
) -> Iterator[Point]:
    """The run's evaluation points, step 0 first (after ``start``'s points, from where it stopped).

    ``save`` gets a checkpoint at every point, before the point is yielded; ``measure`` is called
    at every ``ok`` point (outside the training time) and its text kept as the point's ``measured``.  A non-finite
    gradient or bound, or an exception, ends the run with a failed point at the step where it
    happened (its metrics empty); the caller's other runs go on.
    """
    run = _Run(task, estimator, batch, schedule, save, measure)
    try:
        yield from run.points(start)
    except Exception as exc:  # recorded as the run's last point
        yield run.failed(error_text(exc))


class _Run:
    """The state of one run: the model, Adam, the generators, the step and the clock."""

    def __init__(
        self,
        task: VAETask,
        estimator: Estimator,
        batch: int,
        schedule: Schedule,
        save: SaveCheckpoint | None = None,
        measure: Measure | None = None,
    ) -> None:
        self.task, self.estimator, self.batch, self.schedule = task, estimator, batch, schedule
        self.save, self.measure = save, measure
        self.seed = seed = task.model_seed
        self.theta = {
            group: {k: v.to(task.device).requires_grad_(True) for k, v in params.items()}
            for group, params in task.initial_state().items()
        }
        leaves = [v for params in self.theta.values() for v in params.values()]
        self.optimizer = torch.optim.Adam(leaves, lr=schedule.lr)
        self.noise = torch.Generator(device=task.device).manual_seed(seed + 1)
        self.minibatches = torch.Generator().manual_seed(seed + 2)
        self.elbo_noise = torch.Generator(device=task.device).manual_seed(seed + 3)
        self.images = task.eval_images()
        self.step, self.seconds = 0, 0.0
        self.history: list[Point] = []

    def points(self, start: Checkpoint | None = None) -> Iterator[Point]:
        task, schedule = self.task, self.schedule
        with task.evaluated_at(self.theta, task.draw_minibatch(torch.Generator().manual_seed(self.seed + 2))):
            prepare = torch.Generator(device=task.device).manual_seed(self.seed ^ PREPARE_STREAM)
            self.estimator.prepare(task, self.batch, prepare)  # at the initial state; adapt() follows each step
        if start is None:
            yield self.reached(self.evaluated(math.nan))
        else:
            self.load_state_dict(start.state)
            self.history = list(start.points)
        elbos: list[float] = []
        while self.history[-1].status == "ok" and not self.over():
            self.step += 1
            x = task.draw_minibatch(self.minibatches)
            began = time.perf_counter()
            finite = self.take_step(x)
            self.seconds += time.perf_counter() - began
            if not finite:
                yield self.failed("FloatingPointError: non-finite gradient")
                return
            elbos.append(_minibatch_elbo(task, self.theta, x, self.elbo_noise))
            if self.step % schedule.eval_every == 0 or self.over():
                yield self.reached(self.evaluated(sum(elbos) / len(elbos)))
                elbos = []

    def over(self) -> bool:
        """Whether the run has taken its last step (or spent its training time)."""
        return self.step >= self.schedule.steps or self.seconds >= self.schedule.time_budget

    def reached(self, point: Point) -> Point:
        """``point`` (measured, where the run measures), recorded and checkpointed, before its row is written."""
        if self.measure is not None and point.status == "ok":
            point = dataclasses.replace(point, measured=self.measure(self.theta, self.step))
        self.history.append(point)
        if self.save is not None:
            self.save(Checkpoint(self.state_dict(), list(self.history), point.status != "ok" or self.over()))
        return point

    def state_dict(self) -> dict[str, Any]:
        """Everything the next step depends on: model, Adam, the estimator's learned state, generators, clock."""
        return {
            "theta": {g: {k: v.detach().clone() for k, v in params.items()} for g, params in self.theta.items()},
            "optimizer": self.optimizer.state_dict(),
            "estimator": self.estimator.state_dict(),
            "generators": {name: getattr(self, name).get_state() for name in _GENERATORS},
            "step": self.step,
            "seconds": self.seconds,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict` (after ``prepare`` at the initial state, as a fresh run does)."""
        with torch.no_grad():
            for group, params in self.theta.items():
                for key, value in params.items():
                    value.copy_(state["theta"][group][key])
        self.optimizer.load_state_dict(state["optimizer"])
        self.estimator.load_state_dict(state["estimator"])
        for name in _GENERATORS:
            getattr(self, name).set_state(state["generators"][name])
        self.step, self.seconds = int(state["step"]), float(state["seconds"])

    def take_step(self, x: torch.Tensor) -> bool:
        """One estimate on minibatch ``x`` and one Adam step; whether the gradient was finite."""
        with self.task.evaluated_at(self.theta, x):
            estimate = self.estimator.estimate(self.task, 1, self.batch, self.noise)
        grads = []
        for group, params in self.theta.items():
            gradients = cast(dict[str, torch.Tensor], estimate[group])
            for key, value in params.items():
                value.grad = -gradients[key][0].detach()  # ascend the ELBO
                grads.append(value.grad)
        # a NaN or ±inf anywhere makes its leaf's norm so: one fused kernel and one sync, as
        # torch.nn.utils.clip_grad_norm_ checks (not one isfinite and sync per leaf)
        finite = math.isfinite(float(torch.stack(torch._foreach_norm(grads)).sum()))
        if finite:
            self.optimizer.step()
            with self.task.evaluated_at(self.theta, x):  # learned control variates follow the model
                self.estimator.adapt(self.task, self.batch, self.noise)
        return finite

    def evaluated(self, train_elbo: float) -> Point:
        """The held-out bounds now (the same evaluation noise at every point of every run of this seed)."""
        noise = torch.Generator(device=self.task.device).manual_seed(self.seed ^ _EVAL_STREAM)
        found = evaluate(self.task, self.theta, self.images, self.schedule.eval_samples, noise)
        if not (math.isfinite(found.elbo) and math.isfinite(found.iwae)):
            return failed_point(self.step, self.seconds, "FloatingPointError: non-finite held-out bound")
        return Point(self.step, self.seconds, train_elbo, found.elbo, found.elbo_se, found.iwae)

    def failed(self, error: str) -> Point:
        """A failed point at the current step (the run's last)."""
        return self.reached(failed_point(self.step, self.seconds, error))


def failed_point(step: int, seconds: float, error: str) -> Point:
    """A failed evaluation point at ``step``: no metrics, the error."""
    return Point(step, seconds, math.nan, math.nan, math.nan, math.nan, "failed", error)


@torch.no_grad()
def _minibatch_elbo(task: VAETask, theta: dict, x: torch.Tensor, generator: torch.Generator) -> float:
    """A one-sample ELBO of the minibatch just trained on (outside the step's timing)."""
    with task.evaluated_at(theta, x):
        z = task.sample(theta, task.noise(generator, (1,)))
        return float(task.objective(theta, z).mean())
