"""
The blank XLSX template: its columns, model drop-down, Notes sheet, and the command.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook
from openpyxl.utils import get_column_letter
from paths import MANIFESTS

from provisioner.cli import main
from provisioner.intake.catalogue import load_catalogue
from provisioner.intake.manifest import match_headers
from provisioner.intake.template import TEMPLATE_COLUMNS, write_template

COMMITTED = MANIFESTS / "template.xlsx"
WS = "Y2lzY29zcGFyazovL3VzL1BMQUNFLzhmYmQyYjA4LWYwYmEtNWVjMi1iNDlhLWY1NjUwNThlZjZhNA"


@pytest.fixture(name="template")
def _template(tmp_path: Path) -> Path:
    return write_template(tmp_path / "t.xlsx")


def _contents(path: Path) -> tuple[object, ...]:
    workbook = load_workbook(path)
    devices = workbook["Devices"]
    validation = devices.data_validations.dataValidation[0]
    return (
        workbook.sheetnames,
        [sheet.sheet_state for sheet in workbook.worksheets],
        [cell.value for cell in devices[1]],
        (validation.type, validation.formula1, str(validation.sqref)),
        [row[0] for row in workbook["Models"].iter_rows(min_row=2, values_only=True)],
        [
            row[0]
            for row in workbook["Notes"].iter_rows(
                min_row=2, max_row=len(TEMPLATE_COLUMNS) + 1, values_only=True
            )
        ],
    )


def test_layout(template: Path) -> None:
    """Devices first, then Notes, then the hidden Models list the drop-down points at."""
    sheets, states, header, validation, models, notes = _contents(template)
    count = len(load_catalogue())

    assert sheets == ["Devices", "Notes", "Models"]
    assert states == ["visible", "visible", "hidden"]
    assert header == [name for name, _ in TEMPLATE_COLUMNS]
    assert validation == ("list", f"=Models!$A$2:$A${count + 1}", "B2:B5001")
    assert models == [entry.display_name for entry in load_catalogue().models]
    assert notes == header


def test_columns_are_text_formatted(template: Path) -> None:
    """Every template column is formatted as Text, so Excel keeps MACs as typed."""
    devices = load_workbook(template)["Devices"]

    letters = [get_column_letter(n) for n in range(1, len(TEMPLATE_COLUMNS) + 1)]
    formats = [devices.column_dimensions[letter].number_format for letter in letters]

    assert formats == ["@"] * len(TEMPLATE_COLUMNS)


def test_header_matches_every_field(template: Path) -> None:
    """The template's header supplies every canonical field."""
    header = [cell.value for cell in load_workbook(template)["Devices"][1]]

    fields = match_headers(template, header)

    assert sorted(fields) == sorted(name for name, _ in TEMPLATE_COLUMNS)


def test_committed_template_is_current(template: Path) -> None:
    """manifests/template.xlsx is what ``write_template`` writes today."""
    assert _contents(COMMITTED) == _contents(template)


def test_filled_template_validates(template: Path) -> None:
    """A template with one device filled in validates cleanly."""
    workbook = load_workbook(template)
    workbook["Devices"].append(["001122334455", "Cisco 8851", WS])
    workbook.save(template)

    result = CliRunner().invoke(main, ["validate", str(template)])

    assert result.exit_code == 0, result.output
    assert '(sheet "Devices"): 1 row, 1 valid, 0 invalid' in result.output


class TestCommand:
    def test_writes_the_template(self, tmp_path: Path) -> None:
        """``provisioner template PATH`` writes a workbook and says what to do next."""
        path = tmp_path / "new.xlsx"

        result = CliRunner().invoke(main, ["template", str(path)])

        assert result.exit_code == 0
        assert "provisioner validate" in result.output
        assert load_workbook(path).sheetnames[0] == "Devices"

    def test_refuses_to_overwrite(self, tmp_path: Path) -> None:
        """An existing file is left alone without --force, with exit 2."""
        path = tmp_path / "mine.xlsx"
        path.write_bytes(b"precious")

        result = CliRunner().invoke(main, ["template", str(path)])

        assert result.exit_code == 2
        assert "already exists; pass --force" in result.output
        assert path.read_bytes() == b"precious"

    def test_force_overwrites(self, tmp_path: Path) -> None:
        """With --force an existing file is replaced by the template."""
        path = tmp_path / "mine.xlsx"
        path.write_bytes(b"old")

        result = CliRunner().invoke(main, ["template", "--force", str(path)])

        assert result.exit_code == 0
        assert load_workbook(path).sheetnames == ["Devices", "Notes", "Models"]

    @pytest.mark.parametrize(
        ("name", "fragment"),
        [
            ("t.csv", "give a path ending in .xlsx"),
            ("no/such/t.xlsx", "no such folder"),
        ],
    )
    def test_bad_paths(self, tmp_path: Path, name: str, fragment: str) -> None:
        """A non-.xlsx path or a missing folder is refused with exit 2."""
        result = CliRunner().invoke(main, ["template", str(tmp_path / name)])

        assert result.exit_code == 2
        assert fragment in result.output
