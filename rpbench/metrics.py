"""Reduce K independent gradient estimates (or their moments) to metrics with confidence intervals.

Every metric comes with a two-sided interval at ``level`` (default 95 %); the methods, also
listed in the README:

* ``mean`` / ``bias`` — one coordinate: the signed value ± z·SE.  Several coordinates: the norm,
  within ``‖x̂‖ ± r`` where ``r`` bounds ``‖x̂ − x‖`` (a confidence ball).  ``K‖x̂ − x‖²`` is a
  weighted sum of χ²₁ variables, matched to ``a·χ²_ν`` by its first two moments (Satterthwaite);
  the ball is exact for one coordinate and conservative for the norm.
* ``variance`` (trace of the covariance), ``variance_per_coord``, ``mse`` — each is the mean of
  squared distances ``u_k``; the interval is the hull of two distribution-free intervals for a
  mean of u: on the log scale, ``log v̂ ± z·sd(u)/(√K·ū)`` (it widens with the kurtosis; Bonett
  2006, "Approximate confidence interval for standard deviation of nonnormal distributions"),
  and Hall's (1992) skewness-corrected transformation of the studentised mean ("On the removal
  of skewness by transformation", JRSS B 54).  The normal-theory χ² interval is far too narrow
  for heavy-tailed score-function estimates; this one stays near its nominal level.
* ``snr`` and ``work_variance`` — combined from the intervals of their factors, each at level
  ``1 − α/2`` (Bonferroni), so the combined interval has at least the nominal level.
* ``cosine`` — mean of the per-estimate cosine ± z·SE, clipped to [−1, 1].
* ``sec_per_estimate`` — Student-t interval over the timed repeats.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import torch

from rpbench.columns import metric_columns
from rpbench.moments import GroupMoments, Moments

# ``bias_significant``: the bias is further from zero than 4 standard errors (two-sided level of
# a ±4σ normal interval), strict enough that unbiased rows of a large sweep are rarely flagged.
# The standard error there is taken at the upper end of the variance interval.
SIGNIFICANT_LEVEL = 1.0 - 2.0 * NormalDist().cdf(-4.0)


COLUMNS: tuple[str, ...] = metric_columns()
"""The metric columns of a row, in CSV order."""


@dataclass(frozen=True)
class Interval:
    """A point estimate with its confidence interval."""

    value: float
    lo: float
    hi: float


def _z(level: float) -> float:
    return NormalDist().inv_cdf(0.5 + level / 2.0)


def _log_scale_interval(u: torch.Tensor, scale: float, level: float) -> Interval:
    """Interval for ``scale · E[u]`` (u ≥ 0): the hull of two distribution-free intervals.

    Both use only the sample moments of ``u``: the log-scale interval (delta method, Bonett
    2006) and Hall's (1992) cubic transformation of the studentised mean, which corrects for the
    skewness of ``u``.  Where u is heavy-tailed the sample underestimates that skewness and each
    interval alone undercovers; their hull keeps close to the nominal level (README, "Confidence
    intervals", has the simulated coverage).
    """
    k = u.numel()
    mean = float(u.mean())
    value = scale * mean
    if mean <= 0.0:
        return Interval(value, 0.0, 0.0)
    sd = float(u.std())
    z = _z(level)
    width = z * sd / (math.sqrt(k) * mean)
    lo, hi = value * math.exp(-width), value * math.exp(width)
    if sd > 0.0:
        skew = float(((u - mean) ** 3).mean()) / sd**3
        lo_hall = mean - sd * _hall_inverse(z / math.sqrt(k), skew, k)
        hi_hall = mean - sd * _hall_inverse(-z / math.sqrt(k), skew, k)
        lo, hi = min(lo, scale * max(lo_hall, 0.0)), max(hi, scale * hi_hall)
    return Interval(value, lo, hi)


def _hall_inverse(x: float, skew: float, k: int) -> float:
    """Inverse of Hall's transformation ``g(w) = w + γw²/3 + γ²w³/27 + γ/(6k)`` (monotone in w)."""
    shifted = x - skew / (6.0 * k)
    if abs(skew) < 1e-8:
        return shifted
    return 3.0 / skew * (math.copysign(abs(1.0 + skew * shifted) ** (1.0 / 3.0), 1.0 + skew * shifted) - 1.0)


def _mean_interval(x: torch.Tensor, level: float) -> Interval:
    k = x.numel()
    value = float(x.mean())
    half = _z(level) * float(x.std()) / math.sqrt(k)
    return Interval(value, value - half, value + half)


def _ball_radius(stats: GroupMoments, level: float, extra: torch.Tensor | None = None, inflate: float = 1.0) -> float:
    """Radius r with P(‖x̂ − x‖ ≤ r) ≈ level for x̂ the mean of the K estimates behind ``stats``.

    ``extra`` adds independent per-coordinate variances (a reference's squared standard errors);
    ``inflate`` scales the estimates' spread (a conservative standard error).  ``x̂ − x`` has
    covariance ``S = Σ/K + diag(extra)``; ``‖x̂ − x‖²`` is matched to ``a·χ²_ν`` by its first two
    moments, ``a = tr(S²)/tr(S)``, ``ν = tr(S)²/tr(S²)``.
    """
    k, p = stats.k, stats.p
    column_var = stats.column_var * inflate**2
    trace = float(column_var.sum()) / k
    cross = 0.0
    extra_trace = extra_sq = 0.0
    if extra is not None:
        extra = extra.to(column_var.device, torch.float64)
        extra_trace, extra_sq = float(extra.sum()), float((extra**2).sum())
        cross = 2.0 * float((column_var * extra).sum()) / k
    total = trace + extra_trace
    if total <= 0.0:
        return 0.0
    trace_sq = stats.trace_sq * inflate**4 / k**2 + cross + extra_sq
    trace_sq = min(max(trace_sq, total**2 / p), total**2)  # 1 ≤ ν ≤ P
    scale, dof = trace_sq / total, total**2 / trace_sq
    from scipy.stats import chi2  # imported on first use: scipy.stats is slow to import

    return math.sqrt(scale * float(chi2.ppf(level, dof)))


def _norm_or_signed(
    point: torch.Tensor, stats: GroupMoments, level: float, extra: torch.Tensor | None = None, inflate: float = 1.0
) -> Interval:
    """A vector's norm (or a scalar's signed value) with its confidence interval."""
    radius = _ball_radius(stats, level, extra, inflate)
    if point.numel() == 1:
        value = float(point.reshape(()))
        return Interval(value, value - radius, value + radius)
    norm = float(point.norm())
    return Interval(norm, max(0.0, norm - radius), norm + radius)


def _ratio(num: Interval, den: Interval) -> Interval:
    def divide(a: float, b: float) -> float:
        return a / b if b > 0 else (math.inf if a > 0 else math.nan)

    return Interval(divide(num.value, den.value), divide(num.lo, den.hi), divide(num.hi, den.lo))


def summarize(
    estimates: torch.Tensor | GroupMoments,
    exact: torch.Tensor | None,
    seconds: Sequence[float],
    level: float = 0.95,
    exact_se: torch.Tensor | None = None,
) -> dict[str, float]:
    """Metrics and their ``_lo``/``_hi`` bounds for one parameter group.

    ``estimates`` is ``(K, P)`` — K independent estimates of a P-coordinate gradient — or their
    statistics accumulated chunk by chunk (:class:`rpbench.moments.GroupMoments`, built with the
    same ``exact``).  ``exact`` is the true gradient (``None`` where unknown: the truth-dependent
    metrics are NaN), and ``exact_se`` its per-coordinate standard error where it is itself an
    estimate (a reference): the bias interval then includes it.  ``seconds`` holds the
    wall-clock time of each timed repeat of all K estimates.
    """
    if isinstance(estimates, torch.Tensor):
        if estimates.shape[0] < 2:
            raise ValueError("need at least two estimates")
        stats = Moments.of(estimates.reshape(estimates.shape[0], -1), exact)
    else:
        stats = estimates
    k, p = stats.k, stats.p
    if k < 2:
        raise ValueError("need at least two estimates")
    bonferroni = 1.0 - (1.0 - level) / 2.0
    mean, u = stats.mean, stats.u
    out: dict[str, float] = {"n_coords": p}

    def put(name: str, interval: Interval) -> None:
        out[name], out[f"{name}_lo"], out[f"{name}_hi"] = interval.value, interval.lo, interval.hi

    put("mean", _norm_or_signed(mean, stats, level))
    variance = _log_scale_interval(u, k / (k - 1), level)
    put("variance", variance)
    put("variance_per_coord", Interval(variance.value / p, variance.lo / p, variance.hi / p))
    mean_u = float(u.mean())
    out["kurtosis"] = float((u**2).mean()) / mean_u**2 if mean_u > 0 else math.nan

    nan = Interval(math.nan, math.nan, math.nan)
    if exact is None:
        out["exact"] = math.nan
        put("bias", nan)
        out["bias_significant"] = False
        put("mse", nan)
        put("cosine", nan)
    else:
        if stats.error_sq is None or stats.cosine is None:
            raise ValueError("the statistics were accumulated without the truth: pass exact to Moments")
        truth = exact.detach().to(mean.device, torch.float64).reshape(-1)
        out["exact"] = float(truth[0]) if p == 1 else float(truth.norm())
        extra = None if exact_se is None else exact_se.reshape(-1).to(mean.device, torch.float64) ** 2
        put("bias", _norm_or_signed(mean - truth, stats, level, extra))
        # Conservative: 4 SE, with the SE taken at the upper end of the variance interval, since
        # heavy-tailed estimates make the sample variance (and so the SE) too small.
        inflate = math.sqrt(variance.hi / variance.value) if variance.value > 0 else 1.0
        strict = _norm_or_signed(mean - truth, stats, SIGNIFICANT_LEVEL, extra, inflate)
        out["bias_significant"] = strict.lo > 0 or strict.hi < 0
        put("mse", _log_scale_interval(stats.error_sq, 1.0, level))
        if float(truth.norm()) > 0:
            c = _mean_interval(stats.cosine, level)
            put("cosine", Interval(c.value, max(-1.0, c.lo), min(1.0, c.hi)))
        else:
            put("cosine", nan)

    mean_wide = _norm_or_signed(mean, stats, bonferroni)
    mean_abs = Interval(abs(mean_wide.value), *sorted(map(abs, (mean_wide.lo, mean_wide.hi))))
    if p == 1 and mean_wide.lo <= 0.0 <= mean_wide.hi:
        mean_abs = Interval(mean_abs.value, 0.0, mean_abs.hi)
    variance_wide = _log_scale_interval(u, k / (k - 1), bonferroni)
    sd_wide = Interval(*(math.sqrt(x) for x in (variance_wide.value, variance_wide.lo, variance_wide.hi)))
    put("snr", _ratio(mean_abs, sd_wide))

    per_estimate = torch.tensor([s / k for s in seconds], dtype=torch.float64)
    put("sec_per_estimate", _time_interval(per_estimate, level))
    time_wide = _time_interval(per_estimate, bonferroni)
    put(
        "work_variance",
        Interval(variance.value * time_wide.value, variance_wide.lo * time_wide.lo, variance_wide.hi * time_wide.hi),
    )
    return {name: out[name] for name in COLUMNS}


def _time_interval(times: torch.Tensor, level: float) -> Interval:
    value = float(times.mean())
    if times.numel() < 2:
        return Interval(value, math.nan, math.nan)
    from scipy.stats import t as student_t

    quantile = float(student_t.ppf(0.5 + level / 2.0, times.numel() - 1))
    half = quantile * float(times.std()) / math.sqrt(times.numel())
    return Interval(value, max(0.0, value - half), value + half)


COORD_METRICS: tuple[str, ...] = ("mean", "exact", "bias", "variance", "se")
"""What :func:`per_coordinate` gives for each coordinate (the columns of ``coords.csv``)."""


def per_coordinate(estimates: torch.Tensor | GroupMoments, exact: torch.Tensor | None) -> dict[str, torch.Tensor]:
    """Per-coordinate mean, exact value, bias, variance and standard error of the mean."""
    if isinstance(estimates, torch.Tensor):
        estimates = Moments.of(estimates.reshape(estimates.shape[0], -1))
    mean, variance = estimates.mean, estimates.column_var
    truth = (
        torch.full_like(mean, math.nan) if exact is None else exact.detach().to(mean.device, torch.float64).reshape(-1)
    )
    return {
        "mean": mean,
        "exact": truth,
        "bias": mean - truth,
        "variance": variance,
        "se": (variance / estimates.k).sqrt(),
    }
