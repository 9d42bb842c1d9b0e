"""
Fuzz manifest reading: whatever the file holds, the answer is a Manifest or a clear
``ManifestError`` (exit 2 through the CLI), never a traceback.

Hypothesis writes random bytes under each supported suffix, valid CSVs with random
headers and cells, valid workbooks with random cell values, and valid workbooks with
random bytes corrupted or cut off. Example counts stay small so the module runs in
seconds; the explicit regression tests below pin every crash the fuzzing found.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from provisioner.cli import main
from provisioner.errors import ManifestError
from provisioner.intake.manifest import load_manifest
from provisioner.models import Manifest

WS = "Y2lzY29zcGFyazovL3VzL1BMQUNFLzhmYmQyYjA4LWYwYmEtNWVjMi1iNDlhLWY1NjUwNThlZjZhNA"
PERSON = (
    "Y2lzY29zcGFyazovL3VzL1BFT1BMRS8wZDA2MTJjMy1jMzM0LTUyMzYtYjJlNi0zMTAzMGQ1MmJiODM"
)
GOOD_ROWS = [
    ["AABBCCDDEE01", "Cisco 8851", WS, "", "lobby;floor-2"],
    ["aa:bb:cc:dd:ee:02", "DMS Cisco 8851", "", PERSON, ""],
    ["", "Cisco 8875", WS, "", "wave-1"],
]
HEADER = ["mac", "model", "workspaceId", "personId", "tags"]
HEADER_WORDS = [
    *HEADER,
    "MAC Address",
    "Workspace ID",
    "Person ID",
    "orgId",
    "password",
    "Device Model",
    "notes",
    "",
]
SUFFIXES = [".csv", ".tsv", ".xlsx"]

FUZZ = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Text a spreadsheet cell could hold: any Unicode except surrogates, which no file
# encoding can carry.
cell_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)


def read_or_refuse(path: Path) -> Manifest | ManifestError:
    """
    Read ``path``; return the Manifest, or the ManifestError that refused it.

    Any other exception propagates and fails the test: that is a crash.
    """
    try:
        return load_manifest(path)
    except ManifestError as error:
        refused = error
    assert str(refused), "a refusal must say why"
    return refused


def assert_clean_cli(path: Path) -> None:
    """
    ``provisioner validate`` ends with 0, 1 or 2 and no traceback.
    """
    result = CliRunner().invoke(main, ["validate", str(path)])

    assert result.exit_code in (0, 1, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        result.exception
    )
    assert "Traceback" not in result.output


def workbook_bytes(rows: list[list[object]]) -> bytes:
    """
    Save ``rows`` as a one-sheet XLSX workbook and return its bytes.
    """
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def csv_text(rows: list[list[str]], delimiter: str = ",") -> str:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


@pytest.fixture(name="folder", scope="module")
def _folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """
    One folder for the module; each example overwrites its file.
    """
    return tmp_path_factory.mktemp("fuzz")


@functools.cache
def good_workbook() -> bytes:
    """
    A valid manifest workbook, the seed the corruption tests start from.
    """
    return workbook_bytes([HEADER, *GOOD_ROWS])


class TestRandomFiles:
    """
    Files of random bytes under every suffix the reader accepts.
    """

    @FUZZ
    @given(data=st.binary(max_size=2048), suffix=st.sampled_from(SUFFIXES))
    def test_random_bytes(self, folder: Path, data: bytes, suffix: str) -> None:
        """Random bytes are read or refused with a ManifestError, never a crash."""
        path = folder / f"random{suffix}"
        path.write_bytes(data)

        read_or_refuse(path)

    @FUZZ
    @given(
        prefix=st.sampled_from([b"", b"\xef\xbb\xbf", b"sep=;\n", b"sep=\t\n"]),
        text=st.text(max_size=400),
        suffix=st.sampled_from([".csv", ".tsv"]),
    )
    def test_random_text(
        self, folder: Path, prefix: bytes, text: str, suffix: str
    ) -> None:
        """Random UTF-8 text, with a BOM or Excel's sep= line, never crashes."""
        path = folder / f"text{suffix}"
        path.write_bytes(prefix + text.encode("utf-8", "surrogatepass"))

        read_or_refuse(path)

    @settings(max_examples=15, deadline=None)
    @given(data=st.binary(max_size=512), suffix=st.sampled_from(SUFFIXES))
    def test_random_bytes_through_cli(self, data: bytes, suffix: str) -> None:
        """provisioner validate on random bytes exits 0, 1 or 2, without a traceback."""
        with tempfile.TemporaryDirectory() as name:
            path = Path(name) / f"m{suffix}"
            path.write_bytes(data)

            assert_clean_cli(path)


class TestRandomCsvCells:
    """
    Well-formed CSV files whose headers and cells are random.
    """

    @FUZZ
    @given(
        header=st.lists(
            st.one_of(st.sampled_from(HEADER_WORDS), cell_text), min_size=1, max_size=8
        ),
        cells=st.lists(st.lists(cell_text, max_size=9), max_size=6),
        delimiter=st.sampled_from([",", ";", "\t"]),
    )
    def test_random_header_and_cells(
        self, folder: Path, header: list[str], cells: list[list[str]], delimiter: str
    ) -> None:
        """Any header and any cells give a Manifest or a ManifestError."""
        path = folder / "cells.csv"
        path.write_text(csv_text([header, *cells], delimiter), encoding="utf-8")

        read_or_refuse(path)

    @FUZZ
    @given(
        row=st.integers(0, len(GOOD_ROWS) - 1),
        column=st.integers(0, len(HEADER) - 1),
        # A bare CR is a line break in CSV, and a NUL marks a binary file: both are
        # refused or split on purpose, so they are left to the whole-file tests.
        value=st.text(
            st.characters(exclude_categories=["Cs"], exclude_characters="\r\x00"),
            max_size=40,
        ),
    )
    def test_one_random_cell_in_a_valid_manifest(
        self, folder: Path, row: int, column: int, value: str
    ) -> None:
        """A random value in one cell of a valid manifest leaves the other rows valid."""
        rows = [list(r) for r in GOOD_ROWS]
        rows[row][column] = value
        path = folder / "one-cell.csv"
        path.write_text(csv_text([HEADER, *rows]), encoding="utf-8")

        manifest = read_or_refuse(path)

        assert isinstance(manifest, Manifest)
        assert [r.number for r in manifest.rows] == [2, 3, 4]
        others = [r for r in manifest.rows if r.number != row + 2]
        assert all(r.is_valid for r in others), [r.problems for r in others]


class TestRandomWorkbooks:
    """
    Valid workbooks with random values, and corrupted or truncated workbooks.
    """

    @settings(max_examples=40, deadline=None)
    @given(
        cells=st.lists(
            st.lists(
                st.one_of(
                    cell_text.filter(
                        lambda text: (
                            not text.startswith("=")
                            and not ILLEGAL_CHARACTERS_RE.search(text)
                        )
                    ),
                    st.integers(-(10**15), 10**15),
                    st.floats(allow_nan=False, allow_infinity=False),
                    st.booleans(),
                    st.datetimes(
                        min_value=dt.datetime(1900, 3, 1),
                        max_value=dt.datetime(9999, 1, 1),
                    ),
                    st.none(),
                ),
                max_size=6,
            ),
            max_size=5,
        ),
    )
    def test_random_cell_values(self, cells: list[list[object]]) -> None:
        """Numbers, dates, booleans and text in any cell never crash the reader."""
        for path in _temp_workbook(workbook_bytes([HEADER, *cells])):
            read_or_refuse(path)

    @settings(max_examples=100, deadline=None)
    @given(
        flips=st.lists(
            st.tuples(st.integers(0, 10**6), st.integers(0, 255)),
            min_size=1,
            max_size=8,
        ),
    )
    def test_corrupted_bytes(self, flips: list[tuple[int, int]]) -> None:
        """A valid workbook with a few bytes changed is read or refused cleanly."""
        data = bytearray(good_workbook())
        for position, value in flips:
            data[position % len(data)] = value
        for path in _temp_workbook(bytes(data)):
            read_or_refuse(path)

    @settings(max_examples=80, deadline=None)
    @given(
        member=st.sampled_from(
            [
                "xl/worksheets/sheet1.xml",
                "xl/workbook.xml",
                "xl/_rels/workbook.xml.rels",
                "[Content_Types].xml",
                "xl/styles.xml",
            ]
        ),
        edits=st.lists(
            st.tuples(
                st.integers(0, 10**6), st.sampled_from(list(b'<>"=/ 0aA&;:\xff'))
            ),
            min_size=1,
            max_size=4,
        ),
        cut=st.booleans(),
    )
    def test_corrupted_xml(
        self, member: str, edits: list[tuple[int, int]], cut: bool
    ) -> None:
        """A workbook whose XML is damaged inside intact zip members is refused cleanly."""

        def damage(members: dict[str, bytes]) -> None:
            content = bytearray(members[member])
            for position, value in edits:
                content[position % len(content)] = value
            if cut:
                content = content[: edits[0][0] % len(content)]
            members[member] = bytes(content)

        for path in _temp_workbook(rezip(good_workbook(), damage)):
            read_or_refuse(path)

    @settings(max_examples=25, deadline=None)
    @given(cut=st.integers(0, 10**6))
    def test_truncated(self, cut: int) -> None:
        """A workbook cut off anywhere is refused (or read) cleanly."""
        data = good_workbook()
        for path in _temp_workbook(data[: cut % len(data)]):
            read_or_refuse(path)


def _temp_workbook(data: bytes) -> Iterator[Path]:
    """
    Yield a temporary .xlsx file holding ``data`` (removed afterwards).
    """
    with tempfile.TemporaryDirectory() as name:
        path = Path(name) / "book.xlsx"
        path.write_bytes(data)
        yield path


# -- regressions: each damaged workbook the fuzzing found once crashed the reader ------


def rezip(data: bytes, edit: Callable[[dict[str, bytes]], None]) -> bytes:
    """
    Unpack a workbook, let ``edit`` change its members, and pack it again.
    """
    with zipfile.ZipFile(io.BytesIO(data)) as source:
        members = {name: source.read(name) for name in source.namelist()}
    edit(members)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target:
        for name, content in members.items():
            target.writestr(name, content)
    return buffer.getvalue()


def replace_in(
    member: str, old: bytes, new: bytes
) -> Callable[[dict[str, bytes]], None]:
    def edit(members: dict[str, bytes]) -> None:
        assert old in members[member]
        members[member] = members[member].replace(old, new, 1)

    return edit


def cut_sheet(members: dict[str, bytes]) -> None:
    sheet = members["xl/worksheets/sheet1.xml"]
    members["xl/worksheets/sheet1.xml"] = sheet[: len(sheet) * 2 // 3]


def bad_deflate(data: bytes) -> bytes:
    """
    Corrupt the compressed data of [Content_Types].xml (zlib: invalid block type).
    """
    patched = bytearray(data)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        info = archive.getinfo("[Content_Types].xml")
    # The local header is 30 bytes plus the name and the extra field.
    name_length = int.from_bytes(
        patched[info.header_offset + 26 : info.header_offset + 28], "little"
    )
    extra_length = int.from_bytes(
        patched[info.header_offset + 28 : info.header_offset + 30], "little"
    )
    start = info.header_offset + 30 + name_length + extra_length
    patched[start] = 0xFF
    return bytes(patched)


def central_entries(data: bytes, offset: int, value: int) -> bytes:
    """
    Set a 2-byte field at ``offset`` of every central directory entry to ``value``.
    """
    patched = bytearray(data)
    position = patched.find(b"PK\x01\x02")
    while position != -1:
        patched[position + offset : position + offset + 2] = value.to_bytes(2, "little")
        position = patched.find(b"PK\x01\x02", position + 4)
    return bytes(patched)


DAMAGED_WORKBOOKS: dict[str, Callable[[], bytes]] = {
    # zlib.error while openpyxl loads the workbook
    "bad deflate data": lambda: bad_deflate(good_workbook()),
    # RuntimeError: "File is encrypted, password required"
    "members flagged encrypted": lambda: central_entries(good_workbook(), 8, 1),
    # NotImplementedError: "That compression method is not supported"
    "unknown compression method": lambda: central_entries(good_workbook(), 10, 99),
    # ParseError (a SyntaxError) while the rows are iterated, after loading
    "sheet XML cut off": lambda: rezip(good_workbook(), cut_sheet),
    # ValueError: a cell reference that is not a coordinate
    "bad cell reference": lambda: rezip(
        good_workbook(), replace_in("xl/worksheets/sheet1.xml", b'r="A1"', b'r="A/"')
    ),
}


@pytest.mark.parametrize("case", sorted(DAMAGED_WORKBOOKS))
def test_damaged_workbook_is_refused_clearly(folder: Path, case: str) -> None:
    """A damaged workbook the fuzzing found is refused with a ManifestError saying what to do."""
    path = folder / "damaged.xlsx"
    path.write_bytes(DAMAGED_WORKBOOKS[case]())

    refused = read_or_refuse(path)

    assert isinstance(refused, ManifestError)
    assert "cannot be opened as an Excel workbook" in str(refused)
    assert "save it again as .xlsx" in str(refused)


def test_unknown_attribute_outside_the_cells_is_read(folder: Path) -> None:
    """
    A selection attribute nobody knows (once a TypeError in openpyxl) leaves every
    cell intact: the workbook is read, rows and all.
    """
    path = folder / "odd-attribute.xlsx"
    path.write_bytes(
        rezip(
            good_workbook(),
            replace_in("xl/worksheets/sheet1.xml", b"sqref=", b"sqcef="),
        )
    )

    read = read_or_refuse(path)

    assert isinstance(read, Manifest)
    assert [row.mac for row in read.rows] == ["AABBCCDDEE01", "AABBCCDDEE02", None]


def test_workbook_without_sheets_is_refused_clearly(folder: Path) -> None:
    """A workbook whose sheet list is empty (once an IndexError) says it has no sheets."""
    path = folder / "no-sheets.xlsx"
    path.write_bytes(
        rezip(
            good_workbook(),
            replace_in(
                "xl/workbook.xml",
                b'<sheets><sheet name="Sheet" sheetId="1" state="visible" '
                b'r:id="rId1" /></sheets>',
                b"<sheets />",
            ),
        )
    )

    refused = read_or_refuse(path)

    assert isinstance(refused, ManifestError)
    assert "has no sheets" in str(refused)


def test_damaged_workbook_through_cli_exits_2(folder: Path) -> None:
    """provisioner validate on a damaged workbook exits 2 with the message, no traceback."""
    path = folder / "damaged-cli.xlsx"
    path.write_bytes(DAMAGED_WORKBOOKS["bad deflate data"]())

    result = CliRunner().invoke(main, ["validate", str(path)])

    assert result.exit_code == 2
    assert "cannot be opened as an Excel workbook" in result.output
    assert "Traceback" not in result.output
