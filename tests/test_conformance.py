"""Every registered task × every registered estimator keeps the declared contracts.

Where ``why_not`` says an estimator applies, its K estimates have exactly the task's parameter
groups, each leaf ``(K, *theta leaf)``, finite, reproducible from the seed and changed by another
seed, in the task's precision; where it does not, planning a run that names the estimator refuses
it and ``all`` skips it.  Each family with a ``dtype`` runs in both of its precisions.
Every capability is documented, and a task that offers a capability implying a protocol is an
instance of that protocol.  Tasks run at small configurations (VAEs: minibatch 4, hidden 16, a
few latents, no training); estimators at their defaults, with their set-up shortened.
"""

from __future__ import annotations

import functools
import re

import pytest
import torch

from rpbench.errors import UsageError
from rpbench.estimators.base import Estimator, as_protocol
from rpbench.params import Config, expand_grid, resolve_grid
from rpbench.registry import ESTIMATORS, TASKS, load_builtins
from rpbench.runner import EstimatorRequest, plan
from rpbench.tasks.base import CAPABILITIES, Task, Theta
from rpbench.tasks.protocols import PROTOCOLS, CategoricalLatent, RelaxableLatent, protocol_members

CPU = torch.device("cpu")
K, BATCH = 3, 2
VAE = {"minibatch": "4", "hidden": "16", "steps": "0"}
SMALL: dict[str, list[dict[str, str]]] = {
    "gaussian": [
        {"dim": "2", "mu": "1", "sigma": "1", "fn": "cos", "k": "0.5"},
        {"dim": "2", "mu": "1", "sigma": "1.5", "fn": "step", "k": "0.5"},  # not differentiable
        {"dim": "2", "mu": "1", "sigma": "1", "fn": "cos", "k": "0.5", "dtype": "float32"},
        {"dim": "2", "mu": "1", "sigma": "1.5", "fn": "step", "k": "0.5", "dtype": "float32"},
    ],
    "bernoulli-toy": [
        {"dim": "3", "t": "0.45", "logit": "0.7"},
        {"dim": "3", "t": "0.45", "logit": "0.7", "dtype": "float32"},
    ],
    "gamma": [
        {"dim": "2", "alpha": "0.7", "beta": "1.5", "fn": "log"},
        {"dim": "2", "alpha": "0.7", "beta": "1.5", "fn": "quadratic", "k": "1", "dtype": "float32"},
    ],
    "beta-dist": [
        {"dim": "2", "a": "0.6", "b": "2", "fn": "quadratic", "k": "0.2"},
        {"dim": "2", "a": "0.6", "b": "2", "fn": "log", "dtype": "float32"},
    ],
    "discrete-vae": [
        {"latents": "2", "categories": "3", **VAE},
        {"latents": "2", "categories": "3", "dtype": "float64", **VAE},
        {"latents": "2", "categories": "3", "particles": "2", **VAE},  # the importance-weighted bound
    ],
    "bernoulli-vae": [
        {"latents": "3", "layers": "nonlinear", **VAE},
        {"latents": "3", "layers": "nonlinear", "dtype": "float64", **VAE},
        {"latents": "3", "layers": "nonlinear", "particles": "2", **VAE},
    ],
    "vae": [
        {"latents": "2", **VAE},
        {"latents": "2", "dtype": "float64", **VAE},
        {"latents": "2", "particles": "3", **VAE},
    ],
}
"""Small configurations as `--param` strings, each family in both precisions (its default first);
a task not named here runs at its defaults."""
SHORT_SETUP = {"tune_steps": 3, "pilot": 16, "fit_steps": 3}
"""Estimator parameters that only lengthen the set-up (REBAR/RELAX tuning, the optimal baseline's pilot,
NVIL's fitting)."""

load_builtins()
CONFIGS = [(name, overrides) for name in TASKS for overrides in SMALL.get(name, [{}])]
LABELS = [f"{name}({','.join(f'{k}={v}' for k, v in o.items() if k not in VAE)})" for name, o in CONFIGS]


@functools.cache
def task_of(index: int) -> Task:
    name, overrides = CONFIGS[index]
    cls = TASKS[name]
    (config,) = expand_grid(resolve_grid(cls.params, {k: [v] for k, v in overrides.items()}, f"task {name}"))
    return cls(config, CPU)


def estimator_config(cls: type[Estimator]) -> Config:
    defaults = {p.name: p.default_values[0] for p in cls.params}
    return {k: SHORT_SETUP.get(k, v) for k, v in defaults.items()}  # type: ignore[misc]


def draw(task: Task, cls: type[Estimator], seed: int) -> Theta:
    """K estimates from a fresh estimator, its set-up and its estimates seeded from ``seed``."""
    estimator = cls(estimator_config(cls))
    estimator.prepare(task, BATCH, torch.Generator().manual_seed(seed + 1_000_003))
    return estimator.estimate(task, K, BATCH, torch.Generator().manual_seed(seed))


def leaves(tree: Theta | torch.Tensor, path: str = "") -> dict[str, torch.Tensor]:
    """``{"group.name": tensor}`` of a parameter tree, so that two trees compare key by key."""
    if isinstance(tree, dict):
        return {k: v for key, value in tree.items() for k, v in leaves(value, f"{path}.{key}" if path else key).items()}
    return {path: tree}


PAIRS = [(i, name) for i in range(len(CONFIGS)) for name in ESTIMATORS]


@pytest.mark.parametrize(("index", "name"), PAIRS, ids=[f"{LABELS[i]}-{name}" for i, name in PAIRS])
def test_estimates_keep_the_contract_or_the_estimator_is_refused(index: int, name: str) -> None:
    task, cls = task_of(index), ESTIMATORS[name]
    why = cls.why_not(task, BATCH)
    if why is not None:
        task_name, overrides = CONFIGS[index]
        with pytest.raises(UsageError, match=rf"estimator {re.escape(name)} does not apply to task {task_name}: needs"):
            plan(task_name, {k: [v] for k, v in overrides.items()}, [EstimatorRequest(name)], BATCH, CPU)
        return
    first = draw(task, cls, seed=11)
    expected = leaves(task.theta)
    assert all(leaf.dtype == task.dtype for leaf in expected.values()), "θ is in the task's precision"
    got = leaves(first)
    assert set(first) == set(task.theta), "the estimate's groups are the task's"
    assert list(got) == list(expected), "every parameter of every group, in θ's order"
    for key, value in got.items():
        assert value.shape == (K, *expected[key].shape), key
        assert value.dtype == expected[key].dtype, key
        assert torch.isfinite(value).all(), key
    again = leaves(draw(task, cls, seed=11))
    assert all(torch.equal(got[key], again[key]) for key in got), "the same seed gives the same numbers"
    other = leaves(draw(task, cls, seed=12))
    constant = all(torch.equal(v, v[:1].expand_as(v)) for v in got.values())  # e.g. pathwise on a step: 0
    assert constant or any(not torch.equal(got[key], other[key]) for key in got), "another seed, other numbers"


@pytest.mark.parametrize("index", range(len(CONFIGS)), ids=LABELS)
def test_all_runs_what_applies_and_skips_the_rest(index: int) -> None:
    task_name, overrides = CONFIGS[index]
    task = task_of(index)
    for batch in (1, BATCH):
        the_plan = plan(task_name, {k: [v] for k, v in overrides.items()}, [EstimatorRequest("all")], batch, CPU)
        planned = {cell.estimator.name for cell in the_plan.cells}
        applies = {name for name, cls in ESTIMATORS.items() if cls.why_not(task, batch) is None}
        assert planned == applies
        skipped = {line.split(" on ", 1)[0] for line in the_plan.skipped}
        assert skipped == set(ESTIMATORS) - applies


def test_score_with_a_leave_one_out_baseline_needs_two_samples() -> None:
    """The batch is part of applicability: named with --batch 1, score+loo is refused."""
    name, overrides = CONFIGS[0]
    with pytest.raises(UsageError, match=r"estimator score\+loo does not apply .*needs --batch >= 2"):
        plan(name, {k: [v] for k, v in overrides.items()}, [EstimatorRequest("score+loo")], 1, CPU)


@pytest.mark.parametrize("index", range(len(CONFIGS)), ids=LABELS)
def test_capabilities_are_documented_and_imply_their_protocols(index: int) -> None:
    task = task_of(index)
    assert task.capabilities <= set(CAPABILITIES)
    for capability in task.capabilities & set(PROTOCOLS):
        protocol = PROTOCOLS[capability]
        assert isinstance(task, protocol), f"{task.name} offers {capability} but is not a {protocol.__name__}"
    if isinstance(task, RelaxableLatent) and "relaxable" in task.capabilities:
        assert len(task.latent_shape) == 1 + task.event_dims == 1 + task.latent.event_dims
        noise = task.noise(torch.Generator().manual_seed(0), (2, 3))
        assert noise.shape == (2, 3, *task.latent_shape)
        assert task.perturb(task.theta, noise).shape == noise.shape
        assert task.uniform(torch.Generator().manual_seed(0), (2,)).shape == (2, *task.latent_shape)
    if "categorical" in task.capabilities:
        assert isinstance(task, CategoricalLatent) and task.latent_shape[-1] == task.categories
    if "bernoulli" in task.capabilities:
        assert isinstance(task, RelaxableLatent) and len(task.latent_shape) == 2


def test_every_capability_needed_is_documented_and_names_its_protocol() -> None:
    for cls in ESTIMATORS.values():
        assert cls.needs <= set(CAPABILITIES), cls.name
    assert set(PROTOCOLS) <= set(CAPABILITIES)
    for capability, protocol in PROTOCOLS.items():
        assert f"protocol {protocol.__name__}" in CAPABILITIES[capability]
        assert protocol_members(protocol), protocol.__name__


def test_a_task_that_offers_a_capability_without_its_protocol_is_named() -> None:
    """A plugin task that says ``relaxable`` but has no ``logits``: the estimator says what it lacks."""
    task = task_of(0)
    with pytest.raises(
        TypeError, match=r"estimator gumbel: task gaussian is not a RelaxableLatent \(it lacks .*logits"
    ):
        as_protocol(task, RelaxableLatent, "gumbel")
