"""Do two sides' gradient estimates have the same distribution?  Mean and variance checks.

Same estimator, same model ⇒ the K estimates of each side are draws from one distribution, so
their means and their variances must agree within sampling error.  For each parameter group
(``P`` coordinates) this module compares two ``(K, P)`` matrices ``a`` and ``b``:

* **Variance**: ``rpbench.metrics.summarize`` gives each side's total variance (trace of the
  covariance) with its interval.  The tables show the 95% intervals; the verdict asks that the
  ``1 − alpha`` intervals (99.9% by default) overlap, so that with a dozen or more groups compared
  per run a false alarm stays rare (two disjoint 95% intervals happen about once in 180 honest
  comparisons).
* **Mean**, two-sample test of ``E[a] = E[b]``:

  - ``P = 1``: ``z = (m_a − m_b) / √(s²_a/K_a + s²_b/K_b)``, two-sided normal p-value.
  - ``P > 1``: ``T = ‖m_a − m_b‖²``.  Under the null ``m_a − m_b`` is approximately
    ``N(0, Σ)`` with ``Σ = S_a/K_a + S_b/K_b``, so ``E[T] = tr Σ`` and ``Var[T] = 2 tr Σ²``.  T is
    referred to the moment-matched ``c·χ²_ν`` with ``c = tr Σ² / tr Σ`` and ``ν = (tr Σ)² / tr Σ²``.
    ``tr Σ`` comes from the per-coordinate variances; ``tr Σ² = tr A² + tr B² + 2 tr AB``
    (``A = S_a/K_a``, ``B = S_b/K_b``) from the Gram matrices of the centred rows:
    ``tr S_a² = ‖X_a X_aᵀ‖²_F/(K_a − 1)²`` and ``tr S_a S_b = ‖X_a X_bᵀ‖²_F/((K_a − 1)(K_b − 1))``.
    This plug-in over-estimates ``tr Σ²`` (by about ``(tr S)²/K``), which lowers ν and widens the
    reference distribution: the test is conservative.

The cell's sides agree when the mean test's p-value is at least ``alpha`` and the ``1 − alpha``
variance intervals overlap.  Each side's mean and variance intervals (and, where the truth is known, its
bias against the exact gradient) come from ``rpbench.metrics.summarize``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from scipy import stats

from rpbench.metrics import summarize


@dataclass(frozen=True)
class MeanTest:
    """A two-sample test of equal means."""

    method: str
    statistic: float
    p_value: float
    detail: dict[str, float]


def mean_test(a: np.ndarray, b: np.ndarray) -> MeanTest:
    """Two-sample test that the ``(K, P)`` estimates ``a`` and ``b`` have the same mean (see the module doc)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    ka, kb = a.shape[0], b.shape[0]
    ma, mb = a.mean(0), b.mean(0)
    if a.shape[1] == 1:
        se = math.sqrt(a[:, 0].var(ddof=1) / ka + b[:, 0].var(ddof=1) / kb)
        z = float((ma[0] - mb[0]) / se) if se > 0 else 0.0
        return MeanTest("z (P=1)", z, float(math.erfc(abs(z) / math.sqrt(2.0))), {"se": se})
    xa, xb = a - ma, b - mb
    tr_a = float((xa**2).sum()) / (ka - 1) / ka
    tr_b = float((xb**2).sum()) / (kb - 1) / kb
    tr_aa = float(np.square(xa @ xa.T).sum()) / (ka - 1) ** 2 / ka**2
    tr_bb = float(np.square(xb @ xb.T).sum()) / (kb - 1) ** 2 / kb**2
    tr_ab = float(np.square(xa @ xb.T).sum()) / ((ka - 1) * (kb - 1)) / (ka * kb)
    trace = tr_a + tr_b
    trace_sq = tr_aa + tr_bb + 2.0 * tr_ab
    t = float(np.square(ma - mb).sum())
    scale, dof = trace_sq / trace, trace**2 / trace_sq
    p = float(stats.chi2.sf(t / scale, dof))
    return MeanTest(
        "moment-matched c*chi2_nu on |m_a - m_b|^2 (Gram tr S^2)",
        t,
        p,
        {"expected_under_null": trace, "c": scale, "nu": dof},
    )


def side_summary(x: np.ndarray, exact: list[float] | None, seconds: list[float], level: float = 0.95) -> dict[str, Any]:
    """``rpbench.metrics.summarize`` of one side's ``(K, P)`` estimates at ``level`` (plus K and P)."""
    truth = None if exact is None else torch.tensor(exact, dtype=torch.float64)
    out = summarize(torch.from_numpy(np.asarray(x, dtype=np.float64)), truth, seconds, level)
    keep = ("mean", "mean_lo", "mean_hi", "variance", "variance_lo", "variance_hi", "kurtosis")
    keep += ("exact", "bias", "bias_lo", "bias_hi", "bias_significant")
    summary = {k: _plain(out[k]) for k in keep if k in out}
    summary["k"], summary["p"] = int(x.shape[0]), int(x.shape[1])
    return summary


def compare_group(
    a: np.ndarray,
    b: np.ndarray,
    exact: list[float] | None,
    seconds_a: list[float],
    seconds_b: list[float],
    alpha: float,
) -> dict[str, Any]:
    """Both sides' summaries (95%), the mean test, the variance-interval overlaps and the verdict."""
    sa, sb = side_summary(a, exact, seconds_a), side_summary(b, exact, seconds_b)
    wide_a = side_summary(a, exact, seconds_a, 1.0 - alpha)
    wide_b = side_summary(b, exact, seconds_b, 1.0 - alpha)
    test = mean_test(a, b)
    overlap_95 = _overlap(sa, sb, "variance")
    overlap_wide = _overlap(wide_a, wide_b, "variance")
    return {
        "ours": sa,
        "peer": sb,
        "mean_test": asdict(test),
        "variance_ci_overlap_95": overlap_95,
        "variance_ci_level": 1.0 - alpha,
        "variance_ci_overlap": overlap_wide,
        "variance_ci_wide": {
            "ours": [wide_a["variance_lo"], wide_a["variance_hi"]],
            "peer": [wide_b["variance_lo"], wide_b["variance_hi"]],
        },
        "agree": bool(overlap_wide and test.p_value >= alpha),
    }


def _overlap(a: dict[str, Any], b: dict[str, Any], name: str) -> bool:
    return bool(a[f"{name}_lo"] <= b[f"{name}_hi"] and b[f"{name}_lo"] <= a[f"{name}_hi"])


def _plain(value: Any) -> Any:
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | float | np.floating | np.integer):
        return float(value)
    return value
