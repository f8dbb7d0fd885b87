"""Labels and number formats shared by every view: values, ``key=value`` settings, estimator
configurations, the short console number, and bools as written in CSV files."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from rpbench.views.constants import MISSING

TRUE_TEXTS = frozenset({"true", "1", "yes"})
FALSE_TEXTS = frozenset({"false", "0", "no"})


def is_missing(value: object) -> bool:
    """Whether a cell is empty: ``None``, ``pd.NA`` or a float NaN."""
    return value is None or value is pd.NA or (isinstance(value, float | np.floating) and math.isnan(value))


def format_value(value: object) -> str:
    """A parameter value as it reads on the command line (``2``, ``0.5``, ``True``); empty if missing."""
    if is_missing(value):
        return ""
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, float | np.floating):
        number = float(value)
        return str(int(number)) if number.is_integer() and abs(number) < 1e15 else f"{number:.6g}"
    return str(value)


def settings_text(row: Mapping[str, object], keys: Sequence[str], sep: str = ", ") -> str:
    """``key=value`` pairs of a row (keys whose value is empty are left out)."""
    return sep.join(f"{k}={format_value(row[k])}" for k in keys if format_value(row[k]))


def key_text(key: Mapping[str, object], shown: Sequence[str], sep: str = ", ") -> str:
    """``key=value`` pairs of a comparison key, each value as its type prints it (``k=2.0``)."""
    return sep.join(f"{c}={key[c]}" for c in shown if c in key and key[c] is not None)


def varying(frame: pd.DataFrame, keys: Iterable[str]) -> list[str]:
    """The keys whose values (empty counting as a value) differ between rows."""
    return [k for k in keys if k in frame.columns and frame[k].nunique(dropna=False) > 1]


def estimator_labels(frame: pd.DataFrame, estimator_params: Sequence[str], exclude: Sequence[str] = ()) -> pd.Series:
    """Each row's estimator configuration: ``name``, or ``name (key=value, …)`` with the parameters
    that vary between that estimator's rows (leaving out ``exclude``, e.g. a plot's x axis).

    The one label format of every view: summary columns, report rows, plot legends.
    """
    keys = [p for p in estimator_params if p not in exclude]
    labels = np.array(frame["estimator"].astype(str), dtype=object)  # a copy: written below
    for name, positions in frame.groupby("estimator", sort=False).indices.items():
        rows = frame.iloc[positions]
        shown = varying(rows, keys)
        if shown:
            labels[positions] = [f"{name} ({settings_text(r, shown)})" for r in rows.to_dict("records")]
    return pd.Series(labels, index=frame.index, dtype=object)


def short_number(value: float | None) -> str:
    """A number for a console table: 3 significant digits, powers of ten outside [1e-3, 1e4)."""
    if value is None or math.isnan(value):
        return MISSING
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    if value == 0:
        return "0"
    if abs(value) >= 1e4 or abs(value) < 1e-3:
        return f"{value:.2e}"
    return f"{value:.3g}"


def parse_bool(text: str) -> bool | None:
    """``True``/``False`` (also ``true``, ``1``, ``yes``, …) as a bool; ``None`` for anything else."""
    lowered = text.strip().lower()
    return True if lowered in TRUE_TEXTS else False if lowered in FALSE_TEXTS else None


def is_true(value: object) -> bool:
    """Whether a flag cell is set (``True``, ``np.True_`` or the text ``true``); empty is not."""
    if isinstance(value, str):
        return parse_bool(value) is True
    return not is_missing(value) and bool(value)


def equal_cost_of(meta: Mapping[str, object]) -> int | None:
    """The evaluations per estimate an equal-cost run (``run --equal-cost E``) gave every estimator, from
    its metadata (``run.json``), or ``None`` (a run at fixed n, or a suite mixing budgets: its n stay
    settings of the columns)."""
    options = meta.get("options")
    entries = options.get("entries") if isinstance(options, dict) else None
    entries = entries if isinstance(entries, list) else []
    budgets = {entry.get("equal_cost") for entry in entries if isinstance(entry, dict)}
    budget = budgets.pop() if len(budgets) == 1 else None
    return budget if isinstance(budget, int) else None


def with_batch(label: str, batch: object) -> str:
    """An estimator's row label with its n: ``pathwise (n=8)``, ``score+ma (decay=0.9, n=8)``."""
    return f"{label[:-1]}, n={batch})" if label.endswith(")") else f"{label} (n={batch})"
