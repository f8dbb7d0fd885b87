"""Where a table's value is floating-point round-off: the resolution below which it shows as 0.

An exact control variate leaves a variance of 1e-31, not 0; a bias of 1e-17 is the round-off of
a mean.  As in ``compare`` (:data:`~rpbench.views.constants.ROUND_OFF`), a squared quantity below
10⁻¹² of the squared gradient scale (the larger of ‖exact‖² and ‖mean‖² of its row) is zero, and
a linear one (a mean, a bias) below 10⁻⁶ of the gradient scale.  Rows without a gradient scale (a
training run's table) and metrics without a scale (SNR, cosine, time, kurtosis) have none.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from rpbench.views.constants import ROUND_OFF

SQUARED: frozenset[str] = frozenset({"variance", "variance_per_coord", "mse", "work_variance", "eval_variance"})
"""Metrics in squared units of the gradient."""
LINEAR: frozenset[str] = frozenset({"mean", "bias", "bias_debiased"})
"""Metrics in units of the gradient."""


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    if name not in frame.columns:
        return pd.Series(np.nan, index=frame.index)
    return pd.to_numeric(frame[name], errors="coerce").astype(float)


def gradient_scale_sq(frame: pd.DataFrame) -> pd.Series:
    """Per row, the larger of ``exact²`` and ``mean²`` (NaN where neither is known)."""
    squares = pd.concat([_column(frame, "exact") ** 2, _column(frame, "mean") ** 2], axis=1)
    return squares.max(axis=1, skipna=True)


def resolution(frame: pd.DataFrame, metric: str) -> pd.Series:
    """Per row, the size below which ``metric`` is round-off (0 where there is none)."""
    scale_sq = gradient_scale_sq(frame)
    if metric in SQUARED:
        res = ROUND_OFF * scale_sq
        if metric == "variance_per_coord":
            res = res / _column(frame, "n_coords").clip(lower=1.0)
        if metric == "work_variance":
            res = res * _column(frame, "sec_per_estimate")
        if metric == "eval_variance":
            res = res * _column(frame, "evaluations")
    elif metric in LINEAR:
        res = math.sqrt(ROUND_OFF) * np.sqrt(scale_sq)
    else:
        return pd.Series(0.0, index=frame.index)
    return res.fillna(0.0)


def exact_estimator(frame: pd.DataFrame) -> pd.Series:
    """Per row, whether the variance is round-off (an exact control variate): its SNR is then
    infinite, not the 10¹⁵ that round-off gives."""
    level = resolution(frame, "variance")
    return (_column(frame, "variance") <= level) & (level > 0)
