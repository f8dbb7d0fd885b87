"""Declarative suites: TOML files naming tasks, parameter grids, estimators, budgets and seeds.

A suite is a list of entries, each one ``rpbench run`` invocation::

    [suite]                      # defaults for every entry (all optional)
    name = "ci"
    description = "small, covers every task family and estimator family"
    samples = 500                # K
    batch = 1                    # n
    seeds = [0]
    repeats = 7                  # timed values per cell
    min_time = 0.05              # seconds each timed value lasts at least
    timing_threads = 1           # torch threads while timing (0: all of the process's)

    [[run]]
    task = "gaussian"
    params = { fn = ["quadratic", "cos", "step"], sigma = [1, 2], k = 0.5 }
    estimators = ["all"]         # the --estimator syntax, e.g. "score+ma:decay=0.5,0.9"
    samples = 1000               # any suite default may be overridden per entry
    batch = [1, 2, 4, 8]         # a list sweeps n (or K): one cell per value

    # adaptive K (optional): start at `samples`, double K until the variance interval's relative
    # half-width is below target_rel_ci, or until max_samples (default 100 × samples)
    target_rel_ci = 0.1
    max_samples = 100000

    # equal cost (optional, instead of batch): each estimator gets the largest n whose evaluations
    # of f per estimate are at most equal_cost (ARM 2 per sample, REBAR 3, MVD 4·D, ...)
    equal_cost = 12

A bad file is a one-line error naming the file, the entry and key, and what was expected.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from rpbench import timing
from rpbench.errors import UsageError
from rpbench.timing import DEFAULT_REPEATS, DEFAULT_TIMING_THREADS

BUDGET_KEYS = {
    "samples",
    "batch",
    "equal_cost",
    "seeds",
    "repeats",
    "min_time",
    "timing_threads",
    "target_rel_ci",
    "max_samples",
}
SUITE_KEYS = {"name", "description", *BUDGET_KEYS}
ENTRY_KEYS = {"task", "params", "estimators", *BUDGET_KEYS}


@dataclass
class Entry:
    """One run of a suite (or the command line's single run)."""

    task: str
    params: dict[str, list[str]] = field(default_factory=dict)
    estimators: list[str] = field(default_factory=lambda: ["all"])
    samples: int | list[int] = 1000
    """K, or a list of K values (a sweep: one cell per value)."""
    batch: int | list[int] = 1
    """n, or a list of n values (a sweep)."""
    seeds: list[int] = field(default_factory=lambda: [0])
    repeats: int = DEFAULT_REPEATS
    """Timed values per cell (:func:`rpbench.timing.time_cell`)."""
    min_time: float = field(default_factory=lambda: timing.DEFAULT_MIN_TIME)
    """Seconds each timed value lasts at least (shorter cells are repeated inside each value)."""
    timing_threads: int = DEFAULT_TIMING_THREADS
    """Torch threads while timing (0: the process's own; :data:`rpbench.timing.DEFAULT_TIMING_THREADS`)."""
    target_rel_ci: float | None = None
    """Adaptive K: draw more estimates until the variance interval's relative half-width is below this."""
    max_samples: int | None = None
    """Adaptive K's cap (``None``: :func:`default_max_samples` of each starting K)."""
    equal_cost: int | None = None
    """Equal cost: each estimator gets the largest n whose evaluations of f per estimate are at most
    this (``batch`` is then unused; :func:`rpbench.runner.equal_cost_batch`)."""

    @property
    def sample_sizes(self) -> list[int]:
        """The K values of the entry (one for a single K)."""
        return as_list(self.samples)

    @property
    def batch_sizes(self) -> list[int]:
        """The n values of the entry (one for a single n)."""
        return as_list(self.batch)

    def cap(self, samples: int) -> int | None:
        """Adaptive K's cap for a cell that starts at ``samples`` (``None``: a fixed K)."""
        if self.target_rel_ci is None:
            return None
        return default_max_samples(samples) if self.max_samples is None else self.max_samples


MAX_SAMPLES_FACTOR = 100
"""Adaptive K's default cap: this many times the starting K."""


def default_max_samples(samples: int) -> int:
    """The cap of adaptive K where ``--max-samples`` is not given: 100 × the starting K."""
    return MAX_SAMPLES_FACTOR * samples


def as_list(value: int | list[int]) -> list[int]:
    return list(value) if isinstance(value, list) else [value]


def check_budget(entry: Entry, names: Mapping[str, str], where: str = "") -> None:
    """A :class:`UsageError` naming the option that is out of range (``names``: option → how to cite
    it, e.g. ``--samples``; ``where`` goes before it, e.g. the suite entry).

    K >= 2 and n >= 1 (each value of a list, none listed twice), repeats >= 1, and for adaptive K:
    a target > 0, a cap >= every starting K, and no cap without a target.
    """

    def name(key: str) -> str:
        return f"{where}{names[key]}"

    for key, values, low, need in (
        ("samples", entry.sample_sizes, 2, "K >= 2 independent estimates to measure a variance"),
        ("batch", entry.batch_sizes, 1, "n >= 1 samples per estimate"),
    ):
        if not values:
            raise UsageError(f"{name(key)}: empty list; give at least one value")
        for value in values:
            if value < low:
                raise UsageError(f"{name(key)} {value}: need {need}")
        twice = sorted({v for v in values if values.count(v) > 1})
        if twice:
            raise UsageError(f"{name(key)} {','.join(map(str, values))}: {twice[0]} is listed twice")
    if entry.equal_cost is not None and (
        isinstance(entry.equal_cost, bool) or not isinstance(entry.equal_cost, int) or entry.equal_cost < 1
    ):
        raise UsageError(
            f"{name('equal_cost')} {entry.equal_cost!r}: need an integer >= 1 evaluations of f per estimate, e.g. 8"
        )
    if entry.repeats < 1:
        raise UsageError(f"{name('repeats')} {entry.repeats}: need at least 1 timed value")
    if not (0.0 <= entry.min_time < math.inf):
        raise UsageError(f"{name('min_time')} {entry.min_time}: need seconds >= 0, e.g. 0.05 (0: no calibration)")
    if entry.timing_threads < 0:
        raise UsageError(
            f"{name('timing_threads')} {entry.timing_threads}: need threads >= 1, or 0 for the process's own"
        )
    target, cap = entry.target_rel_ci, entry.max_samples
    if target is not None and not (0.0 < target < math.inf):
        raise UsageError(
            f"{name('target_rel_ci')} {target}: need a relative half-width > 0, e.g. 0.1 (the interval within ±10 %)"
        )
    if cap is not None:
        if target is None:
            raise UsageError(
                f"{name('max_samples')} {cap} caps adaptive K; give {names['target_rel_ci']} too, or drop it"
            )
        start = max(entry.sample_sizes)
        if cap < start:
            raise UsageError(
                f"{name('max_samples')} {cap} is below the starting K ({names['samples']} {start}); "
                f"give a cap >= {start}"
            )


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
    target = merged.get("target_rel_ci")
    if target is not None and (isinstance(target, bool) or not isinstance(target, int | float)):
        raise UsageError(f"{where}.target_rel_ci = {target!r}: expected a number > 0, e.g. 0.1")
    cap = merged.get("max_samples")
    equal_cost = merged.get("equal_cost")
    if equal_cost is not None and "batch" in merged:
        raise UsageError(f"{where}: equal_cost sets each estimator's n; drop batch (or equal_cost)")
    min_time = merged.get("min_time", timing.DEFAULT_MIN_TIME)
    if isinstance(min_time, bool) or not isinstance(min_time, int | float):
        raise UsageError(f"{where}.min_time = {min_time!r}: expected seconds >= 0, e.g. 0.05")
    entry = Entry(
        task=task,
        params=params,
        estimators=list(estimators),
        samples=_ints(merged.get("samples", 1000), f"{where}.samples", 2),
        batch=_ints(merged.get("batch", 1), f"{where}.batch", 1),
        seeds=[_int(s, f"{where}.seeds", 0) for s in seeds],
        repeats=_int(merged.get("repeats", DEFAULT_REPEATS), f"{where}.repeats", 1),
        min_time=float(min_time),
        timing_threads=_int(merged.get("timing_threads", DEFAULT_TIMING_THREADS), f"{where}.timing_threads", 0),
        target_rel_ci=None if target is None else float(target),
        max_samples=None if cap is None else _int(cap, f"{where}.max_samples", 2),
        equal_cost=None if equal_cost is None else _int(equal_cost, f"{where}.equal_cost", 1),
    )
    check_budget(entry, {key: f"{key} =" for key in BUDGET_KEYS}, f"{where}.")
    return entry


def _ints(value: object, where: str, low: int) -> int | list[int]:
    """An integer >= ``low`` or a non-empty list of them (a sweep)."""
    if isinstance(value, list):
        if not value:
            raise UsageError(f"{where} = []: empty list; give at least one value")
        return [_int(v, where, low) for v in value]
    return _int(value, where, low)


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
