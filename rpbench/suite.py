"""Declarative suites: TOML files naming tasks, parameter grids, estimators, budgets and seeds.

A suite is a list of entries, each one ``rpbench run`` invocation::

    [suite]                      # defaults for every entry (all optional)
    name = "ci"
    description = "small, covers every task family and estimator family"
    samples = 500                # K
    batch = 1                    # n
    seeds = [0]
    repeats = 2

    [[run]]
    task = "gaussian"
    params = { fn = ["quadratic", "cos", "step"], sigma = [1, 2], k = 0.5 }
    estimators = ["all"]         # the --estimator syntax, e.g. "score+ma:decay=0.5,0.9"
    samples = 1000               # any suite default may be overridden per entry

A bad file is a one-line error naming the file, the entry and key, and what was expected.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from rpbench.errors import UsageError

SUITE_KEYS = {"name", "description", "samples", "batch", "seeds", "repeats"}
ENTRY_KEYS = {"task", "params", "estimators", "samples", "batch", "seeds", "repeats"}


@dataclass
class Entry:
    """One run of a suite (or the command line's single run)."""

    task: str
    params: dict[str, list[str]] = field(default_factory=dict)
    estimators: list[str] = field(default_factory=lambda: ["all"])
    samples: int = 1000
    batch: int = 1
    seeds: list[int] = field(default_factory=lambda: [0])
    repeats: int = 3


@dataclass
class Suite:
    """A named list of entries."""

    name: str
    description: str
    entries: list[Entry]


def _int(value: object, where: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise UsageError(f"{where} = {value!r}: expected an integer >= {low}")
    return value


def _scalar_text(value: object, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise UsageError(f"{where} = {value!r}: expected a number or a string (or a list of them)")
    return str(value)


def _entry(raw: Mapping[str, object], defaults: Mapping[str, object], where: str) -> Entry:
    unknown = sorted(set(raw) - ENTRY_KEYS)
    if unknown:
        raise UsageError(f"{where}: unknown key {unknown[0]!r}; expected keys: {', '.join(sorted(ENTRY_KEYS))}")
    merged = {**defaults, **raw}
    task = merged.get("task")
    if not isinstance(task, str) or not task:
        raise UsageError(f"{where}: missing key 'task' (a task name, see `rpbench list`)")
    params_raw = merged.get("params", {})
    if not isinstance(params_raw, dict):
        raise UsageError(f'{where}.params: expected a table such as {{ sigma = [1, 2], fn = "cos" }}')
    params = {}
    for key, value in params_raw.items():
        values = value if isinstance(value, list) else [value]
        if not values:
            raise UsageError(f"{where}.params.{key}: empty list; give at least one value")
        params[key] = [_scalar_text(v, f"{where}.params.{key}") for v in values]
    estimators = merged.get("estimators", ["all"])
    if isinstance(estimators, str):
        estimators = [estimators]
    if not isinstance(estimators, list) or not estimators or not all(isinstance(e, str) for e in estimators):
        raise UsageError(
            f'{where}.estimators: expected a list of estimator specs such as ["all"] or ["score+ma:decay=0.9"]'
        )
    seeds = merged.get("seeds", [0])
    seeds = seeds if isinstance(seeds, list) else [seeds]
    if not seeds:
        raise UsageError(f"{where}.seeds: empty list; give at least one seed")
    return Entry(
        task=task,
        params=params,
        estimators=list(estimators),
        samples=_int(merged.get("samples", 1000), f"{where}.samples", 2),
        batch=_int(merged.get("batch", 1), f"{where}.batch", 1),
        seeds=[_int(s, f"{where}.seeds", 0) for s in seeds],
        repeats=_int(merged.get("repeats", 3), f"{where}.repeats", 1),
    )


def load_suite(path: Path) -> Suite:
    """Read and validate a suite file; every problem is a :class:`UsageError` naming the file and key."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"--suite {path}: no such file; suites live in tasks/*.toml") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--suite {path}: cannot read it ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML: {exc}") from None
    return parse_suite(data, str(path), path.stem)


def parse_suite(data: Mapping[str, object], where: str = "suite", default_name: str = "suite") -> Suite:
    """Validate a suite given as a mapping of the TOML file's shape (``{"suite": {...}, "run": [...]}``)."""
    if not isinstance(data, Mapping):
        raise UsageError(f"{where}: a suite is a table with [suite] and [[run]] entries, not {type(data).__name__}")
    unknown = sorted(set(data) - {"suite", "run"})
    if unknown:
        raise UsageError(f"{where}: unknown top-level key {unknown[0]!r}; expected [suite] and [[run]] tables")
    header = data.get("suite", {})
    if not isinstance(header, dict):
        raise UsageError(f"{where}: [suite] must be a table")
    bad = sorted(set(header) - SUITE_KEYS)
    if bad:
        raise UsageError(f"{where}: [suite] has unknown key {bad[0]!r}; expected keys: {', '.join(sorted(SUITE_KEYS))}")
    runs = data.get("run")
    if not isinstance(runs, list) or not runs:
        raise UsageError(f"{where}: no [[run]] entries; each names a task and its grid")
    if not all(isinstance(raw, Mapping) for raw in runs):
        raise UsageError(f"{where}: each [[run]] entry is a table (task, params, estimators, ...)")
    defaults = {k: v for k, v in header.items() if k not in {"name", "description"}}
    entries = [_entry(raw, defaults, f"{where}: run[{i}]") for i, raw in enumerate(runs, 1)]
    return Suite(str(header.get("name", default_name)), str(header.get("description", "")), entries)
