"""Measure gradient estimators at a state of a training trajectory, as ``rpbench run`` measures them.

``rpbench train --measure K`` asks, at each evaluation point of a training run, what the gradient
estimators look like *there*: K estimates of the training estimator (or of every estimator that
applies, all at the same state of the trajectory) on the task's fixed measurement minibatch
(:func:`measurement_minibatch`), reduced by the engine into rows with ``results.csv``'s columns.
:func:`measure_at` does one evaluation point: for each cell it enters
``task.evaluated_at(state, x)`` with a detached copy of the state and calls
:func:`rpbench.runner.execute` on that cell, so the rows, the seeds (each cell's generator from
:func:`rpbench.runner.cell_seed_of`, the same at every step: common noise along the trajectory),
the estimator's ``prepare`` (REBAR's and RELAX's control variates are tuned afresh at the state, as
``run`` tunes them), the chunking and the failed rows of a cell that fails are exactly ``run``'s.
:func:`trajectory_rows` adds the keys that place the rows on the trajectory (``trained_with``,
``step``: :func:`rpbench.columns.measure_columns`).

**Truth is exact-only.**  ``run`` compares with :func:`rpbench.truth.truth_of`, which falls back to
a reference gradient (the mean of many samples of an unbiased estimator) computed once per task
*configuration* and cached.  Along a trajectory the configuration stays fixed while the state
moves, so that cached reference would be the truth of another state (the initialisation).  Here
the truth is :func:`rpbench.truth.exact_truth` at the state itself (enumeration of every latent
configuration, e.g. a small ``discrete-vae``), computed anew at every state; where there is none,
``truth`` is ``none`` and ``exact``, ``bias``, ``mse`` and ``cosine`` are empty, as in a ``run`` of
a task without a truth.  (Drawing a fresh reference at every evaluation point would cost
``reference`` samples each time; it is not done.)

**Measuring does not change the training run.**  The state's tensors are copied (detached) before
measuring, so they are neither modified nor given gradients; the cells' estimators are their own
instances, planned for measurement (:func:`measurement_cells`), not the training estimator; every
generator is the cells' own; and ``evaluated_at`` restores the task's state and minibatch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch

from rpbench.engine import DEFAULT_MAX_MEMORY
from rpbench.estimators.base import Estimator
from rpbench.params import format_config
from rpbench.runner import Cell, execute, parse_estimators, plan, plan_estimator_params
from rpbench.tasks.protocols import ModelState, Trainable
from rpbench.tasks.vae import VAETask
from rpbench.truth import exact_truth

Row = dict[str, object]

MEASURE_REPEATS = 1
"""Timed values of each measurement (``run`` takes 7): one gives ``sec_per_estimate`` without an interval."""
MEASURE_MIN_TIME = 0.0
"""No calibration along a trajectory: each value is one pass (a training run measures many states)."""


def measurement_minibatch(task: VAETask) -> torch.Tensor:
    """The task's fixed measurement minibatch: its first ``minibatch`` training images, binarised as
    configured (a dynamic draw from a CPU generator seeded ``model_seed``), ``(minibatch, pixels)`` on
    the task's device.

    The images ``run`` measures on (``task.x`` as the task builds it), rebuilt from the
    configuration, so it is the same inside or outside ``evaluated_at``.
    """
    return task.fixed_minibatch()


def estimator_label(estimator: Estimator) -> str:
    """An estimator configuration as ``--estimator`` spells it: ``score+loo``, ``gumbel:tau=1.0``
    (the value of ``trained_with``)."""
    return f"{estimator.name}:{format_config(estimator.config)}" if estimator.config else estimator.name


def measurement_cells(task: VAETask, estimators: Sequence[str], batch: int) -> list[Cell]:
    """Cells to measure at the states of a trajectory of ``task``'s configuration: one per estimator
    configuration of ``estimators`` (``--estimator`` syntax; ``all``: every one that applies),
    planned as ``run`` plans them (:func:`rpbench.runner.plan`: the same grids, applicability and
    errors), with their own task and estimator instances.
    """
    overrides = {name: [str(value)] for name, value in task.config.items()}
    return plan(task.name, overrides, parse_estimators(estimators), batch, task.device).cells


def _detached(theta: ModelState, device: torch.device) -> ModelState:
    return {group: {k: v.detach().clone().to(device) for k, v in params.items()} for group, params in theta.items()}


def measure_at(
    cells: Sequence[Cell],
    theta: ModelState,
    x: torch.Tensor,
    *,
    samples: int,
    batch: int,
    seed: int,
    level: float = 0.95,
    repeats: int = MEASURE_REPEATS,
    estimator_params: Sequence[str] | None = None,
    max_memory: int = DEFAULT_MAX_MEMORY,
) -> list[Row]:
    """``results.csv``'s rows of ``samples`` estimates of each cell's estimator at the model state
    ``theta`` on minibatch ``x``, one per (cell, parameter group), in cell order.

    Each cell is measured by :func:`rpbench.runner.execute` inside
    ``cell.task.evaluated_at(copy of theta, x)``, with the exact truth at that state alone
    (:func:`rpbench.truth.exact_truth`; none where the state has no exact gradient: see the module
    docstring).  ``seed`` is the ``seed`` column and, with the cell, K and n, seeds the cell's
    generator (:func:`rpbench.runner.cell_seed_of`).  A cell that fails gives its failed rows.
    ``theta`` is not modified and gets no gradients.  Every cell's task must be
    :class:`~rpbench.tasks.protocols.Trainable` (a ``TypeError`` before anything is measured).
    """
    tasks = [cell.task for cell in cells]
    wrong = sorted({task.name for task in tasks if not isinstance(task, Trainable)})
    if wrong:
        raise TypeError(f"measure_at needs trainable tasks (a model state to evaluate at); not: {', '.join(wrong)}")
    if estimator_params is None:
        estimator_params = plan_estimator_params(cells)
    rows: list[Row] = []
    for cell in cells:
        task = cast(Trainable, cell.task)
        device = cell.task.device
        with task.evaluated_at(_detached(theta, device), x.to(device)):
            results = execute(
                [cell],
                samples,
                batch,
                seed,
                repeats=repeats,
                level=level,
                estimator_params=estimator_params,
                max_memory=max_memory,
                truth_for=exact_truth,
                min_time=MEASURE_MIN_TIME,
            )
            for result in results:
                rows.extend(result.rows)
    return rows


def trajectory_rows(rows: Sequence[Row], *, trained_with: str, step: int) -> list[Row]:
    """``rows`` placed on a trajectory: the rows of ``measure.csv`` (``trained_with``: the training
    estimator's :func:`estimator_label`; ``step``: the training step of the measured state)."""
    return [{**row, "trained_with": trained_with, "step": step} for row in rows]
