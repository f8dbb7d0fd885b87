"""rpbench train --resume: a training run killed with SIGKILL, torn or cut, continues to the very
curves an uninterrupted run gives (timing aside)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

import rpbench
from rpbench.training.checkpoints import CHECKPOINT_DIR
from rpbench.training.runs import CURVES_FILE
from tests.conftest import exit_code

# REBAR learns its control variate online (its Adam state is in the checkpoint); Gumbel does not
ARGS = ["train", "-e", "gumbel,rebar:tune_steps=5", "-p", "latents=2", "-p", "categories=3", "-p", "hidden=16"]
PLAN = [*ARGS, "-n", "2", "--steps", "30", "--eval-every", "5", "--seeds", "0,1", "--eval-samples", "8", "-q"]
TIMING = ["seconds"]


def train_into(out: Path) -> Path:
    assert exit_code([*PLAN, "--out", str(out)]) == 0
    (run_dir,) = list(out.iterdir())
    return run_dir


def curves(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(run_dir / CURVES_FILE).drop(columns=TIMING)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    return curves(train_into(tmp_path_factory.mktemp("full")))


def lines(path: Path) -> int:
    return path.read_text().count("\n") - 1 if path.exists() else 0


@pytest.mark.slow
def test_a_run_killed_with_sigkill_resumes_to_the_uninterrupted_curves(
    tmp_path: Path, uninterrupted: pd.DataFrame
) -> None:
    killed = tmp_path / "killed"
    threads = str(torch.get_num_threads())  # the numbers depend on it: the same as the uninterrupted run's
    process = subprocess.Popen(
        [sys.executable, "-m", "rpbench", *PLAN, "--out", str(killed)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads},
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        run_dirs = list(killed.iterdir()) if killed.exists() else []
        if run_dirs and lines(run_dirs[0] / CURVES_FILE) >= 9:  # in the second run, REBAR's (7 points a run)
            break
        time.sleep(0.01)
    if process.poll() is not None:
        pytest.fail("the training finished before it could be killed; give it more steps")
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    (run_dir,) = list(killed.iterdir())
    assert 9 <= len(pd.read_csv(run_dir / CURVES_FILE)) < len(uninterrupted)
    assert exit_code(["train", "--resume", str(run_dir), "-q"]) == 0
    pd.testing.assert_frame_equal(curves(run_dir), uninterrupted, check_exact=True)
    assert json.loads((run_dir / "run.json").read_text())["resumed_utc"]
    before = (run_dir / CURVES_FILE).read_bytes()  # a second resume has nothing left to do
    assert exit_code(["train", "--resume", str(run_dir), "-q"]) == 0
    assert (run_dir / CURVES_FILE).read_bytes() == before


class Stop(BaseException):
    """Stands for a kill at a known point: raised from the row callback, after the point's checkpoint."""


@pytest.mark.slow
@pytest.mark.parametrize("stop_after", [3, 10, 16])
def test_a_run_stopped_at_any_point_continues_from_its_checkpoint_exactly(
    tmp_path: Path, uninterrupted: pd.DataFrame, stop_after: int
) -> None:
    """Mid-run in Gumbel's first run, in REBAR's (its control variate and Adam state restored), in seed 1's."""
    rows: list[object] = []

    def stop(row: object) -> None:
        rows.append(row)
        if len(rows) == stop_after:
            raise Stop

    params = {"latents": 2, "categories": 3, "hidden": 16}
    kwargs = {"estimators": "gumbel,rebar:tune_steps=5", "params": params, "steps": 30}
    with pytest.raises(Stop):
        rpbench.train(**kwargs, eval_every=5, seeds=[0, 1], batch=2, eval_samples=8, out=tmp_path, on_point=stop)  # type: ignore[arg-type]
    (run_dir,) = list(tmp_path.iterdir())
    assert len(pd.read_csv(run_dir / CURVES_FILE)) == stop_after
    rpbench.train(resume=run_dir)
    pd.testing.assert_frame_equal(curves(run_dir), uninterrupted, check_exact=True)


def cut(run_dir: Path, keep: int, tear: bool) -> None:
    """Keep ``keep`` rows (a kill after a checkpoint, before its row), and half of the next (torn)."""
    text = (run_dir / CURVES_FILE).read_text().splitlines(keepends=True)
    (run_dir / CURVES_FILE).write_text("".join(text[: keep + 1]) + (text[keep + 1][:40] if tear else ""))


@pytest.mark.slow
@pytest.mark.parametrize("tear", [False, True])
def test_rows_cut_off_behind_their_checkpoints_are_written_from_them(
    tmp_path: Path, uninterrupted: pd.DataFrame, tear: bool
) -> None:
    """Rows lost behind a finished run's checkpoint and behind the last run's come back exactly."""
    run_dir = train_into(tmp_path)
    cut(run_dir, keep=5, tear=tear)
    assert exit_code(["train", "--resume", str(run_dir), "-q"]) == 0
    pd.testing.assert_frame_equal(curves(run_dir), uninterrupted, check_exact=True)


@pytest.mark.slow
def test_a_run_without_its_checkpoint_is_trained_again_and_a_damaged_one_refused(
    tmp_path: Path, uninterrupted: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = train_into(tmp_path)
    checkpoints = sorted((run_dir / CHECKPOINT_DIR).iterdir())
    assert len(checkpoints) == 4  # one per run: 2 estimators × 2 seeds
    cut(run_dir, keep=0, tear=False)  # no rows at all: runs start again from their checkpoints' points
    checkpoints[0].write_bytes(checkpoints[0].read_bytes()[:100])  # torn by hand (saves are atomic)
    before = (run_dir / CURVES_FILE).read_bytes()
    assert exit_code(["train", "--resume", str(run_dir), "-q"]) == 2
    message = capsys.readouterr().err
    assert "checkpoint is damaged" in message and checkpoints[0].name in message and "Traceback" not in message
    assert (run_dir / CURVES_FILE).read_bytes() == before  # refused before anything was written
    checkpoints[0].unlink()  # gone: that run trains again from step 0, the others continue
    assert exit_code(["train", "--resume", str(run_dir), "-q"]) == 0
    resumed = curves(run_dir).sort_values(["seed", "estimator", "step"], kind="stable").reset_index(drop=True)
    expected = uninterrupted.sort_values(["seed", "estimator", "step"], kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(resumed, expected, check_exact=True)


def test_resume_refuses_a_folder_that_is_not_a_training_run_and_other_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        exit_code(["run", "-e", "score", "-p", "fn=cos", "-K", "10", "--repeats", "1", "-q", "--out", str(tmp_path)])
        == 0
    )
    (measured,) = list(tmp_path.iterdir())
    for args, message in (
        (["train", "--resume", str(measured)], "not a training run"),
        (["train", "--resume", str(tmp_path / "nowhere")], "no run.json there"),
        (["train", "--resume", str(measured), "--steps", "5"], "drop --steps"),
    ):
        assert exit_code(args) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, err
