"""Append-only CSV tables with a fixed header: how values are written, appended and repaired.

A run writes each table's header once and appends every finished cell's rows in one write, so a
sweep of thousands of cells writes each row once (the tables used to be rewritten whole after
every cell).  A process killed mid-write can leave a torn last line, or the first rows of a cell
without the rest; :func:`read_records` finds the torn line and :func:`keep_complete_cells` keeps
the rows of finished cells only, so ``--resume`` repairs the file before it appends again.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import TextIO

import numpy as np

from rpbench.errors import UsageError

Record = list[str]


def encode(value: object) -> str:
    """A value as CSV text: full float precision (``repr`` round-trips), ``True``/``False``, empty for none."""
    if value is None:
        return ""
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, float | np.floating):
        number = float(value)
        return "" if math.isnan(number) else repr(number)
    if isinstance(value, int | np.integer):
        return str(int(value))
    return str(value)


def csv_text(records: Sequence[Sequence[str]]) -> str:
    """Records as CSV lines, each ending in ``\\n`` (quoted where a field needs it)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows(records)
    return buffer.getvalue()


def row_records(rows: Sequence[Mapping[str, object]], columns: Sequence[str]) -> list[Record]:
    """Rows (dicts) as records in ``columns``' order; a row's key outside ``columns`` is an error."""
    known = set(columns)
    records = []
    for row in rows:
        extra = [key for key in row if key not in known]
        if extra:
            raise ValueError(f"row has columns the table does not declare: {', '.join(extra)}")
        records.append([encode(row.get(column)) for column in columns])
    return records


class AppendTable:
    """One CSV table open for appending: the header when it is new, then whole cells of rows.

    A table on disk (:meth:`open`) creates its file at the first rows appended, so a table that
    never gets rows is never written; one in memory (:meth:`in_memory`) keeps the same text in an
    ``io.StringIO`` (a run that writes nothing).
    """

    def __init__(self, columns: Sequence[str], path: Path | None = None) -> None:
        self.columns = list(columns)
        self.path = path
        self._handle: TextIO | None = None if path is not None else io.StringIO()
        if self._handle is not None:
            self._write([self.columns])

    @classmethod
    def open(cls, path: Path, columns: Sequence[str]) -> AppendTable:
        """Append to ``path`` (the header first, where the file is new)."""
        return cls(columns, path)

    @classmethod
    def in_memory(cls, columns: Sequence[str]) -> AppendTable:
        """A table kept in memory, header included."""
        return cls(columns)

    def append(self, rows: Sequence[Mapping[str, object]]) -> None:
        """Append rows (one cell's) in one write, flushed to the operating system."""
        if rows:
            self._write(row_records(rows, self.columns))

    def append_text(self, text: str) -> None:
        """Append CSV records already written in this table's columns (:func:`csv_text`), in one write."""
        if text:
            self._write(list(csv.reader(io.StringIO(text))))

    def _write(self, records: Sequence[Sequence[str]]) -> None:
        if self._handle is None:
            assert self.path is not None
            new = not self.path.exists()
            self._handle = open(self.path, "a", encoding="utf-8", newline="")  # noqa: SIM115 - open until close()
            if new:
                records = [self.columns, *records]
        self._handle.write(csv_text(records))
        self._handle.flush()

    def text(self) -> str | None:
        """What an in-memory table holds (``None`` for a table on disk)."""
        return self._handle.getvalue() if isinstance(self._handle, io.StringIO) else None

    def close(self) -> None:
        """Flush a file to disk and close it (an in-memory table stays readable)."""
        if self._handle is None or isinstance(self._handle, io.StringIO) or self._handle.closed:
            return
        os.fsync(self._handle.fileno())
        self._handle.close()


def read_records(path: Path) -> tuple[Record, list[Record], bool]:
    """The header, the complete records and whether the last line was torn.

    A torn line is a last line without its newline, or a last record with another number of
    fields than the header; any earlier record of the wrong width is damage, not a torn write,
    and a :class:`UsageError` naming the line.
    """
    text = path.read_text(encoding="utf-8")
    records = list(csv.reader(io.StringIO(text)))
    if not records:
        raise UsageError(f"{path}: empty; it has no header")
    header, body = records[0], records[1:]
    torn = bool(text) and not text.endswith("\n")
    if body and (torn or len(body[-1]) != len(header)):
        body, torn = body[:-1], True
    for number, record in enumerate(body, start=2):
        if len(record) != len(header):
            raise UsageError(
                f"{path} line {number}: {len(record)} of {len(header)} fields; the table is damaged, not just cut"
            )
    return header, body, torn


def keep_complete_cells(
    path: Path, columns: Sequence[str], expected: Mapping[int, int], id_column: str = "cell_seed"
) -> set[int]:
    """Keep only the rows of finished cells in ``path`` (rewritten atomically if anything goes); their ids.

    ``expected`` maps a cell's id to its number of rows; a cell with fewer rows (its write was cut)
    loses them so that it is measured again.  Rows of cells the plan does not know are kept.
    """
    header, body, torn = read_records(path)
    if header != list(columns):
        raise UsageError(f"{path}: its header is not the one this run declared in run.json; it was changed by hand")
    position = header.index(id_column)
    ids = [int(record[position]) if record[position] else None for record in body]
    counts = Counter(ids)
    complete = {cell for cell, count in counts.items() if cell is not None and count == expected.get(cell, count)}
    kept = [record for record, cell in zip(body, ids, strict=True) if cell in complete]
    if torn or len(kept) != len(body):
        rewrite(path, [header, *kept])
    return {cell for cell in complete if cell in expected}


def keep_cells(path: Path, cells: Collection[int], id_column: str = "cell_seed") -> None:
    """Keep only the rows of ``cells`` (and drop a torn last line) in a table beside the results."""
    header, body, torn = read_records(path)
    position = header.index(id_column)
    kept = [record for record in body if record[position] and int(record[position]) in cells]
    if torn or len(kept) != len(body):
        rewrite(path, [header, *kept])


def rewrite(path: Path, records: Sequence[Sequence[str]]) -> None:
    """Replace ``path`` with ``records`` atomically."""
    write_atomic(path, csv_text(records))


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename: never a partial file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
