"""rpbench train / rpbench.train: curves.csv as declared, in memory as on disk, bad input, failed runs."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import rpbench
from rpbench.estimators.relaxed import GumbelSoftmax
from tests.conftest import TIMING, exit_code

SMALL = {"latents": 2, "categories": 3, "hidden": 16}
ARGS = ["train", "-p", "latents=2", "-p", "categories=3", "-p", "hidden=16", "-n", "2"]


def test_curves_are_written_as_run_json_declares_and_equal_an_in_memory_run(tmp_path: Path) -> None:
    kwargs = {"estimators": "gumbel:tau=0.5,1,score+loo", "params": SMALL, "steps": 6, "eval_every": 3}
    written = rpbench.train(**kwargs, seeds=[0, 1], batch=2, eval_samples=4, out=tmp_path)  # type: ignore[arg-type]
    assert written.path is not None and (written.path / "curves.csv").is_file()
    assert not (written.path / "results.csv").exists()
    final = pd.read_csv(written.path / "final.csv")  # per configuration, over the seeds
    assert list(final["estimator"]) == ["gumbel", "gumbel", "score+loo"] and (final["seeds"] == 2).all()
    meta = json.loads((written.path / "run.json").read_text())
    header = (written.path / "curves.csv").read_text().splitlines()[0].split(",")
    assert meta["kind"] == "train" and [c["name"] for c in meta["columns"]] == header
    curves = written.results
    assert len(curves) == 3 * 2 * 3  # estimator configurations × seeds × points (0, 3, 6)
    assert set(curves["tau"].dropna()) == {0.5, 1.0} and curves["step"].tolist()[:3] == [0, 3, 6]
    memory = rpbench.train(**kwargs, seeds=[0, 1], batch=2, eval_samples=4)  # type: ignore[arg-type]
    same = ["estimator", "tau", "seed", "step", "train_elbo", "eval_elbo", "eval_elbo_se", "eval_iwae", "status"]
    assert memory.path is None and memory.results[same].equals(curves[same])


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--steps", "0"], "need at least 1 training step"),
        (["--steps", "10", "--eval-every", "20"], "--eval-every 20: need 1 <= it <= --steps"),
        (["--lr", "-1"], "a learning rate is a number > 0"),
        (["-t", "gaussian"], "task gaussian cannot be trained; trainable tasks: bernoulli-vae, discrete-vae, vae"),
        (["-e", "nope"], "unknown estimator 'nope'"),
        (["--seeds", "0,x"], "expected a comma list of integers"),
        (["-p", "steps=5"], "a training run sets it itself; use --steps"),
        (["--train-batch", "4", "-p", "minibatch=8"], "drop --param minibatch"),
    ],
)
def test_bad_input_is_one_line_and_exit_2_with_nothing_written(
    extra: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert exit_code([*ARGS, *extra, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_a_failing_run_is_recorded_and_the_others_go_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    original = GumbelSoftmax.estimate

    def fails_at_tau_half(self, task, samples, batch, generator):  # type: ignore[no-untyped-def]
        if self.config["tau"] == 0.5:
            raise RuntimeError("deliberately broken")
        return original(self, task, samples, batch, generator)

    monkeypatch.setattr(GumbelSoftmax, "estimate", fails_at_tau_half)
    args = [*ARGS, "-e", "gumbel:tau=0.5,1", "--steps", "4", "--eval-every", "2", "--eval-samples", "3"]
    assert exit_code([*args, "--out", str(tmp_path)]) == 1
    assert "failed: gumbel seed 0 at step 1: RuntimeError: deliberately broken" in capsys.readouterr().out
    (run_dir,) = list(tmp_path.iterdir())
    curves = pd.read_csv(run_dir / "curves.csv")
    assert curves.groupby("tau")["status"].apply(list).to_dict() == {0.5: ["ok", "failed"], 1.0: ["ok"] * 3}


def test_report_and_plot_read_a_training_run_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = [*ARGS, "-e", "gumbel,score+loo", "--steps", "4", "--eval-every", "2", "--eval-samples", "3"]
    assert exit_code([*args, "--seeds", "0,1", "--out", str(tmp_path / "runs")]) == 0
    printed = capsys.readouterr().out  # the final table, as `rpbench report` prints it
    (run_dir,) = list((tmp_path / "runs").iterdir())
    header = (run_dir / "curves.csv").read_text().splitlines()[0].split(",")
    assert "model_seed" not in header and "seed" in header  # the run's seed is the model seed
    assert exit_code(["report", str(run_dir)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("eval_elbo: mean ± half-width of its 95% t-interval over 2 seeds")
    assert printed.startswith(text.strip())
    assert "| gumbel†" in text and "| score+loo" in text
    assert exit_code(["plot", str(run_dir), "-o", str(tmp_path / "curves.png")]) == 0
    assert (tmp_path / "curves.png").stat().st_size > 1000


DIES_ON_SEED_1 = """
import os

from rpbench import register_estimator
from rpbench.estimators.relaxed import GumbelSoftmax


@register_estimator
class DiesOnSeed1(GumbelSoftmax):
    \"\"\"Gumbel-Softmax, except that its worker process dies outright (os._exit) when training seed 1.\"\"\"

    name = "dies-on-seed-1"
    summary = "gumbel; kills its process on seed 1"
    reference = "a test"

    def estimate(self, task, samples, batch, generator):
        if task.model_seed == 1:
            os._exit(3)
        return super().estimate(task, samples, batch, generator)
"""
PARALLEL = [*ARGS, "--steps", "12", "--eval-every", "4", "--eval-samples", "4", "--seeds", "0,1", "-q"]


@pytest.mark.slow
@pytest.mark.dask
def test_runs_on_two_dask_workers_give_the_serial_curves(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    curves, measured = {}, {}
    for name, extra in (("serial", []), ("parallel", ["--workers", "2"])):
        args = [
            *PARALLEL,
            "-e",
            "rebar:tune_steps=5,gumbel,score+loo",
            "--measure",
            "10",
            *extra,
            "--out",
            str(tmp_path / name),
        ]
        assert exit_code(args) == 0
        (run_dir,) = list((tmp_path / name).iterdir())
        curves[name] = pd.read_csv(run_dir / "curves.csv").drop(columns="seconds")
        measured[name] = pd.read_csv(run_dir / "measure.csv").drop(columns=TIMING)
        assert len(list((run_dir / "checkpoints").iterdir())) == 3 * 2  # written by the workers
    assert len(curves["serial"]) == 3 * 2 * 4 and len(measured["serial"]) == 3 * 2 * 4 * 2  # × groups
    pd.testing.assert_frame_equal(curves["serial"], curves["parallel"], check_exact=True)
    pd.testing.assert_frame_equal(measured["serial"], measured["parallel"], check_exact=True)


@pytest.mark.slow
@pytest.mark.dask
def test_a_run_whose_worker_dies_is_failed_and_the_other_runs_go_on(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    from rpbench.registry import ESTIMATORS

    plugin = tmp_path / "dying.py"
    plugin.write_text(DIES_ON_SEED_1)
    args = [*PARALLEL, "-e", "dies-on-seed-1,score+loo", "--plugin", str(plugin), "--workers", "2"]
    try:
        assert exit_code([*args, "--out", str(tmp_path / "out")]) == 1
        (run_dir,) = list((tmp_path / "out").iterdir())
        curves = pd.read_csv(run_dir / "curves.csv")
        failed = curves[curves["status"] == "failed"]
        assert list(zip(failed["estimator"], failed["seed"], strict=True)) == [("dies-on-seed-1", 1)]
        assert failed["error"].str.contains("KilledWorker|died|worker").all() and int(failed["step"].iloc[0]) == 0
        assert (curves[curves["status"] == "ok"].groupby(["estimator", "seed"]).size() >= 4 - 3).all()
        assert len(curves) == 4 + 4 + 4 + 2  # three whole runs; the dead one's step 0 and its failure
        before = (run_dir / "curves.csv").read_bytes()  # --resume does not train the dead run on
        assert exit_code(["train", "--resume", str(run_dir), "-q"]) == 1
        assert (run_dir / "curves.csv").read_bytes() == before
    finally:
        ESTIMATORS.pop("dies-on-seed-1", None)
