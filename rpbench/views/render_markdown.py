"""A report table as GitHub-flavoured Markdown."""

from __future__ import annotations

from rpbench.views.constants import MISSING
from rpbench.views.numbers import Number
from rpbench.views.report_cells import TableCell, header, notes, row_label, symmetric_table
from rpbench.views.report_layout import Grid

SUPERSCRIPTS = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def power_text(exponent: int) -> str:
    """``×10⁻⁵``: a power of ten in Unicode superscripts."""
    return "×10" + str(exponent).translate(SUPERSCRIPTS)


def number_text(number: Number, symmetric: bool) -> str:
    """A number as plain text: ``16.6 [3.5, 82.1]``, ``3.98 ± 0.52``, ``(1.3 [0.9, 1.9])×10⁻⁵``."""
    if number.lo is None or number.hi is None:
        text = number.text
    elif symmetric and number.symmetric:
        text = f"{number.text} ± {number.arm}"
    else:
        text = f"{number.text} [{number.lo}, {number.hi}]"
    if number.exponent is None:
        return text
    return (f"({text})" if number.lo is not None else text) + power_text(number.exponent)


def _cell(cell: TableCell | None, relative: bool, symmetric: bool) -> str:
    if cell is None:
        return MISSING
    text = number_text(cell.number, symmetric) + ("×" if relative and cell.number.text != MISSING else "")
    return (f"**{text}**" if cell.best else text) + ("\\*" if cell.flagged else "")


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("*", "\\*")


def render_markdown(
    grid: Grid,
    cells: dict[tuple[str, int], TableCell],
    description: str,
    relative: bool,
    caption: str | None = None,
) -> str:
    """A GitHub-flavoured Markdown table with a caption line before it (``caption`` first, then what
    the cells show and the settings) and footnotes after it."""
    symmetric = symmetric_table(cells)
    head = ["estimator", *(_escape(header(grid, c)) for c in grid.columns)]
    body = [
        [
            _escape(row_label(grid, row, "†")),
            *(_cell(cells.get((row, j)), relative, symmetric) for j in range(len(grid.columns))),
        ]
        for row in grid.rows
    ]
    widths = [max(len(line[i]) for line in [head, *body]) for i in range(len(head))]

    def line(texts: list[str]) -> str:
        padded = [texts[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(texts[1:], widths[1:], strict=True))]
        return "| " + " | ".join(padded) + " |"

    rule = "| " + " | ".join([":" + "-" * (widths[0] - 1), *("-" * (w - 1) + ":" for w in widths[1:])]) + " |"
    words = f"{description}. {grid.caption}".rstrip(". ") + "."
    if caption:
        words = f"{caption.rstrip('. ')}. {words}"
    footnotes = [_escape(n) for n in notes(grid, cells)]
    return "\n".join([words, "", line(head), rule, *(line(b) for b in body), *(f"\n{n}" for n in footnotes)]) + "\n"
