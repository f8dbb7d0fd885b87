"""The regression gate on runs: matching rows, the statistical tests, and one-line errors on bad input."""

from __future__ import annotations

import dataclasses
import itertools
import math
from pathlib import Path

import pandas as pd
import pytest

from rpbench.columns import Column
from rpbench.errors import UsageError
from rpbench.views.compare import Comparison, compare_runs
from rpbench.views.constants import RELATIVE_SPEED, SPEED, SPEED_METRICS
from rpbench.views.loader import Run, load_run
from tests.views.runs import TINY, run_folder

BOUNDS = ("", "_lo", "_hi")


@pytest.fixture
def base(tiny_dir: Path) -> Run:
    return load_run(tiny_dir)


def edited(run: Run, **columns: object) -> Run:
    """A copy of the run whose results have ``columns`` assigned."""
    return run.with_results(run.results.assign(**columns))


def scaled(run: Run, metric: str, factor: float, rows: pd.Series | None = None) -> Run:
    """A copy with ``metric`` and its interval multiplied by ``factor`` (in ``rows``, default all)."""
    out = run.results.copy()
    where = slice(None) if rows is None else rows
    for suffix in BOUNDS:
        out.loc[where, f"{metric}{suffix}"] *= factor
    return run.with_results(out)


def with_key(run: Run, frame: pd.DataFrame, name: str, kind: str = "estimator") -> Run:
    """``frame`` as the run's results, with ``name`` added to the roles as a key column."""
    return dataclasses.replace(run, results=frame, columns=[*run.columns, Column(name, "key", "float", kind)])


def test_identical_tables_have_no_change(tiny_dir: Path, base: Run) -> None:
    again = load_run(tiny_dir / "results.csv")
    result = compare_runs(base, again, metrics=("variance", "bias", "mse", "snr", "cosine"))
    assert isinstance(result, Comparison)
    assert result.matched == 8
    assert not result.regressions and not result.speed_regressions and not result.improvements
    assert not result.failed and not result.regressed
    assert all(c.ratio == 1.0 for c in result.changes if c.metric not in SPEED_METRICS)
    # speed (relative_cost, as both runs have it) is compared once per cell (both groups share its timing)
    speed = [c for c in result.changes if c.metric == RELATIVE_SPEED]
    assert len(speed) == 4 and all("group" not in c.key for c in speed)


def test_rerun_with_the_same_seed_is_identical(tmp_path: Path, base: Run) -> None:
    again = load_run(run_folder(tmp_path, TINY))
    result = compare_runs(base, again, metrics=("variance", "bias", "mse"))
    assert not result.regressions and not result.speed_regressions
    assert all(c.baseline == c.new for c in result.changes if c.metric not in SPEED_METRICS)


def test_variance_three_times_larger_is_a_regression(base: Run) -> None:
    result = compare_runs(base, scaled(base, "variance", 3.0))
    variance = [c for c in result.changes if c.metric == "variance"]
    assert len(variance) == 8 and all(c.regression and not c.improvement for c in variance)
    assert result.regressions == variance == result.regressed
    for change in variance:
        assert change.ratio == pytest.approx(3.0)
        assert 1.1 < change.ratio_lo < 3.0 < change.ratio_hi
        assert change.p_value is not None and change.p_value < 0.01
    assert result.failed


def test_the_table_has_one_row_per_change(base: Run) -> None:
    result = compare_runs(base, scaled(base, "variance", 3.0))
    table = result.table
    assert len(table) == len(result.changes) == 8 * 2 + 4
    change_columns = ["metric", "baseline", "new", "ratio", "ratio_lo", "ratio_hi", "p_value", "verdict", "note"]
    assert list(table.columns[-9:]) == change_columns
    variance = table[table["metric"] == "variance"]
    assert (variance["verdict"] == "regression").all()
    assert variance["ratio"].to_numpy() == pytest.approx(3.0)
    assert table.loc[table["metric"].isin(SPEED_METRICS), "group"].isna().all()  # a cell's timing: no group
    assert set(table["estimator"]) == {"score", "pathwise"} and (table["samples"] == 500).all()


def test_variance_three_times_smaller_is_an_improvement(base: Run) -> None:
    result = compare_runs(base, scaled(base, "variance", 1 / 3))
    assert not result.regressions
    assert sum(c.improvement for c in result.changes if c.metric == "variance") == 8


@pytest.mark.parametrize("tolerance", [0.1, 0.0])
def test_variance_five_percent_larger_is_no_regression(base: Run, tolerance: float) -> None:
    result = compare_runs(base, scaled(base, "variance", 1.05), tolerance=tolerance)
    assert not result.regressions


def test_a_large_tolerance_absorbs_a_significant_change(base: Run) -> None:
    assert not compare_runs(base, scaled(base, "variance", 3.0), tolerance=5.0).regressions


@pytest.mark.slow
def test_independent_heavy_tailed_runs_raise_few_false_alarms(tmp_path: Path) -> None:
    # The score function on x² has kurtosis ~40 (group mu) and ~250 (group sigma), where an
    # F-test for the variance ratio would fire far too often.  Independent runs differ only by
    # their seed, which is part of the key, so it is equalised before comparing.
    args = ["-e", "score", "-p", "fn=quadratic", "-p", "sigma=1", "-K", "500", "--repeats", "1"]
    runs = []
    for seed in range(21):
        run = load_run(run_folder(tmp_path / str(seed), [*args, "--seed", str(seed)]))
        runs.append(edited(run, seed=0))
    assert runs[0].results["kurtosis"].max() > 50
    alarms = 0
    for before, after in itertools.pairwise(runs):
        result = compare_runs(before, after, metrics=("variance", "bias", "mse"), level=0.99)
        assert result.changes[0].ratio != 1.0  # really different draws
        alarms += bool(result.regressions)
    assert alarms <= 1


def test_a_broken_estimator_is_a_bias_regression(base: Run) -> None:
    frame = base.results
    broken = frame.copy()
    row = (broken["estimator"] == "pathwise") & (broken["group"] == "mu") & (broken["k"] == 0.5)
    half = float(broken.loc[row, "bias_hi"].iloc[0] - broken.loc[row, "bias"].iloc[0])
    for suffix in BOUNDS:
        broken.loc[row, f"bias{suffix}"] += 10 * half  # ~20 standard errors
    broken.loc[row, "bias_significant"] = True
    result = compare_runs(base, base.with_results(broken))
    (regression,) = result.regressions
    assert regression.metric == "bias"
    assert regression.key["estimator"] == "pathwise" and regression.key["group"] == "mu"
    assert regression.p_value is not None and regression.p_value < 1e-6
    assert "bias_significant" in regression.note
    # A bias within its noise is no regression, even at tolerance 0
    nudged = frame.copy()
    for suffix in BOUNDS:
        nudged.loc[row, f"bias{suffix}"] += 0.5 * half
    assert not compare_runs(base, base.with_results(nudged), tolerance=0.0).regressions


def test_a_flip_of_bias_significant_alone_is_noted_not_failed(base: Run) -> None:
    flipped = base.results.copy()
    flipped.loc[0, "bias_significant"] = True
    result = compare_runs(base, base.with_results(flipped))
    assert not result.regressions
    (noted,) = [c for c in result.changes if c.note]
    assert noted.metric == "bias" and "False→True" in noted.note


def timed(run: Run, factor: float, relative_halfwidth: float | None) -> Run:
    """A copy with sec_per_estimate and relative_cost × factor (the code, not the machine, slower)
    and intervals of the given relative half-width."""
    out = run.results.copy()
    for metric in (SPEED, RELATIVE_SPEED):
        value = out[metric] * factor
        out[metric] = value
        if relative_halfwidth is None:
            out[f"{metric}_lo"] = out[f"{metric}_hi"] = math.nan
        else:
            out[f"{metric}_lo"] = value * (1 - relative_halfwidth)
            out[f"{metric}_hi"] = value * (1 + relative_halfwidth)
    return run.with_results(out)


@pytest.mark.parametrize("halfwidth", [0.1, None])
def test_three_times_slower_is_a_speed_regression(base: Run, halfwidth: float | None) -> None:
    before = timed(base, 1.0, halfwidth)
    result = compare_runs(before, timed(base, 3.0, halfwidth), speed_tolerance=1.0)
    assert not result.regressions
    assert len(result.speed_regressions) == 4 and result.regressed == result.speed_regressions
    assert all(c.ratio == pytest.approx(3.0) and c.verdict == "speed regression" for c in result.speed_regressions)
    assert not compare_runs(before, timed(base, 1.5, halfwidth), speed_tolerance=1.0).speed_regressions
    assert not compare_runs(before, timed(base, 3.0, halfwidth), speed_tolerance=math.inf).speed_regressions


def test_a_slowdown_within_the_timing_noise_is_no_speed_regression(base: Run) -> None:
    before = timed(base, 1.0, 2.0)  # e.g. two noisy repeats: the interval reaches zero
    assert not compare_runs(before, timed(base, 3.0, 2.0)).speed_regressions


def test_snr_and_cosine_regress_when_they_fall(base: Run) -> None:
    result = compare_runs(base, scaled(base, "snr", 0.2), metrics=("snr",))
    assert result.regressions and all(c.metric == "snr" for c in result.regressions)
    assert not compare_runs(base, scaled(base, "snr", 5.0), metrics=("snr",)).regressions
    worse = base.results.copy()
    for suffix in BOUNDS:
        worse[f"cosine{suffix}"] -= 0.5
    result = compare_runs(base, base.with_results(worse), metrics=("cosine",))
    assert {c.metric for c in result.regressions} == {"cosine"}
    assert len(result.regressions) >= 6  # rows whose cosine is large enough to fall significantly


def test_zero_variance_is_compared_absolutely(base: Run) -> None:
    zero = base.results.copy()
    for suffix in BOUNDS:
        zero[f"variance{suffix}"] = 0.0
    roundoff = zero.copy()
    roundoff.loc[0, ["variance", "variance_lo", "variance_hi"]] = [1e-31, 5e-32, 2e-31]
    zero_run = base.with_results(zero)
    assert not compare_runs(zero_run, base.with_results(roundoff)).regressions
    grown = scaled(base, "variance", 1.0)
    result = compare_runs(zero_run, grown)
    assert len(result.regressions) == 8
    assert all(c.note == "variance was zero" for c in result.regressions)
    assert all(c.improvement for c in compare_runs(grown, zero_run).changes if c.metric == "variance")


def test_a_nan_metric_where_there_was_a_number_is_a_regression(base: Run) -> None:
    broken = base.results.copy()
    broken.loc[3, "variance"] = math.nan
    (regression,) = compare_runs(base, base.with_results(broken)).regressions
    assert regression.metric == "variance" and "nan" in regression.note


def test_keys_match_nan_to_nan_and_one_to_one_point_zero(base: Run) -> None:
    left, right = base.results.copy(), base.results.copy()
    left["decay"] = math.nan
    right["decay"] = ""
    right["samples"] = right["samples"].astype(float)
    right["sigma"] = right["sigma"].astype(str)
    right = right.iloc[::-1].reset_index(drop=True)  # row order does not matter
    result = compare_runs(with_key(base, left, "decay"), with_key(base, right, "decay"))
    assert result.matched == 8 and not result.regressions


def test_a_missing_row_is_named(base: Run) -> None:
    frame = base.results
    row = (frame["estimator"] == "pathwise") & (frame["group"] == "sigma") & (frame["k"] == 2.0)
    with pytest.raises(UsageError) as error:
        compare_runs(base, base.with_results(frame[~row]))
    message = str(error.value)
    assert "\n" not in message
    assert "missing in NEW" in message and "estimator=pathwise, group=sigma" in message and "k=2.0" in message
    with pytest.raises(UsageError, match="missing in BASELINE"):
        compare_runs(base.with_results(frame[~row]), base)


def test_a_different_seed_is_a_different_configuration(base: Run) -> None:
    with pytest.raises(UsageError, match="seed=1"):
        compare_runs(base, edited(base, seed=1))


def test_an_extra_column_is_named(base: Run) -> None:
    extra = with_key(base, base.results.assign(temperature=0.5), "temperature")
    with pytest.raises(UsageError, match="only in NEW: temperature"):
        compare_runs(base, extra)
    with pytest.raises(UsageError, match="only in BASELINE: temperature"):
        compare_runs(extra, base)


def test_key_columns_come_from_the_roles_not_from_the_names(base: Run) -> None:
    # a column the roles call an outcome is no part of the key, whatever its name
    relabelled = dataclasses.replace(
        base, columns=[Column(c.name, "outcome", c.type) if c.name == "seed" else c for c in base.columns]
    )
    assert "seed" not in relabelled.key_columns and "seed" in base.key_columns
    assert compare_runs(relabelled, edited(relabelled, seed=1)).matched == 8


def test_duplicate_configurations_are_refused(base: Run) -> None:
    doubled = pd.concat([base.results, base.results.iloc[[2]]], ignore_index=True)
    with pytest.raises(UsageError, match="NEW has 1 duplicate configuration"):
        compare_runs(base, base.with_results(doubled))


def test_an_unknown_metric_lists_the_valid_ones(base: Run) -> None:
    with pytest.raises(UsageError, match=r"accuracy.*valid choices: variance, variance_per_coord, mse, bias, snr"):
        compare_runs(base, base, metrics=("variance", "accuracy"))
    assert compare_runs(base, base, metrics="variance,mse").matched == 8  # the --metric syntax


def test_bad_tolerances_are_usage_errors(base: Run) -> None:
    for kwargs in ({"tolerance": -0.1}, {"speed_tolerance": -1.0}, {"level": 1.0}):
        with pytest.raises(UsageError):
            compare_runs(base, base, **kwargs)  # type: ignore[arg-type]


def test_each_run_is_read_at_its_own_level(base: Run) -> None:
    # the same interval read at 50 % instead of 95 % means a standard error ~2.9 times larger
    wide = dataclasses.replace(base, meta={**base.meta, "options": {**base.meta["options"], "level": 0.5}})
    narrow = compare_runs(base, scaled(base, "variance", 3.0)).changes
    widened = compare_runs(wide, scaled(wide, "variance", 3.0)).changes
    for a, b in zip(narrow, widened, strict=True):
        if a.metric == "variance":
            assert b.ratio_lo < a.ratio_lo < a.ratio < a.ratio_hi < b.ratio_hi
    assert sum(c.regression for c in widened) < sum(c.regression for c in narrow)


def test_training_runs_are_refused_in_one_line_that_names_what_compares(training_run: Run, base: Run) -> None:
    for baseline, new in ((training_run, training_run), (base, training_run)):
        with pytest.raises(UsageError, match=r"is a training run \(curves\.csv\).*measure\.csv") as caught:
            compare_runs(baseline, new)
        assert "\n" not in str(caught.value)
