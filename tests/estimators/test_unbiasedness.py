"""Every unbiased estimator's mean is within 4 SE of the exact gradient; biased ones fail that check.

Both hold in float64 and in float32: the SE is floored at the round-off of the precision
(:func:`tests.conftest.round_off`, a few machine epsilons of it relative to the gradient), and the
exact gradient is the float64 closed form in both.
"""

from __future__ import annotations

import pytest
import torch

from rpbench.estimators.base import Estimator, per_estimate_gradients
from rpbench.registry import ESTIMATORS, load_builtins
from rpbench.tasks.base import Task, Theta
from rpbench.tasks.gaussian import FUNCTIONS
from tests.conftest import DTYPES, estimates, gaussian, max_z_score

load_builtins()
UNBIASED = sorted(name for name, cls in ESTIMATORS.items() if not cls.biased)
# Two parameter points, the second in D = 2 with several samples per estimate.
POINTS = [
    {"dim": 1, "mu": 1.0, "sigma": 1.0, "k": 0.5, "batch": 2},
    {"dim": 2, "mu": -0.4, "sigma": 1.6, "k": 1.3, "batch": 3},
]
FAST = {"lax": {"tune_steps": 20}}
"""Shorter tuning for estimators whose ``prepare`` tunes (any tuning is unbiased; tests/estimators/test_lax.py
checks that tuning lowers the variance)."""


def cases() -> list[tuple[str, str, int]]:
    out = []
    for name in UNBIASED:
        for fn in sorted(FUNCTIONS):
            if name == "pathwise" and fn == "step":
                continue  # biased there: checked in test_pathwise.py
            for i, point in enumerate(POINTS):
                config = {k: v for k, v in point.items() if k != "batch"}
                if ESTIMATORS[name].why_not(gaussian(fn=fn, **config), int(point["batch"])) is None:
                    out.append((name, fn, i))
    return out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("name", "fn", "point"), cases())
def test_mean_within_four_standard_errors(name: str, fn: str, point: int, dtype: str) -> None:
    config = dict(POINTS[point])
    batch = config.pop("batch")
    task = gaussian(fn=fn, dtype=dtype, **config)
    draws = estimates(task, name, samples=20_000, batch=batch, seed=11, **FAST.get(name, {}))
    exact = task.exact_gradient()
    for group, values in draws.items():
        assert values.dtype == task.dtype
        assert max_z_score(values, exact[group]) < 4.0, (name, fn, group)


class SelfBaselineScore(Estimator):
    """Deliberately biased: the baseline includes the sample's own f (``mean f`` over the batch)."""

    name = "test-self-baseline"
    summary = "biased on purpose"
    reference = "none"
    needs = frozenset({"log-prob"})

    def estimate(self, task: Task, samples: int, batch: int, generator: torch.Generator) -> Theta:
        noise = task.noise(generator, (samples, batch))

        def surrogate(theta: Theta, eps: torch.Tensor) -> torch.Tensor:
            z = task.sample(theta, eps).detach()
            f = task.objective(theta, z).detach()
            return ((f - f.mean()) * task.log_prob(theta, z)).mean()

        return per_estimate_gradients(surrogate, task.theta, noise)


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_deliberately_biased_estimator_fails_the_same_check(dtype: str) -> None:
    task = gaussian(fn="quadratic", k=0.0, dtype=dtype)
    generator = torch.Generator().manual_seed(3)
    draws = SelfBaselineScore().estimate(task, 20_000, 2, generator)
    # E = (n−1)/n · ∇L: half the true gradient at n = 2, far beyond 4 SE at this K.
    assert max_z_score(draws["mu"], task.exact_gradient()["mu"]) > 4.0
    assert max_z_score(2 * draws["mu"], task.exact_gradient()["mu"]) < 4.0


@pytest.mark.parametrize("dtype", DTYPES)
def test_the_round_off_floor_forgives_rounding_but_not_a_bias(dtype: str) -> None:
    """Zero-variance estimates a few machine epsilons off pass; off by 10⁻³ (a real bias) they fail."""
    precision = getattr(torch, dtype)
    exact = torch.tensor([2.0], dtype=torch.float64)
    eps = torch.finfo(precision).eps
    rounded = torch.full((1000, 1), 2.0 * (1 + 4 * eps), dtype=precision)
    assert rounded[0, 0] != 2.0 and max_z_score(rounded, exact) < 4.0
    biased = torch.full((1000, 1), 2.0 * (1 + 1e-3), dtype=precision)
    assert max_z_score(biased, exact) > 4.0
