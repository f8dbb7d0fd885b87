"""Planning a run: estimator lists, applicability, and rows."""

from __future__ import annotations

import pytest
import torch

from rpbench.engine import growth_schedule
from rpbench.errors import UsageError
from rpbench.moments import Moments
from rpbench.runner import (
    EstimatorRequest,
    execute,
    parse_estimators,
    parse_task_params,
    plan,
    rel_half_width,
    target_met,
)
from tests.conftest import TIMING

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
        (["score+delta:cv_beta=0.5,1", "mvd"], [("score+delta", {"cv_beta": ["0.5", "1"]}), ("mvd", {})]),
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
    scores = {"score", "score+ma", "score+opt", "nvil", "lax"}
    assert by_fn["cos"] == {"pathwise", *scores, "score+delta", "pathwise+delta", "mvd"}
    assert by_fn["step"] == {"pathwise", *scores, "mvd"}
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


def test_a_list_of_n_plans_each_cell_where_it_applies_and_skips_the_rest() -> None:
    the_plan = plan(
        "gaussian", {"fn": ["cos"], "sigma": ["1"], "k": ["1"]}, parse_estimators(["score,score+loo"]), [1, 2, 4], CPU
    )
    assert [c.estimator.name for c in the_plan.cells] == ["score", "score+loo"]
    assert the_plan.cells_at(1) == [0] and the_plan.cells_at(2) == the_plan.cells_at(4) == [0, 1]
    assert len(the_plan.skipped) == 1 and the_plan.skipped[0].startswith("score+loo on gaussian(")
    assert " at n=1: needs --batch >= 2" in the_plan.skipped[0]
    step = plan("gaussian", {"fn": ["step"], "sigma": ["1"], "k": ["1"]}, parse_estimators(["all"]), [1, 2], CPU)
    delta = [reason for reason in step.skipped if reason.startswith("score+delta on")]
    assert len(delta) == 1 and " at n=" not in delta[0] and "needs differentiable" in delta[0]  # said once
    single = plan("gaussian", {"fn": ["cos"], "sigma": ["1"], "k": ["1"]}, parse_estimators(["score"]), 1, CPU)
    assert single.cells_at(1) == [0] and single.cells_at(7) == [0]  # one n: every cell (the training runs' plans)
    with pytest.raises(UsageError, match="score\\+loo does not apply to task gaussian: needs --batch >= 2"):
        plan("gaussian", {}, parse_estimators(["score+loo"]), [1], CPU)


def rel(row: dict) -> float:
    return rel_half_width(row["variance"], row["variance_lo"], row["variance_hi"])  # type: ignore[arg-type]


def adaptive_rows(estimators: str, fn: str, target: float, cap: int, start: int = 100) -> list[dict]:
    cells = plan("gaussian", {"fn": [fn], "k": ["0.5"], "sigma": ["1"]}, parse_estimators([estimators]), 1, CPU).cells
    return [
        r
        for result in execute(cells, start, 1, 0, repeats=1, target_rel_ci=target, max_samples=cap)
        for r in result.rows
    ]


def test_adaptive_k_stops_at_the_first_k_of_the_schedule_where_every_group_meets_the_target() -> None:
    rows = adaptive_rows("pathwise", "cos", 0.1, 100_000)
    reached = rows[0]["samples"]
    assert all(r["samples"] == reached and r["start_samples"] == 100 and r["target_reached"] is True for r in rows)
    assert reached in growth_schedule(100, 100_000) and reached > 100
    assert max(rel(r) for r in rows) < 0.1
    before = adaptive_rows("pathwise", "cos", 0.1, reached // 2)  # the same draws, stopped one K earlier
    assert all(r["samples"] == reached // 2 and r["target_reached"] is False for r in before)
    assert max(rel(r) for r in before) >= 0.1
    again = adaptive_rows("pathwise", "cos", 0.1, 100_000)
    timing = set(TIMING)
    assert [{k: v for k, v in r.items() if k not in timing} for r in again] == [
        {k: v for k, v in r.items() if k not in timing} for r in rows
    ]  # same seed, same rows
    assert rows[0]["cell_seed"] == adaptive_rows("pathwise", "cos", 0.5, 100)[0]["cell_seed"]  # the start K's seed


def test_adaptive_k_honours_the_cap() -> None:
    rows = adaptive_rows("score", "quadratic", 0.01, 1000)  # heavy tails: ±1 % needs far more than 1000
    assert all(r["samples"] == 1000 and r["target_reached"] is False for r in rows)
    assert min(rel(r) for r in rows) >= 0.01


def test_adaptive_k_stops_at_the_start_where_the_variance_is_zero_or_rounding() -> None:
    rows = adaptive_rows("score+delta", "quadratic", 0.1, 100_000)  # exact: its variance is float noise
    assert all(r["samples"] == 100 and r["target_reached"] is True for r in rows)
    assert all(r["variance"] < 1e-25 for r in rows)
    zero = Moments.of(torch.ones(10, 3))
    assert target_met({"mu": zero}, 1e-9, 0.95)
    assert rel_half_width(0.0, 0.0, 0.0) == 0.0 and rel_half_width(2.0, 1.0, 4.0) == 0.75
    noisy = Moments.of(torch.randn(50, 3, generator=torch.Generator().manual_seed(0)))
    assert not target_met({"mu": zero, "sigma": noisy}, 0.1, 0.95)  # every group must meet it


def test_a_metric_that_cannot_be_computed_fails_its_cell_with_its_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    from rpbench import metrics

    original = metrics.summarize
    calls = {"n": 0}

    def fails_once(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:
            raise ValueError("The function value at x=4307 is NaN; solver cannot continue.")
        return original(*args, **kwargs)

    monkeypatch.setattr(metrics, "summarize", fails_once)
    cells = plan("gaussian", {"fn": ["cos"], "sigma": ["1", "2"]}, parse_estimators(["score"]), 1, CPU).cells
    results = list(execute(cells, 50, 1, 4, repeats=1))
    statuses = [r.rows[0]["status"] for r in results]
    assert statuses[0] == "failed" and len(statuses) > 1 and set(statuses[1:]) == {"ok"}  # the sweep goes on
    assert results[0].rows[0]["error"].startswith("ValueError: The function value")
    assert "in fails_once" in results[0].traceback and results[1].traceback == ""


def test_equal_cost_gives_each_estimator_the_largest_n_within_the_budget() -> None:
    """ARM makes 2 evaluations per sample, MVD 4·D, the score function 1: at 13 evaluations n = 6, 1, 13."""
    from rpbench.runner import equal_cost_batch

    gaussian = {"fn": ["cos"], "sigma": ["1"], "k": ["1"], "dim": ["3"]}
    the_plan = plan("gaussian", gaussian, parse_estimators(["score,mvd,score+loo"]), 1, CPU, equal_cost=13)
    got = {the_plan.cells[i].estimator.name: n for n, cells in the_plan.batches.items() for i in cells}
    assert got == {"score": 13, "mvd": 1, "score+loo": 13}  # MVD at D = 3: 12 evaluations per sample
    mvd = the_plan.cells[[c.estimator.name for c in the_plan.cells].index("mvd")]
    assert mvd.estimator.evaluations(mvd.task, 1) == 12 and mvd.estimator.evaluations(mvd.task, 2) == 24 > 13
    arm = plan("bernoulli-vae", {"latents": ["2"], "minibatch": ["2"]}, parse_estimators(["arm"]), 1, CPU).cells[0]
    for budget, expected in ((1, 0), (2, 1), (3, 1), (13, 6), (14, 7)):
        assert equal_cost_batch(arm.estimator, arm.task, budget) == expected, budget


def test_an_estimator_the_budget_cannot_afford_is_skipped_with_its_cost() -> None:
    gaussian = {"fn": ["cos"], "sigma": ["1"], "k": ["1"], "dim": ["3"]}
    the_plan = plan("gaussian", gaussian, parse_estimators(["all"]), 1, CPU, equal_cost=1)
    names = {cell.estimator.name for cell in the_plan.cells}
    assert "score" in names and "mvd" not in names and "score+loo" not in names
    mvd = next(reason for reason in the_plan.skipped if reason.startswith("mvd on"))
    assert "--equal-cost 1: its smallest estimate (n=1) costs 12 evaluations of f (4·D·n)" in mvd
    loo = next(reason for reason in the_plan.skipped if reason.startswith("score+loo on"))
    assert "(n=2) costs 2 evaluations" in loo
    with pytest.raises(UsageError, match=r"mvd does not apply to task gaussian: --equal-cost 4: .* costs 12"):
        plan("gaussian", gaussian, parse_estimators(["mvd"]), 1, CPU, equal_cost=4)


def test_equal_cost_rows_hold_each_estimators_n_and_evaluations() -> None:
    gaussian = {"fn": ["quadratic"], "sigma": ["1"], "k": ["0.5"], "dim": ["2"]}
    the_plan = plan("gaussian", gaussian, parse_estimators(["score,mvd"]), 1, CPU, equal_cost=16)
    rows = [
        row
        for n, cells in the_plan.batches.items()
        for result in execute([the_plan.cells[i] for i in cells], 200, n, 0, repeats=1)
        for row in result.rows
    ]
    by = {(row["estimator"], row["group"]): row for row in rows}
    assert by["score", "mu"]["batch"] == 16 and by["mvd", "mu"]["batch"] == 2
    assert by["score", "mu"]["evaluations"] == by["mvd", "sigma"]["evaluations"] == 16
    for row in rows:
        for suffix in ("", "_lo", "_hi"):
            assert row[f"eval_variance{suffix}"] == pytest.approx(16 * row[f"variance{suffix}"], rel=1e-12)
