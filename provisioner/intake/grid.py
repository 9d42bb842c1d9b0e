"""
A sheet as a grid of cells, every row as wide as the others → its header and
records as text, taken column by column.

calamine gives an XLSX sheet as such a grid. For 100,000 rows, a few calls per
column (``map``, ``zip``) replace a Python loop per row and per cell: about a tenth of
a second less. (A CSV takes the row path: its lines are split lazily, and making the
whole grid first measured 7% slower and 15 MB bigger.) The table is the one
``sheet._table_from_rows`` makes of the same rows, which stays the reference and
takes everything this path does not cover: no rows, rows of unequal width, a blank
sheet (tests/intake/test_grid.py compares the two on awkward grids).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence

__all__ = ["cell_text", "grid_records"]

Records = list[tuple[int, tuple[str, ...]]]


def grid_records(
    grid: Sequence[Sequence[object]], numbers: dict[tuple[int, int], float]
) -> tuple[tuple[str, ...], Records] | None:
    """
    Return the header (the first non-blank row) and the non-blank rows below it,
    numbered from 1 for the grid's first row, with their cells trimmed and aligned
    with the header; None when the grid is not one this path covers.

    The header keeps no trailing empty names, unless a row below has cells past it:
    then it is widened with empty names to the last column any row fills. Each cell
    stored as a number is noted in ``numbers`` by (row number, column index).
    """
    if not grid or len(set(map(len, grid))) != 1 or not grid[0]:
        return None
    columns = [
        _column_texts(column, index, numbers)
        for index, column in enumerate(zip(*grid, strict=True))
    ]
    rows = list(zip(*columns, strict=True))
    filled = list(map(any, rows))
    try:
        top = filled.index(True)
    except ValueError:
        return None  # a blank sheet: the reference path says so
    names = list(rows[top])
    while not names[-1]:
        names.pop()
    width = len(names)
    # A column past the header that some row below fills widens the table to it.
    used = width
    for index in range(len(columns) - 1, width - 1, -1):
        if any(itertools.islice(columns[index], top + 1, None)):
            used = index + 1
            break
    if used < len(columns):
        rows = list(zip(*columns[:used], strict=True))
    header = tuple(names) + ("",) * (used - width)
    below = zip(range(top + 2, len(rows) + 1), rows[top + 1 :], strict=True)
    return header, list(itertools.compress(below, filled[top + 1 :]))


def _column_texts(
    column: tuple[object, ...], index: int, numbers: dict[tuple[int, int], float]
) -> list[str]:
    """
    Return a column's cells as trimmed texts; note the cells stored as numbers.
    """
    try:
        # Nearly every column of a manifest holds text only: one call for all of it.
        return list(map(str.strip, column))  # type: ignore[arg-type]
    except TypeError:
        pass  # a number, a date or a boolean somewhere in it
    texts = []
    for number, value in enumerate(column, 1):
        if value.__class__ is not str:
            if value.__class__ in (float, int):
                numbers[(number, index)] = value
            value = cell_text(value)
        texts.append(value.strip())
    return texts


def cell_text(value: object) -> str:
    """
    Render a cell as the text it shows, never as a re-interpreted number or date.
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    if isinstance(value, dt.datetime):
        if value.time() == dt.time():
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)
