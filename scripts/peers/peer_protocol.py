"""The line protocol between ``scripts/bench_peers.py`` and its worker processes.

Each side of a comparison (our estimators, optax.monte_carlo, Storchastic) runs in its own
long-lived worker process, so that the libraries never share an interpreter (importing Storchastic
patches ``torch`` globally) and so that each stays warm (JIT-compiled, first call done) while the
driver interleaves timed rounds across them.  The driver writes one JSON object per line to the
worker's stdin and reads one JSON object per line back:

* ``{"op": "info"}`` → library versions and thread settings of the worker;
* ``{"op": "setup", "cell": {...}}`` → builds the cell, runs its untimed preparation and warm-up;
* ``{"op": "run", "cell": ID, "seed": S}`` → one timed call of K estimates: ``{"seconds": s}``; the
  worker keeps the estimates (converted after the clock stops);
* ``{"op": "dump", "cell": ID, "dir": PATH}`` → writes every kept estimate of the cell, per parameter
  group, as ``(K_total, P)`` ``.npy`` files and forgets them: ``{"files": {group: path}}``;
* ``{"op": "quit"}``.

Every answer has ``"ok"``; a failure answers ``{"ok": false, "error": traceback}`` and the worker
keeps serving.  The worker's own stdout is moved to stderr so that a library's stray ``print``
cannot corrupt the protocol.  This module uses the standard library and numpy only.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any, Protocol

import numpy as np

THREADS_ENV = "RPBENCH_PEERS_THREADS"


def threads_from_env() -> int:
    """The intra-op thread count the driver asked for (``RPBENCH_PEERS_THREADS``; default 1)."""
    return max(1, int(os.environ.get(THREADS_ENV, "1")))


def affinity() -> list[int]:
    """The CPUs this process may run on."""
    return sorted(os.sched_getaffinity(0))


class Worker(Protocol):
    """What a side implements; :func:`serve` dispatches the protocol's operations to it."""

    def info(self) -> dict[str, Any]: ...

    def setup(self, cell: dict[str, Any]) -> dict[str, Any]: ...

    def run(self, cell_id: str, seed: int) -> float: ...

    def estimates(self, cell_id: str) -> dict[str, np.ndarray]: ...


class KeepingWorker:
    """What every side shares: its thread count and its cells, each with a ``kept`` dict of the
    estimate blocks its timed calls produced (``{group: [(K, P) arrays]}``), handed over by
    :meth:`estimates`."""

    def __init__(self) -> None:
        self.threads = threads_from_env()
        self.cells: dict[str, Any] = {}

    def estimates(self, cell_id: str) -> dict[str, np.ndarray]:
        """Every kept estimate of ``cell_id`` as one ``(K_total, P)`` matrix per group; forgets them."""
        cell = self.cells[cell_id]
        kept, cell.kept = cell.kept, {}
        return {group: np.concatenate(rows, axis=0) for group, rows in kept.items()}


def dump(worker: Worker, cell_id: str, directory: str, side: str) -> dict[str, str]:
    """Write the kept estimates of ``cell_id`` as ``.npy`` files, one per group."""
    files = {}
    for group, matrix in worker.estimates(cell_id).items():
        path = Path(directory) / f"{side}-{cell_id.replace('/', '_')}-{group}.npy"
        np.save(path, matrix)
        files[group] = str(path)
    return files


def serve(worker: Worker, side: str) -> None:
    """Answer the driver's requests on stdin until ``quit`` or end of input."""
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def answer(message: dict[str, Any]) -> None:
        out.write(json.dumps(message) + "\n")
        out.flush()

    answer({"ok": True, "hello": side, "pid": os.getpid()})
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
            op = request["op"]
            if op == "quit":
                answer({"ok": True})
                return
            if op == "info":
                answer({"ok": True, "info": worker.info()})
            elif op == "setup":
                answer({"ok": True, **worker.setup(request["cell"])})
            elif op == "run":
                answer({"ok": True, "seconds": worker.run(request["cell"], int(request["seed"]))})
            elif op == "dump":
                answer({"ok": True, "files": dump(worker, request["cell"], request["dir"], side)})
            else:
                answer({"ok": False, "error": f"unknown op {op!r}"})
        except Exception:
            answer({"ok": False, "error": traceback.format_exc()})
