"""The command line end to end: outputs, determinism, and one-line errors with exit code 2."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from rpbench.results import COORDS_FILE, META_FILE, RESULTS_FILE
from tests.conftest import TIMING, exit_code


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = exit_code(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def only_run(out: Path) -> Path:
    (run_dir,) = list(out.iterdir())
    return run_dir


def test_run_writes_csv_coords_and_sidecar(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(
        [
            "run",
            "-t",
            "gaussian",
            "-e",
            "score,pathwise",
            "-p",
            "fn=quadratic",
            "-p",
            "sigma=1,2",
            "-p",
            "k=0",
            "-K",
            "200",
            "--repeats",
            "2",
            "--out",
            str(tmp_path),
        ],
        capsys,
    )
    assert code == 0
    run_dir = only_run(tmp_path)
    table = pd.read_csv(run_dir / RESULTS_FILE)
    assert len(table) == 2 * 2 * 2  # σ values × estimators × groups
    assert set(table["group"]) == {"mu", "sigma"}
    assert (table["samples"] == 200).all() and (table["batch"] == 1).all()
    coords = pd.read_csv(run_dir / COORDS_FILE)
    assert len(coords) == len(table)  # D = 1: one coordinate per row
    assert (run_dir / META_FILE).exists()
    assert "variance, group mu" in out and "wrote 8 rows" in out


def test_same_seed_gives_identical_csv_apart_from_timing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "run",
        "-e",
        "all",
        "-p",
        "fn=cos,step",
        "-p",
        "sigma=1",
        "-p",
        "dim=2",
        "-n",
        "2",
        "-K",
        "100",
        "--repeats",
        "1",
        "--seed",
        "3",
    ]
    tables = []
    for name in ("a", "b"):
        assert run_cli([*args, "--out", str(tmp_path / name)], capsys)[0] == 0
        text = (only_run(tmp_path / name) / RESULTS_FILE).read_text()
        tables.append(pd.read_csv(only_run(tmp_path / name) / RESULTS_FILE).drop(columns=TIMING))
        assert text.count("\n") == len(tables[-1]) + 1
    pd.testing.assert_frame_equal(tables[0], tables[1], check_exact=True)
    assert run_cli([*args[:-1], "4", "--out", str(tmp_path / "c")], capsys)[0] == 0
    other = pd.read_csv(only_run(tmp_path / "c") / RESULTS_FILE).drop(columns=TIMING)
    assert not other["mean"].equals(tables[0]["mean"])


def test_a_vae_task_runs_from_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "run",
        "-t",
        "discrete-vae",
        "-p",
        "latents=2",
        "-p",
        "categories=3",
        "-p",
        "minibatch=4",
        "-p",
        "hidden=16",
        "-e",
        "score+loo,gumbel:tau=0.5,1",
        "-n",
        "2",
        "-K",
        "200",
        "--repeats",
        "1",
        "--out",
        str(tmp_path),
    ]
    code, out, _ = run_cli(args, capsys)
    assert code == 0 and "group encoder" in out and "gumbel (tau=0.5)" in out
    table = pd.read_csv(only_run(tmp_path) / RESULTS_FILE)
    assert set(table["group"]) == {"encoder", "decoder"}
    assert (table["truth"] == "enumeration").all() and (table["exact_se"] == 0).all()
    assert list(table.loc[table["estimator"] == "gumbel", "biased"].unique()) == [True]
    assert (table["n_coords"] > 100).all()
    assert not (only_run(tmp_path) / COORDS_FILE).exists()  # network groups are too large for per-coordinate rows


@pytest.mark.parametrize(
    ("terminal", "quiet", "shown"), [(False, False, False), (True, False, True), (True, True, False)]
)
def test_a_reference_shows_its_progress_in_a_terminal_unless_quiet(
    terminal: bool, quiet: bool, shown: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rich.console import Console

    from rpbench import cli, truth

    monkeypatch.setattr(truth, "_CACHE", {})  # the reference is drawn here, not found in memory
    screen = io.StringIO()
    monkeypatch.setattr(cli, "console", Console(file=screen, force_terminal=terminal, width=200, color_system=None))
    args = ["run", "-t", "vae", "-e", "pathwise", "-K", "20", "--repeats", "1", "--out", str(tmp_path)]
    args += ["-p", "latents=2", "-p", "minibatch=4", "-p", "hidden=16", "-p", "reference=400", "--no-cache"]
    assert exit_code(args + ["-q"] * quiet) == 0
    text = screen.getvalue()
    assert ("reference vae" in text and "estimate passes, reference:pathwisex400" in text) == shown, text
    assert ("measuring" in text) == terminal  # the cells' bar, as before: in a terminal only
    assert "wrote 2 rows" in text


def test_list_shows_tasks_estimators_and_one_task_in_full(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["list"], capsys)
    assert code == 0
    for word in ("gaussian", "score+loo", "pathwise+delta", "mvd", "batch>=2", "decay=0.9"):
        assert word in out
    code, out, _ = run_cli(["list", "--task", "gaussian"], capsys)
    assert code == 0 and "expquad" in out and "applicability" in out


BAD_INPUTS = [
    (
        ["run", "--task", "nope"],
        "unknown task 'nope'; valid tasks: bernoulli-toy, bernoulli-vae, beta-dist, discrete-vae, gamma, gaussian, vae",
    ),
    (["run", "-e", "nope"], "unknown estimator 'nope'; valid estimators: all,"),
    (["run", "-p", "colour=red"], "unknown parameter 'colour'; valid parameters: dim, mu, sigma, fn, k"),
    (["run", "-p", "sigma=0"], "sigma='0' is out of range; expected a number > 0"),
    (["run", "-p", "sigma=-1,1"], "out of range"),
    (["run", "-p", "dim=two"], "not a valid int"),
    (["run", "-p", "fn=sin"], "valid choices: linear, quadratic, cos, expquad, step"),
    (["run", "-p", "sigma"], "not of the form key=value"),
    (["run", "-K", "1"], "--samples 1: need K >= 2"),
    (["run", "-n", "0"], "--batch 0"),
    (["run", "-e", "score+loo"], "score+loo does not apply to task gaussian: needs --batch >= 2"),
    (["run", "-e", "score+delta", "-p", "fn=step"], "needs differentiable"),
    (["run", "-e", "score+ma:decay=1.5"], "decay='1.5' is out of range; expected a number in [0, 1)"),
    (["run", "-e", "score+ma:tau=1"], "unknown parameter 'tau'; valid parameters: decay"),
    (["run", "--device", "tpu"], "valid choices: cpu, cuda, cuda:N"),
    (
        ["run", "-t", "discrete-vae", "-p", "data=cifar"],
        "unknown data 'cifar'; valid choices: digits, mnist5k, mnist:PATH",
    ),
    (["run", "-t", "discrete-vae", "-p", "data=mnist:/no/such/place"], "mnist:/no/such/place"),
    (["run", "-t", "bernoulli-vae", "-p", "layers=deep"], "valid choices: linear, nonlinear"),
    (["run", "-t", "vae", "-p", "minibatch=0"], "minibatch='0' is out of range"),
    (["run", "-t", "vae", "-p", "binarize=soft"], "valid choices: static, dynamic"),
    (["run", "-e", "gumbel"], "gumbel does not apply to task gaussian: needs relaxable"),
    (["run", "-t", "discrete-vae", "-e", "disarm"], "disarm does not apply to task discrete-vae: needs bernoulli"),
    (["run", "-t", "discrete-vae", "-e", "gumbel:tau=0"], "tau='0' is out of range; expected a number > 0"),
    (["run", "--metric", "speed"], "valid choices: variance"),
    (["run", "--level", "95"], "--level 95.0"),
    (["run", "-K", "ten"], "--samples 'ten': expected an integer or a comma list of integers"),
    (["run", "-n", "1,two"], "--batch '1,two': expected an integer or a comma list of integers, e.g. 1 or 1,2,4,8"),
    (["run", "-n", "1,2,1"], "--batch 1,2,1: 1 is listed twice"),
    (["run", "-K", "100,1"], "--samples 1: need K >= 2"),
    (["run", "--target-rel-ci", "0"], "--target-rel-ci 0.0: need a relative half-width > 0"),
    (["run", "--target-rel-ci", "-1"], "--target-rel-ci -1.0: need a relative half-width > 0"),
    (["run", "--max-samples", "5000"], "--max-samples 5000 caps adaptive K; give --target-rel-ci too"),
    (["run", "--target-rel-ci", "0.1", "--max-samples", "5"], "--max-samples 5 is below the starting K (--samples 10)"),
    (["run", "-e", "score+loo", "-n", "1"], "score+loo does not apply to task gaussian: needs --batch >= 2"),
    (["run", "--equal-cost", "8", "-n", "2"], "--equal-cost sets each estimator's n from its evaluations of f"),
    (["run", "--equal-cost", "0"], "--equal-cost 0: need an integer >= 1 evaluations of f per estimate"),
    (["run", "-e", "mvd", "-p", "dim=3", "--equal-cost", "4"], "mvd does not apply to task gaussian: --equal-cost 4"),
    (["run", "--bogus"], "No such option"),
    (["list", "--task", "nope"], "unknown task 'nope'"),
    (["frobnicate"], "No such command"),
]
if not torch.cuda.is_available():
    BAD_INPUTS.append((["run", "--device", "cuda"], "CUDA is not available on this machine; valid choices: cpu"))


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(("args", "message"), BAD_INPUTS, ids=[" ".join(a) for a, _ in BAD_INPUTS])
def test_bad_input_gives_one_line_and_exit_2(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "results"
    (out / "earlier-run").mkdir(parents=True)
    (out / "earlier-run" / RESULTS_FILE).write_text("task,estimator\ngaussian,score\n")
    before = snapshot(out)
    extra = ["--out", str(out), "-K", "10"] if args[0] == "run" and "-K" not in args else []
    code, _, err = run_cli([*args, *extra] if args[0] == "run" else args, capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert message in lines[0]
    assert "Traceback" not in err
    assert snapshot(out) == before  # nothing written, nothing damaged


def test_unwritable_out_is_one_line_and_leaves_files_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("precious")
    code, _, err = run_cli(["run", "-K", "10", "--out", str(blocker / "sub")], capsys)
    assert code == 2 and err.count("\n") == 1 and "--out" in err and "choose a writable folder" in err
    assert blocker.read_text() == "precious"


@pytest.mark.slow
def test_the_installed_entry_point_exits_2_without_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "rpbench", "run", "-p", "sigma=0", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and result.stderr.startswith("error: ")
    assert list(tmp_path.iterdir()) == []


PLUGIN = '''
import torch
from rpbench.estimators.base import Estimator, per_estimate_gradients
from rpbench.registry import register_estimator


@register_estimator
class ConstantBaselineScore(Estimator):
    """Score function with a constant baseline of 1 (Williams 1992)."""

    name = "test-plugin-score"
    summary = "score function, baseline 1"
    reference = "Williams 1992"
    needs = frozenset({"log-prob"})

    def estimate(self, task, samples, batch, generator):
        noise = task.noise(generator, (samples, batch))

        def surrogate(theta, eps):
            z = task.sample(theta, eps).detach()
            f = task.objective(theta, z)
            return (f + (f.detach() - 1.0) * task.log_prob(theta, z)).mean()

        return per_estimate_gradients(surrogate, task.theta, noise)
'''


def test_a_plugin_file_adds_an_estimator_to_list_and_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rpbench.registry import ESTIMATORS

    plugin = tmp_path / "my_estimator.py"
    plugin.write_text(PLUGIN)
    try:
        code, out, _ = run_cli(["list", "--plugin", str(plugin)], capsys)
        assert code == 0 and "test-plugin-score" in out
        args = [
            "run",
            "--plugin",
            str(plugin),
            "-e",
            "test-plugin-score,score",
            "-p",
            "fn=cos",
            "-p",
            "sigma=1",
            "-K",
            "300",
            "--repeats",
            "1",
            "--out",
            str(tmp_path / "out"),
        ]
        assert run_cli(args, capsys)[0] == 0
        table = pd.read_csv(only_run(tmp_path / "out") / RESULTS_FILE)
        assert set(table["estimator"]) == {"test-plugin-score", "score"}
        assert not table["bias_significant"].any()
    finally:
        ESTIMATORS.pop("test-plugin-score", None)


@pytest.mark.parametrize("plugin", ["no/such/file.py", "no_such_module_xyz"])
def test_a_bad_plugin_is_one_line(plugin: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["list", "--plugin", plugin], capsys)
    assert code == 2 and err.count("\n") == 1 and err.startswith(f"error: --plugin {plugin}: cannot load it")


def test_where_selects_rows_for_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "run",
        "-e",
        "score,pathwise",
        "-p",
        "fn=cos,step",
        "-p",
        "sigma=1",
        "-K",
        "50",
        "--repeats",
        "1",
        "--out",
        str(tmp_path),
    ]
    assert run_cli(args, capsys)[0] == 0
    run_dir = str(only_run(tmp_path))
    code, out, _ = run_cli(["report", run_dir, "-w", "fn=cos", "--group", "mu"], capsys)
    assert code == 0 and "fn=step" not in out and "score" in out
    code, _, err = run_cli(["report", run_dir, "-w", "fn=sin"], capsys)
    assert code == 2 and "no row matches; values present: cos, step" in err
    code, _, err = run_cli(["report", run_dir, "-w", "colour=red"], capsys)
    assert code == 2 and "no column 'colour'" in err


def test_a_failing_cell_is_recorded_and_the_sweep_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from rpbench.estimators.score import Score

    def broken(self, task, samples, batch, generator):  # a deliberately failing estimator: NaN estimates
        return {group: torch.full((samples, *value.shape), float("nan")) for group, value in task.theta.items()}

    monkeypatch.setattr(Score, "estimate", broken)
    args = [
        "run",
        "-e",
        "score,pathwise",
        "-p",
        "fn=cos",
        "-p",
        "sigma=1",
        "-p",
        "k=1",
        "-K",
        "50",
        "--repeats",
        "1",
        "--out",
        str(tmp_path),
    ]
    code, out, _ = run_cli(args, capsys)
    assert code == 1 and "failed: gaussian score group mu: FloatingPointError: non-finite estimates" in out
    table = pd.read_csv(only_run(tmp_path) / RESULTS_FILE)
    assert list(table["status"]) == ["failed", "failed", "ok", "ok"]
    assert "tracebacks in" in out and (only_run(tmp_path) / "failures" / f"{table['cell_seed'][0]}.txt").exists()
    assert table.loc[table["status"] == "ok", "variance"].notna().all()
    assert table.loc[table["status"] == "failed", "variance"].isna().all()


def variance_by_n(run_dir: Path) -> dict[tuple[str, str, int], tuple[float, float, float]]:
    table = pd.read_csv(run_dir / RESULTS_FILE)
    return {
        (r.estimator, r.group, int(r.batch)): (r.variance, r.variance_lo, r.variance_hi) for r in table.itertuples()
    }


def test_a_list_of_n_is_one_run_and_score_follows_the_1_over_n_law(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["run", "-e", "score,score+loo", "-p", "fn=cos", "-p", "sigma=1", "-p", "k=1", "-n", "1,2,4"]
    code, out, _ = run_cli([*args, "-K", "4000", "--repeats", "1", "--out", str(tmp_path)], capsys)
    assert code == 0
    assert "skipped 1 estimator/configuration pairs" in out and "at n=1: needs --batch >= 2" in out
    (run_dir,) = list(tmp_path.iterdir())
    variance = variance_by_n(run_dir)
    assert sorted(k for k in variance if k[0] == "score+loo") == [
        ("score+loo", g, n) for g in ("mu", "sigma") for n in (2, 4)
    ]

    def overlaps(n: int, group: str, power: int) -> bool:
        """Does n^power · Var(n) share values with Var(1), each within its interval?"""
        _, lo1, hi1 = variance[("score", group, 1)]
        _, lo, hi = variance[("score", group, n)]
        return lo * n**power <= hi1 and lo1 <= hi * n**power

    assert all(overlaps(n, group, 1) for n in (2, 4) for group in ("mu", "sigma"))  # Var(n) = Var(1) / n
    assert not any(overlaps(4, group, 2) for group in ("mu", "sigma"))  # a 1/n² law is refuted

    code, out, _ = run_cli(["report", str(run_dir), "--columns", "batch", "--group", "mu"], capsys)
    assert code == 0
    header = next(line for line in out.splitlines() if line.startswith("| estimator"))
    assert [cell.strip() for cell in header.strip("|").split("|")][1:] == ["batch=1", "batch=2", "batch=4"]
    code, out, _ = run_cli(["report", str(run_dir)], capsys)  # the default layout: n is a column too
    assert code == 0 and "batch=4" in out


def test_adaptive_k_from_the_command_line_records_its_options_and_the_k_reached(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["run", "-e", "score,pathwise", "-p", "fn=quadratic", "-p", "sigma=1", "-p", "k=0.5", "-K", "100"]
    args += ["--target-rel-ci", "0.1", "--max-samples", "8000", "--repeats", "1", "--out", str(tmp_path)]
    code, out, _ = run_cli(args, capsys)
    assert code == 0 and "adaptive K: 1 of 2 cells met the target" in out
    (run_dir,) = list(tmp_path.iterdir())
    table = pd.read_csv(run_dir / RESULTS_FILE)
    meta = json.loads((run_dir / META_FILE).read_text())
    (entry,) = meta["options"]["entries"]
    assert entry["target_rel_ci"] == 0.1 and entry["max_samples"] == 8000 and entry["samples"] == 100
    roles = {c["name"]: c["role"] for c in meta["columns"]}
    assert roles["samples"] == "outcome" and roles["start_samples"] == "key" and roles["target_reached"] == "outcome"
    by = table.set_index(["estimator", "group"])
    assert (table["start_samples"] == 100).all()
    assert by.loc[("pathwise", "mu"), "target_reached"] and by.loc[("pathwise", "mu"), "samples"] == 6400
    assert not by.loc[("score", "mu"), "target_reached"] and by.loc[("score", "mu"), "samples"] == 8000  # the cap
