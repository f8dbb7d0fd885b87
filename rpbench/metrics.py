"""Reduce K independent gradient estimates (or their moments) to metrics with confidence intervals.

Every metric comes with a two-sided interval at ``level`` (default 95 %); the methods, also
listed in the README:

* ``mean`` / ``bias`` — one coordinate: the signed value, within the hull of a Student-t interval
  ``value ± t_m·SE`` and Hall's (1992) skewness-corrected studentised interval.  Several
  coordinates: the norm, within ``‖x̂‖ ± r`` where ``r`` bounds ``‖x̂ − x‖`` (a confidence ball).
  ``K‖x̂ − x‖²`` is a weighted sum of χ²₁ variables, matched to ``a·χ²_ν`` by its first two moments
  (Satterthwaite 1946); the spread behind ``a`` is itself estimated, from K values ``u_k`` of
  kurtosis κ, so it counts as ``χ²_m/m`` with ``m = 2K/(κ − 1)`` degrees of freedom and
  ``r² = a·ν·F_{ν,m}(level)``: as wide as the χ² ball for light tails, wider for heavy ones
  (``F(1, m) = t_m²``, the same m as the one-coordinate t).  The ball is conservative for the norm.
  Satterthwaite (1946), "An approximate distribution of estimates of variance components",
  Biometrics Bulletin 2.  ``snr``'s interval uses this mean interval; ``bias_significant`` keeps
  the normal-theory ball (with its inflated SE, below).
* ``bias_debiased`` — ``‖bias‖`` with the noise floor removed, ``√max(0, ‖m − e‖² − tr(Σ)/K −
  Σ exact_se²)`` (``bias`` itself is ≈ ``√(tr(Σ)/K)`` for an unbiased estimator); the interval
  inverts the noncentral F distribution of ``‖m − e‖²/tr Ŝ`` in its noncentrality ``‖b‖²/a``
  (a noncentrality interval: Steiger & Fouladi 1997).
* ``tail_warning`` — :func:`tail_unreliable`: the relative SE ``√((κ − 1)/K)`` of the variance
  estimate exceeds 0.3, so K is too small for the intervals to be trusted.
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
* ``sec_per_estimate`` — the median of the timed values (each a calibrated pass over the K
  estimates, :mod:`rpbench.timing`) over K, with the distribution-free order-statistic interval
  for a median (NaN where there are too few values for ``level``: 6 for 95 %);
  ``sec_per_estimate_min`` the least of them.  ``relative_cost`` — the same for the ratios of each
  value to the machine-speed reference timed right before it (a cost in reference workloads).
* ``eval_variance`` — variance × the estimator's evaluations of f per estimate (an exact count), so
  its interval is the variance's scaled: the variance at a budget of one evaluation, the quantity
  equal-cost comparisons rank by (``work_variance`` is the same in seconds).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import torch

from rpbench.columns import metric_columns
from rpbench.moments import GroupMoments, Moments
from rpbench.timing import median_interval

# ``bias_significant``: the bias is further from zero than 4 standard errors (two-sided level of
# a ±4σ normal interval), strict enough that unbiased rows of a large sweep are rarely flagged.
# The standard error there is taken at the upper end of the variance interval.
SIGNIFICANT_LEVEL = 1.0 - 2.0 * NormalDist().cdf(-4.0)

ROUND_OFF_EPS = 64
"""A bias within ``ROUND_OFF_EPS · eps · (1 + |exact|)`` per coordinate (eps: the estimates' machine
epsilon) is round-off: an exact estimator of zero variance (DisARM on a one-variable toy, the delta
method on a quadratic) is not flagged ``bias_significant`` for it."""

TAIL_REL_SE = 0.3
"""``tail_warning`` (:func:`tail_unreliable`): the largest relative standard error ``√((κ − 1)/K)``
of the variance estimate at which its interval is still trusted."""


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


def _kurtosis(u: torch.Tensor) -> float:
    """``mean(u²)/mean(u)²`` (the ``kurtosis`` column); NaN where every u is 0."""
    mean_u = float(u.mean())
    return float((u**2).mean()) / mean_u**2 if mean_u > 0 else math.nan


def tail_unreliable(kurtosis: float, k: int) -> bool:
    """Whether the estimates are too heavy-tailed for K: their intervals cannot be trusted at this K.

    The variance is the mean of the K values ``u_k = ‖g_k − ḡ‖²``; its relative standard error is
    ``√((κ − 1)/K)`` with ``κ = E[u²]/E[u]²`` (the ``kurtosis`` column; ``√(2/K)`` for one normal
    coordinate).  True where that exceeds :data:`TAIL_REL_SE` (0.3), i.e. where
    ``K < (κ − 1)/0.09`` (:func:`reliable_samples`): at K = 1000, a kurtosis above 91.  In
    simulation (README, "Confidence intervals"; ``scripts/variance_ci_coverage.py``) it fires in
    ≤ 1 % of draws where the variance interval covers ≥ 94 % (normal estimates, or K = 10⁴) and
    in half to nearly all draws where it covers 87–92 % (kurtosis 40–250 at K = 200).  A
    relative SE of 0.3 puts the 95 % log-scale interval at about ×/÷ 1.8.  The sample kurtosis
    underestimates a heavy tail the draws have not reached, so the rule is one-sided: when it
    fires, draw more; when it does not, nothing is guaranteed.  False where the kurtosis is NaN
    (no spread).
    """
    if not math.isfinite(kurtosis) or k < 1:
        return False
    return (kurtosis - 1.0) / k > TAIL_REL_SE**2


def reliable_samples(kurtosis: float) -> int:
    """The smallest K at which :func:`tail_unreliable` is False for this kurtosis (2 where it is NaN)."""
    if not math.isfinite(kurtosis):
        return 2
    return max(2, math.ceil((kurtosis - 1.0) / TAIL_REL_SE**2 * (1.0 + 1e-12)))


@dataclass(frozen=True)
class _Spread:
    """The covariance ``S`` of ``x̂ − x`` summarised for the Satterthwaite ball (see :func:`_spread`)."""

    trace: float
    """``tr S``."""
    trace_sq: float
    """``tr S²``, clipped to ``[tr(S)²/P, tr(S)²]`` (so that ``1 ≤ ν ≤ P``)."""
    dof: float
    """Effective degrees of freedom ``m`` of the estimate of ``tr S`` (``inf``: as if known)."""

    @property
    def scale(self) -> float:
        return self.trace_sq / self.trace

    @property
    def nu(self) -> float:
        return self.trace**2 / self.trace_sq


def _spread(stats: GroupMoments, extra: torch.Tensor | None = None, inflate: float = 1.0) -> _Spread:
    """``tr S``, ``tr S²`` and the degrees of freedom of the estimate of ``tr S``.

    ``x̂ − x`` has covariance ``S = Σ/K + diag(extra)``: ``extra`` adds independent per-coordinate
    variances (a reference's squared standard errors); ``inflate`` scales the estimates' spread
    (a conservative standard error).  ``‖x̂ − x‖²`` is matched to ``a·χ²_ν`` by its first two
    moments, ``a = tr(S²)/tr(S)``, ``ν = tr(S)²/tr(S²)`` (Satterthwaite 1946).  The estimate of
    ``tr(Σ)/K`` is the mean of the K values ``u_k``, over K; its relative variance is
    ``(κ − 1)/K`` with κ the kurtosis of u, and a scaled ``χ²_m/m`` with that relative variance
    has ``m = 2K/(κ − 1)`` degrees of freedom (``m ≈ K`` for one normal coordinate, ``K·P`` for
    P independent ones).  The reference's variances count as known (Welch–Satterthwaite:
    ``m_S = m·(tr S / tr(Σ/K))²``).
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
        return _Spread(0.0, 0.0, math.inf)
    trace_sq = stats.trace_sq * inflate**4 / k**2 + cross + extra_sq
    trace_sq = min(max(trace_sq, total**2 / p), total**2)  # 1 ≤ ν ≤ P
    kurtosis = _kurtosis(stats.u)
    known = not (trace > 0.0 and kurtosis > 1.0)
    dof = math.inf if known else 2.0 * k / (kurtosis - 1.0) * (total / trace) ** 2
    return _Spread(total, trace_sq, dof)


_KNOWN_DOF = 1e7
"""Degrees of freedom above which the estimated ``tr S`` counts as known (F becomes χ²/ν)."""


def _ball_quantile(level: float, nu: float, dof: float) -> float:
    """Quantile of ``‖x̂ − x‖²/a``: ``ν·F(ν, m)`` with the trace estimated, ``χ²_ν`` where it is known."""
    from scipy.stats import chi2, f  # imported on first use: scipy.stats is slow to import

    if dof > _KNOWN_DOF:
        return float(chi2.ppf(level, nu))
    return nu * float(f.ppf(level, nu, dof))


def _ball_radius(
    stats: GroupMoments,
    level: float,
    extra: torch.Tensor | None = None,
    inflate: float = 1.0,
    robust: bool = True,
) -> float:
    """Radius r with P(‖x̂ − x‖ ≤ r) ≈ level for x̂ the mean of the K estimates behind ``stats``.

    ``r² = a·ν·F_{ν,m}(level)`` (:func:`_spread`): ``‖x̂ − x‖²/(a·ν)`` over the estimated trace's
    ``χ²_m/m`` is F-distributed, as a Student-t for one coordinate (``F(1, m) = t_m²``).  The
    heavier the tails, the smaller m and the wider the ball; with light tails m ≈ K·P and it is
    the χ² ball.  ``robust=False`` takes the trace as known (``r² = a·χ²_ν(level)``), as the 4-SE
    ``bias_significant`` test does with its inflated spread.
    """
    spread = _spread(stats, extra, inflate)
    if spread.trace <= 0.0:
        return 0.0
    dof = spread.dof if robust else math.inf
    return math.sqrt(spread.scale * _ball_quantile(level, spread.nu, dof))


def _signed_interval(value: float, stats: GroupMoments, level: float, extra: torch.Tensor | None = None) -> Interval:
    """One coordinate's signed mean (or bias: ``value`` = mean − truth) with its interval.

    The hull of two intervals: Student-t with the effective degrees of freedom m of
    :func:`_spread` (``value ± t_m·SE``), and Hall's (1992) skewness-corrected studentised
    interval ``(x̄ − s·g⁻¹(z/√K), x̄ − s·g⁻¹(−z/√K))`` with the coordinate's sample skewness
    (:func:`_hall_inverse`).  Where the estimates are right-skewed and heavy-tailed
    (score-function estimates), the sample mean falls below the truth in most draws, together
    with a small sample SD, and the symmetric interval misses on the high side; Hall's interval
    reaches further up there.  A reference truth's SE (``extra``, its square) is added in
    quadrature to each of Hall's half-widths (the two errors are independent).
    """
    spread = _spread(stats, extra)
    if spread.trace <= 0.0:
        return Interval(value, value, value)
    half = math.sqrt(spread.trace * _ball_quantile(level, 1.0, spread.dof))
    lo, hi = value - half, value + half
    k, sd = stats.k, math.sqrt(float(stats.column_var[0]))
    if stats.column_m3 is not None and sd > 0.0:
        skew = float(stats.column_m3[0]) / sd**3
        z = _z(level)
        below = sd * _hall_inverse(z / math.sqrt(k), skew, k)
        above = -sd * _hall_inverse(-z / math.sqrt(k), skew, k)
        if extra is not None:
            known = z * math.sqrt(float(extra.reshape(-1)[0]))
            below = math.copysign(math.hypot(below, known), below)
            above = math.copysign(math.hypot(above, known), above)
        lo, hi = min(lo, value - below), max(hi, value + above)
    return Interval(value, lo, hi)


def _norm_or_signed(
    point: torch.Tensor,
    stats: GroupMoments,
    level: float,
    extra: torch.Tensor | None = None,
    inflate: float = 1.0,
    robust: bool = True,
) -> Interval:
    """A vector's norm (or a scalar's signed value) with its confidence interval.

    ``robust``: the heavy-tail intervals (:func:`_signed_interval`, the F ball of
    :func:`_ball_radius`); otherwise the normal-theory ones (value ± r, r from the χ² ball).
    """
    if point.numel() == 1:
        value = float(point.reshape(()))
        if robust:
            return _signed_interval(value, stats, level, extra)
        radius = _ball_radius(stats, level, extra, inflate, robust=False)
        return Interval(value, value - radius, value + radius)
    radius = _ball_radius(stats, level, extra, inflate, robust)
    norm = float(point.norm())
    return Interval(norm, max(0.0, norm - radius), norm + radius)


def _debiased_norm(
    delta: torch.Tensor, stats: GroupMoments, level: float, extra: torch.Tensor | None = None
) -> Interval:
    """``‖b‖`` with the noise floor removed, for the bias b estimated by ``delta = m − e``.

    ``E‖m − e‖² = ‖b‖² + tr S`` with ``tr S = tr(Σ)/K + Σ exact_se²``, so the point estimate is
    ``√max(0, ‖m − e‖² − tr Ŝ)`` (unbiased for ``‖b‖²`` before the clip).  The interval inverts
    the distribution of ``F = ‖m − e‖²/tr Ŝ``: with the ball's two-moment match (:func:`_spread`),
    ``‖m − e‖² ≈ a·χ'²_ν(λ)``, noncentral χ² with noncentrality ``λ = ‖b‖²/a`` (exact for one
    coordinate and for an isotropic S), and ``tr Ŝ ≈ tr S·χ²_m/m``, so F is noncentral
    ``F(ν, m, λ)`` (``χ'²_ν(λ)/ν`` where m is large).  The equal-tailed Neyman interval for λ —
    ``λ_lo`` where ``P(F ≤ F_obs; λ) = 1 − α/2`` (0 where even λ = 0 gives less), ``λ_hi`` where it
    is ``α/2`` — gives ``‖b‖ ∈ [√(a·λ_lo), √(a·λ_hi)]``.  Where ``F_obs < 1`` (the distance is
    below its noise floor: the estimate is 0) the upper end is the one for ``F_obs = 1``, so that
    it never collapses to 0 (conservative).
    """
    spread = _spread(stats, extra)
    d2 = float(delta @ delta)
    if spread.trace <= 0.0:
        distance = math.sqrt(d2)
        return Interval(distance, distance, distance)
    value = math.sqrt(max(0.0, d2 - spread.trace))
    f_obs = d2 / spread.trace
    alpha = 1.0 - level
    lam_lo = _noncentrality(f_obs, spread.nu, spread.dof, 1.0 - alpha / 2.0)
    lam_hi = _noncentrality(max(f_obs, 1.0), spread.nu, spread.dof, alpha / 2.0)
    lo = min(value, math.sqrt(spread.scale * lam_lo))
    return Interval(value, lo, max(value, math.sqrt(spread.scale * lam_hi)))


def _noncentrality(f_obs: float, nu: float, dof: float, target: float) -> float:
    """The λ ≥ 0 with ``P(F ≤ f_obs) = target`` for F noncentral ``F(ν, m, λ)``; 0 where λ = 0 gives less.

    The probability falls as λ grows.  Far beyond the noise (``ν·(f_obs − 1) > 10⁶``) the normal
    approximation ``√λ ≈ √(ν·f_obs) + z_target`` replaces the noncentral distribution.
    """
    from scipy.optimize import brentq
    from scipy.stats import ncf, ncx2

    def below(lam: float) -> float:
        """P(F ≤ f_obs; λ); where scipy's noncentral F gives NaN (large λ), the noncentral χ² (m
        large) and then the normal approximation of √χ'² (λ large) stand in."""
        p = float(ncx2.cdf(nu * f_obs, nu, lam)) if dof > _KNOWN_DOF else float(ncf.cdf(f_obs, nu, dof, lam))
        if not math.isfinite(p):
            p = float(ncx2.cdf(nu * f_obs, nu, lam))
        if not math.isfinite(p):
            p = NormalDist().cdf(math.sqrt(nu * f_obs) - math.sqrt(lam))
        return p

    if nu * (f_obs - 1.0) > 1e6:
        root = math.sqrt(nu * f_obs) + NormalDist().inv_cdf(1.0 - target)
        return max(0.0, root) ** 2
    if below(0.0) <= target:
        return 0.0
    upper = max(10.0, 4.0 * nu * f_obs)
    for _ in range(60):
        if below(upper) < target:
            break
        upper *= 2.0
    return float(brentq(lambda lam: below(lam) - target, 0.0, upper, xtol=1e-12, rtol=1e-10))


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
    reference: Sequence[float] = (),
    evaluations: int | None = None,
    eps: float = float(torch.finfo(torch.float64).eps),
) -> dict[str, float]:
    """Metrics and their ``_lo``/``_hi`` bounds for one parameter group.

    ``estimates`` is ``(K, P)`` — K independent estimates of a P-coordinate gradient — or their
    statistics accumulated chunk by chunk (:class:`rpbench.moments.GroupMoments`, built with the
    same ``exact``).  ``exact`` is the true gradient (``None`` where unknown: the truth-dependent
    metrics are NaN), and ``exact_se`` its per-coordinate standard error where it is itself an
    estimate (a reference): the bias interval then includes it.  ``seconds`` holds the
    wall-clock time of one pass over all K estimates per timed value, ``reference`` the
    machine-speed reference's seconds timed beside each (:func:`rpbench.timing.time_cell`).
    ``evaluations`` is the estimator's count of f evaluations per estimate (``None``: unknown, and
    ``eval_variance`` is NaN).  ``eps`` is the machine epsilon of the estimates' precision: a bias
    below its round-off (:data:`ROUND_OFF_EPS`) is never ``bias_significant``.
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
    out["kurtosis"] = _kurtosis(u)
    out["tail_warning"] = tail_unreliable(out["kurtosis"], k)

    nan = Interval(math.nan, math.nan, math.nan)
    if exact is None:
        out["exact"] = math.nan
        put("bias", nan)
        put("bias_debiased", nan)
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
        put("bias_debiased", _debiased_norm(mean - truth, stats, level, extra))
        # Conservative: 4 SE, with the SE taken at the upper end of the variance interval, since
        # heavy-tailed estimates make the sample variance (and so the SE) too small.
        inflate = math.sqrt(variance.hi / variance.value) if variance.value > 0 else 1.0
        strict = _norm_or_signed(mean - truth, stats, SIGNIFICANT_LEVEL, extra, inflate, robust=False)
        round_off = float((ROUND_OFF_EPS * eps * (1.0 + truth.abs())).norm())
        out["bias_significant"] = (strict.lo > 0 or strict.hi < 0) and float((mean - truth).norm()) > round_off
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

    per_estimate = [s / k for s in seconds]
    time = median_interval(per_estimate, level)
    put("sec_per_estimate", Interval(time.median, time.lo, time.hi))
    out["sec_per_estimate_min"] = time.minimum
    time_wide = median_interval(per_estimate, bonferroni)
    put(
        "work_variance",
        Interval(variance.value * time_wide.median, variance_wide.lo * time_wide.lo, variance_wide.hi * time_wide.hi),
    )
    pairs = zip(per_estimate, reference, strict=True) if reference else ()
    relative = median_interval([t / r for t, r in pairs if r > 0], level)
    put("relative_cost", Interval(relative.median, relative.lo, relative.hi))
    out["evaluations"] = math.nan if evaluations is None else evaluations
    cost = math.nan if evaluations is None else float(evaluations)
    put("eval_variance", Interval(variance.value * cost, variance.lo * cost, variance.hi * cost))
    return {name: out[name] for name in COLUMNS}


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
