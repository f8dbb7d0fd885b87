"""The Python API: the README's example as written, keyword parity with the CLI, one exception type."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import pandas as pd
import pytest
import typer

import rpbench
from rpbench.cli import app
from tests.conftest import TIMING

README = Path(__file__).resolve().parents[1] / "README.md"
SMALL = {
    "task": "gaussian",
    "estimators": "pathwise,score",
    "params": {"fn": "cos", "sigma": [1, 2], "k": 0.5},
    "samples": 50,
}


def readme_example() -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"<!-- api-example -->\n```python\n(.*?)```", text, re.DOTALL)
    assert match, "README.md has no <!-- api-example --> python block"
    return match.group(1)


def test_the_readme_example_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace: dict[str, object] = {}
    exec(compile(readme_example(), "README.md", "exec"), namespace)
    run = namespace["run"]
    assert isinstance(run, rpbench.Run) and run.path is None
    assert len(run.results) == 2 * 2 * 2 * 2 * 2  # estimators × fn × sigma × k (its default sweep) × groups
    assert isinstance(namespace["table"], pd.DataFrame)
    assert list(tmp_path.iterdir()) == []  # out=None: nothing written, not even results/


def test_every_run_option_is_a_keyword_of_rpbench_run() -> None:
    command = typer.main.get_command(app).commands["run"]  # type: ignore[attr-defined]
    options = {p.name for p in command.params} - {"metric", "quiet"}  # console only
    renamed = {"estimator": "estimators", "param": "params", "plugin": "plugins"}
    keywords = set(inspect.signature(rpbench.run).parameters)
    assert {renamed.get(o, o) for o in options} <= keywords
    assert "on_cell" in keywords


def test_an_in_memory_run_equals_the_same_run_written_and_loaded(tmp_path: Path) -> None:
    memory = rpbench.run(**SMALL)
    written = rpbench.run(**SMALL, out=tmp_path)
    assert written.path is not None and written.path.parent == tmp_path
    loaded = rpbench.load(written.path)
    pd.testing.assert_frame_equal(memory.results.drop(columns=TIMING), loaded.results.drop(columns=TIMING))
    pd.testing.assert_frame_equal(written.results, loaded.results)
    assert memory.meta["columns"] == json.loads((written.path / "run.json").read_text())["columns"]
    assert memory.results["biased"].dtype == bool and memory.results["dim"].tolist() == [1] * 8


def test_on_cell_sees_every_cell_in_order() -> None:
    reports: list[rpbench.CellReport] = []
    run = rpbench.run(**SMALL, on_cell=reports.append)
    assert [r.done for r in reports] == [1, 2, 3, 4] and {r.total for r in reports} == {4}
    assert sum(len(r.rows) for r in reports) == len(run.results)
    assert all(r.failed == 0 for r in reports)


def test_a_suite_mapping_runs_like_a_suite_file(tmp_path: Path) -> None:
    suite = {
        "suite": {"name": "mini", "samples": 40, "repeats": 1},
        "run": [{"task": "gaussian", "params": {"fn": "cos"}, "estimators": ["score"]}],
    }
    run = rpbench.run(suite=suite, out=tmp_path)
    assert run.path is not None and "-mini-" in run.path.name
    assert set(run.results["estimator"]) == {"score"} and (run.results["samples"] == 40).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"task": "nope"}, "unknown task 'nope'; valid tasks:"),
        ({"estimators": "nope"}, "unknown estimator 'nope'"),
        ({"estimators": []}, "no estimator given"),
        ({"params": {"sigma": -1}}, "parameter sigma=.* is out of range"),
        ({"params": {"sigma": [object()]}}, "expected a number or a string"),
        ({"samples": 1}, "need K >= 2"),
        ({"level": 1.5}, "a confidence level lies in"),
        ({"max_memory": "lots"}, "expected a size of at least 1M"),
        ({"suite": {"run": []}}, "no \\[\\[run\\]\\] entries"),
        ({"suite": {"run": [{"task": "gaussian"}]}, "task": "gaussian"}, "drop --task"),
        ({"resume": "x", "samples": 10}, "drop the other run options"),
        ({"samples": "10"}, "--samples '10': expected an integer"),
        ({"samples": 20.5}, "--samples 20.5: expected an integer"),
        ({"batch": True}, "--batch True: expected an integer"),
        ({"seed": "x"}, "--seed 'x': expected an integer >= 0"),
        ({"seed": 1.5}, "--seed 1.5: expected an integer >= 0"),
        ({"seed": -1}, "--seed -1: expected an integer >= 0"),
    ],
)
def test_bad_arguments_raise_usage_error_with_the_clis_message(
    kwargs: dict, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(rpbench.UsageError, match=message):
        rpbench.run(**kwargs)
    assert list(tmp_path.iterdir()) == []


def test_the_plugin_api_is_importable_from_the_top_level() -> None:
    from rpbench.estimators.base import Estimator
    from rpbench.registry import register_estimator
    from rpbench.tasks.base import Task

    assert rpbench.Estimator is Estimator and rpbench.Task is Task
    assert rpbench.register_estimator is register_estimator
    assert set(rpbench.__all__) <= set(dir(rpbench))
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        _ = rpbench.nothing  # type: ignore[attr-defined]


def test_train_resume_knows_every_planning_option_and_its_default() -> None:
    """``--resume`` refuses changed options by comparing with the signature's defaults (derived from
    it); every keyword but the four that do not plan is a planning option."""
    import inspect

    from rpbench.api import _TRAIN_DEFAULTS

    signature = inspect.signature(rpbench.train).parameters
    assert {name: signature[name].default for name in _TRAIN_DEFAULTS} == _TRAIN_DEFAULTS
    assert set(signature) - set(_TRAIN_DEFAULTS) == {"on_point", "resume", "workers", "scheduler"}


def test_lists_of_n_and_k_and_adaptive_k_are_keywords_of_rpbench_run() -> None:
    swept = rpbench.run(
        "gaussian", "score", {"fn": "cos", "sigma": 1, "k": 1}, samples=[50, 100], batch=[1, 2, 4], repeats=1
    )
    table = swept.results
    assert sorted(set(zip(table["samples"], table["batch"], strict=True))) == [
        (k, n) for k in (50, 100) for n in (1, 2, 4)
    ]
    assert swept.meta["options"]["entries"][0]["batch"] == [1, 2, 4]
    adaptive = rpbench.run(
        "gaussian", "pathwise", {"fn": "cos", "sigma": 1, "k": 1}, 100, target_rel_ci=0.2, max_samples=1600, repeats=1
    )
    rows = adaptive.results
    assert (rows["start_samples"] == 100).all() and rows["samples"].isin([100, 200, 400, 800, 1600]).all()
    half = (rows["variance_hi"] - rows["variance_lo"]) / 2 / rows["variance"]
    assert ((half < 0.2) == rows["target_reached"]).all()
    with pytest.raises(rpbench.UsageError, match="--max-samples 1600 caps adaptive K"):
        rpbench.run("gaussian", "pathwise", samples=100, max_samples=1600)
