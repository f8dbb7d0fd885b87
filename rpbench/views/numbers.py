"""Numbers in report tables: a value with its CI half-width, a ratio, and when to use powers of ten."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from rpbench.views.constants import MISSING


@dataclass(frozen=True)
class Number:
    """A formatted number: mantissa text, optional ± text and optional power of ten."""

    text: str
    pm: str | None = None
    exponent: int | None = None


def _fixed(value: float, decimals: int) -> str:
    text = f"{round(value, decimals):.0f}" if decimals <= 0 else f"{value:.{decimals}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def _magnitude(value: float) -> int:
    return math.floor(math.log10(abs(value)))


def significant(value: float, digits: int = 3) -> str:
    """``value`` to ``digits`` significant digits in fixed notation."""
    if value == 0:
        return "0"
    return _fixed(value, max(0, digits - 1 - _magnitude(value)))


def _plus_minus(value: float, half: float) -> tuple[str, str | None]:
    """Half-width to 2 significant digits, the value to the same decimal place."""
    if not math.isfinite(half) or half <= 0:
        return significant(value), None
    half = float(f"{half:.2g}")
    decimals = 1 - _magnitude(half)
    return _fixed(value, decimals), _fixed(half, decimals)


def format_number(value: float, lo: float = math.nan, hi: float = math.nan, scientific: bool = False) -> Number:
    """A metric with its CI, as ``value ± half-width`` (half-width = max(hi − value, value − lo))."""
    if not math.isfinite(value):
        return Number(MISSING if math.isnan(value) else ("∞" if value > 0 else "−∞"))
    half = max(hi - value, value - lo) if math.isfinite(lo) and math.isfinite(hi) else math.nan
    if value == 0:  # a zero the column's values cannot see: its own half-width decides
        scientific = math.isfinite(half) and half > 0 and needs_scientific([half])
    if not scientific:
        return Number(*_plus_minus(value, half))
    exponent = _magnitude(max(abs(value), half if math.isfinite(half) else 0.0))
    text, pm = _plus_minus(value / 10**exponent, half / 10**exponent)
    if abs(float(text)) >= 10:  # rounding reached the next power of ten
        exponent += 1
        text, pm = _plus_minus(value / 10**exponent, half / 10**exponent)
    return Number(text, pm, exponent or None)


def needs_scientific(values: Iterable[float]) -> bool:
    """Scientific notation for a column whose values span > 3 decades, or are < 1e-3 or ≥ 1e4."""
    finite = [abs(v) for v in values if math.isfinite(v) and v != 0]
    if not finite:
        return False
    low, high = min(finite), max(finite)
    return low < 1e-3 or high >= 1e4 or high / low > 1e3


def format_ratio(ratio: float) -> Number:
    """A ratio to 3 significant digits (powers of ten outside [1e-3, 1e4))."""
    if not math.isfinite(ratio):
        return Number(MISSING)
    if ratio == 0 or 1e-3 <= abs(ratio) < 1e4:
        return Number(significant(ratio))
    exponent = _magnitude(ratio)
    return Number(significant(ratio / 10**exponent), None, exponent)
