"""rpbench: measure Monte Carlo gradient estimators side by side against exact gradients.

The public API (the command line calls exactly these)::

    import rpbench

    run = rpbench.run(task="gaussian", estimators="pathwise,score", params={"sigma": [1.0, 2.0]})
    run.results                                     # the rows of results.csv, typed
    rpbench.report(run, metric="variance", group="mu")

A plugin registers its own classes with :func:`register_task` / :func:`register_estimator`,
subclassing :class:`Task` / :class:`Estimator` and declaring parameters with :class:`ParamSpec`.
Names are imported on first use, so ``import rpbench`` stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from rpbench._version import __version__

if TYPE_CHECKING:
    from rpbench.api import compare, load, plot, report, run, train
    from rpbench.errors import UsageError
    from rpbench.estimators.base import Estimator
    from rpbench.params import ParamSpec
    from rpbench.registry import RegistrationError, register_estimator, register_task
    from rpbench.sweep import CellReport
    from rpbench.tasks.base import Task
    from rpbench.views.compare import Comparison
    from rpbench.views.loader import Run

_EXPORTS = {
    "run": "rpbench.api",
    "load": "rpbench.api",
    "report": "rpbench.api",
    "plot": "rpbench.api",
    "compare": "rpbench.api",
    "train": "rpbench.api",
    "Run": "rpbench.views.loader",
    "Comparison": "rpbench.views.compare",
    "CellReport": "rpbench.sweep",
    "UsageError": "rpbench.errors",
    "register_task": "rpbench.registry",
    "RegistrationError": "rpbench.registry",
    "register_estimator": "rpbench.registry",
    "Task": "rpbench.tasks.base",
    "Estimator": "rpbench.estimators.base",
    "ParamSpec": "rpbench.params",
}

__all__ = [
    "CellReport",
    "Comparison",
    "Estimator",
    "ParamSpec",
    "RegistrationError",
    "Run",
    "Task",
    "UsageError",
    "__version__",
    "compare",
    "load",
    "plot",
    "register_estimator",
    "register_task",
    "report",
    "run",
    "train",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'rpbench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
