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


def test_writer_appends_each_cell_and_records_the_sidecar(tmp_path: Path) -> None:
    columns = ["task", "estimator", "group", "samples", "batch", "seed", "device", "cell_seed", "decay", "variance"]
    writer = RunWriter(tmp_path, run_metadata({"seed": 1}, torch.device("cpu")), columns)
    keys = {"task": "t", "group": "mu", "samples": 2, "batch": 1, "seed": 0, "device": "cpu"}
    coords = {"mu": {"mean": torch.tensor([1.0, 2.0]), "bias": torch.tensor([0.1, 0.2])}}
    writer.add([{**keys, "estimator": "e", "cell_seed": 7, "variance": 0.1234567890123456789}], coords)
    first = pd.read_csv(tmp_path / RESULTS_FILE)
    assert first["variance"].iloc[0] == 0.1234567890123456789  # full precision round-trips
    header = (tmp_path / RESULTS_FILE).read_text().splitlines()[0]
    writer.add([{**keys, "estimator": "f", "cell_seed": 8, "variance": 2.0, "decay": 0.9}], coords)
    lines = (tmp_path / RESULTS_FILE).read_text().splitlines()
    assert lines[0] == header == ",".join(columns) and len(lines) == 3  # one header, rows appended
    table = pd.read_csv(tmp_path / RESULTS_FILE)
    assert list(table["estimator"]) == ["e", "f"] and table["decay"].isna().tolist() == [True, False]
    assert len(pd.read_csv(tmp_path / COORDS_FILE)) == 4
    with pytest.raises(ValueError, match="columns the table does not declare: lam"):
        writer.add([{**keys, "estimator": "g", "cell_seed": 9, "lam": 1.0}], {})
    writer.finish(cells=2)
    meta = json.loads((tmp_path / META_FILE).read_text())
    for key in ("command", "options", "versions", "device_name", "git_commit", "torch_threads", "load_average"):
        assert key in meta
    assert meta["cells"] == 2 and meta["options"] == {"seed": 1}


def test_a_second_writer_into_the_same_folder_is_refused(tmp_path: Path) -> None:
    writer = RunWriter(tmp_path, {}, ["task", "cell_seed"])
    with pytest.raises(UsageError, match="another rpbench process is writing into this run folder"):
        RunWriter(tmp_path, {}, ["task", "cell_seed"], resume=True)
    writer.finish()
    RunWriter(tmp_path, {}, ["task", "cell_seed"], resume=True).finish()  # released: usable again


def test_a_lock_that_cannot_be_taken_says_why(tmp_path: Path) -> None:
    (tmp_path / ".lock").mkdir()  # not a file: opening it fails, and nobody else holds it
    with pytest.raises(UsageError, match=r"cannot lock \.lock there \(.*\); the filesystem may not support locks"):
        RunWriter(tmp_path, {}, ["task", "cell_seed"])
    assert not (tmp_path / RESULTS_FILE).exists()
