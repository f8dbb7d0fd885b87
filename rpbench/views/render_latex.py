"""A report table as a booktabs ``tabular`` (ASCII only), in a ``table`` float where a caption or
label is given.  Asymmetric intervals read ``$16.6^{+65.5}_{-13.1}$``, symmetric ones
``$3.98 \\pm 0.52$``; the document needs ``\\usepackage{booktabs}``."""

from __future__ import annotations

from rpbench.views.constants import MISSING
from rpbench.views.numbers import Number
from rpbench.views.report_cells import TableCell, notes, row_label, symmetric_table
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
    "µ": r"$\mu$",
    "‖": r"$\|$",
    "≈": r"$\approx$",
    "≤": r"$\le$",
    "≥": r"$\ge$",
}


def latex_escape(text: str) -> str:
    """Text safe in a LaTeX document (ASCII only; specials escaped)."""
    return "".join(LATEX_SPECIALS.get(ch, ch if ch.isascii() else "?") for ch in text)


def _number(number: Number, relative: bool, symmetric: bool) -> str:
    if number.text == MISSING:
        return "--"
    if number.lo is None or number.hi is None:
        text = number.text
    elif symmetric and number.symmetric:
        text = f"{number.text} \\pm {number.arm}"
    else:
        text = f"{number.text}^{{+{number.plus}}}_{{-{number.minus}}}"
    if number.exponent is not None:
        body = f"({text})" if symmetric and number.symmetric and number.lo is not None else text
        text = f"{body} \\times 10^{{{number.exponent}}}"
    suffix = r"\times" if relative else ""
    return f"${text}{suffix}$".replace("∞", r"\infty").replace("−", "-")


def _cell(cell: TableCell | None, relative: bool, symmetric: bool) -> str:
    if cell is None:
        return "--"
    text = _number(cell.number, relative, symmetric)
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
        cells = ["" if key == "metric" else latex_escape(key)]
        rules = []
        for first, last, text in spans:
            width = last - first + 1
            cells.append(latex_escape(text) if width == 1 else f"\\multicolumn{{{width}}}{{c}}{{{latex_escape(text)}}}")
            if width > 1 and text:
                rules.append(f"\\cmidrule(lr){{{first + 2}-{last + 2}}}")
        lines.append(" & ".join(cells) + r" \\")
        lines.extend([" ".join(rules)] if rules else [])
    return lines or [r"estimator & value \\"]


def render_latex(
    grid: Grid,
    cells: dict[tuple[str, int], TableCell],
    description: str,
    relative: bool,
    caption: str | None = None,
    label: str | None = None,
) -> str:
    """A complete booktabs ``tabular`` (ASCII only), footnotes in a last row.  Without ``caption`` and
    ``label`` what the cells show is a comment above it; with either, the tabular sits in a
    ``table`` float whose ``\\caption`` holds ``caption`` and then what the cells show."""
    symmetric = symmetric_table(cells)
    width = len(grid.columns) + 1
    body = [
        " & ".join(
            [latex_escape(row_label(grid, row, "†"))]
            + [_cell(cells.get((row, j)), relative, symmetric) for j in range(len(grid.columns))]
        )
        + r" \\"
        for row in grid.rows
    ]
    footnotes = "; ".join(latex_escape(n).replace("*", r"\textsuperscript{*}", 1) for n in notes(grid, cells))
    words = " ".join(f"{description}. {grid.caption}".split()).rstrip(". ") + "."
    tabular = [
        f"\\begin{{tabular}}{{l{'r' * len(grid.columns)}}}",
        r"\toprule",
        *_header_rows(grid),
        r"\midrule",
        *body,
        r"\bottomrule",
        *([f"\\multicolumn{{{width}}}{{l}}{{\\footnotesize {footnotes}}} \\\\"] if footnotes else []),
        r"\end{tabular}",
    ]
    if caption is None and label is None:
        return "\n".join([latex_escape(f"% {words}").replace(r"\%", "%", 1), *tabular]) + "\n"
    full = f"{caption.rstrip('. ')}. {words}" if caption else words
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        f"\\caption{{{latex_escape(full)}}}",
        *([f"\\label{{{label}}}"] if label else []),
        *tabular,
        r"\end{table}",
    ]
    return "\n".join(lines) + "\n"
