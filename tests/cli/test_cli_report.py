"""
The report as the commands write it, end to end against an emulator process: the run
history across run → rerun and resumes, the Summary's target, --group-by, a report
edited in a spreadsheet, and validate naming a code a spreadsheet turned into a number.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import openpyxl
import pytest
from emulated import (
    ORG_ID,
    WORKSPACES,
    Emulator,
    code_rows,
    invoke,
    phone_rows,
    write_manifest,
)

from provisioner.emulator.harness import run_in_subprocess
from provisioner.report.history import load_history

MISSING_WORKSPACE = "Y2lzY29zcGFyazovL3VzL1BMQUNFL25vLXN1Y2gtd29ya3NwYWNl"


@pytest.fixture(name="server", scope="module")
def _server() -> Iterator[str]:
    with run_in_subprocess() as (_process, base_url):
        yield base_url


@pytest.fixture(name="org")
def _org(server: str) -> Emulator:
    emulator = Emulator(server)
    emulator.reset()
    return emulator


@pytest.fixture(name="manifest")
def _manifest(tmp_path: Path) -> Path:
    """Three MAC rows (the last for a workspace that does not exist), two codes."""
    rows = phone_rows(3) + code_rows(2)
    rows[2]["workspaceId"] = MISSING_WORKSPACE
    return write_manifest(tmp_path / "site.csv", rows)


def read_rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as file:
        return list(csv.reader(file))


def write_rows(path: Path, rows: list[list[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as file:
        csv.writer(file, lineterminator="\n").writerows(rows)


def run(org: Emulator, *args: str) -> list[str]:
    return [*args, "--base-url", org.base_url, "--quiet"]


def summary(path: Path) -> list[tuple[object, ...]]:
    """The Summary sheet's non-empty rows, their empty cells left out."""
    book = openpyxl.load_workbook(path)
    return [
        tuple(value for value in values if value is not None)
        for values in book["Summary"].iter_rows(values_only=True)
        if any(value is not None for value in values)
    ]


def block(rows: list[tuple[object, ...]], heading: str) -> list[tuple[object, ...]]:
    """The Summary lines under ``heading``, up to the next heading-like gap."""
    start = next(i for i, cells in enumerate(rows) if cells[0] == heading) + 1
    found = []
    for cells in rows[start:]:
        if len(cells) == 1:
            break
        found.append(cells)
    return found


def history(path: Path) -> list[tuple[object, ...]]:
    """The Run history table's lines: command, input, counts."""
    lines = block(summary(path), "Run history")[1:]
    return [(cells[0], cells[-2], cells[-1]) for cells in lines]


class TestRunHistory:
    def test_run_then_rerun_tells_the_whole_story(
        self, org: Emulator, manifest: Path, tmp_path: Path
    ) -> None:
        """The rerun's report keeps the first run's line (what it created and what
        failed) and adds its own; the Summary counts the rows as they stand."""
        report = tmp_path / "out" / "site-report.xlsx"
        first = invoke(run(org, "run", str(manifest), "--report", str(report)))
        book = openpyxl.load_workbook(report)
        sheet = book["Report"]
        header = [cell.value for cell in sheet[1]]
        sheet.cell(4, header.index("workspaceId") + 1).value = WORKSPACES[2]
        book.save(report)

        again = invoke(run(org, "rerun", str(report)))

        rerun_report = tmp_path / "out" / "site-report-rerun.xlsx"
        assert first.exit_code == 1, first.output
        assert again.exit_code == 0, again.output
        assert history(report) == [
            ("1 · run", "site.csv", "created 2 · code_issued 2 · failed 1")
        ]
        assert history(rerun_report) == [
            ("1 · run", "site.csv", "created 2 · code_issued 2 · failed 1"),
            ("2 · rerun", "site-report.xlsx", "created 1"),
        ]
        counts = block(summary(rerun_report), "What happened")
        assert counts[:3] == [
            ("all rows", 5),
            ("created", 3, "registered by MAC address"),
            (
                "code_issued",
                2,
                "activation code issued: the device activates once it is entered",
            ),
        ]
        assert [r.kind.value for r in load_history(rerun_report)] == ["run", "rerun"]

    def test_summary_names_where_and_who(
        self, org: Emulator, manifest: Path, tmp_path: Path
    ) -> None:
        """Cloud, API, org name and id, the token's person, the manifest's name and
        SHA-256, real date-times for start and end."""
        report = tmp_path / "site-report.xlsx"
        invoke(run(org, "run", str(manifest), "--report", str(report)))

        pairs = {
            cells[0]: cells[1]
            for cells in block(summary(report), "Where and when")
            if len(cells) > 1
        }

        assert pairs["cloud"] == "a local emulator (nothing real was changed)"
        assert pairs["API base URL"] == org.base_url
        assert pairs["organisation id"] == ORG_ID
        assert pairs["organisation"] != "not recorded"
        assert "@" in str(pairs["run by"])
        assert pairs["manifest"] == "site.csv"
        assert len(str(pairs["manifest SHA-256"])) == 64
        assert isinstance(pairs["started (UTC)"], datetime)
        assert pairs["finished (UTC)"] >= pairs["started (UTC)"]  # type: ignore[operator]

    def test_running_again_is_a_resume_line(
        self, org: Emulator, manifest: Path, tmp_path: Path
    ) -> None:
        """The same command again continues its journal: a line of its own."""
        report = tmp_path / "site-report.xlsx"
        invoke(run(org, "run", str(manifest), "--report", str(report)))

        invoke(run(org, "run", str(manifest), "--report", str(report)))

        assert [line[0] for line in history(report)] == ["1 · run", "2 · resume"]

    def test_a_csv_report_hands_its_story_on_through_the_journal(
        self, org: Emulator, manifest: Path, tmp_path: Path
    ) -> None:
        """A CSV report has no room for the history; its journal keeps it, so a
        rerun of the CSV still shows the first run."""
        report = tmp_path / "site-report.csv"
        invoke(run(org, "run", str(manifest), "--report", str(report)))
        rows = read_rows(report)
        rows[3][rows[0].index("workspaceId")] = WORKSPACES[2]
        write_rows(report, rows)
        out = tmp_path / "again.xlsx"

        result = invoke(run(org, "rerun", str(report), "--report", str(out)))

        assert result.exit_code == 0, result.output
        assert [line[0] for line in history(out)] == ["1 · run", "2 · rerun"]

    def test_dry_run_plans_in_the_plan_column(
        self, org: Emulator, manifest: Path, tmp_path: Path
    ) -> None:
        """A dry run's findings are in plan; error holds only what is wrong."""
        report = tmp_path / "plan.csv"

        invoke(run(org, "run", str(manifest), "--dry-run", "--report", str(report)))

        header, *lines = read_rows(report)
        rows = [dict(zip(header, line, strict=True)) for line in lines]
        assert rows[0]["plan"].startswith("would create the device by MAC")
        assert rows[0]["error"] == ""
        assert rows[2]["status"] == "invalid"
        assert rows[2]["plan"] == ""
        assert rows[2]["error"]


class TestGroupBy:
    def test_counts_per_group(
        self, org: Emulator, manifest: Path, tmp_path: Path
    ) -> None:
        """--group-by names any manifest column (case aside); the Summary counts
        each of its values by status."""
        report = tmp_path / "site-report.xlsx"

        result = invoke(
            run(
                org, "run", str(manifest), "--report", str(report), "--group-by", "NOTE"
            )
        )

        assert result.exit_code == 1, result.output
        groups = block(summary(report), "By note")
        assert groups[0] == ("note", "rows", "by status")
        assert groups[1:3] == [
            ("code 0", 1, "code_issued 1"),
            ("code 1", 1, "code_issued 1"),
        ]

    def test_unknown_column_stops_before_anything_is_written(
        self, org: Emulator, manifest: Path, tmp_path: Path
    ) -> None:
        """A column the manifest lacks: exit 2 naming its columns, no device made."""
        report = tmp_path / "site-report.xlsx"

        result = invoke(
            run(
                org,
                "run",
                str(manifest),
                "--report",
                str(report),
                "--group-by",
                "floor",
            )
        )

        assert result.exit_code == 2, result.output
        assert '--group-by "floor"' in result.stderr
        assert '"workspaceId"' in result.stderr
        assert org.devices() == []
        assert not report.exists()


class TestValidateNamesLostCodes:
    def test_a_code_turned_number_is_named(
        self, org: Emulator, manifest: Path, tmp_path: Path
    ) -> None:
        """validate on a report whose code a spreadsheet saved as 6.58237E+15 names
        the row and column, and exits 1."""
        report = tmp_path / "site-report.csv"
        invoke(run(org, "run", str(manifest), "--report", str(report)))
        rows = read_rows(report)
        rows[4][rows[0].index("activationCode")] = "6.58237E+15"
        write_rows(report, rows)

        result = invoke(["validate", str(report)])

        assert result.exit_code == 1, result.output
        assert 'row 5, column "activationCode"' in result.output
        assert "scientific notation" in result.output
        assert "6.58237" not in result.output
