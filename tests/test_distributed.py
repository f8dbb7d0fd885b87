"""Results do not depend on the number or kind of workers."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("distributed")

from rpbench.results import RESULTS_FILE
from tests.conftest import TIMING, exit_code

SUITE = """
[suite]
name = "workers"
samples = 300
batch = 2
repeats = 1
seeds = [0, 1]

[[run]]
task = "gaussian"
params = { dim = 2, fn = ["cos", "step"], sigma = 1, k = 0.5 }
estimators = ["score", "score+loo", "pathwise", "mvd"]

[[run]]
task = "discrete-vae"
params = { latents = 2, categories = 3, minibatch = 4, hidden = 8 }
estimators = ["score+loo", "gumbel:tau=0.5"]
"""


def run(tmp_path: Path, name: str, *extra: str) -> pd.DataFrame:
    suite = tmp_path / "workers.toml"
    suite.write_text(SUITE)
    assert exit_code(["run", "--suite", str(suite), "--out", str(tmp_path / name), "-q", *extra]) == 0
    (run_dir,) = list((tmp_path / name).iterdir())
    return pd.read_csv(run_dir / RESULTS_FILE).drop(columns=TIMING)


@pytest.mark.dask
def test_serial_and_two_worker_runs_give_identical_csvs(tmp_path: Path) -> None:
    """Also with a memory budget that splits the VAE cells into chunks: the workers must use it."""
    serial = run(tmp_path, "serial", "--max-memory", "1M")
    parallel = run(tmp_path, "parallel", "--workers", "2", "--max-memory", "1M")
    assert len(serial) == (2 * 4 + 2) * 2 * 2  # (cells) × groups × seeds
    assert (serial.loc[serial["task"] == "discrete-vae", "chunk"] < 300).all()
    pd.testing.assert_frame_equal(serial, parallel, check_exact=True)


def test_bad_worker_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for args, message in (
        (["--workers", "0"], "--workers 0"),
        (["--scheduler", "tcp://127.0.0.1:1"], "cannot connect"),
    ):
        code = exit_code(["run", "-e", "score", "-p", "fn=cos", "-K", "10", "--out", str(tmp_path / "x"), *args])
        assert code == 2 and message in capsys.readouterr().err
