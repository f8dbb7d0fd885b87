"""Engine: per-cell seeds, chunking, reproducible draws."""

from __future__ import annotations

import itertools
import subprocess
import sys

import pytest
import torch

from rpbench.engine import (
    bytes_per_estimate,
    cell_seed,
    chunk_layout,
    chunk_seed,
    chunk_size,
    draw_estimates,
    estimate_all,
    growth_schedule,
)
from rpbench.estimators.mvd import MeasureValued
from rpbench.estimators.score import Score
from rpbench.moments import GroupMoments, Moments
from rpbench.options import resolve_device
from tests.conftest import gaussian


def test_cell_seed_depends_on_every_part_of_the_cell() -> None:
    base = cell_seed(0, "gaussian", {"fn": "cos"}, "score", {}, 100, 1)
    assert base == cell_seed(0, "gaussian", {"fn": "cos"}, "score", {}, 100, 1)
    variants = [
        cell_seed(1, "gaussian", {"fn": "cos"}, "score", {}, 100, 1),
        cell_seed(0, "gaussian", {"fn": "step"}, "score", {}, 100, 1),
        cell_seed(0, "gaussian", {"fn": "cos"}, "pathwise", {}, 100, 1),
        cell_seed(0, "gaussian", {"fn": "cos"}, "score+ma", {"decay": 0.5}, 100, 1),
        cell_seed(0, "gaussian", {"fn": "cos"}, "score", {}, 101, 1),
        cell_seed(0, "gaussian", {"fn": "cos"}, "score", {}, 100, 2),
    ]
    assert base not in variants and len(set(variants)) == len(variants)
    assert 0 <= base < 2**63


def test_draws_are_reproducible_and_timed() -> None:
    task = gaussian(fn="cos")
    first = draw_estimates(task, Score(), 50, 2, seed=7, repeats=2)
    second = draw_estimates(task, Score(), 50, 2, seed=7, repeats=1)
    torch.testing.assert_close(first.moments["mu"].u, second.moments["mu"].u, rtol=0, atol=0)
    assert first.moments["mu"].k == 50 and first.moments["mu"].p == 1
    assert len(first.seconds) == 2 and all(s > 0 for s in first.seconds)
    other = draw_estimates(task, Score(), 50, 2, seed=8, repeats=1)
    assert not torch.equal(first.moments["mu"].mean, other.moments["mu"].mean)


def test_one_chunk_is_the_unchunked_draw() -> None:
    task = gaussian(fn="cos", dim=3)
    whole = estimate_all(task, Score(), 400, 2, seed=5)
    draw = draw_estimates(task, Score(), 400, 2, seed=5, repeats=1)
    assert draw.chunk == 400
    for group, values in whole.items():
        expected = Moments.of(values)
        torch.testing.assert_close(draw.moments[group].mean, expected.mean)
        torch.testing.assert_close(draw.moments[group].u, expected.u)


@pytest.mark.parametrize("max_memory", [2**20, 3 * 2**20])
def test_chunked_draws_are_the_chunks_concatenated(max_memory: int) -> None:
    """Chunk i is drawn from chunk_seed(seed, i); the moments equal those of the joined chunks."""
    task = gaussian(fn="cos", dim=4)
    estimator, samples, batch, seed = Score(), 3000, 2, 11
    chunk = chunk_size(task, estimator, samples, batch, max_memory)
    assert 1 < chunk < samples
    draw = draw_estimates(task, estimator, samples, batch, seed, 1, task.exact_gradient(), max_memory)
    assert draw.chunk == chunk
    parts = [
        estimator.estimate(task, min(chunk, samples - begin), batch, torch.Generator().manual_seed(chunk_seed(seed, i)))
        for i, begin in enumerate(range(0, samples, chunk))
    ]
    for group in ("mu", "sigma"):
        joined = torch.cat([part[group] for part in parts])
        expected = Moments.of(joined, task.exact_gradient()[group])
        got = draw.moments[group]
        for name in ("mean", "column_var", "u", "error_sq", "cosine"):
            torch.testing.assert_close(getattr(got, name), getattr(expected, name))
        assert got.trace_sq == pytest.approx(expected.trace_sq, rel=1e-10)


def test_chunk_size_follows_the_memory_budget() -> None:
    task = gaussian(dim=10)
    per_estimate = bytes_per_estimate(task, Score(), 4)
    assert per_estimate > 0
    assert chunk_size(task, Score(), 10**6, 4, 100 * per_estimate) == 100
    assert chunk_size(task, Score(), 50, 4, 100 * per_estimate) == 50
    assert chunk_size(task, Score(), 50, 4, 1) == 1
    assert bytes_per_estimate(task, MeasureValued(), 4) > bytes_per_estimate(task, Score(), 4)
    assert chunk_seed(9, 0) == 9 and len({chunk_seed(9, i) for i in range(100)}) == 100


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_draws_match_the_truth() -> None:
    from rpbench.registry import get_task
    from tests.conftest import max_z_score

    device = resolve_device("cuda")
    task = get_task("gaussian")({"dim": 2, "mu": 1.0, "sigma": 1.0, "fn": "cos", "k": 1.0}, device)
    estimates = estimate_all(task, Score(), 20000, 2, seed=3)
    assert estimates["mu"].device.type == "cuda"
    assert max_z_score(estimates["mu"], task.exact_gradient()["mu"]) < 4


PEAK_RSS = """
import resource, sys, torch
from rpbench.engine import draw_estimates
from rpbench.registry import get_estimator, get_task, load_builtins
load_builtins()
task = get_task("gaussian")({"dim": 100, "mu": 1.0, "sigma": 1.0, "fn": "cos", "k": 1.0}, torch.device("cpu"))
estimator = get_estimator("pathwise")({})
draw = draw_estimates(task, estimator, int(sys.argv[1]), 1, 0, 1, task.exact_gradient(), 64 * 2**20)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, draw.chunk)
"""


@pytest.mark.slow
def test_peak_memory_is_flat_in_k() -> None:
    """Ten times the estimates, same peak.

    5·10⁴ estimates of 200 coordinates would take 80 MB at once (and 3× that centred in float64).
    """

    def peak(samples: int) -> tuple[int, int]:
        out = subprocess.run([sys.executable, "-c", PEAK_RSS, str(samples)], capture_output=True, text=True, check=True)
        rss, chunk = out.stdout.split()
        return int(rss), int(chunk)

    small, chunk = peak(5_000)
    large, _ = peak(50_000)
    assert chunk < 5_000
    assert large - small < 48 * 2**20, f"peak RSS grew by {(large - small) / 2**20:.0f} MiB"


def test_adaptive_k_doubles_from_the_start_and_ends_at_the_cap() -> None:
    assert growth_schedule(100, 100) == [100]
    assert growth_schedule(100, 1000) == [100, 200, 400, 800, 1000]
    sizes = chunk_layout([100, 200, 400, 700], first=60, most=150)
    assert sizes == [60, 40, 100, 150, 50, 150, 150]  # K = 100 as a fixed K = 100 draws it, then ≤ 150 a chunk
    ends = list(itertools.accumulate(sizes))
    assert {100, 200, 400, 700} <= set(ends)  # every K of the schedule ends on a chunk boundary


def test_adaptive_k_stops_at_the_first_k_where_enough_holds_and_at_the_cap() -> None:
    task = gaussian(fn="cos")
    seen: list[int] = []

    def enough(moments: dict[str, GroupMoments]) -> bool:
        seen.append(moments["mu"].k)
        return moments["mu"].k >= 300

    draw = draw_estimates(task, Score(), 100, 1, seed=3, repeats=1, max_samples=10_000, enough=enough)
    assert seen == [100, 200, 400] and draw.samples == 400 and draw.target_reached is True
    assert all(m.k == 400 for m in draw.moments.values())
    seen.clear()
    capped = draw_estimates(task, Score(), 100, 1, seed=3, repeats=1, max_samples=300, enough=lambda m: False)
    assert capped.samples == 300 and capped.target_reached is False
    fixed = draw_estimates(task, Score(), 100, 1, seed=3, repeats=1)
    assert fixed.target_reached is None and fixed.samples == 100


def test_adaptive_k_extends_the_fixed_k_draw_deterministically() -> None:
    """The first K is the fixed-K draw itself; every later K adds chunks: same seed, same numbers."""
    task = gaussian(fn="cos", dim=2)
    fixed = draw_estimates(task, Score(), 100, 2, seed=9, repeats=1)
    at_start = draw_estimates(task, Score(), 100, 2, seed=9, repeats=1, max_samples=800, enough=lambda m: True)
    for group in fixed.moments:
        torch.testing.assert_close(at_start.moments[group].u, fixed.moments[group].u, rtol=0, atol=0)
    grown = [draw_estimates(task, Score(), 100, 2, 9, 1, max_samples=800, enough=lambda m: False) for _ in range(2)]
    assert grown[0].samples == 800 and grown[0].chunk == 400  # chunks of 100, 100, 200, 400
    for group in fixed.moments:
        torch.testing.assert_close(grown[0].moments[group].u, grown[1].moments[group].u, rtol=0, atol=0)
    # K = 200 is the fixed draw's 100 estimates and chunk 1's 100 (its own seed): nothing redrawn differently
    at_200 = draw_estimates(task, Score(), 100, 2, 9, 1, max_samples=200, enough=lambda m: False)
    chunks = [estimate_all(task, Score(), 100, 2, seed=s)["mu"] for s in (9, chunk_seed(9, 1))]
    torch.testing.assert_close(at_200.moments["mu"].mean, torch.cat(chunks).double().mean(0))
    assert not torch.allclose(grown[0].moments["mu"].mean, at_200.moments["mu"].mean)  # 600 more moved the mean


def test_adaptive_k_keeps_every_chunk_within_the_memory_budget() -> None:
    task = gaussian(fn="cos", dim=16)
    budget = 200 * bytes_per_estimate(task, Score(), 1)
    draw = draw_estimates(task, Score(), 100, 1, 0, 1, max_memory=budget, max_samples=1000, enough=lambda m: False)
    assert draw.samples == 1000 and draw.chunk == 200  # 100, then at most 200 a chunk
