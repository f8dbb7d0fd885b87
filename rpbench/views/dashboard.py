"""A static dashboard of a results history: one self-contained HTML page per task family, and an index.

Each page holds one inline SVG figure (matplotlib; no script, no CDN: it works offline) with one
panel per task configuration and parameter group, and in it one series per estimator configuration
against the recorded runs of one machine in commit order: the metric's value, its confidence band,
and the change points of :mod:`rpbench.history.changes` (▲ red: regression, ▼ green: improvement).
Hovering over a point shows its commit, date, run and value (an SVG ``<title>``).  Every series is an
SVG group ``id="series-N"`` and every point ``id="point-N-I"``, which the browser test counts.
"""

from __future__ import annotations

import html
import io
import math
import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from rpbench.errors import UsageError
from rpbench.history.changes import RUN_SEED, SERIES_COLUMNS, history_table
from rpbench.history.store import recorded_runs
from rpbench.tables import write_atomic
from rpbench.views.labels import estimator_labels, key_text, short_number, varying

INDEX = "index.html"
MARKS = {"regression": ("^", "#c0392b"), "improvement": ("v", "#1e8449")}
PANEL_INCHES = (4.2, 2.8)
COLUMNS = 3


def write_dashboard(
    history: str | Path, out: str | Path, metric: str = "variance", machine: str | None = None
) -> list[Path]:
    """Write the pages of ``history`` into folder ``out`` (created); the paths written, the index last."""
    frame = history_table(history, metric, machine=machine)
    chosen = machine or str(frame["machine"].iloc[-1])  # by default the machine of the latest run
    frame = frame[frame["machine"].str.startswith(chosen)]
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"-o {out}: exists and is not a folder; give a folder for the site")
    estimator_params = sorted({p for r in recorded_runs(history) for p in r.run.estimator_params})
    frame = frame.assign(_line=estimator_labels(frame, [p for p in estimator_params if p in frame]))
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for task, rows in frame.groupby("task", sort=True):
        path = out / f"{task}.html"
        page = _page(str(task), rows.reset_index(drop=True), metric, str(rows["machine"].iloc[0]), estimator_params)
        write_atomic(path, page)
        written.append(path)
    index = out / INDEX
    write_atomic(index, _index(frame, metric, chosen, written))
    return [*written, index]


def _panels(rows: pd.DataFrame, metric: str, estimator_params: Sequence[str]) -> list[tuple[str, pd.DataFrame]]:
    """One panel per task configuration (the key columns that vary, the estimators' aside) and group."""
    shown = {*SERIES_COLUMNS, *RUN_SEED, *estimator_params, "estimator", "group", "change", metric}
    shown |= {f"{metric}_lo", f"{metric}_hi"}
    keys = [c for c in rows.columns if c not in shown and not c.startswith("_")]
    panel_keys = [*varying(rows, keys), "group"]
    labels = [key_text(r, panel_keys) for r in rows[panel_keys].to_dict("records")]
    return list(rows.assign(_panel=labels).groupby("_panel", sort=True))


def _figure(rows: pd.DataFrame, metric: str, estimator_params: Sequence[str]) -> tuple[str, int]:
    """The page's SVG and the number of series in it."""
    runs = list(dict.fromkeys(rows["run_id"]))
    commits = rows.drop_duplicates("run_id").set_index("run_id")
    panels = _panels(rows, metric, estimator_params)
    columns = min(COLUMNS, len(panels))
    lines = math.ceil(len(panels) / columns)
    figure = Figure(figsize=(PANEL_INCHES[0] * columns, PANEL_INCHES[1] * lines + 0.6), layout="constrained")
    titles: dict[str, str] = {}
    series = 0
    for i, (label, panel) in enumerate(panels):
        axes = figure.add_subplot(lines, columns, i + 1)
        for name, line in panel.groupby("_line", sort=True):
            line = line.assign(_x=[runs.index(r) for r in line["run_id"]]).sort_values("_x")
            (drawn,) = axes.plot(line["_x"], line[metric], marker="o", markersize=3, label=str(name), linewidth=1.2)
            drawn.set_gid(f"series-{series}")
            band = (line[f"{metric}_lo"], line[f"{metric}_hi"])
            axes.fill_between(line["_x"], *band, alpha=0.2, color=drawn.get_color(), linewidth=0)
            for j, (x, (_, row)) in enumerate(zip(line["_x"], line.iterrows(), strict=True)):
                marker, colour = MARKS.get(str(row["change"]), ("o", drawn.get_color()))
                size = 8 if str(row["change"]) in MARKS else 4
                (point,) = axes.plot([x], [row[metric]], marker=marker, color=colour, markersize=size, linestyle="")
                gid = f"point-{series}-{j}"
                point.set_gid(gid)
                titles[gid] = _hover(row, metric, str(name))
            series += 1
        positive = (rows[metric] > 0).all() and rows[metric].max() / max(rows[metric].min(), 1e-300) > 50
        axes.set_yscale("log" if positive else "linear")
        axes.set_title(str(label), fontsize=8)
        axes.set_xticks(range(len(runs)), [str(commits.loc[r, "commit"])[:7] for r in runs], rotation=60, fontsize=6)
        axes.set_ylabel(metric, fontsize=8)
        axes.tick_params(labelsize=6)
        axes.legend(fontsize=6, loc="best")
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg")
    return _with_titles(buffer.getvalue(), titles), series


def _hover(row: pd.Series, metric: str, line: str) -> str:
    value = f"{short_number(row[metric])} [{short_number(row[f'{metric}_lo'])}, {short_number(row[f'{metric}_hi'])}]"
    dirty = " (dirty)" if row["dirty"] else ""
    change = f", {row['change']}" if row["change"] else ""
    date = row["commit_date"] if isinstance(row["commit_date"], str) else "date unknown"
    return f"{line}: {metric} {value}{change}\ncommit {row['commit']}{dirty}, {date}\nrun {row['run_id']}"


def _with_titles(svg: str, titles: dict[str, str]) -> str:
    """The SVG with a ``<title>`` (the browser's hover text) as the first child of each point's group."""
    svg = svg[svg.index("<svg") :]  # inline: no XML declaration or doctype
    return re.sub(
        r'(<g id="(point-\d+-\d+)">)',
        lambda m: f"{m.group(1)}<title>{html.escape(titles[m.group(2)])}</title>",
        svg,
    )


def _page(task: str, rows: pd.DataFrame, metric: str, machine: str, estimator_params: Sequence[str]) -> str:
    svg, series = _figure(rows, metric, estimator_params)
    runs = rows.drop_duplicates("run_id")[["commit", "commit_date", "dirty", "run_id"]]
    table = "".join(
        f"<tr><td><code>{html.escape(str(r.commit))}</code></td><td>{html.escape(str(r.commit_date or ''))}</td>"
        f"<td>{'dirty' if r.dirty else ''}</td><td>{html.escape(str(r.run_id))}</td></tr>"
        for r in runs.itertuples()
    )
    return _html(
        f"rpbench history: {task}",
        f"<p>{metric} on machine <code>{html.escape(machine)}</code>: {series} series over {len(runs)} run(s); "
        f"{_counts(rows)} "
        f'(▲ red, ▼ green). Bands: the stored confidence intervals. <a href="{INDEX}">index</a></p>'
        f'<div class="figure" data-series="{series}">{svg}</div>'
        f"<table><tr><th>commit</th><th>date</th><th></th><th>run</th></tr>{table}</table>",
    )


def _index(frame: pd.DataFrame, metric: str, machine: str, pages: Sequence[Path]) -> str:
    items = []
    for page in pages:
        rows = frame[frame["task"] == page.stem]
        link = f'<a href="{html.escape(page.name)}">{html.escape(page.stem)}</a>'
        items.append(f"<li>{link}: {rows['run_id'].nunique()} run(s), {_counts(rows)}</li>")
    return _html(
        "rpbench history", f"<p>{metric} on machine <code>{html.escape(machine)}</code></p><ul>{''.join(items)}</ul>"
    )


def _html(title: str, body: str) -> str:
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        "<style>body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}"
        "td,th{padding:2px 8px;text-align:left;font-size:0.85em}svg{max-width:100%;height:auto}</style>"
        f"</head><body><h1>{html.escape(title)}</h1>{body}</body></html>\n"
    )


def _counts(rows: pd.DataFrame) -> str:
    changes = rows["change"].value_counts()
    return f"{int(changes.get('regression', 0))} regression(s), {int(changes.get('improvement', 0))} improvement(s)"
