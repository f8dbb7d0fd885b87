"""Suite files: parsing, validation with one-line errors, and the shipped suites."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from rpbench.cli import main
from rpbench.errors import UsageError
from rpbench.results import RESULTS_FILE
from rpbench.suite import load_suite

ROOT = Path(__file__).resolve().parents[1]
TINY = """
[suite]
name = "tiny"
samples = 50
batch = 2
seeds = [0, 1]
repeats = 1

[[run]]
task = "gaussian"
params = { fn = ["cos", "step"], sigma = 1, k = 0.5 }
estimators = ["score,pathwise"]

[[run]]
task = "discrete-vae"
params = { latents = 2, categories = 3, minibatch = 4, hidden = 8 }
estimators = ["score+loo", "gumbel:tau=0.5"]
samples = 30
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "suite.toml"
    path.write_text(text)
    return path


def test_a_suite_parses_with_defaults_and_overrides(tmp_path: Path) -> None:
    suite = load_suite(write(tmp_path, TINY))
    assert suite.name == "tiny" and len(suite.entries) == 2
    first, second = suite.entries
    assert first.params == {"fn": ["cos", "step"], "sigma": ["1"], "k": ["0.5"]}
    assert first.samples == 50 and second.samples == 30 and second.batch == 2 and second.seeds == [0, 1]


def test_running_a_suite_writes_one_table_with_every_entry(tmp_path: Path) -> None:
    main(["run", "--suite", str(write(tmp_path, TINY)), "--out", str(tmp_path / "out"), "-q"])
    (run_dir,) = list((tmp_path / "out").iterdir())
    assert run_dir.name.split("-")[2] == "tiny"
    table = pd.read_csv(run_dir / RESULTS_FILE)
    assert set(table["task"]) == {"gaussian", "discrete-vae"}
    assert set(table["seed"]) == {0, 1}
    assert len(table) == (2 * 2 * 2 + 2 * 2) * 2  # (fns × estimators × groups + estimators × groups) × seeds


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[run]]\ntask = 'gaussian'\nparams = { sigma = [1, 2 }\n", "not valid TOML"),
        ("[suite]\nname='x'\n", "no [[run]] entries"),
        ("[suite]\nsample = 3\n[[run]]\ntask='gaussian'\n", "[suite] has unknown key 'sample'"),
        ("[[run]]\ntask='gaussian'\nestimator=['all']\n", "run[1]: unknown key 'estimator'"),
        ("[[run]]\nparams = { sigma = 1 }\n", "run[1]: missing key 'task'"),
        ("[[run]]\ntask='gaussian'\nsamples=1\n", "run[1].samples = 1: expected an integer >= 2"),
        ("[[run]]\ntask='gaussian'\nparams = { sigma = [] }\n", "run[1].params.sigma: empty list"),
        ("[[run]]\ntask='gaussian'\nparams = { sigma = true }\n", "run[1].params.sigma = True"),
        ("[[run]]\ntask='gaussian'\n[[run]]\ntask='nope'\n", "run[2]: unknown task 'nope'"),
        (
            "[[run]]\ntask='gaussian'\nparams = { sigma = -1 }\n",
            "run[1]: task gaussian: parameter sigma='-1' is out of range",
        ),
        ("[[run]]\ntask='gaussian'\nestimators=['score+loo']\nbatch=1\n", "run[1]: estimator score+loo does not apply"),
        ("[[run]]\ntask='gaussian'\nbatch=[1, 0]\n", "run[1].batch = 0: expected an integer >= 1"),
        ("[[run]]\ntask='gaussian'\nbatch=[]\n", "run[1].batch = []: empty list"),
        ("[[run]]\ntask='gaussian'\nbatch=[2, 2]\n", "run[1].batch = 2,2: 2 is listed twice"),
        ("[[run]]\ntask='gaussian'\ntarget_rel_ci=0\n", "run[1].target_rel_ci = 0.0: need a relative half-width > 0"),
        ("[[run]]\ntask='gaussian'\ntarget_rel_ci='tight'\n", "run[1].target_rel_ci = 'tight': expected a number"),
        ("[suite]\nmax_samples=5000\n[[run]]\ntask='gaussian'\n", "run[1].max_samples = 5000 caps adaptive K"),
        (
            "[[run]]\ntask='gaussian'\nsamples=1000\ntarget_rel_ci=0.1\nmax_samples=500\n",
            "run[1].max_samples = 500 is below the starting K (samples = 1000); give a cap >= 1000",
        ),
        ("[[run]]\ntask='gaussian'\nbatch=2\nequal_cost=8\n", "run[1]: equal_cost sets each estimator's n; drop batch"),
        ("[[run]]\ntask='gaussian'\nequal_cost=0\n", "run[1].equal_cost = 0: expected an integer >= 1"),
    ],
)
def test_bad_suites_are_one_line_errors_naming_file_and_key(
    tmp_path: Path, text: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(SystemExit) as done:
        main(["run", "--suite", str(path), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert done.value.code == 2 and err.count("\n") == 1
    assert str(path) in err and message in err, err
    assert not (tmp_path / "out").exists()


def test_suite_excludes_the_cell_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["run", "--suite", str(write(tmp_path, TINY)), "-t", "vae", "-K", "10"])
    assert done.value.code == 2 and "drop --task, --samples" in capsys.readouterr().err


def test_missing_suite_file() -> None:
    with pytest.raises(UsageError, match="no such file"):
        load_suite(Path("no/such/suite.toml"))


@pytest.mark.parametrize("path", sorted((ROOT / "tasks").glob("*.toml")), ids=lambda p: p.name)
def test_shipped_suites_are_valid(path: Path) -> None:
    from rpbench.params import resolve_grid
    from rpbench.registry import get_task
    from rpbench.runner import parse_estimators

    suite = load_suite(path)
    assert suite.entries and suite.description
    for entry in suite.entries:
        cls = get_task(entry.task)
        resolve_grid(cls.params, entry.params, entry.task)
        parse_estimators(entry.estimators)


def test_the_shipped_suites_cover_every_family() -> None:
    names = {p.stem for p in (ROOT / "tasks").glob("*.toml")}
    assert {"ci", "paper", "gaussian", "discrete-vae", "bernoulli-vae", "vae", "bernoulli-toy"} <= names
    from rpbench.registry import TASKS, load_builtins

    load_builtins()
    ci_tasks = {entry.task for entry in load_suite(ROOT / "tasks" / "ci.toml").entries}
    assert ci_tasks == set(TASKS)  # the regression gate covers every built-in task


def test_a_suite_sweeps_lists_of_n_and_k_and_asks_for_adaptive_k(tmp_path: Path) -> None:
    text = "[suite]\ntarget_rel_ci = 0.2\nmax_samples = 400\n"
    text += "[[run]]\ntask = 'gaussian'\nbatch = [1, 2]\nsamples = [50, 100]\n"
    (entry,) = load_suite(write(tmp_path, text)).entries
    assert entry.batch_sizes == [1, 2] and entry.sample_sizes == [50, 100]
    assert entry.target_rel_ci == 0.2 and entry.max_samples == 400 and entry.cap(50) == 400
    (fixed,) = load_suite(write(tmp_path, "[[run]]\ntask = 'gaussian'\nsamples = 300\n")).entries
    assert fixed.samples == 300 and fixed.batch == 1 and fixed.cap(300) is None
    (default,) = load_suite(write(tmp_path, "[[run]]\ntask = 'gaussian'\ntarget_rel_ci = 0.1\n")).entries
    assert default.max_samples is None and default.cap(1000) == 100_000  # 100 × the starting K


def test_a_suite_sets_the_timing_and_refuses_bad_values(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text("[suite]\nmin_time = 0.2\ntiming_threads = 0\nrepeats = 9\n\n[[run]]\ntask = 'gaussian'\n")
    (entry,) = load_suite(good).entries
    assert (entry.min_time, entry.timing_threads, entry.repeats) == (0.2, 0, 9)
    for text, message in (
        ("min_time = 'long'", "min_time = 'long': expected seconds >= 0"),
        ("min_time = -0.5", "min_time = -0.5: need seconds >= 0"),
        ("timing_threads = -1", "timing_threads"),
    ):
        bad = tmp_path / "bad.toml"
        bad.write_text(f"[[run]]\ntask = 'gaussian'\n{text}\n")
        with pytest.raises(UsageError, match=message):
            load_suite(bad)
