"""Open registries of tasks and estimators.

Our own tasks and estimators register themselves exactly as a user's would::

    from rpbench.registry import register_estimator

    @register_estimator
    class MyEstimator(Estimator):
        name = "mine"
        ...

This module registers the built-in tasks (:data:`rpbench.tasks.BUILTIN`: tasks know nothing of
the registry) and importing :mod:`rpbench.estimators` registers the built-in estimators.  Every
class is checked as it registers (:class:`RegistrationError`): names, parameter names that would
share or overwrite a results column, capabilities.  A
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

import rpbench.tasks
from rpbench.columns import RESERVED
from rpbench.errors import UsageError
from rpbench.tasks.base import CAPABILITIES

if TYPE_CHECKING:
    from rpbench.estimators.base import Estimator
    from rpbench.params import ParamSpec
    from rpbench.tasks.base import Task

TASKS: dict[str, type[Task]] = {}
ESTIMATORS: dict[str, type[Estimator]] = {}

T = TypeVar("T")

_SEPARATORS = (",", ":", "=")


class RegistrationError(UsageError):
    """A task or estimator class that cannot be registered, with the rule it breaks, on one line.

    A :class:`~rpbench.errors.UsageError`, so that a ``--plugin`` that declares a bad class ends as
    one line and exit code 2.  The rules (:func:`register_task`, :func:`register_estimator`):

    * a non-empty ``name`` without ``,``, ``:`` or ``=``, not taken by another class of its kind;
    * parameter names without those separators, each declared once, none a column of every row
      (:data:`rpbench.columns.RESERVED`), none a parameter of a class of the other kind (a task's
      and an estimator's parameters would share one results column), and none of the same name
      as another class's of the same kind with a different type (they share a column too);
    * an estimator's ``needs`` only capabilities of :data:`rpbench.tasks.base.CAPABILITIES`.
    """


def _owner(kind: str, cls: type) -> str:
    return f"{kind} {getattr(cls, 'name', cls.__qualname__)!s}"


def _check_params(cls: type, kind: str) -> None:
    owner = _owner(kind, cls)
    params: tuple[ParamSpec, ...] = tuple(getattr(cls, "params", ()))
    mine, other_kind = (TASKS, "estimator") if kind == "task" else (ESTIMATORS, "task")
    others = ESTIMATORS if kind == "task" else TASKS
    seen: set[str] = set()
    for spec in params:
        name = spec.name
        if not isinstance(name, str) or not name.strip() or any(c in name for c in _SEPARATORS):
            raise RegistrationError(f"{owner}: parameter name {name!r} must be non-empty, without ',', ':' or '='")
        if name in seen:
            raise RegistrationError(f"{owner}: parameter {name!r} is declared twice")
        seen.add(name)
        if name in RESERVED:
            raise RegistrationError(
                f"{owner}: parameter {name!r} is the name of a results column; "
                f"reserved names: {', '.join(sorted(RESERVED))}"
            )
        for other in others.values():
            if any(p.name == name for p in other.params):
                raise RegistrationError(
                    f"{owner}: parameter {name!r} is also a parameter of {other_kind} {other.name}, "
                    "and task and estimator parameters share the results' columns; rename it"
                )
        for other in mine.values():
            clash = next((p for p in other.params if p.name == name and p.kind is not spec.kind), None)
            if other is not cls and clash is not None:
                raise RegistrationError(
                    f"{owner}: parameter {name!r} has type {spec.kind.__name__}, but {kind} {other.name} "
                    f"declares it {clash.kind.__name__} (one name is one results column); "
                    "use that type or another name"
                )


def _register(table: dict[str, type], cls: type[T], kind: str) -> type[T]:
    name = getattr(cls, "name", "")
    if not name or not isinstance(name, str):
        raise RegistrationError(f"{kind} {cls.__qualname__} needs a non-empty class attribute `name`")
    if any(c in name for c in _SEPARATORS):
        raise RegistrationError(f"{kind} name {name!r} may not contain ',', ':' or '='")
    if name in table:
        if table[name] is cls:
            return cls
        raise RegistrationError(f"{kind} {name!r} is already registered by {table[name].__qualname__}")
    _check_params(cls, kind)
    if kind == "estimator":
        unknown = sorted(set(getattr(cls, "needs", ())) - set(CAPABILITIES))
        if unknown:
            raise RegistrationError(
                f"estimator {name} needs unknown capability {unknown[0]!r}; "
                f"valid capabilities: {', '.join(sorted(CAPABILITIES))}"
            )
    table[name] = cls
    return cls


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator: make a task available by its ``name`` (:class:`RegistrationError` if it breaks a rule)."""
    return _register(TASKS, cls, "task")


def register_estimator(cls: type[Estimator]) -> type[Estimator]:
    """Class decorator: make an estimator available by its ``name`` (:class:`RegistrationError` if it breaks a rule)."""
    return _register(ESTIMATORS, cls, "estimator")


for _task in rpbench.tasks.BUILTIN:  # tasks do not import the registry: it registers them
    register_task(_task)


_PLUGINS_LOADED = False


def load_builtins() -> None:
    """Import the built-in estimators (the tasks are registered with this module) and installed plugins."""
    global _PLUGINS_LOADED
    import rpbench.estimators  # noqa: F401

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
