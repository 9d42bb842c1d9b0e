"""
The byte scans workbook.py makes of a sheet's XML before and beside calamine: each
quick first search must let through every sheet the exact search would catch.

The quick searches (a loose pattern for cells past column Z, one search for the
formula element's three forms) exist for speed on 40 MB sheets; these sheets are
written the unusual ways XML allows, so a quick search that missed them would fail.
"""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path
from xml.sax import saxutils

import pytest
from hypothesis import given
from hypothesis import strategies as st
from openpyxl import Workbook

from provisioner.errors import ManifestReadError
from provisioner.intake.manifest import load_manifest, read_table
from provisioner.intake.workbook import _unescape

WS = "Y2lzY29zcGFyazovL3VzL1BMQUNFLzhmYmQyYjA4LWYwYmEtNWVjMi1iNDlhLWY1NjUwNThlZjZhNA"
SHEET = "xl/worksheets/sheet1.xml"


def workbook_with(path: Path, cells: dict[str, str]) -> Path:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["mac", "model", "workspaceId"])
    sheet.append(["AABBCCDDEEFF", "Cisco 8851", WS])
    for reference, value in cells.items():
        sheet[reference] = value
    workbook.save(path)
    return path


def rewrite_sheet(path: Path, pattern: bytes, replacement: bytes) -> Path:
    with zipfile.ZipFile(path) as source:
        parts = {name: source.read(name) for name in source.namelist()}
    changed = re.sub(pattern, replacement, parts[SHEET])
    assert changed != parts[SHEET]
    parts[SHEET] = changed
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for name, data in parts.items():
            target.writestr(name, data)
    return path


def test_a_far_column_written_with_spaces_around_the_equals_is_refused(
    tmp_path: Path,
) -> None:
    """``r = "XFD1000"`` is the same reference as ``r="XFD1000"``."""
    path = rewrite_sheet(
        workbook_with(tmp_path / "m.xlsx", {"XFD1000": "stray"}),
        rb'\br="([A-Z]+[0-9]+)"',
        rb'r = "\1"',
    )
    with pytest.raises(ManifestReadError, match="row 1000 and column XFD"):
        read_table(path)


def test_a_wide_sheet_within_bounds_is_read(tmp_path: Path) -> None:
    """Columns past Z on a short sheet: no refusal, the cell is read."""
    path = workbook_with(tmp_path / "m.xlsx", {"AB2": "far but fine"})
    table = read_table(path)
    assert table.records[0][1][27] == "far but fine"


@pytest.mark.parametrize(
    "formula",
    [
        rb"<f>A1&amp;B1</f>",
        rb'<f t="normal">A1&amp;B1</f>',
        rb"<f/>",
    ],
    ids=["plain", "with attributes", "empty"],
)
def test_every_form_of_an_uncalculated_formula_is_found(
    tmp_path: Path, formula: bytes
) -> None:
    path = rewrite_sheet(
        workbook_with(tmp_path / "m.xlsx", {}),
        rb'<c r="A2"[^>]*>.*?</c>',
        rb'<c r="A2">' + formula + rb"</c>",
    )
    (row,) = load_manifest(path).rows
    assert row.cells[0].startswith("=")
    assert "formula that was never calculated" in row.problems[0].message


def test_a_prefixed_sheet_finds_its_formulas(tmp_path: Path) -> None:
    """A sheet whose elements carry a namespace prefix (``<x:f>``)."""
    path = workbook_with(tmp_path / "m.xlsx", {})
    with zipfile.ZipFile(path) as source:
        xml = source.read(SHEET)
    xml = rewrite_xml_prefix(xml)
    xml = re.sub(
        rb'<x:c r="A2"[^>]*>.*?</x:c>',
        rb'<x:c r="A2"><x:f>A1&amp;"1"</x:f></x:c>',
        xml,
        count=1,
    )
    with zipfile.ZipFile(path) as source:
        parts = {name: source.read(name) for name in source.namelist()}
    parts[SHEET] = xml
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for name, data in parts.items():
            target.writestr(name, data)
    (row,) = load_manifest(path).rows
    assert row.cells[0] == '=A1&"1"'
    assert "formula that was never calculated" in row.problems[0].message


def rewrite_xml_prefix(xml: bytes) -> bytes:
    """
    Give every element of the main namespace the prefix ``x:``.
    """
    xml = xml.replace(
        b'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"',
        b'xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006/main"',
        1,
    )
    return re.sub(rb"<(/?)(?![?!])([A-Za-z])", rb"<\1x:\2", xml)


@given(st.text(alphabet="&;ltgamposqu<>\"' x", max_size=40))
def test_unescape_matches_the_standard_librarys(text: str) -> None:
    """The sheet's own unescape undoes what xml.sax.saxutils.unescape undoes."""
    assert _unescape(text) == saxutils.unescape(text)
    assert _unescape(text, quotes=True) == saxutils.unescape(
        text, {"&quot;": '"', "&apos;": "'"}
    )


def test_an_offline_validate_does_not_import_urllib() -> None:
    """Reading a sheet no longer pulls in urllib.request (via xml.sax.saxutils)."""
    code = (
        "import sys; import provisioner.intake.workbook; "
        "print('urllib.request' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


def test_a_reader_that_gives_up_while_parsing_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """calamine parses on a thread: a panic there still reaches the user as a message."""
    from provisioner.intake import workbook

    class PanicException(BaseException):  # as pyo3 names a Rust panic
        pass

    def panicking(self: object, name: str, parsed: list[object]) -> None:
        parsed.append(PanicException("index out of bounds"))

    monkeypatch.setattr(workbook.Workbook, "_parse", panicking)
    path = workbook_with(tmp_path / "m.xlsx", {})
    with pytest.raises(ManifestReadError, match="the reader gave up"):
        read_table(path)


def test_a_formula_is_found_while_calamine_parses(tmp_path: Path) -> None:
    """The scan beside the parse still finds an uncalculated formula."""
    path = workbook_with(tmp_path / "m.xlsx", {"A3": "=A2", "B3": "Cisco 8851"})
    table = read_table(path)
    assert table.records[-1][1][:2] == ("=A2", "Cisco 8851")
