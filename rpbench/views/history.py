"""The console view of a metric's history: one row per recorded run and configuration, change points marked."""

from __future__ import annotations

import pandas as pd
from rich.markup import escape
from rich.table import Table

from rpbench.views.labels import format_value, key_text, short_number, varying

STYLE = {"regression": "bold red", "improvement": "green"}
SERIES = ("commit", "commit_date", "machine")


def history_view(frame: pd.DataFrame, metric: str, keys: list[str]) -> Table:
    """``frame`` from :func:`rpbench.history.changes.history_table` as a rich table, configuration by configuration."""
    shown = ["estimator", *[k for k in varying(frame, keys) if k not in ("estimator", "group")], "group"]
    changes = frame["change"].value_counts()
    table = Table(
        title=f"rpbench history: {metric} over {frame['run_id'].nunique()} run(s), "
        f"{int(changes.get('regression', 0))} regression(s), {int(changes.get('improvement', 0))} improvement(s)",
        caption=escape(
            f"{metric}: value [lower, upper bound of its CI]; a change is against the machine's previous run"
        ),
    )
    for column in ("configuration", *SERIES, "dirty", metric, "change"):
        table.add_column(column, justify="right" if column == metric else "left")
    ordered = frame.assign(_config=[key_text(row, shown) for row in frame[shown].to_dict("records")])
    for _, row in ordered.sort_values("_config", kind="stable").iterrows():
        value = (
            f"{short_number(row[metric])} [{short_number(row[f'{metric}_lo'])}, {short_number(row[f'{metric}_hi'])}]"
        )
        change = str(row["change"])
        table.add_row(
            row["_config"],
            *(format_value(row[c]) for c in SERIES),
            "yes" if row["dirty"] else "",
            value,
            f"[{STYLE[change]}]{change}[/]" if change else "",
        )
    return table
