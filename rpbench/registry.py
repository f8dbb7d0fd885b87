"""Open registries of tasks and estimators.

Our own tasks and estimators register themselves exactly as a user's would::

    from rpbench.registry import register_estimator

    @register_estimator
    class MyEstimator(Estimator):
        name = "mine"
        ...

Importing :mod:`rpbench.tasks` and :mod:`rpbench.estimators` registers the built-in ones.  A
user's module is loaded with ``--plugin my_estimator.py`` (or a dotted module name), or through
the ``rpbench.plugins`` entry-point group of an installed package.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from importlib.metadata import entry_points
from pathlib import Path
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


_PLUGINS_LOADED = False


def load_builtins() -> None:
    """Import the built-in tasks and estimators, and installed plugins, so that they register."""
    global _PLUGINS_LOADED
    import rpbench.estimators
    import rpbench.tasks  # noqa: F401

    if not _PLUGINS_LOADED:
        _PLUGINS_LOADED = True
        for entry in entry_points(group="rpbench.plugins"):
            entry.load()


def load_plugin(spec: str) -> None:
    """Import a user's module (a ``.py`` file or a dotted name) so that its classes register."""
    load_builtins()
    path = Path(spec)
    try:
        if spec.endswith(".py") or path.exists():
            if not path.is_file():
                raise FileNotFoundError(f"no such file {spec!r}")
            name = f"rpbench_plugin_{path.stem}"
            loaded = sys.modules.get(name)
            if loaded is not None and Path(loaded.__file__ or "").resolve() == path.resolve():
                return  # already registered in this process
            module_spec = importlib.util.spec_from_file_location(name, path)
            if module_spec is None or module_spec.loader is None:
                raise ImportError(f"cannot load {spec!r} as a Python module")
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[name] = module
            module_spec.loader.exec_module(module)
        else:
            importlib.import_module(spec)
    except Exception as exc:  # a plugin's own error must still end as one line
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise UsageError(
            f"--plugin {spec}: cannot load it ({type(exc).__name__}: {detail}); "
            "give a .py file or an importable module name"
        ) from None


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
