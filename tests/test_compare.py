"""The regression gate: matching rows, the statistical tests, and one-line errors on bad input."""

from __future__ import annotations

import io
import itertools
import json
import math
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

from rpbench.compare import SPEED, Comparison, changes_table, compare, load_table
from rpbench.errors import UsageError
from tests.conftest import exit_code

BOUNDS = ("", "_lo", "_hi")


def run_table(out: Path, *args: str) -> Path:
    """Run the CLI in-process on a tiny Gaussian sweep; the run folder it wrote."""
    assert exit_code(["run", "--out", str(out), "-q", *args]) == 0
    (run_dir,) = list(out.iterdir())
    return run_dir


TINY = ["-e", "score,pathwise", "-p", "fn=cos", "-p", "sigma=1", "-K", "500", "--repeats", "2"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run_table(tmp_path_factory.mktemp("base"), *TINY)


@pytest.fixture
def base(run_dir: Path) -> pd.DataFrame:
    return load_table(run_dir)


def scaled(frame: pd.DataFrame, metric: str, factor: float, rows: pd.Series | None = None) -> pd.DataFrame:
    """A copy with ``metric`` and its interval multiplied by ``factor`` (in ``rows``, default all)."""
    out = frame.copy()
    where = slice(None) if rows is None else rows
    for suffix in BOUNDS:
        out.loc[where, f"{metric}{suffix}"] *= factor
    return out


def test_identical_tables_have_no_change(run_dir: Path, base: pd.DataFrame) -> None:
    result = compare(base, load_table(run_dir / "results.csv"), metrics=("variance", "bias", "mse", "snr", "cosine"))
    assert isinstance(result, Comparison)
    assert result.matched == 8
    assert not result.regressions and not result.speed_regressions and not result.improvements
    assert not result.failed
    assert all(c.ratio == 1.0 for c in result.changes if c.metric != SPEED)
    # sec_per_estimate is compared once per cell (both groups share its timing)
    speed = [c for c in result.changes if c.metric == SPEED]
    assert len(speed) == 4 and all("group" not in c.key for c in speed)


def test_rerun_with_the_same_seed_is_identical(tmp_path: Path, base: pd.DataFrame) -> None:
    again = load_table(run_table(tmp_path, *TINY))
    result = compare(base, again, metrics=("variance", "bias", "mse"))
    assert not result.regressions and not result.speed_regressions
    assert all(c.baseline == c.new for c in result.changes if c.metric != SPEED)


def test_variance_three_times_larger_is_a_regression(base: pd.DataFrame) -> None:
    result = compare(base, scaled(base, "variance", 3.0))
    variance = [c for c in result.changes if c.metric == "variance"]
    assert len(variance) == 8 and all(c.regression and not c.improvement for c in variance)
    assert result.regressions == variance
    for change in variance:
        assert change.ratio == pytest.approx(3.0)
        assert 1.1 < change.ratio_lo < 3.0 < change.ratio_hi
        assert change.p_value is not None and change.p_value < 0.01
    assert result.failed


def test_variance_three_times_smaller_is_an_improvement(base: pd.DataFrame) -> None:
    result = compare(base, scaled(base, "variance", 1 / 3))
    assert not result.regressions
    assert sum(c.improvement for c in result.changes if c.metric == "variance") == 8


@pytest.mark.parametrize("tolerance", [0.1, 0.0])
def test_variance_five_percent_larger_is_no_regression(base: pd.DataFrame, tolerance: float) -> None:
    result = compare(base, scaled(base, "variance", 1.05), tolerance=tolerance)
    assert not result.regressions


def test_a_large_tolerance_absorbs_a_significant_change(base: pd.DataFrame) -> None:
    assert not compare(base, scaled(base, "variance", 3.0), tolerance=5.0).regressions


def test_independent_heavy_tailed_runs_raise_few_false_alarms(tmp_path: Path) -> None:
    # The score function on x² has kurtosis ~40 (group mu) and ~250 (group sigma), where an
    # F-test for the variance ratio would fire far too often.  Independent runs differ only by
    # their seed, which is part of the key, so it is equalised before comparing.
    args = ["-e", "score", "-p", "fn=quadratic", "-p", "sigma=1", "-K", "500", "--repeats", "1"]
    tables = []
    for seed in range(21):
        frame = load_table(run_table(tmp_path / str(seed), *args, "--seed", str(seed)))
        frame["seed"] = 0
        tables.append(frame)
    assert tables[0]["kurtosis"].max() > 50
    alarms = 0
    for before, after in itertools.pairwise(tables):
        result = compare(before, after, metrics=("variance", "bias", "mse"), level=0.99)
        assert result.changes[0].ratio != 1.0  # really different draws
        alarms += bool(result.regressions)
    assert alarms <= 1


def test_a_broken_estimator_is_a_bias_regression(base: pd.DataFrame) -> None:
    broken = base.copy()
    row = (broken["estimator"] == "pathwise") & (broken["group"] == "mu") & (broken["k"] == 0.5)
    half = float(broken.loc[row, "bias_hi"].iloc[0] - broken.loc[row, "bias"].iloc[0])
    for suffix in BOUNDS:
        broken.loc[row, f"bias{suffix}"] += 10 * half  # ~20 standard errors
    broken.loc[row, "bias_significant"] = True
    result = compare(base, broken)
    (regression,) = result.regressions
    assert regression.metric == "bias"
    assert regression.key["estimator"] == "pathwise" and regression.key["group"] == "mu"
    assert regression.p_value is not None and regression.p_value < 1e-6
    assert "bias_significant" in regression.note
    # A bias within its noise is no regression, even at tolerance 0
    nudged = base.copy()
    for suffix in BOUNDS:
        nudged.loc[row, f"bias{suffix}"] += 0.5 * half
    assert not compare(base, nudged, tolerance=0.0).regressions


def test_a_flip_of_bias_significant_alone_is_noted_not_failed(base: pd.DataFrame) -> None:
    flipped = base.copy()
    flipped.loc[0, "bias_significant"] = True
    result = compare(base, flipped)
    assert not result.regressions
    (noted,) = [c for c in result.changes if c.note]
    assert noted.metric == "bias" and "False→True" in noted.note


def timed(frame: pd.DataFrame, factor: float, relative_halfwidth: float | None) -> pd.DataFrame:
    """A copy with sec_per_estimate × factor and an interval of the given relative half-width."""
    out = frame.copy()
    value = out[SPEED] * factor
    out[SPEED] = value
    if relative_halfwidth is None:
        out[f"{SPEED}_lo"] = out[f"{SPEED}_hi"] = math.nan
    else:
        out[f"{SPEED}_lo"] = value * (1 - relative_halfwidth)
        out[f"{SPEED}_hi"] = value * (1 + relative_halfwidth)
    return out


@pytest.mark.parametrize("halfwidth", [0.1, None])
def test_three_times_slower_is_a_speed_regression(base: pd.DataFrame, halfwidth: float | None) -> None:
    before = timed(base, 1.0, halfwidth)
    result = compare(before, timed(base, 3.0, halfwidth), speed_tolerance=1.0)
    assert not result.regressions
    assert len(result.speed_regressions) == 4
    assert all(c.ratio == pytest.approx(3.0) and c.verdict == "speed regression" for c in result.speed_regressions)
    assert not compare(before, timed(base, 1.5, halfwidth), speed_tolerance=1.0).speed_regressions
    assert not compare(before, timed(base, 3.0, halfwidth), speed_tolerance=math.inf).speed_regressions


def test_a_slowdown_within_the_timing_noise_is_no_speed_regression(base: pd.DataFrame) -> None:
    before = timed(base, 1.0, 2.0)  # e.g. two noisy repeats: the interval reaches zero
    assert not compare(before, timed(base, 3.0, 2.0)).speed_regressions


def test_snr_and_cosine_regress_when_they_fall(base: pd.DataFrame) -> None:
    result = compare(base, scaled(base, "snr", 0.2), metrics=("snr",))
    assert result.regressions and all(c.metric == "snr" for c in result.regressions)
    assert not compare(base, scaled(base, "snr", 5.0), metrics=("snr",)).regressions
    worse = base.copy()
    for suffix in BOUNDS:
        worse[f"cosine{suffix}"] -= 0.5
    result = compare(base, worse, metrics=("cosine",))
    assert {c.metric for c in result.regressions} == {"cosine"}
    assert len(result.regressions) >= 6  # rows whose cosine is large enough to fall significantly


def test_zero_variance_is_compared_absolutely(base: pd.DataFrame) -> None:
    zero = base.copy()
    for suffix in BOUNDS:
        zero[f"variance{suffix}"] = 0.0
    roundoff = zero.copy()
    roundoff.loc[0, ["variance", "variance_lo", "variance_hi"]] = [1e-31, 5e-32, 2e-31]
    assert not compare(zero, roundoff).regressions
    grown = scaled(base, "variance", 1.0)
    result = compare(zero, grown)
    assert len(result.regressions) == 8
    assert all(c.note == "variance was zero" for c in result.regressions)
    assert all(c.improvement for c in compare(grown, zero).changes if c.metric == "variance")


def test_a_nan_metric_where_there_was_a_number_is_a_regression(base: pd.DataFrame) -> None:
    broken = base.copy()
    broken.loc[3, "variance"] = math.nan
    (regression,) = compare(base, broken).regressions
    assert regression.metric == "variance" and "nan" in regression.note


def test_keys_match_nan_to_nan_and_one_to_one_point_zero(base: pd.DataFrame) -> None:
    left, right = base.copy(), base.copy()
    left["decay"] = math.nan
    right["decay"] = ""
    right["samples"] = right["samples"].astype(float)
    right["sigma"] = right["sigma"].astype(str)
    right = right.iloc[::-1].reset_index(drop=True)  # row order does not matter
    result = compare(left, right)
    assert result.matched == 8 and not result.regressions


def test_a_missing_row_is_named(base: pd.DataFrame) -> None:
    row = (base["estimator"] == "pathwise") & (base["group"] == "sigma") & (base["k"] == 2.0)
    with pytest.raises(UsageError) as error:
        compare(base, base[~row])
    message = str(error.value)
    assert "\n" not in message
    assert "missing in NEW" in message and "estimator=pathwise, group=sigma" in message and "k=2.0" in message
    with pytest.raises(UsageError, match="missing in BASELINE"):
        compare(base[~row], base)


def test_a_different_seed_is_a_different_configuration(base: pd.DataFrame) -> None:
    other = base.copy()
    other["seed"] = 1
    with pytest.raises(UsageError, match="seed=1"):
        compare(base, other)


def test_an_extra_column_is_named(base: pd.DataFrame) -> None:
    extra = base.copy()
    extra["temperature"] = 0.5
    with pytest.raises(UsageError, match="only in NEW: temperature"):
        compare(base, extra)
    with pytest.raises(UsageError, match="only in BASELINE: temperature"):
        compare(extra, base)


def test_duplicate_configurations_are_refused(base: pd.DataFrame) -> None:
    doubled = pd.concat([base, base.iloc[[2]]], ignore_index=True)
    with pytest.raises(UsageError, match="NEW has 1 duplicate configuration"):
        compare(base, doubled)


def test_an_unknown_metric_lists_the_valid_ones(base: pd.DataFrame) -> None:
    with pytest.raises(UsageError, match=r"accuracy.*valid choices: variance, variance_per_coord, mse, bias, snr"):
        compare(base, base, metrics=("variance", "accuracy"))
    assert compare(base, base, metrics="variance,mse").matched == 8  # the --metric syntax


def test_bad_tolerances_are_usage_errors(base: pd.DataFrame) -> None:
    for kwargs in ({"tolerance": -0.1}, {"speed_tolerance": -1.0}, {"level": 1.0}):
        with pytest.raises(UsageError):
            compare(base, base, **kwargs)  # type: ignore[arg-type]


def test_load_table_refuses_what_is_not_an_rpbench_table(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such file"):
        load_table(tmp_path / "nothing.csv")
    with pytest.raises(UsageError, match=r"without results\.csv"):
        load_table(tmp_path)
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    with pytest.raises(UsageError, match="not an rpbench results table"):
        load_table(other)
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\x00\xff\xfe" * 100)
    with pytest.raises(UsageError):
        load_table(binary)


def test_load_table_reads_the_interval_level_from_run_json(tmp_path: Path, base: pd.DataFrame) -> None:
    base.to_csv(tmp_path / "results.csv", index=False)
    assert load_table(tmp_path).attrs["ci_level"] == 0.95
    (tmp_path / "run.json").write_text(json.dumps({"options": {"level": 0.9}}))
    assert load_table(tmp_path / "results.csv").attrs["ci_level"] == 0.9


def test_changes_table_lists_regressions_first(base: pd.DataFrame) -> None:
    new = scaled(base, "variance", 1 / 3, base["estimator"] == "pathwise")
    new = scaled(new, "variance", 3.0, new["estimator"] == "score")
    new = timed(new, 3.0, None)
    result = compare(timed(base, 1.0, None), new)
    console = Console(file=io.StringIO(), width=200)
    console.print(changes_table(result))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    lines = [line for line in text.splitlines() if "estimator=" in line]
    assert len(lines) == 4 + 4 + 4  # variance regressions, speed regressions, improvements
    verdicts = [("speed regression" in line, "improvement" in line) for line in lines]
    assert verdicts == [(False, False)] * 4 + [(True, False)] * 4 + [(False, True)] * 4
    assert "estimator=score group=mu k=0.5" in text and "task=" not in text
    console = Console(file=io.StringIO(), width=200)
    console.print(changes_table(compare(base, base), only_changes=False))
    assert "no significant changes" in console.file.getvalue()  # type: ignore[attr-defined]
