"""Change points: a change planted at one commit is flagged there and nowhere else.

The runs are real (score and pathwise on the quadratic, K = 3000); a planted regression is the
score estimator's estimates scaled by 2 (variance × 4) from one commit on, and its removal an
improvement. Noise alone (another seed, the same code) is no change at the gate's level.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from rpbench.history.changes import history_table
from rpbench.history.store import record
from tests.conftest import exit_code
from tests.history.conftest import ARGS, as_commit, planted_history, scaled_score
from tests.views.runs import run_folder


@pytest.fixture
def planted(source_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A history of four commits: a, b (another seed), c (score's estimates doubled), d (fixed)."""
    return planted_history(source_run, tmp_path, monkeypatch)


def verdicts(frame, commit: str) -> dict[tuple[str, str, float], str]:
    rows = frame[frame["commit"] == commit * 10]
    return {(r.estimator, r.group, r.k): r.change for r in rows.itertuples()}


def test_the_planted_regression_and_its_fix_are_flagged_where_they_happened(planted: Path) -> None:
    frame = history_table(planted, "variance")
    assert list(frame["commit"].unique()) == ["a" * 10, "b" * 10, "c" * 10, "d" * 10]  # in commit order
    assert set(verdicts(frame, "a").values()) == {""}  # nothing before it
    assert set(verdicts(frame, "b").values()) == {""}  # another seed: noise is no change
    at_c = verdicts(frame, "c")
    assert {v for k, v in at_c.items() if k[0] == "score"} == {"regression"}  # both groups, both k
    assert {v for k, v in at_c.items() if k[0] == "pathwise"} == {""}
    at_d = verdicts(frame, "d")
    assert {v for k, v in at_d.items() if k[:2] == ("score", "mu")} == {"improvement"}
    assert "regression" not in at_d.values()  # (σ's heavy tails may leave its improvement unproven)
    c = frame[(frame["commit"] == "c" * 10) & (frame["estimator"] == "score")]
    a = frame[(frame["commit"] == "a" * 10) & (frame["estimator"] == "score")]
    assert (c["variance"].to_numpy() / a["variance"].to_numpy() > 3).all()  # the planted × 4


def test_other_machines_are_not_compared_and_can_be_chosen(source_run: Path, tmp_path: Path, monkeypatch) -> None:
    history = tmp_path / "history.db"
    with monkeypatch.context() as patch:
        scaled_score(patch)
        broken = run_folder(tmp_path / "c", [*ARGS, "--seed", "2"])
    record(as_commit(source_run, tmp_path, "run-a", "a" * 40, "2026-01-01T00:00:00+00:00"), history)
    elsewhere = as_commit(broken, tmp_path, "run-c", "c" * 40, "2026-01-03T00:00:00+00:00", device_name="Other CPU")
    record(elsewhere, history)
    frame = history_table(history, "variance")
    assert set(frame["change"]) == {""} and frame["machine"].nunique() == 2
    machine = frame[frame["run_id"] == "run-c"]["machine"].iloc[0]
    assert set(history_table(history, "variance", machine=machine[:6])["run_id"]) == {"run-c"}
    with pytest.raises(Exception, match="no run of that machine; machines:"):
        history_table(history, "variance", machine="ffffff")


def test_the_cli_prints_the_series_and_refuses_bad_metrics(planted: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert exit_code(["history", str(planted), "--metric", "variance", "-w", "estimator=score"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"4 run\(s\), 4 regression\(s\), [234] improvement\(s\)", out)  # score: 2 groups × 2 k
    assert exit_code(["history", str(planted), "--metric", "sharpness"]) == 2
    err = capsys.readouterr().err
    assert "not a comparable metric; valid choices:" in err and err.count("\n") == 1
    assert exit_code(["history", str(planted), "-w", "estimator=nope"]) == 2


def without_column(run_dir: Path, name: str) -> Path:
    """``run_dir`` as the code before parameter ``name`` existed wrote it: the column gone from both files."""
    meta_path, results_path = run_dir / "run.json", run_dir / "results.csv"
    meta = json.loads(meta_path.read_text())
    meta["columns"] = [c for c in meta["columns"] if c["name"] != name]
    meta_path.write_text(json.dumps(meta))
    frame = pd.read_csv(results_path, keep_default_na=False, dtype=str)
    frame.drop(columns=[name]).to_csv(results_path, index=False)
    return run_dir


@pytest.mark.parametrize(("column", "compared"), [("dtype", True), ("k", False)])
def test_a_neutral_parameter_added_between_commits_keeps_the_series(
    column: str, compared: bool, source_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`dtype` (neutral: the earlier code measured its default) is filled in and the planted change is
    still found across the commit that added it; `k` (not neutral) leaves the two runs uncompared."""
    with monkeypatch.context() as patch:
        scaled_score(patch)
        broken = run_folder(tmp_path / "c", [*ARGS, "--seed", "2"])
    changes = {}
    for name, drop in (("same", False), ("added", True)):
        history, folder = tmp_path / f"{name}.db", tmp_path / name
        folder.mkdir()
        older = as_commit(source_run, folder, "run-a", "a" * 40, "2026-01-01T00:00:00+00:00")
        record(without_column(older, column) if drop else older, history)
        record(as_commit(broken, folder, "run-c", "c" * 40, "2026-01-03T00:00:00+00:00"), history)
        at_c = history_table(history, "variance").query("commit == 'cccccccccc'")
        changes[name] = list(at_c.sort_values(["estimator", "k", "group"])["change"])
    assert "regression" in changes["same"]
    assert changes["added"] == (changes["same"] if compared else [""] * len(changes["same"]))
