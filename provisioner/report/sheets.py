"""
The workbook's other sheets: Summary, Activation codes, and the hidden run history.

``summary.py`` and ``codes_sheet.py`` decide what these sheets say; this module only
gives it a look. The "history" sheet is hidden: it holds the run history as JSON, one
command a row, which ``history.py`` reads back so a rerun's report carries on the
story; people read the same history on the Summary sheet.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import BinaryIO

from openpyxl import Workbook
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from provisioner.models import RunRecord
from provisioner.report.cells import cell_time
from provisioner.report.codes_sheet import (
    CODES_SHEET,
    CodeLine,
    code_header,
    spans_orgs,
)
from provisioner.report.history import HISTORY_NOTE
from provisioner.report.styles import (
    CODE_FONT,
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
    "write_codes_sheet",
    "write_codes_workbook",
    "write_history_sheet",
    "write_summary_sheet",
]


# Summary columns: a label, then values; the run history table uses them all.
_SUMMARY_WIDTHS = (34, 22, 22, 28, 24, 44)
_HEADING = CellStyle(bold=True, size=12, rule_below=True)
_TABLE_HEADER = CellStyle(bold=True, fill=HEADER_FILL, wrap=True)
_WHEN = CellStyle(number_format=DATE_TIME_FORMAT)
# Summary values sit left, against their labels, whether text, number or time.
_SUMMARY_WHEN = CellStyle(number_format=DATE_TIME_FORMAT, left=True)
_SUMMARY_NUMBER = CellStyle(left=True)
_SUMMARY_DECIMAL = CellStyle(number_format="#,##0.0", left=True)
# The code column fits 19 characters of 14-point monospace with room to spare: a
# code cut short on paper is no code at all.
_CODES_WIDTHS = {
    "org": 24,
    "row": 6,
    "owner": 40,
    "model": 24,
    "activation code": 34,
}


def write_summary_sheet(
    sheet: WriteOnlyWorksheet, lines: Sequence[Line], *, title: str
) -> None:
    """
    Write the Summary: one page, labels in column A, values to their right.
    """
    set_up_printing(sheet, one_page=True, header=title)
    for index, width in enumerate(_SUMMARY_WIDTHS, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    styles = Styles(sheet)
    for number, line in enumerate(lines, start=1):
        if line.kind is LineKind.TITLE:
            sheet.row_dimensions[number].height = 24
        sheet.append(
            [_summary_cell(styles, line, at, v) for at, v in enumerate(line.cells)]
        )


def _summary_cell(styles: Styles, line: Line, at: int, value: object) -> object:
    kind = line.kind
    if kind is LineKind.TITLE:
        return styles.cell(value, CellStyle(bold=True, size=16))
    if kind is LineKind.SUBTITLE:
        return styles.cell(value, CellStyle(size=12))
    if kind is LineKind.HEADING:
        return styles.cell(value, _HEADING)
    if kind is LineKind.TABLE_HEADER:
        return styles.cell(value, _TABLE_HEADER)
    if at == 0 and line.status is not None:
        return styles.cell(value, CellStyle(fill=STATUS_FILLS.get(line.status.value)))
    if isinstance(value, datetime):
        return styles.cell(value, _SUMMARY_WHEN)
    if isinstance(value, float):
        return styles.cell(value, _SUMMARY_DECIMAL)
    if isinstance(value, int):
        return styles.cell(value, _SUMMARY_NUMBER)
    if kind is LineKind.TABLE_ROW and at == len(_SUMMARY_WIDTHS) - 1:
        return styles.cell(value, CellStyle(wrap=True, top=True))
    return styles.cell(value, None)


def write_codes_sheet(
    sheet: WriteOnlyWorksheet,
    lines: Sequence[CodeLine],
    *,
    group_by: str | None,
    title: str,
) -> None:
    """
    Write the Activation codes sheet: large, monospaced codes, one line each, the
    header repeated on every printed page.
    """
    orgs = spans_orgs(lines)
    header = code_header(group_by, orgs=orgs)
    set_up_printing(sheet, header=title)
    sheet.freeze_panes = "A2"
    for index, name in enumerate(header, start=1):
        width = _CODES_WIDTHS.get(name, 22)
        sheet.column_dimensions[get_column_letter(index)].width = width
    styles = Styles(sheet)
    sheet.append([styles.cell(name, _TABLE_HEADER) for name in header])
    code_style = CellStyle(number_format=TEXT_FORMAT, size=14, font_name=CODE_FONT)
    for number, line in enumerate(lines, start=2):
        sheet.row_dimensions[number].height = 22
        expiry = line.expiry
        cells = [
            styles.cell(line.row, CellStyle(left=True)),
            styles.cell(line.owner, CellStyle(number_format=TEXT_FORMAT)),
            styles.cell(line.model, None),
            styles.cell(line.code, code_style),
            styles.cell(
                cell_time(expiry) if isinstance(expiry, datetime) else expiry,
                _WHEN,
            ),
        ]
        if orgs:
            cells.insert(0, styles.cell(line.org, CellStyle(number_format=TEXT_FORMAT)))
        if group_by:
            cells.insert(
                0, styles.cell(line.group, CellStyle(number_format=TEXT_FORMAT))
            )
        sheet.append(cells)


def write_history_sheet(
    sheet: WriteOnlyWorksheet, history: Sequence[RunRecord]
) -> None:
    """
    Write the hidden history sheet: a note, then one JSON record a row.
    """
    sheet.sheet_state = "hidden"
    sheet.column_dimensions["A"].width = 120
    sheet.append([HISTORY_NOTE])
    for record in history:
        sheet.append([record.to_json()])


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
