"""Nothing lost: a sweep killed with SIGKILL midway and resumed equals an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rpbench.results import RESULTS_FILE
from tests.conftest import TIMING, exit_code

SUITE = """
[suite]
name = "resume"
samples = 20000
batch = 2
repeats = 1

[[run]]
task = "gaussian"
params = { dim = 8, fn = ["quadratic", "cos", "expquad", "step"], sigma = [1, 2], k = 0.5 }
estimators = ["score", "score+loo", "mvd"]
"""


def rows(path: Path) -> int:
    try:
        return len(pd.read_csv(path))
    except (FileNotFoundError, pd.errors.EmptyDataError):
        return 0


@pytest.mark.slow
def test_kill_midway_then_resume_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    suite = tmp_path / "resume.toml"
    suite.write_text(SUITE)
    full = tmp_path / "full"
    assert exit_code(["run", "--suite", str(suite), "--out", str(full), "-q"]) == 0
    (full_dir,) = list(full.iterdir())
    expected = pd.read_csv(full_dir / RESULTS_FILE)

    killed = tmp_path / "killed"
    process = subprocess.Popen(
        [sys.executable, "-m", "rpbench", "run", "--suite", str(suite), "--out", str(killed), "-q"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    written = 0
    while time.monotonic() < deadline and process.poll() is None:
        run_dirs = list(killed.iterdir()) if killed.exists() else []
        written = rows(run_dirs[0] / RESULTS_FILE) if run_dirs else 0
        if written >= 6:
            break
        time.sleep(0.02)
    if process.poll() is not None:
        pytest.fail("the sweep finished before it could be killed; make the suite slower")
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    (run_dir,) = list(killed.iterdir())
    partial = pd.read_csv(run_dir / RESULTS_FILE)  # complete rows only: files are replaced atomically
    assert 6 <= len(partial) < len(expected)

    assert exit_code(["run", "--resume", str(run_dir), "-q"]) == 0
    resumed = pd.read_csv(run_dir / RESULTS_FILE)
    pd.testing.assert_frame_equal(resumed.drop(columns=TIMING), expected.drop(columns=TIMING), check_exact=True)
    # and a second resume has nothing left to do
    before = (run_dir / RESULTS_FILE).read_bytes()
    assert exit_code(["run", "--resume", str(run_dir), "-q"]) == 0
    assert (run_dir / RESULTS_FILE).read_bytes() == before


def test_resume_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert exit_code(["run", "--resume", str(tmp_path)]) == 2
    assert "no run.json there" in capsys.readouterr().err
    assert exit_code(["run", "--resume", str(tmp_path), "-t", "vae"]) == 2
    assert "drop the other run options" in capsys.readouterr().err


@pytest.mark.slow
def test_resume_draws_with_the_runs_own_memory_budget(tmp_path: Path) -> None:
    """--max-memory decides the chunks (and so the draws): a resume must reuse the saved budget."""
    args = ["run", "-e", "score,pathwise", "-p", "dim=64", "-p", "fn=cos", "-K", "4000", "--repeats", "1", "-q"]
    assert exit_code([*args, "--max-memory", "1M", "--out", str(tmp_path / "small")]) == 0
    (run_dir,) = list((tmp_path / "small").iterdir())
    expected = pd.read_csv(run_dir / RESULTS_FILE)
    assert (expected["chunk"] < 4000).all()
    assert json.loads((run_dir / "run.json").read_text())["options"]["max_memory"] == 2**20
    expected.iloc[:2].to_csv(run_dir / RESULTS_FILE, index=False)  # as if stopped after the first cell
    assert exit_code(["run", "--resume", str(run_dir), "-q"]) == 0
    resumed = pd.read_csv(run_dir / RESULTS_FILE)
    pd.testing.assert_frame_equal(resumed.drop(columns=TIMING), expected.drop(columns=TIMING), check_exact=True)

    assert exit_code([*args, "--out", str(tmp_path / "default")]) == 0
    (default_dir,) = list((tmp_path / "default").iterdir())
    default = pd.read_csv(default_dir / RESULTS_FILE)
    assert (default["chunk"] == 4000).all()
    assert not np.allclose(default["mean"], expected["mean"], rtol=1e-9, atol=0)  # other chunks, other draws


def test_a_write_torn_mid_row_is_repaired_by_resume(tmp_path: Path) -> None:
    """A real cut: results.csv truncated in the middle of a cell's second row (its first row complete)."""
    args = ["run", "-e", "score,pathwise", "-p", "fn=cos,quadratic", "-p", "k=0.5", "-K", "300", "--repeats", "1"]
    assert exit_code([*args, "-q", "--out", str(tmp_path)]) == 0
    (run_dir,) = list(tmp_path.iterdir())
    results = run_dir / RESULTS_FILE
    expected = pd.read_csv(results)
    text = results.read_bytes()
    last_rows = text.rstrip(b"\n").rsplit(b"\n", 2)  # [..., the last cell's first row, its second row]
    cut = len(text) - len(last_rows[-1]) // 2 - 1  # half of the last row gone
    with open(results, "r+b") as handle:
        handle.truncate(cut)
    assert exit_code(["report", str(run_dir)]) == 2  # the views refuse a torn table (tests/views)
    assert exit_code(["run", "--resume", str(run_dir), "-q"]) == 0
    resumed = pd.read_csv(results)
    pd.testing.assert_frame_equal(resumed.drop(columns=TIMING), expected.drop(columns=TIMING), check_exact=True)
    coords = pd.read_csv(run_dir / "coords.csv")
    assert len(coords) == len(resumed)  # D = 1: the torn cell's coordinates were not kept twice


def test_an_adaptive_run_with_a_list_of_n_resumes_to_the_same_rows(tmp_path: Path) -> None:
    """Adaptive K and a list of n travel in run.json: a resumed run draws the cells it lacked as the full run did."""
    args = ["run", "-e", "score,pathwise", "-p", "fn=cos", "-p", "sigma=1", "-p", "k=0.5", "-n", "1,2", "-K", "100"]
    args += ["--target-rel-ci", "0.15", "--max-samples", "1600", "--repeats", "1", "-q"]
    assert exit_code([*args, "--out", str(tmp_path / "full")]) == 0
    (full_dir,) = list((tmp_path / "full").iterdir())
    expected = pd.read_csv(full_dir / RESULTS_FILE)
    assert len(expected) == 8 and expected["samples"].nunique() > 1  # K reached differs between cells
    assert exit_code([*args, "--out", str(tmp_path / "cut")]) == 0
    (run_dir,) = list((tmp_path / "cut").iterdir())
    for name, keep in ((RESULTS_FILE, 3), ("coords.csv", 3)):  # the header and the first cell's two rows
        path = run_dir / name
        path.write_text("".join(path.read_text().splitlines(keepends=True)[:keep]))
    assert exit_code(["run", "--resume", str(run_dir), "-q"]) == 0
    resumed = pd.read_csv(run_dir / RESULTS_FILE)
    pd.testing.assert_frame_equal(resumed.drop(columns=TIMING), expected.drop(columns=TIMING), check_exact=True)
    options = json.loads((run_dir / "run.json").read_text())["options"]["entries"][0]
    assert options["batch"] == [1, 2] and options["target_rel_ci"] == 0.15 and options["max_samples"] == 1600
