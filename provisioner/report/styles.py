"""
What every sheet of a report workbook shares: cell styles, safe text, print settings.

Sheets are written in openpyxl's write-only mode, where a cell's style is copied from
a prepared one (``Styles``) rather than built per cell: a 10,000-row report styles
about a hundred thousand cells.

Print settings follow what a person does with a printed report: landscape, as wide
as one page (as many pages tall as it takes), the header row repeated on each page,
and a footer naming the report, the sheet and the page.
"""

from __future__ import annotations

from dataclasses import dataclass

from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from openpyxl.worksheet.properties import PageSetupProperties

__all__ = [
    "DATE_TIME_FORMAT",
    "HEADER_FILL",
    "STATUS_FILLS",
    "TEXT_FORMAT",
    "CellStyle",
    "Styles",
    "set_up_printing",
    "text_value",
]

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
# "@" is Excel's Text format: a value typed into such a cell stays the text typed,
# so a MAC such as 112233445566 or a 16-digit code is never turned into a number.
TEXT_FORMAT = "@"
# Date-times are UTC; the format says so, since a spreadsheet cell has no time zone.
DATE_TIME_FORMAT = 'yyyy-mm-dd hh:mm "UTC"'
CODE_FONT = "Consolas"
# The workbook's default font (openpyxl's, as Excel's).
BODY_FONT = "Calibri"
BODY_SIZE = 11


@dataclass(frozen=True, slots=True)
class CellStyle:
    """
    The look of one kind of cell; ``Styles`` turns each into a reusable style.
    """

    number_format: str | None = None
    fill: str | None = None
    bold: bool = False
    size: float | None = None
    font_name: str | None = None
    wrap: bool = False
    top: bool = False
    left: bool = False
    #: Cut the text at the cell's edge ("fill" alignment) instead of letting it spill
    #: over the empty cells beside it; only for text longer than the cell (shorter
    #: text would be repeated to fill it).
    clip: bool = False
    rule_below: bool = False


class Styles:
    """
    Prepared styles for one sheet, made once per ``CellStyle`` and copied onto cells.
    """

    def __init__(self, sheet: WriteOnlyWorksheet) -> None:
        self._sheet = sheet
        self._made: dict[CellStyle, object] = {}

    def cell(self, value: object, style: CellStyle | None) -> object:
        """
        Return what to append for one value: itself when it needs no style or text
        guard, else a styled cell.
        """
        value = text_value(value)
        if style is None and not _needs_guard(value):
            return value
        cell = WriteOnlyCell(self._sheet, value=value)
        if isinstance(value, str):
            # Always text: a manifest cell starting with "=" is not a formula.
            cell.data_type = "s"
        if style is not None:
            # One prepared style shared by every cell that looks alike: a written
            # cell is never restyled, and the workbook indexes styles by value.
            cell._style = self._prepared(style)
        return cell

    def _prepared(self, style: CellStyle) -> object:
        made = self._made.get(style)
        if made is None:
            template = WriteOnlyCell(self._sheet)
            if style.number_format:
                template.number_format = style.number_format
            if style.fill:
                template.fill = PatternFill("solid", fgColor=style.fill)
            if style.bold or style.size or style.font_name:
                # Named in full: a font without a name is shown in a serif face by
                # LibreOffice, unlike the workbook's default Calibri around it.
                template.font = Font(
                    name=style.font_name or BODY_FONT,
                    size=style.size or BODY_SIZE,
                    bold=style.bold,
                )
            if style.wrap or style.top or style.left or style.clip:
                horizontal = "fill" if style.clip else "left" if style.left else None
                template.alignment = Alignment(
                    wrap_text=style.wrap or None,
                    vertical="top" if style.top else None,
                    horizontal=horizontal,
                )
            if style.rule_below:
                template.border = Border(bottom=Side(style="thin"))
            made = self._made[style] = template._style
        return made


def text_value(value: object) -> object:
    """
    Make a value fit for a cell: empty text is no value, and the control characters
    XLSX cannot hold are shown as where they were.
    """
    if isinstance(value, str):
        if not value:
            return None
        if ILLEGAL_CHARACTERS_RE.search(value):
            return ILLEGAL_CHARACTERS_RE.sub("\N{REPLACEMENT CHARACTER}", value)
    return value


def _needs_guard(value: object) -> bool:
    return isinstance(value, str) and value.startswith("=")


def set_up_printing(
    sheet: WriteOnlyWorksheet, *, one_page: bool = False, header: str | None = None
) -> None:
    """
    Print ``sheet`` landscape, one page wide, row 1 on every page, a footer naming
    the report (``&F``), the sheet (``&A``) and the page.

    Must be called before the first row is written: the page-fit setting is part of
    what a write-only sheet writes first.

    Args:
        one_page: also fit the sheet to one page tall (the Summary).
        header: text for the top of each printed page.
    """
    sheet.sheet_properties.pageSetUpPr = PageSetupProperties(fitToPage=True)
    sheet.page_setup.orientation = "landscape"
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 1 if one_page else 0
    sheet.print_title_rows = "1:1"
    # Inches; the header and footer sit inside the top and bottom margins.
    margins = sheet.page_margins
    margins.left = margins.right = 0.4
    margins.top = margins.bottom = 0.8
    margins.header = margins.footer = 0.3
    sheet.oddFooter.left.text = "&F"
    sheet.oddFooter.center.text = "&A"
    sheet.oddFooter.right.text = "Page &P of &N"
    if header:
        sheet.oddHeader.center.text = header.replace("&", "&&")
