"""Measurement along a training trajectory: run's numbers at the state, the state's own exact truth,
and a training run left as it was."""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
import torch

from rpbench.columns import (
    MEASURE_COLUMNS_KEY,
    MEASURE_FILE,
    curve_columns,
    measure_columns,
    result_columns,
)
from rpbench.engine import PREPARE_STREAM
from rpbench.errors import UsageError
from rpbench.estimators.rebar import Rebar
from rpbench.registry import ESTIMATORS, get_estimator, register_estimator
from rpbench.runner import Cell, execute, plan_estimator_params
from rpbench.tables import AppendTable
from rpbench.tasks.base import Task, Theta
from rpbench.tasks.protocols import ModelState
from rpbench.tasks.vae import VAETask
from rpbench.training.measure import (
    estimator_label,
    measure_at,
    measurement_cells,
    measurement_minibatch,
    trajectory_rows,
)
from rpbench.training.warmup import train
from rpbench.truth import Truth, exact_truth
from rpbench.views.loader import load_run
from tests.conftest import gaussian, vae

SAMPLES, BATCH, SEED = 600, 2, 0
TIMING_COLUMNS = {c.name for c in result_columns([], []) if c.role == "timing"}
"""Columns that depend on the machine's speed (``setup_seconds`` and the timed metrics with their bounds)."""


def small(**config: object) -> VAETask:
    """The enumerable 2 × 3 categorical VAE (minibatch 4, hidden 16): exact truth at any state."""
    task = vae("discrete-vae", latents=2, categories=3, **config)
    assert isinstance(task, VAETask)
    return task


@functools.cache
def trained_state() -> ModelState:
    """A state that is not the initial one: 30 Adam steps of Gumbel-Softmax from model seed 1."""
    return train(small(model_seed=1), 30, 1)


def same(a: object, b: object) -> bool:
    """Equal, NaN equal to NaN (bit for bit otherwise: floats compared with ==)."""
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))


def differing(rows: list[dict[str, object]], reference: list[dict[str, object]], skip: set[str]) -> list[str]:
    assert len(rows) == len(reference) and all(a.keys() == b.keys() for a, b in zip(rows, reference, strict=True))
    return [
        f"{a['estimator']}/{a['group']}: {k} {a[k]!r} != {b[k]!r}"
        for a, b in zip(rows, reference, strict=True)
        for k in a
        if k not in skip and not same(a[k], b[k])
    ]


def by_estimator(rows: list[dict[str, object]]) -> dict[tuple[object, object], dict[str, object]]:
    return {(row["estimator"], row["group"]): row for row in rows}


class FlippedScore(get_estimator("score+loo")):  # type: ignore[misc]
    """Leave-one-out REINFORCE with its sign flipped: deliberately wrong (bias −2 × the gradient)."""

    name = "test-flipped-score+loo"
    summary = "score+loo, sign flipped (a must-fail check)"
    reference = "a test"

    def estimate(self, task: Task, samples: int, batch: int, generator: torch.Generator) -> Theta:
        estimate = super().estimate(task, samples, batch, generator)
        return {group: {k: -v for k, v in params.items()} for group, params in estimate.items()}


class Failing(get_estimator("score")):  # type: ignore[misc]
    """The score function, except that it raises."""

    name = "test-failing-score"
    summary = "raises (a failing cell)"
    reference = "a test"

    def estimate(self, task: Task, samples: int, batch: int, generator: torch.Generator) -> Theta:
        raise RuntimeError("this estimator always fails")


@pytest.fixture
def registered() -> Iterator[None]:
    """The test's estimators registered (as a plugin's would be), and removed afterwards."""
    try:
        register_estimator(FlippedScore)
        register_estimator(Failing)
        yield
    finally:
        ESTIMATORS.pop(FlippedScore.name, None)
        ESTIMATORS.pop(Failing.name, None)


def test_the_measurement_minibatch_is_the_first_minibatch_training_images_the_task_measures() -> None:
    for binarization in ("static", "dynamic"):
        task = small(binarize=binarization, model_seed=3)
        x = measurement_minibatch(task)
        assert x.shape == (4, task.pixels) and torch.equal(x, task.x)
        with task.evaluated_at(task.initial_state(), task.eval_images()[:7]):  # another minibatch in use
            assert torch.equal(measurement_minibatch(task), x)
    dynamic = measurement_minibatch(small(binarize="dynamic", model_seed=3))
    assert not torch.equal(dynamic, measurement_minibatch(small(binarize="dynamic", model_seed=4)))


def test_at_the_initial_state_measure_at_gives_the_rows_of_run_bit_for_bit() -> None:
    task = small()
    cells = measurement_cells(task, ["score+loo,rebar:tune_steps=3,gumbel"], BATCH)
    assert [c.estimator.name for c in cells] == ["score+loo", "rebar", "gumbel"]
    rows = measure_at(cells, task.initial_state(), measurement_minibatch(task), samples=200, batch=BATCH, seed=SEED)
    ran = [row for result in execute(cells, 200, BATCH, SEED, repeats=1) for row in result.rows]
    assert differing(rows, ran, TIMING_COLUMNS) == []
    assert {row["truth"] for row in rows} == {"enumeration"} and {row["status"] for row in rows} == {"ok"}


def test_without_an_exact_truth_the_truth_columns_are_empty_and_the_rest_is_run_s() -> None:
    task = vae("discrete-vae", latents=8, categories=10, reference=100)  # 10^8 latents: a reference in `run`
    assert isinstance(task, VAETask) and exact_truth(task) is None
    cells = measurement_cells(task, ["score+loo"], BATCH)
    rows = measure_at(cells, task.initial_state(), measurement_minibatch(task), samples=200, batch=BATCH, seed=SEED)
    ran = [row for result in execute(cells, 200, BATCH, SEED, repeats=1) for row in result.rows]
    assert {row["truth"] for row in ran} == {"reference:score+loox96"}  # run's cached reference: not used here
    truth_columns = {"truth", "exact_se", "exact", "bias", "bias_lo", "bias_hi", "bias_significant"}
    truth_columns |= {"mse", "mse_lo", "mse_hi", "cosine", "cosine_lo", "cosine_hi"}
    truth_columns |= {"bias_debiased", "bias_debiased_lo", "bias_debiased_hi"}
    assert differing(rows, ran, TIMING_COLUMNS | truth_columns) == []
    for row in rows:
        assert row["truth"] == "none" and row["bias_significant"] is False
        assert all(
            math.isnan(float(row[c]))
            for c in ("exact", "exact_se", "bias", "bias_hi", "bias_debiased", "mse", "cosine")
        )  # type: ignore[arg-type]


@pytest.mark.slow
def test_off_the_initial_state_unbiased_estimators_pass_a_flipped_one_fails_and_the_truth_is_the_state_s(
    registered: None,
) -> None:
    task = small(model_seed=1)
    state, x = trained_state(), measurement_minibatch(task)
    cells = measurement_cells(task, ["score+loo,rebar:tune_steps=3", FlippedScore.name], BATCH)
    rows = by_estimator(measure_at(cells, state, x, samples=SAMPLES, batch=BATCH, seed=SEED))
    with task.evaluated_at(state, x):
        here = exact_truth(task)
    with task.evaluated_at(task.initial_state(), x):
        start = exact_truth(task)
    assert here is not None and start is not None
    initial: Truth = start
    for group in ("encoder", "decoder"):
        norm = float(here.gradient[group].to(torch.float64).norm())
        moved = float((here.gradient[group] - start.gradient[group]).norm())
        for name in ("score+loo", "rebar"):
            row = rows[name, group]
            assert row["status"] == "ok" and row["exact"] == pytest.approx(norm, rel=1e-12)  # the state's own truth
            assert row["bias_significant"] is False and float(row["bias"]) < 0.1 * norm  # type: ignore[arg-type]
            # ‖mean − truth at the start‖ ≥ moved − ‖mean − truth here‖ ≥ moved − bias_hi: the stale truth is far off
            assert moved > 5 * float(row["bias_hi"])  # type: ignore[arg-type]
        flipped = rows[FlippedScore.name, group]
        assert flipped["bias_significant"] is True
        assert float(flipped["bias_lo"]) > 10 * (float(flipped["bias_hi"]) - float(flipped["bias"]))  # type: ignore[arg-type]

    # The same cells measured against the initial state's truth (what a cached truth would give): flagged biased.
    stale: list[dict[str, object]] = []
    with cast(VAETask, cells[0].task).evaluated_at(state, x):
        for result in execute(cells[:1], SAMPLES, BATCH, SEED, repeats=1, truth_for=lambda _task: initial):
            stale.extend(result.rows)
    assert [row["bias_significant"] for row in stale] == [True, True]


def test_a_failing_cell_gives_failed_rows_and_the_others_are_measured(registered: None) -> None:
    task = small()
    cells = measurement_cells(task, [Failing.name, "score+loo"], BATCH)
    rows = measure_at(cells, task.initial_state(), measurement_minibatch(task), samples=50, batch=BATCH, seed=SEED)
    assert [(r["estimator"], r["group"], r["status"]) for r in rows] == [
        (Failing.name, "encoder", "failed"),
        (Failing.name, "decoder", "failed"),
        ("score+loo", "encoder", "ok"),
        ("score+loo", "decoder", "ok"),
    ]
    assert "this estimator always fails" in str(rows[0]["error"])


def test_measuring_leaves_the_state_and_a_training_rebar_as_they_were() -> None:
    task = small(model_seed=1)
    x = measurement_minibatch(task)
    theta = {g: {k: v.clone().requires_grad_(True) for k, v in p.items()} for g, p in trained_state().items()}
    before = {g: {k: v.detach().clone() for k, v in p.items()} for g, p in theta.items()}
    training = Rebar({"eta": 1.0, "lam": 0.5, "tune_steps": 3})
    with task.evaluated_at(theta, x):  # as the training loop prepares its estimator
        training.prepare(task, BATCH, torch.Generator().manual_seed(1 ^ PREPARE_STREAM))
    for params in theta.values():  # the training estimator's own tuning leaves gradients in θ: cleared
        for value in params.values():
            value.grad = None
    cv = {k: (v.detach().clone(), None if v.grad is None else v.grad.clone()) for k, v in training.cv.items()}
    adam = [{k: v.clone() for k, v in s.items()} for s in training._cv_optimizer.state.values()]

    cells = measurement_cells(task, ["rebar:tune_steps=3,score+loo"], BATCH)
    assert all(cell.estimator is not training for cell in cells)
    rows = measure_at(cells, theta, x, samples=100, batch=BATCH, seed=SEED)
    assert {row["status"] for row in rows} == {"ok"}

    for group, params in theta.items():
        for key, value in params.items():
            assert torch.equal(value.detach(), before[group][key]) and value.grad is None
    for key, (value, grad) in cv.items():  # the control variate and its last tuning gradient, bit for bit
        now = training.cv[key]
        assert torch.equal(now.detach(), value)
        assert (now.grad is None and grad is None) or (
            now.grad is not None and grad is not None and torch.equal(now.grad, grad)
        )
    after = list(training._cv_optimizer.state.values())
    assert len(after) == len(adam) and all(
        torch.equal(state[k], value) for state, old in zip(after, adam, strict=True) for k, value in old.items()
    )
    assert torch.equal(task.x, x) and task.minibatch == 4  # the task's own minibatch, restored


def test_measure_at_refuses_a_task_without_a_model_state() -> None:
    cell = Cell(gaussian(), get_estimator("score")({}))
    with pytest.raises(TypeError, match="trainable"):
        measure_at([cell], {}, torch.zeros(1), samples=10, batch=1, seed=0)


def test_measure_csv_has_results_columns_with_the_trajectory_keys_and_loads_typed(tmp_path: Path) -> None:
    task = small()
    cells = measurement_cells(task, ["score+loo,gumbel"], BATCH)
    task_params = [(p.name, p.kind) for p in type(task).params]
    estimator_params = [(p.name, p.kind) for c in cells for p in type(c.estimator).params]
    columns = measure_columns(task_params, estimator_params)
    results = result_columns(task_params, estimator_params)
    names = [c.name for c in columns]
    assert [c for c in columns if c.name not in ("trained_with", "step", "run_seed")] == results  # results.csv's
    assert names[-1] == "run_seed"  # the training run's identity, last
    assert names[:10] == [
        "task",
        "estimator",
        "biased",
        "group",
        "samples",
        "batch",
        "seed",
        "device",
        "trained_with",
        "step",
    ]
    by_name = {c.name: c for c in columns}
    assert by_name["step"].type == "int" and by_name["step"].role == "key" and by_name["trained_with"].type == "str"
    with pytest.raises(ValueError, match=r"would name two columns of measure\.csv"):
        measure_columns([("step", int)], [])

    label = estimator_label(get_estimator("gumbel")({"tau": 1.0}))
    assert label == "gumbel:tau=1.0" and estimator_label(cells[0].estimator) == "score+loo"
    rows = measure_at(cells, task.initial_state(), measurement_minibatch(task), samples=20, batch=BATCH, seed=SEED)
    placed = [{**row, "run_seed": 7} for row in trajectory_rows(rows, trained_with=label, step=250)]
    assert all(set(row) == set(names) for row in placed)

    table = AppendTable.open(tmp_path / MEASURE_FILE, names)
    table.append(placed)
    table.close()
    curves = curve_columns(task_params, estimator_params)
    meta = {
        "kind": "train",
        "options": {"level": 0.95},
        "columns": [c.to_json() for c in curves],
        MEASURE_COLUMNS_KEY: [c.to_json() for c in columns],
    }
    (tmp_path / "run.json").write_text(json.dumps(meta))
    run = load_run(tmp_path / MEASURE_FILE)
    assert run.kind == "measure" and len(run.results) == len(placed)
    assert run.results["step"].tolist() == [250] * len(placed) and set(run.results["trained_with"]) == {label}
    assert run.results["variance"].tolist() == [row["variance"] for row in placed]  # full precision
    assert "step" in run.key_columns and "trained_with" in run.key_columns
    del meta[MEASURE_COLUMNS_KEY]
    (tmp_path / "run.json").write_text(json.dumps(meta))
    with pytest.raises(UsageError, match="measure_columns"):
        load_run(tmp_path / MEASURE_FILE)


def test_plan_estimator_params_of_measurement_cells_match_their_rows() -> None:
    cells = measurement_cells(small(), ["all"], BATCH)
    names = {c.estimator.name for c in cells}
    assert {"score+loo", "rebar", "relax", "gumbel"} <= names and "pathwise" not in names
    assert "tau" in plan_estimator_params(cells)
