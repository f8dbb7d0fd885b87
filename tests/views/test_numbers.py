"""Numbers of report tables: intervals as they are, digits from the interval, powers of ten, units."""

from __future__ import annotations

import math
import random
from decimal import Decimal

from rpbench.views.numbers import Number, format_interval, format_zero, needs_power, significant, time_unit


def test_an_asymmetric_interval_is_shown_as_it_is() -> None:
    # score+opt on the quadratic cell (issue 12): variance 16.6 with interval (3.5, 82.1)
    cell = format_interval(16.62, 3.51, 82.1)
    assert (cell.text, cell.lo, cell.hi, cell.exponent, cell.symmetric) == ("16.6", "3.5", "82.1", None, False)
    assert (cell.plus, cell.minus) == ("65.5", "13.1")
    # the old "value ± max half-width" would read 17 ± 66: an interval reaching −49
    assert Decimal(cell.lo) > 0


def test_digits_come_from_the_interval() -> None:
    assert format_interval(0.4361, 0.3892, 0.4918) == Number("0.436", "0.389", "0.492")
    assert format_interval(-0.0402, -0.262, 0.182) == Number("-0.04", "-0.27", "0.19")  # bounds rounded outwards
    assert format_interval(1234.0, 1000.0, 1500.0) == Number("1230", "1000", "1500")
    assert format_interval(1.2, 0.0001, 5.0) == Number("1.20", "0.00", "5.00")  # value keeps 3 digits at most
    assert format_interval(2.0) == Number("2.00")  # no interval: 3 significant digits


def test_a_symmetric_interval_is_value_plus_minus_half_width() -> None:
    cell = format_interval(3.9806, 3.9806 - 0.5194, 3.9806 + 0.5194)
    assert cell.symmetric and (cell.text, cell.arm) == ("3.98", "0.52")


def test_printed_bounds_contain_the_computed_ones() -> None:
    rng = random.Random(0)
    for _ in range(2000):
        value = rng.lognormvariate(0, 3)
        lo, hi = value * rng.uniform(0.01, 1.0), value * rng.uniform(1.0, 20.0)
        cell = format_interval(value, lo, hi)
        scale = 10.0 ** (cell.exponent or 0)
        assert cell.lo is not None and cell.hi is not None
        assert float(cell.lo) * scale <= lo * (1 + 1e-9) and float(cell.hi) * scale >= hi * (1 - 1e-9)


def test_powers_of_ten_only_outside_the_plain_range() -> None:
    assert format_interval(16.6, 3.5, 82.1).exponent is None  # never ×10^1
    small = format_interval(3.98e-5, 3.86e-5, 4.1e-5)
    assert (small.text, small.lo, small.hi, small.exponent) == ("3.98", "3.86", "4.10", -5)
    bumped = format_interval(9.996e-5, 9.5e-5, 1.05e-4)  # 9.996 rounds to 10.00: the next power
    assert bumped.exponent == -4 and bumped.text == "1.000"
    assert needs_power(2e4) and needs_power(5e-4) and not needs_power(0.0) and not needs_power(999.0)


def test_round_off_and_non_finite_values() -> None:
    assert format_zero(-2e-17, 2e-17, 1e-6) == Number("0")
    assert format_zero(0.0, 0.5, 1e-6).hi == "0.50"  # an upper bound above the resolution is kept
    assert format_interval(math.inf) == Number("∞") and format_interval(-math.inf) == Number("−∞")
    assert format_interval(math.nan) == Number("–")
    assert significant(0.0) == "0" and significant(-0.0001234) == "-0.000123" and significant(98765.0) == "98765"


def test_time_units_read_between_one_and_a_thousand() -> None:
    assert time_unit([2.2e-6, 3.9e-6, 6e-7]) == ("µs", 1e-6)
    assert time_unit([0.02, 0.5]) == ("ms", 1e-3)
    assert time_unit([3.0]) == ("s", 1.0) and time_unit([2e-10]) == ("ns", 1e-9) and time_unit([]) == ("s", 1.0)
