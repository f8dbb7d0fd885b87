"""Registries are open: a user's estimator registers and runs exactly like ours."""

from __future__ import annotations

import pytest
import torch

from rpbench.errors import UsageError
from rpbench.estimators.base import Estimator, per_estimate_gradients
from rpbench.registry import ESTIMATORS, get_estimator, get_task, register_estimator
from rpbench.runner import EstimatorRequest, execute, plan
from rpbench.tasks.base import Task, Theta


def test_unknown_names_list_the_valid_ones() -> None:
    with pytest.raises(UsageError, match="valid tasks: bernoulli-vae, discrete-vae, gaussian, vae"):
        get_task("gausian")
    with pytest.raises(UsageError, match=r"valid estimators: all, .*pathwise"):
        get_estimator("pathwize")


def test_a_user_estimator_runs_through_the_runner() -> None:
    @register_estimator
    class UserPathwise(Estimator):
        """A user's own copy of the pathwise estimator (Kingma & Welling 2014)."""

        name = "test-user-pathwise"
        summary = "user estimator"
        reference = "none"
        needs = frozenset({"reparameterizable"})

        def estimate(self, task: Task, samples: int, batch: int, generator: torch.Generator) -> Theta:
            noise = task.noise(generator, (samples, batch))
            return per_estimate_gradients(
                lambda th, eps: task.objective(th, task.sample(th, eps)).mean(), task.theta, noise
            )

    try:
        cells = plan(
            "gaussian",
            {"fn": ["cos"], "sigma": ["1"], "k": ["1"]},
            [EstimatorRequest(UserPathwise.name)],
            1,
            torch.device("cpu"),
        ).cells
        rows = [row for result in execute(cells, 200, 1, 0, repeats=1) for row in result.rows]
        assert {row["estimator"] for row in rows} == {UserPathwise.name}
        assert abs(rows[0]["bias"]) < 4 * (rows[0]["variance"] / 200) ** 0.5
    finally:
        ESTIMATORS.pop(UserPathwise.name)


def test_names_with_separators_are_refused() -> None:
    with pytest.raises(TypeError):

        @register_estimator
        class Bad(Estimator):
            name = "a,b"
