"""A training run's final values over seeds: each seed's last point, the t-interval, failed runs, at_seconds."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from rpbench.errors import UsageError
from rpbench.views.final import config_keys, curve_frame, final_frame, final_run, seed_aliases, t_interval
from rpbench.views.loader import Run, load_run
from tests.views.training import FINAL, row, rows, write_training_run

T_975_2 = 4.302652729911275
"""t_{0.975} with 2 degrees of freedom (three seeds), from a table."""
SCORE_HALF = T_975_2 * 2.0 / math.sqrt(3)  # score's final values -100, -102, -104: sd 2
PATHWISE_HALF = T_975_2 * math.sqrt(7.0) / math.sqrt(3)  # -90, -91, -95: deviations 2, 1, -3, variance 14 / 2


def by_estimator(frame: pd.DataFrame) -> dict[str, dict[str, object]]:
    return {str(r["estimator"]): r for r in frame.to_dict("records")}


def test_the_last_point_of_each_seed_averaged_with_a_t_interval(training_run: Run) -> None:
    frame = final_frame(training_run)
    assert list(frame["estimator"]) == ["score", "pathwise"]  # order of appearance
    keys = config_keys(training_run)
    assert "seed" not in keys and "step" not in keys and {"estimator", "latents", "lr", "tau"} <= set(keys)
    assert "model_seed" not in keys and seed_aliases(training_run) == ["model_seed"]  # the seed by another name
    assert list(frame.columns) == [
        *keys,
        "seeds",
        "failed",
        "eval_elbo",
        "eval_elbo_lo",
        "eval_elbo_hi",
        "step",
        "seconds",
    ]
    score, pathwise = by_estimator(frame)["score"], by_estimator(frame)["pathwise"]
    assert score["seeds"] == 3 and pathwise["seeds"] == 3
    assert score["eval_elbo"] == pytest.approx(-102.0) and pathwise["eval_elbo"] == pytest.approx(-92.0)
    assert score["eval_elbo_hi"] - score["eval_elbo"] == pytest.approx(SCORE_HALF)
    assert score["eval_elbo"] - score["eval_elbo_lo"] == pytest.approx(SCORE_HALF)
    assert pathwise["eval_elbo_hi"] - pathwise["eval_elbo"] == pytest.approx(PATHWISE_HALF)
    assert score["step"] == 20 and score["seconds"] == pytest.approx((10.0 + 10.1 + 10.2) / 3)
    assert frame["latents"].dtype == "int64" and frame["biased"].dtype == bool  # keys keep their types


def test_the_half_width_is_the_t_quantile_times_the_standard_error(training_run: Run) -> None:
    values = np.array(FINAL["pathwise"])
    expected = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    assert expected == pytest.approx(PATHWISE_HALF)
    pathwise = by_estimator(final_frame(training_run))["pathwise"]
    assert pathwise["eval_elbo_hi"] - pathwise["eval_elbo"] == pytest.approx(expected)
    lo, hi = t_interval(np.array([3, 1, 0]), np.array([0.0, 5.0, math.nan]), np.array([1.0, math.nan, math.nan]), 0.95)
    assert hi[0] == pytest.approx(T_975_2 / math.sqrt(3)) and lo[0] == pytest.approx(-T_975_2 / math.sqrt(3))
    assert np.isnan(lo[1:]).all() and np.isnan(hi[1:]).all()


def test_the_level_is_the_runs_or_the_one_asked(training_run: Run) -> None:
    at_90 = by_estimator(final_frame(training_run, level=0.9))["score"]
    assert at_90["eval_elbo_hi"] - at_90["eval_elbo"] == pytest.approx(stats.t.ppf(0.95, 2) * 2 / math.sqrt(3))
    meta = training_run.meta | {"options": {"level": 0.9}}
    from_meta = by_estimator(final_frame(Run(training_run.results, meta=meta, columns=training_run.columns)))
    assert from_meta["score"]["eval_elbo_hi"] == pytest.approx(at_90["eval_elbo_hi"])
    with pytest.raises(UsageError, match=r"level 1\.5 is not a confidence level"):
        final_frame(training_run, level=1.5)


def test_a_failed_run_is_left_out_and_counted(training_run: Run) -> None:
    # seed 3 of score failed at step 10; its ok step 0 (-30, far above the rest) must not count
    frame = by_estimator(final_frame(training_run, at_seconds=1.0))
    assert frame["score"]["failed"] == 1 and frame["pathwise"]["failed"] == 0
    assert frame["score"]["seeds"] == 3 and frame["score"]["step"] == 0
    assert frame["score"]["eval_elbo"] == pytest.approx(-122.0)  # mean of -120, -122, -124 (not -30)


def test_a_configuration_whose_runs_all_failed_has_no_value(tmp_path: Path) -> None:
    records = [r for r in rows() if r["estimator"] == "score"] + [row("pathwise", 0, 0, status="failed")]
    frame = by_estimator(final_frame(load_run(write_training_run(tmp_path / "run", records))))
    assert frame["pathwise"]["seeds"] == 0 and frame["pathwise"]["failed"] == 1
    assert math.isnan(frame["pathwise"]["eval_elbo"]) and math.isnan(frame["pathwise"]["step"])
    assert frame["score"]["eval_elbo"] == pytest.approx(-102.0)


def test_at_seconds_picks_each_seeds_last_point_within_the_time(training_run: Run) -> None:
    ten = by_estimator(final_frame(training_run, at_seconds=6.0))["score"]  # step 10 at 5.0, 5.1, 5.2 s
    assert ten["step"] == 10 and ten["eval_elbo"] == pytest.approx(-112.0) and ten["seeds"] == 3
    assert ten["eval_elbo_hi"] - ten["eval_elbo"] == pytest.approx(SCORE_HALF)
    # within 5.05 s seed 0 reached step 10 (5.0 s), seeds 1 and 2 only step 0 (0.1 and 0.2 s)
    mixed = by_estimator(final_frame(training_run, at_seconds=5.05))["score"]
    assert mixed["eval_elbo"] == pytest.approx((-110.0 - 122.0 - 124.0) / 3)
    assert mixed["step"] == pytest.approx(10 / 3) and mixed["seconds"] == pytest.approx((5.0 + 0.1 + 0.2) / 3)
    none = by_estimator(final_frame(training_run, at_seconds=-1.0))["score"]
    assert none["seeds"] == 0 and math.isnan(none["eval_elbo"])
    with pytest.raises(UsageError, match="at_seconds 'soon' is not a number"):
        final_frame(training_run, at_seconds="soon")  # type: ignore[arg-type]


def test_one_seed_has_no_interval(training_run: Run) -> None:
    frame = final_frame(training_run.where(["seed=1"]))
    assert list(frame["seeds"]) == [1, 1] and list(frame["eval_elbo"]) == [-102.0, -91.0]
    assert frame["eval_elbo_lo"].isna().all() and frame["eval_elbo_hi"].isna().all()


def test_the_last_point_with_a_value_and_by_step_not_by_row_order(tmp_path: Path) -> None:
    records = rows()
    records[2] = records[2] | {"train_elbo": ""}  # score seed 0 at step 20: no training ELBO
    run = load_run(write_training_run(tmp_path / "run", records[::-1]))  # rows in reverse order
    score = by_estimator(final_frame(run, "train_elbo"))["score"]
    assert score["train_elbo"] == pytest.approx((-111.0 - 103.0 - 105.0) / 3)
    assert score["step"] == pytest.approx(50 / 3)
    assert by_estimator(final_frame(run))["score"]["eval_elbo"] == pytest.approx(-102.0)


def test_curves_are_the_mean_over_seeds_at_each_step(training_run: Run) -> None:
    curves = curve_frame(training_run, "eval_iwae")
    score = curves[curves["estimator"] == "score"]
    assert list(score["step"]) == [0, 10, 20] and list(score["seeds"]) == [3, 3, 3]  # the failed seed left out
    assert list(score["eval_iwae"]) == pytest.approx([-121.0, -111.0, -101.0])
    assert list(score["eval_iwae_hi"] - score["eval_iwae"]) == pytest.approx([SCORE_HALF] * 3)
    assert list(score["seconds"]) == pytest.approx([0.1, 5.1, 10.1])
    assert list(dict.fromkeys(curves["estimator"])) == ["score", "pathwise"]


def test_final_run_lays_out_one_row_per_configuration(training_run: Run) -> None:
    final = final_run(training_run)
    assert final.kind == "train" and len(final.results) == 2
    assert "seed" not in final.key_columns and "step" not in final.key_columns
    assert final.task_params == ["latents", "minibatch"] and final.estimator_params == ["tau"]


def test_only_training_runs_and_their_metrics(training_run: Run, gaussian_run: Run) -> None:
    with pytest.raises(UsageError, match="needs a training run") as error:
        final_frame(gaussian_run)
    assert "\n" not in str(error.value)
    with pytest.raises(UsageError, match=r"unknown metric 'variance'; valid choices: train_elbo, eval_elbo"):
        final_frame(training_run, "variance")


def test_a_seed_alias_needs_seeds_that_differ(training_run: Run) -> None:
    one = training_run.where(["seed=1"])
    assert seed_aliases(one) == [] and "model_seed" in config_keys(one)  # constant then: a setting like any other
    assert list(final_frame(one)["model_seed"]) == [1, 1]


def test_final_csv_has_every_metric_and_the_value_at_equal_training_time(training_run: Run) -> None:
    from rpbench.views.final import final_table

    table = by_estimator(final_table(training_run))
    score = table["score"]
    assert score["eval_elbo"] == pytest.approx(-102.0) and score["eval_iwae"] == pytest.approx(-101.0)
    assert score["train_elbo"] == pytest.approx(-103.0) and score["failed"] == 1 and score["seeds"] == 3
    assert score["eval_iwae_hi"] - score["eval_iwae"] == pytest.approx(SCORE_HALF)
    # runs trained 10.0, 10.1 and 10.2 s (the failed run does not count): within 10.0 s, seeds 1
    # and 2 had reached step 10 only, ten below their final values
    assert score["equal_seconds"] == pytest.approx(10.0) and table["pathwise"]["equal_seconds"] == pytest.approx(10.0)
    assert score["eval_elbo_at_equal_seconds"] == pytest.approx((-100.0 - 112.0 - 114.0) / 3)
    assert table["pathwise"]["eval_elbo_at_equal_seconds"] == pytest.approx((-90.0 - 101.0 - 105.0) / 3)
    assert score["eval_elbo_at_equal_seconds_lo"] < score["eval_elbo_at_equal_seconds"]
