"""
The report: every manifest row once, in order, with its outcome; read back for rerun.
"""

from __future__ import annotations

import csv
import os
import stat
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import openpyxl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from provisioner.errors import ConfigError, ManifestReadError, MissingColumnError
from provisioner.intake.formulas import FORMULA_STARTS, mark_as_text
from provisioner.intake.manifest import load_manifest
from provisioner.models import Manifest, Outcome, Row, Status
from provisioner.report import cells as report_cells
from provisioner.report.files import (
    NOT_STARTED_ERROR,
    PASSWORD_MASK,
    RESULT_COLUMNS,
    RunStats,
    complete_outcomes,
    decode_error_cell,
    error_cell,
    error_kind,
    load_report,
    report_paths,
    rows_to_rerun,
    summarise,
    write_report,
)
from provisioner.report.table import TableFile

COLUMNS = (
    "MAC Address",
    "Model",
    "Workspace ID",
    "Person ID",
    "Tags",
    "Password",
    "Notes",
)
FIELDS = {
    "mac": "MAC Address",
    "model": "Model",
    "workspaceId": "Workspace ID",
    "personId": "Person ID",
    "tags": "Tags",
    "password": "Password",
}
CODE = "4417328563929315"
STATS = RunStats(
    started_at=datetime(2026, 11, 26, 1, 0, tzinfo=UTC),
    finished_at=datetime(2026, 11, 26, 1, 0, tzinfo=UTC) + timedelta(seconds=20),
    api_calls=640,
    rate_limited=4,
    retries=9,
    final_rate=12.5,
)


def make_manifest(count: int, *, path: Path = Path("m.csv")) -> Manifest:
    """
    Build a manifest of ``count`` rows; every fifth is an activation-code row and
    every seventh carries a password. Row numbers skip a blank line after row 10.
    """
    rows = []
    for index in range(count):
        number = index + 2 if index < 9 else index + 3
        mac = (
            ""
            if index % 5 == 4
            else f"00:1B:D4:00:{index // 256:02X}:{index % 256:02X}"
        )
        password = "s3cret-pw" if index % 7 == 3 else ""
        cells = (
            mac,
            "Cisco 8851",
            f"ws-{index % 40}",
            "",
            "lobby;floor 2",
            password,
            f"n{index}",
        )
        rows.append(
            Row(
                number=number,
                cells=cells,
                mac=mac.replace(":", "") or None,
                model="DMS Cisco 8851",
                workspace_id=f"ws-{index % 40}",
                tags=("lobby", "floor 2"),
                password=password or None,
            )
        )
    return Manifest(
        path=path, sheet=None, columns=COLUMNS, field_columns=FIELDS, rows=tuple(rows)
    )


def mixed_outcomes(manifest: Manifest) -> dict[int, Outcome]:
    """
    Give each row an outcome, cycling through every kind a run produces.
    """
    outcomes = {}
    for index, row in enumerate(manifest.rows):
        kind = index % 6
        n = row.number
        if kind == 0:
            outcome = Outcome(
                row=n, status=Status.CREATED, device_id=f"dev-{n}", attempts=2
            )
        elif kind == 1:
            outcome = Outcome(
                row=n, status=Status.ADOPTED, device_id=f"dev-{n}", attempts=3
            )
        elif kind == 2:
            outcome = Outcome(
                row=n,
                status=Status.CODE_ISSUED,
                activation_code=f"{CODE[:-4]}{n:04d}",
                activation_expiry="2026-11-29T01:00:00.000Z",
                device_id=f"dev-{n}",
                attempts=1,
                tags_deferred=n % 4 == 0,
            )
        elif kind == 3:
            outcome = Outcome(
                row=n,
                status=Status.FAILED,
                error="create device: the workspace does not exist; check the Workspace ID",
                http_status=404,
                tracking_id=f"ROUTER_{n}",
                attempts=1,
            )
        elif kind == 4:
            outcome = Outcome(
                row=n,
                status=Status.INVALID,
                error='column "Model": unknown model "Cisco 9999"',
            )
        else:
            outcome = Outcome(
                row=n,
                status=Status.FAILED,
                device_id=f"dev-{n}",
                error="apply tags: the API answered 500 eight times; run rerun later",
                http_status=500,
                tracking_id=f"ROUTER_{n}",
                attempts=8,
            )
        outcomes[n] = outcome
    return outcomes


def read_csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as file:
        return list(csv.reader(file))


def umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


class TestReportPaths:
    def test_default_is_both_under_reports(self) -> None:
        """Without --report, both formats go to reports/<stem>-report.*."""

        expected = (
            Path("reports/site.v2-report.xlsx"),
            Path("reports/site.v2-report.csv"),
        )

        assert report_paths(Path("in/site.v2.csv"), None) == expected

    def test_reports_dir_is_configurable(self, tmp_path: Path) -> None:
        """The default folder can be moved."""

        expected = (tmp_path / "m-report.xlsx", tmp_path / "m-report.csv")

        assert report_paths(Path("m.xlsx"), None, reports_dir=tmp_path) == expected

    @pytest.mark.parametrize("name", ["out.xlsx", "out.csv", "OUT.XLSX", "a/b.Csv"])
    def test_known_extension_is_one_file(self, name: str) -> None:
        """--report with .xlsx or .csv (any case) writes exactly that file."""

        assert (Path(name),) == report_paths(Path("m.csv"), Path(name))

    def test_no_extension_is_both(self) -> None:
        """--report without an extension writes both formats at that name."""

        expected = (Path("out/run1.xlsx"), Path("out/run1.csv"))

        assert report_paths(Path("m.csv"), Path("out/run1")) == expected

    def test_existing_folder_is_both_inside(self, tmp_path: Path) -> None:
        """--report naming a folder writes both formats inside it."""

        expected = (tmp_path / "m-report.xlsx", tmp_path / "m-report.csv")

        assert report_paths(Path("x/m.csv"), tmp_path) == expected

    @pytest.mark.parametrize("name", ["out.xls", "out.tsv", "out.json"])
    def test_unknown_extension_is_refused(self, name: str) -> None:
        """Another extension is a ConfigError saying which ones work."""

        with pytest.raises(ConfigError, match=r"\.xlsx or \.csv"):
            report_paths(Path("m.csv"), Path(name))


class TestErrorCell:
    def test_deferred_tags_are_encoded(self) -> None:
        """A code_issued row with deferred tags says so at the start of its error."""

        outcome = Outcome(row=2, status=Status.CODE_ISSUED, tags_deferred=True)

        assert error_cell(outcome).startswith("tags deferred: ")

    def test_deferred_tags_decode(self) -> None:
        """The encoded text reads back as deferred tags with no other error."""

        outcome = Outcome(row=2, status=Status.CODE_ISSUED, tags_deferred=True)

        assert decode_error_cell(Status.CODE_ISSUED, error_cell(outcome)) == (
            None,
            True,
        )

    def test_deferred_prefix_counts_only_on_code_issued(self) -> None:
        """A failed row whose text happens to start the same way is not deferred."""

        assert decode_error_cell(Status.FAILED, "tags deferred: x") == (
            "tags deferred: x",
            False,
        )

    def test_already_encoded_text_is_not_doubled(self) -> None:
        """An error that already starts with the prefix is written once."""

        outcome = Outcome(
            row=2,
            status=Status.CODE_ISSUED,
            tags_deferred=True,
            error="tags deferred: y",
        )

        assert error_cell(outcome) == "tags deferred: y"

    @given(
        reason=st.one_of(
            st.none(),
            st.text(min_size=1)
            .map(str.strip)
            .filter(lambda text: bool(text) and not text.startswith("tags deferred:")),
        ),
        deferred=st.booleans(),
    )
    def test_round_trip(self, reason: str | None, deferred: bool) -> None:
        """Any error text and deferred flag survive encode then decode."""

        outcome = Outcome(
            row=2, status=Status.CODE_ISSUED, error=reason, tags_deferred=deferred
        )

        assert (reason, deferred) == decode_error_cell(
            Status.CODE_ISSUED, error_cell(outcome)
        )


class TestErrorKind:
    def test_step_and_http_status(self) -> None:
        """A failed call's kind is its step plus the HTTP status."""

        outcome = Outcome(
            row=2,
            status=Status.FAILED,
            error="create device: no such workspace",
            http_status=404,
        )

        assert error_kind(outcome) == "create device (HTTP 404)"

    def test_without_http_status(self) -> None:
        """An interrupted row's kind is the text before its colon."""

        outcome = Outcome(row=2, status=Status.NOT_STARTED, error=NOT_STARTED_ERROR)

        assert error_kind(outcome) == "not started"

    def test_invalid_row(self) -> None:
        """An invalid row's kind names the column that was wrong."""

        outcome = Outcome(row=2, status=Status.INVALID, error='column "Model": unknown')

        assert error_kind(outcome) == 'invalid row: column "Model"'

    def test_ok_rows_have_none(self) -> None:
        """Rows that ended well have no error kind, even with text in error."""

        outcome = Outcome(
            row=2, status=Status.PLANNED, error="would create: DMS Cisco 8851"
        )

        assert error_kind(outcome) is None

    def test_deferred_tags(self) -> None:
        """Deferred tags are counted as their own kind."""

        outcome = Outcome(row=2, status=Status.CODE_ISSUED, tags_deferred=True)

        assert error_kind(outcome) == "tags deferred"

    def test_free_text_is_cut(self) -> None:
        """A long text with no step stays a short kind."""

        outcome = Outcome(row=2, status=Status.FAILED, error="x" * 500)

        assert len(error_kind(outcome) or "") <= report_cells.MAX_KIND_LENGTH

    def test_no_text(self) -> None:
        """A failed row without any text still has a kind."""

        assert error_kind(Outcome(row=2, status=Status.FAILED)) == "no reason given"


class TestCompleteness:
    def test_missing_rows_are_not_started(self) -> None:
        """A row without an outcome becomes not_started with the not-started text."""

        manifest = make_manifest(3)
        outcomes = {2: Outcome(row=2, status=Status.CREATED)}

        complete = complete_outcomes(manifest, outcomes)

        assert list(complete) == [2, 3, 4]
        assert (
            complete[4].status,
            complete[4].error,
        ) == (Status.NOT_STARTED, NOT_STARTED_ERROR)

    def test_summary_counts(self) -> None:
        """The summary counts rows by status and by error kind, never twice."""

        manifest = make_manifest(12)
        outcomes = mixed_outcomes(manifest)
        del outcomes[manifest.rows[-1].number]

        summary = summarise(manifest, outcomes, STATS)

        assert summary.rows == 12
        assert sum(summary.by_status.values()) == 12
        assert summary.not_started == 1
        assert summary.by_error["create device (HTTP 404)"] == 2
        assert summary.by_error["not started"] == 1
        assert pytest.approx(11 / 20) == summary.throughput

    def test_rerun_throughput_counts_rows_worked(self) -> None:
        """A rerun's rows/s counts the rows it worked on, not the rows carried over."""

        manifest = make_manifest(12)
        stats = RunStats(
            started_at=STATS.started_at,
            finished_at=STATS.finished_at,
            api_calls=3,
            rate_limited=0,
            retries=0,
            rows_worked=2,
        )

        summary = summarise(manifest, mixed_outcomes(manifest), stats)

        assert summary.throughput == pytest.approx(2 / 20)


class TestRowsToRerun:
    def test_failed_invalid_not_started_planned_and_deferred(self) -> None:
        """Failed, invalid, not-started, planned and deferred-tags rows are rerun; rows
        that ended well (a pending code among them) are not."""

        outcomes = {
            2: Outcome(row=2, status=Status.CREATED),
            3: Outcome(row=3, status=Status.ADOPTED),
            4: Outcome(row=4, status=Status.CODE_ISSUED),
            5: Outcome(row=5, status=Status.CODE_ISSUED, tags_deferred=True),
            6: Outcome(row=6, status=Status.FAILED),
            7: Outcome(row=7, status=Status.INVALID),
            8: Outcome(row=8, status=Status.PLANNED),
            9: Outcome(row=9, status=Status.NOT_STARTED),
            10: Outcome(row=10, status=Status.CODE_PENDING, device_id="d"),
        }

        assert frozenset({5, 6, 7, 8, 9}) == rows_to_rerun(outcomes)


def write(
    tmp_path: Path,
    manifest: Manifest,
    outcomes: Mapping[int, Outcome],
    name: str = "r.csv",
) -> Path:
    path = tmp_path / name
    write_report(manifest, outcomes, [path], STATS)
    return path


class TestCsv:
    def test_column_order(self, tmp_path: Path) -> None:
        """The header is the manifest's columns, then the contract's result columns."""

        manifest = make_manifest(2)

        header = read_csv(write(tmp_path, manifest, mixed_outcomes(manifest)))[0]

        assert [*COLUMNS, *RESULT_COLUMNS] == header

    def test_every_row_once_in_order(self, tmp_path: Path) -> None:
        """A 300-row mixed run writes 300 data rows in manifest order, each complete."""

        manifest = make_manifest(300)
        outcomes = mixed_outcomes(manifest)

        lines = read_csv(write(tmp_path, manifest, outcomes))
        row_at = len(COLUMNS)

        assert len(lines) == 301
        assert [str(row.number) for row in manifest.rows] == [
            x[row_at] for x in lines[1:]
        ]
        assert {len(COLUMNS) + len(RESULT_COLUMNS)} == {len(x) for x in lines}
        assert [o.status.value for o in outcomes.values()] == [
            x[row_at + 1] for x in lines[1:]
        ]

    def test_input_cells_untouched(self, tmp_path: Path) -> None:
        """Input cells are written exactly as the manifest held them."""

        manifest = make_manifest(5)

        lines = read_csv(write(tmp_path, manifest, mixed_outcomes(manifest)))

        assert list(manifest.rows[4].cells[:5]) == lines[5][:5]

    def test_result_cells(self, tmp_path: Path) -> None:
        """A failed row carries its error, HTTP status, tracking id and attempts."""

        manifest = make_manifest(4)

        lines = read_csv(write(tmp_path, manifest, mixed_outcomes(manifest)))
        result = dict(zip(RESULT_COLUMNS, lines[4][len(COLUMNS) :], strict=True))

        assert result == {
            "row": "5",
            "status": "failed",
            "deviceId": "",
            "owner": "",
            "activationCode": "",
            "activationExpiry": "",
            "error": "create device: the workspace does not exist; check the Workspace ID",
            "plan": "",
            "httpStatus": "404",
            "trackingId": "ROUTER_5",
            "attempts": "1",
        }

    def test_passwords_are_masked(self, tmp_path: Path) -> None:
        """A password never reaches the report; a masked cell shows one was given."""

        manifest = make_manifest(12)

        path = write(tmp_path, manifest, mixed_outcomes(manifest))
        lines = read_csv(path)
        password_at = COLUMNS.index("Password")

        assert "s3cret-pw" not in path.read_text(encoding="utf-8")
        assert [x[password_at] for x in lines[1:] if x[password_at]] == [
            PASSWORD_MASK,
            PASSWORD_MASK,
        ]

    def test_interrupted_rows(self, tmp_path: Path) -> None:
        """Rows the run never reached are written not_started with its text."""

        manifest = make_manifest(5)
        outcomes = {2: Outcome(row=2, status=Status.CREATED, device_id="d")}

        lines = read_csv(write(tmp_path, manifest, outcomes))
        status_at = len(COLUMNS) + 1

        assert [x[status_at] for x in lines[1:]] == [
            "created",
            "not_started",
            "not_started",
            "not_started",
            "not_started",
        ]
        error_at = len(COLUMNS) + RESULT_COLUMNS.index("error")
        assert lines[-1][error_at] == NOT_STARTED_ERROR

    def test_plain_utf8_without_bom(self, tmp_path: Path) -> None:
        """The CSV is UTF-8 without a BOM, so scripts read the first header as is."""

        manifest = make_manifest(1)

        raw = write(tmp_path, manifest, {}).read_bytes()

        assert raw.startswith(b"MAC Address,")


class TestFileSafety:
    @pytest.mark.parametrize("name", ["r.csv", "r.xlsx"])
    def test_mode_0600_with_codes(self, tmp_path: Path, name: str) -> None:
        """A report holding activation codes is created readable by its owner only."""

        manifest = make_manifest(6)

        path = write(tmp_path, manifest, mixed_outcomes(manifest), name)

        assert stat.S_IMODE(path.stat().st_mode) == 0o600

    @pytest.mark.parametrize("name", ["r.csv", "r.xlsx"])
    def test_default_mode_without_codes(self, tmp_path: Path, name: str) -> None:
        """A report without codes gets the mode the umask allows."""

        manifest = make_manifest(2)

        path = write(tmp_path, manifest, mixed_outcomes(manifest), name)

        assert 0o666 & ~umask() == stat.S_IMODE(path.stat().st_mode)

    def test_replace_is_atomic(self, tmp_path: Path) -> None:
        """A new report replaces the old file by rename, taking the new mode."""

        manifest = make_manifest(6)
        path = write(tmp_path, manifest, {})
        before = path.stat().st_ino

        write(tmp_path, manifest, mixed_outcomes(manifest))

        assert before != path.stat().st_ino
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert [path] == list(tmp_path.iterdir())

    def test_failed_write_keeps_old_report(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A write that fails half-way leaves the previous report and no temp file."""

        manifest = make_manifest(6)
        path = write(tmp_path, manifest, {})
        old = path.read_bytes()

        def broken(*args: object) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(TableFile, "append", broken)

        with pytest.raises(ConfigError, match="No space left on device"):
            write(tmp_path, manifest, mixed_outcomes(manifest))
        assert old == path.read_bytes()
        assert [path] == list(tmp_path.iterdir())

    def test_creates_missing_folder(self, tmp_path: Path) -> None:
        """The reports folder is created when it does not exist yet."""

        manifest = make_manifest(1)

        path = write(tmp_path, manifest, {}, "deep/er/r.csv")

        assert path.exists()

    def test_unwritable_folder_is_a_clear_error(self, tmp_path: Path) -> None:
        """A folder that cannot be written gives a ConfigError naming the file."""

        manifest = make_manifest(1)
        blocker = tmp_path / "file"
        blocker.write_text("not a folder")

        with pytest.raises(ConfigError, match=r"cannot write the report .*file/r\.csv"):
            write(tmp_path, manifest, {}, "file/r.csv")


class TestXlsx:
    def test_header_and_rows(self, tmp_path: Path) -> None:
        """The Report sheet has the contract header and every row in order."""

        manifest = make_manifest(30)
        path = write(tmp_path, manifest, mixed_outcomes(manifest), "r.xlsx")

        rows = list(openpyxl.load_workbook(path)["Report"].iter_rows(values_only=True))

        assert (*COLUMNS, *RESULT_COLUMNS) == rows[0]
        assert len(rows) == 31
        assert [r[len(COLUMNS)] for r in rows[1:4]] == [2, 3, 4]


class TestXlsxCells:
    def test_formula_text_stays_text(self, tmp_path: Path) -> None:
        """A manifest cell starting with "=" is written as that text, not a formula."""

        manifest = make_manifest(1)
        row = manifest.rows[0]
        cells = (*row.cells[:-1], '=HYPERLINK("x")')
        manifest = Manifest(
            path=manifest.path,
            sheet=None,
            columns=COLUMNS,
            field_columns=FIELDS,
            rows=(Row(number=2, cells=cells),),
        )

        path = write(tmp_path, manifest, {}, "r.xlsx")
        cell = openpyxl.load_workbook(path)["Report"].cell(2, len(COLUMNS))

        assert (cell.data_type, cell.value) == ("s", '=HYPERLINK("x")')

    def test_control_characters_do_not_crash(self, tmp_path: Path) -> None:
        """A control character XLSX cannot hold is replaced, not a crash."""

        manifest = Manifest(
            path=Path("m.csv"),
            sheet=None,
            columns=("Notes",),
            field_columns={},
            rows=(Row(number=2, cells=("bell\x07",)),),
        )

        path = write(tmp_path, manifest, {}, "r.xlsx")

        assert (
            openpyxl.load_workbook(path)["Report"].cell(2, 1).value
            == "bell\N{REPLACEMENT CHARACTER}"
        )


MANIFEST_CSV = """\
MAC Address,Model,Workspace ID,Tags,Notes
00:1B:D4:00:00:01,Cisco 8851,ws-1,lobby;floor 2,Büro 3
00:1B:D4:00:00:02,Cisco 9861,ws-2,,
,Cisco 8875,ws-3,boardroom,activation code

00:1B:D4:00:00:04,Cisco 9999,ws-4,,unknown model
00:1B:D4:00:00:05,Cisco 8851,ws-missing,,"quoted, with comma"
00:1B:D4:00:00:06,Cisco 8851,ws-6,a|b,
"""


COLUMNS_OF_EXAMPLE = ("MAC Address", "Model", "Workspace ID", "Tags", "Notes")


def load_example(tmp_path: Path, text: str = MANIFEST_CSV) -> Manifest:
    source = tmp_path / "site.csv"
    source.write_text(text, encoding="utf-8")
    return load_manifest(source)


def example_outcomes() -> dict[int, Outcome]:
    """
    Outcomes for MANIFEST_CSV: created, adopted, a code, invalid, failed, not started.
    """
    return {
        2: Outcome(row=2, status=Status.CREATED, device_id="Y2lzY29-dev-2", attempts=2),
        3: Outcome(row=3, status=Status.ADOPTED, device_id="Y2lzY29-dev-3", attempts=3),
        4: Outcome(
            row=4,
            status=Status.CODE_ISSUED,
            device_id="Y2lzY29-dev-4",
            activation_code=CODE,
            activation_expiry="2026-11-29T01:00:00.000Z",
            attempts=2,
            tags_deferred=True,
        ),
        6: Outcome(row=6, status=Status.INVALID, error='column "Model": not a model'),
        7: Outcome(
            row=7,
            status=Status.FAILED,
            error="create device: the workspace ws-missing does not exist",
            http_status=404,
            tracking_id="ROUTER_6540",
            attempts=1,
        ),
    }


def write_both(tmp_path: Path, manifest: Manifest) -> tuple[Path, Path]:
    xlsx, csv_path = report_paths(manifest.path, None, reports_dir=tmp_path / "out")
    write_report(manifest, example_outcomes(), [xlsx, csv_path], STATS)
    return xlsx, csv_path


class TestLoadReport:
    @pytest.mark.parametrize("kind", ["xlsx", "csv"])
    def test_round_trip(self, tmp_path: Path, kind: str) -> None:
        """A report reads back as the same rows and the same outcomes."""

        manifest = load_example(tmp_path)
        paths = dict(zip(["xlsx", "csv"], write_both(tmp_path, manifest), strict=True))
        expected = complete_outcomes(manifest, example_outcomes())

        loaded, outcomes = load_report(paths[kind])

        assert outcomes == expected
        assert loaded.rows == manifest.rows
        assert loaded.columns == manifest.columns
        assert loaded.field_columns == manifest.field_columns

    def test_xlsx_sheet_is_report(self, tmp_path: Path) -> None:
        """A workbook report is read from its "Report" sheet."""

        manifest = load_example(tmp_path)
        xlsx, _ = write_both(tmp_path, manifest)

        assert load_report(xlsx)[0].sheet == "Report"

    def test_rerun_rows_from_a_loaded_report(self, tmp_path: Path) -> None:
        """Deferred, invalid, failed and not-started rows come back for rerun."""

        manifest = load_example(tmp_path)
        _, csv_path = write_both(tmp_path, manifest)

        assert rows_to_rerun(load_report(csv_path)[1]) == frozenset({4, 6, 7, 8})

    def test_fixed_value_is_used(self, tmp_path: Path) -> None:
        """A value a person corrects in the report CSV is the value read back."""

        manifest = load_example(tmp_path)
        _, csv_path = write_both(tmp_path, manifest)
        text = csv_path.read_text(encoding="utf-8")
        csv_path.write_text(text.replace(",ws-missing,", ",ws-5,"), encoding="utf-8")

        loaded, outcomes = load_report(csv_path)
        row = next(row for row in loaded.rows if row.number == 7)

        assert row.workspace_id == "ws-5"
        assert outcomes[7].status is Status.FAILED

    def test_fixed_model_becomes_valid(self, tmp_path: Path) -> None:
        """An invalid row fixed in the report validates cleanly when read back."""

        manifest = load_example(tmp_path)
        _, csv_path = write_both(tmp_path, manifest)
        text = csv_path.read_text(encoding="utf-8")
        csv_path.write_text(text.replace("Cisco 9999", "Cisco 8851"), encoding="utf-8")

        row = next(row for row in load_report(csv_path)[0].rows if row.number == 6)

        assert (row.problems, row.model) == ((), "DMS Cisco 8851")

    def test_excel_saved_csv_with_bom(self, tmp_path: Path) -> None:
        """A report CSV saved back by Excel (BOM, CRLF) reads the same."""

        manifest = load_example(tmp_path)
        _, csv_path = write_both(tmp_path, manifest)
        text = csv_path.read_text(encoding="utf-8")
        csv_path.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())

        assert load_report(csv_path)[1] == complete_outcomes(
            manifest, example_outcomes()
        )

    def test_spreadsheet_numbers_are_whole_numbers(self, tmp_path: Path) -> None:
        """Counts a spreadsheet turned into 404.0 still read as whole numbers."""

        manifest = load_example(tmp_path)
        _, csv_path = write_both(tmp_path, manifest)
        text = csv_path.read_text(encoding="utf-8")
        csv_path.write_text(text.replace(",404,", ",404.0,"), encoding="utf-8")

        assert load_report(csv_path)[1][7].http_status == 404

    def test_own_status_column_stays_input(self, tmp_path: Path) -> None:
        """A manifest's own "status" or "row" column is an input column, not a result."""

        manifest = load_example(
            tmp_path,
            "row,status,MAC Address,Model,Workspace ID\n"
            "A1,in stock,00:1B:D4:00:00:01,Cisco 8851,ws-1\n",
        )
        path = tmp_path / "r.csv"
        write_report(
            manifest, {2: Outcome(row=2, status=Status.CREATED)}, [path], STATS
        )

        loaded, outcomes = load_report(path)

        assert loaded.rows[0].cells[:2] == ("A1", "in stock")
        assert outcomes[2].status is Status.CREATED

    def test_sorted_report_is_put_back_in_order(self, tmp_path: Path) -> None:
        """A report a person sorted (by status, say) reads back in manifest order."""

        manifest = load_example(tmp_path)
        _, csv_path = write_both(tmp_path, manifest)
        header, *lines = csv_path.read_text(encoding="utf-8").splitlines()
        csv_path.write_text(
            "\n".join([header, *reversed(lines)]) + "\n", encoding="utf-8"
        )

        loaded, outcomes = load_report(csv_path)

        assert [row.number for row in loaded.rows] == [2, 3, 4, 6, 7, 8]
        assert list(outcomes) == [2, 3, 4, 6, 7, 8]

    def test_columns_added_after_results_are_ignored(self, tmp_path: Path) -> None:
        """A column a person adds right of the result columns does not break reading."""

        manifest = load_example(tmp_path)
        _, csv_path = write_both(tmp_path, manifest)
        lines = csv_path.read_text(encoding="utf-8").splitlines()
        lines = [lines[0] + ",my notes"] + [line + ",checked" for line in lines[1:]]
        csv_path.write_text("\n".join(lines) + "\n", encoding="utf-8")

        loaded, _ = load_report(csv_path)

        assert loaded.columns == manifest.columns


THIRD_PARTY_CSV = """\
MAC,Model,Workspace ID,Password
00:1B:D4:00:00:01,Yealink T54W,ws-1,Sup3r-secret-pw
00:1B:D4:00:00:02,Yealink T54W,ws-2,Sup3r-secret-pw
"""


class TestPasswordsReadBack:
    def test_masked_password_is_not_a_password(self, tmp_path: Path) -> None:
        """A masked password reads back as none, and a row to redo asks for it."""

        manifest = load_example(tmp_path, THIRD_PARTY_CSV)
        path = tmp_path / "r.csv"
        write_report(manifest, {2: Outcome(row=2, status=Status.FAILED)}, [path], STATS)

        loaded, _ = load_report(path)

        assert "Sup3r-secret-pw" not in path.read_text(encoding="utf-8")
        assert [row.password for row in loaded.rows] == [None, None]
        assert "masked" in loaded.rows[0].problems[0].message

    def test_retyped_password_is_used(self, tmp_path: Path) -> None:
        """A password typed back into the report is read and masked again after."""

        manifest = load_example(tmp_path, THIRD_PARTY_CSV)
        path = tmp_path / "r.csv"
        write_report(manifest, {2: Outcome(row=2, status=Status.FAILED)}, [path], STATS)
        lines = path.read_text(encoding="utf-8").splitlines()
        lines[1] = lines[1].replace(PASSWORD_MASK, "N3w-secret-pw", 1)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")

        loaded, _ = load_report(path)
        write_report(loaded, {}, [path], STATS)

        assert (loaded.rows[0].password, loaded.rows[0].problems) == (
            "N3w-secret-pw",
            (),
        )
        assert "N3w-secret-pw" not in path.read_text(encoding="utf-8")


class TestLoadReportErrors:
    def test_plain_manifest(self, tmp_path: Path) -> None:
        """A manifest given as a report says it is not one."""

        source = tmp_path / "site.csv"
        source.write_text(MANIFEST_CSV, encoding="utf-8")

        with pytest.raises(
            MissingColumnError, match=r'not a provisioner report: no "status"'
        ):
            load_report(source)

    def test_lost_result_column(self, tmp_path: Path) -> None:
        """A report missing a result column names the column and the file."""

        manifest = load_example(tmp_path)
        _, csv_path = write_both(tmp_path, manifest)
        with csv_path.open(encoding="utf-8", newline="") as file:
            lines = list(csv.reader(file))
        with csv_path.open("w", encoding="utf-8", newline="") as file:
            csv.writer(file).writerows(line[:-1] for line in lines)

        with pytest.raises(MissingColumnError, match=r"site-report\.csv.*attempts"):
            load_report(csv_path)

    @pytest.mark.parametrize(
        ("column", "line", "value", "message"),
        [
            ("status", 1, "done", r'row 2, column "status": "done" is not a status'),
            ("row", 1, "abc", r'row 2, column "row": "abc" is not a whole number'),
            ("row", 2, "2", r'row 3, column "row": row 2 is also on row 2'),
            ("httpStatus", 5, "four", r'row 6, column "httpStatus": "four"'),
            ("attempts", 1, "-1", r'row 2, column "attempts": "-1"'),
        ],
    )
    def test_unusable_cells(
        self, tmp_path: Path, column: str, line: int, value: str, message: str
    ) -> None:
        """An unusable result cell is an error naming the file, row and column."""

        manifest = load_example(tmp_path)
        _, csv_path = write_both(tmp_path, manifest)
        with csv_path.open(encoding="utf-8", newline="") as file:
            lines = list(csv.reader(file))
        lines[line][len(COLUMNS_OF_EXAMPLE) + RESULT_COLUMNS.index(column)] = value
        with csv_path.open("w", encoding="utf-8", newline="") as file:
            csv.writer(file).writerows(lines)

        with pytest.raises(ManifestReadError, match=rf"site-report\.csv, {message}"):
            load_report(csv_path)

    def test_code_mangled_by_a_spreadsheet(self, tmp_path: Path) -> None:
        """A code Excel turned into 4.41733E+15 is refused, without echoing it."""

        manifest = load_example(tmp_path)
        _, csv_path = write_both(tmp_path, manifest)
        text = csv_path.read_text(encoding="utf-8")
        grouped = "-".join(CODE[i : i + 4] for i in range(0, 16, 4))
        csv_path.write_text(text.replace(grouped, "4.41733E+15"), encoding="utf-8")

        with pytest.raises(ManifestReadError, match="scientific notation") as caught:
            load_report(csv_path)
        assert "4.41733" not in str(caught.value)
        assert 'row 4, column "activationCode"' in str(caught.value)

    def test_missing_file(self, tmp_path: Path) -> None:
        """A report that does not exist is a ManifestReadError naming it."""

        with pytest.raises(ManifestReadError, match="nope.csv: no such file"):
            load_report(tmp_path / "nope.csv")


NOTE_TEXT = st.text(
    alphabet=st.characters(
        exclude_categories=("Cc", "Cs", "Zl", "Zp"), include_characters="\n"
    ),
    max_size=40,
).map(str.strip)


class TestCarriedColumns:
    @given(notes=st.lists(NOTE_TEXT, min_size=1, max_size=4))
    @pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
    def test_any_text_round_trips(self, suffix: str, notes: list[str]) -> None:
        """Any text in a carried-through column reads back exactly as written."""

        rows = tuple(
            Row(number=index + 2, cells=("Cisco 8851", "ws-1", note))
            for index, note in enumerate(notes)
        )
        manifest = Manifest(
            path=Path("m.csv"),
            sheet=None,
            columns=("Model", "Workspace ID", "Notes"),
            field_columns={"model": "Model", "workspaceId": "Workspace ID"},
            rows=rows,
        )
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"r{suffix}"
            write_report(manifest, {}, [path], STATS)

            loaded, _ = load_report(path)

        assert [row.cells[2] for row in loaded.rows] == notes


# Cells a spreadsheet would run as formulas, in the columns the tool uses (tags: a
# CSV manifest marks one starting with "=", as an export writes it) and in a column
# it carries ("-notes", whose header would run too); the last row's cells start with
# a quote a person typed, which is no mark.
FORMULAS_CSV = """\
mac,model,workspaceId,tags,-notes
00:1B:D4:00:00:01,Cisco 8851,ws-1,'=SUM(1);pilot,-desk 1
00:1B:D4:00:00:02,Cisco 8851,ws-2,-5;+44;@home,=1+1
00:1B:D4:00:00:03,Cisco 8851,ws-3,'quoted,'-kept
"""


def formula_outcomes() -> dict[int, Outcome]:
    return {
        2: Outcome(row=2, status=Status.CREATED, device_id="dev-2", attempts=1),
        3: Outcome(
            row=3,
            status=Status.FAILED,
            error="-1 is not a tag the API takes",
            http_status=400,
            attempts=1,
        ),
        4: Outcome(
            row=4,
            status=Status.CREATED,
            device_id="dev-4",
            owner="=Lobby (id ws-3)",
            attempts=1,
        ),
    }


def csv_lines(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


class TestFormulaMarks:
    def test_csv_cells_a_spreadsheet_would_run_are_marked(self, tmp_path: Path) -> None:
        """Tags, carried cells, errors, owners and the header that start = + - @
        are written after one ', as export writes them; no cell starts a formula."""
        manifest = load_example(tmp_path, FORMULAS_CSV)

        path = write(tmp_path, manifest, formula_outcomes())

        lines = csv_lines(path)
        assert [line["tags"] for line in lines] == [
            "'=SUM(1);pilot",
            "'-5;+44;@home",
            "'quoted",
        ]
        assert [line["'-notes"] for line in lines] == ["'-desk 1", "'=1+1", "''-kept"]
        assert lines[1]["error"] == "'-1 is not a tag the API takes"
        assert lines[2]["owner"] == "'=Lobby (id ws-3)"
        with path.open(newline="", encoding="utf-8") as file:
            cells = [cell for line in csv.reader(file) for cell in line]
        assert not [cell for cell in cells if cell.startswith(FORMULA_STARTS)]

    def test_csv_report_reads_back_the_values(self, tmp_path: Path) -> None:
        """load_report takes the marks off: the tags, carried cells, header, errors
        and owners are the run's; a quote a person typed stays."""
        manifest = load_example(tmp_path, FORMULAS_CSV)
        path = write(tmp_path, manifest, formula_outcomes())

        loaded, outcomes = load_report(path)

        assert loaded.columns == manifest.columns
        assert [row.tags for row in loaded.rows] == [
            ("=SUM(1)", "pilot"),
            ("-5", "+44", "@home"),
            ("'quoted",),
        ]
        assert [row.cells[4] for row in loaded.rows] == ["-desk 1", "=1+1", "'-kept"]
        assert [row.problems for row in loaded.rows] == [(), (), ()]
        assert outcomes == complete_outcomes(manifest, formula_outcomes())

    def test_a_rerun_writes_the_same_csv_again(self, tmp_path: Path) -> None:
        """The report read back and written again is the same file: no mark is
        added or lost on the way."""
        manifest = load_example(tmp_path, FORMULAS_CSV)
        first = write(tmp_path, manifest, formula_outcomes())
        loaded, outcomes = load_report(first)

        again = write(tmp_path, loaded, outcomes, "again.csv")

        assert again.read_text(encoding="utf-8") == first.read_text(encoding="utf-8")

    def test_a_quote_typed_in_a_report_reads_as_in_a_manifest(
        self, tmp_path: Path
    ) -> None:
        """A ' a person types before = in a report's tags cell is the manifest's
        mark for text (the tag =1+1, not a formula); before other text it stays."""
        manifest = load_example(tmp_path, FORMULAS_CSV)
        path = write(tmp_path, manifest, formula_outcomes())
        text = path.read_text(encoding="utf-8")
        path.write_text(text.replace("'-5;+44;@home", "'=1+1;'lobby"), encoding="utf-8")
        typed = tmp_path / "typed.csv"
        typed.write_text("mac,model,workspaceId,tags\n,Cisco 8865,ws-9,'=1+1;'lobby\n")

        loaded, _ = load_report(path)

        assert loaded.rows[1].tags == load_manifest(typed).rows[0].tags
        assert loaded.rows[1].tags == ("=1+1", "'lobby")
        assert loaded.rows[1].problems == ()

    @given(
        tag=st.text(
            alphabet=st.characters(
                exclude_categories=("Cc", "Cs", "Zl", "Zp", "Zs"),
                exclude_characters=";,|#",
            ),
            min_size=1,
            max_size=12,
        ),
        note=NOTE_TEXT,
    )
    def test_any_tag_makes_the_round_trip(self, tag: str, note: str) -> None:
        """A tag written into a CSV manifest as export writes it comes back from
        the CSV report as the same tag; the carried note as the same text."""
        with tempfile.TemporaryDirectory() as folder:
            source = Path(folder) / "m.csv"
            with source.open("w", newline="", encoding="utf-8") as file:
                writer = csv.writer(file)
                writer.writerow(["mac", "model", "workspaceId", "tags", "notes"])
                writer.writerow(
                    ["001BD4000001", "Cisco 8851", "ws-1", mark_as_text(tag), note]
                )
            manifest = load_manifest(source)
            path = Path(folder) / "r.csv"
            write_report(manifest, {}, [path], STATS)

            loaded, _ = load_report(path)

        assert manifest.rows[0].tags == (tag,)
        assert loaded.rows[0].tags == (tag,)
        assert loaded.rows[0].cells[4] == note

    def test_xlsx_holds_them_as_text_cells_without_marks(self, tmp_path: Path) -> None:
        """In the workbook the same cells, and the Summary's groups, are text cells
        (never formulas) holding the values, without the CSV's mark."""
        manifest = load_example(tmp_path, FORMULAS_CSV)
        path = tmp_path / "r.xlsx"

        write_report(manifest, formula_outcomes(), [path], STATS, group_by="-notes")

        book = openpyxl.load_workbook(path)
        report = list(book["Report"].iter_rows())
        header = [cell.value for cell in report[0]]
        by_column = {
            name: [line[at] for line in report[1:]] for at, name in enumerate(header)
        }
        assert [(c.value, c.data_type) for c in by_column["tags"]] == [
            ("=SUM(1);pilot", "s"),
            ("-5;+44;@home", "s"),
            ("'quoted", "s"),
        ]
        assert [(c.value, c.data_type) for c in by_column["-notes"]] == [
            ("-desk 1", "s"),
            ("=1+1", "s"),
            ("'-kept", "s"),
        ]
        assert (by_column["error"][1].value, by_column["error"][1].data_type) == (
            "-1 is not a tag the API takes",
            "s",
        )
        assert (by_column["owner"][2].value, by_column["owner"][2].data_type) == (
            "=Lobby (id ws-3)",
            "s",
        )
        summary = [cell for line in book["Summary"].iter_rows() for cell in line]
        assert ("=1+1", "s") in [(cell.value, cell.data_type) for cell in summary]
        every = [cell for sheet in book for line in sheet.iter_rows() for cell in line]
        assert [cell.coordinate for cell in every if cell.data_type == "f"] == []
