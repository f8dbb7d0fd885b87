"""A report table as GitHub-flavoured Markdown."""

from __future__ import annotations

from rpbench.views.constants import MISSING
from rpbench.views.numbers import Number
from rpbench.views.report_cells import TableCell, header, notes, row_label
from rpbench.views.report_layout import Grid


def _number(number: Number, relative: bool) -> str:
    text = number.text if number.pm is None else f"{number.text} ± {number.pm}"
    if number.exponent is not None:
        text = f"({text})e{number.exponent}" if number.pm is not None else f"{text}e{number.exponent}"
    return text + ("×" if relative and number.text != MISSING else "")


def _cell(cell: TableCell | None, relative: bool) -> str:
    if cell is None:
        return MISSING
    text = _number(cell.number, relative)
    return (f"**{text}**" if cell.best else text) + ("\\*" if cell.flagged else "")


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("*", "\\*")


def render_markdown(grid: Grid, cells: dict[tuple[str, int], TableCell], description: str, relative: bool) -> str:
    """A GitHub-flavoured Markdown table with a caption line before it and footnotes after it."""
    head = ["estimator", *(_escape(header(grid, c)) for c in grid.columns)]
    body = [
        [
            _escape(row_label(grid, row, "†")),
            *(_cell(cells.get((row, j)), relative) for j in range(len(grid.columns))),
        ]
        for row in grid.rows
    ]
    widths = [max(len(line[i]) for line in [head, *body]) for i in range(len(head))]

    def line(texts: list[str]) -> str:
        padded = [texts[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(texts[1:], widths[1:], strict=True))]
        return "| " + " | ".join(padded) + " |"

    rule = "| " + " | ".join([":" + "-" * (widths[0] - 1), *("-" * (w - 1) + ":" for w in widths[1:])]) + " |"
    caption = f"{description}. {grid.caption}".rstrip(". ") + "."
    footnotes = [_escape(n) for n in notes(grid, cells)]
    return "\n".join([caption, "", line(head), rule, *(line(b) for b in body), *(f"\n{n}" for n in footnotes)]) + "\n"
