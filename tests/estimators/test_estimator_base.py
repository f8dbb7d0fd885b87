"""The estimator contract: batched gradients equal a per-estimate loop; applicability is declared."""

from __future__ import annotations

import re

import pytest
import torch

from rpbench.estimators.base import copy_gradients, per_estimate_gradients
from rpbench.estimators.pathwise import Pathwise, pathwise_surrogate
from rpbench.registry import ESTIMATORS, load_builtins
from tests.conftest import CPU, gaussian


def test_vmap_gradients_equal_a_loop_of_autograd_calls() -> None:
    task = gaussian(fn="cos", dim=3, k=1.1)
    noise = torch.randn(6, 2, 3, dtype=torch.float64)
    batched = per_estimate_gradients(lambda th, eps: pathwise_surrogate(task, th, eps), task.theta, noise)
    for k in range(6):
        theta = {name: value.clone().requires_grad_(True) for name, value in task.theta.items()}
        pathwise_surrogate(task, theta, noise[k]).backward()
        for name in theta:
            assert torch.allclose(batched[name][k], theta[name].grad)


@pytest.mark.parametrize("fn", ["cos", "quadratic", "step"])
def test_copies_of_theta_give_the_vmap_gradients(fn: str) -> None:
    """copy_gradients (K copies of θ, one backward) equals vmap(grad) on a broadcasting task."""
    task = gaussian(fn=fn, dim=3, k=0.7)
    assert task.broadcasts_theta
    noise = torch.randn(50, 4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    expected = per_estimate_gradients(lambda th, eps: pathwise_surrogate(task, th, eps), task.theta, noise)
    got = copy_gradients(lambda th: task.objective(th, task.sample(th, noise)).mean(dim=(1, 2)), task.theta, 50)
    for name in task.theta:
        assert got[name].shape == (50, 3)
        torch.testing.assert_close(got[name], expected[name], rtol=1e-12, atol=1e-12)
    if fn == "step":
        assert all(torch.count_nonzero(g) == 0 for g in got.values())


def test_every_lane_gets_its_own_noise() -> None:
    task = gaussian(fn="cos")
    draws = Pathwise().estimate(task, 100, 1, torch.Generator().manual_seed(0))
    assert draws["mu"].unique().numel() == 100


CITATION = re.compile(r"\s*(?P<author>[A-Z][\w-]+)[^;]*?\b(?P<year>(?:19|20)\d\d)\b")
"""One entry of ``reference``: a first author's surname, then the year (``Kool, van Hoof & Welling 2019``)."""


def cites(docstring: str, author: str, year: str) -> bool:
    """Whether the docstring names ``author`` with ``year`` after it (``Williams (1992)``, ``Kool … 2019``)."""
    return re.search(rf"\b{author}\b[^()]{{0,80}}\(?{year}\b", " ".join(docstring.split())) is not None


def test_every_builtin_estimator_declares_itself() -> None:
    """Name, summary, and a docstring that cites, author and year, every paper its ``reference`` names."""
    load_builtins()
    for name, cls in ESTIMATORS.items():
        assert cls.name == name
        assert cls.summary and cls.reference
        entries = [CITATION.match(entry) for entry in cls.reference.split(";")]
        assert entries and all(entries), f"{name}: reference {cls.reference!r} is not 'Author [et al.] YEAR; ...'"
        for entry in entries:
            assert cls.__doc__ and cites(cls.__doc__, entry["author"], entry["year"]), (name, entry.group(0))


def test_the_citation_check_can_fail() -> None:
    """A docstring with digits but no matching citation fails; the wrong year or author fails."""
    assert cites("Williams (1992), REINFORCE.", "Williams", "1992")
    assert not cites("Uses 2 samples per estimate; see §4.", "Williams", "1992")
    assert not cites("Williams (1993).", "Williams", "1992")
    assert not cites("Glynn (1992).", "Williams", "1992")
    assert CITATION.match("Kool, van Hoof & Welling 2019")["author"] == "Kool"
    assert CITATION.match("see the README") is None


def test_why_not_names_the_missing_capability() -> None:
    load_builtins()
    reason = ESTIMATORS["pathwise+delta"].why_not(gaussian(fn="step"), 1)
    assert reason is not None and "differentiable" in reason


def test_an_amortize_hook_wraps_the_vmap() -> None:
    """``amortize`` hands the vmap its θ' and maps the K gradients back (here: doubles them)."""
    task = gaussian(fn="cos", dim=3, k=1.1)
    noise = torch.randn(6, 2, 3, dtype=torch.float64)
    surrogate = lambda th, eps: pathwise_surrogate(task, th, eps)  # noqa: E731
    plain = per_estimate_gradients(surrogate, task.theta, noise)
    doubled = per_estimate_gradients(
        surrogate, task.theta, noise, amortize=lambda th: (th, lambda g: {k: 2 * v for k, v in g.items()})
    )
    for name in plain:
        assert plain[name].shape == (6, *task.theta[name].shape)
        torch.testing.assert_close(doubled[name], 2 * plain[name])


UNCOUNTED = {
    "score+ma": "its burn-in estimates before the K measured ones evaluate f too, inside a vmap (traced once)",
    "score+delta": "the Taylor expansion at the mean (f, its gradient and Hessian) runs once per call",
    "pathwise+delta": "the Taylor expansion at the mean (f, its gradient and Hessian) runs once per call",
}
"""Estimators whose work once per call (not per estimate) besides ``evaluations`` makes a count of f's
points at one estimate exceed it; their declaration is the per-estimate part (``n``)."""


def small_tasks() -> list:
    from rpbench.registry import get_task
    from tests.conftest import bernoulli, categorical, vae

    toy = get_task("bernoulli-toy")({"dim": 3, "t": 0.45, "logit": 0.7, "dtype": "float64"}, CPU)
    gamma = get_task("gamma")({"dim": 2, "alpha": 0.5, "beta": 1.0, "fn": "log", "k": 1.0, "dtype": "float64"}, CPU)
    bounds = [  # the importance-weighted bound: M particles per sample
        vae("bernoulli-vae", latents=3, particles=2, dtype="float64"),
        vae("vae", latents=2, particles=3, dtype="float64"),
    ]
    return [gaussian(dim=2, fn="cos"), categorical("float64"), bernoulli("float64"), toy, gamma, *bounds]


class CountingObjective:
    """Wraps a task's objective and counts the points it is evaluated at (samples, relaxed or hard).

    On a task with per-particle log weights (the importance-weighted bound) a call of those outside
    the objective (VIMCO, DReG) is an evaluation of f at its samples too."""

    def __init__(self, task) -> None:
        self.task, self.objective, self.points, self.inside = task, task.objective, 0, False
        one = task.sample(task.theta, task.noise(torch.Generator().manual_seed(0), (1,)))
        self.size = one[0].numel()  # elements of one sample's latent
        self.log_joint = getattr(task, "particle_log_joint", None)

    def __call__(self, theta, z: torch.Tensor) -> torch.Tensor:
        self.points += z.numel() // self.size
        self.inside = True
        try:
            return self.objective(theta, z)
        finally:
            self.inside = False

    def particle_log_joint(self, theta, z: torch.Tensor) -> torch.Tensor:
        if not self.inside:
            self.points += z.numel() // self.size
        return self.log_joint(theta, z)


def counted(task, estimator, samples: int, batch: int) -> int:
    """Points f is evaluated at while ``estimator`` draws ``samples`` estimates of ``batch`` samples."""
    counter = CountingObjective(task)
    estimator.prepare(task, batch, torch.Generator().manual_seed(1))
    task.objective = counter  # an instance attribute shadows the method while counting
    if counter.log_joint is not None:
        task.particle_log_joint = counter.particle_log_joint
    try:
        estimator.estimate(task, samples, batch, torch.Generator().manual_seed(2))
    finally:
        del task.objective
        if counter.log_joint is not None:
            del task.particle_log_joint
    return counter.points


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_declared_evaluations_are_the_points_f_is_evaluated_at(name: str) -> None:
    """One estimate of n samples evaluates f at ``evaluations(task, n)`` points (no vmap at K = 1: the
    estimators take one plain autograd pass, so every call counts its points once)."""
    if name in UNCOUNTED:
        pytest.skip(UNCOUNTED[name])
    cls = ESTIMATORS[name]
    checked = 0
    for task in small_tasks():
        for batch in (2, 3):
            if cls.why_not(task, batch) is not None:
                continue
            defaults = {p.name: p.default_values[0] for p in cls.params}
            short = {key: value for key, value in {"tune_steps": 2, "pilot": 10}.items() if key in defaults}
            estimator = cls({**defaults, **short})
            assert counted(task, estimator, 1, batch) == estimator.evaluations(task, batch), (name, task.name, batch)
            checked += 1
    assert checked, f"{name} applies to none of the small tasks"


def test_a_wrong_declaration_fails_the_count() -> None:
    """ARM declared at one evaluation per sample (it makes two) is caught by the same count."""
    from tests.conftest import bernoulli

    arm = ESTIMATORS["arm"]({})
    task = bernoulli("float64")
    assert counted(task, arm, 1, 3) == 6 == arm.evaluations(task, 3)
    assert counted(task, arm, 1, 3) != 3  # what the default (one per sample) would declare
