"""Fixtures of the views' tests: real runs, each run once per session and loaded with ``load_run``."""

from __future__ import annotations

from pathlib import Path

import pytest

from rpbench.views.loader import Run, load_run
from tests.history.conftest import source_run  # noqa: F401  (the dashboard's tests use the history's run)
from tests.views.runs import DISCRETE, EQUAL_COST, GAUSSIAN, TINY, shared_run, shared_run_dir
from tests.views.training import write_training_run


@pytest.fixture(scope="session")
def gaussian_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The Gaussian sweep of :data:`GAUSSIAN`, loaded."""
    return shared_run(tmp_path_factory, GAUSSIAN)


@pytest.fixture(scope="session")
def equal_cost_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The equal-cost run of :data:`EQUAL_COST`, loaded."""
    return shared_run(tmp_path_factory, EQUAL_COST)


@pytest.fixture(scope="session")
def discrete_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """A small discrete VAE with two relaxed estimators swept over tau, loaded."""
    return shared_run(tmp_path_factory, DISCRETE)


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of the :data:`TINY` run."""
    return shared_run_dir(tmp_path_factory, TINY)


@pytest.fixture
def training_dir(tmp_path: Path) -> Path:
    """A synthetic training run folder (:mod:`tests.views.training`): 2 estimators × 3 seeds × steps
    0, 10, 20, and a failed fourth seed of score."""
    return write_training_run(tmp_path / "train")


@pytest.fixture
def training_run(training_dir: Path) -> Run:
    """:func:`training_dir`, loaded."""
    return load_run(training_dir)
