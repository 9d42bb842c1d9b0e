"""
Reading a manifest file as text: CSV, TSV or XLSX → a ``RawTable``.

Cells come back as the trimmed texts a spreadsheet shows, with the row numbers it
shows (header = row 1); nothing is ever read as a number or a date. An XLSX cell
stored as a number is rendered as its digits and also noted in ``RawTable.numbers``,
since a MAC that went through a number may have lost digits. Wrong encodings, old or
damaged workbooks, chart sheets and empty sheets are refused with a
``ManifestReadError`` that says how to fix the file. XLSX cells are read by
``workbook.py`` (python-calamine); what the columns mean is ``header.py``'s and
``validation.py``'s business.
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from provisioner.errors import ManifestReadError
from provisioner.intake.grid import cell_text, grid_records
from provisioner.intake.header import looks_like_header

if TYPE_CHECKING:
    from provisioner.intake.workbook import SheetCells, Workbook

__all__ = ["DELIMITED_SUFFIXES", "XLSX_SUFFIXES", "RawTable", "read_table"]

DELIMITED_SUFFIXES = {".csv": ",", ".tsv": "\t", ".tab": "\t"}
XLSX_SUFFIXES = (".xlsx", ".xlsm")

_SEP_HINT = re.compile(r"sep=(.)\r?\n")
_TEXT_FIX = 'in Excel use Save As → "CSV UTF-8 (Comma delimited) (*.csv)"'


@dataclass(frozen=True, slots=True)
class RawTable:
    """
    A sheet as text: the header row and the non-blank rows below it.

    ``columns`` are the header texts as written (trimmed); each record is the row
    number a spreadsheet shows and its cell texts, aligned with ``columns``. The
    records stay out of ``repr``: they may hold passwords. ``numbers`` holds the
    value of each XLSX cell stored as a number, by (row number, column index).
    """

    path: Path
    sheet: str | None
    columns: tuple[str, ...]
    records: list[tuple[int, tuple[str, ...]]] = field(repr=False)
    numbers: Mapping[tuple[int, int], float] = field(default_factory=dict, repr=False)


def read_table(path: Path, *, sheet: str | None = None) -> RawTable:
    """
    Read a CSV/TSV (UTF-8, with or without BOM) or XLSX file as text.

    Args:
        sheet: the XLSX sheet to read; the first visible sheet when None. Ignored for
            CSV.

    Raises:
        ManifestReadError: missing file, wrong encoding, not a spreadsheet, missing
            sheet, or nothing in it; the message says how to fix it.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in XLSX_SUFFIXES:
        return _read_xlsx(path, sheet)
    if suffix in DELIMITED_SUFFIXES:
        return _read_delimited(path, DELIMITED_SUFFIXES[suffix])
    if suffix in (".xls", ".ods", ".numbers"):
        raise ManifestReadError(
            f"{path}: {suffix} files are not supported; save the sheet as .xlsx "
            "(Excel Workbook) or as CSV UTF-8 and try again"
        )
    raise ManifestReadError(
        f"{path}: not a manifest file type ({suffix or 'no extension'}); use a .csv, "
        ".tsv or .xlsx file"
    )


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ManifestReadError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ManifestReadError(f"{path}: is a folder, not a manifest file") from None
    except OSError as error:
        raise ManifestReadError(f"{path}: cannot be read ({error.strerror})") from None


def _decode(path: Path, data: bytes) -> str:
    """
    Decode UTF-8 (a BOM is dropped); refuse anything else with the way to fix it.
    """
    if data.startswith(b"PK\x03\x04"):
        raise ManifestReadError(
            f"{path}: this is an Excel workbook (XLSX) with a {path.suffix} name; "
            "rename it to .xlsx, or save it from Excel as CSV UTF-8"
        )
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        raise ManifestReadError(
            f"{path}: this is an old Excel .xls workbook, not CSV text; open it in "
            "Excel and save it as .xlsx or as CSV UTF-8"
        )
    sample = data[:4096]
    is_utf16 = data.startswith((b"\xff\xfe", b"\xfe\xff")) or (
        # UTF-16 text without a BOM has a NUL in every other byte of ASCII text.
        max(sample[0::2].count(0), sample[1::2].count(0)) >= len(sample) // 4 > 0
    )
    if b"\x00" in sample and not is_utf16:
        raise ManifestReadError(
            f"{path}: this is not a text file (it holds binary data); save the "
            "sheet as CSV UTF-8 or as .xlsx"
        )
    if is_utf16:
        raise ManifestReadError(
            f'{path}: the file is UTF-16 text (Excel\'s "Unicode Text"), not UTF-8; '
            f"{_TEXT_FIX}, or in a text editor save it with the encoding UTF-8"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        byte = data[error.start]
        raise ManifestReadError(
            f"{path}: line {line} is not UTF-8 text (byte 0x{byte:02X}); the file was "
            "probably saved in a legacy encoding such as Latin-1 or Windows-1252. "
            f"Save it as UTF-8: {_TEXT_FIX}; in LibreOffice choose the character "
            'set "Unicode (UTF-8)"'
        ) from None


def _read_delimited(path: Path, delimiter: str) -> RawTable:
    text = _decode(path, _read_bytes(path))
    hint = _SEP_HINT.match(text)
    if hint:
        # Excel's "sep=;" first line names the separator and is not shown as a row.
        delimiter, text = hint.group(1), text[hint.end() :]
    first_line = text.lstrip("\r\n").split("\n", 1)[0]
    if not hint and delimiter == "," and "," not in first_line:
        # Excel in many European locales writes ";" as the CSV separator.
        if ";" in first_line:
            delimiter = ";"
        elif "\t" in first_line:
            delimiter = "\t"
    if '"' not in text:
        lines = _plain_lines(text)
        if lines is not None:
            # No quotes and one kind of line end: each line is its cells split on
            # the separator, which is what the csv module would make of it, ~3x
            # faster. A sheet with quoted cells takes the csv module below.
            cells = map(str.split, lines, itertools.repeat(delimiter))
            return _table_from_rows(path, None, enumerate(cells, 1))
    # strict: an unclosed quote is an error, not a value swallowing the rest of the
    # file.
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    # zip takes the number first: when the reader fails, ``numbers`` has already
    # given out the number of the row it could not read.
    numbers = itertools.count(1)
    try:
        return _table_from_rows(path, None, zip(numbers, reader, strict=False))
    except csv.Error as error:
        raise ManifestReadError(
            f"{path}: row {next(numbers) - 1} cannot be read as CSV ({error}); check "
            'its double quotes: a quoted value must end with a " followed by the '
            'separator, and a quote inside a value is written twice ("")'
        ) from None


def _plain_lines(text: str) -> list[str] | None:
    """
    Split ``text`` into its lines as the csv module would: on ``\n``, or on
    ``\r\n`` (Excel's line end); None when a lone ``\r`` ends some line, which
    the csv module also takes as a line end.
    """
    if "\r" in text:
        text = text.replace("\r\n", "\n")
        if "\r" in text:
            return None
    lines = text.split("\n")
    if not lines[-1]:
        lines.pop()  # the line end of the last line starts no row
    return lines


def _table_from_rows(
    path: Path,
    sheet: str | None,
    rows: Iterable[tuple[int, Sequence[str]]],
) -> RawTable:
    """
    Find the header (the first non-blank row) and collect the non-blank rows below.
    """
    iterator = iter(rows)
    header: tuple[str, ...] | None = None
    for _, cells in iterator:
        names = [cell.strip() for cell in cells]
        if any(names):
            while not names[-1]:
                names.pop()
            header = tuple(names)
            break
    where = f"{path}" + (f", sheet {sheet!r}" if sheet else "")
    if header is None:
        raise ManifestReadError(
            f"{where}: the file is empty; the first row must be the header "
            "(mac, model, an owner column: workspaceId, personId, workspace or personEmail; tags)"
        )
    width = len(header)
    records: list[tuple[int, tuple[str, ...]]] = []
    overflow = width
    append, strip = records.append, str.strip  # looked up once, not per row
    for number, cells in iterator:
        stripped = tuple(map(strip, cells))
        if not any(stripped):
            continue
        if len(stripped) != width:
            if len(stripped) > width:
                tail = stripped[width:]
                if any(tail):
                    overflow = max(overflow, width + _last_filled(tail) + 1)
                else:
                    stripped = stripped[:width]
            else:
                stripped += ("",) * (width - len(stripped))
        append((number, stripped))
    if overflow > width:
        header += ("",) * (overflow - width)
        records = [
            (number, (cells + ("",) * overflow)[:overflow]) for number, cells in records
        ]
    return RawTable(path=path, sheet=sheet, columns=header, records=records)


def _last_filled(cells: Sequence[str]) -> int:
    return max(index for index, cell in enumerate(cells) if cell)


def _read_xlsx(path: Path, sheet: str | None) -> RawTable:
    data = _read_bytes(path)
    if not data.startswith(b"PK\x03\x04"):
        if data.startswith(b"\xd0\xcf\x11\xe0"):
            raise ManifestReadError(
                f"{path}: this is an old Excel .xls workbook (or an encrypted one) "
                "named .xlsx; open it in Excel and save it as an Excel Workbook "
                "(.xlsx) without a password"
            )
        raise ManifestReadError(
            f"{path}: not an Excel workbook (the file is not XLSX data); save the "
            "sheet as .xlsx or as CSV UTF-8"
        )
    # Imported here: a CSV never pays for the XLSX reader.
    from provisioner.intake.workbook import Workbook

    with _broken_workbook(path):
        workbook = Workbook(path, data)
        try:
            name = _pick_sheet(path, workbook, sheet)
            cells = workbook.cells(name)
            numbers: dict[tuple[int, int], float] = {}
            # The replaced cells (rare) may lie outside calamine's grid: the row path.
            found = None if cells.replaced else grid_records(cells.rows, numbers)
            if found is None:
                numbers.clear()
                table = _table_from_rows(path, name, _texts(cells, numbers))
            else:
                table = RawTable(path, name, columns=found[0], records=found[1])
            if sheet is None and not table.records:
                _refuse_empty_first_sheet(path, workbook, name)
        finally:
            workbook.close()
    return RawTable(
        path=path,
        sheet=name,
        columns=table.columns,
        records=table.records,
        numbers=numbers,
    )


def _texts(
    cells: SheetCells, numbers: dict[tuple[int, int], float]
) -> Iterator[tuple[int, list[str]]]:
    """
    Yield each row's cells as texts, noting in ``numbers`` the cells stored as numbers.
    """
    rows = cells.rows
    for (number, column), text in cells.replaced.items():
        # A formula nobody calculated may lie outside the area calamine saw.
        while len(rows) < number:
            rows.append([])
        row = rows[number - 1]
        row.extend([""] * (column + 1 - len(row)))
        row[column] = text
    for index, values in enumerate(rows):
        number = index + 1
        # In place, one pass: nearly every cell of a manifest is already text.
        for column, value in enumerate(values):
            if value.__class__ is not str:
                if value.__class__ in (float, int):
                    numbers[(number, column)] = value
                values[column] = cell_text(value)
        yield number, values  # type: ignore[misc]


# A broken workbook surfaces as any of these, from zipfile (a bad CRC, a truncated or
# encrypted member, an unknown compression), zlib, the XML parser, or calamine (its
# errors derive from CalamineError; a Rust panic is a PanicException, which derives
# from BaseException and is caught by name). Found by tests/intake/test_fuzz_manifest.py.
# zipfile's and zlib's own errors are added where a workbook is read: a CSV never
# imports them.
_BROKEN_WORKBOOK_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    KeyError,
    IndexError,
    ValueError,
    TypeError,
    SyntaxError,
    EOFError,
    NotImplementedError,
    RuntimeError,
)


@contextlib.contextmanager
def _broken_workbook(path: Path) -> Iterator[None]:
    """
    Turn the errors a damaged workbook raises into one ``ManifestReadError``.
    """
    import zipfile
    import zlib

    from python_calamine import CalamineError

    message = (
        f"{path}: cannot be opened as an Excel workbook ({{}}); open it in Excel and "
        "save it again as .xlsx, or save it as CSV UTF-8"
    )
    broken: tuple[type[BaseException], ...] = (
        *_BROKEN_WORKBOOK_ERRORS,
        zipfile.BadZipFile,
        zlib.error,
        CalamineError,
    )
    try:
        yield
    except ManifestReadError:
        raise
    except broken as error:
        raise ManifestReadError(message.format(type(error).__name__)) from None
    except BaseException as error:
        if type(error).__name__ != "PanicException":
            raise
        raise ManifestReadError(message.format("the reader gave up")) from None


def _pick_sheet(path: Path, workbook: Workbook, sheet: str | None) -> str:
    names = workbook.names
    if not names:
        raise ManifestReadError(
            f"{path}: the workbook has no sheets; open it in Excel and save it "
            "again as .xlsx, or save it as CSV UTF-8"
        )
    listed = ", ".join(f'"{name}"' for name in names)
    if sheet is None:
        # The first sheet Excel shows: a hidden one (a stale wave, a drop-down's
        # list) is never read unless named, as nobody saw what it holds.
        shown = [n for n in names if workbook.is_visible(n) and workbook.is_table(n)]
        chosen = shown[0] if shown else names[0]
    else:
        matches = [name for name in names if name == sheet] or [
            name for name in names if name.casefold() == sheet.strip().casefold()
        ]
        if not matches:
            raise ManifestReadError(
                f'{path}: there is no sheet "{sheet}"; the sheets are {listed}. '
                "Pass one of them with --sheet"
            )
        chosen = matches[0]
    if not workbook.is_table(chosen):
        raise ManifestReadError(
            f'{path}: sheet "{chosen}" is a chart, not a table; the sheets are '
            f"{listed}. Pass the one with the devices with --sheet"
        )
    return chosen


def _refuse_empty_first_sheet(path: Path, workbook: Workbook, name: str) -> None:
    """
    Point at another sheet when the first one is empty but another holds a manifest.
    """
    others = [
        other
        for other in workbook.names
        if other != name
        and workbook.is_table(other)
        and workbook.is_visible(other)
        and _looks_like_manifest(workbook, other)
    ]
    if others:
        raise ManifestReadError(
            f'{path}: the first sheet "{name}" has no rows below its header; the '
            f'devices seem to be on sheet "{others[0]}": pass --sheet "{others[0]}"'
        )


def _looks_like_manifest(workbook: Workbook, name: str) -> bool:
    return any(
        looks_like_header(text.strip() for text in texts)
        for _, texts in _texts(workbook.cells(name, max_rows=5), {})
    )
