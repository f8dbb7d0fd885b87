"""The package version: pyproject.toml's ``version``, read from the installed metadata.

pyproject.toml is the one place the number is written; ``rpbench.__version__`` imports it from
here.  The fallback applies only when rpbench runs from a source tree that was never installed.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__: str = version("rpbench")
except PackageNotFoundError:  # a source tree on sys.path, not installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
