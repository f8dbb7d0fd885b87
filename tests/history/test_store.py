"""The history file: recording is idempotent, concurrent writers are safe, bad input writes nothing."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from rpbench.history.store import SCHEMA_VERSION, fingerprint, machine_of, record, recorded_runs
from rpbench.views.loader import load_run
from tests.conftest import exit_code
from tests.history.conftest import as_commit


def test_a_recorded_run_reads_back_as_the_folder_does_and_twice_is_a_no_op(source_run: Path, tmp_path: Path) -> None:
    history = tmp_path / "history.db"
    first = as_commit(source_run, tmp_path, "run-a", "a" * 40 + "-dirty", "2026-01-01T00:00:00+00:00")
    assert record(first, history) == ("run-a", True)
    assert record(first, history) == ("run-a", False)
    (stored,) = recorded_runs(history)
    assert stored.git_commit == "a" * 40 and stored.dirty and stored.commit_date is None  # not a commit git knows
    assert stored.run.results.equals(load_run(first).results)
    with sqlite3.connect(history) as connection:
        assert connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert connection.execute("SELECT count(*) FROM runs").fetchone()[0] == 1


def test_the_commit_date_comes_from_git_where_it_knows_the_commit(source_run: Path, tmp_path: Path) -> None:
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent)
    if head.returncode != 0:
        pytest.skip("not a git checkout")
    run = as_commit(source_run, tmp_path, "run-head", head.stdout.strip(), "2026-01-01T00:00:00+00:00")
    record(run, tmp_path / "h.db")
    (stored,) = recorded_runs(tmp_path / "h.db")
    assert stored.commit_date is not None and stored.commit_date[:2] == "20" and not stored.dirty


def test_the_machine_is_a_fingerprint_of_cpu_cores_device_and_versions(source_run: Path) -> None:
    meta = json.loads((source_run / "run.json").read_text())
    machine = machine_of(meta)
    assert set(machine) == {"device_name", "cpu_count", "device", "torch", "rpbench"}
    assert fingerprint(machine) == fingerprint(dict(reversed(machine.items())))
    assert fingerprint({**machine, "cpu_count": 64}) != fingerprint(machine)


WRITER = """
import sys
from rpbench.history.store import record
for run_dir in sys.argv[2:]:
    record(run_dir, sys.argv[1])
"""


def test_two_processes_writing_at_once_lose_nothing(source_run: Path, tmp_path: Path) -> None:
    history = tmp_path / "history.db"
    runs = [
        as_commit(source_run, tmp_path, f"run-{i}", f"{i:040d}", f"2026-01-{i + 1:02d}T00:00:00+00:00")
        for i in range(12)
    ]
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(history), *map(str, runs[part::2])]) for part in (0, 1)
    ]
    assert [writer.wait(timeout=300) for writer in writers] == [0, 0]
    with sqlite3.connect(history) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = {row[0] for row in connection.execute("SELECT run_id FROM runs")}
    assert stored == {f"run-{i}" for i in range(12)}


def test_a_file_that_is_not_a_history_is_refused_and_left_as_it_was(
    source_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = as_commit(source_run, tmp_path, "run-a", "a" * 40, "2026-01-01T00:00:00+00:00")
    text = tmp_path / "notes.txt"
    text.write_text("not a database\n")
    assert exit_code(["record", str(run), "--history", str(text)]) == 2
    assert "not an SQLite database" in capsys.readouterr().err and text.read_text() == "not a database\n"
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as connection:
        connection.execute("CREATE TABLE runs (x)")
        connection.execute("PRAGMA user_version = 7")
    before = other.read_bytes()
    assert exit_code(["record", str(run), "--history", str(other)]) == 2
    err = capsys.readouterr().err
    assert "schema version 7" in err and f"reads version {SCHEMA_VERSION}" in err and err.count("\n") == 1
    assert other.read_bytes() == before
    assert exit_code(["history", str(other)]) == 2


def test_a_run_without_a_commit_or_a_training_run_is_refused_and_no_file_is_made(
    source_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    history = tmp_path / "history.db"
    run = as_commit(source_run, tmp_path, "run-none", None, "2026-01-01T00:00:00+00:00")
    assert exit_code(["record", str(run), "--history", str(history)]) == 2
    assert "records no git commit" in capsys.readouterr().err and not history.exists()
    training = tmp_path / "training"
    training.mkdir()
    (training / "curves.csv").write_text("x\n")
    (training / "run.json").write_text(json.dumps({"kind": "train", "columns": []}))
    assert exit_code(["record", str(training), "--history", str(history)]) == 2
    assert not history.exists()
    assert exit_code(["history", str(history)]) == 2
    assert "no such history file" in capsys.readouterr().err


def test_a_torn_results_file_is_refused(source_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = as_commit(source_run, tmp_path, "run-torn", "a" * 40, "2026-01-01T00:00:00+00:00")
    results = run / "results.csv"
    results.write_text(results.read_text()[: len(results.read_text()) // 2])
    assert exit_code(["record", str(run), "--history", str(tmp_path / "h.db")]) == 2
    assert "cut mid-write" in capsys.readouterr().err and not (tmp_path / "h.db").exists()
