"""Warm-up: a task with ``steps > 0`` is trained above tasks and estimators, reproducibly, once."""

from __future__ import annotations

import pytest
import torch

from rpbench.runner import EstimatorRequest, plan
from rpbench.training import warm_up, warmup
from rpbench.training.warmup import train
from tests.conftest import vae

SMALL = {"latents": 4, "minibatch": 8}


@pytest.fixture(autouse=True)
def fresh_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test trains afresh."""
    monkeypatch.setattr(warmup, "_TRAINED", {})


@pytest.mark.slow
def test_model_state_is_reproducible_and_training_raises_the_elbo() -> None:
    start = vae("bernoulli-vae", **SMALL)
    trained = vae("bernoulli-vae", **SMALL, steps=150)
    warm_up(trained)
    again = train(trained, 150, 0)  # trained afresh, not from the cache
    for group in ("encoder", "decoder"):
        for key, value in trained.theta[group].items():
            assert torch.equal(value, again[group][key])
            assert not torch.equal(value, start.theta[group][key])
    assert trained.exact_value() > start.exact_value() + 1.0
    other_seed = train(trained, 150, 1)
    assert not torch.equal(other_seed["encoder"]["0.weight"], again["encoder"]["0.weight"])


@pytest.mark.parametrize(
    ("name", "config", "checksum"),
    [
        ("bernoulli-vae", {"latents": 4, "minibatch": 8, "steps": 150}, 85.30093935335753),
        ("discrete-vae", {"latents": 2, "categories": 3, "steps": 20}, 158.6687849063892),
        ("vae", {"latents": 2, "steps": 20}, 155.49723161722068),
    ],
)
def test_the_trained_states_are_those_of_training_inside_the_task(name: str, config: dict, checksum: float) -> None:
    """Pinned: Σ encoder + Σ|decoder| as training at task construction gave them (before it moved here)."""
    task = vae(name, **config)
    warm_up(task)
    encoder, decoder = task.theta["encoder"].values(), task.theta["decoder"].values()
    total = sum(float(v.double().sum()) for v in encoder) + sum(float(v.double().abs().sum()) for v in decoder)
    assert total == pytest.approx(checksum, rel=1e-6)


def test_training_leaves_the_task_as_it_was_and_warm_up_loads_the_result() -> None:
    task = vae("discrete-vae", latents=2, categories=3, steps=4)
    x = task.x
    state = train(task, 4, 0)
    assert not task.has_state and task.x is x
    warm_up(task)
    assert task.has_state and task.x is x
    for group in ("encoder", "decoder"):
        for key, value in state[group].items():
            assert torch.equal(task.theta[group][key], value)


def test_warm_up_trains_once_per_model_and_leaves_other_tasks_alone() -> None:
    a = vae("bernoulli-vae", **SMALL, steps=3, reference=100)
    b = vae("bernoulli-vae", **SMALL, steps=3, reference=200)  # the reference does not change the model
    c = vae("bernoulli-vae", **SMALL, steps=4)
    untrained = vae("bernoulli-vae", **SMALL)
    before = untrained.theta
    warm_up(a, b, c, untrained)
    assert len(warmup._TRAINED) == 2
    assert a.theta["encoder"]["0.weight"] is b.theta["encoder"]["0.weight"]
    assert not torch.equal(a.theta["encoder"]["0.weight"], c.theta["encoder"]["0.weight"])
    assert untrained.theta is before
    trained = a.theta
    warm_up(a)
    assert a.theta is trained  # a second call is free


def test_planning_a_run_warms_its_tasks_up() -> None:
    the_plan = plan(
        "discrete-vae",
        {"latents": ["2"], "categories": ["3"], "minibatch": ["4"], "hidden": ["8"], "steps": ["0", "2"]},
        [EstimatorRequest("gumbel")],
        1,
        torch.device("cpu"),
    )
    tasks = {cell.task.training_steps: cell.task for cell in the_plan.cells}
    assert set(tasks) == {0, 2} and all(task.has_state for task in tasks.values())
    assert not torch.equal(tasks[0].theta["encoder"]["0.weight"], tasks[2].theta["encoder"]["0.weight"])


def test_training_needs_a_trainable_task() -> None:
    from tests.conftest import gaussian

    with pytest.raises(TypeError, match="does not declare what training needs"):
        train(gaussian(), 1, 0)
    warm_up(gaussian())  # nothing to do
