"""The layout of a report: rows, columns, caption, intervals, groups."""

from __future__ import annotations

import pandas as pd
import pytest

from rpbench.errors import UsageError
from rpbench.views.loader import Run
from rpbench.views.report_layout import build_grid, interval, parameters, select_group, settings_caption


def test_the_grid_of_the_gaussian_sweep(gaussian_run: Run) -> None:
    grid = build_grid(gaussian_run.where(["group=mu"]), "variance", ["fn", "sigma"])
    assert grid.rows == ["score", "pathwise", "score+delta", "score+ma (decay=0.5)", "score+ma (decay=0.9)"]
    assert grid.keys == ["fn", "sigma"] and grid.columns[:2] == [("quadratic", "0.1"), ("quadratic", "1")]
    assert grid.value.shape == grid.lo.shape == grid.hi.shape == (5, 6)
    present = grid.value.notna()
    assert ((grid.lo <= grid.value) & (grid.value <= grid.hi))[present].sum().sum() == present.sum().sum() == 27
    assert grid.value.loc["score+delta", 3:].isna().all()  # no result on the step
    assert grid.caption == "gaussian: dim=1, mu=1, k=0.5, dtype=float64; group mu; K=100, n=1, seed=0, device=cpu"
    assert not any(grid.biased.values())


def test_parameters_come_from_the_roles_and_leave_out_empty_ones(gaussian_run: Run) -> None:
    task, estimator = parameters(gaussian_run)
    assert task == ["dim", "mu", "sigma", "fn", "k", "dtype"] and estimator == ["cv_beta", "decay"]
    only_score = gaussian_run.where(["estimator=score"])
    assert parameters(only_score)[1] == []  # cv_beta and decay are empty for score's rows


def test_select_group_and_interval() -> None:
    frame = pd.DataFrame(
        {"group": ["mu", "sigma"], "bias": [-0.5, 0.1], "bias_lo": [-0.7, -0.2], "bias_hi": [-0.3, 0.4]}
    )
    assert select_group(frame, "sigma")["bias"].tolist() == [0.1] and len(select_group(frame, None)) == 2
    with pytest.raises(UsageError, match=r"group 'nu' is not in these results; groups: mu, sigma"):
        select_group(frame, "nu")
    value, lo, hi = interval(frame, "bias", absolute=True)
    assert value.tolist() == [0.5, 0.1] and lo.tolist() == [0.3, 0.0] and hi.tolist() == [0.7, 0.4]
    assert interval(frame.assign(kurtosis=[3.0, 4.0]), "kurtosis")[1].isna().all()


def test_the_caption_gives_what_the_columns_do_not_show(gaussian_run: Run) -> None:
    frame = gaussian_run.results
    keys = ["task", "dim", "mu", "sigma", "fn", "k", "samples", "batch", "seed", "device"]
    assert settings_caption(frame, keys, ["sigma", "fn", "group"]) == (
        "gaussian: dim=1, mu=1, k=0.5; K=100, n=1, seed=0, device=cpu"
    )


def test_an_adaptive_runs_k_reached_is_no_column_and_its_starting_k_goes_to_the_caption() -> None:
    from rpbench.columns import result_columns

    columns = result_columns([("fn", str)], [], adaptive=True)
    base = {"task": "gaussian", "biased": False, "group": "mu", "batch": 1, "seed": 0, "device": "cpu"}
    base |= {"start_samples": 100, "fn": "cos", "variance_lo": 0.5, "variance_hi": 2.0, "bias_significant": False}
    rows = [base | {"estimator": "score", "samples": 800, "variance": 1.0}]
    rows += [base | {"estimator": "pathwise", "samples": 200, "variance": 0.8}]
    grid = build_grid(Run(pd.DataFrame(rows), columns=columns), "variance")
    assert grid.keys == [] and grid.rows == ["score", "pathwise"]  # one column: K reached is an outcome
    assert "K0=100" in grid.caption and "K=" not in grid.caption
