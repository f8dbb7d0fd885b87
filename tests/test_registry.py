"""Registries are open: a user's estimator registers and runs exactly like ours."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from rpbench.columns import RESERVED
from rpbench.errors import UsageError
from rpbench.estimators.base import Estimator, per_estimate_gradients
from rpbench.params import ParamSpec
from rpbench.registry import (
    ESTIMATORS,
    TASKS,
    RegistrationError,
    get_estimator,
    get_task,
    register_estimator,
    register_task,
)
from rpbench.runner import EstimatorRequest, execute, plan
from rpbench.tasks.base import CAPABILITIES, Task, Theta
from rpbench.tasks.gaussian import GaussianTask


def test_unknown_names_list_the_valid_ones() -> None:
    with pytest.raises(
        UsageError, match="valid tasks: bernoulli-toy, bernoulli-vae, beta-dist, discrete-vae, gamma, gaussian, vae"
    ):
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


def estimator_class(name: str = "test-user", params: tuple[ParamSpec, ...] = (), **attrs: object) -> type[Estimator]:
    """A user's estimator class (not registered) with ``params`` and other class attributes."""

    def estimate(self: Estimator, task: Task, samples: int, batch: int, generator: torch.Generator) -> Theta:
        raise NotImplementedError

    body = {"name": name, "summary": "user", "reference": "none", "params": params, "estimate": estimate, **attrs}
    return type("User", (Estimator,), body)


def task_class(name: str = "test-user-task", params: tuple[ParamSpec, ...] = ()) -> type[Task]:
    """A user's task class (a Gaussian with other parameters; not registered)."""
    return type("UserTask", (GaussianTask,), {"name": name, "params": params})


@pytest.fixture
def restore_tables() -> Iterator[None]:
    """Registrations in a test do not outlive it."""
    tasks, estimators = dict(TASKS), dict(ESTIMATORS)
    yield
    for table, saved in ((TASKS, tasks), (ESTIMATORS, estimators)):
        table.clear()
        table.update(saved)


def test_a_registration_error_is_a_usage_error() -> None:
    assert issubclass(RegistrationError, UsageError)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("a,b", r"estimator name 'a,b' may not contain ',', ':' or '='$"),
        ("a:b", r"estimator name 'a:b' may not contain"),
        ("a=b", r"estimator name 'a=b' may not contain"),
        ("", r"estimator User needs a non-empty class attribute `name`"),
    ],
)
def test_bad_names_are_refused(name: str, message: str, restore_tables: None) -> None:
    with pytest.raises(RegistrationError, match=message):
        register_estimator(estimator_class(name))
    assert name not in ESTIMATORS


def test_a_taken_name_is_refused_and_the_same_class_registers_twice(restore_tables: None) -> None:
    with pytest.raises(RegistrationError, match=r"estimator 'pathwise' is already registered by Pathwise"):
        register_estimator(estimator_class("pathwise"))
    with pytest.raises(RegistrationError, match=r"task 'gaussian' is already registered by GaussianTask"):
        register_task(task_class("gaussian"))
    pathwise = ESTIMATORS["pathwise"]
    assert register_estimator(pathwise) is pathwise and ESTIMATORS["pathwise"] is pathwise


def test_an_unknown_capability_is_refused_with_the_valid_ones(restore_tables: None) -> None:
    cls = estimator_class(needs=frozenset({"log-prob", "relaxible"}))
    valid = ", ".join(sorted(CAPABILITIES))
    with pytest.raises(
        RegistrationError,
        match=rf"estimator test-user needs unknown capability 'relaxible'; valid capabilities: {valid}$",
    ):
        register_estimator(cls)
    assert "test-user" not in ESTIMATORS
    register_estimator(estimator_class(needs=frozenset({"relaxable", "log-prob"})))  # known ones register


@pytest.mark.parametrize("column", ["seed", "samples", "mean", "bias_lo", "status", "truth", "coord", "cell_seed"])
def test_a_parameter_named_like_a_column_is_refused(column: str, restore_tables: None) -> None:
    assert column in RESERVED
    spec = ParamSpec(column, int, 1, "a parameter named like a column")
    with pytest.raises(
        RegistrationError,
        match=rf"estimator test-user: parameter '{column}' is the name of a results column; reserved names: .*group",
    ):
        register_estimator(estimator_class(params=(spec,)))
    with pytest.raises(
        RegistrationError, match=rf"task test-user-task: parameter '{column}' is the name of a results column"
    ):
        register_task(task_class(params=(spec,)))
    assert "test-user" not in ESTIMATORS and "test-user-task" not in TASKS


def test_a_parameter_of_the_other_kind_is_refused(restore_tables: None) -> None:
    """A plugin estimator's ``k`` would overwrite the Gaussian task's ``k`` in every row."""
    k = ParamSpec("k", float, 1.0, "a constant")
    with pytest.raises(
        RegistrationError,
        match=r"estimator test-user: parameter 'k' is also a parameter of task gaussian, "
        r"and task and estimator parameters share the results' columns; rename it$",
    ):
        register_estimator(estimator_class(params=(k,)))
    tau = ParamSpec("tau", float, 1.0, "a temperature")
    with pytest.raises(
        RegistrationError, match=r"task test-user-task: parameter 'tau' is also a parameter of estimator gumbel"
    ):
        register_task(task_class(params=(tau,)))


def test_a_parameter_of_the_same_kind_with_another_type_is_refused(restore_tables: None) -> None:
    with pytest.raises(
        RegistrationError,
        match=r"estimator test-user: parameter 'tau' has type str, but estimator gumbel declares it float",
    ):
        register_estimator(estimator_class(params=(ParamSpec("tau", str, "hot", "a temperature"),)))
    with pytest.raises(
        RegistrationError,
        match=r"task test-user-task: parameter 'dim' has type float, but task gaussian declares it int",
    ):
        register_task(task_class(params=(ParamSpec("dim", float, 1.0, "a dimension"),)))
    # the same name with the same type is one column, shared as designed
    register_estimator(estimator_class(params=(ParamSpec("tau", float, 0.5, "a temperature"),)))
    register_task(task_class(params=(ParamSpec("dim", int, 3, "a dimension"),)))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ((ParamSpec("a,b", int, 1, ""),), r"parameter name 'a,b' must be non-empty, without ',', ':' or '='$"),
        ((ParamSpec("x=1", int, 1, ""),), r"parameter name 'x=1' must be non-empty"),
        ((ParamSpec(" ", int, 1, ""),), r"parameter name ' ' must be non-empty"),
        ((ParamSpec("w", int, 1, ""), ParamSpec("w", int, 2, "")), r"parameter 'w' is declared twice$"),
    ],
)
def test_bad_parameter_names_are_refused(params: tuple[ParamSpec, ...], message: str, restore_tables: None) -> None:
    with pytest.raises(RegistrationError, match=rf"estimator test-user: {message}"):
        register_estimator(estimator_class(params=params))


def test_the_builtin_tables_pass_their_own_rules() -> None:
    """Every registered class re-checked against the others (registration is order-independent)."""
    from rpbench.registry import _check_params

    for kind, table in (("task", TASKS), ("estimator", ESTIMATORS)):
        for cls in table.values():
            _check_params(cls, kind)
    assert list(TASKS)[:7] == [
        "gaussian",
        "gamma",
        "beta-dist",
        "bernoulli-toy",
        "discrete-vae",
        "bernoulli-vae",
        "vae",
    ]


def test_a_bad_plugin_file_is_one_usage_error(tmp_path: Path) -> None:
    plugin = tmp_path / "bad_plugin.py"
    plugin.write_text(
        "from rpbench.estimators.base import Estimator\n"
        "from rpbench.params import ParamSpec\n"
        "from rpbench.registry import register_estimator\n\n"
        "@register_estimator\n"
        "class Mine(Estimator):\n"
        "    name = 'test-plugin-k'\n"
        "    summary = reference = ''\n"
        "    params = (ParamSpec('k', float, 1.0, 'clashes with gaussian'),)\n"
        "    def estimate(self, task, samples, batch, generator):\n"
        "        raise NotImplementedError\n"
    )
    from rpbench.registry import load_plugin

    with pytest.raises(
        UsageError,
        match=r"--plugin .*bad_plugin.py: cannot load it \(RegistrationError: "
        r"estimator test-plugin-k: parameter 'k' is also a parameter of task gaussian",
    ):
        load_plugin(str(plugin))
    assert "test-plugin-k" not in ESTIMATORS
