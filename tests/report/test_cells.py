"""
Result cells that survive a spreadsheet: codes grouped as text and read back in every
form, codes turned into numbers named, date-time expiries, the plan column.
"""

from __future__ import annotations

import csv
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import openpyxl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from report_data import STATS

from provisioner.errors import ManifestReadError
from provisioner.models import Manifest, Outcome, Row, Status, utc_moment
from provisioner.report.cells import (
    RESULT_COLUMNS,
    cell_time,
    code_problem,
    decode_error_cell,
    error_kind,
    format_code,
    outcome_cells,
    parse_outcome,
    read_code,
)
from provisioner.report.files import load_report, write_report

CODE = "0658237123456789"
GROUPED = "0658-2371-2345-6789"


def values_of(outcome: Outcome) -> dict[str, str]:
    cells = outcome_cells(outcome)
    return {
        name: "" if cell is None else str(cell)
        for name, cell in zip(RESULT_COLUMNS, cells, strict=True)
    }


class TestCodeForms:
    def test_written_grouped(self) -> None:
        """A 16-digit code is written 4-4-4-4 with dashes, leading zero kept."""

        assert format_code(CODE) == GROUPED

    def test_other_text_is_left_alone(self) -> None:
        """Text that is not 16 digits is written as it is."""

        assert (format_code("ABC-123"), format_code(None)) == ("ABC-123", None)

    @pytest.mark.parametrize(
        "text",
        [
            GROUPED,
            CODE,
            "0658 2371 2345 6789",
            f'="{CODE}"',
            f"'{CODE}",
            "0658\N{EN DASH}2371\N{EN DASH}2345\N{EN DASH}6789",
            f"  {GROUPED}  ",
        ],
    )
    def test_every_form_reads_back(self, text: str) -> None:
        """Grouped, plain (older reports), spaced, Excel's ="…" and '…, en dashes."""

        assert (code_problem(text), read_code(text)) == (None, CODE)

    @pytest.mark.parametrize(
        ("text", "says"),
        [
            ("6.58237E+15", "scientific notation"),
            ("6,58237E+15", "scientific notation"),
            ("6.58237e15", "scientific notation"),
            ("658237123456789.0", "decimals"),
            # A decimal comma, as a spreadsheet in a comma locale writes it.
            ("658237123456789,0", "decimals"),
            # A code of one digit then zeros, shown with no decimals at all.
            ("6E+15", "scientific notation"),
            ("658237123456789", "15 digits"),
        ],
    )
    def test_number_forms_are_named(self, text: str, says: str) -> None:
        """What a spreadsheet makes of a code as a number is named, never used."""

        problem = code_problem(text) or ""

        assert says in problem
        assert text not in problem

    @given(st.text(alphabet="0123456789", min_size=16, max_size=16))
    def test_any_code_round_trips(self, code: str) -> None:
        """Whatever the digits, the written cell reads back as the code."""

        cell = format_code(code) or ""

        assert (code_problem(cell), read_code(cell)) == (None, code)


class TestOutcomeCells:
    def test_plan_has_its_own_column(self) -> None:
        """A planned row's plan is in plan, not in error, and reads back."""

        outcome = Outcome(row=2, status=Status.PLANNED, plan="would create the device")
        values = values_of(outcome)

        assert (values["plan"], values["error"]) == ("would create the device", "")
        assert parse_outcome(Path("r.csv"), 2, values) == outcome

    def test_old_dry_run_report_plan_moves_out_of_error(self) -> None:
        """A report from before the plan column: its "dry run: …" error is the plan."""

        values = values_of(Outcome(row=2, status=Status.PLANNED))
        values["error"] = "dry run: would create the device by MAC"
        del values["plan"]

        outcome = parse_outcome(Path("r.csv"), 2, {"plan": "", **values})

        assert (outcome.plan, outcome.error) == ("would create the device by MAC", None)

    @pytest.mark.parametrize(
        ("cell", "expected"),
        [
            ("2026-12-26T10:00:00.000Z", "2026-12-26T10:00:00.000Z"),
            ("2026-12-26T10:00:00+02:00", "2026-12-26T10:00:00+02:00"),
            # A date-time cell reads as ISO text without a zone; it is UTC, and a
            # spreadsheet's fraction-of-a-day error is rounded off.
            ("2026-12-26T10:00:00", "2026-12-26T10:00:00.000Z"),
            ("2026-12-26T09:59:59.999600", "2026-12-26T10:00:00.000Z"),
            ("2026-12-26T10:00:00.250001", "2026-12-26T10:00:00.250Z"),
            # Half a millisecond or more rounds up, less rounds down.
            ("2026-12-26T10:00:00.123499", "2026-12-26T10:00:00.123Z"),
            ("2026-12-26T10:00:00.123500", "2026-12-26T10:00:00.124Z"),
            ("2026-12-26T10:00:00.998500", "2026-12-26T10:00:00.999Z"),
            ("soon", "soon"),
        ],
    )
    def test_expiry_forms(self, cell: str, expected: str) -> None:
        """ISO text is kept; a date-time cell becomes the API's UTC form."""

        values = values_of(Outcome(row=2, status=Status.CODE_ISSUED))
        values["activationExpiry"] = cell

        assert parse_outcome(Path("r.csv"), 2, values).activation_expiry == expected


def code_manifest() -> Manifest:
    return Manifest(
        path=Path("m.csv"),
        sheet=None,
        columns=("Model", "Workspace ID"),
        field_columns={"model": "Model", "workspaceId": "Workspace ID"},
        rows=(
            Row(number=2, cells=("Cisco 8851", "ws-1")),
            Row(number=3, cells=("Cisco 8851", "ws-2")),
        ),
    )


def code_outcomes() -> dict[int, Outcome]:
    return {
        n: Outcome(
            row=n,
            status=Status.CODE_ISSUED,
            activation_code=CODE,
            activation_expiry="2026-12-26T10:00:00.000Z",
        )
        for n in (2, 3)
    }


class TestCodesInFiles:
    def test_csv_holds_grouped_codes(self, tmp_path: Path) -> None:
        """The CSV writes the code grouped, so a spreadsheet opening it keeps text."""

        path = tmp_path / "r.csv"
        write_report(code_manifest(), code_outcomes(), [path], STATS)

        with path.open(encoding="utf-8", newline="") as file:
            lines = list(csv.DictReader(file))

        assert [line["activationCode"] for line in lines] == [GROUPED, GROUPED]
        assert load_report(path)[1] == code_outcomes()

    def test_csv_saved_by_excel_names_the_lost_code(self, tmp_path: Path) -> None:
        """A CSV whose code a spreadsheet turned into a number: the row and column
        are named, with where to find the code; the number is not repeated."""

        path = tmp_path / "r.csv"
        write_report(code_manifest(), code_outcomes(), [path], STATS)
        text = path.read_text(encoding="utf-8")
        path.write_text(text.replace(GROUPED, "6.58237E+15", 1), encoding="utf-8")

        with pytest.raises(ManifestReadError) as caught:
            load_report(path)

        message = str(caught.value)
        assert 'r.csv, row 2, column "activationCode"' in message
        assert "scientific notation" in message
        assert ".xlsx report" in message
        assert "6.58237" not in message

    @pytest.mark.parametrize("number", [int(CODE), 6582371234567891])
    def test_xlsx_code_cell_turned_number_is_named(
        self, tmp_path: Path, number: int
    ) -> None:
        """An XLSX whose code cell was retyped as a number (its leading zero lost, or
        held as a float) is refused the same way."""

        path = tmp_path / "r.xlsx"
        write_report(code_manifest(), code_outcomes(), [path], STATS)
        book = openpyxl.load_workbook(path)
        sheet = book["Report"]
        at = 2 + RESULT_COLUMNS.index("activationCode") + 1
        sheet.cell(3, at).value = number
        book.save(path)

        with pytest.raises(ManifestReadError, match='row 3, column "activationCode"'):
            load_report(path)

    def test_report_without_plan_column_still_loads(self, tmp_path: Path) -> None:
        """A report written before the plan column reads back."""

        path = tmp_path / "r.csv"
        write_report(code_manifest(), code_outcomes(), [path], STATS)
        with path.open(encoding="utf-8", newline="") as file:
            lines = list(csv.reader(file))
        at = lines[0].index("plan")
        with path.open("w", encoding="utf-8", newline="") as file:
            csv.writer(file).writerows(line[:at] + line[at + 1 :] for line in lines)

        assert load_report(path)[1] == code_outcomes()


class TestErrorKind:
    def outcome(self, error: str, **fields: object) -> Outcome:
        return Outcome(row=2, status=Status.FAILED, error=error, **fields)  # type: ignore[arg-type]

    def test_the_step_before_the_first_colon(self) -> None:
        """The kind is the text before the first colon, with the HTTP status."""
        outcome = self.outcome("create device: bad: body", http_status=400)

        assert error_kind(outcome) == "create device (HTTP 400)"

    def test_a_kind_of_exactly_the_limit_is_kept_whole(self) -> None:
        """Sixty characters are kept; sixty-one are cut to 59 and an ellipsis."""
        exact = "k" * 60
        longer = "a" * 58 + " " + "b" * 10

        assert error_kind(self.outcome(exact)) == exact
        assert error_kind(self.outcome(longer)) == "a" * 58 + "…"
        assert error_kind(self.outcome("c" * 61)) == "c" * 59 + "…"

    def test_invalid_rows_and_rows_without_reason(self) -> None:
        """Invalid rows say so; a failure without text says that."""
        invalid = Outcome(row=3, status=Status.INVALID, error="mac: not a MAC")

        assert error_kind(invalid) == "invalid row: mac"
        assert error_kind(self.outcome("")) == "no reason given"


class TestUnreadableCells:
    PATH = Path("r.csv")

    def values(self, **changes: str) -> dict[str, str]:
        values = values_of(Outcome(row=2, status=Status.CREATED))
        values.update(changes)
        return values

    @pytest.mark.parametrize(
        ("column", "text", "minimum"),
        [("row", "0", 1), ("httpStatus", "99", 100), ("attempts", "-1", 0)],
    )
    def test_counts_below_their_minimum_are_refused(
        self, column: str, text: str, minimum: int
    ) -> None:
        """Row numbers start at 1, HTTP statuses at 100, attempts at 0."""
        with pytest.raises(ManifestReadError) as caught:
            parse_outcome(self.PATH, 5, self.values(**{column: text}))

        assert str(caught.value) == (
            f'{self.PATH}, row 5, column "{column}": "{text}" is not a whole number '
            f"of at least {minimum}; put back the number the run wrote"
        )

    def test_the_lowest_counts_are_read(self) -> None:
        """Row 1, HTTP 100 and 0 attempts are read back as they are."""
        outcome = parse_outcome(
            self.PATH, 5, self.values(row="1", httpStatus="100", attempts="0")
        )

        assert (outcome.row, outcome.http_status, outcome.attempts) == (1, 100, 0)

    def test_an_unknown_status_lists_the_known_ones(self) -> None:
        """The message names the cell and every status it may hold."""
        known = ", ".join(status.value for status in Status)

        with pytest.raises(ManifestReadError) as caught:
            parse_outcome(self.PATH, 5, self.values(status="done"))

        assert str(caught.value) == (
            f'{self.PATH}, row 5, column "status": "done" is not a status; use one '
            f"of {known}"
        )

    def test_a_code_turned_number_names_the_file_and_the_fix(self) -> None:
        """The message names the file, row and column, and where to copy it from."""
        with pytest.raises(ManifestReadError) as caught:
            parse_outcome(self.PATH, 5, self.values(activationCode="4.41733E+15"))

        message = str(caught.value)
        assert message.startswith(f'{self.PATH}, row 5, column "activationCode": ')
        assert message.endswith(
            ". Copy the code back from the .xlsx report (its codes are text), or from "
            "the report the run wrote; a code is written 1234-5678-9012-3456 so "
            "spreadsheets keep it"
        )


class TestCodeAndTimeCells:
    def test_only_sixteen_digits_are_grouped(self) -> None:
        """A 16-digit code is grouped; other text, digits or not, is left as it is."""
        assert format_code("0658 2371 2345 6789") == GROUPED
        assert format_code("123456789012345") == "123456789012345"
        assert format_code("ABCD-EFGH-IJKL-MNOP") == "ABCD-EFGH-IJKL-MNOP"
        assert format_code("") is None

    @pytest.mark.parametrize(
        ("text", "problem"),
        [
            (
                "4.41733E+15",
                (
                    "a spreadsheet turned this activation code into a number (scientific "
                    "notation or decimals), so its digits are lost in this file"
                ),
            ),
            (
                "4,41733e15",
                (
                    "a spreadsheet turned this activation code into a number (scientific "
                    "notation or decimals), so its digits are lost in this file"
                ),
            ),
            (
                "658237123456789",
                (
                    "this activation code has 15 digits where codes have 16: a "
                    "spreadsheet that read it as a number dropped its leading zeros"
                ),
            ),
            ('="0658237123456789"', None),
            ("'0658237123456789", None),
            ('0658237123456789"', None),
        ],
    )
    def test_code_problems_in_full(self, text: str, problem: str | None) -> None:
        """What a code cell turned into, word for word (never its value)."""
        assert code_problem(text) == problem

    def test_a_cell_that_only_ends_in_a_quote_is_not_unwrapped(self) -> None:
        """Only ="…" is Excel's text wrapper; a trailing quote alone is kept."""
        assert read_code('0658237123456789"') == '0658237123456789"'
        assert read_code("ABC") == "ABC"
        # Text that is no code stays as written, spaces and dashes included.
        assert read_code("see e-mail") == "see e-mail"

    def test_expiry_moments_are_in_utc(self) -> None:
        """A zoned expiry is converted to UTC; one without a zone is read as UTC."""
        zoned = utc_moment("2026-12-01T02:00:00+02:00")
        naive = utc_moment("2026-12-01T00:00:00")

        assert zoned == datetime(2026, 12, 1, tzinfo=UTC)
        assert zoned is not None
        assert zoned.utcoffset() == timedelta(0)
        assert naive == datetime(2026, 12, 1, tzinfo=UTC)
        assert naive is not None
        assert naive.tzinfo is UTC
        assert utc_moment("") is None
        assert utc_moment("soon") is None

    def test_times_stay_in_utc_on_a_machine_in_another_zone(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A report written in Denver holds the same UTC times as one written in
        London: the machine's own zone never leaks into a cell."""
        # POSIX form (UTC-7, as Denver in winter): needs no tz database.
        monkeypatch.setenv("TZ", "MST7")
        time.tzset()
        try:
            moment = datetime(2026, 12, 1, 2, 0, 5, tzinfo=timezone(timedelta(hours=2)))
            zoned = utc_moment("2026-12-01T02:00:00+02:00")

            assert time.localtime(0).tm_gmtoff != 0, "the zone change did not hold"
            assert cell_time(moment) == datetime(2026, 12, 1, 0, 0, 5)
            assert zoned is not None
            assert zoned.utcoffset() == timedelta(0)
        finally:
            monkeypatch.undo()
            time.tzset()

    def test_cell_time_is_naive_utc_to_the_second(self) -> None:
        """A cell holds UTC wall time, without zone or microseconds."""
        moment = datetime(
            2026, 12, 1, 2, 0, 5, 999_999, tzinfo=timezone(timedelta(hours=2))
        )

        assert cell_time(moment) == datetime(2026, 12, 1, 0, 0, 5)
        assert cell_time(datetime(2026, 12, 1, 0, 0, 5, 7)) == datetime(
            2026, 12, 1, 0, 0, 5
        )


class TestRoundTrips:
    def test_owner_and_empty_attempts_read_back(self) -> None:
        """The owner column reads back; an empty attempts cell is 0."""
        values = values_of(
            Outcome(row=2, status=Status.CREATED, owner="Lobby", attempts=3)
        )
        values["attempts"] = ""

        outcome = parse_outcome(Path("r.csv"), 2, values)

        assert (outcome.owner, outcome.attempts) == ("Lobby", 0)

    def test_a_count_that_is_not_a_number_is_refused(self) -> None:
        """Text in a count cell is named like a negative one."""
        values = values_of(Outcome(row=2, status=Status.CREATED))
        values["attempts"] = "many"

        with pytest.raises(ManifestReadError, match='"many" is not a whole number'):
            parse_outcome(Path("r.csv"), 2, values)

    def test_a_deferred_cell_without_reason_reads_as_none(self) -> None:
        """ "tags deferred:" alone, or with the standard reason, carries no reason."""
        assert decode_error_cell(Status.CODE_ISSUED, "tags deferred:") == (None, True)
        assert decode_error_cell(Status.CODE_ISSUED, "tags deferred: why") == (
            "why",
            True,
        )
