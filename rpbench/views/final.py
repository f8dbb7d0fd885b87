"""A training run's results over seeds: the final values of each configuration, and mean curves.

A training run (``rpbench train``, :attr:`~rpbench.views.loader.Run.kind` ``"train"``) has one row
per evaluation point of each run (task configuration × estimator configuration × seed).  A run
with a ``failed`` row failed; it is left out and counted.  Over the seeds of a configuration the
views show the mean and the Student-t interval ``mean ± t_{(1+level)/2, n-1} · sd / √n`` (NaN
with one seed)::

    run = load_run("results/20260101-120000-train-abc123")
    final_frame(run, "eval_elbo")                    # each seed's last point, averaged
    final_frame(run, "eval_elbo", at_seconds=60.0)   # the last point within a minute of training
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
from scipy import stats

from rpbench.columns import Column
from rpbench.errors import UsageError
from rpbench.views.constants import CURVE_METRICS, check_choice
from rpbench.views.loader import Run

RUN_ID = ("seed", "step")
"""Keys that tell apart the rows of one configuration: its seeds, and each seed's evaluation points."""


def check_training(run: Run, what: str) -> None:
    """A :class:`UsageError` unless ``run`` is a training run."""
    if run.kind != "train":
        raise UsageError(f"{what} needs a training run (curves.csv from `rpbench train`); this is a {run.kind} run")


def seed_aliases(run: Run) -> list[str]:
    """Key columns that are the seed under another name (equal to ``seed`` in every row, where the
    seeds differ): a training run sets the task's ``model_seed`` to its seed."""
    frame = run.results
    if "seed" not in frame.columns or frame["seed"].nunique() < 2:
        return []
    seeds = frame["seed"].astype("Int64")
    aliases = []
    for key in run.key_columns:
        column = run.column(key)
        if key in RUN_ID or column is None or column.type != "int":
            continue
        same = frame[key].astype("Int64") == seeds
        if bool(same.fillna(False).all()):
            aliases.append(key)
    return aliases


def config_keys(run: Run) -> list[str]:
    """The keys of a configuration: every key column but the seed (and its aliases) and the step."""
    aliases = seed_aliases(run)
    return [k for k in run.key_columns if k not in RUN_ID and k not in aliases]


def _level(run: Run, level: float | None) -> float:
    chosen = run.level if level is None else level
    if isinstance(chosen, bool) or not isinstance(chosen, int | float) or not 0.0 < chosen < 1.0:
        raise UsageError(f"level {chosen!r} is not a confidence level in (0, 1)")
    return float(chosen)


def t_interval(n: np.ndarray, mean: np.ndarray, sd: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """The bounds ``mean ∓ t_{(1+level)/2, n-1} · sd / √n`` (NaN where ``n < 2``)."""
    n = np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        quantile = np.where(n >= 2, stats.t.ppf(0.5 + level / 2, np.maximum(n - 1, 1)), np.nan)
        half = quantile * np.asarray(sd, dtype=float) / np.sqrt(n)
    return mean - half, mean + half


def _work(run: Run, metric: str) -> tuple[pd.DataFrame, list[str]]:
    """The rows with a configuration id (``_config``) and whether their run failed (``_failed``)."""
    check_training(run, "this view")
    check_choice(metric, CURVE_METRICS, "metric")
    frame = run.results.reset_index(drop=True)
    keys = config_keys(run)
    config = frame.groupby(keys, dropna=False, sort=False).ngroup() if keys else pd.Series(0, index=frame.index)
    work = frame.assign(_config=config.to_numpy())
    failed = (work["status"].astype(object) == "failed").to_numpy(dtype=bool)
    work["_failed"] = pd.Series(failed).groupby([work["_config"], work["seed"]], dropna=False).transform("any")
    return work, keys


def _points(work: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The ``ok`` evaluation points of runs that did not fail, where the metric has a value."""
    ok = (work["status"].astype(object) == "ok").to_numpy(dtype=bool)
    return work[ok & ~work["_failed"].to_numpy(dtype=bool) & work[metric].notna().to_numpy(dtype=bool)]


def _summary(points: pd.DataFrame, by: list[str], metric: str, level: float) -> pd.DataFrame:
    """Per group of ``by``: seeds, the metric's mean and t-interval, the mean step and seconds."""
    groups = points.groupby(by, sort=False)
    values = groups[metric]
    out = pd.DataFrame(
        {
            "seeds": values.count(),
            metric: values.mean(),
            "_sd": values.std(ddof=1),
            "step": groups["step"].mean().astype(float),
            "seconds": groups["seconds"].mean().astype(float),
        }
    )
    out[f"{metric}_lo"], out[f"{metric}_hi"] = t_interval(
        out["seeds"].to_numpy(), out[metric].to_numpy(), out["_sd"].to_numpy(), level
    )
    return out.drop(columns="_sd")


def _firsts(work: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Each configuration's key values (first row), indexed by configuration id, in order of appearance."""
    return work.groupby("_config", sort=False).head(1).set_index("_config")[keys]


def final_frame(
    run: Run, metric: str = "eval_elbo", at_seconds: float | None = None, level: float | None = None
) -> pd.DataFrame:
    """Per task × estimator configuration, ``metric`` at each seed's last point, over seeds.

    Each run's point is its last ``ok`` evaluation point where ``metric`` has a value (with
    ``at_seconds``, the last whose training ``seconds`` are at most that).  Columns: the
    configuration keys (:func:`config_keys`), ``seeds`` (how many were averaged), ``failed``
    (runs with a failed row, left out), ``<metric>`` (the mean over seeds), ``<metric>_lo`` and
    ``<metric>_hi`` (the Student-t interval at ``level``, by default the run's; NaN with fewer
    than two seeds), ``step`` and ``seconds`` (their means over the seeds).  One row per
    configuration, in order of appearance (a configuration whose runs all failed has ``seeds`` 0
    and NaN values).  Not a training run, a metric not in :data:`~rpbench.columns.CURVE_METRICS`,
    a bad ``at_seconds`` or level: a :class:`UsageError`.
    """
    work, keys = _work(run, metric)
    confidence = _level(run, level)
    points = _points(work, metric)
    if at_seconds is not None:
        if isinstance(at_seconds, bool) or not isinstance(at_seconds, int | float) or math.isnan(at_seconds):
            raise UsageError(f"at_seconds {at_seconds!r} is not a number of seconds")
        points = points[(points["seconds"] <= at_seconds).fillna(False).to_numpy(dtype=bool)]
    last = points.sort_values("step", kind="stable").groupby(["_config", "seed"], sort=False, dropna=False).tail(1)
    summary = _summary(last, ["_config"], metric, confidence)
    firsts = _firsts(work, keys)
    failed = work[work["_failed"].to_numpy(dtype=bool)].groupby("_config")["seed"].nunique()
    out = firsts.join(summary, how="left")
    out["seeds"] = out["seeds"].fillna(0).astype(int)
    out.insert(len(keys) + 1, "failed", failed.reindex(out.index, fill_value=0).astype(int).to_numpy())
    columns = [*keys, "seeds", "failed", metric, f"{metric}_lo", f"{metric}_hi", "step", "seconds"]
    return out[columns].reset_index(drop=True)


FINAL_METRICS = ("eval_elbo", "eval_iwae", "train_elbo")
"""The metrics of ``final.csv``, each with its t-interval."""


def final_table(run: Run, level: float | None = None) -> pd.DataFrame:
    """``final.csv``: per configuration, :data:`FINAL_METRICS` at each seed's last point (mean and
    t-interval over seeds), and ``eval_elbo`` again at equal training time.

    Columns: the configuration keys, ``seeds``, ``failed``, ``step`` and ``seconds`` (means), each
    metric with ``_lo``/``_hi``, then ``equal_seconds`` — the shortest training time of any run
    that did not fail (every run has trained at least that long) — and ``eval_elbo_at_equal_seconds``
    with its interval: each seed's last point within ``equal_seconds``.
    """
    frames = [final_frame(run, metric, level=level) for metric in FINAL_METRICS]
    keys = config_keys(run)
    table = frames[0][[*keys, "seeds", "failed", "step", "seconds"]].copy()
    for metric, frame in zip(FINAL_METRICS, frames, strict=True):
        for column in (metric, f"{metric}_lo", f"{metric}_hi"):
            table[column] = frame[column].to_numpy()
    spent = _points(_work(run, "eval_elbo")[0], "eval_elbo").groupby(["_config", "seed"])["seconds"].max()
    equal = float(spent.min()) if len(spent) else math.nan
    table["equal_seconds"] = equal
    at_equal = final_frame(run, "eval_elbo", at_seconds=equal, level=level) if not math.isnan(equal) else None
    for end in ("", "_lo", "_hi"):
        values = at_equal[f"eval_elbo{end}"].to_numpy() if at_equal is not None else math.nan
        table[f"eval_elbo_at_equal_seconds{end}"] = values
    return table


def curve_frame(run: Run, metric: str = "eval_elbo", level: float | None = None) -> pd.DataFrame:
    """Per configuration and step, ``metric`` over the seeds that did not fail: the learning curves.

    Columns: the configuration keys, ``step``, ``seeds``, ``<metric>`` (mean), ``<metric>_lo`` /
    ``<metric>_hi`` (the t-interval, NaN with one seed), ``seconds`` (mean training seconds at
    that step); rows by configuration (in order of appearance), then step.
    """
    work, keys = _work(run, metric)
    confidence = _level(run, level)
    points = _points(work, metric).sort_values(["_config", "step"], kind="stable")
    summary = _summary(points, ["_config", "step"], metric, confidence).drop(columns="step").reset_index()
    firsts = _firsts(work, keys)
    out = summary.join(firsts, on="_config")
    order = {c: i for i, c in enumerate(firsts.index)}
    out = out.assign(_order=out["_config"].map(order)).sort_values(["_order", "step"], kind="stable")
    columns = [*keys, "step", "seeds", metric, f"{metric}_lo", f"{metric}_hi", "seconds"]
    return out[columns].reset_index(drop=True)


def final_run(run: Run, metric: str = "eval_elbo", at_seconds: float | None = None, level: float | None = None) -> Run:
    """The run with :func:`final_frame`'s rows as its results (what a report lays out), the seed and
    step dropped from its key columns."""
    frame = final_frame(run, metric, at_seconds, level)
    kept = [c for c in run.columns if c.name not in RUN_ID and c.name in frame.columns and c.role == "key"]
    added = [Column("seeds", "outcome", "int"), Column("failed", "outcome", "int")]
    added += [Column(metric, "metric", "float")]
    added += [Column(f"{metric}_{end}", "ci", "float", of=metric) for end in ("lo", "hi")]
    added += [Column("step", "outcome", "float"), Column("seconds", "timing", "float")]
    return dataclasses.replace(run, results=frame, columns=[*kept, *added])


__all__ = [
    "FINAL_METRICS",
    "config_keys",
    "curve_frame",
    "final_frame",
    "final_run",
    "final_table",
    "seed_aliases",
    "t_interval",
]
