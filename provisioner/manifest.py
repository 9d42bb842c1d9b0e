"""
Manifest intake: a CSV, TSV or XLSX file → a validated, normalised ``Manifest``.

Two steps, so the report module can reuse the first to read reports back:

``read_table``
    the file → a ``RawTable`` of trimmed cell texts, with the row numbers a
    spreadsheet shows (header = row 1). Nothing is ever read as a number or a date.
    This is the only place that touches openpyxl for input.
``build_manifest``
    header matching, normalisation and validation → ``Manifest``. A bad row becomes a
    ``Row`` with ``problems``; only a file that cannot be used at all raises.

No API call happens here: the model checks use the offline catalogue.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import csv
import datetime as dt
import io
import re
import warnings
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from provisioner.catalogue import Catalogue, CatalogueModel, load_catalogue
from provisioner.errors import ManifestError, ManifestReadError, MissingColumnError
from provisioner.mac import normalise_mac
from provisioner.models import Manifest, Problem, Row

__all__ = [
    "FIELD_ALIASES",
    "PASSWORD_MASK",
    "RawTable",
    "build_manifest",
    "header_key",
    "load_manifest",
    "match_headers",
    "read_table",
]

PASSWORD_MASK = "••••"
"""What a password cell shows in problems and reports; read back, it means "unknown"."""

DELIMITED_SUFFIXES = {".csv": ",", ".tsv": "\t", ".tab": "\t"}
XLSX_SUFFIXES = (".xlsx", ".xlsm")

FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "mac": ("mac", "macaddress", "macaddr", "devicemac", "devicemacaddress"),
    "model": ("model", "devicemodel", "modelname", "product", "phonemodel"),
    "workspaceId": ("workspaceid", "placeid"),
    "personId": ("personid", "peopleid"),
    "tags": ("tags", "tag", "devicetags", "labels"),
    "orgId": ("orgid", "organizationid", "organisationid", "customerorgid"),
    "password": ("password", "devicepassword", "sippassword", "passwd", "pwd"),
}
"""Canonical field → the header keys (see ``header_key``) that supply it."""

_FIELD_BY_KEY = {key: name for name, keys in FIELD_ALIASES.items() for key in keys}
_HEADER_NOISE = re.compile(r"[\s_\-]+")
_HEADER_NOTE = re.compile(
    r"\s*(\((required|optional|mandatory)\)|\*)\s*$", re.IGNORECASE
)
_TAG_SPLIT = re.compile(r"[;,|]")
_SEP_HINT = re.compile(r"sep=(.)\r?\n")
_ID_KINDS = {"workspaceId": "PLACE", "personId": "PEOPLE", "orgId": "ORGANIZATION"}
_ID_FIELD_BY_KIND = {kind: name for name, kind in _ID_KINDS.items()}
_TEXT_FIX = 'in Excel use Save As → "CSV UTF-8 (Comma delimited) (*.csv)"'


@dataclass(frozen=True, slots=True)
class RawTable:
    """
    A sheet as text: the header row and the non-blank rows below it.

    ``columns`` are the header texts as written (trimmed); each record is the row
    number a spreadsheet shows and its cell texts, aligned with ``columns``. The
    records stay out of ``repr``: they may hold passwords.
    """

    path: Path
    sheet: str | None
    columns: tuple[str, ...]
    records: list[tuple[int, tuple[str, ...]]] = field(repr=False)


def load_manifest(
    path: Path, *, sheet: str | None = None, catalogue: Catalogue | None = None
) -> Manifest:
    """
    Read and validate a manifest file.

    Raises:
        ManifestReadError: the file cannot be read.
        ManifestError: the header row is unusable (``MissingColumnError`` when a
            required column is absent).
    """
    return build_manifest(read_table(Path(path), sheet=sheet), catalogue=catalogue)


# --- reading -------------------------------------------------------------------------


def read_table(path: Path, *, sheet: str | None = None) -> RawTable:
    """
    Read a CSV/TSV (UTF-8, with or without BOM) or XLSX file as text.

    Args:
        sheet: the XLSX sheet to read; the first sheet when None. Ignored for CSV.

    Raises:
        ManifestReadError: missing file, wrong encoding, not a spreadsheet, missing
            sheet, or nothing in it; the message says how to fix it.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in XLSX_SUFFIXES:
        with _broken_workbook(path):
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
    # strict: an unclosed quote is an error, not a value swallowing the rest of the
    # file.
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    last = 0

    def numbered() -> Iterator[tuple[int, list[str]]]:
        nonlocal last
        for cells in reader:
            last += 1
            yield last, cells

    try:
        return _table_from_rows(path, None, numbered())
    except csv.Error as error:
        raise ManifestReadError(
            f"{path}: row {last + 1} cannot be read as CSV ({error}); check its "
            'double quotes: a quoted value must end with a " followed by the '
            'separator, and a quote inside a value is written twice ("")'
        ) from None


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
            "(mac, model, workspaceId or personId, tags)"
        )
    width = len(header)
    records: list[tuple[int, tuple[str, ...]]] = []
    overflow = width
    for number, cells in iterator:
        stripped = tuple([cell.strip() for cell in cells])
        if not any(stripped):
            continue
        if len(stripped) > width:
            tail = stripped[width:]
            if any(tail):
                overflow = max(overflow, width + _last_filled(tail) + 1)
            else:
                stripped = stripped[:width]
        elif len(stripped) < width:
            stripped += ("",) * (width - len(stripped))
        records.append((number, stripped))
    if overflow > width:
        header += ("",) * (overflow - width)
        records = [
            (number, (cells + ("",) * overflow)[:overflow]) for number, cells in records
        ]
    return RawTable(path=path, sheet=sheet, columns=header, records=records)


def _last_filled(cells: Sequence[str]) -> int:
    return max(index for index, cell in enumerate(cells) if cell)


def _read_xlsx(path: Path, sheet: str | None) -> RawTable:
    data_head = _read_bytes(path)[:8]
    if not data_head.startswith(b"PK\x03\x04"):
        if data_head.startswith(b"\xd0\xcf\x11\xe0"):
            raise ManifestReadError(
                f"{path}: this is an old Excel .xls workbook (or an encrypted one) "
                "named .xlsx; open it in Excel and save it as an Excel Workbook "
                "(.xlsx) without a password"
            )
        raise ManifestReadError(
            f"{path}: not an Excel workbook (the file is not XLSX data); save the "
            "sheet as .xlsx or as CSV UTF-8"
        )
    workbook = _open_workbook(path, data_only=False)
    try:
        worksheet = _pick_sheet(path, workbook, sheet)
        name = worksheet.title
        rows = [
            (number, tuple(values))
            for number, values in enumerate(worksheet.iter_rows(values_only=True), 1)
        ]
    finally:
        workbook.close()
    formulas = {
        (number, index)
        for number, values in rows
        for index, value in enumerate(values)
        if isinstance(value, str) and value.startswith("=")
    }
    cached = _cached_values(path, name, formulas) if formulas else {}
    texts = (
        (
            number,
            [
                _cell_text(cached.get((number, index), value))
                for index, value in enumerate(values)
            ],
        )
        for number, values in rows
    )
    table = _table_from_rows(path, name, texts)
    if sheet is None and not table.records:
        _refuse_empty_first_sheet(path, name)
    return table


def _open_workbook(path: Path, *, data_only: bool) -> Any:
    # Imported here: a CSV run never pays for openpyxl.
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    with _broken_workbook(path, InvalidFileException), warnings.catch_warnings():
        # openpyxl warns about features it drops (extensions, styles); the
        # cell values are all this reads.
        warnings.simplefilter("ignore")
        # From memory, not the path: openpyxl leaves the file open when a damaged
        # workbook fails half-way through loading.
        data = io.BytesIO(_read_bytes(path))
        return openpyxl.load_workbook(data, read_only=True, data_only=data_only)


# A broken workbook surfaces as any of these, from zipfile (a bad CRC, a truncated or
# encrypted member, an unknown compression), zlib, the XML parser or openpyxl itself;
# read-only mode parses a sheet only while its rows are iterated, so they come from
# there too. Found by tests/test_fuzz_manifest.py.
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
    zipfile.BadZipFile,
    zlib.error,
)


@contextlib.contextmanager
def _broken_workbook(path: Path, *also: type[BaseException]) -> Iterator[None]:
    """
    Turn the errors a damaged workbook raises into one ``ManifestReadError``.
    """
    try:
        yield
    except (*_BROKEN_WORKBOOK_ERRORS, *also) as error:
        raise ManifestReadError(
            f"{path}: cannot be opened as an Excel workbook ({type(error).__name__}); "
            "open it in Excel and save it again as .xlsx, or save it as CSV UTF-8"
        ) from None


def _pick_sheet(path: Path, workbook: Any, sheet: str | None) -> Any:
    names: list[str] = list(workbook.sheetnames)
    if not names:
        raise ManifestReadError(
            f"{path}: the workbook has no sheets; open it in Excel and save it "
            "again as .xlsx, or save it as CSV UTF-8"
        )
    listed = ", ".join(f'"{name}"' for name in names)
    if sheet is None:
        chosen = names[0]
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
    worksheet = workbook[chosen]
    if not hasattr(worksheet, "iter_rows"):
        raise ManifestReadError(
            f'{path}: sheet "{chosen}" is a chart, not a table; the sheets are '
            f"{listed}. Pass the one with the devices with --sheet"
        )
    # Read-only mode trusts the file's recorded size, which some writers get
    # wrong; recomputing it means no row is cut off.
    worksheet.reset_dimensions()
    return worksheet


def _cached_values(
    path: Path, sheet: str, positions: set[tuple[int, int]]
) -> dict[tuple[int, int], object]:
    """
    Return the values a spreadsheet last computed for these formula cells.

    A formula nobody calculated (a file written by a script) has no cached value;
    its formula text is kept, and ``build_manifest`` names it.
    """
    workbook = _open_workbook(path, data_only=True)
    found: dict[tuple[int, int], object] = {}
    try:
        worksheet = _pick_sheet(path, workbook, sheet)
        for number, values in enumerate(worksheet.iter_rows(values_only=True), 1):
            for index, value in enumerate(values):
                if (number, index) in positions and value is not None:
                    found[(number, index)] = value
    finally:
        workbook.close()
    return found


def _refuse_empty_first_sheet(path: Path, name: str) -> None:
    """
    Point at another sheet when the first one is empty but another holds a manifest.
    """
    workbook = _open_workbook(path, data_only=True)
    try:
        others = [
            other
            for other in workbook.sheetnames
            if other != name
            and workbook[other].sheet_state == "visible"
            and _looks_like_manifest(workbook[other])
        ]
    finally:
        workbook.close()
    if others:
        raise ManifestReadError(
            f'{path}: the first sheet "{name}" has no rows below its header; the '
            f'devices seem to be on sheet "{others[0]}": pass --sheet "{others[0]}"'
        )


def _looks_like_manifest(worksheet: Any) -> bool:
    if not hasattr(worksheet, "iter_rows"):
        return False
    for values in worksheet.iter_rows(max_row=5, values_only=True):
        names = {_FIELD_BY_KEY.get(header_key(_cell_text(value))) for value in values}
        if "model" in names and names & {"workspaceId", "personId"}:
            return True
    return False


def _cell_text(value: object) -> str:
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


# --- headers -------------------------------------------------------------------------


def header_key(text: str) -> str:
    """
    Return the comparison key of a header: lower case, without spaces, underscores,
    hyphens or a trailing "(required)" / "*" mark.
    """
    return _HEADER_NOISE.sub("", _HEADER_NOTE.sub("", text).casefold())


def match_headers(path: Path, columns: Sequence[str]) -> dict[str, int]:
    """
    Map each canonical field to the index of the column that supplies it.

    Raises:
        ManifestError: two columns supply the same field.
        MissingColumnError: no model column, or neither owner column.
    """
    found: dict[str, int] = {}
    for index, column in enumerate(columns):
        name = _FIELD_BY_KEY.get(header_key(column))
        if name is None:
            continue
        if name in found:
            first = columns[found[name]]
            raise ManifestError(
                f'{path}: columns "{first}" and "{column}" both give the {name}; '
                "keep one of them (rename or delete the other) and run again"
            )
        found[name] = index
    missing = []
    if "model" not in found:
        missing.append("model")
    if "workspaceId" not in found and "personId" not in found:
        missing.append("workspaceId or personId")
    if missing:
        raise MissingColumnError(_missing_message(path, columns, missing))
    return found


def _missing_message(path: Path, columns: Sequence[str], missing: list[str]) -> str:
    shown = ", ".join(f'"{column}"' for column in columns if column) or "none"
    return (
        f"{path}: no {' and no '.join(missing)} column in the header row. Columns "
        f'found: {shown}. Expected: model (or "Device Model"), workspaceId (or '
        '"Workspace ID") and/or personId (or "Person ID"); optional: mac (or "MAC '
        'Address"), tags, orgId, password. Fix the header row and run again'
    )


def _find_late_header(table: RawTable) -> int | None:
    """
    Return the number of a row below the header that looks like the real header.
    """
    for number, cells in table.records[:10]:
        names = {_FIELD_BY_KEY.get(header_key(cell)) for cell in cells}
        if "model" in names and names & {"workspaceId", "personId"}:
            return number
    return None


# --- rows ----------------------------------------------------------------------------


def build_manifest(table: RawTable, *, catalogue: Catalogue | None = None) -> Manifest:
    """
    Match the headers, then normalise and validate every row.

    Args:
        catalogue: the models to check against; the packaged one when None.

    Raises:
        MissingColumnError: a required column is absent.
        ManifestError: the header row is otherwise unusable.
    """
    try:
        fields = match_headers(table.path, table.columns)
    except MissingColumnError:
        late = _find_late_header(table)
        if late is None:
            raise
        shown = ", ".join(f'"{column}"' for column in table.columns if column)
        raise MissingColumnError(
            f"{table.path}: the header must be the first row, but it seems to be row "
            f"{late}; the row above it holds {shown} (a title?). Delete the rows above "
            "the header and run again"
        ) from None
    checker = _RowChecker(table, fields, catalogue or load_catalogue())
    rows = [checker.check(number, cells) for number, cells in table.records]
    if "mac" in fields:
        _flag_duplicate_macs(rows, table.columns, fields["mac"])
    return Manifest(
        path=table.path,
        sheet=table.sheet,
        columns=table.columns,
        field_columns={name: table.columns[index] for name, index in fields.items()},
        rows=tuple(rows),
    )


def split_tags(text: str) -> tuple[str, ...]:
    """
    Split a tags cell on ``;``, ``,`` or ``|``; trim, drop empties, keep first order.
    """
    if not text:
        return ()
    return tuple(
        dict.fromkeys(tag for tag in map(str.strip, _TAG_SPLIT.split(text)) if tag)
    )


class _RowChecker:
    """
    Validates rows of one table; caches per distinct value, since a 100,000-row sheet
    holds a few dozen models and owners.
    """

    def __init__(
        self, table: RawTable, fields: dict[str, int], catalogue: Catalogue
    ) -> None:
        self.columns = table.columns
        self.fields = fields
        self.catalogue = catalogue
        self.is_text_file = table.path.suffix.lower() in DELIMITED_SUFFIXES
        self.unnamed = [index for index, name in enumerate(table.columns) if not name]
        self.models: dict[str, CatalogueModel | str] = {}
        self.ids: dict[tuple[str, str], str | None] = {}
        self.tags: dict[str, tuple[str, ...]] = {}

    def check(self, number: int, cells: tuple[str, ...]) -> Row:
        fields = self.fields
        problems: list[Problem] = []
        values = {name: cells[index] for name, index in fields.items()}
        for name, value in values.items():
            if value.startswith("=") and name != "password":
                problems.append(self._problem(name, value, _FORMULA))
                values[name] = ""
        mac = self._mac(values.get("mac", ""), problems)
        model = self._model(values.get("model", ""), problems)
        if values.get("mac") and not cells[fields["model"]]:
            problems.append(self._problem("model", "", _NO_MODEL))
        workspace_id = self._owner_id("workspaceId", values, problems)
        person_id = self._owner_id("personId", values, problems)
        org_id = self._owner_id("orgId", values, problems)
        self._check_owner(values, problems)
        password = values.get("password") or None
        if password == PASSWORD_MASK:
            password = None
        if isinstance(model, CatalogueModel):
            password = self._check_fit(model, values, mac, password, problems)
        if self.is_text_file and self.unnamed:
            self._check_unnamed(cells, problems)
        if "password" in fields and cells[fields["password"]]:
            cells = _masked(cells, fields["password"])
        return Row(
            number=number,
            cells=cells,
            mac=mac,
            model=model.model if isinstance(model, CatalogueModel) else None,
            workspace_id=workspace_id,
            person_id=person_id,
            tags=self._tags(values.get("tags", "")),
            org_id=org_id,
            password=password,
            problems=tuple(problems),
        )

    def _tags(self, text: str) -> tuple[str, ...]:
        found = self.tags.get(text)
        if found is None:
            found = self.tags[text] = split_tags(text)
        return found

    def _problem(self, name: str, value: str, message: str) -> Problem:
        shown = PASSWORD_MASK if name == "password" and value else value
        return Problem(
            column=self.columns[self.fields[name]], value=shown, message=message
        )

    def _mac(self, text: str, problems: list[Problem]) -> str | None:
        if not text:
            return None
        try:
            return normalise_mac(text)
        except ValueError as error:
            problems.append(self._problem("mac", text, str(error)))
            return None

    def _model(self, text: str, problems: list[Problem]) -> CatalogueModel | str | None:
        if not text:
            return None
        found = self.models.get(text)
        if found is None:
            found = self.catalogue.resolve(text) or _unknown_model(self.catalogue, text)
            self.models[text] = found
        if isinstance(found, str):
            problems.append(self._problem("model", text, found))
        return found

    def _owner_id(
        self, name: str, values: dict[str, str], problems: list[Problem]
    ) -> str | None:
        text = values.get(name, "")
        if not text:
            return None
        key = (name, text)
        if key not in self.ids:
            self.ids[key] = _id_problem(name, text)
        message = self.ids[key]
        if message is not None:
            problems.append(self._problem(name, text, message))
            return None
        return text

    def _check_owner(self, values: dict[str, str], problems: list[Problem]) -> None:
        workspace, person = values.get("workspaceId", ""), values.get("personId", "")
        if workspace and person:
            problems.append(
                self._problem(
                    "personId",
                    person,
                    "the row has both a workspaceId and a personId; a device belongs "
                    "to one owner: clear one of them",
                )
            )
        elif not workspace and not person:
            name = "workspaceId" if "workspaceId" in self.fields else "personId"
            problems.append(
                self._problem(
                    name,
                    "",
                    "no owner: fill in the workspaceId of the workspace or the "
                    "personId of the person the device belongs to",
                )
            )

    def _check_fit(
        self,
        model: CatalogueModel,
        values: dict[str, str],
        mac: str | None,
        password: str | None,
        problems: list[Problem],
    ) -> str | None:
        """
        Check the row against what the model supports; return the password to use.
        """
        shown = values.get("model", "")
        if mac is not None and not model.supports_mac:
            problems.append(
                self._problem(
                    "mac",
                    values["mac"],
                    f"the {model.display_name} cannot be added by MAC address; clear "
                    "the MAC to get an activation code for it instead",
                )
            )
        elif not values.get("mac") and not model.supports_activation_code:
            column = "mac" if "mac" in self.fields else "model"
            problems.append(
                self._problem(
                    column,
                    values.get(column, ""),
                    f"the {model.display_name} can only be added by MAC address "
                    "(it takes no activation code); fill in its MAC",
                )
            )
        if values.get("workspaceId") and not model.supports_places:
            problems.append(
                self._problem(
                    "model",
                    shown,
                    f"the {model.display_name} can only belong to a person, not to a "
                    "workspace; give a personId instead, or pick another model",
                )
            )
        if values.get("personId") and not model.supports_people:
            problems.append(
                self._problem(
                    "model",
                    shown,
                    f"the {model.display_name} can only belong to a workspace, not "
                    "to a person; give a workspaceId instead, or pick another model",
                )
            )
        if not model.needs_password:
            return None
        if password is None and mac is not None:
            column = "password" if "password" in self.fields else "model"
            masked = values.get("password") == PASSWORD_MASK
            problems.append(
                self._problem(
                    column,
                    values.get(column, ""),
                    (
                        "the password was masked in the report; type it again"
                        if masked
                        else f"the {model.display_name} is a third-party device and "
                        "needs a password (its SIP password, at least 8 characters): "
                        "add a password column and fill it in"
                    ),
                )
            )
        return password

    def _check_unnamed(self, cells: tuple[str, ...], problems: list[Problem]) -> None:
        for index in self.unnamed:
            if cells[index]:
                # A shifted row may have pushed part of a password here.
                secret = "password" in self.fields
                problems.append(
                    Problem(
                        column=f"column {_column_letter(index)} (no header)",
                        value=PASSWORD_MASK if secret else cells[index],
                        message=(
                            "this row has more cells than the header has columns; a "
                            "value probably contains an unquoted comma: put double "
                            "quotes around it"
                        ),
                    )
                )
                return


_NO_MODEL = (
    "a device added by MAC needs its model: fill it in (e.g. Cisco 8851), or clear "
    "the MAC to get an activation code"
)
_FORMULA = (
    "this cell holds a formula that was never calculated, not a value; replace it "
    "with its value (copy the column, then Paste Special → Values)"
)


def _unknown_model(catalogue: Catalogue, text: str) -> str:
    suggestions = catalogue.suggest(text)
    if suggestions:
        quoted = [f'"{name}"' for name in suggestions]
        options = " or ".join(
            [", ".join(quoted[:-1]), quoted[-1]] if len(quoted) > 1 else quoted
        )
        return f"not a supported model; did you mean {options}?"
    return (
        "not a supported model; use a model name from the Models list of "
        'manifests/template.xlsx (for example "Cisco 8851")'
    )


def _id_problem(name: str, text: str) -> str | None:
    """
    Return what is wrong with a Webex id, or None when it looks usable.

    Webex ids are base64 of ``ciscospark://<region>/<KIND>/<uuid>``; an id of the
    wrong kind (a person's id in the workspace column) is caught here, offline. Ids
    that do not decode are left to the API, which knows every form.
    """
    if any(ch.isspace() for ch in text):
        return "an id has no spaces; copy it again from Control Hub or the API"
    if "@" in text:
        return (
            f"this is an email address, not a {name}; look up the person's id "
            "(Control Hub or GET /people?email=…) and use that"
        )
    kind = _id_kind(text)
    expected = _ID_KINDS[name]
    if kind is None or kind == expected:
        return None
    other = _ID_FIELD_BY_KIND.get(kind)
    where = f"; move it to the {other} column" if other else ""
    return f"this is the id of a {kind.lower()}, not a {name}{where}"


def _id_kind(text: str) -> str | None:
    try:
        decoded = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    parts = decoded.decode("ascii", "replace").split("/")
    if len(parts) >= 5 and parts[0] == "ciscospark:":
        return parts[3]
    return None


def _masked(cells: tuple[str, ...], index: int) -> tuple[str, ...]:
    return (*cells[:index], PASSWORD_MASK, *cells[index + 1 :])


def _column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def _flag_duplicate_macs(rows: list[Row], columns: tuple[str, ...], index: int) -> None:
    """
    Flag every row whose MAC appears on another row too, naming the other rows.
    """
    by_mac: dict[str, list[int]] = {}
    for position, row in enumerate(rows):
        if row.mac is not None:
            by_mac.setdefault(row.mac, []).append(position)
    for mac, positions in by_mac.items():
        if len(positions) < 2:
            continue
        for position in positions:
            row = rows[position]
            others = ", ".join(
                str(rows[other].number) for other in positions if other != position
            )
            problem = Problem(
                column=columns[index],
                value=row.cells[index],
                message=(
                    f"MAC {mac} is also on row {others}; a device can be listed "
                    "once: delete the extra rows or correct the MAC"
                ),
            )
            rows[position] = replace(row, problems=(*row.problems, problem))
