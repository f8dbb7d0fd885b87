"""A statistical regression gate: compare two ``results.csv`` tables row by row.

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
* ``sec_per_estimate`` (always compared) — timing is machine-dependent, so only large slowdowns
  count: a speed regression when NEW/BASELINE exceeds ``1 + speed_tolerance`` and the increase
  exceeds the root-sum-square of the two Student-t half-widths (at the tables' own level; with
  one timed repeat there is no interval and the ratio alone decides).

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

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pandas as pd
from rich.table import Table

from rpbench.errors import UsageError
from rpbench.metrics import COLUMNS
from rpbench.results import META_FILE, RESULTS_FILE

MEASURED: frozenset[str] = frozenset(COLUMNS) | {
    "exact_se",
    "setup_seconds",
    "chunk",
    "truth",
    "biased",
    "status",
    "error",
    "cell_seed",
}
"""Columns produced by the measurement; every other column is part of a row's configuration key."""

LOWER_IS_BETTER = ("variance", "variance_per_coord", "mse")
HIGHER_IS_BETTER = ("snr", "cosine")
METRICS: tuple[str, ...] = ("variance", "variance_per_coord", "mse", "bias", "snr", "cosine")
"""Metrics ``compare`` accepts; ``sec_per_estimate`` is always compared, separately."""
SPEED = "sec_per_estimate"

DEFAULT_CI_LEVEL = 0.95
"""Level of the stored intervals when no ``run.json`` beside the CSV says otherwise."""
ZERO = 1e-12
"""Relative threshold under which a variance (× squared gradient scale) or bias counts as zero."""

FLIP_NOTE = "bias now significant (bias_significant False→True)"
REQUIRED = ("task", "estimator", "group", "variance")
BASELINE, NEW = "BASELINE", "NEW"


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
        prefix = "speed " if self.metric == SPEED else ""
        if self.regression:
            return prefix + "regression"
        if self.improvement:
            return prefix + "improvement"
        return ""


@dataclass
class Comparison:
    """Every comparison made (``changes``, also the unchanged ones), and the failures among them."""

    changes: list[Change]
    regressions: list[Change]
    speed_regressions: list[Change]
    matched: int

    @property
    def improvements(self) -> list[Change]:
        """Changes that are significantly better (speed included)."""
        return [c for c in self.changes if c.improvement]

    @property
    def failed(self) -> bool:
        """Whether the gate fails: any metric or speed regression."""
        return bool(self.regressions or self.speed_regressions)


# ---------------------------------------------------------------------------------------------
# Loading


def load_table(path: Path) -> pd.DataFrame:
    """Read a ``results.csv`` (or a run folder holding one) written by ``rpbench run``.

    The level of the stored intervals is taken from ``run.json`` beside the CSV (``options.level``)
    and kept in ``frame.attrs["ci_level"]`` (95 % where there is none).  A :class:`UsageError`
    (one line) where the path is missing or unreadable, or the file is not an rpbench table.
    """
    path = Path(path)
    csv = path / RESULTS_FILE if path.is_dir() else path
    if path.is_dir() and not csv.is_file():
        raise UsageError(f"{path}: a folder without {RESULTS_FILE}; give a results.csv or a run folder that has one")
    if not path.exists():
        raise UsageError(f"{path}: no such file or folder; give a results.csv or a run folder")
    try:
        frame = pd.read_csv(csv)
    except (OSError, UnicodeDecodeError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        reason = " ".join(str(getattr(exc, "strerror", None) or exc).split())
        raise UsageError(f"{csv}: cannot read it as a CSV table ({reason})") from None
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise UsageError(f"{csv}: not an rpbench results table (no column {', '.join(missing)})")
    if frame.empty:
        raise UsageError(f"{csv}: an rpbench results table without rows")
    frame.attrs["source"] = str(csv)
    frame.attrs["ci_level"] = _stored_level(csv.parent / META_FILE)
    return frame


def _stored_level(meta: Path) -> float:
    try:
        options = json.loads(meta.read_text(encoding="utf-8")).get("options", {})
        level = float(options.get("level", DEFAULT_CI_LEVEL))
    except (OSError, ValueError, TypeError, AttributeError):
        return DEFAULT_CI_LEVEL
    return level if 0.0 < level < 1.0 else DEFAULT_CI_LEVEL


# ---------------------------------------------------------------------------------------------
# Matching rows


def _canonical(value: object) -> str:
    """A key value as text such that NaN/empty match each other and ``1`` matches ``1.0``."""
    if value is None or value is pd.NA:
        return ""
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in ("", "nan", "none"):
            return ""
        try:
            return str(int(text))
        except ValueError:
            pass
        try:
            number = float(text)
        except ValueError:
            return text
    else:
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return str(value)
    if math.isnan(number):
        return ""
    return str(int(number)) if number.is_integer() and abs(number) < 2**53 else repr(number)


def _plain(value: object) -> object:
    """A key value for :class:`Change`: NaN becomes ``None``, numpy scalars Python ones."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    item = getattr(value, "item", None)
    return item() if callable(item) else value


def key_columns(frame: pd.DataFrame) -> list[str]:
    """The configuration columns: every column not produced by the measurement."""
    return [c for c in frame.columns if c not in MEASURED]


def _describe(key: Mapping[str, object], shown: Sequence[str], sep: str = ", ") -> str:
    return sep.join(f"{c}={key[c]}" for c in shown if c in key and key[c] is not None)


def _index(frame: pd.DataFrame, keys: Sequence[str], label: str, shown: Sequence[str]) -> dict[tuple[str, ...], int]:
    index: dict[tuple[str, ...], int] = {}
    duplicates: list[int] = []
    for position, row in enumerate(frame[list(keys)].itertuples(index=False, name=None)):
        canonical = tuple(_canonical(v) for v in row)
        if canonical in index:
            duplicates.append(position)
        else:
            index[canonical] = position
    if duplicates:
        first = {c: _plain(frame[c].iloc[duplicates[0]]) for c in keys}
        raise UsageError(
            f"unusable input: {label} has {len(duplicates)} duplicate configuration(s) (rows with the same "
            f"{', '.join(keys)}), e.g. {_describe(first, shown)}"
        )
    return index


def _varying(frames: Iterable[pd.DataFrame], keys: Sequence[str]) -> list[str]:
    """Key columns worth showing: task, estimator, group, and those that vary across the rows."""
    both = pd.concat([f[list(keys)] for f in frames], ignore_index=True)
    always = [c for c in ("task", "estimator", "group") if c in keys]
    return always + [c for c in keys if c not in always and both[c].map(_canonical).nunique() > 1]


def _match(baseline: pd.DataFrame, new: pd.DataFrame) -> tuple[list[str], list[tuple[int, int]]]:
    keys_b, keys_n = key_columns(baseline), key_columns(new)
    if set(keys_b) != set(keys_n):
        only_b = [c for c in keys_b if c not in keys_n]
        only_n = [c for c in keys_n if c not in keys_b]
        parts = [f"only in {label}: {', '.join(cols)}" for label, cols in ((BASELINE, only_b), (NEW, only_n)) if cols]
        raise UsageError(
            f"unusable input: the tables have different configuration columns ({'; '.join(parts)}); "
            "compare runs of the same task and estimator parameters"
        )
    shown = _varying((baseline, new), keys_b)
    index_b = _index(baseline, keys_b, BASELINE, shown)
    index_n = _index(new, keys_b, NEW, shown)
    problems = []
    for label, source, frame, other, other_label in (
        (BASELINE, index_b, baseline, index_n, NEW),
        (NEW, index_n, new, index_b, BASELINE),
    ):
        missing = [position for canonical, position in source.items() if canonical not in other]
        if missing:
            examples = [_describe({c: _plain(frame[c].iloc[p]) for c in keys_b}, shown) for p in missing[:3]]
            more = f" … and {len(missing) - 3} more" if len(missing) > 3 else ""
            problems.append(
                f"{len(missing)} configuration(s) of {label} missing in {other_label}: {'; '.join(examples)}{more}"
            )
    if problems:
        raise UsageError("unusable input: " + " | ".join(problems))
    return keys_b, [(position, index_n[canonical]) for canonical, position in index_b.items()]


# ---------------------------------------------------------------------------------------------
# Tests


def _z(level: float) -> float:
    return NormalDist().inv_cdf(0.5 + level / 2.0)


def _p_two_sided(statistic: float) -> float:
    return 2.0 * (1.0 - NormalDist().cdf(abs(statistic)))


def _float(row: Mapping[str, object], column: str) -> float:
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
        return cls(_float(row, metric), _float(row, f"{metric}_lo"), _float(row, f"{metric}_hi"))

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
    values = [_float(r, c) ** 2 for r in (b, n) for c in ("exact", "mean")]
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


def _variance_like(
    key: dict[str, object],
    metric: str,
    rows: tuple[Mapping[str, object], Mapping[str, object]],
    zs: tuple[float, float, float],
    tolerance: float,
) -> Change:
    b, n = _Side.of(rows[0], metric), _Side.of(rows[1], metric)
    verdict = _nonfinite(key, metric, b.value, n.value)
    if verdict is not None:
        return verdict
    scale = _gradient_scale(*rows)
    if metric == "variance_per_coord":
        scale /= max(_float(rows[0], "n_coords"), 1.0) if math.isfinite(_float(rows[0], "n_coords")) else 1.0
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


def _higher_is_better(
    key: dict[str, object],
    metric: str,
    rows: tuple[Mapping[str, object], Mapping[str, object]],
    zs: tuple[float, float, float],
    tolerance: float,
) -> Change:
    b, n = _Side.of(rows[0], metric), _Side.of(rows[1], metric)
    if metric == "snr" and (math.isinf(b.value) or math.isinf(n.value)):
        # An infinite SNR is a zero variance: judge it by the variance, as for the variance metric.
        variance = _variance_like(key, "variance", rows, zs, tolerance)
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


def _bias(
    key: dict[str, object],
    rows: tuple[Mapping[str, object], Mapping[str, object]],
    zs: tuple[float, float, float],
    tolerance: float,
) -> Change:
    b, n = _Side.of(rows[0], "bias"), _Side.of(rows[1], "bias")
    verdict = _nonfinite(key, "bias", b.value, n.value)
    if verdict is not None:
        return verdict
    se_b, se_n = b.se(zs[0]), n.se(zs[1])
    mag_b, mag_n = abs(b.value), abs(n.value)
    diff = mag_n - mag_b
    tiny = ZERO * math.sqrt(_gradient_scale(*rows))
    ratio = mag_n / mag_b if mag_b > 0 else (1.0 if mag_n == 0 else math.inf)
    flip = not _truthy(rows[0].get("bias_significant")) and _truthy(rows[1].get("bias_significant"))
    note = FLIP_NOTE if flip else ""
    if se_b is None or se_n is None:
        return Change(
            key, "bias", b.value, n.value, ratio, math.nan, math.nan, None, False, False, note or "no interval"
        )
    s = math.hypot(se_b, se_n)
    z = zs[2]
    practical = tolerance * max(mag_b, _z(0.95) * se_b, tiny)
    significant = z * s
    if mag_b > 0:
        lo, hi = max(0.0, mag_n - z * s) / mag_b, (mag_n + z * s) / mag_b
    else:
        lo, hi = (0.0 if mag_n <= z * s else math.inf), math.inf
    p = _p_two_sided(diff / s) if s > 0 else (1.0 if diff == 0 else 0.0)
    regression = diff > significant and diff > practical
    improvement = -diff > significant and -diff > practical
    return Change(key, "bias", b.value, n.value, ratio, lo, hi, p, regression, improvement, note)


def _truthy(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() == "true"
    try:
        return bool(value) and not (isinstance(value, float) and math.isnan(value))
    except (TypeError, ValueError):
        return False


def _speed(
    key: dict[str, object],
    rows: tuple[Mapping[str, object], Mapping[str, object]],
    speed_tolerance: float,
) -> Change:
    b, n = _Side.of(rows[0], SPEED), _Side.of(rows[1], SPEED)
    verdict = _nonfinite(key, SPEED, b.value, n.value)
    if verdict is not None:
        return verdict
    if b.value <= 0:
        return Change(key, SPEED, b.value, n.value, math.nan, math.nan, math.nan, None, False, False, "no timing")
    ratio = n.value / b.value
    diff = n.value - b.value
    halves = [s.hi - s.value for s in (b, n)]
    if all(math.isfinite(h) and h >= 0 for h in halves):
        spread = math.hypot(*halves)
        lo, hi = max(0.0, n.value - spread) / b.value, (n.value + spread) / b.value
        slower, faster, note = diff > spread, -diff > spread, ""
    else:
        lo = hi = math.nan
        slower = faster = True
        note = "no timing interval: ratio alone"
    regression = ratio > 1.0 + speed_tolerance and slower
    improvement = ratio < 1.0 / (1.0 + speed_tolerance) and faster
    note = note if regression or improvement else ""
    return Change(key, SPEED, b.value, n.value, ratio, lo, hi, None, regression, improvement, note)


# ---------------------------------------------------------------------------------------------
# Comparing


def parse_metrics(metrics: Sequence[str] | str) -> list[str]:
    """``"variance,bias"`` or a list into the metrics to compare; a :class:`UsageError` on unknown ones."""
    names = metrics.split(",") if isinstance(metrics, str) else [m for item in metrics for m in str(item).split(",")]
    chosen = list(dict.fromkeys(m.strip() for m in names if m.strip()))
    unknown = [m for m in chosen if m not in METRICS]
    if unknown:
        raise UsageError(
            f"--metric {', '.join(unknown)}: not a comparable metric; valid choices: {', '.join(METRICS)} "
            f"({SPEED} is always compared, see --speed-tolerance)"
        )
    return chosen


def compare(
    baseline: pd.DataFrame,
    new: pd.DataFrame,
    metrics: Sequence[str] = ("variance", "bias"),
    tolerance: float = 0.1,
    speed_tolerance: float = 1.0,
    level: float = 0.99,
) -> Comparison:
    """Compare NEW with BASELINE row by row (module docstring: the tests and their assumptions).

    Rows are matched by their configuration (:func:`key_columns`; NaN matches NaN).  Different
    configuration columns, a row without a match on the other side, or a duplicate configuration
    is a :class:`UsageError`, as is an unknown metric.  ``tolerance`` is the relative change a
    metric may make before it counts, ``speed_tolerance`` the same for ``sec_per_estimate``
    (``math.inf`` switches the speed gate off), ``level`` the confidence level of each test.
    The level of the stored intervals is read from ``frame.attrs["ci_level"]`` (set by
    :func:`load_table`; 95 % otherwise).
    """
    chosen = parse_metrics(metrics)
    if not (tolerance >= 0 and math.isfinite(tolerance)):
        raise UsageError(f"--tolerance {tolerance}: a relative tolerance is a finite number >= 0, e.g. 0.1")
    if not speed_tolerance >= 0:
        raise UsageError(f"--speed-tolerance {speed_tolerance}: a relative tolerance is >= 0, e.g. 1.0 (twice as slow)")
    if not 0.0 < level < 1.0:
        raise UsageError(f"--level {level}: a confidence level lies in (0, 1), e.g. 0.99")
    for frame, label in ((baseline, BASELINE), (new, NEW)):
        missing = [c for c in REQUIRED if c not in frame.columns]
        if missing:
            raise UsageError(f"{label} is not an rpbench results table (no column {', '.join(missing)})")
    wanted = [f"{m}{s}" for m in chosen for s in ("", "_lo", "_hi")]
    if math.isfinite(speed_tolerance):
        wanted.append(SPEED)
    for frame, label in ((baseline, BASELINE), (new, NEW)):
        absent = [c for c in wanted if c not in frame.columns]
        if absent:
            raise UsageError(f"unusable input: {label} has no column {', '.join(absent)}")

    keys, pairs = _match(baseline, new)
    zs = (
        _z(float(baseline.attrs.get("ci_level", DEFAULT_CI_LEVEL))),
        _z(float(new.attrs.get("ci_level", DEFAULT_CI_LEVEL))),
        _z(level),
    )
    records_b, records_n = baseline.to_dict("records"), new.to_dict("records")
    changes: list[Change] = []
    for position_b, position_n in pairs:
        rows = (records_b[position_b], records_n[position_n])
        key = {c: _plain(rows[0][c]) for c in keys}
        for metric in chosen:
            if metric in LOWER_IS_BETTER:
                changes.append(_variance_like(dict(key), metric, rows, zs, tolerance))
            elif metric in HIGHER_IS_BETTER:
                changes.append(_higher_is_better(dict(key), metric, rows, zs, tolerance))
            else:
                changes.append(_bias(dict(key), rows, zs, tolerance))
    if math.isfinite(speed_tolerance):
        changes.extend(_speed_changes(keys, pairs, records_b, records_n, speed_tolerance))
    return Comparison(
        changes=changes,
        regressions=[c for c in changes if c.regression and c.metric != SPEED],
        speed_regressions=[c for c in changes if c.regression and c.metric == SPEED],
        matched=len(pairs),
    )


def _speed_changes(
    keys: Sequence[str],
    pairs: Sequence[tuple[int, int]],
    records_b: Sequence[Mapping[str, object]],
    records_n: Sequence[Mapping[str, object]],
    speed_tolerance: float,
) -> list[Change]:
    """Speed per cell: the groups of a cell share one timing, so it is compared once (key without
    ``group``) where all its rows agree on it in both tables, else row by row."""
    cells: dict[tuple[str, ...], list[tuple[Mapping[str, object], Mapping[str, object]]]] = {}
    for position_b, position_n in pairs:
        rows = (records_b[position_b], records_n[position_n])
        cells.setdefault(tuple(_canonical(rows[0][c]) for c in keys if c != "group"), []).append(rows)
    changes = []
    for members in cells.values():

        def timing(row: Mapping[str, object]) -> tuple[str, ...]:
            return tuple(repr(_float(row, f"{SPEED}{s}")) for s in ("", "_lo", "_hi"))

        shared = len({(timing(b), timing(n)) for b, n in members}) == 1
        for rows in members[:1] if shared else members:
            key = {c: _plain(rows[0][c]) for c in keys if not (shared and c == "group")}
            changes.append(_speed(key, rows, speed_tolerance))
    return changes


# ---------------------------------------------------------------------------------------------
# Console view


def _fmt(value: float) -> str:
    if value is None or math.isnan(value):
        return "–"
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    if value == 0:
        return "0"
    if abs(value) >= 1e4 or abs(value) < 1e-3:
        return f"{value:.2e}"
    return f"{value:.3g}"


_ORDER = {"regression": 0, "speed regression": 1, "improvement": 2, "speed improvement": 3, "": 4}
_STYLE = {"regression": "bold red", "speed regression": "red", "improvement": "green", "speed improvement": "green"}


def changes_table(comparison: Comparison, only_changes: bool = True) -> Table:
    """A rich table of the comparison, regressions first, then speed regressions, then improvements.

    The configuration shows estimator and group and the other key columns that vary between the
    compared rows; ``only_changes`` leaves out rows without a verdict or a note.
    """
    all_keys = list(dict.fromkeys(c for change in comparison.changes for c in change.key))
    varying = [
        c
        for c in all_keys
        if c not in ("estimator", "group")
        and len({_canonical(change.key.get(c)) for change in comparison.changes if c in change.key}) > 1
    ]
    shown = [c for c in comparison.changes if c.verdict or c.note] if only_changes else list(comparison.changes)
    shown.sort(key=lambda c: _ORDER[c.verdict])
    table = Table(
        title=f"rpbench compare: {len(comparison.regressions)} regression(s), "
        f"{len(comparison.speed_regressions)} speed regression(s), {len(comparison.improvements)} improvement(s) "
        f"in {comparison.matched} matched rows",
        caption=None if any(c.verdict for c in shown) else "no significant changes",
    )
    for column, justify in (
        ("configuration", "left"),
        ("metric", "left"),
        ("baseline", "right"),
        ("new", "right"),
        ("ratio (CI)", "right"),
        ("verdict", "left"),
        ("note", "left"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for change in shown:
        key = dict(change.key)
        key.setdefault("group", "all")
        config = _describe(key, ["estimator", "group", *varying], sep=" ")
        ratio = _fmt(change.ratio)
        if not (math.isnan(change.ratio_lo) and math.isnan(change.ratio_hi)):
            ratio += f" ({_fmt(change.ratio_lo)}, {_fmt(change.ratio_hi)})"
        verdict = change.verdict
        table.add_row(
            config,
            change.metric,
            _fmt(change.baseline),
            _fmt(change.new),
            ratio,
            f"[{_STYLE[verdict]}]{verdict}[/]" if verdict else "",
            change.note,
        )
    return table
