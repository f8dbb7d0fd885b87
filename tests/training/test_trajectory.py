"""rpbench train --measure K: measure.csv along each trajectory, as declared, at the same states,
continued exactly by --resume, and its bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import rpbench
from rpbench.columns import MEASURE_COLUMNS_KEY, MEASURE_FILE
from rpbench.training.runs import CURVES_FILE
from rpbench.training.trajectory import repair_measure_table
from tests.conftest import TIMING, exit_code

SMALL = {"latents": 2, "categories": 3, "hidden": 16}  # enumerable: the truth at every state is exact
KWARGS = {"estimators": "gumbel,score+loo", "params": SMALL, "steps": 8, "eval_every": 4, "batch": 2}
MEASURED = "score+loo,gumbel:tau=0.5"


def train(out: Path | None, **extra: object) -> rpbench.Run:
    return rpbench.train(**KWARGS, eval_samples=4, seeds=[0, 1], out=out, measure=40, **extra)  # type: ignore[arg-type]


def measured(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(run_dir / MEASURE_FILE).drop(columns=TIMING)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = train(tmp_path_factory.mktemp("measure"), measure_estimators=MEASURED)
    assert run.path is not None
    return run.path


def test_measure_csv_has_every_point_of_every_run_as_run_json_declares(run_dir: Path) -> None:
    meta = json.loads((run_dir / "run.json").read_text())
    header = (run_dir / MEASURE_FILE).read_text().splitlines()[0].split(",")
    assert [c["name"] for c in meta[MEASURE_COLUMNS_KEY]] == header
    table = rpbench.load(run_dir / MEASURE_FILE).results
    # 2 training estimators × 2 seeds × 3 points (0, 4, 8) × 2 measured estimators × 2 groups
    assert len(table) == 2 * 2 * 3 * 2 * 2 and set(table["step"]) == {0, 4, 8}
    assert set(table["trained_with"]) == {"gumbel:tau=1.0", "score+loo"}
    assert set(zip(table["estimator"], table["tau"].fillna(-1), strict=True)) == {("score+loo", -1), ("gumbel", 0.5)}
    assert (table["samples"] == 40).all() and (table["truth"] == "enumeration").all()
    curves = pd.read_csv(run_dir / CURVES_FILE)
    points = set(zip(curves["run_seed"], curves["step"], strict=True))
    assert set(zip(table["run_seed"], table["step"], strict=True)) == points  # every point, no other
    assert (table["model_seed"] == table["seed"]).all()


def test_every_trajectory_of_a_seed_is_measured_at_the_same_initial_state(run_dir: Path) -> None:
    """At step 0 the two training estimators of one seed share the model: the same numbers bit for
    bit; by step 8 they have trained apart."""
    table = measured(run_dir)
    numbers = [c for c in table.columns if c not in ("trained_with", "run_seed")]
    for seed in (0, 1):
        for step, same in ((0, True), (8, False)):
            at = table[(table["seed"] == seed) & (table["step"] == step)]
            gumbel = at[at["trained_with"] == "gumbel:tau=1.0"][numbers].reset_index(drop=True)
            loo = at[at["trained_with"] == "score+loo"][numbers].reset_index(drop=True)
            assert len(gumbel) == len(loo) == 4 and gumbel.equals(loo) is same, (seed, step)


def test_unbiased_estimators_measured_along_training_have_no_significant_bias(run_dir: Path) -> None:
    """The truth is the enumerated gradient at each state: score+loo's bias is not significant at any
    of its 24 rows (95% each; 0 flagged with these seeds), Gumbel(τ = 0.5)'s is at every one."""
    table = rpbench.load(run_dir / MEASURE_FILE).results
    loo = table[table["estimator"] == "score+loo"]
    gumbel = table[table["estimator"] == "gumbel"]
    assert len(loo) == len(gumbel) == 24
    assert int(loo["bias_significant"].sum()) <= 1 and bool(gumbel["bias_significant"].all())


class Stop(BaseException):
    """A kill at a known point: raised from the row callback after the point's checkpoint and records."""


@pytest.mark.slow
@pytest.mark.parametrize("stop_after", [2, 7])
def test_a_stopped_run_resumes_to_the_uninterrupted_measure_csv(run_dir: Path, tmp_path: Path, stop_after: int) -> None:
    seen: list[object] = []

    def stop(row: object) -> None:
        seen.append(row)
        if len(seen) == stop_after:
            raise Stop

    with pytest.raises(Stop):
        train(tmp_path, measure_estimators=MEASURED, on_point=stop)
    (stopped,) = list(tmp_path.iterdir())
    rpbench.train(resume=stopped)
    pd.testing.assert_frame_equal(measured(stopped), measured(run_dir), check_exact=True)


def test_records_of_a_point_without_its_curve_row_are_dropped_on_repair(tmp_path: Path) -> None:
    """A kill between a point's measure.csv records and its curves.csv row; and a torn last record."""
    curves, measure = tmp_path / CURVES_FILE, tmp_path / MEASURE_FILE
    curves.write_text("run_seed,step\n7,0\n7,4\n")
    measure.write_text("estimator,run_seed,step\na,7,0\nb,7,0\na,7,4\na,7,8\nb,7,8\na,9")
    repair_measure_table(measure, curves)
    assert measure.read_text() == "estimator,run_seed,step\na,7,0\nb,7,0\na,7,4\n"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--measure", "1"], "--measure 1: need K >= 2 estimates"),
        (["--measure-estimators", "all"], "--measure-estimators needs --measure K"),
        (["--measure", "10", "--measure-estimators", "nope"], "unknown estimator 'nope'"),
    ],
)
def test_bad_measure_options_are_one_line_with_nothing_written(
    extra: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["train", "-p", "latents=2", "-p", "categories=3", "--steps", "2", "--out", str(tmp_path / "o"), *extra]
    assert exit_code(args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_measuring_needs_a_run_folder() -> None:
    with pytest.raises(rpbench.UsageError, match=r"writes measure\.csv into a run folder"):
        train(None)
