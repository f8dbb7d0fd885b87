"""The results layer: a new run folder per run, tidy CSV tables and a JSON sidecar.

``OUT/<run-id>/`` holds

* ``results.csv`` — one row per (task config, estimator config, parameter group, device, seed);
  its columns and their roles are listed in ``run.json`` (:mod:`rpbench.columns`);
* ``coords.csv`` — the long format: one row per coordinate of each of those rows (groups of at
  most :data:`MAX_COORDS` coordinates);
* ``run.json`` — command line, seed, options, columns, versions, device name, git commit, threads, load.

The tables get their header when the run starts (every column is known from the plan) and each
finished cell's rows appended (:mod:`rpbench.tables`); ``run.json`` is replaced atomically.  A run
that stops midway leaves the rows of its finished cells and at most one torn cell, which
``--resume`` repairs; an existing run folder is never reused or overwritten.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import secrets
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
import torch
from filelock import FileLock, Timeout

import rpbench
from rpbench.columns import CELL_ID
from rpbench.errors import UsageError
from rpbench.metrics import COORD_METRICS
from rpbench.tables import AppendTable, keep_cells, keep_complete_cells, write_atomic
from rpbench.timing import REFERENCE_VERSION, REFERENCE_WORKLOAD, cpus_available

MAX_COORDS = 1000
"""Groups with more coordinates than this (network weights) get no per-coordinate rows."""
RESULTS_FILE = "results.csv"
COORDS_FILE = "coords.csv"
META_FILE = "run.json"
FAILURES_DIR = "failures"
"""Where a run folder keeps each failed cell's traceback, ``failures/<cell_seed>.txt``."""
LOCK_FILE = ".lock"
COORD_KEYS = ("task", "estimator", "group", "samples", "batch", "seed", "device", CELL_ID)
COORD_COLUMNS = (*COORD_KEYS, "coord", *COORD_METRICS)
"""The columns of ``coords.csv``: a row's identity, the coordinate's index, its summaries."""

__all__ = [
    "COORDS_FILE",
    "FAILURES_DIR",
    "META_FILE",
    "RESULTS_FILE",
    "RunWriter",
    "create_run_dir",
    "resumed_metadata",
    "run_metadata",
    "write_atomic",
]


def create_run_dir(out: Path, label: str) -> Path:
    """Make a fresh ``out/<timestamp>-<label>-<random>`` folder; a :class:`UsageError` if ``out`` is unusable."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        for _ in range(100):
            stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
            run_dir = out / f"{stamp}-{label}-{secrets.token_hex(3)}"
            try:
                run_dir.mkdir()
                return run_dir
            except FileExistsError:
                continue
    except OSError as exc:
        raise UsageError(
            f"--out {out}: cannot create a run folder there ({exc.strerror or exc}); choose a writable folder"
        ) from None
    raise UsageError(f"--out {out}: could not find a fresh run folder name")


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def coordinate_rows(row: Mapping[str, object], coords: Mapping[str, torch.Tensor]) -> list[dict[str, object]]:
    """The long-format rows of one result row: its keys plus one row per coordinate (none for big groups)."""
    if cast(int, row.get("n_coords") or 0) > MAX_COORDS:
        return []
    keys = {k: row[k] for k in COORD_KEYS}
    columns = {name: values.cpu().numpy() for name, values in coords.items()}
    count = len(next(iter(columns.values())))
    return [{**keys, "coord": i, **{name: float(v[i]) for name, v in columns.items()}} for i in range(count)]


def coordinate_rows_of(
    rows: Sequence[Mapping[str, object]], coords: Mapping[str, Mapping[str, torch.Tensor]]
) -> list[dict[str, object]]:
    """The long-format rows of a cell's rows, for the groups that have per-coordinate summaries."""
    if not coords:  # a failed cell, or a table without coordinates (a training run's curves)
        return []
    return [c for row in rows if str(row["group"]) in coords for c in coordinate_rows(row, coords[str(row["group"])])]


def _git_commit() -> str | None:
    source = Path(rpbench.__file__).resolve().parent
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=source, capture_output=True, text=True, timeout=5, check=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=source,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return result.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def device_name(device: torch.device) -> str:
    """A human-readable name of the device's hardware."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run_metadata(options: Mapping[str, object], device: torch.device) -> dict[str, object]:
    """What the sidecar records about a run."""
    return {
        "command": sys.argv,
        "options": dict(options),
        "started_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "versions": {
            "rpbench": rpbench.__version__,
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numpy": np.__version__,
            "pandas": pd.__version__,
        },
        "device": str(device),
        "device_name": device_name(device),
        "platform": platform.platform(),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "cpus_available": cpus_available(),
        "timing": {"reference": REFERENCE_WORKLOAD, "reference_version": REFERENCE_VERSION},
        "git_commit": _git_commit(),
    }


class RunWriter:
    """Writes one run folder: ``run.json``, then each table's header, then every cell's rows appended.

    The folder is locked for the writer's lifetime (:mod:`filelock`), so two processes never
    write into one run.  ``table`` names the main table (``curves.csv`` for a training run).  With
    ``resume`` the tables are first repaired
    (:func:`rpbench.tables.keep_complete_cells`): the rows of a cell whose write was cut are
    dropped, so that the cell is measured again; ``expected`` gives each planned cell's row count
    (none: only a torn last line goes) and ``cell_id`` names the column that identifies a cell.
    """

    def __init__(
        self,
        run_dir: Path,
        metadata: Mapping[str, object],
        columns: Sequence[str],
        resume: bool = False,
        expected: Mapping[int, int] | None = None,
        table: str = RESULTS_FILE,
        cell_id: str = CELL_ID,
    ) -> None:
        self.run_dir = run_dir
        self._lock = lock_run_dir(run_dir)
        self.metadata: dict[str, Any] = dict(metadata)
        self.finished_cells: set[int] = set()
        results, coords = run_dir / table, run_dir / COORDS_FILE
        try:
            if resume:
                self.finished_cells = _repair(results, coords, columns, expected or {}, cell_id)
                self.metadata.setdefault("resumed_utc", []).append(_now())
            self.results = AppendTable.open(results, columns)
            self.coords = AppendTable.open(coords, COORD_COLUMNS)
            write_atomic(run_dir / META_FILE, json.dumps(self.metadata, indent=2, default=str) + "\n")
        except BaseException:
            self._lock.release()
            raise

    def add(self, rows: Sequence[Mapping[str, object]], coords: Mapping[str, Mapping[str, torch.Tensor]]) -> None:
        """Append one cell's rows (and, first, their per-coordinate rows)."""
        self.coords.append(coordinate_rows_of(rows, coords))
        self.results.append(rows)  # last: a cell counts as finished once its result rows are in

    def add_traceback(self, cell_seed: int, text: str) -> None:
        """Write a failed cell's traceback to ``failures/<cell_seed>.txt`` (atomically)."""
        folder = self.run_dir / FAILURES_DIR
        folder.mkdir(exist_ok=True)
        write_atomic(folder / f"{cell_seed}.txt", text)

    def finish(self, **extra: object) -> None:
        """Close the tables, record the end time (and anything else) in the sidecar, release the lock."""
        self.results.close()
        self.coords.close()
        self.metadata["finished_utc"] = _now()
        self.metadata.update(extra)
        write_atomic(self.run_dir / META_FILE, json.dumps(self.metadata, indent=2, default=str) + "\n")
        self._lock.release()

    def close(self) -> None:
        """Close the tables (flushed to disk) and release the lock, finished or not."""
        self.results.close()
        self.coords.close()
        self._lock.release()


def resumed_metadata(run_dir: Path, declared: Mapping[str, object]) -> dict[str, Any]:
    """The ``run.json`` of the run folder being resumed, checked to declare ``declared`` (its
    ``columns``, …) exactly as the run's options plan them now; a :class:`UsageError` otherwise."""
    meta = json.loads((run_dir / META_FILE).read_text())
    if any(meta.get(key, []) != value for key, value in declared.items()):
        raise UsageError(
            f"--resume {run_dir}: the run's columns differ from what its options plan now "
            "(another rpbench version or other plugins); finish it with the version that started it"
        )
    return cast(dict[str, Any], meta)


def _repair(
    results: Path, coords: Path, columns: Sequence[str], expected: Mapping[int, int], cell_id: str = CELL_ID
) -> set[int]:
    """Keep the finished cells' rows of an interrupted run; their ids (``cell_seed``s)."""
    if not results.exists():
        return set()
    finished = keep_complete_cells(results, columns, expected, cell_id)
    if coords.exists():
        keep_cells(coords, finished, CELL_ID)
    return finished


def lock_run_dir(run_dir: Path) -> FileLock:
    """Hold an exclusive lock on the run folder; a :class:`UsageError` that says what really failed."""
    lock = FileLock(run_dir / LOCK_FILE, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise UsageError(f"{run_dir}: another rpbench process is writing into this run folder") from None
    except OSError as exc:
        raise UsageError(
            f"{run_dir}: cannot lock {LOCK_FILE} there ({exc.strerror or exc}); the filesystem may not support locks"
        ) from None
    return lock
