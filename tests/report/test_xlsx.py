"""
The XLSX report as a document for people, opened with openpyxl and checked point by
point: sheets, number formats, date cells, wrapping, colours, print settings, the
Summary's fields, the run history and the Activation codes sheet.
"""

from __future__ import annotations

import csv
import dataclasses
import stat
from datetime import datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import report_data as data
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from provisioner.models import Manifest, OrgInfo, Outcome, Status
from provisioner.report.cells import RESULT_COLUMNS
from provisioner.report.codes_sheet import owner_label
from provisioner.report.files import (
    WRAPPED_WIDTHS,
    load_report,
    write_codes_sheet,
    write_report,
)
from provisioner.report.history import load_history
from provisioner.report.styles import STATUS_FILLS, TEXT_FORMAT

HEADER = (*data.COLUMNS, *RESULT_COLUMNS)


def column(name: str) -> int:
    """The 1-based column of a Report header."""
    return HEADER.index(name) + 1


def write(
    folder: Path,
    *,
    manifest: Manifest | None = None,
    outcomes: dict[int, Outcome] | None = None,
    group_by: str | None = "Site",
) -> tuple[Path, Path]:
    xlsx, csv_path = folder / "site-report.xlsx", folder / "site-report.csv"
    write_report(
        manifest or data.manifest(),
        data.outcomes() if outcomes is None else outcomes,
        [xlsx, csv_path],
        data.STATS,
        group_by=group_by,
    )
    return xlsx, csv_path


@pytest.fixture(name="paths", scope="module")
def _paths(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return write(tmp_path_factory.mktemp("report"))


@pytest.fixture(name="book", scope="module")
def _book(paths: tuple[Path, Path]) -> openpyxl.Workbook:
    return openpyxl.load_workbook(paths[0])


def report_row(book: openpyxl.Workbook, number: int) -> dict[str, Any]:
    """The Report sheet's cells of manifest row ``number``, by header."""
    sheet = book["Report"]
    for cells in sheet.iter_rows(min_row=2):
        if cells[column("row") - 1].value == number:
            return dict(zip(HEADER, cells, strict=True))
    raise AssertionError(f"row {number} is not in the report")


def pairs(sheet: Worksheet) -> dict[str, object]:
    """The Summary's label (column A) → value (column B) pairs."""
    found = {}
    for label, value, *_ in sheet.iter_rows(max_col=3, values_only=True):
        if isinstance(label, str) and value is not None:
            found[label] = value
    return found


def table(sheet: Worksheet, heading: str) -> list[tuple[object, ...]]:
    """The rows of the Summary table under ``heading``, its header row first."""
    rows = list(sheet.iter_rows(values_only=True))
    start = next(i for i, cells in enumerate(rows) if cells[0] == heading) + 1
    found = []
    for cells in rows[start:]:
        if cells[0] is None:
            break
        found.append(tuple(cell for cell in cells if cell is not None))
    return found


class TestSheets:
    def test_sheets_in_order_history_hidden(self, book: openpyxl.Workbook) -> None:
        """Report, Summary, Activation codes; the history sheet is hidden."""

        assert book.sheetnames == ["Report", "Summary", "Activation codes", "history"]
        assert [book[name].sheet_state for name in book.sheetnames] == [
            "visible",
            "visible",
            "visible",
            "hidden",
        ]

    def test_no_codes_sheet_without_codes(self, tmp_path: Path) -> None:
        """A report without activation codes has no Activation codes sheet."""

        outcomes = {
            n: o for n, o in data.outcomes().items() if o.activation_code is None
        }

        xlsx, _ = write(tmp_path, outcomes=outcomes)

        assert "Activation codes" not in openpyxl.load_workbook(xlsx).sheetnames


class TestReportCells:
    @pytest.mark.parametrize(
        "name",
        ["MAC Address", "Workspace ID", "deviceId", "activationCode", "trackingId"],
    )
    def test_macs_ids_and_codes_are_text(
        self, book: openpyxl.Workbook, name: str
    ) -> None:
        """MAC, id and code cells are formatted as Text, and so is their whole
        column, so what a person types there, in a filled cell or an empty one, stays
        text."""

        sheet = book["Report"]
        cells = [row[column(name) - 1] for row in sheet.iter_rows(min_row=2)]
        filled = [cell for cell in cells if cell.value is not None]
        letter = get_column_letter(column(name))

        assert filled
        assert {cell.number_format for cell in filled} == {TEXT_FORMAT}
        assert {cell.data_type for cell in filled} == {"s"}
        assert sheet.column_dimensions[letter].number_format == TEXT_FORMAT

    def test_other_columns_are_general(self, book: openpyxl.Workbook) -> None:
        """Columns that hold no ids keep the General format."""

        assert report_row(book, 2)["Site"].number_format == "General"

    def test_code_is_grouped_text(self, book: openpyxl.Workbook) -> None:
        """The code keeps its leading zero, grouped 4-4-4-4."""

        cell = report_row(book, 4)["activationCode"]

        assert cell.value == data.GROUPED

    def test_expiry_is_a_date_time(self, book: openpyxl.Workbook) -> None:
        """activationExpiry is a date-time cell (UTC, to the millisecond), shown
        with its zone."""

        cell = report_row(book, 7)["activationExpiry"]

        assert cell.is_date
        assert cell.value == datetime(2026, 12, 27, 11, 30, 0, 250000)
        assert cell.number_format == 'yyyy-mm-dd hh:mm "UTC"'

    def test_error_wraps_in_a_wide_column_and_its_row_grows(
        self, book: openpyxl.Workbook
    ) -> None:
        """The long error wraps in its 60-wide column; its row is made taller, and
        every cell of that row sits at the top."""

        sheet = book["Report"]
        cells = report_row(book, 5)
        error = cells["error"]

        assert error.alignment.wrap_text is True
        letter = get_column_letter(column("error"))
        assert sheet.column_dimensions[letter].width == WRAPPED_WIDTHS["error"]
        assert (sheet.row_dimensions[5].height or 0) >= 45
        assert cells["status"].alignment.vertical == "top"
        assert sheet.row_dimensions[2].height is None

    def test_status_colours(self, book: openpyxl.Workbook) -> None:
        """Each status cell is filled with its colour, not_started included."""

        sheet = book["Report"]
        cells = [row[column("status") - 1] for row in sheet.iter_rows(min_row=2)]
        fills = {cell.value: cell.fill.fgColor.rgb[-6:] for cell in cells}

        assert fills == {status: STATUS_FILLS[status] for status in fills}
        assert {"not_started", "planned", "failed", "invalid"} <= set(fills)

    def test_dry_run_plan_has_its_own_column(self, book: openpyxl.Workbook) -> None:
        """A planned row says what a run would do under plan; error stays empty."""

        cells = report_row(book, 8)

        assert (cells["plan"].value, cells["error"].value) == (data.PLAN, None)
        assert cells["plan"].alignment.wrap_text is True

    def test_unused_wrapped_column_is_narrow(self, tmp_path: Path) -> None:
        """A report without any plan keeps the plan column narrow."""

        outcomes = {n: o for n, o in data.outcomes().items() if o.plan is None}

        xlsx, _ = write(tmp_path, outcomes=outcomes)
        sheet = openpyxl.load_workbook(xlsx)["Report"]

        letter = get_column_letter(column("plan"))
        assert sheet.column_dimensions[letter].width < WRAPPED_WIDTHS["plan"]

    def test_frozen_header_and_filter(self, book: openpyxl.Workbook) -> None:
        """The header row is frozen and filters cover every row and column."""

        sheet = book["Report"]

        assert sheet.freeze_panes == "A2"
        assert sheet.auto_filter.ref == f"A1:{get_column_letter(len(HEADER))}9"


class TestCsvTwin:
    def test_same_rows_and_columns_no_formatting(
        self, paths: tuple[Path, Path]
    ) -> None:
        """The CSV holds the Report sheet's rows and columns; the expiry stays ISO
        8601 text and the code is grouped like in the workbook."""

        xlsx, csv_path = paths
        with csv_path.open(encoding="utf-8", newline="") as file:
            lines = list(csv.reader(file))
        sheet = openpyxl.load_workbook(xlsx)["Report"]
        shown = [
            ["" if v is None else str(v) for v in values]
            for values in sheet.iter_rows(values_only=True)
        ]
        expiry = column("activationExpiry") - 1

        assert lines[0] == list(HEADER)
        assert [line[column("row") - 1] for line in lines] == [
            cells[column("row") - 1] for cells in shown
        ]
        assert [line[:expiry] for line in lines] == [cells[:expiry] for cells in shown]
        assert lines[3][expiry] == data.EXPIRY
        assert lines[3][column("activationCode") - 1] == data.GROUPED


class TestPrinting:
    @pytest.mark.parametrize("name", ["Report", "Summary", "Activation codes"])
    def test_landscape_one_page_wide_header_repeated_footer(
        self, book: openpyxl.Workbook, name: str
    ) -> None:
        """Every sheet prints landscape, fitted one page wide, row 1 on each page,
        with a footer naming the report, the sheet and the page."""

        sheet = book[name]

        assert sheet.page_setup.orientation == "landscape"
        assert sheet.sheet_properties.pageSetUpPr.fitToPage is True
        assert sheet.page_setup.fitToWidth == 1
        assert sheet.print_title_rows == "$1:$1"
        assert (
            sheet.oddFooter.left.text,
            sheet.oddFooter.center.text,
            sheet.oddFooter.right.text,
        ) == ("&F", "&A", "Page &P of &N")

    def test_only_the_summary_is_one_page_tall(self, book: openpyxl.Workbook) -> None:
        """The Summary fits one page; the long sheets run on as many as they need."""

        heights = {
            name: book[name].page_setup.fitToHeight
            for name in ("Report", "Summary", "Activation codes")
        }

        assert heights == {"Report": 0, "Summary": 1, "Activation codes": 0}


class TestSummary:
    def test_where_when_who(self, book: openpyxl.Workbook) -> None:
        """The Summary names the cloud, API, org, who ran it, the times, the
        manifest with its fingerprint, and the tool's version."""

        found = pairs(book["Summary"])

        assert found["cloud"] == "Webex for Government (FedRAMP)"
        assert found["API base URL"] == data.TARGET.base_url
        assert found["organisation"] == "Acme Federal"
        assert found["organisation id"] == data.TARGET.org_id
        assert found["run by"] == "rollout.lead@acme.test"
        assert found["started (UTC)"] == datetime(2026, 11, 26, 10, 0)
        assert found["finished (UTC)"] == datetime(2026, 11, 26, 10, 1)
        assert found["manifest"] == "site.csv"
        assert found["manifest SHA-256"] == "ab" * 32
        assert str(found["tool"]).startswith("provisioner ")

    def test_counts_by_status_with_meanings(self, book: openpyxl.Workbook) -> None:
        """Every status present is counted and explained; absent ones are left out."""

        rows = table(book["Summary"], "What happened")

        assert rows[0:3] == [
            ("all rows", 8),
            ("created", 1, "registered by MAC address"),
            ("adopted", 1, "was already registered to its owner; kept as it was"),
        ]
        counted = {cells[0]: cells[1] for cells in rows[1:-1]}
        assert counted == {
            "created": 1,
            "adopted": 1,
            "code_issued": 2,
            "failed": 1,
            "invalid": 1,
            "not_started": 1,
            "planned": 1,
        }
        assert rows[-1] == (
            "next step",
            (
                "fix the failed and invalid rows in the Report sheet, then run: "
                "provisioner rerun site-report.xlsx"
            ),
        )

    def test_no_engineer_shorthand_left(self, book: openpyxl.Workbook) -> None:
        """No "final rate (req/s)", "sheet None" or "none 0": figures are labelled
        for people, in a block of their own, last."""

        texts = [
            str(value)
            for values in book["Summary"].iter_rows(values_only=True)
            for value in values
            if value is not None
        ]
        figures = table(book["Summary"], "For engineers: this command's API figures")

        assert not {"final rate (req/s)", "sheet", "none", "None"} & set(texts)
        assert figures == [
            ("API calls (retries included)", 640),
            ("retries", 9),
            ("answers 'too many requests' (HTTP 429)", 4),
            ("duration (seconds)", 60.0),
            ("rows per second", 0.0),
            ("request rate at the end (per second)", 12.5),
        ]

    def test_run_history_tells_the_whole_story(self, book: openpyxl.Workbook) -> None:
        """Each command of the rollout is a line with its own counts."""

        rows = table(book["Summary"], "Run history")

        assert rows == [
            (
                "command",
                "started (UTC)",
                "finished (UTC)",
                "run by",
                "input",
                "rows it decided",
            ),
            (
                "1 · run",
                datetime(2026, 11, 26, 9, 0),
                datetime(2026, 11, 26, 9, 2),
                "rollout.lead@acme.test",
                "site.csv",
                "created 3 · code_issued 2 · failed 2",
            ),
            (
                "2 · rerun",
                datetime(2026, 11, 26, 10, 0),
                datetime(2026, 11, 26, 10, 1),
                "site.tech@acme.test",
                "site-report.xlsx",
                "adopted 1 · failed 1",
            ),
        ]

    def test_counts_per_group(self, book: openpyxl.Workbook) -> None:
        """--group-by counts each group's rows by status, groups in natural order."""

        rows = table(book["Summary"], "By Site")

        assert rows == [
            ("Site", "rows", "by status"),
            ("Floor 2", 1, "code_issued 1"),
            ("Floor 10", 3, "code_issued 1 · invalid 1 · not_started 1"),
            ("HQ", 4, "created 1 · adopted 1 · failed 1 · planned 1"),
        ]

    def test_no_group_block_without_group_by(self, tmp_path: Path) -> None:
        """Without --group-by the Summary has no group block."""

        xlsx, _ = write(tmp_path, group_by=None)
        first = [
            v
            for (v,) in openpyxl.load_workbook(xlsx)["Summary"].iter_rows(
                max_col=1, values_only=True
            )
        ]

        assert "By Site" not in first

    def test_history_is_kept_for_the_next_command(
        self, paths: tuple[Path, Path]
    ) -> None:
        """The hidden history sheet reads back as the same records; a CSV has none."""

        assert load_history(paths[0]) == data.STATS.history
        assert load_history(paths[1]) == ()


class TestCodesSheet:
    def test_one_line_per_code_by_group(self, book: openpyxl.Workbook) -> None:
        """Owner, model, grouped code and expiry, one line per code, by group."""

        rows = list(book["Activation codes"].iter_rows(values_only=True))

        assert rows == [
            ("Site", "row", "owner", "model", "activation code", "expires (UTC)"),
            (
                "Floor 2",
                7,
                "ws-7",
                "Cisco 8851",
                "5555-6666-7777-8888",
                datetime(2026, 12, 27, 11, 30),
            ),
            (
                "Floor 10",
                4,
                "ws-4",
                "Cisco 8851",
                data.GROUPED,
                datetime(2026, 12, 26, 10, 0),
            ),
        ]

    def test_codes_are_large_text(self, book: openpyxl.Workbook) -> None:
        """The code cells are Text in a large monospaced face; headers freeze."""

        sheet = book["Activation codes"]
        code = sheet.cell(2, 5)

        assert (code.number_format, code.font.size) == (TEXT_FORMAT, 14)
        assert sheet.freeze_panes == "A2"

    @pytest.mark.parametrize(
        ("changes", "label"),
        [
            ({}, "ws-4"),
            ({"workspace_name": "Lobby"}, "Lobby"),
            ({"workspace_name": "Lobby", "location": "HQ"}, "Lobby, HQ"),
            ({"workspace_id": None, "person_email": "ana@acme.test"}, "ana@acme.test"),
        ],
    )
    def test_owner_as_people_know_it(self, changes: dict[str, str], label: str) -> None:
        """The owner is the name or email the row gave; the id only when none."""

        assert (
            owner_label(dataclasses.replace(data.row(4, code=True), **changes)) == label
        )

    def test_codes_sheet_alone(self, tmp_path: Path) -> None:
        """write_codes_sheet lists only the rows asked for, in a 0600 workbook."""

        path = tmp_path / "pending.xlsx"

        count = write_codes_sheet(
            data.manifest(), data.outcomes(), path, only=frozenset({4})
        )
        book = openpyxl.load_workbook(path)
        rows = list(book["Activation codes"].iter_rows(values_only=True))

        assert count == 1
        assert book.sheetnames == ["Activation codes"]
        assert [r[3] for r in rows] == ["activation code", data.GROUPED]
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert book["Activation codes"].page_setup.orientation == "landscape"

    def test_codes_in_several_orgs_name_each_ones_org(self, tmp_path: Path) -> None:
        """A partner's report: the room called the same in two customers' orgs is
        told apart by an org column, named where the run knew the name, else by id;
        a report of one org has no such column."""
        rows = {row.number: row for row in data.manifest().rows}
        rows[4] = dataclasses.replace(rows[4], org_id="ORG-A")
        rows[7] = dataclasses.replace(rows[7], org_id="ORG-B")
        manifest = dataclasses.replace(data.manifest(), rows=tuple(rows.values()))
        stats = dataclasses.replace(
            data.STATS, orgs=(OrgInfo(key="ORG-A", id="ORG-A", name="Customer A"),)
        )
        xlsx = tmp_path / "partner.xlsx"

        write_report(manifest, data.outcomes(), [xlsx], stats)
        lines = list(
            openpyxl.load_workbook(xlsx)["Activation codes"].iter_rows(values_only=True)
        )

        assert [line[:2] for line in lines] == [
            ("org", "row"),
            ("Customer A", 4),
            ("ORG-B", 7),
        ]
        one_org = tmp_path / "one.xlsx"
        write_report(data.manifest(), data.outcomes(), [one_org], data.STATS)
        header = next(
            openpyxl.load_workbook(one_org)["Activation codes"].iter_rows(
                values_only=True
            )
        )
        assert "org" not in header


class TestEditedInASpreadsheet:
    def test_text_mac_and_date_expiry_read_back(self, tmp_path: Path) -> None:
        """A report a person edited and saved (a MAC retyped in its Text cell, a new
        expiry date) reads back with those values, for rerun."""

        xlsx, _ = write(tmp_path)
        book = openpyxl.load_workbook(xlsx)
        sheet = book["Report"]
        sheet.cell(6, column("MAC Address")).value = "00:1B:D4:00:00:99"
        sheet.cell(4, column("activationExpiry")).value = datetime(2027, 1, 2, 3, 4)
        book.save(xlsx)

        manifest, outcomes = load_report(xlsx)
        fixed = next(row for row in manifest.rows if row.number == 6)

        assert fixed.mac == "001BD4000099"
        assert outcomes[4].activation_code == data.CODE
        assert outcomes[4].activation_expiry == "2027-01-02T03:04:00.000Z"
        assert outcomes[7].activation_expiry == "2026-12-27T11:30:00.250Z"
        assert outcomes[8] == Outcome(row=8, status=Status.PLANNED, plan=data.PLAN)

    def test_round_trip_is_exact(self, paths: tuple[Path, Path]) -> None:
        """Both files read back as the same outcomes."""

        from_xlsx = load_report(paths[0])[1]
        from_csv = load_report(paths[1])[1]

        assert from_xlsx == from_csv
        assert from_xlsx[4].activation_code == data.CODE
        assert from_xlsx[5].error == data.LONG_ERROR
