"""Parameter parsing, validation and sweep grids."""

from __future__ import annotations

import pytest

from rpbench.errors import UsageError
from rpbench.params import ParamSpec, expand_grid, parse_assignment, positive, resolve_grid

SPECS = (
    ParamSpec("n", int, 1, "count", expect="an integer"),
    ParamSpec("s", float, (1.0, 2.0), "scale", check=positive, expect="a number > 0"),
    ParamSpec("f", str, "a", "choice", choices=("a", "b")),
)


def test_defaults_and_overrides() -> None:
    grid = resolve_grid(SPECS, {"s": ["0.5", "0.5", "3"]}, "t")
    assert grid == {"n": (1,), "s": (0.5, 3.0), "f": ("a",)}
    assert expand_grid(grid) == [{"n": 1, "s": 0.5, "f": "a"}, {"n": 1, "s": 3.0, "f": "a"}]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"x": ["1"]}, "unknown parameter 'x'; valid parameters: n, s, f"),
        ({"n": ["1.5"]}, "not a valid int"),
        ({"n": ["abc"]}, "not a valid int"),
        ({"s": ["0"]}, "out of range; expected a number > 0"),
        ({"s": ["nan"]}, "not finite"),
        ({"f": ["c"]}, "valid choices: a, b"),
    ],
)
def test_bad_values_name_the_problem_and_the_valid_choices(overrides: dict, message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve_grid(SPECS, overrides, "t")


def test_integers_written_as_floats_are_accepted() -> None:
    assert SPECS[0].parse("2.0", "t") == 2


@pytest.mark.parametrize("text", ["s", "s=", "=1", "s=1,,2"])
def test_malformed_assignments(text: str) -> None:
    with pytest.raises(UsageError):
        parse_assignment(text, "--param")
