"""The sweep: entries resolved, plans checked before anything is written, failures as full rows."""

from __future__ import annotations

import io
import json
import math
import re
from pathlib import Path

import pandas as pd
import pytest
import torch

from rpbench.errors import UsageError
from rpbench.estimators.score import Score
from rpbench.results import FAILURES_DIR
from rpbench.suite import Entry
from rpbench.sweep import CellReport, Resolved, all_jobs, execute, plan_entries, resolve_resumed, single_entry

ENTRY = single_entry("gaussian", ["score,pathwise"], {"fn": ["cos"], "k": ["0.5"], "sigma": ["1", "2"]}, 40, 1, 0, 1)


def test_single_entry_fills_the_defaults_and_checks_the_budget() -> None:
    entry = single_entry(None, None, None, None, None, 3, None)
    assert entry == Entry(task="gaussian", estimators=["all"], samples=1000, batch=1, seeds=[3], repeats=7)
    for args, message in (((1, 1, 1), "need K >= 2"), ((2, 0, 1), "need n >= 1"), ((2, 1, 0), "at least 1 timed")):
        samples, batch, repeats = args
        with pytest.raises(UsageError, match=message):
            single_entry("gaussian", None, None, samples, batch, 0, repeats)


def test_a_bad_suite_entry_is_named_before_anything_is_written(tmp_path: Path) -> None:
    bad = Entry(task="gaussian", params={"sigma": ["-1"]})
    with pytest.raises(UsageError, match=r"^tasks/x.toml: run\[2\]: task gaussian: parameter sigma"):
        plan_entries([ENTRY, bad], torch.device("cpu"), "tasks/x.toml")
    with pytest.raises(UsageError):
        execute(Resolved([ENTRY, bad], "x", "tasks/x.toml"), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_cell_that_raises_becomes_full_failed_rows_and_the_sweep_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = Score.estimate

    def fails_on_sigma_2(self, task, samples, batch, generator):  # type: ignore[no-untyped-def]
        if task.config["sigma"] == 2:
            raise RuntimeError("deliberately broken")
        return original(self, task, samples, batch, generator)

    monkeypatch.setattr(Score, "estimate", fails_on_sigma_2)
    reports: list[CellReport] = []
    outcome = execute(Resolved([ENTRY], "gaussian"), tmp_path, on_cell=reports.append)
    assert [r.failed for r in reports] == [0, 0, 1, 1] and outcome.rows == 8
    assert {(r["group"], r["sigma"], r["fn"], r["k"], r["dim"]) for r in outcome.failed} == {
        ("mu", 2.0, "cos", 0.5, 1),
        ("sigma", 2.0, "cos", 0.5, 1),
    }
    assert all(r["error"] == "RuntimeError: deliberately broken" for r in outcome.failed)
    assert outcome.path is not None
    (saved,) = (outcome.path / FAILURES_DIR).iterdir()  # one failed cell, its traceback kept whole
    assert saved.name == f"{outcome.failed[0]['cell_seed']}.txt"
    text = saved.read_text()
    assert text.startswith("Traceback (most recent call last)") and "in fails_on_sigma_2" in text
    assert text.rstrip().endswith("RuntimeError: deliberately broken")


def test_an_in_memory_sweep_writes_nothing_and_keeps_its_tables_as_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    outcome = execute(Resolved([ENTRY], "gaussian"), None)
    assert outcome.path is None and list(tmp_path.iterdir()) == []
    assert outcome.results_text is not None and len(outcome.results_text.splitlines()) == 1 + 8
    assert [c["name"] for c in outcome.meta["columns"]] == outcome.results_text.splitlines()[0].split(",")


def test_resume_reads_the_runs_own_options_and_refuses_a_damaged_sidecar(tmp_path: Path) -> None:
    outcome = execute(Resolved([ENTRY], "gaussian", max_memory=2**21), tmp_path)
    assert outcome.path is not None
    resolved = resolve_resumed(outcome.path)
    assert resolved.entries == [ENTRY] and resolved.max_memory == 2**21 and resolved.level == 0.95
    meta = json.loads((outcome.path / "run.json").read_text())
    meta["options"]["entries"] = [{"task": "gaussian", "bogus": 1}]
    (outcome.path / "run.json").write_text(json.dumps(meta))
    with pytest.raises(UsageError, match=r"run\.json is damaged or from another version"):
        resolve_resumed(outcome.path)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target_rel_ci": 0.0}, "--target-rel-ci 0.0: need a relative half-width > 0"),
        ({"target_rel_ci": -0.1}, "--target-rel-ci -0.1: need a relative half-width > 0"),
        ({"target_rel_ci": math.inf}, "--target-rel-ci inf: need a relative half-width > 0"),
        ({"max_samples": 5000}, "--max-samples 5000 caps adaptive K; give --target-rel-ci too"),
        ({"target_rel_ci": 0.1, "max_samples": 50}, "--max-samples 50 is below the starting K (--samples 100)"),
        ({"samples": [100, 1]}, "--samples 1: need K >= 2"),
        ({"batch": [1, 0]}, "--batch 0: need n >= 1"),
        ({"batch": [1, 2, 1]}, "--batch 1,2,1: 1 is listed twice"),
        ({"batch": []}, "--batch: empty list"),
        ({"batch": [1.5]}, "--batch 1.5: expected an integer or a list of integers"),
        ({"batch": "1,2"}, "--batch '1,2': expected an integer or a list of integers"),
        ({"target_rel_ci": "0.1"}, "--target-rel-ci '0.1': expected a number > 0"),
        ({"target_rel_ci": 0.1, "max_samples": 1e5}, "--max-samples 100000.0: expected an integer >= K"),
    ],
)
def test_single_entry_refuses_a_bad_budget_in_one_line(kwargs: dict, message: str) -> None:
    budget = {"samples": 100, "batch": 1} | kwargs
    with pytest.raises(UsageError, match=f"^{re.escape(message)}"):
        single_entry(
            "gaussian",
            None,
            None,
            budget["samples"],
            budget["batch"],
            0,
            None,
            budget.get("target_rel_ci"),
            budget.get("max_samples"),
        )


def test_lists_of_n_and_k_make_one_cell_each_with_the_seed_a_single_value_gives() -> None:
    swept = single_entry(
        "gaussian", ["score,score+loo"], {"fn": ["cos"], "sigma": ["1"], "k": ["1"]}, [50, 80], [1, 2], 0, 1
    )
    assert swept.samples == [50, 80] and swept.batch == [1, 2]
    jobs = all_jobs([swept], plan_entries([swept], torch.device("cpu"), None))
    assert [(j.batch, j.samples, j.cell.estimator.name) for j in jobs] == [
        (1, 50, "score"),
        (1, 80, "score"),
        (2, 50, "score"),
        (2, 50, "score+loo"),
        (2, 80, "score"),
        (2, 80, "score+loo"),
    ]  # score+loo needs n >= 2: skipped at n = 1
    for job in jobs:
        single = single_entry("gaussian", [job.cell.estimator.name], swept.params, job.samples, job.batch, 0, 1)
        (alone,) = all_jobs([single], plan_entries([single], torch.device("cpu"), None))
        assert alone.cell_seed == job.cell_seed  # today's seed for that one n and K
    assert len({job.cell_seed for job in jobs}) == len(jobs)


def test_a_run_mixing_fixed_and_adaptive_entries_gives_every_row_its_starting_k() -> None:
    params = {"fn": ["cos"], "sigma": ["1"], "k": ["1"]}
    fixed = single_entry("gaussian", ["score"], params, 60, 1, 0, 1)
    adaptive = single_entry("gaussian", ["pathwise"], params, 60, 1, 0, 1, 0.2, 480)
    outcome = execute(Resolved([fixed, adaptive], "mixed"), None)
    assert outcome.results_text is not None
    table = pd.read_csv(io.StringIO(outcome.results_text))
    assert (table["start_samples"] == 60).all()
    assert table.loc[table["estimator"] == "score", "samples"].eq(60).all()
    assert table.loc[table["estimator"] == "score", "target_reached"].isna().all()  # a fixed K: no target
    assert table.loc[table["estimator"] == "pathwise", "target_reached"].notna().all()
