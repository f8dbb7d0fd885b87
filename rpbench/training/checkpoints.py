"""A training run's checkpoint: everything its next step depends on, saved at each evaluation point.

``checkpoints/<run_seed>.pt`` in the run folder holds the model, Adam's state, what the estimator
learned online (:meth:`~rpbench.estimators.base.Estimator.state_dict`), the states of the run's
generators, the step and the training seconds so far, and every evaluation point so far, so
that the rows a kill cut off can be written from it.  It is written before the point's row and
replaced atomically (a temporary file, fsync, a rename), so after a SIGKILL the file is the old
checkpoint or the new one, never a torn one; ``rpbench train --resume`` continues each run from
its checkpoint and gives the curves an uninterrupted run gives (timing aside).  Only the latest
checkpoint of a run is kept; a finished run's is its final model.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import asdict
from pathlib import Path

import torch

from rpbench.errors import UsageError
from rpbench.training.loop import Checkpoint, Point

CHECKPOINT_DIR = "checkpoints"


def checkpoint_path(run_dir: Path, run_seed: int) -> Path:
    """Where the run ``run_seed`` of the run folder ``run_dir`` keeps its checkpoint."""
    return run_dir / CHECKPOINT_DIR / f"{run_seed}.pt"


def save_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    """Replace ``path`` with ``checkpoint`` atomically."""
    path.parent.mkdir(exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    payload = {
        "state": checkpoint.state,
        "points": [asdict(point) for point in checkpoint.points],
        "finished": checkpoint.finished,
    }
    with open(tmp, "wb") as handle:
        torch.save(payload, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> Checkpoint | None:
    """The checkpoint at ``path``; ``None`` if the run never reached its first point; one line if damaged."""
    if not path.exists():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        return Checkpoint(payload["state"], [Point(**point) for point in payload["points"]], bool(payload["finished"]))
    except (OSError, RuntimeError, EOFError, KeyError, TypeError, ValueError, pickle.UnpicklingError) as exc:
        raise UsageError(
            f"{path}: the checkpoint is damaged ({type(exc).__name__}); delete it to train that run again from step 0"
        ) from None
