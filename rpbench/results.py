"""The results layer: a new run folder per run, tidy CSV tables and a JSON sidecar.

``OUT/<run-id>/`` holds

* ``results.csv`` — one row per (task config, estimator config, parameter group, device, seed);
* ``coords.csv`` — the long format: one row per coordinate of each of those rows (groups of at
  most :data:`MAX_COORDS` coordinates);
* ``run.json`` — command line, seed, options, versions, device name, git commit, threads, load.

Files are replaced atomically (written beside, then renamed) after every cell, so a run that
stops midway leaves complete rows; an existing run folder is never reused or overwritten.
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

import numpy as np
import pandas as pd
import torch

import rpbench
from rpbench.errors import UsageError

MAX_COORDS = 1000
"""Groups with more coordinates than this (network weights) get no per-coordinate rows."""
RESULTS_FILE = "results.csv"
COORDS_FILE = "coords.csv"
META_FILE = "run.json"


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


def _read_rows(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    try:
        # as the exact text written, so that rewriting the table keeps earlier rows byte for byte
        return pd.read_csv(path, dtype=str, keep_default_na=False).to_dict("records")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise UsageError(f"--resume: {path} is not a readable results table ({exc})") from None


def _lock_run_dir(run_dir: Path) -> object:
    """Hold an exclusive lock on the run folder, so two processes never write into one run."""
    import fcntl

    handle = open(run_dir / ".lock", "w")  # noqa: SIM115 - held for the writer's lifetime
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise UsageError(f"{run_dir}: another rpbench process is writing into this run folder") from None
    return handle


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename: never a partial file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def rows_to_frame(rows: Sequence[Mapping[str, object]]) -> pd.DataFrame:
    """Rows (dicts) to a frame whose columns keep first-seen order across rows."""
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    return pd.DataFrame(list(rows), columns=list(columns))


def write_table(path: Path, rows: Sequence[Mapping[str, object]]) -> None:
    """Write rows as CSV (full float precision, round-trips exactly) atomically."""
    write_atomic(path, rows_to_frame(rows).to_csv(index=False))


def coordinate_rows(row: Mapping[str, object], coords: Mapping[str, torch.Tensor]) -> list[dict[str, object]]:
    """The long-format rows of one result row: its keys plus one row per coordinate."""
    keys = {k: row[k] for k in ("task", "estimator", "group", "samples", "batch", "seed", "device") if k in row}
    columns = {name: values.cpu().numpy() for name, values in coords.items()}
    count = len(next(iter(columns.values())))
    return [{**keys, "coord": i, **{name: float(v[i]) for name, v in columns.items()}} for i in range(count)]


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
        "git_commit": _git_commit(),
    }


class RunWriter:
    """Accumulates rows of a run and keeps its files complete after every cell."""

    def __init__(self, run_dir: Path, metadata: Mapping[str, object], resume: bool = False) -> None:
        self.run_dir = run_dir
        self._lock = _lock_run_dir(run_dir)
        self.metadata = dict(metadata)
        self.rows: list[dict[str, object]] = []
        self.coord_rows: list[dict[str, object]] = []
        if resume:
            self.rows = _read_rows(run_dir / RESULTS_FILE)
            self.coord_rows = _read_rows(run_dir / COORDS_FILE)
            self.metadata.setdefault("resumed_utc", []).append(_now())
        write_atomic(run_dir / META_FILE, json.dumps(self.metadata, indent=2, default=str) + "\n")

    @property
    def finished_cells(self) -> set[int]:
        """``cell_seed`` of every cell with rows already written."""
        return {int(row["cell_seed"]) for row in self.rows if str(row.get("cell_seed", "")).strip()}

    def add(self, rows: Sequence[Mapping[str, object]], coords: Mapping[str, Mapping[str, torch.Tensor]]) -> None:
        """Add one cell's rows and rewrite the tables."""
        for row in rows:
            self.rows.append(dict(row))
            group = str(row["group"])
            if group in coords and int(row.get("n_coords", 0)) <= MAX_COORDS:
                self.coord_rows.extend(coordinate_rows(row, coords[group]))
        write_table(self.run_dir / RESULTS_FILE, self.rows)
        if self.coord_rows:
            write_table(self.run_dir / COORDS_FILE, self.coord_rows)

    def finish(self, **extra: object) -> None:
        """Record the end time (and anything else) in the sidecar."""
        self.metadata["finished_utc"] = _now()
        self.metadata.update(extra)
        write_atomic(self.run_dir / META_FILE, json.dumps(self.metadata, indent=2, default=str) + "\n")
