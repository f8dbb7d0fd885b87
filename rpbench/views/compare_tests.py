"""The statistical tests of the regression gate, one per kind of metric.

``rpbench compare BASELINE NEW`` matches the rows of two runs by their configuration and asks,
per row and metric, whether NEW is *significantly and materially* worse than BASELINE.  Every
test uses only what the tables hold: each metric's value and its confidence interval (README,
"Confidence intervals"), from which a standard error is recovered.  The two runs are independent
measurements, so their standard errors add in quadrature.

* ``variance``, ``variance_per_coord``, ``mse`` (lower is better) — the ratio NEW/BASELINE on the
  log scale.  Each side's interval is a distribution-free interval for a mean of squared
  distances, roughly symmetric in log v, so ``se(log v) ≈ (log hi − log lo) / (2·z)`` with z the
  normal quantile of the tables' own level (95 %).  The ratio's interval at ``level`` is
  ``exp(log r ± z_level·se)`` (a Wald interval for a difference of independent log-estimates)
  with ``se = √2·max(se_b, se_n)``, which equals ``√(se_b² + se_n²)`` when the two runs agree
  and guards against a run that missed the tail (:func:`_pooled`).  Unlike the F-test for a
  ratio of variances, which assumes normal estimates and is badly anticonservative for the
  heavy-tailed (kurtosis in the tens to hundreds) score-function estimates, this inherits the
  heavy-tail robustness of the per-run intervals.  A regression when the whole interval lies
  above ``1 + tolerance``: NEW is worse by more than the tolerance with confidence
  ``(1 + level) / 2``.
* ``snr``, ``cosine`` (higher is better) — the same log-ratio test where both values and both
  lower bounds are positive; otherwise (a sign change, an interval reaching zero) the normal
  approximation to the difference, its interval expressed relative to ``|baseline|``.  A
  regression when the ratio's upper bound is below ``1 / (1 + tolerance)``.
* ``bias`` — a z-test on the change of magnitude ``|new| − |baseline|`` (signed bias for one
  coordinate, its norm for several).  The standard error of each side is its interval's larger
  half-width over z (the norm's lower end is clipped at zero; its upper half is the radius).  A
  regression when the increase exceeds both ``z_level·√(se_b² + se_n²)`` (statistically
  significant) and ``tolerance · max(|baseline|, 1.96·se_b, tiny)`` (practically large: a
  fraction of the baseline's bias or of its resolution).  A row whose ``bias_significant``
  flag switches from False to True is noted, but is no regression by itself: that flag is a
  4-SE threshold, and a row whose bias sits near it flips in about a quarter of independent
  reruns (simulated), while a real jump in bias fails the z-test.
* speed (always compared) — ``relative_cost`` where both rows have it (each cell's seconds per
  estimate over the machine-speed reference timed beside it, so a machine that is slower or busier
  than the baseline's moves both and not their ratio), else ``sec_per_estimate``.  Only large
  slowdowns count: a speed regression when NEW/BASELINE exceeds ``1 + speed_tolerance`` and its
  logarithm exceeds the root-sum-square of the facing log-arms of the two median intervals (the
  baseline's upper, the new run's lower; at the tables' own level).  Without intervals (too few
  timed values) the ratio alone decides.

Zero variances (a control variate that makes an estimator exact) are compared absolutely: below
``1e-12 × (gradient scale)²`` a variance counts as zero, so floating-point round-off (1e-31) in
one run and exact zero in the other is no change, while a variance that appears where there was
none is a regression.  A value that turns NaN or infinite where it was finite is a regression.

Each test is two-sided at ``level`` per row and metric, with no correction for the number of
rows: a row whose metric truly changed by exactly the tolerance is flagged with probability
``(1 − level)/2``; where nothing changed the rate is far lower (simulated with 200 pairs of
independent reruns of the score estimator on x², kurtosis 20–80, K = 500, tolerance 0.1: 0.1 %
of variance rows, none of the bias rows).  Per-run intervals undercover where K is small for
the kurtosis (README, "Confidence intervals"), and so does this test.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from statistics import NormalDist

from rpbench.views.constants import RELATIVE_SPEED, ROUND_OFF, SPEED, SPEED_METRICS
from rpbench.views.labels import is_true

ZERO = ROUND_OFF
"""Relative threshold under which a variance (× squared gradient scale) or bias counts as zero."""
FLIP_NOTE = "bias now significant (bias_significant False→True)"
BASELINE, NEW = "BASELINE", "NEW"
Rows = tuple[Mapping[str, object], Mapping[str, object]]
"""The baseline's row and the new run's row of one configuration."""
Quantiles = tuple[float, float, float]
"""Normal quantiles of the baseline's stored level, the new run's, and the test's level."""


@dataclass
class Change:
    """One (row, metric) comparison.

    ``ratio`` is NEW/BASELINE with its interval at the comparison's level (for ``bias`` the
    magnitudes' ratio, its interval the difference's interval relative to ``|baseline|``);
    ``p_value`` is two-sided for "no change" (normal approximation), ``None`` where there is no
    interval to test with (and for speed, whose intervals are Student-t with few repeats).
    """

    key: dict[str, object]
    metric: str
    baseline: float
    new: float
    ratio: float
    ratio_lo: float
    ratio_hi: float
    p_value: float | None
    regression: bool
    improvement: bool
    note: str

    @property
    def verdict(self) -> str:
        """``regression``, ``improvement``, ``speed regression``, ``speed improvement`` or ``""``."""
        prefix = "speed " if self.metric in SPEED_METRICS else ""
        if self.regression:
            return prefix + "regression"
        if self.improvement:
            return prefix + "improvement"
        return ""


def z_value(level: float) -> float:
    """The two-sided normal quantile of ``level``."""
    return NormalDist().inv_cdf(0.5 + level / 2.0)


def _p_two_sided(statistic: float) -> float:
    return 2.0 * (1.0 - NormalDist().cdf(abs(statistic)))


def cell_float(row: Mapping[str, object], column: str) -> float:
    """A row's cell as a float; NaN where it is empty or not a number."""
    value = row.get(column, math.nan)
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


@dataclass(frozen=True)
class _Side:
    value: float
    lo: float
    hi: float

    @classmethod
    def of(cls, row: Mapping[str, object], metric: str) -> _Side:
        return cls(cell_float(row, metric), cell_float(row, f"{metric}_lo"), cell_float(row, f"{metric}_hi"))

    def log_se(self, z_ci: float) -> float | None:
        """se(log value) from the interval; the upper half alone where the lower end is 0."""
        if not (self.value > 0 and math.isfinite(self.value) and math.isfinite(self.hi) and self.hi >= self.value):
            return None
        if self.lo > 0:
            return (math.log(self.hi) - math.log(self.lo)) / (2.0 * z_ci)
        return (math.log(self.hi) - math.log(self.value)) / z_ci

    def se(self, z_ci: float) -> float | None:
        """se from the interval's larger half-width (a clipped end is the shorter one)."""
        if not all(math.isfinite(x) for x in (self.value, self.lo, self.hi)):
            return None
        return max(self.hi - self.value, self.value - self.lo, 0.0) / z_ci


def _gradient_scale(b: Mapping[str, object], n: Mapping[str, object]) -> float:
    """The squared magnitude of the gradient (exact and mean, both rows); 1 where it is zero."""
    values = [cell_float(r, c) ** 2 for r in (b, n) for c in ("exact", "mean")]
    finite = [v for v in values if math.isfinite(v)]
    scale = max(finite, default=0.0)
    return scale if scale > 0 else 1.0


def _nonfinite(key: dict[str, object], metric: str, b: float, n: float) -> Change | None:
    """The verdict where either value is NaN or infinite, else ``None``."""
    if math.isfinite(b) and math.isfinite(n):
        return None
    nan = math.nan
    if math.isnan(b) and math.isnan(n):
        return Change(key, metric, b, n, nan, nan, nan, None, False, False, "")
    if b == n:  # both +inf or both -inf
        return Change(key, metric, b, n, 1.0, 1.0, 1.0, None, False, False, "")
    if math.isfinite(b):
        return Change(key, metric, b, n, nan, nan, nan, None, True, False, f"{n} in {NEW}, finite in {BASELINE}")
    return Change(key, metric, b, n, nan, nan, nan, None, False, math.isfinite(n), f"{b} in {BASELINE}")


def _pooled(se_b: float, se_n: float) -> float:
    """Standard error of a difference of two independent estimates: ``√2 · max(se_b, se_n)``.

    Not ``√(se_b² + se_n²)``: under "no change" both runs draw K estimates from the same
    distribution, so their standard errors are equal, and the larger estimate is the one less
    likely to have missed the heavy tail (a run that misses it reports a variance *and* an
    interval that are both too small).  With the score estimator on x² (kurtosis 20–80, K = 500)
    this cuts the false alarms at tolerance 0.1, level 0.99 in 200 pairs of independent reruns
    from 0.6 % of rows (1.5 % for the heaviest-tailed row) to 0.1 %; where NEW really is
    heavier-tailed it is conservative.
    """
    return math.sqrt(2.0) * max(se_b, se_n)


def _ratio_test(
    key: dict[str, object],
    metric: str,
    b: _Side,
    n: _Side,
    z_b: float,
    z_n: float,
    z: float,
    tolerance: float,
    higher_is_better: bool,
) -> Change:
    """Log-ratio test from each side's interval, else the normal approximation to the difference."""
    se_b, se_n = b.log_se(z_b), n.log_se(z_n)
    positive = b.value > 0 and n.value > 0 and se_b is not None and se_n is not None
    if higher_is_better:  # the log scale only where neither interval reaches zero
        positive = positive and b.lo > 0 and n.lo > 0
    worse_bound, better_bound = 1.0 + tolerance, 1.0 / (1.0 + tolerance)
    if positive:
        assert se_b is not None and se_n is not None
        ratio = n.value / b.value
        s = _pooled(se_b, se_n)
        lo, hi = ratio * math.exp(-z * s), ratio * math.exp(z * s)
        p = _p_two_sided(math.log(ratio) / s) if s > 0 else (1.0 if ratio == 1.0 else 0.0)
        note = ""
    else:
        lin_b, lin_n = b.se(z_b), n.se(z_n)
        if lin_b is None or lin_n is None or b.value == 0:
            ratio = n.value / b.value if b.value else (1.0 if n.value == 0 else math.nan)
            return Change(key, metric, b.value, n.value, ratio, math.nan, math.nan, None, False, False, "no interval")
        s = _pooled(lin_b, lin_n)
        scale = abs(b.value)
        diff = n.value - b.value
        ratio, lo, hi = 1.0 + diff / scale, 1.0 + (diff - z * s) / scale, 1.0 + (diff + z * s) / scale
        p = _p_two_sided(diff / s) if s > 0 else (1.0 if diff == 0 else 0.0)
        note = ""
    if higher_is_better:
        regression, improvement = hi < better_bound, lo > worse_bound
    else:
        regression, improvement = lo > worse_bound, hi < better_bound
    return Change(key, metric, b.value, n.value, ratio, lo, hi, p, regression, improvement, note)


def variance_like_change(
    key: dict[str, object],
    metric: str,
    rows: Rows,
    zs: Quantiles,
    tolerance: float,
) -> Change:
    """``variance``, ``variance_per_coord``, ``mse``: the log-ratio test; zeros compared absolutely."""
    b, n = _Side.of(rows[0], metric), _Side.of(rows[1], metric)
    verdict = _nonfinite(key, metric, b.value, n.value)
    if verdict is not None:
        return verdict
    scale = _gradient_scale(*rows)
    if metric == "variance_per_coord":
        scale /= max(cell_float(rows[0], "n_coords"), 1.0) if math.isfinite(cell_float(rows[0], "n_coords")) else 1.0
    tiny = ZERO * scale
    if b.value <= tiny and n.value <= tiny:
        ratio = 1.0 if b.value == n.value else math.nan
        return Change(key, metric, b.value, n.value, ratio, ratio, ratio, None, False, False, "")
    if b.value <= tiny:
        return Change(
            key, metric, b.value, n.value, math.inf, math.inf, math.inf, None, True, False, f"{metric} was zero"
        )
    if n.value <= tiny:
        return Change(key, metric, b.value, n.value, 0.0, 0.0, 0.0, None, False, True, f"{metric} now zero")
    return _ratio_test(key, metric, b, n, zs[0], zs[1], zs[2], tolerance, higher_is_better=False)


def higher_is_better_change(
    key: dict[str, object],
    metric: str,
    rows: Rows,
    zs: Quantiles,
    tolerance: float,
) -> Change:
    """``snr``, ``cosine``: the log-ratio test where both are positive, else the difference (an
    infinite SNR is judged by the variance)."""
    b, n = _Side.of(rows[0], metric), _Side.of(rows[1], metric)
    if metric == "snr" and (math.isinf(b.value) or math.isinf(n.value)):
        # An infinite SNR is a zero variance: judge it by the variance, as for the variance metric.
        variance = variance_like_change(key, "variance", rows, zs, tolerance)
        return Change(
            key,
            metric,
            b.value,
            n.value,
            n.value / b.value if b.value and math.isfinite(b.value) else math.nan,
            math.nan,
            math.nan,
            None,
            variance.regression,
            variance.improvement,
            variance.note.replace("variance", "variance (snr infinite)") if variance.note else "",
        )
    verdict = _nonfinite(key, metric, b.value, n.value)
    if verdict is not None:
        return verdict
    return _ratio_test(key, metric, b, n, zs[0], zs[1], zs[2], tolerance, higher_is_better=True)


def bias_change(
    key: dict[str, object],
    rows: Rows,
    zs: Quantiles,
    tolerance: float,
) -> Change:
    """``bias``: a z-test on the change of magnitude, significant and practically large."""
    b, n = _Side.of(rows[0], "bias"), _Side.of(rows[1], "bias")
    verdict = _nonfinite(key, "bias", b.value, n.value)
    if verdict is not None:
        return verdict
    se_b, se_n = b.se(zs[0]), n.se(zs[1])
    mag_b, mag_n = abs(b.value), abs(n.value)
    diff = mag_n - mag_b
    tiny = ZERO * math.sqrt(_gradient_scale(*rows))
    ratio = mag_n / mag_b if mag_b > 0 else (1.0 if mag_n == 0 else math.inf)
    flip = not is_true(rows[0].get("bias_significant")) and is_true(rows[1].get("bias_significant"))
    note = FLIP_NOTE if flip else ""
    if se_b is None or se_n is None:
        return Change(
            key, "bias", b.value, n.value, ratio, math.nan, math.nan, None, False, False, note or "no interval"
        )
    s = math.hypot(se_b, se_n)
    z = zs[2]
    practical = tolerance * max(mag_b, z_value(0.95) * se_b, tiny)
    significant = z * s
    if mag_b > 0:
        lo, hi = max(0.0, mag_n - z * s) / mag_b, (mag_n + z * s) / mag_b
    else:
        lo, hi = (0.0 if mag_n <= z * s else math.inf), math.inf
    p = _p_two_sided(diff / s) if s > 0 else (1.0 if diff == 0 else 0.0)
    regression = diff > significant and diff > practical
    improvement = -diff > significant and -diff > practical
    return Change(key, "bias", b.value, n.value, ratio, lo, hi, p, regression, improvement, note)


def speed_metric(rows: Rows) -> str:
    """``relative_cost`` where both rows have a positive one, else ``sec_per_estimate``."""
    relative = [cell_float(row, RELATIVE_SPEED) for row in rows]
    return RELATIVE_SPEED if all(math.isfinite(v) and v > 0 for v in relative) else SPEED


def _log_arm(outer: float, inner: float) -> float:
    """``|log(outer / inner)|``, an interval's arm on the log scale: infinite where an end reaches 0
    (or infinity: no bound on the ratio), NaN where an end is missing."""
    if math.isnan(outer) or math.isnan(inner):
        return math.nan
    if min(outer, inner) <= 0 or math.isinf(outer) or math.isinf(inner):
        return math.inf
    return abs(math.log(outer / inner))


def speed_change(
    key: dict[str, object],
    rows: Rows,
    speed_tolerance: float,
) -> Change:
    """Speed (:func:`speed_metric`): a large slowdown beyond the two median intervals' facing log-arms."""
    metric = speed_metric(rows)
    b, n = _Side.of(rows[0], metric), _Side.of(rows[1], metric)
    verdict = _nonfinite(key, metric, b.value, n.value)
    if verdict is not None:
        return verdict
    if b.value <= 0:
        return Change(key, metric, b.value, n.value, math.nan, math.nan, math.nan, None, False, False, "no timing")
    ratio = n.value / b.value
    up = math.hypot(_log_arm(b.hi, b.value), _log_arm(n.value, n.lo))  # new above baseline: the facing arms
    down = math.hypot(_log_arm(b.value, b.lo), _log_arm(n.hi, n.value))
    if not (math.isnan(up) or math.isnan(down)) and ratio > 0:
        lo, hi = ratio * math.exp(-up), ratio * math.exp(down)
        slower, faster, note = math.log(ratio) > up, -math.log(ratio) > down, ""
    else:
        lo = hi = math.nan
        slower = faster = True
        note = "no timing interval: ratio alone"
    if metric == SPEED and note == "":
        note = "no machine-speed reference: seconds compared"
    regression = ratio > 1.0 + speed_tolerance and slower
    improvement = ratio < 1.0 / (1.0 + speed_tolerance) and faster
    note = note if regression or improvement else ""
    return Change(key, metric, b.value, n.value, ratio, lo, hi, None, regression, improvement, note)
