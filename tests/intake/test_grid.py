"""
grid.py reads a grid of cells column by column: its table must be the one the row
path (``sheet._texts`` then ``sheet._table_from_rows``) makes of the same cells, for
blank rows, cells past the header, numbers, dates and booleans; and a grid it does
not cover must be one the row path refuses or reads itself.
"""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from openpyxl import Workbook

from provisioner.errors import ManifestReadError
from provisioner.intake import sheet
from provisioner.intake.grid import grid_records
from provisioner.intake.manifest import read_table
from provisioner.intake.workbook import SheetCells
from provisioner.intake.workbook import Workbook as Reader

PATH = Path("m.xlsx")
CELLS = st.sampled_from(
    [
        "",
        " ",
        "a",
        " b ",
        "=x",
        "mac",
        1.0,
        12.5,
        112233445566.0,
        -3,
        True,
        False,
        dt.date(2024, 1, 2),
        dt.datetime(2024, 1, 2, 3, 4),
        dt.time(1, 2),
    ]
)


def by_rows(grid: list[list[object]]) -> tuple[object, dict[tuple[int, int], float]]:
    """The reference: the table the row path makes, or its error."""
    numbers: dict[tuple[int, int], float] = {}
    cells = SheetCells(name="s", rows=copy.deepcopy(grid), replaced={})  # type: ignore[arg-type]
    try:
        table = sheet._table_from_rows(PATH, None, sheet._texts(cells, numbers))
    except ManifestReadError as error:
        return str(error), numbers
    return (table.columns, table.records), numbers


@given(
    st.integers(min_value=1, max_value=5).flatmap(
        lambda width: st.lists(st.lists(CELLS, min_size=width, max_size=width))
    )
)
def test_a_grid_reads_as_the_row_path_reads_it(grid: list[list[object]]) -> None:
    numbers: dict[tuple[int, int], float] = {}
    found = grid_records(copy.deepcopy(grid), numbers)
    expected, expected_numbers = by_rows(grid)
    if found is None:
        # Only a grid the row path refuses (nothing in it) is left to it.
        assert isinstance(expected, str)
        assert "the file is empty" in expected
    else:
        assert found == expected
        assert numbers == expected_numbers


@pytest.mark.parametrize(
    "grid",
    [
        [],
        [[]],
        [["mac", "model"], ["a"]],  # ragged: the row path's
        [["", ""], [" ", ""]],
    ],
)
def test_grids_it_does_not_cover_are_left_to_the_row_path(
    grid: list[list[object]],
) -> None:
    assert grid_records(grid, {}) is None


def test_a_row_past_the_header_widens_the_table_with_empty_names() -> None:
    grid: list[list[object]] = [
        ["", "", "", ""],
        ["mac", "model", "", ""],
        ["a", "b", "", "c"],
        ["", "", "", ""],
        ["d", " ", "", ""],
    ]
    assert grid_records(grid, {}) == (
        ("mac", "model", "", ""),
        [(3, ("a", "b", "", "c")), (5, ("d", "", "", ""))],
    )


def test_a_workbook_reads_as_the_row_path_reads_its_cells(tmp_path: Path) -> None:
    """The real reader: numbers, dates, booleans, blank rows, a cell past the header."""
    path = tmp_path / "m.xlsx"
    workbook = Workbook()
    rows = workbook.active
    rows.append(["mac", "model", "workspaceId"])
    rows.append([112233445566, "Cisco 8851", "ws"])
    rows.append([])
    rows.append([" AABBCCDDEEFF ", dt.date(2024, 5, 6), True, None, "extra"])
    rows.append([1.5, None, "ws"])
    workbook.save(path)

    table = read_table(path)

    reader = Reader(path, path.read_bytes())
    try:
        grid = reader.cells(reader.names[0]).rows
    finally:
        reader.close()
    assert grid_records(copy.deepcopy(grid), {}) is not None  # the grid path
    expected, numbers = by_rows(grid)  # type: ignore[arg-type]
    assert (table.columns, table.records) == expected
    assert table.numbers == numbers
    assert table.numbers == {(2, 0): 112233445566, (5, 0): 1.5}
    assert table.records[1] == (
        4,
        ("AABBCCDDEEFF", "2024-05-06", "TRUE", "", "extra"),
    )
