"""Packaging: one version number, a citable and licensed package, every third-party import declared."""

from __future__ import annotations

import ast
import functools
import re
import sys
import tomllib
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

import pytest

import rpbench
from rpbench import _version

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]

FIRST_PARTY = {"rpbench", "tests", "peer_protocol", "peer_stats", "peak_memory"}
"""Our own top-level modules (scripts/peers/ and scripts/ put their helpers on sys.path themselves)."""

DISTRIBUTIONS = {"PIL": "pillow", "sklearn": "scikit-learn", "storch": "storchastic", "jaxlib": "jaxlib"}
"""Import name → distribution, for the imports whose distribution is not named like them and may not be installed."""

OUTSIDE_THE_EXTRAS = {"storchastic"}
"""Installed by `make bench-peers` with --no-deps (an extra cannot say that, see pyproject.toml)."""


def _name(requirement: str) -> str:
    """The normalised distribution name of a PEP 508 requirement (``dask[distributed]>=1`` → ``dask``)."""
    return re.split(r"[\s\[<>=!~;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _declared(*extras: str) -> set[str]:
    names = {_name(r) for r in PROJECT["dependencies"]}
    for extra in extras:
        names |= {_name(r) for r in PROJECT["optional-dependencies"][extra]}
    return names


def _third_party_imports(folder: str) -> dict[str, set[str]]:
    """Top-level modules imported anywhere under ``folder`` (lazy imports included) → files importing them."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / folder).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top not in sys.stdlib_module_names and top not in FIRST_PARTY and top != "__future__":
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


@functools.cache
def _installed() -> Mapping[str, list[str]]:
    return metadata.packages_distributions()


def _distribution(module: str) -> str:
    if module in DISTRIBUTIONS:
        return DISTRIBUTIONS[module]
    installed = _installed().get(module)
    return (installed[0] if installed else module).lower().replace("_", "-")


def test_there_is_one_version_number() -> None:
    assert PROJECT["version"] == metadata.version("rpbench") == _version.__version__, (
        "pyproject.toml's version differs from the installed metadata: reinstall (pip install -e .)"
    )
    assert rpbench.__version__ == _version.__version__


def test_citation_cff_carries_the_package_version() -> None:
    text = (ROOT / "CITATION.cff").read_text()
    assert re.search(r"^cff-version: 1\.2\.0$", text, re.MULTILINE)
    for key in ("message", "title", "authors"):  # the keys CFF 1.2.0 requires
        assert re.search(rf"^{key}:", text, re.MULTILINE), key
    (version,) = re.findall(r"^version:\s*[\"']?([^\"'\s]+)[\"']?\s*$", text, re.MULTILINE)
    assert version == metadata.version("rpbench") == PROJECT["version"]


def test_the_licence_is_mit_everywhere() -> None:
    licence = (ROOT / "LICENSE").read_text()
    assert licence.startswith("MIT License")
    assert "Copyright (c) 2026 The rpbench developers" in licence
    assert PROJECT["license"] == "MIT"
    assert "LICENSE" in PROJECT["license-files"]
    assert re.search(r"^license: MIT$", (ROOT / "CITATION.cff").read_text(), re.MULTILINE)


def test_the_package_is_marked_typed_and_ships_the_marker() -> None:
    assert (ROOT / "rpbench" / "py.typed").is_file()
    assert "py.typed" in PYPROJECT["tool"]["setuptools"]["package-data"]["rpbench"]
    mypy = PYPROJECT["tool"]["mypy"]
    assert mypy["packages"] == ["rpbench"]
    assert mypy["check_untyped_defs"] and mypy["warn_unused_ignores"] and mypy["disallow_incomplete_defs"]


@pytest.mark.parametrize(
    ("folder", "extras"),
    [
        ("rpbench", ("mnist5k", "dask")),  # lazy imports of the optional features live in their extras
        ("tests", ("dev",)),
        ("scripts", ("dev", "bench-peers")),
    ],
)
def test_every_third_party_import_is_declared(folder: str, extras: tuple[str, ...]) -> None:
    declared = _declared(*extras) | (OUTSIDE_THE_EXTRAS if folder == "scripts" else set())
    missing = {
        module: sorted(files)
        for module, files in _third_party_imports(folder).items()
        if _distribution(module) not in declared
    }
    assert not missing, f"imported in {folder}/ but not declared in pyproject.toml: {missing}"


def test_the_import_scan_sees_lazy_imports() -> None:
    """The scan must see imports inside functions (mlxtend, dask and sklearn are imported lazily)."""
    found = _third_party_imports("rpbench")
    assert {"torch", "mlxtend", "dask", "sklearn", "PIL"} <= set(found)
    assert _distribution("PIL") == "pillow" and _distribution("sklearn") == "scikit-learn"
