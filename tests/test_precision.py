"""The ``dtype`` task parameter across the layers: seeds, rows, the results' columns and the views.

At its default (float64 for the Gaussian toy, float32 for the VAEs) the parameter is neutral: the
cells' seeds, and so every number, are those of the code before it existed.  The reference values
below were computed at commit ac1d18d (main, before ``dtype``) with torch 2.13.0 on a CPU, by
``rpbench.run`` with the same arguments.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import rpbench
from rpbench.registry import TASKS, load_builtins
from rpbench.runner import EstimatorRequest, cell_seed_of, plan
from rpbench.views.loader import load_run
from tests.conftest import CPU

load_builtins()

CASES = {
    "gaussian": ("pathwise,score+loo,mvd", {"fn": "cos", "sigma": 1.0, "k": 0.5, "dim": 2}, 300, 2),
    "discrete-vae": ("gumbel", {"latents": 2, "categories": 3, "minibatch": 4, "hidden": 16}, 60, 2),
    "bernoulli-vae": ("disarm", {"latents": 4, "minibatch": 4, "hidden": 16}, 60, 2),
    "vae": ("pathwise", {"latents": 2, "minibatch": 4, "hidden": 16, "reference": 200}, 60, 1),
}
"""Per task: estimators, parameters, K and n of a small run.  (REBAR left the discrete-VAE case when its
defaults changed after the reference was computed: per-variable η, 200 tuning steps.)"""

BEFORE: dict[tuple[str, str, str], tuple[int, str, str, str]] = {
    ("gaussian", "pathwise", "mu"): (
        2582123109229009016,
        "0x1.22866779ffd98p-2",
        "0x1.77e47f932c54ep-5",
        "0x1.04cbeebe3ad40p-6",
    ),
    ("gaussian", "pathwise", "sigma"): (
        2582123109229009016,
        "0x1.25dde2539d233p-2",
        "0x1.693e095e6a290p-4",
        "0x1.d87ffcbbb62f0p-7",
    ),
    ("gaussian", "score+loo", "mu"): (
        5982343160298380528,
        "0x1.105cf63333065p-2",
        "0x1.68616707887bap-2",
        "0x1.8e57f1002f3e2p-5",
    ),
    ("gaussian", "score+loo", "sigma"): (
        5982343160298380528,
        "0x1.f014cc515975fp-3",
        "0x1.80bd669afe243p-1",
        "0x1.0360219fe2d93p-5",
    ),
    ("gaussian", "mvd", "mu"): (
        6799759978780754640,
        "0x1.2c1268b9244ddp-2",
        "0x1.1893bfa9f88c9p-7",
        "0x1.cb5ad697dc3b5p-8",
    ),
    ("gaussian", "mvd", "sigma"): (
        6799759978780754640,
        "0x1.0c32a72606bbfp-2",
        "0x1.f4fdb8682b2c5p-5",
        "0x1.77abc4e5b2ad8p-6",
    ),
    ("discrete-vae", "gumbel", "encoder"): (
        7845390049446514636,
        "0x1.8140f31cf7c2cp-1",
        "0x1.b800c4dc10ddfp-6",
        "0x1.a5be171584b0bp-3",
    ),
    ("discrete-vae", "gumbel", "decoder"): (
        7845390049446514636,
        "0x1.4d1e00bdf1811p+2",
        "0x1.66e34905c8090p-1",
        "0x1.6c70bf5748fd2p-1",
    ),
    ("bernoulli-vae", "disarm", "encoder"): (
        5099274574962560139,
        "0x1.472facc6f37f4p+1",
        "0x1.025dcc24dcca8p+2",
        "0x1.15d8ddc284a36p-2",
    ),
    ("bernoulli-vae", "disarm", "decoder"): (
        5099274574962560139,
        "0x1.42fa24ca41abfp+2",
        "0x1.a2f68f02f31aep-3",
        "0x1.4a6d8d39d46d9p-4",
    ),
    ("vae", "pathwise", "encoder"): (
        8547710024144042160,
        "0x1.13cecf92ecf45p+0",
        "0x1.2519123e237d0p+0",
        "0x1.41a2521071401p-4",
    ),
    ("vae", "pathwise", "decoder"): (
        8547710024144042160,
        "0x1.2e0b8648c6900p+2",
        "0x1.ee5f8f67a8754p+0",
        "0x1.e36bdfc2a4beep-3",
    ),
}
"""(task, estimator, group) → cell seed, mean, variance, bias (as ``float.hex``) before ``dtype`` existed."""


def default_dtype(task: str) -> str:
    (spec,) = [p for p in TASKS[task].params if p.name == "dtype"]
    return str(spec.default)


def test_the_defaults_are_float64_for_the_gaussian_toy_and_float32_for_the_vaes() -> None:
    assert default_dtype("gaussian") == "float64"
    assert {default_dtype(name) for name in ("discrete-vae", "bernoulli-vae", "vae")} == {"float32"}
    assert all(p.neutral for name in CASES for p in TASKS[name].params if p.name == "dtype")


@pytest.mark.parametrize("task", CASES)
def test_the_default_precision_keeps_the_seeds_and_another_changes_them(task: str) -> None:
    estimators, params, samples, batch = CASES[task]
    requests = [EstimatorRequest(name) for name in estimators.split(",")]
    other = "float32" if default_dtype(task) == "float64" else "float64"
    seeds = {}
    for dtype in (None, default_dtype(task), other):
        given = {k: [str(v)] for k, v in params.items()} | ({} if dtype is None else {"dtype": [dtype]})
        cells = plan(task, given, requests, batch, CPU).cells
        seeds[dtype] = {cell.estimator.name: cell_seed_of(cell, 0, samples, batch) for cell in cells}
    before = {est: BEFORE[task, est, group][0] for (name, est, group) in BEFORE if name == task}
    assert seeds[None] == seeds[default_dtype(task)] == before
    assert all(seeds[other][est] != before[est] for est in before)


@pytest.mark.parametrize("task", CASES)
def test_rows_at_the_default_precision_equal_those_from_before_the_parameter(task: str) -> None:
    """Bit for bit on the machine that computed them; to round-off of the estimates' precision on
    a CPU whose kernels round differently (the seeds are checked exactly above)."""
    estimators, params, samples, batch = CASES[task]
    results = rpbench.run(task=task, estimators=estimators, params=params, samples=samples, batch=batch, repeats=1)
    rows = results.results
    assert set(rows["dtype"]) == {default_dtype(task)} and set(rows["status"]) == {"ok"}
    rel = 1e-12 if default_dtype(task) == "float64" else 1e-5
    for _, row in rows.iterrows():
        seed, mean, variance, bias = BEFORE[task, row["estimator"], row["group"]]
        assert int(row["cell_seed"]) == seed
        for name, value in (("mean", mean), ("variance", variance), ("bias", bias)):
            assert row[name] == pytest.approx(float.fromhex(value), rel=rel), (row["estimator"], row["group"], name)


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder of the Gaussian toy in both precisions."""
    out = tmp_path_factory.mktemp("precision")
    params = {"fn": "quadratic", "sigma": 1.0, "k": 0.5, "dtype": ["float32", "float64"]}
    run = rpbench.run(task="gaussian", estimators="pathwise,score", params=params, samples=200, repeats=1, out=out)
    assert run.path is not None
    return run.path


def test_the_precision_is_a_task_key_of_the_rows(both: Path) -> None:
    run = load_run(both)
    (column,) = [c for c in run.meta["columns"] if c["name"] == "dtype"]
    assert column == {"name": "dtype", "role": "key", "type": "str", "kind": "task"}
    assert "dtype" in run.key_columns
    assert sorted(run.results.groupby("dtype")["estimator"].count().items()) == [("float32", 4), ("float64", 4)]


def test_report_and_compare_keep_the_precisions_apart(both: Path, tmp_path: Path) -> None:
    report = rpbench.report(both, format="markdown")
    assert "dtype=float32" in report and "dtype=float64" in report
    assert rpbench.compare(both, both).matched == 8  # each row matched with its own precision
    # a run of one precision against one of the other: nothing matches
    single = rpbench.run(
        task="gaussian",
        estimators="pathwise,score",
        params={"fn": "quadratic", "sigma": 1.0, "k": 0.5, "dtype": "float32"},
        samples=200,
        repeats=1,
        out=tmp_path,
    )
    assert single.path is not None
    with pytest.raises(rpbench.UsageError, match="configuration"):
        rpbench.compare(both, single.path)


def test_float32_estimates_are_float32_and_measured_in_float64() -> None:
    """The moments of float32 estimates are accumulated in float64: the rows' mean is the float64
    mean of the float32 estimates, not a float32 sum."""
    from rpbench.engine import estimate_all
    from rpbench.registry import get_estimator
    from tests.conftest import gaussian

    task = gaussian(fn="cos", dtype="float32")
    estimates = estimate_all(task, get_estimator("pathwise")({}), 5000, 1, 3)
    assert estimates["mu"].dtype == torch.float32
    row = rpbench.metrics.summarize(estimates["mu"], task.exact_gradient()["mu"], [1.0])
    assert row["mean"] == pytest.approx(float(estimates["mu"].double().mean()), rel=1e-15)
