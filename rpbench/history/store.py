"""The history file: one SQLite database (Python's ``sqlite3``, no server) of recorded runs.

Schema version :data:`SCHEMA_VERSION` (``PRAGMA user_version``), one table::

    runs(run_id TEXT PRIMARY KEY,  -- the run folder's name (unique per run)
         git_commit TEXT,          -- the commit rpbench ran at (run.json's, without "-dirty")
         dirty INTEGER,            -- 1 where the work tree had uncommitted changes
         commit_date TEXT,         -- the commit's committer date (ISO 8601), where git knows it
         started_utc TEXT,         -- run.json's start time
         machine TEXT,             -- a 12-hex fingerprint of machine_json
         machine_json TEXT,        -- CPU model, cores, device, torch and rpbench versions
         recorded_utc TEXT,
         meta TEXT,                -- run.json
         results TEXT)             -- results.csv, as written

A run is stored whole (its metadata and its rows), so that the history reads back exactly what
``rpbench load`` reads from the folder.  Recording a run whose ``run_id`` is already there changes
nothing.  Each record is one ``BEGIN IMMEDIATE`` transaction: concurrent writers wait for SQLite's
lock (up to :data:`LOCK_TIMEOUT` seconds) instead of corrupting the file.  A file that is not an
SQLite database, or holds another schema version, is refused before anything is written.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rpbench.errors import UsageError
from rpbench.views.loader import RESULTS_FILE, Run, load_run, run_from_text

SCHEMA_VERSION = 1
LOCK_TIMEOUT = 60.0
SQLITE_HEADER = b"SQLite format 3\x00"
SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    git_commit TEXT NOT NULL,
    dirty INTEGER NOT NULL,
    commit_date TEXT,
    started_utc TEXT NOT NULL,
    machine TEXT NOT NULL,
    machine_json TEXT NOT NULL,
    recorded_utc TEXT NOT NULL,
    meta TEXT NOT NULL,
    results TEXT NOT NULL
)
"""
MACHINE_KEYS = ("device_name", "cpu_count", "device")
"""What of run.json identifies the machine (with torch's and rpbench's versions)."""


@dataclass(frozen=True)
class RecordedRun:
    """One run of the history: where and when it ran, and its results."""

    run_id: str
    git_commit: str
    dirty: bool
    commit_date: str | None
    started_utc: str
    machine: str
    machine_info: dict[str, Any]
    run: Run


def machine_of(meta: dict[str, Any]) -> dict[str, Any]:
    """The machine a run measured on: its CPU model, cores and device, with torch's and rpbench's versions."""
    versions = meta.get("versions") or {}
    return {
        **{key: meta.get(key) for key in MACHINE_KEYS},
        "torch": versions.get("torch"),
        "rpbench": versions.get("rpbench"),
    }


def fingerprint(machine: dict[str, Any]) -> str:
    """A short, stable name for a machine (12 hex digits of a SHA-256 of its sorted JSON)."""
    return hashlib.sha256(json.dumps(machine, sort_keys=True).encode()).hexdigest()[:12]


def commit_date(commit: str) -> str | None:
    """The committer date of ``commit`` in the git repository rpbench runs from (``None`` where unknown)."""
    source = Path(__file__).resolve().parent
    try:
        result = subprocess.run(
            ["git", "show", "-s", "--format=%cI", commit], cwd=source, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    date = result.stdout.strip() if result.returncode == 0 else ""
    return date or None


def check_history_file(path: Path, must_exist: bool) -> None:
    """Refuse, in one line, a path that is not an rpbench history of :data:`SCHEMA_VERSION`."""
    if not path.exists():
        if must_exist:
            raise UsageError(f"{path}: no such history file (`rpbench record RUN_DIR --history {path}` creates it)")
        return
    if path.is_dir():
        raise UsageError(f"{path}: is a folder, not a history file")
    with path.open("rb") as handle:
        header = handle.read(len(SQLITE_HEADER))
    if header and header != SQLITE_HEADER:
        raise UsageError(f"{path}: not an rpbench history (not an SQLite database); choose another --history file")
    if not header:
        return  # an empty file: SQLite makes it a database
    with closing(_connect(path)) as connection:
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if version != SCHEMA_VERSION or "runs" not in tables:
        raise UsageError(
            f"{path}: history schema version {version} (tables: {', '.join(sorted(tables)) or 'none'}); "
            f"this rpbench reads version {SCHEMA_VERSION}"
        )


def record(run_dir: str | Path, history: str | Path) -> tuple[str, bool]:
    """Add the run in ``run_dir`` to ``history`` (created if missing): ``(run id, whether it was new)``."""
    folder, history = Path(run_dir), Path(history)
    if not (folder / RESULTS_FILE).is_file():
        load_run(folder)  # the loader's own line for a missing folder or file, a training run's folder
        raise UsageError(f"{folder}: the history records measurement runs (a folder with {RESULTS_FILE})")
    meta = load_run(folder).meta  # read and checked whole: a torn or damaged run is refused here
    commit = meta.get("git_commit")
    if not commit:
        raise UsageError(f"{run_dir}: run.json records no git commit (the run was not made from a git checkout)")
    check_history_file(history, must_exist=False)
    machine = machine_of(meta)
    row = (
        folder.name,
        str(commit).removesuffix("-dirty"),
        int(str(commit).endswith("-dirty")),
        commit_date(str(commit).removesuffix("-dirty")),
        str(meta.get("started_utc", "")),
        fingerprint(machine),
        json.dumps(machine, sort_keys=True),
        datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        json.dumps(meta),
        (folder / RESULTS_FILE).read_text(),
    )
    with _transaction(history) as connection:
        added = connection.execute(f"INSERT OR IGNORE INTO runs VALUES ({', '.join('?' * len(row))})", row).rowcount
    return folder.name, bool(added)


def recorded_runs(history: str | Path) -> list[RecordedRun]:
    """Every run of ``history``, in commit-date order (then start time)."""
    history = Path(history)
    check_history_file(history, must_exist=True)
    with closing(_connect(history)) as connection:
        rows = connection.execute(
            "SELECT run_id, git_commit, dirty, commit_date, started_utc, machine, machine_json, meta, results "
            "FROM runs ORDER BY COALESCE(commit_date, started_utc), started_utc, run_id"
        ).fetchall()
    return [
        RecordedRun(
            run_id,
            commit,
            bool(dirty),
            date,
            started,
            machine,
            json.loads(info),
            run_from_text(results, None, json.loads(meta), f"{history}:{run_id}"),
        )
        for run_id, commit, dirty, date, started, machine, info, meta, results in rows
    ]


def _connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, timeout=LOCK_TIMEOUT, isolation_level=None)


@contextmanager
def _transaction(path: Path) -> Iterator[sqlite3.Connection]:
    """One immediate (write-locked) transaction on ``path``, its schema created inside it."""
    with closing(_connect(path)) as connection:
        connection.execute("BEGIN IMMEDIATE")
        try:
            connection.execute(SCHEMA)
            if connection.execute("PRAGMA user_version").fetchone()[0] == 0:
                connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            yield connection
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
