"""
Write a table workbook: a sheet of records, then "Summary", then any further sheets —
a run's report, a rollback's report, an export.

The table sheet is the CSV's rows for people: the header frozen and filtered and
repeated on each printed page; the columns ``ColumnKinds`` names as ids in Text
format, so a value a person types there stays text (a MAC such as 112233445566, a
16-digit code); ISO 8601 columns as real date-time cells; long-text columns wrapped,
with rows tall enough for them; the status cell coloured. Every sheet prints
landscape, one page wide (``styles.set_up_printing``).

openpyxl's write-only mode streams rows to the file instead of building every cell in
memory. Every text cell is written as text: a manifest cell that starts with ``=``
stays the text it was, never a formula.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from openpyxl import Workbook
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from provisioner.models import utc_moment
from provisioner.report.cells import Cell, cell_time
from provisioner.report.sheets import write_summary_sheet
from provisioner.report.styles import (
    DATE_TIME_FORMAT,
    HEADER_FILL,
    STATUS_FILLS,
    TEXT_FORMAT,
    CellStyle,
    Styles,
    set_up_printing,
)
from provisioner.report.summary import Line, LineKind

__all__ = [
    "STATUS_FILLS",
    "ColumnKinds",
    "SheetWriter",
    "XlsxTable",
    "summary_as_lines",
]

# Other columns are fitted to their text within these bounds; ids are cut short on
# screen and paper (the full id is in the cell), so the readable columns stay wide.
MAX_WIDTH = 40
ID_WIDTH = 22
MIN_WIDTH = 8
DATE_WIDTH = 22
# Column widths are fitted to the header and this many rows; fitting to all rows
# would cost a pass over every cell for a cosmetic gain.
WIDTH_SAMPLE = 200
# Points per line of text at the default 11-point font, and the most lines a row is
# made tall for (the cell holds the rest; a person widens the row to read it).
LINE_HEIGHT = 15
MAX_LINES = 6

_HEADER = CellStyle(bold=True, fill=HEADER_FILL, wrap=True, top=True)

#: Adds one more sheet to a workbook (the Activation codes, the run history).
SheetWriter = Callable[[Workbook], None]


@dataclass(frozen=True, slots=True)
class ColumnKinds:
    """
    What the table's columns hold, by 0-based index, where it changes their look.

    ``text``: MACs, ids and codes (Text format, width capped); ``dates``: ISO 8601
    text, written as date-time cells in UTC; ``wrapped``: long text, by its width.
    """

    text: frozenset[int] = frozenset()
    dates: frozenset[int] = frozenset()
    wrapped: Mapping[int, int] = field(default_factory=dict)


def summary_as_lines(
    summary: Sequence[tuple[str, Cell]] | Sequence[Line],
) -> list[Line]:
    """
    Take a Summary as lines, or as label/value pairs (a value of None makes the
    label a heading).
    """
    lines = []
    for item in summary:
        if isinstance(item, Line):
            lines.append(item)
        else:
            label, value = item
            kind = LineKind.HEADING if value is None else LineKind.PAIR
            lines.append(Line(kind, (label,) if value is None else (label, value)))
    return lines


class XlsxTable:
    """
    One workbook written as its records come: a table sheet, then an optional Summary
    and further sheets.

    The first ``WIDTH_SAMPLE`` records are held back to fit the column widths (a
    write-only sheet emits its widths before its first row); after that each record
    goes straight to openpyxl, which streams rows to a temporary file and writes text
    inline (no shared-strings table), so memory stays flat however many rows come.

    Args:
        header: the column names.
        status_column: the 0-based index of the cell coloured by ``STATUS_FILLS``, or
            None for no colours.
        sheet: the table sheet's name.
        kinds: which columns hold ids, dates and long text.
        title: printed at the top of each page (the file's name).
    """

    def __init__(
        self,
        header: Sequence[str],
        *,
        status_column: int | None = None,
        sheet: str = "Report",
        kinds: ColumnKinds | None = None,
        title: str | None = None,
    ) -> None:
        self._header = tuple(header)
        self._status_column = status_column
        self._kinds = kinds or ColumnKinds()
        self._title = title
        self._workbook = Workbook(write_only=True)
        self._sheet: WriteOnlyWorksheet = self._workbook.create_sheet(sheet)
        self._styles = Styles(self._sheet)
        self._held: list[Sequence[Cell]] | None = []
        self.rows = 0
        self._written = 0
        self._widths: list[float] = []

    def append(self, record: Sequence[Cell]) -> None:
        """
        Add one record below the others.
        """
        self.rows += 1
        if self._held is not None:
            self._held.append(record)
            if len(self._held) >= WIDTH_SAMPLE:
                self._start()
            return
        self._write(record)

    def save(
        self,
        file: BinaryIO,
        summary: Sequence[tuple[str, Cell]] | Sequence[Line] | None = None,
        sheets: Sequence[SheetWriter] = (),
    ) -> None:
        """
        Finish the table (its filter covers every row) and write the workbook to
        ``file``, with a "Summary" sheet when ``summary`` is given (lines, or
        label/value pairs) and then ``sheets``.
        """
        if self._held is not None:
            self._start()
        # The filter range is written after the rows, so it can name the last one.
        last = get_column_letter(max(1, len(self._header)))
        self._sheet.auto_filter.ref = f"A1:{last}{self.rows + 1}"
        if summary is not None:
            write_summary_sheet(
                self._workbook.create_sheet("Summary"),
                summary_as_lines(summary),
                title=self._title or "",
            )
        for write in sheets:
            write(self._workbook)
        self._workbook.save(file)

    def _start(self) -> None:
        held, self._held = self._held or [], None
        sheet = self._sheet
        # Write-only sheets emit the page fit, the sheet view and the column widths
        # before the first row, so they are set first.
        set_up_printing(sheet, header=self._title)
        sheet.freeze_panes = "A2"
        self._widths = self._fit_widths(held)
        for index, width in enumerate(self._widths):
            column = sheet.column_dimensions[get_column_letter(index + 1)]
            column.width = width
            if index in self._kinds.text:
                # The whole column is Text, so what a person types into an empty
                # cell stays text too; empty cells need not be written at all.
                column.number_format = TEXT_FORMAT
        sheet.append([self._styles.cell(name, _HEADER) for name in self._header])
        for record in held:
            self._write(record)

    def _write(self, record: Sequence[Cell]) -> None:
        self._written += 1
        lines = _lines_needed(record, self._kinds.wrapped)
        number = self._written + 1  # the header is row 1
        if lines > 1:
            self._sheet.row_dimensions[number].height = LINE_HEIGHT * lines
        self._sheet.append(
            [self._cell(at, value, top=lines > 1) for at, value in enumerate(record)]
        )
        if lines > 1:
            # Written with the row; dropped so memory stays flat over a long table.
            del self._sheet.row_dimensions[number]

    def _cell(self, at: int, value: Cell, *, top: bool) -> object:
        if value is None or value == "":
            # Nothing to show; a Text column's own format covers what is typed here.
            return None
        kinds, styles = self._kinds, self._styles
        if at == self._status_column and isinstance(value, str):
            return styles.cell(value, _style(fill=STATUS_FILLS.get(value), top=top))
        if at in kinds.dates:
            moment = utc_moment(value) if isinstance(value, str) else None
            if moment is not None:
                # Kept to the millisecond, so the text reads back exactly.
                written = cell_time(moment).replace(microsecond=moment.microsecond)
                return styles.cell(written, _style(DATE_TIME_FORMAT, top=top))
        if at in kinds.wrapped:
            return styles.cell(value, _style(wrap=True, top=True))
        # Text longer than its column (a long id) is cut at the cell's edge: spilt
        # over the empty cells beside it, it reads as theirs, on screen and paper.
        width = self._widths[at] if at < len(self._widths) else MAX_WIDTH
        clip = isinstance(value, str) and len(value) > width
        if at in kinds.text:
            return styles.cell(value, _style(TEXT_FORMAT, top=top, clip=clip))
        if clip or top:
            return styles.cell(value, _style(top=top, clip=clip))
        return styles.cell(value, None)

    def _fit_widths(self, records: Sequence[Sequence[Cell]]) -> list[float]:
        kinds = self._kinds
        widths: list[float] = []
        for index, title in enumerate(self._header):
            if index in kinds.wrapped:
                # A wrapped column is wide only when some row has text in it (a
                # real run's report has no plan, a dry run's few errors).
                used = any(index < len(r) and r[index] for r in records)
                widths.append(kinds.wrapped[index] if used else len(title) + 4)
                continue
            if index in kinds.dates:
                widths.append(DATE_WIDTH)
                continue
            longest = len(title) + 3  # room for the filter button
            for record in records:
                cell = record[index] if index < len(record) else None
                if cell is not None:
                    longest = max(longest, len(str(cell)))
            # Text columns hold MACs, codes (short) and long opaque ids (cut short).
            ceiling = ID_WIDTH if index in kinds.text else MAX_WIDTH
            widths.append(
                min(max(ceiling, len(title) + 3), max(MIN_WIDTH, longest + 1))
            )
        return widths


@functools.cache
def _style(
    number_format: str | None = None,
    *,
    fill: str | None = None,
    wrap: bool = False,
    top: bool = False,
    clip: bool = False,
) -> CellStyle:
    # One CellStyle per look, made once: a table styles most of its cells.
    return CellStyle(
        number_format=number_format, fill=fill, wrap=wrap, top=top, clip=clip
    )


def _lines_needed(record: Sequence[Cell], wrapped: Mapping[int, int]) -> int:
    """
    Estimate the lines the longest wrapped cell of a row takes (at most MAX_LINES).
    """
    lines = 1
    for at, width in wrapped.items():
        value = record[at] if at < len(record) else None
        if isinstance(value, str) and value:
            # A column's width counts digit widths; prose averages narrower (about
            # 1.5 characters a unit in Calibri; 1.4 keeps a margin).
            per_line = max(1, int(width * 1.4))
            needed = sum(
                math.ceil(len(part) / per_line) or 1 for part in value.split("\n")
            )
            lines = max(lines, needed)
    return min(lines, MAX_LINES)
