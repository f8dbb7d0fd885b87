"""The regression gate end to end: a suite run compared with its baseline passes, and fails with
exit code 1 once an estimator is deliberately broken."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rpbench.estimators.score import ScoreMovingAverage
from rpbench.results import RESULTS_FILE
from tests.conftest import exit_code

SUITE = """
[suite]
name = "gate"
samples = 2000
batch = 2
min_time = 0.02    # calibrated values: the speed gate reads intervals, not single passes

[[run]]
task = "gaussian"
params = { fn = ["quadratic", "cos"], sigma = 1, k = 0.5 }
estimators = ["pathwise", "score+ma", "score+loo"]
"""


def run_suite(tmp_path: Path, name: str) -> Path:
    suite = tmp_path / "gate.toml"
    suite.write_text(SUITE)
    assert exit_code(["run", "--suite", str(suite), "--out", str(tmp_path / name), "-q"]) == 0
    (run_dir,) = list((tmp_path / name).iterdir())
    return run_dir / RESULTS_FILE


def test_an_untouched_tree_passes_and_a_broken_estimator_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    baseline = run_suite(tmp_path, "baseline")
    again = run_suite(tmp_path, "again")
    assert exit_code(["compare", str(baseline), str(again)]) == 0

    original = ScoreMovingAverage.estimate

    def broken(self, task, samples, batch, generator):  # a deliberately broken estimator: extra variance
        estimates = original(self, task, samples, batch, generator)
        noise = torch.randn(samples, *task.theta["mu"].shape, generator=generator, dtype=task.dtype)
        return {group: value + 3.0 * noise for group, value in estimates.items()}  # extra variance

    monkeypatch.setattr(ScoreMovingAverage, "estimate", broken)
    worse = run_suite(tmp_path, "broken")
    assert exit_code(["compare", str(baseline), str(worse), "--speed-tolerance", "100"]) == 1


def test_unusable_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    baseline = run_suite(tmp_path, "baseline")
    assert exit_code(["compare", str(baseline), str(tmp_path / "nothing.csv")]) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_the_committed_baseline_loads_and_has_the_columns_the_ci_suite_plans_today() -> None:
    """`make regress` compares with results/baseline/ci.csv + ci.json: both must match the code."""
    import rpbench
    from rpbench.runner import plan_columns
    from rpbench.suite import load_suite
    from rpbench.sweep import all_jobs, plan_entries

    root = Path(__file__).resolve().parents[1]
    baseline = rpbench.load(root / "results" / "baseline" / "ci.csv")
    entries = load_suite(root / "tasks" / "ci.toml").entries
    plans = plan_entries(entries, torch.device("cpu"), "tasks/ci.toml")
    assert baseline.meta["columns"] == [column.to_json() for column in plan_columns(plans)]
    rows = sum(len(job.cell.task.theta) for job in all_jobs(entries, plans))  # one row per cell and group
    assert set(baseline.results["status"]) == {"ok"} and len(baseline.results) == rows
