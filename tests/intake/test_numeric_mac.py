"""
MAC cells that went through a number, and the XLSX cells calamine alone would hide.

A MAC typed into a General cell becomes a number: its leading zeros go, Excel shows
it as 1.12233E+11 and, once the sheet went through CSV, keeps the rounded value. The
row must be invalid, with what the cell holds and the fix; a 12-digit number that is
exact is still the MAC.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from openpyxl import Workbook

from provisioner.cli import main
from provisioner.errors import ManifestReadError
from provisioner.intake.manifest import load_manifest, read_table
from provisioner.models import Row

WS = "Y2lzY29zcGFyazovL3VzL1BMQUNFLzhmYmQyYjA4LWYwYmEtNWVjMi1iNDlhLWY1NjUwNThlZjZhNA"
FIX = "format the column as Text and retype the MAC"


def xlsx_with_mac(path: Path, mac: object) -> Path:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["mac", "model", "workspaceId"])
    sheet.append([mac, "Cisco 8851", WS])
    workbook.save(path)
    return path


def with_sheet_xml(path: Path, edit: tuple[bytes, bytes]) -> Path:
    """
    Rewrite the first sheet's XML of ``path`` with one regex substitution.
    """
    with zipfile.ZipFile(path) as source:
        parts = {name: source.read(name) for name in source.namelist()}
    member = "xl/worksheets/sheet1.xml"
    changed = re.sub(edit[0], edit[1], parts[member], count=1)
    assert changed != parts[member]
    parts[member] = changed
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for name, data in parts.items():
            target.writestr(name, data)
    return path


def only_row(path: Path) -> Row:
    rows = load_manifest(path).rows
    assert len(rows) == 1
    return rows[0]


class TestXlsxNumberCells:
    @pytest.mark.parametrize(
        ("stored", "holds", "why"),
        [
            (1.12233e11, "the number 112233000000 (shown as 1.12233E+11)", "rounding"),
            (112233445500, "the number 112233445500", "2 trailing zeros"),
            (1122334455, "the number 1122334455", "only 10 digits"),
            (1122334455.66, "the number 1122334455.66 (a fraction)", "took the MAC"),
            (11223344556677, "the number 11223344556677", "not a MAC"),
        ],
        ids=["scientific", "trailing zeros", "short", "fraction", "too long"],
    )
    def test_a_suspect_number_makes_the_row_invalid(
        self, tmp_path: Path, stored: float, holds: str, why: str
    ) -> None:
        row = only_row(xlsx_with_mac(tmp_path / "m.xlsx", stored))

        assert row.mac is None
        (problem,) = row.problems
        assert problem.column == "mac"
        assert holds in problem.message
        assert why in problem.message
        assert FIX in problem.message

    def test_scientific_notation_in_the_file_itself(self, tmp_path: Path) -> None:
        """The example of issue 11: the cell's XML says 1.12233E+11."""
        path = with_sheet_xml(
            xlsx_with_mac(tmp_path / "m.xlsx", 1),
            (rb'<c r="A2"( t="n")?><v>1</v>', rb'<c r="A2"><v>1.12233E+11</v>'),
        )

        row = only_row(path)

        assert row.mac is None
        assert "holds the number 112233000000" in row.problems[0].message

    def test_an_exact_twelve_digit_number_is_the_mac(self, tmp_path: Path) -> None:
        row = only_row(xlsx_with_mac(tmp_path / "m.xlsx", 112233445566))

        assert (row.mac, row.problems) == ("112233445566", ())

    def test_the_same_digits_as_text_are_not_suspect(self, tmp_path: Path) -> None:
        """A Text cell keeps what was typed; only a number cell can have rounded."""
        row = only_row(xlsx_with_mac(tmp_path / "m.xlsx", "112233000000"))

        assert (row.mac, row.problems) == ("112233000000", ())

    def test_numbers_in_other_columns_are_left_alone(self, tmp_path: Path) -> None:
        workbook = Workbook()
        sheet = workbook.active
        sheet.append(["mac", "model", "workspaceId", "notes"])
        sheet.append(["AABBCCDDEEFF", "Cisco 8851", WS, 1.5e11])
        workbook.save(tmp_path / "m.xlsx")

        row = only_row(tmp_path / "m.xlsx")

        assert (row.mac, row.problems) == ("AABBCCDDEEFF", ())
        assert row.cells[3] == "150000000000"

    def test_through_validate_the_row_is_named(self, tmp_path: Path) -> None:
        path = xlsx_with_mac(tmp_path / "m.xlsx", 1.12233e11)

        result = CliRunner().invoke(main, ["validate", str(path)])

        assert result.exit_code == 1
        assert 'row 2, column "mac", value "112233000000"' in result.output
        assert FIX in result.output


class TestCsvMangledMacs:
    """A CSV holds text: the mangled forms show in the text itself."""

    @pytest.mark.parametrize(
        ("text", "why"),
        [
            ("1.12233E+11", "scientific notation"),
            ("112233445566.0", "ends in a decimal point"),
            ("1122334455", "only 10 digits"),
        ],
        ids=["scientific", "decimal point", "short"],
    )
    def test_mangled_text_makes_the_row_invalid(
        self, tmp_path: Path, text: str, why: str
    ) -> None:
        path = tmp_path / "m.csv"
        path.write_text(f"mac,model,workspaceId\n{text},Cisco 8851,{WS}\n")

        row = only_row(path)

        assert row.mac is None
        assert why in row.problems[0].message
        assert "format the column as Text" in row.problems[0].message


class TestCellsCalamineHides:
    def test_an_error_cell_keeps_its_text(self, tmp_path: Path) -> None:
        """A MAC looked up with a failed VLOOKUP is #N/A, not an empty cell (which
        would quietly make the row an activation-code row)."""
        path = with_sheet_xml(
            xlsx_with_mac(tmp_path / "m.xlsx", "x"),
            (
                rb'<c r="A2"[^>]*>.*?</c>',
                rb'<c r="A2" t="e"><f>VLOOKUP(D2,Sheet2!A:B,2,FALSE)</f><v>#N/A</v></c>',
            ),
        )

        row = only_row(path)

        assert row.cells[0] == "#N/A"
        assert row.mac is None
        assert row.problems[0].column == "mac"

    def test_an_uncalculated_formula_in_the_last_row_is_kept(
        self, tmp_path: Path
    ) -> None:
        """A formula without a value outside the area calamine saw is still found."""
        path = with_sheet_xml(
            xlsx_with_mac(tmp_path / "m.xlsx", "AABBCCDDEEFF"),
            (
                rb"</sheetData>",
                (
                    rb'<row r="3"><c r="A3"><f>A2&amp;"1"</f></c></row>'
                    rb"</sheetData>"
                ),
            ),
        )

        rows = load_manifest(path).rows

        assert [row.number for row in rows] == [2, 3]
        assert rows[1].cells[0] == '=A2&"1"'
        assert "formula that was never calculated" in rows[1].problems[0].message

    def test_a_stray_far_cell_is_refused_with_the_fix(self, tmp_path: Path) -> None:
        """One value at XFD1048576 would make the reader allocate 17 billion cells."""
        workbook = Workbook()
        sheet = workbook.active
        sheet.append(["mac", "model", "workspaceId"])
        sheet.append(["AABBCCDDEEFF", "Cisco 8851", WS])
        sheet["XFD1048576"] = "stray"
        workbook.save(tmp_path / "m.xlsx")

        with pytest.raises(ManifestReadError) as refused:
            read_table(tmp_path / "m.xlsx")

        assert "row 1048576 and column XFD" in str(refused.value)
        assert "Ctrl+End" in str(refused.value)

    def test_a_stray_far_column_on_a_short_sheet_is_refused(
        self, tmp_path: Path
    ) -> None:
        """Few rows, but a cell at column XFD on row 1000: a grid of 16 million."""
        workbook = Workbook()
        sheet = workbook.active
        sheet.append(["mac", "model", "workspaceId"])
        sheet.append(["AABBCCDDEEFF", "Cisco 8851", WS])
        sheet["XFD1000"] = "stray"
        workbook.save(tmp_path / "m.xlsx")

        with pytest.raises(ManifestReadError) as refused:
            read_table(tmp_path / "m.xlsx")

        assert "row 1000 and column XFD" in str(refused.value)
