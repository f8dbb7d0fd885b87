"""Typed, validated parameters for tasks and estimators, and their sweep grids.

A parameter is declared once (:class:`ParamSpec`) and parsed the same way everywhere: on the
command line (``--param sigma=1,2`` or ``--estimator "score+ma:decay=0.9"``) and in suite
files.  A comma-separated value is a sweep; :func:`expand_grid` turns sweeps into the Cartesian
product of configurations.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rpbench.errors import UsageError

Value = int | float | str
Number = int | float
"""What a range check sees: ``check`` runs on int and float parameters only, after parsing."""
Config = dict[str, Value]


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: its name, type, default (a value or a sweep) and valid range.

    ``check`` receives the parsed value of a numeric parameter and returns an error text (what
    was expected) or ``None`` when the value is valid.  ``choices`` restricts string parameters.
    """

    name: str
    kind: type
    default: Value | tuple[Value, ...]
    help: str
    choices: tuple[str, ...] = ()
    check: Callable[[Number], str | None] | None = field(default=None, compare=False)
    expect: str = ""
    neutral: bool = False
    """Left out of the cells' seeds at its default (:func:`seed_config`): a parameter added after
    results were published does not change their noise, so earlier runs reproduce bit for bit."""

    @property
    def default_values(self) -> tuple[Value, ...]:
        """The default as a tuple of sweep values (one value when not a sweep)."""
        return self.default if isinstance(self.default, tuple) else (self.default,)

    def describe_range(self) -> str:
        """A short text of the valid values, for ``list`` and error messages."""
        if self.choices:
            return "one of " + ", ".join(self.choices)
        return self.expect or self.kind.__name__

    def parse(self, text: str | Value, owner: str) -> Value:
        """Parse and validate one value; raise :class:`UsageError` naming what is valid."""
        where = f"{owner}: parameter {self.name}={text!r}"
        if self.kind is str:
            choice = str(text).strip()
            if self.choices and choice not in self.choices:
                raise UsageError(f"{where} is not valid; valid choices: {', '.join(self.choices)}")
            return choice
        value: Number
        try:
            if self.kind is int:
                number = float(text)
                if not number.is_integer():
                    raise ValueError
                value = int(number)
            else:
                value = float(text)
        except (TypeError, ValueError):
            raise UsageError(f"{where} is not a valid {self.kind.__name__}; expected {self.describe_range()}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise UsageError(f"{where} is not finite; expected {self.describe_range()}")
        if self.check is not None:
            problem = self.check(value)
            if problem:
                raise UsageError(f"{where} is out of range; expected {problem}")
        return value


def positive(value: Number) -> str | None:
    """Range check: strictly positive."""
    return None if value > 0 else "a number > 0"


def at_least(low: float) -> Callable[[Number], str | None]:
    """Range check: ``value >= low``."""
    return lambda value: None if value >= low else f"a number >= {low:g}"


def in_unit_interval(value: Number) -> str | None:
    """Range check: ``0 <= value < 1``."""
    return None if 0 <= value < 1 else "a number in [0, 1)"


def parse_assignment(text: str, owner: str) -> tuple[str, list[str]]:
    """Split ``key=v1,v2`` into ``("key", ["v1", "v2"])``."""
    key, sep, values = text.partition("=")
    key = key.strip()
    if not sep or not key or not values.strip():
        raise UsageError(f"{owner}: {text!r} is not of the form key=value (a comma-separated list sweeps)")
    items = [v.strip() for v in values.split(",")]
    if any(not v for v in items):
        raise UsageError(f"{owner}: {text!r} has an empty value in its list")
    return key, items


def resolve_grid(
    specs: Sequence[ParamSpec], overrides: Mapping[str, Sequence[str | Value]], owner: str
) -> dict[str, tuple[Value, ...]]:
    """Validated sweep values for every declared parameter: the overrides, else the defaults."""
    by_name = {spec.name: spec for spec in specs}
    unknown = [key for key in overrides if key not in by_name]
    if unknown:
        valid = ", ".join(by_name) or "(it takes no parameters)"
        raise UsageError(f"{owner}: unknown parameter {unknown[0]!r}; valid parameters: {valid}")
    grid: dict[str, tuple[Value, ...]] = {}
    for spec in specs:
        raw = overrides.get(spec.name)
        values = spec.default_values if raw is None else tuple(spec.parse(v, owner) for v in raw)
        grid[spec.name] = tuple(dict.fromkeys(values))  # drop repeats, keep order
    return grid


def expand_grid(grid: Mapping[str, Iterable[Value]]) -> list[Config]:
    """The Cartesian product of a sweep grid, in declaration order."""
    keys = list(grid)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(grid[k] for k in keys))]


def format_config(config: Mapping[str, Any]) -> str:
    """``key=value`` pairs joined by commas (stable, human readable)."""
    return ",".join(f"{k}={v}" for k, v in config.items())


def seed_config(config: Mapping[str, object], params: Sequence[ParamSpec]) -> dict[str, object]:
    """``config`` as it enters seeds: without the ``neutral`` parameters that are at their default."""
    neutral = {p.name: p.default for p in params if p.neutral and not isinstance(p.default, tuple)}
    return {k: v for k, v in config.items() if not (k in neutral and v == neutral[k])}
