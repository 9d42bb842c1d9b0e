"""
Manifest intake: reading files as text, matching headers, and validating rows.
"""

from __future__ import annotations

import re
import string
import zipfile
from pathlib import Path

import openpyxl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from openpyxl import Workbook
from paths import MANIFESTS

from provisioner.errors import ManifestError, ManifestReadError, MissingColumnError
from provisioner.intake.catalogue import Catalogue
from provisioner.intake.manifest import (
    FIELD_ALIASES,
    PASSWORD_MASK,
    RawTable,
    build_manifest,
    header_key,
    load_manifest,
    match_headers,
    read_table,
    split_tags,
)
from provisioner.models import Manifest, Row, SupportedModel

WS = "Y2lzY29zcGFyazovL3VzL1BMQUNFLzhmYmQyYjA4LWYwYmEtNWVjMi1iNDlhLWY1NjUwNThlZjZhNA"
WS2 = "Y2lzY29zcGFyazovL3VzL1BMQUNFLzhhYTU2NDk5LTEwY2QtNTIzNi05ZDdmLWUzOGNlMDE3NWZkMQ"
PERSON = (
    "Y2lzY29zcGFyazovL3VzL1BFT1BMRS8wZDA2MTJjMy1jMzM0LTUyMzYtYjJlNi0zMTAzMGQ1MmJiODM"
)
HEADER = "mac,model,workspaceId,personId,tags,password"


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def write_xlsx(path: Path, *sheets: tuple[str, list[list[object]]]) -> Path:
    workbook = Workbook()
    workbook.remove(workbook.active)
    for title, rows in sheets:
        sheet = workbook.create_sheet(title)
        for row in rows:
            sheet.append(row)
    workbook.save(path)
    return path


def manifest_of(tmp_path: Path, *lines: str, header: str = HEADER) -> Manifest:
    return load_manifest(write(tmp_path / "m.csv", "\n".join([header, *lines]) + "\n"))


def only_row(manifest: Manifest) -> Row:
    assert len(manifest.rows) == 1
    return manifest.rows[0]


def messages(row: Row) -> list[str]:
    return [problem.message for problem in row.problems]


class TestReadTable:
    def test_utf8_bom_is_dropped(self, tmp_path: Path) -> None:
        """A UTF-8 BOM does not end up in the first header."""
        path = write(tmp_path / "m.csv", "\ufeffmac,model\nAABBCCDDEEFF,Cisco 8851\n")

        table = read_table(path)

        assert table.columns == ("mac", "model")

    def test_cells_stay_text(self, tmp_path: Path) -> None:
        """Leading zeros, exponents and dates are kept exactly as written."""
        path = write(tmp_path / "m.csv", "a,b,c,d\n00123, 1e5 ,2024-01-02,TRUE\n")

        table = read_table(path)

        assert table.records == [(2, ("00123", "1e5", "2024-01-02", "TRUE"))]

    def test_row_numbers_are_what_a_spreadsheet_shows(self, tmp_path: Path) -> None:
        """Blank rows are skipped but counted, and a quoted line break stays one row."""
        text = 'mac,notes\nA1,x\n\n,\nA2,"two\nlines"\nA3,y\n'
        path = write(tmp_path / "m.csv", text)

        table = read_table(path)

        assert [number for number, _ in table.records] == [2, 5, 6]

    @pytest.mark.parametrize(
        ("name", "sep"), [("m.csv", ";"), ("m.tsv", "\t"), ("m.csv", "\t")]
    )
    def test_other_separators(self, tmp_path: Path, name: str, sep: str) -> None:
        """Semicolon CSV (European Excel) and tab-separated files are read too."""
        path = write(tmp_path / name, f"mac{sep}model\nAA{sep}Cisco 8851\n")

        table = read_table(path)

        assert table.records == [(2, ("AA", "Cisco 8851"))]

    def test_excel_separator_hint(self, tmp_path: Path) -> None:
        """A ``sep=;`` first line sets the separator and is not counted as a row."""
        path = write(tmp_path / "m.csv", "sep=;\nmac;model\nAA;Cisco 8851\n")

        table = read_table(path)

        assert (table.columns, table.records) == (
            ("mac", "model"),
            [(2, ("AA", "Cisco 8851"))],
        )

    def test_short_rows_are_padded(self, tmp_path: Path) -> None:
        """A row with fewer cells than the header is padded with empty cells."""
        path = write(tmp_path / "m.csv", "a,b,c\n1\n")

        assert read_table(path).records == [(2, ("1", "", ""))]

    def test_xlsx_numbers_and_dates_render_as_shown(self, tmp_path: Path) -> None:
        """Numeric cells lose no digits and gain no ``.0``; dates become ISO text."""
        import datetime as dt

        path = write_xlsx(
            tmp_path / "m.xlsx",
            (
                "S",
                [
                    ["a", "b", "c", "d"],
                    [112233445566, 1.5, dt.datetime(2024, 1, 2), True],
                ],
            ),
        )

        table = read_table(path)

        assert table.records == [(2, ("112233445566", "1.5", "2024-01-02", "TRUE"))]

    def test_xlsx_named_sheet_case_insensitive(self, tmp_path: Path) -> None:
        """``--sheet devices`` finds the sheet called "Devices"."""
        path = write_xlsx(
            tmp_path / "m.xlsx", ("Intro", [["hello"]]), ("Devices", [["mac"], ["AA"]])
        )

        table = read_table(path, sheet="devices")

        assert (table.sheet, table.records) == ("Devices", [(2, ("AA",))])

    def test_xlsx_hidden_first_sheet_is_not_read(self, tmp_path: Path) -> None:
        """A hidden first sheet (a stale wave nobody sees in Excel) is skipped: the
        first visible sheet is read, and the hidden one only when named."""
        path = write_xlsx(
            tmp_path / "m.xlsx",
            ("Lists", [["mac"], ["OLD"]]),
            ("Devices", [["mac"], ["AA"]]),
        )
        book = openpyxl.load_workbook(path)
        book["Lists"].sheet_state = "hidden"
        book.save(path)

        table = read_table(path)
        named = read_table(path, sheet="Lists")

        assert (table.sheet, table.records) == ("Devices", [(2, ("AA",))])
        assert named.records == [(2, ("OLD",))]

    def test_xlsx_formula_uses_the_cached_value(self, tmp_path: Path) -> None:
        """A formula cell reads as the value the spreadsheet last computed."""
        path = write_xlsx(tmp_path / "m.xlsx", ("S", [["mac"], ['="AA"&"BBCCDDEEFF"']]))
        with zipfile.ZipFile(path) as source:
            parts = {name: source.read(name) for name in source.namelist()}
        sheet = "xl/worksheets/sheet1.xml"
        parts[sheet] = re.sub(
            rb'<c r="A2"><f>(.*?)</f><v\s*/>',
            rb'<c r="A2" t="str"><f>\1</f><v>AABBCCDDEEFF</v>',
            parts[sheet],
        )
        with zipfile.ZipFile(path, "w") as target:
            for name, data in parts.items():
                target.writestr(name, data)

        table = read_table(path)

        assert table.records == [(2, ("AABBCCDDEEFF",))]

    def test_records_stay_out_of_repr(self, tmp_path: Path) -> None:
        """A RawTable's repr never shows cell texts (they may hold passwords)."""
        table = RawTable(
            path=tmp_path / "m.csv",
            sheet=None,
            columns=("password",),
            records=[(2, ("s3cret!",))],
        )

        assert "s3cret" not in repr(table)


class TestHeaders:
    @given(
        st.sampled_from(
            sorted((name, key) for name, keys in FIELD_ALIASES.items() for key in keys)
        ),
        st.lists(st.sampled_from([" ", "_", "-", "  ", ""]), min_size=40, max_size=40),
        st.lists(st.booleans(), min_size=40, max_size=40),
    )
    def test_decorated_aliases_match(
        self, alias: tuple[str, str], gaps: list[str], upper: list[bool]
    ) -> None:
        """Any alias, in any case, with spaces, underscores or hyphens anywhere, matches."""
        name, key = alias
        header = "".join(
            (ch.upper() if up else ch) + gap
            for ch, up, gap in zip(key, upper, gaps, strict=False)
        )
        columns = (
            ("model", "personId", header)
            if name not in ("model", "personId")
            else ("workspaceId", "model" if name == "personId" else "personId", header)
        )

        assert match_headers(Path("m.csv"), columns)[name] == 2

    @given(st.text(alphabet=string.ascii_letters + " _-", min_size=1, max_size=20))
    def test_header_key_ignores_case_and_separators(self, text: str) -> None:
        """The key of a header is the same whatever its case and separators."""
        plain = re.sub(r"[ _\-]", "", text).lower()

        assert header_key(text) == header_key(plain) == plain

    def test_required_marks_are_ignored(self) -> None:
        """Headers like ``Model (Required)`` or ``MAC Address*`` match their field."""
        fields = match_headers(
            Path("m.csv"), ("MAC Address*", "Model (Required)", "Person ID")
        )

        assert fields == {"mac": 0, "model": 1, "personId": 2}

    def test_two_columns_for_one_field_stop_the_run(self) -> None:
        """``mac`` and ``MAC Address`` side by side are ambiguous: a ManifestError names both."""
        with pytest.raises(ManifestError, match='"mac" and "MAC Address"'):
            match_headers(Path("m.csv"), ("mac", "MAC Address", "model", "personId"))

    def test_missing_model_lists_found_and_expected(self) -> None:
        """Without a model column the error lists the columns found and the ones expected."""
        with pytest.raises(MissingColumnError) as caught:
            match_headers(Path("m.csv"), ("MAC", "Owner"))

        message = str(caught.value)
        assert 'Columns found: "MAC", "Owner"' in message
        assert (
            "no model and no owner (workspaceId, personId, workspace or personEmail) column"
            in message
        )
        assert "Expected: model" in message


class TestRows:
    def test_valid_row_is_normalised(self, tmp_path: Path) -> None:
        """MAC, model and tags are normalised, and the original cells are kept."""
        manifest = manifest_of(
            tmp_path, f"aa-bb-cc-dd-ee-01, cisco 8851 ,{WS},,a; b;a|c,"
        )

        row = only_row(manifest)

        assert row.problems == ()
        assert (row.mac, row.model, row.workspace_id, row.tags) == (
            "AABBCCDDEE01",
            "DMS Cisco 8851",
            WS,
            ("a", "b", "c"),
        )
        assert row.cells[1] == "cisco 8851"

    def test_both_owners_is_a_problem(self, tmp_path: Path) -> None:
        """A row with a workspaceId and a personId is invalid."""
        row = only_row(
            manifest_of(tmp_path, f"AABBCCDDEE01,Cisco 8851,{WS},{PERSON},,")
        )

        assert messages(row) == [
            (
                "the row has both a workspaceId and a personId; a device belongs to one "
                "owner: clear one of them"
            )
        ]

    def test_no_owner_is_a_problem(self, tmp_path: Path) -> None:
        """A row with neither owner is invalid and says what to fill in."""
        row = only_row(manifest_of(tmp_path, "AABBCCDDEE01,Cisco 8851,,,,"))

        assert row.problems[0].column == "workspaceId"
        assert row.problems[0].message.startswith("no owner")

    def test_duplicate_macs_flag_every_row_naming_the_others(
        self, tmp_path: Path
    ) -> None:
        """Three rows with one MAC in different notations each name the other two."""
        manifest = manifest_of(
            tmp_path,
            f"AABBCCDDEE01,Cisco 8851,{WS},,,",
            f"aa:bb:cc:dd:ee:01,Cisco 8851,{WS2},,,",
            f"AABBCCDDEE02,Cisco 8851,{WS2},,,",
            f"aabb.ccdd.ee01,Cisco 8851,{WS},,,",
        )

        flagged = {row.number: messages(row) for row in manifest.rows if row.problems}

        assert sorted(flagged) == [2, 3, 5]
        assert "also on row 3, 5;" in flagged[2][0]
        assert "also on row 2, 3;" in flagged[5][0]

    def test_the_8875_is_added_by_mac(self, tmp_path: Path) -> None:
        """The 8875 with a MAC is valid: Cisco lists it as registrable by MAC too."""
        row = only_row(manifest_of(tmp_path, f"AABBCCDDEE01,Cisco 8875,{WS},,,"))

        assert (row.problems, row.model, row.roomos) == ((), "DMS Cisco 8875", False)

    def test_roomos_device_with_mac(self, tmp_path: Path) -> None:
        """A Room Kit with a MAC is invalid: RoomOS devices onboard by activation code."""
        row = only_row(manifest_of(tmp_path, f"AABBCCDDEE01,Cisco Room Kit,{WS},,,"))

        assert row.problems[0].column == "mac"
        assert messages(row) == [
            (
                "the Cisco Room Kit is a RoomOS device: clear the MAC, RoomOS devices "
                "onboard with an activation code"
            )
        ]

    @pytest.mark.parametrize("owner", [f"{WS},", f",{PERSON}"])
    @pytest.mark.parametrize("model", ["Cisco Room Kit", "Desk Pro", "Board Pro 75"])
    def test_roomos_device_without_mac(
        self, tmp_path: Path, model: str, owner: str
    ) -> None:
        """A RoomOS row without a MAC is valid for a workspace or a person; no model is sent."""
        row = only_row(manifest_of(tmp_path, f",{model},{owner},,"))

        assert row.problems == ()
        assert row.roomos
        assert row.is_activation_code_row
        assert row.api_model is None

    def test_phone_code_rows_send_their_model(self, tmp_path: Path) -> None:
        """A phone's activation code names its model (phones must pass their model)."""
        row = only_row(manifest_of(tmp_path, f",Cisco 8851,{WS},,,"))

        assert (row.roomos, row.api_model) == (False, "DMS Cisco 8851")

    def test_mac_only_model_without_mac(self, tmp_path: Path) -> None:
        """An ATA without a MAC is invalid: it takes no activation code."""
        row = only_row(manifest_of(tmp_path, f",Cisco 192,{WS},,,"))

        assert "can only be added by MAC address" in messages(row)[0]

    def test_people_only_model_on_workspace(self, tmp_path: Path) -> None:
        """A model an org lists for people only is invalid on a workspace."""
        catalogue = Catalogue.from_supported(
            [
                SupportedModel(
                    model="DMS Cisco 840",
                    display_name="Cisco Wireless Phone 840",
                    supported_for=("PEOPLE",),
                    onboarding_methods=("MAC_ADDRESS",),
                )
            ]
        )
        path = write(tmp_path / "m.csv", f"{HEADER}\nAABBCCDDEE01,Cisco 840,{WS},,,\n")

        row = only_row(build_manifest(read_table(path), catalogue=catalogue))

        assert "can only belong to a person" in messages(row)[0]

    def test_place_only_model_on_person(self, tmp_path: Path) -> None:
        """A model an org lists for workspaces only is invalid on a person."""
        catalogue = Catalogue.from_supported(
            [
                SupportedModel(
                    model="DMS Cisco 7832",
                    display_name="Cisco 7832",
                    supported_for=("PLACE",),
                    onboarding_methods=("MAC_ADDRESS",),
                )
            ]
        )
        text = f"{HEADER}\nAABBCCDDEE01,Cisco 7832,,{PERSON},,\n"
        path = write(tmp_path / "m.csv", text)

        row = only_row(build_manifest(read_table(path), catalogue=catalogue))

        assert "can only belong to a workspace" in messages(row)[0]

    def test_third_party_needs_a_password(self, tmp_path: Path) -> None:
        """A customer-managed model without a password is invalid."""
        row = only_row(manifest_of(tmp_path, f"AABBCCDDEE01,Yealink T54W,{WS},,,"))

        assert row.problems[0].column == "password"
        assert "needs a password" in messages(row)[0]

    def test_password_is_kept_but_masked_in_cells(self, tmp_path: Path) -> None:
        """The password reaches Row.password, while cells and problems show the mask."""
        manifest = manifest_of(
            tmp_path, f"AABBCCDDEE01,Yealink T54W,{WS},,,Sip-pass-77"
        )

        row = only_row(manifest)

        assert row.password == "Sip-pass-77"
        assert row.cells[5] == PASSWORD_MASK
        assert "Sip-pass-77" not in repr(manifest)

    def test_masked_password_from_a_report_asks_for_it_again(
        self, tmp_path: Path
    ) -> None:
        """A password cell holding the mask (a report read back) counts as missing."""
        row = only_row(
            manifest_of(tmp_path, f"AABBCCDDEE01,Yealink T54W,{WS},,,{PASSWORD_MASK}")
        )

        assert row.password is None
        assert row.problems[0].value == PASSWORD_MASK
        assert messages(row) == ["the password was masked in the report; type it again"]

    def test_wrong_kind_of_id(self, tmp_path: Path) -> None:
        """A workspace's id in the personId column says to move it."""
        row = only_row(manifest_of(tmp_path, f"AABBCCDDEE01,Cisco 8851,,{WS},,"))

        assert messages(row)[0] == (
            "this is the id of a place, not a personId; move it to the workspaceId column"
        )

    def test_email_as_person(self, tmp_path: Path) -> None:
        """An email address in personId is named as such."""
        row = only_row(manifest_of(tmp_path, "AABBCCDDEE01,Cisco 8851,,a@b.gov,,"))

        assert messages(row)[0].startswith("this is an email address")

    def test_empty_model_on_activation_code_row_is_allowed(
        self, tmp_path: Path
    ) -> None:
        """A row without MAC and model is a RoomOS activation code: valid, model None."""
        row = only_row(manifest_of(tmp_path, f",,{WS},,,"))

        assert (row.problems, row.model, row.is_activation_code_row) == ((), None, True)

    def test_mac_row_needs_a_model(self, tmp_path: Path) -> None:
        """A row with a MAC but no model is invalid: create by MAC needs the model."""
        row = only_row(manifest_of(tmp_path, f"AABBCCDDEE01,,{WS},,,"))

        assert row.problems[0].column == "model"
        assert messages(row)[0].startswith("a device added by MAC needs its model")

    def test_no_mac_column_means_activation_codes(self, tmp_path: Path) -> None:
        """Without a mac column every row is an activation-code row."""
        manifest = manifest_of(tmp_path, f"Cisco 8851,{WS}", header="model,workspaceId")

        assert only_row(manifest).is_activation_code_row
        assert "mac" not in manifest.field_columns

    def test_unknown_columns_are_carried_through(self, tmp_path: Path) -> None:
        """Columns the tool does not know stay in columns and cells, in place."""
        manifest = manifest_of(
            tmp_path,
            f"x1,Cisco 8851,{WS},y1",
            header="Site,Device Model,Workspace ID,Notes",
        )

        assert manifest.columns == ("Site", "Device Model", "Workspace ID", "Notes")
        assert only_row(manifest).cells == ("x1", "Cisco 8851", WS, "y1")
        assert manifest.field_columns == {
            "model": "Device Model",
            "workspaceId": "Workspace ID",
        }

    def test_build_manifest_takes_row_numbers_from_the_table(
        self, tmp_path: Path
    ) -> None:
        """Row numbers come from the table's records, as the report module relies on."""
        table = RawTable(
            path=tmp_path / "r.csv",
            sheet=None,
            columns=("model", "workspaceId"),
            records=[(7, ("Cisco 8851", WS)), (12, ("Cisco 8851", WS2))],
        )

        manifest = build_manifest(table)

        assert [row.number for row in manifest.rows] == [7, 12]


def test_split_tags() -> None:
    """Tags split on any separator, trimmed, empties dropped, duplicates removed in order."""
    assert split_tags(" b ; a,,b | c ;") == ("b", "a", "c")


@pytest.mark.parametrize("name", ["example.csv", "example.xlsx"])
def test_examples_are_valid(name: str) -> None:
    """The shipped examples load with 48 rows and no problem: RoomOS, names, emails."""
    manifest = load_manifest(MANIFESTS / name)

    assert len(manifest.rows) == 48
    assert [row.number for row in manifest.rows if row.problems] == []
    assert sum(row.is_activation_code_row for row in manifest.rows) == 11
    assert sum(row.roomos for row in manifest.rows) == 5
    assert sum(bool(row.workspace_name) for row in manifest.rows) == 4
    assert sum(bool(row.person_email) for row in manifest.rows) == 4


def test_example_workbook_holds_the_csv_rows() -> None:
    """example.xlsx is example.csv as a workbook (scripts/example_xlsx.py writes it)."""
    from_csv = load_manifest(MANIFESTS / "example.csv")
    from_xlsx = load_manifest(MANIFESTS / "example.xlsx")

    assert from_xlsx.columns == from_csv.columns
    assert [row.cells for row in from_xlsx.rows] == [row.cells for row in from_csv.rows]


def test_unreadable_path_is_a_read_error(tmp_path: Path) -> None:
    """A missing file raises ManifestReadError, not OSError."""
    with pytest.raises(ManifestReadError, match="no such file"):
        read_table(tmp_path / "nope.csv")


def test_shifted_cells_never_show_a_password(tmp_path: Path) -> None:
    """A value pushed past the header is masked when the sheet has a password column."""
    manifest = manifest_of(tmp_path, f"AABBCCDDEE01,Yealink T54W,{WS},,,pass,word")

    row = only_row(manifest)

    assert row.problems[0].column == "column G (no header)"
    assert row.problems[0].value == PASSWORD_MASK
