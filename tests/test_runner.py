"""Planning a run: estimator lists, applicability, and rows."""

from __future__ import annotations

import pytest
import torch

from rpbench.errors import UsageError
from rpbench.runner import EstimatorRequest, execute, parse_estimators, parse_task_params, plan

CPU = torch.device("cpu")


def names(requests: list[EstimatorRequest]) -> list[tuple[str, dict]]:
    return [(r.name, r.overrides) for r in requests]


@pytest.mark.parametrize(
    ("texts", "expected"),
    [
        (["all"], [("all", {})]),
        (["score,pathwise"], [("score", {}), ("pathwise", {})]),
        (["score+ma:decay=0.9"], [("score+ma", {"decay": ["0.9"]})]),
        (["score+ma:decay=0.5,0.9,score"], [("score+ma", {"decay": ["0.5", "0.9"]}), ("score", {})]),
        (["score+delta:beta=0.5,1", "mvd"], [("score+delta", {"beta": ["0.5", "1"]}), ("mvd", {})]),
    ],
)
def test_parse_estimators(texts: list[str], expected: list) -> None:
    assert names(parse_estimators(texts)) == expected


@pytest.mark.parametrize("text", ["score,,pathwise", "decay=0.9", "score+ma:decay"])
def test_malformed_estimator_lists(text: str) -> None:
    with pytest.raises(UsageError):
        parse_estimators([text])


def test_parse_task_params_extends_repeated_keys() -> None:
    assert parse_task_params(["sigma=1,2", "sigma=4", "fn=cos"], "gaussian") == {
        "sigma": ["1", "2", "4"],
        "fn": ["cos"],
    }


def test_all_runs_every_applicable_estimator_and_records_what_it_skipped() -> None:
    the_plan = plan("gaussian", {"fn": ["cos", "step"], "sigma": ["1"], "k": ["1"]}, parse_estimators(["all"]), 1, CPU)
    by_fn: dict[str, set[str]] = {}
    for cell in the_plan.cells:
        by_fn.setdefault(cell.task.config["fn"], set()).add(cell.estimator.name)
    assert by_fn["cos"] == {"pathwise", "score", "score+ma", "score+opt", "score+delta", "pathwise+delta", "mvd"}
    assert by_fn["step"] == {"pathwise", "score", "score+ma", "score+opt", "mvd"}
    assert any("score+loo" in s and "--batch >= 2" in s for s in the_plan.skipped)
    assert any("score+delta" in s and "fn=step" in s for s in the_plan.skipped)


def test_a_named_estimator_that_never_applies_is_an_error() -> None:
    with pytest.raises(UsageError, match="score\\+loo does not apply to task gaussian: needs --batch >= 2"):
        plan("gaussian", {}, parse_estimators(["score+loo"]), 1, CPU)
    with pytest.raises(UsageError, match="needs differentiable"):
        plan("gaussian", {"fn": ["step"]}, parse_estimators(["score+delta"]), 1, CPU)


def test_all_takes_no_parameters() -> None:
    with pytest.raises(UsageError, match="all takes no parameters"):
        plan("gaussian", {}, [EstimatorRequest("all", {"decay": ["1"]})], 1, CPU)


def test_estimator_sweeps_expand() -> None:
    the_plan = plan(
        "gaussian", {"fn": ["cos"], "sigma": ["1"], "k": ["1"]}, parse_estimators(["score+ma:decay=0.5,0.9"]), 1, CPU
    )
    assert [c.estimator.config["decay"] for c in the_plan.cells] == [0.5, 0.9]


def test_rows_carry_every_contract_column() -> None:
    cells = plan(
        "gaussian", {"fn": ["cos"], "sigma": ["1"], "k": ["1"], "dim": ["2"]}, parse_estimators(["score+ma"]), 1, CPU
    ).cells
    rows = [row for result in execute(cells, 50, 1, 4, repeats=2) for row in result.rows]
    assert [row["group"] for row in rows] == ["mu", "sigma"]
    required = {
        "task",
        "estimator",
        "group",
        "samples",
        "batch",
        "seed",
        "device",
        "dim",
        "mu",
        "sigma",
        "fn",
        "k",
        "decay",
        "mean",
        "exact",
        "bias",
        "variance",
        "mse",
        "snr",
        "cosine",
        "sec_per_estimate",
        "work_variance",
    }
    assert required <= set(rows[0])
    for metric in ("mean", "bias", "variance", "mse", "snr", "cosine", "sec_per_estimate", "work_variance"):
        assert {f"{metric}_lo", f"{metric}_hi"} <= set(rows[0])
    assert rows[0]["samples"] == 50 and rows[0]["seed"] == 4 and rows[0]["device"] == "cpu"
    assert rows[0]["sigma"] == 1.0  # the task's σ, not the group name


def test_too_few_samples_is_an_error() -> None:
    cells = plan("gaussian", {"fn": ["cos"]}, parse_estimators(["score"]), 1, CPU).cells
    with pytest.raises(UsageError, match="at least 2"):
        list(execute(cells, 1, 1, 0))
