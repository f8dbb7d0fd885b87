"""Real run folders for the views' tests (``rpbench run`` in-process), loaded with :func:`load_run`."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from rpbench.views.loader import Run, load_run
from tests.conftest import exit_code


def run_folder(out: Path, args: list[str]) -> Path:
    """``rpbench run ARGS --out OUT -q`` in-process; the run folder it wrote."""
    assert exit_code(["run", *args, "--out", str(out), "-q"]) == 0, "rpbench run failed"
    (run_dir,) = list(out.iterdir())
    return run_dir


def shared_run_dir(factory: pytest.TempPathFactory, args: list[str]) -> Path:
    """The folder of ``rpbench run ARGS``, run once per test session (several modules share runs)."""
    out = factory.getbasetemp() / f"views-run-{hashlib.sha1(' '.join(args).encode()).hexdigest()[:12]}"
    if not out.exists():
        staging = factory.mktemp("staging")
        run_folder(staging, args)
        os.replace(staging, out)
    (run_dir,) = list(out.iterdir())
    return run_dir


def shared_run(factory: pytest.TempPathFactory, args: list[str]) -> Run:
    """``load_run`` of :func:`shared_run_dir`."""
    return load_run(shared_run_dir(factory, args))


GAUSSIAN = ["-t", "gaussian", "-e", "score,pathwise,score+delta,score+ma:decay=0.5,0.9", "-p", "fn=quadratic,step"]
GAUSSIAN += ["-p", "sigma=0.1,1,10", "-p", "k=0.5", "-K", "100", "--repeats", "1"]
"""6 task configurations × 5 estimator configurations (score+delta does not apply to the step)."""
DISCRETE = ["-t", "discrete-vae", "-p", "latents=2", "-p", "categories=3", "-p", "minibatch=2", "-p", "hidden=4"]
DISCRETE += ["-e", "gumbel:tau=0.1,1,10,st-gumbel:tau=0.1,1,10", "-K", "100", "--repeats", "1"]
TINY = ["-e", "score,pathwise", "-p", "fn=cos", "-p", "sigma=1", "-K", "500", "--repeats", "7"]
"""A tiny Gaussian sweep: 2 estimators × 2 values of k (default) × 2 groups."""

EQUAL_COST = ["-t", "gaussian", "-e", "score,pathwise,mvd", "-p", "dim=2", "-p", "fn=quadratic", "-p", "sigma=1,2"]
EQUAL_COST += ["-p", "k=0.5", "-K", "300", "--repeats", "1", "--equal-cost", "8"]
"""An equal-cost run: score and pathwise at n = 8, MVD (8 evaluations per sample at D = 2) at n = 1."""
