"""Synthetic training run folders (``curves.csv`` + ``run.json`` with ``"kind": "train"``) with known numbers.

Two estimators (score, pathwise) × seeds 0, 1, 2 × steps 0, 10, 20 on one task configuration
(``latents=2``; more with ``latents=[2, 4]``).  At step 20 ``eval_elbo`` is :data:`FINAL` (plus
``latents`` × 10); each step before it is one lower per step.  ``seconds`` is ``step / 2 + seed / 10``.
Seed 3 of score fails at step 10 (its step 0 is ok).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from rpbench.columns import CURVE_RUN_KEYS, curve_columns

FINAL = {"score": [-100.0, -102.0, -104.0], "pathwise": [-90.0, -91.0, -95.0]}
"""``eval_elbo`` at step 20 for seeds 0, 1, 2 (latents=2 adds nothing more)."""
STEPS = (0, 10, 20)
SETTINGS: dict[str, object] = {"device": "cpu", "batch": 1, "lr": 0.001, "eval_samples": 100}
COLUMNS = curve_columns([("latents", int), ("minibatch", int), ("model_seed", int)], [("tau", float)])
"""``model_seed`` is the seed under a task parameter's name (as ``rpbench train`` writes it)."""
HEADER = [c.name for c in COLUMNS]


FAILED_START = -30.0
"""``eval_elbo`` of the failed run (seed 3) at step 0: far above the rest, so counting it shows."""


def eval_elbo(estimator: str, seed: int, step: int, latents: int = 2) -> float:
    base = FINAL[estimator][seed] if seed < len(FINAL[estimator]) else FAILED_START + STEPS[-1]
    return base - (STEPS[-1] - step) + (latents - 2) * 10


def seconds(seed: int, step: int) -> float:
    return step / 2 + seed / 10


def row(estimator: str, seed: int, step: int, latents: int = 2, status: str = "ok") -> dict[str, object]:
    """One evaluation point (``status`` failed: no metrics, an error)."""
    record: dict[str, object] = dict.fromkeys(HEADER, "")
    record |= {"task": "vae", "estimator": estimator, "biased": False, "latents": latents, "minibatch": 8}
    record |= {key: SETTINGS.get(key, STEPS[-1]) for key in CURVE_RUN_KEYS}  # the rest: the planned steps
    record["seed"] = record["model_seed"] = seed
    record |= {"step": step, "run_seed": 1000 + seed, "seconds": seconds(seed, step), "status": status}
    if status == "ok":
        value = eval_elbo(estimator, seed, step, latents)
        record |= {"train_elbo": value - 1, "eval_elbo": value, "eval_elbo_se": 0.5, "eval_iwae": value + 1}
    else:
        record["error"] = "loss is nan, at step 10"
    return record


def rows(latents: tuple[int, ...] = (2,), failed: bool = True) -> list[dict[str, object]]:
    """Every row of the run, as ``rpbench train`` appends them (run by run)."""
    out = []
    for value in latents:
        for estimator in FINAL:
            for seed in range(3):
                out += [row(estimator, seed, step, value) for step in STEPS]
            if failed and estimator == "score":
                out += [row(estimator, 3, 0, value), row(estimator, 3, 10, value, status="failed")]
    return out


def curves_text(records: list[dict[str, object]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, HEADER, lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    return buffer.getvalue()


def meta() -> dict[str, object]:
    return {"kind": "train", "columns": [c.to_json() for c in COLUMNS], "options": {"level": 0.95}}


def write_training_run(folder: Path, records: list[dict[str, object]] | None = None) -> Path:
    """A training run folder with ``records`` (default :func:`rows`)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "curves.csv").write_text(curves_text(rows() if records is None else records))
    (folder / "run.json").write_text(json.dumps(meta(), indent=2))
    return folder
