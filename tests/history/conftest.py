"""Run folders for the history's tests: small real runs, copied and given the commits a test plants."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from rpbench.estimators.score import Score
from rpbench.history.store import record
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


def scaled_score(monkeypatch: pytest.MonkeyPatch) -> None:
    """The planted regression: the score estimator's estimates doubled (variance × 4)."""
    original = Score.estimate

    def estimate(self, task, samples: int, batch: int, generator: torch.Generator):  # type: ignore[no-untyped-def]
        return {g: 2 * v for g, v in original(self, task, samples, batch, generator).items()}

    monkeypatch.setattr(Score, "estimate", estimate)


def planted_history(source_run: Path, out: Path, monkeypatch: pytest.MonkeyPatch, commits: str = "abcd") -> Path:
    """``out/history.db`` with ``commits`` of a, b (another seed), c (score's estimates doubled), d (fixed)."""
    history = out / "history.db"
    seeds = {"b": 1, "c": 2, "d": 3}
    for day, name in enumerate(commits, start=1):
        if name == "a":
            folder = source_run
        else:
            with monkeypatch.context() as patch:
                if name == "c":
                    scaled_score(patch)
                folder = run_folder(out / name, [*ARGS, "--seed", str(seeds[name])])
        record(as_commit(folder, out, f"run-{name}", name * 40, f"2026-01-0{day}T00:00:00+00:00"), history)
    return history
