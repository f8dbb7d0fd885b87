"""Results do not depend on the number or kind of workers."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("distributed")
from rpbench.registry import ESTIMATORS
from rpbench.results import RESULTS_FILE
from tests.conftest import TIMING, exit_code

pytestmark = pytest.mark.slow  # clusters start in seconds, a dead scheduler times out in 10

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


def run_folder(tmp_path: Path, name: str, *extra: str, text: str = SUITE) -> Path:
    suite = tmp_path / "workers.toml"
    suite.write_text(text)
    assert exit_code(["run", "--suite", str(suite), "--out", str(tmp_path / name), "-q", *extra]) == 0
    (run_dir,) = list((tmp_path / name).iterdir())
    return run_dir


def run(tmp_path: Path, name: str, *extra: str) -> pd.DataFrame:
    return pd.read_csv(run_folder(tmp_path, name, *extra) / RESULTS_FILE).drop(columns=TIMING)


@pytest.mark.dask
def test_workers_time_with_their_share_of_the_cores_and_say_so(tmp_path: Path) -> None:
    """Two workers on this machine: each times with cores // 2 threads (at most the one requested by
    default), the rows say two cells ran side by side, run.json records the workers and threads."""
    import torch

    from rpbench.timing import thread_share

    run_dir = run_folder(tmp_path, "parallel", "--workers", "2")
    rows = pd.read_csv(run_dir / RESULTS_FILE)
    assert (rows["parallel_cells"] == 2).all() and (rows["torch_threads"] == min(1, thread_share(2))).all()
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["parallel"]["workers"] == 2 and meta["parallel"]["threads_per_worker"] == thread_share(2)
    assert sum(meta["parallel"]["hosts"].values()) == 2
    every = SUITE.replace("repeats = 1", "repeats = 1\ntiming_threads = 0")  # the process's own count
    all_threads = run_folder(tmp_path, "all", "--workers", "2", text=every)
    shared = pd.read_csv(all_threads / RESULTS_FILE)
    assert (shared["torch_threads"] == min(torch.get_num_threads(), thread_share(2))).all()  # never over the share
    serial = pd.read_csv(run_folder(tmp_path, "serial") / RESULTS_FILE)
    assert (serial["parallel_cells"] == 1).all() and (serial["torch_threads"] == 1).all()


@pytest.mark.dask
def test_serial_and_two_worker_runs_give_identical_csvs(tmp_path: Path) -> None:
    """Also with a memory budget that splits the VAE cells into chunks: the workers must use it."""
    serial = run(tmp_path, "serial", "--max-memory", "1M")
    parallel = run(tmp_path, "parallel", "--workers", "2", "--max-memory", "1M")
    assert len(serial) == (2 * 4 + 2) * 2 * 2  # (cells) × groups × seeds
    assert (serial.loc[serial["task"] == "discrete-vae", "chunk"] < 300).all()
    pd.testing.assert_frame_equal(serial, parallel, check_exact=True)


ADAPTIVE = """
[[run]]
task = "gaussian"
params = { fn = "cos", sigma = 1, k = 0.5 }
estimators = ["score", "score+loo", "pathwise"]
samples = 100
batch = [1, 2]
target_rel_ci = 0.15
max_samples = 1600
repeats = 1
"""


@pytest.mark.dask
def test_workers_carry_adaptive_k_and_lists_of_n(tmp_path: Path) -> None:
    suite = tmp_path / "adaptive.toml"
    suite.write_text(ADAPTIVE)
    tables = []
    for name, extra in (("serial", []), ("parallel", ["--workers", "2"])):
        assert exit_code(["run", "--suite", str(suite), "--out", str(tmp_path / name), "-q", *extra]) == 0
        (run_dir,) = list((tmp_path / name).iterdir())
        tables.append(pd.read_csv(run_dir / RESULTS_FILE).drop(columns=TIMING))
    serial, parallel = tables
    assert len(serial) == (2 + 3) * 2 and serial["samples"].nunique() > 1  # score+loo only at n = 2
    pd.testing.assert_frame_equal(serial, parallel, check_exact=True)


def test_bad_worker_options_leave_nothing_behind(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for args, message in (
        (["--workers", "0"], "--workers 0"),
        (["--scheduler", "tcp://127.0.0.1:1"], "cannot connect"),
    ):
        code = exit_code(["run", "-e", "score", "-p", "fn=cos", "-K", "10", "--out", str(tmp_path / "x"), *args])
        assert code == 2 and message in capsys.readouterr().err
        assert not (tmp_path / "x").exists()  # connected (or refused) before any run folder was made


DYING = """
import os

from rpbench import Estimator, register_estimator
from rpbench.estimators.base import per_estimate_gradients


@register_estimator
class DiesOnSigmaTwo(Estimator):
    \"\"\"Pathwise, except that its worker process dies outright (os._exit) on sigma = 2.\"\"\"

    name = "dies-on-sigma-2"
    summary = "pathwise; kills its process where sigma = 2"
    reference = "a test"
    needs = frozenset({"reparameterizable"})

    def estimate(self, task, samples, batch, generator):
        if task.config["sigma"] == 2:
            os._exit(3)
        noise = task.noise(generator, (samples, batch))
        return per_estimate_gradients(lambda t, e: task.objective(t, task.sample(t, e)).mean(), task.theta, noise)
"""


@pytest.mark.dask
def test_a_worker_that_dies_gives_full_failed_rows_and_the_sweep_goes_on(tmp_path: Path) -> None:
    plugin = tmp_path / "dying.py"
    plugin.write_text(DYING)
    args = ["run", "--plugin", str(plugin), "-e", "dies-on-sigma-2,score", "-p", "fn=cos", "-p", "sigma=1,2,3"]
    try:  # Dask retries a cell whose worker died (3 times by default: cells beside it are innocent)
        code = exit_code(
            [*args, "-p", "k=0.5", "-K", "50", "--repeats", "1", "--workers", "2", "-q", "--out", str(tmp_path)]
        )
    finally:
        ESTIMATORS.pop("dies-on-sigma-2", None)  # the plugin registered in this process too
    assert code == 1  # a failed cell: exit 1, not a traceback
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    table = pd.read_csv(run_dir / RESULTS_FILE)
    failed = table[table["status"] == "failed"]
    assert len(table) == 3 * 2 * 2 and len(failed) == 2  # every cell's rows; the dead cell's two groups
    assert set(failed["estimator"]) == {"dies-on-sigma-2"} and set(failed["sigma"]) == {2.0}
    assert set(failed["group"]) == {"mu", "sigma"} and failed["error"].str.contains("Killed|died|worker").all()
    for column in ("task", "fn", "k", "dim", "mu", "samples", "batch", "seed", "device", "cell_seed"):
        assert failed[column].notna().all(), column  # full configuration, not just task and seed
    assert (table.loc[table["status"] == "ok", "variance"] >= 0).all()


@pytest.mark.dask
def test_cells_queued_behind_a_dying_cell_on_its_worker_are_not_reported_dead(tmp_path: Path) -> None:
    """Dask suspects every job a dead worker held; with no retries and every job sent to a worker at
    once, the cells queued behind the killer used to come back as KilledWorker (seen in CI under load)."""
    import dask

    plugin = tmp_path / "dying.py"
    slow_and_dying = DYING.replace("import os", "import os\nimport time").replace('["sigma"] == 2:', '["sigma"] == 1:')
    plugin.write_text(slow_and_dying.replace("        noise =", "        time.sleep(0.2)\n        noise ="))
    args = [
        "run",
        "--plugin",
        str(plugin),
        "-e",
        "dies-on-sigma-2",
        "-p",
        "fn=cos",
        "-p",
        "sigma=1,2,3,4,5",
        "-p",
        "k=0.5",
    ]
    queue_everything = {
        "distributed.scheduler.worker-saturation": float("inf"),
        "distributed.scheduler.allowed-failures": 0,
    }
    try:
        with dask.config.set(queue_everything):
            code = exit_code([*args, "-K", "50", "--repeats", "1", "--workers", "2", "-q", "--out", str(tmp_path)])
    finally:
        ESTIMATORS.pop("dies-on-sigma-2", None)
    assert code == 1
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    table = pd.read_csv(run_dir / RESULTS_FILE)
    assert len(table) == 5 * 2
    assert set(table.loc[table["status"] == "failed", "sigma"]) == {1.0}  # the killer only (job 0)


@pytest.mark.dask
def test_a_local_cluster_leaves_the_environment_as_it_found_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dask's nannies set OMP_NUM_THREADS=1 (and MKL's, OpenBLAS's) in this process for their workers;
    every later subprocess would inherit one thread, and its numbers differ in the last bits."""
    import os

    from rpbench.distributed import connect, disconnect

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("MKL_NUM_THREADS", "2")
    client = connect(1, None)
    try:
        assert os.environ.get("OMP_NUM_THREADS") == "1"  # Dask's doing, while the cluster runs
    finally:
        disconnect(client)
    assert "OMP_NUM_THREADS" not in os.environ and os.environ["MKL_NUM_THREADS"] == "2"
