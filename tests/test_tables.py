"""Append-only tables: values written exactly, torn tails found, unfinished cells dropped on repair."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from rpbench.errors import UsageError
from rpbench.tables import AppendTable, encode, keep_cells, keep_complete_cells, read_records

COLUMNS = ["task", "group", "cell_seed", "value"]


def test_encode_round_trips_and_leaves_missing_values_empty() -> None:
    assert encode(0.1 + 0.2) == repr(0.1 + 0.2) and float(encode(0.1 + 0.2)) == 0.1 + 0.2
    assert [encode(v) for v in (None, math.nan, True, np.bool_(False), 3, np.int64(4), "x")] == [
        "",
        "",
        "True",
        "False",
        "3",
        "4",
        "x",
    ]
    assert float(encode(math.inf)) == math.inf


def write_cells(path: Path, cells: list[tuple[int, int]]) -> None:
    """Cells as (cell_seed, number of groups): one appended write per cell."""
    table = AppendTable.open(path, COLUMNS)
    for seed, groups in cells:
        table.append(
            [{"task": "t", "group": f"g{i}", "cell_seed": seed, "value": seed + i / 10} for i in range(groups)]
        )
    table.close()


def test_appending_keeps_one_header_and_quotes_what_needs_it(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    write_cells(path, [(1, 2)])
    table = AppendTable.open(path, COLUMNS)  # reopened: no second header
    table.append([{"task": "a,b", "group": "g", "cell_seed": 2, "value": 1.5}])
    table.close()
    header, body, torn = read_records(path)
    assert header == COLUMNS and not torn
    assert [r[0] for r in body] == ["t", "t", "a,b"]


def test_a_cut_last_line_is_torn_and_repair_drops_the_unfinished_cell(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    write_cells(path, [(1, 2), (2, 2), (3, 2)])
    text = path.read_text()
    cut = text.rindex("\n", 0, len(text) - 1) + 6  # into the last row: cell 3 has one of its two rows
    with open(path, "r+b") as handle:
        handle.truncate(cut)
    _, body, torn = read_records(path)
    assert torn and len(body) == 5
    finished = keep_complete_cells(path, COLUMNS, {1: 2, 2: 2, 3: 2})
    assert finished == {1, 2}
    _, body, torn = read_records(path)
    assert not torn and [int(r[2]) for r in body] == [1, 1, 2, 2]  # cell 3's complete row went too
    assert path.read_text().endswith("\n")


def test_a_row_of_the_wrong_width_inside_the_table_is_damage(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    write_cells(path, [(1, 2)])
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], "t,g0,1", lines[2]]) + "\n")
    with pytest.raises(UsageError, match=r"t.csv line 2: 3 of 4 fields; the table is damaged"):
        read_records(path)


def test_repair_refuses_a_header_changed_by_hand(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    write_cells(path, [(1, 1)])
    with pytest.raises(UsageError, match="its header is not the one this run declared"):
        keep_complete_cells(path, [*COLUMNS, "extra"], {1: 1})


def test_keep_cells_filters_a_side_table_by_cell(tmp_path: Path) -> None:
    path = tmp_path / "coords.csv"
    write_cells(path, [(1, 3), (2, 3)])
    keep_cells(path, {2})
    _, body, _ = read_records(path)
    assert [int(r[2]) for r in body] == [2, 2, 2]
