"""Markdown cells: asymmetric intervals in brackets, symmetric ones with ±, powers in superscripts."""

from __future__ import annotations

from rpbench.views.numbers import Number, format_interval
from rpbench.views.render_markdown import number_text, power_text


def test_asymmetric_and_symmetric_intervals() -> None:
    assert number_text(format_interval(16.62, 3.51, 82.1), symmetric=False) == "16.6 [3.5, 82.1]"
    symmetric = format_interval(3.98, 3.46, 4.50)
    assert number_text(symmetric, symmetric=True) == "3.98 ± 0.52"
    assert number_text(symmetric, symmetric=False) == "3.98 [3.46, 4.50]"  # a table with any asymmetric one


def test_powers_of_ten_in_superscripts() -> None:
    assert power_text(-5) == "×10⁻⁵" and power_text(12) == "×10¹²"
    assert number_text(format_interval(3.98e-5, 3.86e-5, 4.1e-5), symmetric=False) == "(3.98 [3.86, 4.10])×10⁻⁵"
    assert number_text(Number("1.23", exponent=4), symmetric=False) == "1.23×10⁴"
    assert number_text(Number("0"), symmetric=False) == "0"
