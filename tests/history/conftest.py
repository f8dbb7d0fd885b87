"""Run folders for the history's tests: small real runs, copied and given the commits a test plants."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.views.runs import run_folder

ARGS = [
    "-e",
    "score,pathwise",
    "-p",
    "fn=quadratic",
    "-p",
    "sigma=1",
    "-K",
    "3000",
    "--repeats",
    "1",
    "--min-time",
    "0",
]


@pytest.fixture(scope="session")
def source_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real run (score and pathwise on the quadratic, K = 3000), made once per session."""
    return run_folder(tmp_path_factory.mktemp("history-source"), ARGS)


def as_commit(run_dir: Path, out: Path, name: str, commit: str | None, started: str, **meta: object) -> Path:
    """A copy of ``run_dir`` named ``name`` whose run.json says it ran at ``commit`` (and ``meta``)."""
    copy = out / name
    shutil.copytree(run_dir, copy)
    path = copy / "run.json"
    data = json.loads(path.read_text())
    data.update({"git_commit": commit, "started_utc": started, **meta})
    path.write_text(json.dumps(data))
    return copy
