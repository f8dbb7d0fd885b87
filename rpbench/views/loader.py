"""The one loader of results: a run folder (or a results CSV) into a typed, checked :class:`Run`.

``DIR/results.csv`` is read with ``DIR/run.json`` (and ``DIR/coords.csv`` where there is one); a
training run's ``DIR/curves.csv`` (``rpbench train``: ``"kind": "train"`` in ``DIR/run.json``) with
``DIR/run.json`` too, and its ``DIR/measure.csv`` (``rpbench train --measure K``: results.csv's rows
along the trajectories) with the columns that ``DIR/run.json`` records under ``"measure_columns"``
(:func:`measure_metadata`); any other ``DIR/NAME.csv`` with ``DIR/NAME.json`` (e.g. the committed baseline
``results/baseline/ci.csv`` + ``ci.json``).  The roles and types of the columns come from the
metadata's ``"columns"`` (:mod:`rpbench.columns`), so ints come back as ints, bools as bools::

    run = load_run("results/20260101-120000-gaussian-abc123")
    run.where(["sigma=1,10"]).results

Everything read is checked first; each problem is one :class:`~rpbench.errors.UsageError` line
naming the file (and the line where it applies): a missing file, metadata without columns, a row
cut mid-write (a record whose field count differs from the header, or a file not ending in a
newline), a header that differs from the metadata, a value that does not parse as its column's
type, a table without rows.  Empty cells are missing values: NaN in float columns, ``pd.NA`` in
int (``Int64``) and bool (``boolean``) columns that have empties, missing in text columns.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rpbench.columns import MEASURE_COLUMNS_KEY, MEASURE_FILE, Column, columns_from_json
from rpbench.errors import UsageError
from rpbench.params import parse_assignment
from rpbench.views.labels import format_value, parse_bool

RESULTS_FILE = "results.csv"
CURVES_FILE = "curves.csv"
"""A training run's evaluation points (:func:`rpbench.columns.curve_columns`), in place of ``results.csv``."""
COORDS_FILE = "coords.csv"
META_FILE = "run.json"
DEFAULT_LEVEL = 0.95
"""Level of the stored intervals where the metadata records none (``options.level``)."""
ROLES = frozenset({"key", "metric", "ci", "timing", "outcome"})
TYPES = frozenset({"str", "int", "float", "bool"})
TORN_HINT = "the file was cut mid-write — rerun, or `rpbench run --resume` the folder"
SHOWN_NAMES = 8
KINDS = ("measure", "train")
"""What a run folder holds: measurements (``results.csv``) or training curves (``curves.csv``)."""
CURVE_REQUIRED = ("seed", "step", "seconds", "status")
"""Columns every training run's curves have (the views group and pick rows by them)."""


@dataclass(eq=False)
class Run:
    """A run's results as typed frames, with its metadata and the role of every column.

    ``results`` has one row per result (types from ``columns``) — for a training run
    (:attr:`kind` ``"train"``) one row per evaluation point of ``curves.csv``; ``coords`` the
    per-coordinate rows (an empty frame where there are none); ``meta`` the content of
    ``run.json``; ``path`` where it was read from (``None`` in memory).
    """

    results: pd.DataFrame
    coords: pd.DataFrame = field(default_factory=pd.DataFrame)
    meta: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    columns: list[Column] = field(default_factory=list)

    @property
    def level(self) -> float:
        """Confidence level of the stored intervals (``meta["options"]["level"]``; 0.95 where absent)."""
        options = self.meta.get("options") or {}
        return float(options.get("level", DEFAULT_LEVEL))

    @property
    def kind(self) -> str:
        """``"train"`` for a training run (``meta["kind"]``, rows from ``curves.csv``), else ``"measure"``."""
        return "train" if self.meta.get("kind") == "train" else "measure"

    def column(self, name: str) -> Column | None:
        """The role and type of column ``name`` (``None`` for a column the metadata does not know)."""
        return next((c for c in self.columns if c.name == name), None)

    def _keys(self, kind: str | None = None) -> list[str]:
        return [
            c.name
            for c in self.columns
            if c.role == "key" and (kind is None or c.kind == kind) and c.name in self.results.columns
        ]

    @property
    def task_params(self) -> list[str]:
        """The task parameters (key columns of kind ``task``), in column order."""
        return self._keys("task")

    @property
    def estimator_params(self) -> list[str]:
        """The estimator parameters (key columns of kind ``estimator``), in column order."""
        return self._keys("estimator")

    @property
    def key_columns(self) -> list[str]:
        """Every column with role ``key`` present in the results: what identifies a row."""
        return self._keys()

    def with_results(self, frame: pd.DataFrame) -> Run:
        """The same run (metadata, roles, coordinates) with other result rows."""
        return dataclasses.replace(self, results=frame)

    def where(self, conditions: Sequence[str]) -> Run:
        """The rows where every ``key=v1,v2`` holds (``--where``), values compared as the column's type.

        A :class:`UsageError` for an unknown column, a value that is not of the column's type, or
        a condition that no row meets (naming the values present).
        """
        frame = self.results
        for condition in conditions:
            key, values = parse_assignment(condition, "--where")
            if key not in frame.columns:
                raise UsageError(
                    f"--where {condition}: no column {key!r}; columns: {', '.join(frame.columns[:20])}, ..."
                )
            column = frame[key]
            kept = frame[_matches(column, self.column(key), values, condition)]
            if kept.empty:
                present = ", ".join(dict.fromkeys(format_value(v) for v in column.unique()[:10]))
                raise UsageError(f"--where {condition}: no row matches; values present: {present}")
            frame = kept
        return self.with_results(frame)


def _matches(column: pd.Series, role: Column | None, values: list[str], condition: str) -> np.ndarray:
    """Rows of ``column`` equal to one of ``values``, parsed as the column's type."""
    kind = role.type if role is not None else "str"
    if kind in ("int", "float"):
        numbers = []
        for value in values:
            try:
                numbers.append(float(value))
            except ValueError:
                raise UsageError(f"--where {condition}: {column.name} holds numbers; {value!r} is not one") from None
        keep = column.astype(float).isin(numbers)
    elif kind == "bool":
        flags = [parse_bool(v) for v in values]
        if None in flags:
            raise UsageError(f"--where {condition}: {column.name} holds True or False")
        keep = column.isin(flags)
    elif role is None:
        keep = column.map(format_value).isin(values)
    else:
        keep = column.isin(values)
    return keep.fillna(False).to_numpy(dtype=bool)


# --------------------------------------------------------------------------- parsing


def _meta_columns(meta: object, where: str) -> list[Column]:
    """The columns the metadata records, checked; a :class:`UsageError` naming ``where`` otherwise."""
    entries = meta.get("columns") if isinstance(meta, dict) else None
    if not isinstance(entries, list) or not entries:
        raise UsageError(
            f'{where}: no "columns" in the run metadata (written before runs recorded their columns?); '
            "rerun it with this version of rpbench"
        )
    try:
        columns = columns_from_json(entries)
    except (ValueError, TypeError) as exc:
        raise UsageError(f'{where}: bad "columns" entry ({exc})') from None
    for column in columns:
        if column.role not in ROLES or column.type not in TYPES:
            raise UsageError(f"{where}: column {column.name!r} has role {column.role!r} and type {column.type!r}")
    return columns


def _check_level(meta: dict[str, Any], where: str) -> None:
    options = meta.get("options") or {}
    level = options.get("level", DEFAULT_LEVEL) if isinstance(options, dict) else None
    if isinstance(level, bool) or not isinstance(level, int | float) or not 0.0 < level < 1.0:
        raise UsageError(f"{where}: options.level {level!r} is not a confidence level in (0, 1)")


def _check_kind(meta: dict[str, Any], columns: list[Column], where: str, csv_path: Path | None = None) -> None:
    """The kind of run is known, matches the table read (``csv_path``), and a training run has its columns."""
    kind = meta.get("kind", "measure")
    if kind not in KINDS:
        raise UsageError(f"{where}: kind {kind!r} is not a kind of run; valid: {', '.join(KINDS)}")
    if csv_path is not None and csv_path.name == CURVES_FILE and kind != "train":
        raise UsageError(f'{csv_path}: training curves, but {where} does not say "kind": "train"')
    if csv_path is not None and csv_path.name == RESULTS_FILE and kind == "train":
        raise UsageError(f'{csv_path}: {where} says "kind": "train"; a training run\'s rows are in {CURVES_FILE}')
    names = {c.name for c in columns}
    missing = [name for name in CURVE_REQUIRED if name not in names]
    if kind == "train" and missing:
        raise UsageError(f'{where}: a training run ("kind": "train") without column(s) {", ".join(missing)}')


def _records(text: str, source: str) -> tuple[list[str], list[list[str]], list[int]]:
    """Header, records and each record's (last) line number; blank lines are skipped."""
    reader = csv.reader(io.StringIO(text))
    records: list[list[str]] = []
    lines: list[int] = []
    try:
        header = next(reader, [])
        for record in reader:
            if record:
                records.append(record)
                lines.append(reader.line_num)
    except csv.Error as exc:
        raise UsageError(f"{source} line {reader.line_num}: not a CSV record ({exc})") from None
    return header, records, lines


def _check_shape(header: list[str], records: list[list[str]], lines: list[int], text: str, source: str) -> None:
    """Every record as wide as the header, and the last line complete."""
    width = len(header)
    torn = next((i for i, record in enumerate(records) if len(record) != width), None)
    if torn is None and records and not text.endswith("\n"):
        torn = len(records) - 1
    if torn is not None:
        raise UsageError(f"{source} line {lines[torn]}: torn row ({len(records[torn])} of {width} fields); {TORN_HINT}")


def _names(names: Sequence[str]) -> str:
    more = f", … ({len(names)} in all)" if len(names) > SHOWN_NAMES else ""
    return ", ".join(names[:SHOWN_NAMES]) + more


def _check_header(header: list[str], columns: list[Column], source: str) -> None:
    doubled = [name for i, name in enumerate(header) if name in header[:i]]
    if doubled:
        raise UsageError(f"{source}: column {doubled[0]!r} appears twice in the header")
    known = {c.name for c in columns}
    missing = [c.name for c in columns if c.name not in header]
    extra = [name for name in header if name not in known]
    parts = [f"missing column(s) {_names(missing)}"] if missing else []
    parts += [f"column(s) not in {META_FILE}: {_names(extra)}"] if extra else []
    if parts:
        raise UsageError(f"{source}: the header differs from the columns in {META_FILE}: {'; '.join(parts)}")


class _Cells:
    """One column's text cells, with what a parse error must name."""

    def __init__(self, cells: np.ndarray, name: str, lines: list[int], source: str) -> None:
        self.cells, self.name, self.lines, self.source = cells, name, lines, source
        self.empty = cells == ""

    def error(self, i: int, what: str) -> UsageError:
        """The error for cell ``i``: ``FILE line L, column C: 'text' is not WHAT``."""
        return UsageError(f"{self.source} line {self.lines[i]}, column {self.name}: {self.cells[i]!r} is not {what}")

    def first_bad(self, parse: Callable[[str], object], what: str) -> UsageError:
        """The error for the first non-empty cell that ``parse`` refuses."""
        for i, text in enumerate(self.cells):
            try:
                if text != "":
                    parse(text)
            except (ValueError, OverflowError):
                return self.error(i, what)
        return UsageError(f"{self.source}, column {self.name}: a value is not {what}")


def _float(cells: _Cells) -> np.ndarray:
    try:
        return np.where(cells.empty, "nan", cells.cells).astype(np.float64)
    except ValueError:
        raise cells.first_bad(float, "a number") from None


def _integral(cells: _Cells, i: int) -> int:
    """Cell ``i`` as an int; an integral float (``8.0``, as older writers wrote) is accepted."""
    text = cells.cells[i]
    if text == "":
        return 0
    try:
        number = float(text)
    except ValueError:
        raise cells.error(i, "a number") from None
    if not number.is_integer():
        raise cells.error(i, "an integer")
    return int(number)


def _int(cells: _Cells) -> object:
    try:
        values = np.where(cells.empty, "0", cells.cells).astype(np.int64)
    except (ValueError, OverflowError):
        values = np.array([_integral(cells, i) for i in range(len(cells.cells))], dtype=np.int64)
    return pd.arrays.IntegerArray(values, cells.empty) if cells.empty.any() else values


def _bool(cells: _Cells) -> object:
    flags = [None if text == "" else parse_bool(text) for text in cells.cells]
    bad = next((i for i, flag in enumerate(flags) if flag is None and not cells.empty[i]), None)
    if bad is not None:
        raise cells.error(bad, "a bool (True or False)")
    return pd.array(flags, dtype="boolean") if cells.empty.any() else np.array(flags, dtype=bool)


def _str(cells: _Cells) -> np.ndarray:
    texts = cells.cells.copy()
    texts[cells.empty] = None
    return texts


NUMERIC = ("float", "int")
PRECISE: dict[str, Any] = {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}
"""pandas 3 reads floats exactly by default (and deprecates the option); pandas 2 needs asking."""
PARSERS: dict[str, Callable[[_Cells], object]] = {"float": _float, "int": _int, "bool": _bool, "str": _str}


def _fast_columns(text: str, header: list[str], kinds: list[str], lines: list[int], source: str) -> dict[str, object]:
    """The typed columns, numbers parsed by pandas' C reader (exact round trip); a ``ValueError``
    where a number does not parse (the slow path then names the cell)."""
    numeric = {n: {"float": "float64", "int": "Int64"}[k] for n, k in zip(header, kinds, strict=True) if k in NUMERIC}
    frame = pd.read_csv(
        io.StringIO(text),
        dtype={n: numeric.get(n, object) for n in header},
        keep_default_na=False,
        na_values={n: ["", "nan", "NaN"] for n in numeric},
        **PRECISE,
    )
    if len(frame) != len(lines) or list(frame.columns) != header:
        raise ValueError("the C reader saw other records")
    data: dict[str, object] = {}
    for name, kind in zip(header, kinds, strict=True):
        column = frame[name]
        if kind == "float":
            data[name] = column.to_numpy(dtype=np.float64)
        elif kind == "int":
            data[name] = column.array if column.isna().any() else column.to_numpy(dtype=np.int64)
        else:
            data[name] = PARSERS[kind](_Cells(column.to_numpy(dtype=object), name, lines, source))
    return data


def _frame(
    text: str, types: Callable[[str], str], source: str, columns: list[Column] | None, rows_needed: bool = True
) -> pd.DataFrame:
    """A checked, typed frame from CSV text; ``types`` gives each header name's type.

    ``rows_needed``: a header without rows is an error (results), or an empty frame (coordinates:
    a run whose groups are all too large for per-coordinate rows has none).
    """
    if not text.strip():
        raise UsageError(f"{source}: an empty file; give a results table written by `rpbench run`")
    header, records, lines = _records(text, source)
    if columns is not None:
        _check_header(header, columns, source)
    _check_shape(header, records, lines, text, source)
    if not records and rows_needed:
        raise UsageError(f"{source}: has no result rows")
    if not records:
        return pd.DataFrame(columns=header)
    kinds = [types(name) for name in header]
    try:
        return pd.DataFrame(_fast_columns(text, header, kinds, lines, source))
    except (ValueError, OverflowError, TypeError):
        pass  # a value that does not parse as its type: name it (or accept it, e.g. an int written 8.0)
    by_column = zip(*records, strict=True)
    data = {}
    for name, kind, cells in zip(header, kinds, by_column, strict=True):
        data[name] = PARSERS[kind](_Cells(np.array(cells, dtype=object), name, lines, source))
    return pd.DataFrame(data)


def run_from_text(
    results_text: str,
    coords_text: str | None,
    meta: dict[str, Any],
    source: str = "<memory>",
    path: Path | None = None,
) -> Run:
    """A :class:`Run` from the text of ``results.csv`` (and ``coords.csv``) and the run's metadata
    (or of a training run's ``curves.csv``, ``coords_text`` ``None``, where the metadata says
    ``"kind": "train"``).

    The same checks and types as :func:`load_run` (which calls it); ``source`` names the results
    in error messages.  Coordinate columns take their key's type, ``coord`` is an int, the rest floats.
    """
    columns = _meta_columns(meta, source)
    _check_level(meta, source)
    _check_kind(meta, columns, source)
    types = {c.name: c.type for c in columns}
    results = _frame(results_text, types.__getitem__, source, columns)
    coords = pd.DataFrame()
    if coords_text is not None:
        coords_source = str(Path(source).with_name(COORDS_FILE)) if path is not None else f"{source} (coordinates)"
        coord_types = types | {"coord": "int"}
        coords = _frame(coords_text, lambda name: coord_types.get(name, "float"), coords_source, None, False)
    return Run(results, coords, meta, path, columns)


def sidecar(csv_path: Path) -> Path:
    """The metadata file of a results CSV: ``DIR/run.json`` for ``DIR/results.csv``,
    ``DIR/curves.csv`` or ``DIR/measure.csv``, else ``DIR/NAME.json``."""
    in_folder = csv_path.name in (RESULTS_FILE, CURVES_FILE, MEASURE_FILE)
    return csv_path.with_name(META_FILE) if in_folder else csv_path.with_suffix(".json")


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        detail = " ".join(str(getattr(exc, "strerror", None) or exc).split())
        raise UsageError(f"{path}: cannot read it as text ({detail})") from None


def _read_meta(meta_path: Path, csv_path: Path) -> dict[str, Any]:
    if not meta_path.is_file():
        raise UsageError(
            f"{csv_path}: no {meta_path.name} beside it (the run's metadata and column roles); "
            "give a folder written by `rpbench run`"
        )
    try:
        meta = json.loads(_read_text(meta_path))
    except ValueError as exc:
        raise UsageError(f"{meta_path}: not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise UsageError(f"{meta_path}: not a run's metadata (a JSON object)")
    if csv_path.name == MEASURE_FILE:
        meta = measure_metadata(meta, str(meta_path))
    columns = _meta_columns(meta, str(meta_path))
    _check_level(meta, str(meta_path))
    _check_kind(meta, columns, str(meta_path), csv_path)
    return meta


def measure_metadata(meta: dict[str, Any], where: str = "<memory>") -> dict[str, Any]:
    """A training run's metadata as that of its ``measure.csv``: a measurement run (``"kind"``
    ``"measure"``) whose ``"columns"`` are the ones recorded under ``"measure_columns"``
    (:func:`rpbench.columns.measure_columns`), the rest as recorded (``"trained_kind"`` keeps the
    recorded kind).  A :class:`UsageError` naming ``where`` if it records no such columns."""
    if not isinstance(meta.get(MEASURE_COLUMNS_KEY), list):
        raise UsageError(
            f'{where}: no "{MEASURE_COLUMNS_KEY}" in the run metadata (a run without --measure?); '
            f"{MEASURE_FILE} cannot be read without its columns"
        )
    return {**meta, "kind": "measure", "trained_kind": meta.get("kind"), "columns": meta[MEASURE_COLUMNS_KEY]}


def load_run(path: str | Path) -> Run:
    """Read a run folder (``results.csv``, ``run.json``, optional ``coords.csv``; or a training
    run's ``curves.csv`` and ``run.json``) or a results CSV.

    See the module docstring for the sidecar rule and the checks; every problem is a one-line
    :class:`UsageError` naming the file.
    """
    path = Path(path)
    if not path.exists():
        raise UsageError(f"{path}: no such file or folder; give a run folder written by `rpbench run`")
    csv_path = path / RESULTS_FILE if path.is_dir() else path
    if path.is_dir() and not csv_path.is_file() and (path / CURVES_FILE).is_file():
        csv_path = path / CURVES_FILE
    if path.is_dir() and not csv_path.is_file():
        raise UsageError(
            f"{path}: a folder without {RESULTS_FILE} (or {CURVES_FILE}); "
            "give a run folder written by `rpbench run` (or `rpbench train`)"
        )
    meta = _read_meta(sidecar(csv_path), csv_path)
    coords_path = csv_path.with_name(COORDS_FILE) if csv_path.name == RESULTS_FILE else None
    coords = _read_text(coords_path) if coords_path is not None and coords_path.is_file() else None
    return run_from_text(_read_text(csv_path), coords, meta, source=str(csv_path), path=path)


__all__ = ["CURVES_FILE", "Run", "load_run", "measure_metadata", "run_from_text", "sidecar"]
