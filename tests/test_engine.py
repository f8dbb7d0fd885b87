"""Engine: per-cell seeds, device resolution, reproducible draws."""

from __future__ import annotations

import pytest
import torch

from rpbench.engine import cell_seed, draw_estimates, resolve_device
from rpbench.errors import UsageError
from rpbench.estimators.score import Score
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
    assert torch.equal(first.estimates["mu"], second.estimates["mu"])
    assert first.estimates["mu"].shape == (50, 1)
    assert len(first.seconds) == 2 and all(s > 0 for s in first.seconds)
    other = draw_estimates(task, Score(), 50, 2, seed=8, repeats=1)
    assert not torch.equal(first.estimates["mu"], other.estimates["mu"])


def test_resolve_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(UsageError, match="valid choices: cpu, cuda, cuda:N"):
        resolve_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="CUDA is not available"):
        resolve_device("cuda")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_draws_match_the_truth() -> None:
    from rpbench.registry import get_task
    from tests.conftest import max_z_score

    device = resolve_device("cuda")
    task = get_task("gaussian")({"dim": 2, "mu": 1.0, "sigma": 1.0, "fn": "cos", "k": 1.0}, device)
    draw = draw_estimates(task, Score(), 20000, 2, seed=3, repeats=1)
    assert draw.estimates["mu"].device.type == "cuda"
    assert max_z_score(draw.estimates["mu"], task.exact_gradient()["mu"]) < 4
