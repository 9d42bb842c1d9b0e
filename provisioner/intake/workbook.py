"""
Reading one XLSX sheet's cells: python-calamine for the values, plus what it hides.

calamine (Rust) reads a 100,000-row sheet about ten times faster than openpyxl, but
it says nothing of three things the manifest rules need, so this module reads the
sheet's XML for them itself, with byte searches that cost little when the answer is
"none" (the common case):

- formulas nobody calculated (calamine shows them as empty cells, which would turn
  a MAC row into an activation-code row): their formula text is kept, and
  ``build_manifest`` refuses it;
- error cells such as ``#N/A`` (also shown as empty): their text is kept;
- the sheet's extent: calamine builds a dense grid from the first to the last cell
  and aborts the whole process when one stray cell at XFD1048576 makes that grid
  too big to allocate, so such a sheet is refused with the way to fix it first.

Which cells hold numbers comes from calamine's value types. openpyxl is not imported
here: it stays the writer of reports and templates.
"""

from __future__ import annotations

import datetime as dt
import io
import posixpath
import re
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from xml.etree import ElementTree

from provisioner.errors import ManifestReadError

if TYPE_CHECKING:
    from python_calamine import CalamineSheet, CalamineWorkbook

__all__ = ["Workbook", "column_letters"]

Cell = int | float | str | bool | dt.time | dt.date | dt.datetime | dt.timedelta
"""A value as calamine gives it."""

_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG = "http://schemas.openxmlformats.org/package/2006/relationships"
_OFFICE_DOCUMENT = _REL + "/officeDocument"

# A dense grid of more cells than this, holding far fewer, is a stray far-away cell.
_MAX_GRID_CELLS = 8_000_000
_MAX_COLUMNS = 16_384  # XFD, the last column a sheet can have
_ATTRIBUTE = re.compile(rb'\b(r|t)\s*=\s*["\']([^"\']*)["\']')
_REFERENCE = re.compile(r"([A-Z]{1,3})([0-9]{1,7})")
_WIDE_REFERENCE = re.compile(rb'"[A-Z]{2}')
_VALUE = re.compile(rb"<(?:\w+:)?v\s*>(.*?)</(?:\w+:)?v\s*>", re.DOTALL)


@dataclass(frozen=True, slots=True)
class SheetCells:
    """
    One sheet's rows (index 0 is row 1, index 0 of a row is column A) as calamine
    read them, and the texts that replace what calamine could not show.
    """

    name: str
    rows: list[list[Cell]]
    replaced: dict[tuple[int, int], str]


class Workbook:
    """
    An XLSX workbook read from bytes; its sheets by name, as the user sees them.
    """

    def __init__(self, path: Path, data: bytes) -> None:
        from python_calamine import CalamineWorkbook, SheetTypeEnum, SheetVisibleEnum

        self.path = path
        self._book: CalamineWorkbook = CalamineWorkbook.from_filelike(io.BytesIO(data))
        self._zip = zipfile.ZipFile(io.BytesIO(data))
        self.sheets = [
            (
                meta.name,
                meta.typ == SheetTypeEnum.WorkSheet,
                meta.visible == SheetVisibleEnum.Visible,
            )
            for meta in self._book.sheets_metadata
        ]
        self._parts: dict[str, str] | None = None

    @property
    def names(self) -> list[str]:
        return [name for name, _, _ in self.sheets]

    def is_table(self, name: str) -> bool:
        return any(is_sheet for other, is_sheet, _ in self.sheets if other == name)

    def is_visible(self, name: str) -> bool:
        return any(visible for other, _, visible in self.sheets if other == name)

    def close(self) -> None:
        self._book.close()
        self._zip.close()

    def cells(self, name: str, *, max_rows: int | None = None) -> SheetCells:
        """
        Read sheet ``name``: calamine's values and the replacement texts.

        Raises:
            ManifestReadError: the sheet's cells reach too far to be read.
        """
        xml = self._sheet_xml(name)
        self._check_extent(name, xml)
        # calamine parses without holding the GIL: the formula and error scan runs
        # meanwhile (on a second core, a tenth of a second off a 100,000-row sheet).
        parsed: list[CalamineSheet | BaseException] = []
        parser = threading.Thread(target=self._parse, args=(name, parsed))
        parser.start()
        try:
            replaced = _hidden_cells(xml)
        finally:
            parser.join()
        (sheet,) = parsed
        if isinstance(sheet, BaseException):
            raise sheet  # as if parsed here: the caller names a broken workbook
        rows = sheet.to_python(skip_empty_area=False, nrows=max_rows)
        return SheetCells(name=name, rows=rows, replaced=replaced)

    def _parse(self, name: str, parsed: list[CalamineSheet | BaseException]) -> None:
        try:
            parsed.append(self._book.get_sheet_by_name(name))
        except BaseException as error:  # noqa: BLE001 (a Rust panic too: raised by cells)
            parsed.append(error)

    def _sheet_xml(self, name: str) -> bytes:
        if self._parts is None:
            self._parts = _sheet_parts(self._zip)
        part = self._parts.get(name)
        if part is None:
            # calamine found the sheet, so the package is readable but unusual.
            raise KeyError(name)
        return self._zip.read(part)

    def _check_extent(self, name: str, xml: bytes) -> None:
        last_row = _last_row(xml)
        if last_row * _MAX_COLUMNS <= _MAX_GRID_CELLS:
            return  # small whatever its width: no need to scan for the widest cell
        width = 26
        # The loose pattern first: it finds every cell reference past column Z and
        # more (any quote before two capitals), and scans a 40 MB sheet five times
        # faster than the exact one.
        if _WIDE_REFERENCE.search(xml) and re.search(
            rb'<(?:\w+:)?c\s+r\s*=\s*"[A-Z]{2}', xml
        ):
            width = max(
                _column_number(letters.decode())
                for letters in re.findall(rb'<(?:\w+:)?c\s+r\s*=\s*"([A-Z]+)', xml)
            )
        if last_row * width <= _MAX_GRID_CELLS or (
            last_row * width <= 4 * xml.count(b"<c ")
        ):
            return
        raise ManifestReadError(
            f'{self.path}, sheet "{name}": its cells reach as far as row {last_row} '
            f"and column {column_letters(width - 1)}, far beyond the table; delete the "
            "rows and columns below and right of the table (Ctrl+End in Excel goes "
            "to the last used cell), save, and try again"
        )


def column_letters(index: int) -> str:
    """
    Return the letters of the column with 0-based ``index`` (0 → A, 26 → AA).
    """
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def _column_number(letters: str) -> int:
    number = 0
    for letter in letters:
        number = number * 26 + ord(letter) - ord("A") + 1
    return number


def _last_row(xml: bytes) -> int:
    end = xml.rfind(b"</sheetData")
    start = xml.rfind(b"<row", 0, end if end >= 0 else len(xml))
    if start < 0:
        # A prefixed ("<x:row") sheet: look for its last row the slow way.
        found = re.findall(rb"<\w+:row\b[^>]*\br\s*=\s*\"([0-9]+)", xml)
        return int(found[-1]) if found else 0
    found_row = re.match(rb'<row\b[^>]*?\br\s*=\s*"([0-9]+)"', xml[start : start + 200])
    return int(found_row.group(1)) if found_row else 0


def _sheet_parts(archive: zipfile.ZipFile) -> dict[str, str]:
    """
    Map each sheet's name to its XML part, through the package's relationships.

    The content types are parsed too, though nothing here needs them: a package
    whose parts Excel would refuse to open is refused here as well.
    """
    ElementTree.fromstring(archive.read("[Content_Types].xml"))
    book = "xl/workbook.xml"
    for relation in _relations(archive, "_rels/.rels", ""):
        if relation[0] == _OFFICE_DOCUMENT:
            book = relation[1]
    folder = posixpath.dirname(book)
    rels_part = posixpath.join(folder, "_rels", posixpath.basename(book) + ".rels")
    targets = {
        ident: target for _, target, ident in _relations(archive, rels_part, folder)
    }
    root = ElementTree.fromstring(archive.read(book))
    parts: dict[str, str] = {}
    for sheet in root.iter(f"{{{_MAIN}}}sheet"):
        target = targets.get(sheet.get(f"{{{_REL}}}id", ""))
        name = sheet.get("name")
        if target is not None and name is not None:
            parts[name] = target
    return parts


def _relations(
    archive: zipfile.ZipFile, part: str, folder: str
) -> list[tuple[str, str, str]]:
    """
    Return (type, target part, id) of each relationship in ``part``.
    """
    try:
        data = archive.read(part)
    except KeyError:
        return []
    found = []
    for relation in ElementTree.fromstring(data).iter(f"{{{_PKG}}}Relationship"):
        target = relation.get("Target", "")
        if target.startswith("/"):
            target = target[1:]
        else:
            target = posixpath.normpath(posixpath.join(folder, target))
        found.append((relation.get("Type", ""), target, relation.get("Id", "")))
    return found


def _hidden_cells(xml: bytes) -> dict[tuple[int, int], str]:
    """
    Return the text of each cell calamine shows as empty but that is not.

    Formula cells without a computed value become ``=`` and their formula; error
    cells become their error text (``#N/A``). Found by byte searches for the formula
    element and the error type, which a sheet without either passes in milliseconds.
    """
    start = xml.find(b"sheetData")
    prefix = b""
    if start > 0 and xml[start - 1 : start] == b":":
        opening = xml.rfind(b"<", 0, start)
        prefix = xml[opening + 1 : start]
    hits: set[int] = set()
    if xml.find(b"<" + prefix + b"f") >= 0:
        # One search for the three forms of the formula element (and others that
        # start alike): a sheet without formulas is scanned once, not three times.
        for needle in (
            b"<" + prefix + b"f>",
            b"<" + prefix + b"f ",
            b"<" + prefix + b"f/",
        ):
            hits.update(_positions(xml, needle))
    for needle in (b't="e"', b"t='e'"):
        hits.update(_positions(xml, needle))
    if not hits:
        return {}
    cell_open = b"<" + prefix + b"c "
    cell_close = b"</" + prefix + b"c>"
    replaced: dict[tuple[int, int], str] = {}
    masters: dict[bytes, str] | None = None
    for hit in sorted(hits):
        begin = xml.rfind(cell_open, 0, hit + 1)
        end = xml.find(cell_close, hit)
        if begin < 0 or end < 0:
            continue
        cell = xml[begin:end]
        tag_end = cell.find(b">")
        attributes = dict(_ATTRIBUTE.findall(cell[:tag_end]))
        position = _position(attributes.get(b"r", b""))
        if position is None or position in replaced:
            continue
        value = _VALUE.search(cell)
        if value is not None and value.group(1).strip():
            if attributes.get(b"t") == b"e":
                replaced[position] = _unescape(
                    value.group(1).decode("utf-8", "replace")
                )
            continue  # calamine shows the computed value
        formula = re.search(
            rb"<(?:\w+:)?f\b([^>]*?)(/>|>(.*?)</(?:\w+:)?f\s*>)", cell, re.DOTALL
        )
        if formula is None:
            continue
        text = (formula.group(3) or b"").decode("utf-8", "replace")
        if not text:
            if masters is None:
                masters = _shared_formulas(xml)
            shared = re.search(rb'\bsi\s*=\s*"([0-9]+)"', formula.group(1))
            text = masters.get(shared.group(1), "") if shared else ""
        replaced[position] = "=" + _unescape(text, quotes=True)
    return replaced


def _positions(data: bytes, needle: bytes) -> list[int]:
    found = []
    at = data.find(needle)
    while at >= 0:
        found.append(at)
        at = data.find(needle, at + 1)
    return found


def _position(reference: bytes) -> tuple[int, int] | None:
    """
    Return (row number, 0-based column) of a reference such as ``B12``.
    """
    match = _REFERENCE.fullmatch(reference.decode("ascii", "replace"))
    if match is None:
        return None
    return int(match.group(2)), _column_number(match.group(1)) - 1


def _shared_formulas(xml: bytes) -> dict[bytes, str]:
    """
    Return the formula text of each shared formula's first cell, by its ``si``.
    """
    found: dict[bytes, str] = {}
    for attributes, text in re.findall(
        rb"<(?:\w+:)?f\b([^>]*\bt\s*=\s*\"shared\"[^>]*)>(.*?)</(?:\w+:)?f\s*>",
        xml,
        re.DOTALL,
    ):
        shared = re.search(rb'\bsi\s*=\s*"([0-9]+)"', attributes)
        if shared is not None:
            found.setdefault(shared.group(1), text.decode("utf-8", "replace"))
    return found


def _unescape(text: str, *, quotes: bool = False) -> str:
    """
    Undo XML's escaping of ``<``, ``>`` and ``&`` (and, with ``quotes``, of quotes).

    As ``xml.sax.saxutils.unescape`` does, ``&amp;`` last; written here because that
    module imports ``urllib.request`` (about 50 ms of every ``validate`` of a sheet).
    """
    if "&" not in text:
        return text
    text = text.replace("&lt;", "<").replace("&gt;", ">")
    if quotes:
        text = text.replace("&quot;", '"').replace("&apos;", "'")
    return text.replace("&amp;", "&")
