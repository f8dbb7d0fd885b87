"""rpbench.timing: calibration, the median's order-statistic interval, the reference, thread shares,
and the speed gate on a machine made busy by two CPU hogs."""

from __future__ import annotations

import importlib.util
import math
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

import rpbench
from rpbench.registry import get_estimator
from rpbench.timing import (
    Reference,
    autorange,
    median_interval,
    order_statistic_ranks,
    thread_share,
    threads_for_timing,
    time_cell,
)
from rpbench.views.compare import compare_runs

CPU = torch.device("cpu")


def coverage(n: int, j: int) -> float:
    """P(x_(j) <= median <= x_(n+1-j)) for n values of a continuous distribution."""
    return 1.0 - 2.0 * sum(math.comb(n, i) for i in range(j)) / 2.0**n


@pytest.mark.parametrize("level", [0.9, 0.95, 0.99])
def test_the_ranks_are_the_narrowest_that_cover_the_median_at_the_level(level: float) -> None:
    for n in range(1, 60):
        ranks = order_statistic_ranks(n, level)
        if ranks is None:
            assert coverage(n, 1) < level  # not even [min, max]
            continue
        j, upper = ranks
        assert upper == n + 1 - j and coverage(n, j) >= level
        assert j == n + 1 - j or coverage(n, j + 1) < level  # one rank narrower falls short


def test_five_values_give_no_95_interval_six_give_the_extremes() -> None:
    assert order_statistic_ranks(5, 0.95) is None  # [min, max] of 5 covers 93.75 %
    assert order_statistic_ranks(6, 0.95) == (1, 6)
    assert order_statistic_ranks(7, 0.975) == (1, 7)  # the Bonferroni level work_variance needs
    assert order_statistic_ranks(10, 0.95) == (2, 9)


def test_the_median_interval_covers_a_skewed_distributions_median_at_its_level() -> None:
    rng = np.random.default_rng(0)
    replications, n, level = 4000, 9, 0.95  # ranks (2, 8): exact coverage 96.1 %
    draws = rng.lognormal(0.0, 1.5, size=(replications, n))  # a skewed timing-like law, median 1
    covered = [s.lo <= 1.0 <= s.hi for s in (median_interval(list(row), level) for row in draws)]
    rate, expected = float(np.mean(covered)), coverage(n, 2)
    se = math.sqrt(expected * (1 - expected) / replications)
    assert abs(rate - expected) < 4 * se
    # the variant that must fail: one rank narrower (x_(3), x_(7)) covers 82 %, below the level
    narrow = [sorted(row)[2] <= 1.0 <= sorted(row)[6] for row in draws]
    assert float(np.mean(narrow)) < level - 4 * se


def test_the_summary_is_the_median_the_bounds_and_the_minimum() -> None:
    summary = median_interval([3.0, 1.0, 2.0, 10.0, 2.5, 2.2, 1.5], 0.95)
    assert (summary.median, summary.lo, summary.hi, summary.minimum) == (2.2, 1.0, 10.0, 1.0)
    even = median_interval([4.0, 1.0, 2.0, 3.0, 5.0, 6.0], 0.95)
    assert even.median == 3.5 and (even.lo, even.hi) == (1.0, 6.0)
    assert math.isnan(median_interval([1.0, 2.0], 0.95).lo) and median_interval([1.0, 2.0], 0.95).median == 1.5
    assert math.isnan(median_interval([], 0.95).median)


def test_autorange_repeats_a_short_call_until_a_value_lasts_min_time() -> None:
    calls = []

    def short() -> None:
        calls.append(1)
        time.sleep(0.002)

    loops = autorange(short, 0.03)
    assert loops in (10, 20) and loops * 0.002 >= 0.02  # 1, 2, 5 too short; 10 x 2 ms (sleep may overshoot)
    assert autorange(short, 0.0) == 1  # no calibration: one warm-up call, single calls timed


def test_autorange_discards_a_slow_first_call() -> None:
    state = {"first": True}

    def cold_then_fast() -> None:
        if state["first"]:
            state["first"] = False
            time.sleep(0.05)  # a cold first call (allocation, caches) longer than min_time
        time.sleep(0.001)

    assert autorange(cold_then_fast, 0.02) > 1  # calibrated on the warm calls, not the cold one


def test_time_cell_interleaves_the_reference_and_restores_the_threads() -> None:
    before = torch.get_num_threads()
    x = torch.randn(200, 200)
    timing = time_cell(lambda: x @ x, repeats=4, min_time=0.005, device=CPU, threads=1)
    assert len(timing.seconds) == len(timing.reference) == 4
    assert all(s > 0 for s in timing.seconds + timing.reference) and timing.loops >= 1
    assert timing.threads == 1 and torch.get_num_threads() == before
    assert timing.cpus >= 1 and (math.isnan(timing.load_average) or timing.load_average >= 0)


def test_the_reference_does_the_same_work_each_call() -> None:
    reference = Reference(CPU, 0.0)
    loss_grads = []
    for _ in range(2):
        loss = torch.tanh(reference.x @ reference.w).square().mean()
        loss_grads.append(torch.autograd.grad(loss, reference.w)[0])
    assert torch.equal(*loss_grads) and reference.loops == 1 and reference.value() > 0


def test_thread_shares_split_the_cores_between_workers() -> None:
    assert thread_share(1, cpus=16) == 16 and thread_share(4, cpus=16) == 4 and thread_share(3, cpus=2) == 1
    own = torch.get_num_threads()
    assert threads_for_timing(0) is None  # the process's own count: leave it
    assert threads_for_timing(own) is None
    assert threads_for_timing(1, side_by_side=64) in (None, 1)  # never more than the share


def test_a_run_records_the_calibration_and_a_relative_cost() -> None:
    run = rpbench.run(task="gaussian", estimators="pathwise", params={"fn": "quadratic"}, samples=200, min_time=0.01)
    row = run.results.iloc[0]
    assert row["timing_loops"] > 1  # 200 pathwise estimates take well under 10 ms: repeated inside each value
    assert row["sec_per_estimate_lo"] <= row["sec_per_estimate"] <= row["sec_per_estimate_hi"]
    assert row["sec_per_estimate_min"] == row["sec_per_estimate_lo"]  # 7 values: the interval is [min, max]
    assert 0 < row["relative_cost_lo"] <= row["relative_cost"] <= row["relative_cost_hi"]
    assert row["reference_seconds"] > 0 and row["torch_threads"] == 1 and row["parallel_cells"] == 1
    assert run.meta["parallel"] == {"workers": 1, "threads_per_worker": torch.get_num_threads()}
    assert run.meta["options"]["entries"][0]["min_time"] == 0.01


GATE_SUITE = {
    "suite": {"name": "gate", "min_time": 0.05, "seeds": [0]},
    "run": [
        {"task": "gaussian", "params": {"fn": "quadratic"}, "estimators": ["pathwise", "score"], "samples": 1000},
        {
            "task": "discrete-vae",
            "params": {"latents": 2, "categories": 3, "minibatch": 8, "hidden": 32},
            "estimators": ["score", "gumbel"],
            "samples": 200,
            "batch": 2,
        },
    ],
}
"""Cells of both kinds of work: the Gaussian toy (dispatch-bound) and a small VAE (layers)."""
SLOWED = ("score", "gumbel")


def load_script(name: str) -> ModuleType:
    """A module of scripts/ (not a package), loaded from its file."""
    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def hogs() -> Iterator[None]:
    """Two processes spinning on the CPU (both cores of the default machine) while the test runs:
    the context manager of scripts/timing_under_load.py, which measures the README's table."""
    with load_script("timing_under_load").hogs(2):
        yield


def slowed_three_times(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make SLOWED's estimates cost three times as much (the same estimate, computed three times)."""
    for name in SLOWED:
        cls = get_estimator(name)
        original = cls.estimate

        def thrice(self, *args, _original=original, **kwargs):  # type: ignore[no-untyped-def]
            for _ in range(2):
                _original(self, *args, **kwargs)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(cls, "estimate", thrice)


@pytest.fixture(scope="module")
def quiet_baseline() -> rpbench.Run:
    return rpbench.run(suite=GATE_SUITE)


def speed_regressions(baseline: rpbench.Run, new: rpbench.Run) -> set[str]:
    result = compare_runs(baseline, new, metrics="variance")
    assert not result.regressions  # the numbers themselves never move
    assert all(c.metric == "relative_cost" for c in result.changes if c.verdict.startswith("speed"))
    return {str(c.key["estimator"]) for c in result.speed_regressions}


@pytest.mark.slow
def test_the_speed_gate_holds_with_two_cpu_hogs_beside_an_untouched_tree(quiet_baseline: rpbench.Run, hogs) -> None:
    busy = rpbench.run(suite=GATE_SUITE)
    slowdown = busy.results["sec_per_estimate"].to_numpy() / quiet_baseline.results["sec_per_estimate"].to_numpy()
    assert speed_regressions(quiet_baseline, busy) == set(), f"seconds moved {slowdown.min():.1f}-{slowdown.max():.1f}x"


@pytest.mark.slow
def test_the_speed_gate_flags_an_estimator_made_three_times_slower(
    quiet_baseline: rpbench.Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    slowed_three_times(monkeypatch)
    assert speed_regressions(quiet_baseline, rpbench.run(suite=GATE_SUITE)) == set(SLOWED)


@pytest.mark.slow
def test_the_speed_gate_flags_it_with_two_cpu_hogs_too(
    quiet_baseline: rpbench.Run, monkeypatch: pytest.MonkeyPatch, hogs
) -> None:
    slowed_three_times(monkeypatch)
    assert speed_regressions(quiet_baseline, rpbench.run(suite=GATE_SUITE)) == set(SLOWED)
