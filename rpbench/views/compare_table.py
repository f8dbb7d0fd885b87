"""The console view of a comparison: a rich table, regressions first."""

from __future__ import annotations

import math

from rich.table import Table

from rpbench.views.compare import Comparison
from rpbench.views.compare_match import canonical
from rpbench.views.labels import key_text, short_number

ORDER = {"regression": 0, "speed regression": 1, "improvement": 2, "speed improvement": 3, "": 4}
STYLE = {"regression": "bold red", "speed regression": "red", "improvement": "green", "speed improvement": "green"}
COLUMNS = (
    ("configuration", "left"),
    ("metric", "left"),
    ("baseline", "right"),
    ("new", "right"),
    ("ratio (CI)", "right"),
    ("verdict", "left"),
    ("note", "left"),
)


def _varying_keys(comparison: Comparison) -> list[str]:
    """Key columns besides estimator and group whose values differ between the compared rows."""
    all_keys = list(dict.fromkeys(c for change in comparison.changes for c in change.key))
    return [
        c
        for c in all_keys
        if c not in ("estimator", "group")
        and len({canonical(change.key.get(c)) for change in comparison.changes if c in change.key}) > 1
    ]


def changes_table(comparison: Comparison, only_changes: bool = True) -> Table:
    """A rich table of the comparison, regressions first, then speed regressions, then improvements.

    The configuration shows estimator and group and the other key columns that vary between the
    compared rows; ``only_changes`` leaves out rows without a verdict or a note.
    """
    varying = _varying_keys(comparison)
    shown = [c for c in comparison.changes if c.verdict or c.note] if only_changes else list(comparison.changes)
    shown.sort(key=lambda c: ORDER[c.verdict])
    table = Table(
        title=f"rpbench compare: {len(comparison.regressions)} regression(s), "
        f"{len(comparison.speed_regressions)} speed regression(s), {len(comparison.improvements)} improvement(s) "
        f"in {comparison.matched} matched rows",
        caption=None if any(c.verdict for c in shown) else "no significant changes",
    )
    for column, justify in COLUMNS:
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for change in shown:
        key = dict(change.key)
        key.setdefault("group", "all")
        ratio = short_number(change.ratio)
        if not (math.isnan(change.ratio_lo) and math.isnan(change.ratio_hi)):
            ratio += f" ({short_number(change.ratio_lo)}, {short_number(change.ratio_hi)})"
        verdict = change.verdict
        table.add_row(
            key_text(key, ["estimator", "group", *varying], sep=" "),
            change.metric,
            short_number(change.baseline),
            short_number(change.new),
            ratio,
            f"[{STYLE[verdict]}]{verdict}[/]" if verdict else "",
            change.note,
        )
    return table
