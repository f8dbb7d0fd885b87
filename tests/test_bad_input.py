"""The bad-input battery across every command: one line, exit code 2, no traceback, and the
results written before are untouched."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.conftest import exit_code


@pytest.fixture(scope="module")
def earlier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A results folder with one finished run, and a suite file with an error in it."""
    root = tmp_path_factory.mktemp("bad-input")
    args = [
        "run",
        "-e",
        "score,pathwise",
        "-p",
        "fn=cos",
        "-p",
        "sigma=1,2",
        "-p",
        "k=1",
        "-K",
        "50",
        "--repeats",
        "1",
        "--out",
        str(root / "results"),
        "-q",
    ]
    assert exit_code(args) == 0
    (root / "bad.toml").write_text("[[run]]\ntask = 'gaussian'\nsamples = 'many'\n")
    (root / "broken.toml").write_text("[[run]\ntask = 'gaussian'\n")
    (root / "other.csv").write_text("task,estimator\ngaussian,score\n")
    return root


def run_dir(root: Path) -> str:
    (folder,) = list((root / "results").iterdir())
    return str(folder)


CASES: list[tuple[str, list[str], str]] = [
    ("run: unknown task", ["run", "-t", "gausian"], "valid tasks:"),
    ("run: unknown estimator", ["run", "-e", "reinforce"], "valid estimators: all,"),
    ("run: unknown parameter", ["run", "-p", "colour=red"], "valid parameters:"),
    ("run: sigma <= 0", ["run", "-p", "sigma=0"], "expected a number > 0"),
    ("run: K < 2", ["run", "-K", "1"], "need K >= 2"),
    ("run: estimator not applicable", ["run", "-e", "disarm"], "needs bernoulli"),
    ("run: bad device", ["run", "--device", "gpu"], "valid choices: cpu, cuda, cuda:N"),
    ("run: bad data", ["run", "-t", "vae", "-p", "data=cifar"], "valid choices: digits, mnist5k, mnist:PATH"),
    ("run: bad dtype", ["run", "-p", "dtype=float16"], "dtype='float16' is not valid; valid choices: float32, float64"),
    ("run: bad VAE dtype", ["run", "-t", "discrete-vae", "-p", "dtype=half"], "valid choices: float32, float64"),
    ("run: zero workers", ["run", "-K", "10", "--workers", "0"], "--workers 0"),
    ("run: bad memory size", ["run", "-K", "10", "--max-memory", "lots"], "expected a size of at least 1M"),
    ("run: negative min time", ["run", "-K", "10", "--min-time", "-1"], "--min-time -1.0: need seconds >= 0"),
    ("run: negative timing threads", ["run", "-K", "10", "--timing-threads", "-2"], "need threads >= 1, or 0"),
    ("run: no timed value", ["run", "-K", "10", "--repeats", "0"], "--repeats 0: need at least 1 timed value"),
    ("list: unknown task", ["list", "-t", "nope"], "valid tasks:"),
    ("suite: missing file", ["run", "--suite", "{root}/none.toml"], "no such file"),
    ("suite: wrong type", ["run", "--suite", "{root}/bad.toml"], "run[1].samples = 'many': expected an integer"),
    ("suite: not TOML", ["run", "--suite", "{root}/broken.toml"], "not valid TOML"),
    ("resume: not a run folder", ["run", "--resume", "{root}"], "no run.json there"),
    ("report: missing folder", ["report", "{root}/nowhere"], "nowhere"),
    ("report: unknown metric", ["report", "{run}", "--metric", "speed"], "speed"),
    ("report: unknown format", ["report", "{run}", "--format", "html"], "html"),
    ("report: unknown reference", ["report", "{run}", "--relative-to", "mvd"], "mvd"),
    ("plot: bad extension", ["plot", "{run}", "-o", "{root}/figure.gif"], "gif"),
    ("plot: unknown x", ["plot", "{run}", "--x", "tau", "-o", "{root}/figure.png"], "tau"),
    ("compare: missing file", ["compare", "{run}", "{root}/none.csv"], "none.csv"),
    ("compare: unknown metric", ["compare", "{run}", "{run}", "--metric", "speed"], "valid choices"),
    ("compare: not a results table", ["compare", "{run}", "{root}/other.csv"], "other.csv"),
]
if not torch.cuda.is_available():
    CASES.append(("run: cuda without CUDA", ["run", "--device", "cuda"], "CUDA is not available"))


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(("name", "args", "message"), CASES, ids=[c[0] for c in CASES])
def test_bad_input(name: str, args: list[str], message: str, earlier: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(earlier)
    filled = [a.format(root=earlier, run=run_dir(earlier)) for a in args]
    if filled[0] == "run" and "--suite" not in filled and "--resume" not in filled:
        filled += ["--out", str(earlier / "results")]
    code = exit_code(filled)
    err = capsys.readouterr().err
    assert code == 2, (name, err)
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err, err
    assert message in err, err
    assert snapshot(earlier) == before


def test_the_battery_is_large_enough() -> None:
    commands = {args[0] if "--suite" not in args else "suite" for _, args, _ in CASES}
    assert len(CASES) >= 20 and {"run", "list", "report", "plot", "compare", "suite"} <= commands
