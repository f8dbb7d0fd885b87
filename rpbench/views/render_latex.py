"""A report table as a booktabs ``tabular`` (ASCII only)."""

from __future__ import annotations

from rpbench.views.constants import MISSING
from rpbench.views.numbers import Number
from rpbench.views.report_cells import TableCell, notes, row_label
from rpbench.views.report_layout import Grid

LATEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "|": r"\textbar{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "±": r"$\pm$",
    "×": r"$\times$",
    "–": "--",
    "−": "$-$",
    "†": r"\textsuperscript{\dag}",
    "∞": r"$\infty$",
}


def latex_escape(text: str) -> str:
    """Text safe in a LaTeX document (ASCII only; specials escaped)."""
    return "".join(LATEX_SPECIALS.get(ch, ch if ch.isascii() else "?") for ch in text)


def _number(number: Number, relative: bool) -> str:
    if number.text == MISSING:
        return "--"
    text = number.text if number.pm is None else f"{number.text} \\pm {number.pm}"
    if number.exponent is not None:
        body = f"({text})" if number.pm is not None else text
        text = f"{body} \\times 10^{{{number.exponent}}}"
    suffix = r"\times" if relative else ""
    return f"${text}{suffix}$".replace("∞", r"\infty").replace("−", "-")


def _cell(cell: TableCell | None, relative: bool) -> str:
    if cell is None:
        return "--"
    text = _number(cell.number, relative)
    if cell.best:
        text = f"{{\\boldmath{text}}}"
    return text + (r"\textsuperscript{*}" if cell.flagged else "")


def _header_rows(grid: Grid) -> list[str]:
    """One header row per column key, runs of equal values merged (with \\cmidrule) above the last."""
    lines = []
    for level, key in enumerate(grid.keys):
        spans: list[tuple[int, int, str]] = []
        for j, column in enumerate(grid.columns):
            if spans and level < len(grid.keys) - 1 and grid.columns[spans[-1][0]][: level + 1] == column[: level + 1]:
                spans[-1] = (spans[-1][0], j, column[level])
            else:
                spans.append((j, j, column[level]))
        cells = [latex_escape(key)]
        rules = []
        for first, last, text in spans:
            width = last - first + 1
            cells.append(latex_escape(text) if width == 1 else f"\\multicolumn{{{width}}}{{c}}{{{latex_escape(text)}}}")
            if width > 1 and text:
                rules.append(f"\\cmidrule(lr){{{first + 2}-{last + 2}}}")
        lines.append(" & ".join(cells) + r" \\")
        lines.extend([" ".join(rules)] if rules else [])
    return lines or [r"estimator & value \\"]


def render_latex(grid: Grid, cells: dict[tuple[str, int], TableCell], description: str, relative: bool) -> str:
    """A complete booktabs ``tabular`` (ASCII only); caption as a comment, footnotes in a last row."""
    width = len(grid.columns) + 1
    body = [
        " & ".join(
            [latex_escape(row_label(grid, row, "†"))]
            + [_cell(cells.get((row, j)), relative) for j in range(len(grid.columns))]
        )
        + r" \\"
        for row in grid.rows
    ]
    footnotes = "; ".join(latex_escape(n).replace("*", r"\textsuperscript{*}", 1) for n in notes(grid, cells))
    comment = " ".join(f"% {description}. {grid.caption}".split())
    lines = [
        latex_escape(comment).replace(r"\%", "%", 1),
        f"\\begin{{tabular}}{{l{'r' * len(grid.columns)}}}",
        r"\toprule",
        *_header_rows(grid),
        r"\midrule",
        *body,
        r"\bottomrule",
        *([f"\\multicolumn{{{width}}}{{l}}{{\\footnotesize {footnotes}}} \\\\"] if footnotes else []),
        r"\end{tabular}",
    ]
    return "\n".join(lines) + "\n"
