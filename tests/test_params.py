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


def test_a_neutral_parameter_at_its_default_stays_out_of_the_seeds() -> None:
    """hidden2 came after published numbers: at 0 the cells' seeds (and numbers) are today's; at
    another value, or for a parameter that is not neutral, the seed changes."""
    from rpbench.engine import cell_seed
    from rpbench.params import ParamSpec, seed_config

    specs = [ParamSpec("hidden", int, 128, ""), ParamSpec("hidden2", int, 0, "", neutral=True)]
    old = {"hidden": 128}
    assert seed_config({"hidden": 128, "hidden2": 0}, specs) == old
    assert seed_config({"hidden": 128, "hidden2": 5}, specs) == {"hidden": 128, "hidden2": 5}
    assert seed_config({"hidden": 128}, [ParamSpec("hidden", int, 128, "")]) == old  # nothing neutral

    def seed(config: dict[str, object]) -> int:
        return cell_seed(0, "vae", seed_config(config, specs), "pathwise", {}, 10, 1)

    assert seed({"hidden": 128, "hidden2": 0}) == cell_seed(0, "vae", old, "pathwise", {}, 10, 1)
    assert seed({"hidden": 128, "hidden2": 5}) != seed({"hidden": 128, "hidden2": 0})
