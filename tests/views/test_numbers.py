"""Numbers of report tables: value ± half-width, powers of ten, ratios."""

from __future__ import annotations

import math

from rpbench.views.numbers import Number, format_number, format_ratio, needs_scientific, significant


def test_cells_show_value_and_ci_half_width() -> None:
    assert format_number(3.9806, 3.5, 4.5) == format_number(3.9806, 3.46, 4.5)
    cell = format_number(3.9806, 3.5, 4.5)  # half-width max(0.52, 0.48) → 2 significant digits
    assert (cell.text, cell.pm, cell.exponent) == ("3.98", "0.52", None)
    assert format_number(-0.028, -0.2, 0.147).text == "-0.03"  # value to the half-width's decimal place
    assert format_number(1234.0, 1000.0, 1500.0).text == "1230"
    sci = format_number(3.98e-5, 3.86e-5, 4.1e-5, scientific=True)
    assert (sci.text, sci.pm, sci.exponent) == ("3.98", "0.12", -5)
    bumped = format_number(9.996e-5, 9.496e-5, 1.0496e-4, scientific=True)  # 9.996 ± 0.50 rounds to 10.00
    assert (bumped.text, bumped.pm, bumped.exponent) == ("1.000", "0.050", -4)
    zero = format_number(0.0, -2.6e-17, 2.6e-17)  # a zero's own tiny half-width asks for a power of ten
    assert (zero.text, zero.pm, zero.exponent) == ("0.0", "2.6", -17)
    assert format_number(2.0).pm is None and format_number(2.0).text == "2.00"  # no CI: 3 significant digits
    assert needs_scientific([1.0, 2e3]) and needs_scientific([5e-4, 0.1]) and needs_scientific([2e4])
    assert not needs_scientific([0.01, 5.0, 0.0, math.nan])


def test_ratios_and_significant_digits() -> None:
    assert format_ratio(4.0) == Number("4.00") and format_ratio(0.01234) == Number("0.0123")
    assert format_ratio(12345.0) == Number("1.23", None, 4) and format_ratio(2e-4) == Number("2.00", None, -4)
    assert format_ratio(math.nan) == Number("–") and format_ratio(math.inf) == Number("–")
    assert significant(0.0) == "0" and significant(-0.0001234) == "-0.000123" and significant(98765.0) == "98765"
    assert format_number(math.inf) == Number("∞") and format_number(-math.inf) == Number("−∞")
