"""``measure.csv``: gradient estimators measured along each training trajectory (``--measure K``).

At every ``ok`` evaluation point of a run, K estimates of the training estimator (or of each
estimator configuration of ``--measure-estimators``, ``all``: every one that applies, all at the
*same* state) are drawn on the task's fixed measurement minibatch and reduced by the engine as
``rpbench run`` reduces them (:func:`rpbench.training.measure.measure_at`: exact truth only).  The
rows get ``trained_with``, ``step`` and ``run_seed`` and are kept, as CSV text, with the point in
the run's checkpoint; they are appended to ``measure.csv`` before the point's row reaches
``curves.csv``, so on resume the rows of points that ``curves.csv`` lacks are dropped
(:func:`repair_measure_table`) and written again from the checkpoint.  Measuring is outside the
training ``seconds``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rpbench.columns import Column, measure_columns
from rpbench.runner import Cell, plan_estimator_params
from rpbench.tables import csv_text, read_records, rewrite, row_records
from rpbench.tasks.vae import VAETask
from rpbench.training.loop import Measure
from rpbench.training.measure import (
    estimator_label,
    measure_at,
    measurement_cells,
    measurement_minibatch,
    trajectory_rows,
)


@dataclass(frozen=True)
class Measurement:
    """What a training run measures at its points: K, which estimators (none: the training one),
    and the columns of ``measure.csv`` (the same for every run)."""

    samples: int
    estimators: tuple[str, ...]
    batch: int
    level: float
    estimator_params: tuple[str, ...]
    columns: tuple[str, ...]

    def cells(self, cell: Cell) -> list[Cell]:
        """The cells measured along the trajectory of ``cell`` (a training run), planned as ``run`` plans them."""
        assert isinstance(cell.task, VAETask)
        return measurement_cells(cell.task, self.estimators or (estimator_label(cell.estimator),), self.batch)


def plan_measurement(
    cells: Sequence[Cell], samples: int, estimators: Sequence[str], batch: int, level: float = 0.95
) -> tuple[Measurement, list[Column]]:
    """The measurement of every run in ``cells`` and the columns ``run.json`` declares for ``measure.csv``."""
    draft = Measurement(samples, tuple(estimators), batch, level, (), ())
    measured = [m for cell in cells for m in draft.cells(cell)]
    task_params = [(p.name, p.kind) for m in measured for p in type(m.task).params]
    columns = measure_columns(task_params, [(p.name, p.kind) for m in measured for p in type(m.estimator).params])
    params = tuple(plan_estimator_params(measured))
    names = tuple(c.name for c in columns)
    return Measurement(samples, tuple(estimators), batch, level, params, names), columns


def measurer(measurement: Measurement, cell: Cell, seed: int, run_seed: int) -> Measure:
    """The run's ``measure(theta, step)``: its measured cells at that state, as ``measure.csv`` records."""
    assert isinstance(cell.task, VAETask)
    cells = measurement.cells(cell)
    x = measurement_minibatch(cell.task)
    trained_with = estimator_label(cell.estimator)

    def measure(theta: dict, step: int) -> str:
        rows = measure_at(
            cells,
            theta,
            x,
            samples=measurement.samples,
            batch=measurement.batch,
            seed=seed,
            level=measurement.level,
            estimator_params=measurement.estimator_params,
        )
        placed = [{**row, "run_seed": run_seed} for row in trajectory_rows(rows, trained_with=trained_with, step=step)]
        return csv_text(row_records(placed, measurement.columns))

    return measure


def repair_measure_table(measure: Path, curves: Path) -> None:
    """Keep the rows of ``measure`` whose point (``run_seed``, ``step``) is in ``curves`` (a torn last
    line goes too): the others are written again from their checkpoints."""
    if not measure.exists():
        return
    header, body, torn = read_records(measure)
    points: set[tuple[str, str]] = set()
    if curves.exists():
        curve_header, curve_body, _ = read_records(curves)
        at = curve_header.index("run_seed"), curve_header.index("step")
        points = {(record[at[0]], record[at[1]]) for record in curve_body}
    run, step = header.index("run_seed"), header.index("step")
    kept = [record for record in body if (record[run], record[step]) in points]
    if torn or len(kept) != len(body):
        rewrite(measure, [header, *kept])
