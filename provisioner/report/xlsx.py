"""
Write a table workbook: a sheet of records (frozen header, filters, status colours),
then "Summary" — a run's report, a rollback's report, an export.

openpyxl's write-only mode streams rows to the file instead of building every cell in
memory: a 10,000-row report takes about a second and little memory. Every text cell is
written as text: a manifest cell that starts with ``=`` stays the text it was, never a
formula.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from copy import copy
from typing import Any, BinaryIO

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.cell.cell import Cell as SheetCell
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from provisioner.report.cells import Cell

__all__ = ["STATUS_FILLS", "XlsxTable", "write_xlsx"]

# Excel's own "good / neutral / bad" palette, so the colours read as they do in any
# other workbook: green ended well, blue waits for the device, red and amber need a
# person, grey is a plan or a row never begun (neutral: nothing went wrong with it).
STATUS_FILLS = {
    "created": "C6EFCE",
    "adopted": "E2EFDA",
    "code_issued": "DDEBF7",
    "code_pending": "BDD7EE",
    "failed": "FFC7CE",
    "invalid": "FFEB9C",
    "not_started": "F2F2F2",
    "planned": "EDEDED",
    # A rollback's statuses: green the device is gone, amber a person should look at
    # a device that was kept, grey nothing to do.
    "deleted": "C6EFCE",
    "already_gone": "E2EFDA",
    "kept": "FFEB9C",
    "skipped": "EDEDED",
}
HEADER_FILL = "D9D9D9"
MAX_WIDTH = 60
MIN_WIDTH = 8
# Column widths are fitted to the header and this many rows; fitting to all rows
# would cost a pass over every cell for a cosmetic gain.
WIDTH_SAMPLE = 200


class XlsxTable:
    """
    One workbook written as its records come: a table sheet, then an optional Summary.

    The first ``WIDTH_SAMPLE`` records are held back to fit the column widths (a
    write-only sheet emits its widths before its first row); after that each record
    goes straight to openpyxl, which streams rows to a temporary file and writes text
    inline (no shared-strings table), so memory stays flat however many rows come.

    Args:
        header: the column names.
        status_column: the 0-based index of the cell coloured by ``STATUS_FILLS``, or
            None for no colours.
        sheet: the table sheet's name.
    """

    def __init__(
        self,
        header: Sequence[str],
        *,
        status_column: int | None = None,
        sheet: str = "Report",
    ) -> None:
        self._header = tuple(header)
        self._status_column = status_column
        self._workbook = Workbook(write_only=True)
        self._sheet: WriteOnlyWorksheet = self._workbook.create_sheet(sheet)
        self._held: list[Sequence[Cell]] | None = []
        self._styles: dict[str, Any] = {}
        self.rows = 0

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
        self, file: BinaryIO, summary: Sequence[tuple[str, Cell]] | None = None
    ) -> None:
        """
        Finish the table (its filter covers every row) and write the workbook to
        ``file``; ``summary`` label/value pairs make a "Summary" sheet (a value of
        None makes the label a heading).
        """
        if self._held is not None:
            self._start()
        # The filter range is written after the rows, so it can name the last one.
        last = get_column_letter(max(1, len(self._header)))
        self._sheet.auto_filter.ref = f"A1:{last}{self.rows + 1}"
        if summary is not None:
            _write_summary_sheet(self._workbook.create_sheet("Summary"), summary)
        self._workbook.save(file)

    def _start(self) -> None:
        held, self._held = self._held or [], None
        sheet = self._sheet
        # Write-only sheets emit the sheet view and column widths before the first
        # row, so they are set first.
        sheet.freeze_panes = "A2"
        _fit_columns(sheet, self._header, held)
        sheet.append([_heading(sheet, text) for text in self._header])
        self._styles = {
            status: _styled(sheet, status, fill=colour)._style
            for status, colour in STATUS_FILLS.items()
        }
        for record in held:
            self._write(record)

    def _write(self, record: Sequence[Cell]) -> None:
        sheet = self._sheet
        values: list[object] = [_value(sheet, cell) for cell in record]
        column = self._status_column
        if column is not None and column < len(record):
            status = record[column]
            style = self._styles.get(status) if isinstance(status, str) else None
            if style is not None:
                cell = WriteOnlyCell(sheet, value=status)
                cell._style = copy(style)
                values[column] = cell
        sheet.append(values)


def write_xlsx(
    file: BinaryIO,
    header: Sequence[str],
    records: Iterable[Sequence[Cell]],
    status_column: int | None,
    summary: Sequence[tuple[str, Cell]],
) -> None:
    """
    Write the "Report" and "Summary" sheets to ``file``.

    Args:
        status_column: the 0-based index of the ``status`` cell in each record.
        summary: label/value pairs; a value of None makes the label a heading.
    """
    table = XlsxTable(header, status_column=status_column)
    for record in records:
        table.append(record)
    table.save(file, summary)


def _write_summary_sheet(
    sheet: WriteOnlyWorksheet, summary: Sequence[tuple[str, Cell]]
) -> None:
    sheet.column_dimensions["A"].width = 32
    sheet.column_dimensions["B"].width = 40
    for label, value in summary:
        if value is None:
            sheet.append([_heading(sheet, label)])
        else:
            sheet.append([_value(sheet, label), _value(sheet, value)])


def _fit_columns(
    sheet: WriteOnlyWorksheet,
    header: Sequence[str],
    records: Sequence[Sequence[Cell]],
) -> None:
    for index, title in enumerate(header):
        longest = len(title) + 3  # room for the filter button
        for record in records:
            cell = record[index] if index < len(record) else None
            if cell is not None:
                longest = max(longest, len(str(cell)))
        width = min(MAX_WIDTH, max(MIN_WIDTH, longest + 1))
        sheet.column_dimensions[get_column_letter(index + 1)].width = width


def _value(sheet: WriteOnlyWorksheet, cell: Cell) -> object:
    """
    Return what to append for one cell: the plain value, or a text cell when openpyxl
    would otherwise take the text for a formula or refuse a control character.
    """
    if not isinstance(cell, str):
        return cell
    if not cell:
        return None
    text: str = cell
    if ILLEGAL_CHARACTERS_RE.search(text):
        # XLSX cannot hold these control characters at all; show where they were.
        text = ILLEGAL_CHARACTERS_RE.sub("\N{REPLACEMENT CHARACTER}", text)
    if text.startswith("="):
        as_text = WriteOnlyCell(sheet, value=text)
        as_text.data_type = "s"
        return as_text
    return text


def _heading(sheet: WriteOnlyWorksheet, text: str) -> SheetCell:
    cell = _value(sheet, text)
    styled = cell if isinstance(cell, SheetCell) else WriteOnlyCell(sheet, cell)
    styled.font = Font(bold=True)
    styled.fill = PatternFill("solid", fgColor=HEADER_FILL)
    return styled


def _styled(sheet: WriteOnlyWorksheet, text: str, *, fill: str) -> SheetCell:
    cell = WriteOnlyCell(sheet, value=text)
    cell.fill = PatternFill("solid", fgColor=fill)
    return cell
