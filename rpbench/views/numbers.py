"""Numbers in report tables: a value with its interval as it is, a ratio, round-off, time units.

An interval is shown as it is: ``16.6 [3.5, 82.1]`` where it is asymmetric (heavy-tailed
variance estimates), ``3.98 ± 0.52`` where it is symmetric (a t-interval).  The digits come from
the interval: the shorter arm keeps two significant digits, and every bound keeps two unless the
value would then show more than three; the bounds are rounded outwards (down and up), so the
printed interval contains the computed one.  Powers of ten only where a value leaves [1e-3, 1e4)
(never ``×10^1``).  Below a stated resolution a value is round-off and shows as ``0``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

from rpbench.views.constants import MISSING

PLAIN_RANGE = (1e-3, 1e4)
"""Magnitudes written without a power of ten."""


@dataclass(frozen=True)
class Number:
    """A formatted number: the value's text, its interval's bounds (or ``None``), a power of ten.

    ``symmetric`` marks an interval whose two arms are equal (shown as ``value ± arm``).
    """

    text: str
    lo: str | None = None
    hi: str | None = None
    exponent: int | None = None
    symmetric: bool = False

    @property
    def plus(self) -> str | None:
        """The upper arm ``hi − value`` as decimal text (exact: both are decimals)."""
        return None if self.hi is None else _text(Decimal(self.hi) - Decimal(self.text))

    @property
    def minus(self) -> str | None:
        """The lower arm ``value − lo`` as decimal text."""
        return None if self.lo is None else _text(Decimal(self.text) - Decimal(self.lo))

    @property
    def arm(self) -> str | None:
        """The larger arm (the ``±`` of a symmetric interval)."""
        if self.plus is None or self.minus is None:
            return None
        return max(self.plus, self.minus, key=Decimal)


def _text(number: Decimal) -> str:
    text = format(number, "f")
    return text[1:] if text.startswith("-") and Decimal(text) == 0 else text


def _magnitude(value: float) -> int:
    return math.floor(math.log10(abs(value)))


def _rounded(value: float, decimals: int, rounding: str = ROUND_HALF_EVEN) -> str:
    """``value`` rounded to ``decimals`` places (negative: tens, hundreds, …) in fixed notation."""
    exact = Decimal(f"{value:.12g}")  # 12 digits: float noise (82.1000000001) must not round up
    return _text(exact.quantize(Decimal(1).scaleb(-decimals), rounding=rounding))


def significant(value: float, digits: int = 3) -> str:
    """``value`` to ``digits`` significant digits in fixed notation."""
    if value == 0:
        return "0"
    return _rounded(value, max(0, digits - 1 - _magnitude(value)))


def _decimals(value: float, lo: float, hi: float) -> int | None:
    """The decimal place the interval supports (``None``: it has no width)."""
    arms = [a for a in (value - lo, hi - value) if a > 0]
    if not arms:
        return None
    from_arm = 1 - _magnitude(min(arms))
    bounds = [abs(b) for b in (lo, hi) if b != 0]
    from_bounds = 1 - _magnitude(min(bounds)) if bounds else from_arm
    from_value = 2 - _magnitude(value) if value != 0 else from_arm
    return max(from_arm, min(from_bounds, from_value))


def _is_symmetric(value: float, lo: float, hi: float) -> bool:
    return math.isclose(hi - value, value - lo, rel_tol=1e-9, abs_tol=0.0)


def _plain(value: float, lo: float, hi: float) -> Number:
    decimals = _decimals(value, lo, hi)
    if decimals is None:
        return Number(significant(value))
    text = _rounded(value, decimals)
    if _is_symmetric(value, lo, hi):
        arm = _rounded(hi - value, decimals, ROUND_CEILING)
        return Number(text, _text(Decimal(text) - Decimal(arm)), _text(Decimal(text) + Decimal(arm)), None, True)
    return Number(text, _rounded(lo, decimals, ROUND_FLOOR), _rounded(hi, decimals, ROUND_CEILING))


def needs_power(value: float) -> bool:
    """Whether ``value`` is written with a power of ten (outside [1e-3, 1e4); never 0)."""
    return value != 0 and math.isfinite(value) and not PLAIN_RANGE[0] <= abs(value) < PLAIN_RANGE[1]


def format_interval(value: float, lo: float = math.nan, hi: float = math.nan) -> Number:
    """A value with its interval ``[lo, hi]`` (none where a bound is not finite), as it is."""
    if not math.isfinite(value):
        return Number(MISSING if math.isnan(value) else ("∞" if value > 0 else "−∞"))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        lo = hi = value
    lo, hi = min(lo, value), max(hi, value)
    size = abs(value) if value != 0 else max(abs(lo), abs(hi))
    if not needs_power(size):
        return _plain(value, lo, hi)
    exponent = _magnitude(size)
    scale = 10.0**exponent
    number = _plain(value / scale, lo / scale, hi / scale)
    if abs(float(number.text)) >= 10:  # rounding reached the next power of ten
        exponent += 1
        scale = 10.0**exponent
        number = _plain(value / scale, lo / scale, hi / scale)
    return Number(number.text, number.lo, number.hi, exponent, number.symmetric)


def format_zero(lo: float, hi: float, resolution: float) -> Number:
    """A value below ``resolution`` (round-off): ``0``, with its upper bound where that is above it."""
    if not math.isfinite(hi) or hi <= resolution:
        return Number("0")
    return format_interval(0.0, 0.0, hi)


TIME_UNITS: tuple[tuple[str, float], ...] = (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9))
"""Units of a time column and their size in seconds, largest first."""


def time_unit(seconds: list[float]) -> tuple[str, float]:
    """The unit in which the typical (median) of ``seconds`` reads between 1 and 1000."""
    finite = sorted(s for s in seconds if math.isfinite(s) and s > 0)
    if not finite:
        return TIME_UNITS[0]
    typical = finite[len(finite) // 2]
    return next((unit for unit in TIME_UNITS if typical >= unit[1]), TIME_UNITS[-1])
