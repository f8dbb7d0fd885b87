"""Results layer: fresh run folders, atomic complete files, metadata."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from rpbench.errors import UsageError
from rpbench.results import COORDS_FILE, META_FILE, RESULTS_FILE, RunWriter, create_run_dir, run_metadata, write_atomic


def test_run_folders_are_fresh_every_time(tmp_path: Path) -> None:
    folders = {create_run_dir(tmp_path, "gaussian") for _ in range(20)}
    assert len(folders) == 20 and all(f.is_dir() for f in folders)


def test_an_unusable_out_is_a_usage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("keep me")
    with pytest.raises(UsageError, match=r"--out .*cannot create a run folder"):
        create_run_dir(blocker / "sub", "gaussian")
    assert blocker.read_text() == "keep me"


def test_write_atomic_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "a.csv"
    write_atomic(target, "x\n1\n")
    write_atomic(target, "x\n2\n")
    assert target.read_text() == "x\n2\n"
    assert [p.name for p in tmp_path.iterdir()] == ["a.csv"]


def test_writer_keeps_tables_complete_after_each_cell(tmp_path: Path) -> None:
    writer = RunWriter(tmp_path, run_metadata({"seed": 1}, torch.device("cpu")))
    coords = {"mu": {"mean": torch.tensor([1.0, 2.0]), "bias": torch.tensor([0.1, 0.2])}}
    writer.add([{"task": "t", "estimator": "e", "group": "mu", "variance": 0.1234567890123456789}], coords)
    first = pd.read_csv(tmp_path / RESULTS_FILE)
    assert first["variance"].iloc[0] == 0.1234567890123456789  # full precision round-trips
    writer.add([{"task": "t", "estimator": "f", "group": "mu", "variance": 2.0, "decay": 0.9}], coords)
    table = pd.read_csv(tmp_path / RESULTS_FILE)
    assert list(table["estimator"]) == ["e", "f"] and "decay" in table
    assert len(pd.read_csv(tmp_path / COORDS_FILE)) == 4
    writer.finish(cells=2)
    meta = json.loads((tmp_path / META_FILE).read_text())
    for key in ("command", "options", "versions", "device_name", "git_commit", "torch_threads", "load_average"):
        assert key in meta
    assert meta["cells"] == 2 and meta["options"] == {"seed": 1}
