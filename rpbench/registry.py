"""Open registries of tasks and estimators.

Our own tasks and estimators register themselves exactly as a user's would::

    from rpbench.registry import register_estimator

    @register_estimator
    class MyEstimator(Estimator):
        name = "mine"
        ...

Importing :mod:`rpbench.tasks` and :mod:`rpbench.estimators` registers the built-in ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from rpbench.errors import UsageError

if TYPE_CHECKING:
    from rpbench.estimators.base import Estimator
    from rpbench.tasks.base import Task

TASKS: dict[str, type[Task]] = {}
ESTIMATORS: dict[str, type[Estimator]] = {}

T = TypeVar("T")


def _register(table: dict[str, type], cls: type[T], kind: str) -> type[T]:
    name = getattr(cls, "name", "")
    if not name or not isinstance(name, str):
        raise TypeError(f"{kind} {cls.__qualname__} needs a non-empty class attribute `name`")
    if "," in name or ":" in name or "=" in name:
        raise TypeError(f"{kind} name {name!r} may not contain ',', ':' or '='")
    if name in table and table[name] is not cls:
        raise TypeError(f"{kind} {name!r} is already registered by {table[name].__qualname__}")
    table[name] = cls
    return cls


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator: make a task available by its ``name``."""
    return _register(TASKS, cls, "task")


def register_estimator(cls: type[Estimator]) -> type[Estimator]:
    """Class decorator: make an estimator available by its ``name``."""
    return _register(ESTIMATORS, cls, "estimator")


def load_builtins() -> None:
    """Import the built-in tasks and estimators so that they register themselves."""
    import rpbench.estimators
    import rpbench.tasks  # noqa: F401


def get_task(name: str) -> type[Task]:
    """The task class registered as ``name``; a :class:`UsageError` lists the valid ones."""
    load_builtins()
    if name not in TASKS:
        raise UsageError(f"unknown task {name!r}; valid tasks: {', '.join(sorted(TASKS))}")
    return TASKS[name]


def get_estimator(name: str) -> type[Estimator]:
    """The estimator class registered as ``name``; a :class:`UsageError` lists the valid ones."""
    load_builtins()
    if name not in ESTIMATORS:
        raise UsageError(f"unknown estimator {name!r}; valid estimators: all, {', '.join(sorted(ESTIMATORS))}")
    return ESTIMATORS[name]
