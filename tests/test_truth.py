"""The truth of a task: exact enumeration where possible, else a cached, deterministic reference."""

from __future__ import annotations

import math

import pytest
import torch

from rpbench import truth
from rpbench.registry import get_task
from rpbench.tasks.vae import VAETask
from rpbench.truth import Truth, reference_truth, se_norm, truth_of

CPU = torch.device("cpu")
GROUPS = ("encoder", "decoder")
SMALL = {"data": "digits", "binarize": "static", "minibatch": 4, "hidden": 8, "steps": 0, "model_seed": 0}
ENUMERABLE = [
    ("discrete-vae", {"latents": 2, "categories": 3}),
    ("bernoulli-vae", {"latents": 4, "layers": "linear"}),
]
NOT_ENUMERABLE = [
    ("vae", 400, {"latents": 2}),  # Gaussian latents: always the reference
    ("discrete-vae", 100, {"latents": 20, "categories": 3}),  # 4 × 3²⁰ configurations
]

# Bonferroni: a reference is a mean of ≥ 125 estimates, so each coordinate's z-score is roughly
# N(0, 1); with P ≤ ~1,200 coordinates (discrete-vae, both groups) the chance that any |z| exceeds
# 5.5 is at most P · 2Φ(−5.5) ≈ 1,200 × 3.8e-8 ≈ 5e-5 per reference (4 SE would give ~0.08).
MAX_Z = 5.5


def tiny_vae(name: str, reference: int = 400, **config: object) -> VAETask:
    """A small VAE task on the digits; ``config`` and :data:`SMALL` must set every parameter (but
    the neutral ones, added later, at their defaults)."""
    cls = get_task(name)
    later = {p.name: p.default_values[0] for p in cls.params if p.neutral}
    full = {**later, **SMALL, "reference": reference, **config}
    assert set(full) == {p.name for p in cls.params}
    return cls(full, CPU)


def parameter_counts(task: VAETask) -> dict[str, int]:
    """Number of parameters per group."""
    return {group: sum(v.numel() for v in task.theta[group].values()) for group in GROUPS}


def max_z(reference: Truth, exact: dict[str, torch.Tensor]) -> float:
    """Largest |reference − exact| / SE over every coordinate of every group.

    A coordinate with SE 0 (every estimate equal, e.g. a dead unit or a pixel that is always 0)
    must match to round-off; it counts as z = 0 if it does and ∞ otherwise.
    """
    assert reference.se is not None
    worst = 0.0
    for group, value in exact.items():
        diff = (reference.gradient[group] - value.to(torch.float64)).abs()
        se = reference.se[group]
        exact_zero_se = diff[se == 0] <= 1e-6 * (1 + value[se == 0].abs())
        if not exact_zero_se.all():
            return math.inf
        worst = max(worst, float((diff[se > 0] / se[se > 0]).max()))
    return worst


@pytest.fixture(autouse=True)
def fresh_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with an empty reference cache."""
    monkeypatch.setattr(truth, "_CACHE", {})


@pytest.mark.parametrize(("name", "config"), ENUMERABLE)
def test_enumerable_task_has_exact_truth(name: str, config: dict[str, object]) -> None:
    task = tiny_vae(name, **config)
    assert task.enumerable
    result = truth_of(task)
    assert result is not None and result.kind == "enumeration" and result.se is None
    assert set(result.gradient) == set(GROUPS)
    exact = task.exact_gradient()
    for group, count in parameter_counts(task).items():
        gradient = result.gradient[group]
        assert gradient.shape == (count,)
        assert torch.isfinite(gradient).all() and gradient.abs().sum() > 0
        assert torch.equal(gradient, torch.cat([v.reshape(-1) for v in exact[group].values()]))
    assert truth._CACHE == {}  # exact truth is not a reference and is not cached


@pytest.mark.parametrize(("name", "reference", "config"), NOT_ENUMERABLE)
def test_non_enumerable_task_uses_a_cached_reference(name: str, reference: int, config: dict[str, object]) -> None:
    task = tiny_vae(name, reference, **config)
    assert not task.enumerable and task.exact_gradient() is None
    result = truth_of(task)
    estimator, _, batch = task.reference_estimator
    assert result is not None and result.kind == f"reference:{estimator}x{reference // batch * batch}"
    assert result.se is not None and set(result.gradient) == set(result.se) == set(GROUPS)
    for group, count in parameter_counts(task).items():
        assert result.gradient[group].shape == result.se[group].shape == (count,)
        assert torch.isfinite(result.gradient[group]).all()
        assert (result.se[group] >= 0).all() and se_norm(result.se[group]) > 0
    assert truth_of(task) is result
    assert truth_of(tiny_vae(name, reference, **config)) is result  # the cache is keyed by the configuration


def test_reference_is_deterministic() -> None:
    task = tiny_vae("vae", latents=2)
    first = truth_of(task)
    truth._CACHE.clear()
    second = truth_of(task)
    assert first is not None and second is not None and second is not first
    assert first.kind == second.kind
    assert first.se is not None and second.se is not None
    for group in GROUPS:
        assert torch.equal(first.gradient[group], second.gradient[group])
        assert torch.equal(first.se[group], second.se[group])
    other = truth_of(tiny_vae("vae", reference=200, latents=2))  # another configuration, another reference
    assert other is not None and other is not second and other.kind != second.kind


@pytest.mark.parametrize(("name", "config"), ENUMERABLE)
def test_reference_agrees_with_enumeration(name: str, config: dict[str, object]) -> None:
    task = tiny_vae(name, **config)
    exact = truth_of(task)
    assert exact is not None and exact.kind == "enumeration"
    small = reference_truth(task, *task.reference_estimator, total=1000)
    large = reference_truth(task, *task.reference_estimator, total=4000)
    assert small.kind.endswith("x1000") and large.kind.endswith("x4000")
    assert max_z(small, exact.gradient) < MAX_Z
    assert max_z(large, exact.gradient) < MAX_Z
    # The check has power: a gradient 10 % too small is far outside the ball.
    assert max_z(small, {g: 0.9 * v for g, v in exact.gradient.items()}) > MAX_Z
    # Four times the samples, half the standard error (SE ∝ 1/√count).
    assert small.se is not None and large.se is not None
    for group in GROUPS:
        assert 1.6 < se_norm(small.se[group]) / se_norm(large.se[group]) < 2.5


def test_se_norm() -> None:
    assert se_norm(None) == 0.0
    assert se_norm(torch.tensor([3.0, 4.0])) == pytest.approx(5.0)
    assert se_norm(torch.tensor([[1.0, 2.0], [2.0, 4.0]], dtype=torch.float64)) == pytest.approx(5.0)
    assert se_norm(torch.zeros(3)) == 0.0
    assert isinstance(se_norm(torch.tensor([1.0])), float)


def test_no_truth_without_exact_gradient_or_reference() -> None:
    class Unknown:
        """A stand-in task with no exact gradient and no reference estimator."""

        def exact_gradient(self) -> None:
            return None

    assert truth_of(Unknown()) is None  # type: ignore[arg-type]


@pytest.mark.parametrize("hold", [truth.REFERENCE_HOLD, 0])
def test_reference_is_the_moments_of_all_its_estimates(hold: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Drawn in chunks (held between the passes, or redrawn from the generator's saved state), the
    reference is the float64 mean and standard error of every estimate at once."""
    from tests.conftest import gaussian

    seen: list[dict[str, list[torch.Tensor]]] = []
    blocks_of = truth.group_blocks

    def recording(estimates: dict) -> dict[str, list[torch.Tensor]]:
        seen.append(blocks_of(estimates))
        return seen[-1]

    monkeypatch.setattr(truth, "group_blocks", recording)
    monkeypatch.setattr(truth, "REFERENCE_CHUNK", 64)
    monkeypatch.setattr(truth, "REFERENCE_HOLD", hold)
    task = gaussian(fn="quadratic", mu=1000.0, k=0.0, dim=3)  # gradients near 2000, spread near 2
    result = reference_truth(task, "pathwise", {}, 1, 1000)
    chunks = 16  # ceil(1000 / 64)
    assert len(seen) == (chunks if hold else 2 * chunks)  # with nothing held, the second pass redraws
    if not hold:  # ... and redraws exactly the first pass's estimates
        for first, second in zip(seen[:chunks], seen[chunks:], strict=True):
            assert all(torch.equal(a, b) for g in first for a, b in zip(first[g], second[g], strict=True))
    for group in ("mu", "sigma"):
        values = torch.cat([torch.cat(chunk[group], dim=1) for chunk in seen[:chunks]]).to(torch.float64)
        assert values.shape == (1000, 3)
        assert result.se is not None
        torch.testing.assert_close(result.gradient[group], values.mean(0), rtol=1e-12, atol=0)
        torch.testing.assert_close(result.se[group], values.std(0) / math.sqrt(1000), rtol=1e-9, atol=0)


def test_held_and_redrawn_references_are_identical(monkeypatch: pytest.MonkeyPatch) -> None:
    task = tiny_vae("vae", reference=400, latents=2)
    monkeypatch.setattr(truth, "REFERENCE_CHUNK", 16)
    held = reference_truth(task, *task.reference_estimator, total=400)
    monkeypatch.setattr(truth, "REFERENCE_HOLD", 0)
    redrawn = reference_truth(task, *task.reference_estimator, total=400)
    assert held.se is not None and redrawn.se is not None
    for group in GROUPS:
        assert torch.equal(held.gradient[group], redrawn.gradient[group])
        assert torch.equal(held.se[group], redrawn.se[group])


def test_a_reference_reports_its_progress_chunk_by_chunk_over_both_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(truth, "REFERENCE_CHUNK", 16)
    task = tiny_vae("vae", reference=400, latents=2)  # 50 estimates of n = 8: chunks of 16, 16, 16, 2
    reports: list[truth.ReferenceReport] = []
    result = truth_of(task, on_reference=reports.append)
    assert result is not None
    assert [r.done for r in reports] == [16, 32, 48, 50, 66, 82, 98, 100]
    assert {(r.task, r.kind, r.total) for r in reports} == {("vae", result.kind, 100)}
    truth_of(task, on_reference=reports.append)
    assert len(reports) == 8  # known in memory: nothing drawn, nothing reported


def test_truth_brings_a_task_that_needs_training_to_its_state_first() -> None:
    task = tiny_vae("discrete-vae", steps=3, latents=2, categories=3)
    assert not task.has_state
    result = truth_of(task)
    assert task.has_state and result is not None and result.kind == "enumeration"
    exact = task.exact_gradient()
    assert exact is not None
    assert torch.equal(result.gradient["encoder"], torch.cat([v.reshape(-1) for v in exact["encoder"].values()]))
