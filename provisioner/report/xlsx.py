"""
Write a report workbook: "Report", "Summary", "Activation codes" (when codes were
issued) and the hidden "history".

The Report sheet is the CSV's rows for people: the header frozen and filtered and
repeated on each printed page; MAC, id and code columns in Text format, so a value a
person types there stays text (a MAC such as 112233445566, a 16-digit code);
``activationExpiry`` a real date-time cell; the error and plan columns wrapped, with
rows tall enough for them; the status cell coloured.

openpyxl's write-only mode streams rows to the file instead of building every cell in
memory. Every text cell is written as text: a manifest cell that starts with ``=``
stays the text it was, never a formula.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from openpyxl import Workbook
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from provisioner.models import RunRecord
from provisioner.report.cells import RESULT_COLUMNS, Cell, cell_time, expiry_moment
from provisioner.report.codes_sheet import CodeLine
from provisioner.report.sheets import (
    CODES_SHEET,
    HISTORY_SHEET,
    SUMMARY_SHEET,
    write_codes_sheet,
    write_history_sheet,
    write_summary_sheet,
)
from provisioner.report.styles import (
    DATE_TIME_FORMAT,
    HEADER_FILL,
    STATUS_FILLS,
    TEXT_FORMAT,
    CellStyle,
    Styles,
    set_up_printing,
)
from provisioner.report.summary import Line

__all__ = [
    "REPORT_SHEET",
    "STATUS_FILLS",
    "TEXT_RESULTS",
    "WRAPPED_WIDTHS",
    "ReportBook",
    "write_codes_workbook",
    "write_xlsx",
]

REPORT_SHEET = "Report"
# Result columns that hold ids or codes: Text, never numbers.
TEXT_RESULTS = frozenset({"deviceId", "activationCode", "trackingId"})
# Wrapped columns and their widths: long sentences read better as a paragraph.
WRAPPED_WIDTHS = {"error": 60, "plan": 48}
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


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportBook:
    """
    Everything the report workbook shows.

    ``text_inputs`` are the input columns (0-based) holding MACs and ids; ``codes``
    empty means no Activation codes sheet.
    """

    title: str
    header: Sequence[str]
    records: Sequence[Sequence[Cell]]
    input_width: int
    text_inputs: frozenset[int]
    summary: Sequence[Line]
    history: Sequence[RunRecord]
    codes: Sequence[CodeLine] = field(default_factory=tuple)
    group_by: str | None = None


def write_xlsx(file: BinaryIO, book: ReportBook) -> None:
    """
    Write the report workbook to ``file``.
    """
    workbook = Workbook(write_only=True)
    _write_report_sheet(workbook.create_sheet(REPORT_SHEET), book)
    write_summary_sheet(
        workbook.create_sheet(SUMMARY_SHEET), book.summary, title=book.title
    )
    if book.codes:
        write_codes_sheet(
            workbook.create_sheet(CODES_SHEET),
            book.codes,
            group_by=book.group_by,
            title=f"Activation codes · {book.title}",
        )
    write_history_sheet(workbook.create_sheet(HISTORY_SHEET), book.history)
    workbook.save(file)


def write_codes_workbook(
    file: BinaryIO, lines: Sequence[CodeLine], *, group_by: str | None, title: str
) -> None:
    """
    Write a workbook holding only the Activation codes sheet (``codes --sheet``).
    """
    workbook = Workbook(write_only=True)
    write_codes_sheet(
        workbook.create_sheet(CODES_SHEET), lines, group_by=group_by, title=title
    )
    workbook.save(file)


@dataclass(frozen=True, slots=True)
class _Columns:
    """
    What each column of the Report sheet is, by 0-based index.
    """

    status: int
    expiry: int
    text: frozenset[int]
    wrapped: dict[int, int]


def _columns(book: ReportBook) -> _Columns:
    start = book.input_width
    result = {name: start + at for at, name in enumerate(RESULT_COLUMNS)}
    return _Columns(
        status=result["status"],
        expiry=result["activationExpiry"],
        text=book.text_inputs | {result[name] for name in TEXT_RESULTS},
        wrapped={result[name]: width for name, width in WRAPPED_WIDTHS.items()},
    )


def _write_report_sheet(sheet: WriteOnlyWorksheet, book: ReportBook) -> None:
    # Write-only sheets emit the sheet view, page fit and column widths before the
    # first row, so they are set first; the filter range is written at the end.
    columns = _columns(book)
    set_up_printing(sheet, header=book.title)
    sheet.freeze_panes = "A2"
    widths = _fit_widths(book, columns)
    for index, width in enumerate(widths):
        sheet.column_dimensions[get_column_letter(index + 1)].width = width
    last = get_column_letter(max(1, len(book.header)))
    sheet.auto_filter.ref = f"A1:{last}{len(book.records) + 1}"
    styles = Styles(sheet)
    sheet.append([styles.cell(name, _HEADER) for name in book.header])
    for number, record in enumerate(book.records, start=2):
        lines = _lines_needed(record, columns.wrapped)
        if lines > 1:
            sheet.row_dimensions[number].height = LINE_HEIGHT * lines
        sheet.append(
            [
                _report_cell(styles, columns, at, value, top=lines > 1)
                for at, value in enumerate(record)
            ]
        )


def _report_cell(
    styles: Styles, columns: _Columns, at: int, value: Cell, *, top: bool
) -> object:
    if at == columns.status and isinstance(value, str):
        return styles.cell(value, CellStyle(fill=STATUS_FILLS.get(value), top=top))
    if at == columns.expiry:
        moment = expiry_moment(value) if isinstance(value, str) else None
        if moment is not None:
            # Kept to the millisecond, so the text reads back exactly.
            written = cell_time(moment).replace(microsecond=moment.microsecond)
            return styles.cell(
                written, CellStyle(number_format=DATE_TIME_FORMAT, top=top)
            )
    if at in columns.text:
        return styles.cell(value, CellStyle(number_format=TEXT_FORMAT, top=top))
    if at in columns.wrapped:
        return styles.cell(value, CellStyle(wrap=True, top=True))
    return styles.cell(value, CellStyle(top=True) if top else None)


def _lines_needed(record: Sequence[Cell], wrapped: dict[int, int]) -> int:
    """
    Estimate the lines the longest wrapped cell of a row takes (at most MAX_LINES).
    """
    lines = 1
    for at, width in wrapped.items():
        value = record[at] if at < len(record) else None
        if isinstance(value, str) and value:
            # A column's width counts digit widths; text averages a little narrower.
            per_line = max(1, int(width * 1.2))
            needed = sum(
                math.ceil(len(part) / per_line) or 1 for part in value.split("\n")
            )
            lines = max(lines, needed)
    return min(lines, MAX_LINES)


def _fit_widths(book: ReportBook, columns: _Columns) -> list[float]:
    widths: list[float] = []
    for index, title in enumerate(book.header):
        if index in columns.wrapped:
            # A wrapped column is wide only when some row has text in it (a real
            # run's report has no plan, a dry run's few errors).
            used = any(index < len(record) and record[index] for record in book.records)
            widths.append(columns.wrapped[index] if used else len(title) + 4)
            continue
        if index == columns.expiry:
            widths.append(DATE_WIDTH)
            continue
        longest = len(title) + 3  # room for the filter button
        for record in book.records[:WIDTH_SAMPLE]:
            cell = record[index] if index < len(record) else None
            if cell is not None:
                longest = max(longest, len(str(cell)))
        # Text columns hold MACs, codes (short) and long opaque ids (cut short).
        ceiling = ID_WIDTH if index in columns.text else MAX_WIDTH
        widths.append(min(max(ceiling, len(title) + 3), max(MIN_WIDTH, longest + 1)))
    return widths
