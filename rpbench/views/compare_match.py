"""Matching the rows of two runs by their configuration (the columns whose role is ``key``)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from rpbench.errors import UsageError
from rpbench.views.compare_tests import BASELINE, NEW
from rpbench.views.labels import key_text
from rpbench.views.loader import Run


def canonical(value: object) -> str:
    """A key value as text such that NaN/empty match each other and ``1`` matches ``1.0``."""
    if value is None or value is pd.NA:
        return ""
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in ("", "nan", "none"):
            return ""
        try:
            return str(int(text))
        except ValueError:
            pass
        try:
            number = float(text)
        except ValueError:
            return text
    else:
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return str(value)
    if math.isnan(number):
        return ""
    return str(int(number)) if number.is_integer() and abs(number) < 2**53 else repr(number)


def plain(value: object) -> object:
    """A key value for a :class:`~rpbench.views.compare_tests.Change`: NaN becomes ``None``,
    numpy scalars Python ones."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    item = getattr(value, "item", None)
    return item() if callable(item) else value


def _index(frame: pd.DataFrame, keys: Sequence[str], label: str, shown: Sequence[str]) -> dict[tuple[str, ...], int]:
    index: dict[tuple[str, ...], int] = {}
    duplicates: list[int] = []
    for position, row in enumerate(frame[list(keys)].itertuples(index=False, name=None)):
        key = tuple(canonical(v) for v in row)
        if key in index:
            duplicates.append(position)
        else:
            index[key] = position
    if duplicates:
        first = {c: plain(frame[c].iloc[duplicates[0]]) for c in keys}
        raise UsageError(
            f"unusable input: {label} has {len(duplicates)} duplicate configuration(s) (rows with the same "
            f"{', '.join(keys)}), e.g. {key_text(first, shown)}"
        )
    return index


def _varying(frames: Iterable[pd.DataFrame], keys: Sequence[str]) -> list[str]:
    """Key columns worth showing: task, estimator, group, and those that vary across the rows."""
    both = pd.concat([f[list(keys)].astype(object) for f in frames], ignore_index=True)
    always = [c for c in ("task", "estimator", "group") if c in keys]
    return always + [c for c in keys if c not in always and both[c].map(canonical).nunique() > 1]


def _check_same_keys(keys_b: list[str], keys_n: list[str]) -> None:
    if set(keys_b) == set(keys_n):
        return
    only_b = [c for c in keys_b if c not in keys_n]
    only_n = [c for c in keys_n if c not in keys_b]
    parts = [f"only in {label}: {', '.join(cols)}" for label, cols in ((BASELINE, only_b), (NEW, only_n)) if cols]
    raise UsageError(
        f"unusable input: the tables have different configuration columns ({'; '.join(parts)}); "
        "compare runs of the same task and estimator parameters"
    )


def match(baseline: Run, new: Run) -> tuple[list[str], list[tuple[int, int]]]:
    """The key columns and the (baseline, new) row positions of each configuration.

    Different key columns, a configuration without a match on the other side (up to three
    named) or a duplicate configuration is a one-line :class:`UsageError`.
    """
    keys_b, keys_n = baseline.key_columns, new.key_columns
    _check_same_keys(keys_b, keys_n)
    frame_b, frame_n = baseline.results, new.results
    shown = _varying((frame_b, frame_n), keys_b)
    index_b = _index(frame_b, keys_b, BASELINE, shown)
    index_n = _index(frame_n, keys_b, NEW, shown)
    problems = []
    for label, source, frame, other, other_label in (
        (BASELINE, index_b, frame_b, index_n, NEW),
        (NEW, index_n, frame_n, index_b, BASELINE),
    ):
        missing = [position for key, position in source.items() if key not in other]
        if missing:
            examples = [key_text({c: plain(frame[c].iloc[p]) for c in keys_b}, shown) for p in missing[:3]]
            more = f" … and {len(missing) - 3} more" if len(missing) > 3 else ""
            problems.append(
                f"{len(missing)} configuration(s) of {label} missing in {other_label}: {'; '.join(examples)}{more}"
            )
    if problems:
        raise UsageError("unusable input: " + " | ".join(problems))
    return keys_b, [(position, index_n[key]) for key, position in index_b.items()]
