"""
Trust across runs, end to end: a run is never continued against another target, and
running a sheet again never leaves a second code behind. Two emulator processes play
two orgs; each assertion reads what the org holds, not what the tool said.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from emulated import (
    ORG_ID,
    Emulator,
    code_rows,
    invoke,
    phone_rows,
    read_report,
    write_manifest,
)

from provisioner.emulator import DEFAULT_TOKEN, org_id_for
from provisioner.emulator.harness import run_in_subprocess

MAC_ROWS = 4
CODE_ROWS = 3


@pytest.fixture(name="pair", scope="module")
def _pair() -> Iterator[tuple[str, str]]:
    # Org "org1" beside each emulator's own: another org the token may act for.
    org1 = ["--orgs", "1", "--partner", f"{DEFAULT_TOKEN}=org1"]
    with (
        run_in_subprocess(org1) as (_a, url_a),
        run_in_subprocess(org1) as (_b, url_b),
    ):
        yield url_a, url_b


@pytest.fixture(name="a")
def _a(pair: tuple[str, str]) -> Emulator:
    emulator = Emulator(pair[0])
    emulator.reset()
    return emulator


@pytest.fixture(name="b")
def _b(pair: tuple[str, str]) -> Emulator:
    emulator = Emulator(pair[1])
    emulator.reset()
    return emulator


@pytest.fixture(name="manifest")
def _manifest(tmp_path: Path) -> Path:
    rows = phone_rows(MAC_ROWS) + code_rows(CODE_ROWS)
    return write_manifest(tmp_path / "site.csv", rows)


def run(manifest: Path, report: Path, emulator: Emulator, *more: str) -> list[str]:
    return [
        "run",
        str(manifest),
        "--report",
        str(report),
        "--base-url",
        emulator.base_url,
        *more,
    ]


class TestRehearseThenRun:
    def test_a_journal_of_another_api_is_never_resumed(
        self, a: Emulator, b: Emulator, manifest: Path, tmp_path: Path
    ) -> None:
        """Rehearse on A, then the same command against B: exit 2 naming both targets
        and the ways forward, and B holds no device."""
        report = tmp_path / "site-report.csv"
        rehearsal = invoke(run(manifest, report, a))

        result = invoke(run(manifest, report, b))

        assert rehearsal.exit_code == 0, rehearsal.output
        assert len(a.devices()) == MAC_ROWS + CODE_ROWS
        assert result.exit_code == 2, result.output
        assert a.base_url in result.stderr
        assert b.base_url in result.stderr
        assert "another --report" in result.stderr
        assert "--fresh" in result.stderr
        assert "Traceback" not in result.output
        assert b.devices() == []
        assert b.write_calls() == 0

    @pytest.mark.parametrize("way", ["another report", "--fresh"])
    def test_either_way_forward_provisions_every_row_on_b(
        self, a: Emulator, b: Emulator, manifest: Path, tmp_path: Path, way: str
    ) -> None:
        """After the refusal, another --report or --fresh runs every row on B: B
        holds every device, one pending device per code row, and A is untouched."""
        report = tmp_path / "site-report.csv"
        invoke(run(manifest, report, a))
        a_before = sorted(d["id"] for d in a.devices())
        if way == "--fresh":
            args = run(manifest, report, b, "--fresh")
        else:
            args = run(manifest, tmp_path / "site-on-b.csv", b)

        result = invoke(args)

        assert result.exit_code == 0, result.output
        assert len(b.devices()) == MAC_ROWS + CODE_ROWS
        assert len(b.pending()) == CODE_ROWS
        assert sorted(d["id"] for d in a.devices()) == a_before

    @pytest.mark.parametrize(
        "option",
        [
            ["--tag-mode", "replace"],
            ["--org-id", org_id_for("org1")],
        ],
    )
    def test_another_org_or_tag_mode_is_another_target(
        self, a: Emulator, manifest: Path, tmp_path: Path, option: list[str]
    ) -> None:
        """The same API with another --org-id or --tag-mode does something else: the
        journal is not resumed (exit 2) and nothing is written."""
        report = tmp_path / "site-report.csv"
        invoke(run(manifest, report, a))
        writes = a.write_calls()

        result = invoke(run(manifest, report, a, *option))

        assert result.exit_code == 2, result.output
        assert "--fresh" in result.stderr
        assert a.write_calls() == writes

    def test_the_report_names_its_target(
        self, a: Emulator, manifest: Path, tmp_path: Path
    ) -> None:
        """The XLSX Summary records the API and the org the run wrote to."""
        from openpyxl import load_workbook

        report = tmp_path / "site-report.xlsx"
        invoke(run(manifest, report, a))

        workbook = load_workbook(report, read_only=True)
        try:
            cells = [
                str(value)
                for row in workbook["Summary"].iter_rows(values_only=True)
                for value in row
                if value is not None
            ]
        finally:
            workbook.close()

        assert a.base_url in cells
        assert any(ORG_ID in cell for cell in cells)

    def test_a_report_is_not_rerun_against_another_target(
        self, a: Emulator, b: Emulator, tmp_path: Path
    ) -> None:
        """rerun of A's report against B exits 2 (its done rows did not happen on
        B), and B holds no device."""
        rows = phone_rows(2)
        rows[1]["workspaceId"] = "no-such-workspace"
        manifest = write_manifest(tmp_path / "site.csv", rows)
        report = tmp_path / "r.csv"
        first = invoke(run(manifest, report, a))

        result = invoke(["rerun", str(report), "--base-url", b.base_url])

        assert first.exit_code == 1, first.output
        assert result.exit_code == 2, result.output
        assert a.base_url in result.stderr
        assert b.devices() == []

    def test_a_copied_xlsx_report_without_its_journal_is_refused_too(
        self, a: Emulator, b: Emulator, tmp_path: Path
    ) -> None:
        """The XLSX report's own history says where it was written: a copy sent on
        without the journal is still not rerun against another API."""
        rows = phone_rows(2)
        rows[1]["workspaceId"] = "no-such-workspace"
        manifest = write_manifest(tmp_path / "site.csv", rows)
        report = tmp_path / "r.xlsx"
        first = invoke(run(manifest, report, a))
        copy = tmp_path / "sent" / "r.xlsx"
        copy.parent.mkdir()
        copy.write_bytes(report.read_bytes())

        result = invoke(["rerun", str(copy), "--base-url", b.base_url])

        assert first.exit_code == 1, first.output
        assert result.exit_code == 2, result.output
        assert a.base_url in result.stderr
        assert b.devices() == []


class TestRerunKeepsTheTagMode:
    @pytest.mark.parametrize("dry_run", [True, False], ids=["dry run", "run"])
    def test_a_rerun_tags_as_the_run_that_wrote_the_report(
        self, a: Emulator, tmp_path: Path, dry_run: bool
    ) -> None:
        """A report written with --tag-mode replace (a dry run's, which has no
        journal, or a run's) is rerun in replace mode too: the device ends with the
        row's tags alone, not the union."""
        first = phone_rows(1)
        first[0]["tags"] = "keep"
        invoke(run(write_manifest(tmp_path / "old.csv", first), tmp_path / "o.csv", a))
        rows = phone_rows(2)
        rows[0]["tags"] = "only"
        rows[1]["workspaceId"] = "no-such-workspace"  # fails: something to rerun
        manifest = write_manifest(tmp_path / "site.csv", rows)
        report = tmp_path / "r.xlsx"
        extra = ["--tag-mode", "replace", *(["--dry-run"] if dry_run else [])]
        invoke(run(manifest, report, a, *extra))
        if not dry_run:
            # The first row already has its tags: fail it in the report, so the
            # rerun takes it again.
            self.fail_first_row(report)
            (device,) = [d for d in a.devices() if d["mac"] == "AABBCC000001"]
            assert device["tags"] == ["only"]
            self.add_tag(a, device["id"], "keep")

        again = invoke(["rerun", str(report), "--yes", "--base-url", a.base_url])

        assert "(tag mode replace)" in again.stderr
        (device,) = [d for d in a.devices() if d["mac"] == "AABBCC000001"]
        assert device["tags"] == ["only"]

    @staticmethod
    def fail_first_row(report: Path) -> None:
        from openpyxl import load_workbook

        book = load_workbook(report)
        sheet = book.worksheets[0]
        header = [cell.value for cell in sheet[1]]
        sheet.cell(row=2, column=header.index("status") + 1, value="failed")
        book.save(report)

    @staticmethod
    def add_tag(org: Emulator, device_id: str, tag: str) -> None:
        import json
        import urllib.request

        request = urllib.request.Request(
            f"{org.base_url}/devices/{device_id}",
            data=json.dumps([{"op": "add", "path": "tags", "value": [tag]}]).encode(),
            method="PATCH",
            headers={
                "Authorization": f"Bearer {DEFAULT_TOKEN}",
                "Content-Type": "application/json-patch+json",
            },
        )
        with urllib.request.urlopen(request, timeout=10):
            pass


class TestOnePendingDevicePerCodeRow:
    def test_run_then_fresh(self, a: Emulator, manifest: Path, tmp_path: Path) -> None:
        """run, then run --fresh: the org holds exactly one pending device per code
        row (the replaced codes voided, and the summary says how many)."""
        report = tmp_path / "r.csv"
        invoke(run(manifest, report, a))
        first = {d["id"] for d in a.pending()}

        result = invoke(run(manifest, report, a, "--fresh"))

        pending = {d["id"] for d in a.pending()}
        assert result.exit_code == 0, result.output
        assert len(pending) == CODE_ROWS
        assert pending.isdisjoint(first)
        assert f"{CODE_ROWS} replaced activation codes voided" in result.stdout
        codes = [
            r["activationCode"] for r in read_report(report) if r["activationCode"]
        ]
        assert len(codes) == CODE_ROWS

    def test_the_same_sheet_twice_with_two_reports(
        self, a: Emulator, manifest: Path, tmp_path: Path
    ) -> None:
        """The same sheet run twice into two reports: MAC rows are adopted, code rows
        are code_pending with the earlier device, and the org holds one pending device
        per code row."""
        invoke(run(manifest, tmp_path / "first.csv", a))
        first = {d["id"] for d in a.pending()}

        result = invoke(run(manifest, tmp_path / "second.csv", a))

        rows = read_report(tmp_path / "second.csv")
        statuses = Counter(r["status"] for r in rows)
        assert result.exit_code == 0, result.output
        assert statuses == {"adopted": MAC_ROWS, "code_pending": CODE_ROWS}
        assert {r["deviceId"] for r in rows if r["status"] == "code_pending"} == first
        assert {d["id"] for d in a.pending()} == first
        assert "--reissue-codes" in rows[-1]["error"]

    def test_reissue_codes_replaces_them(
        self, a: Emulator, manifest: Path, tmp_path: Path
    ) -> None:
        """--reissue-codes: new codes, the earlier pending devices deleted."""
        invoke(run(manifest, tmp_path / "first.csv", a))
        first = {d["id"] for d in a.pending()}

        result = invoke(run(manifest, tmp_path / "second.csv", a, "--reissue-codes"))

        pending = {d["id"] for d in a.pending()}
        assert result.exit_code == 0, result.output
        assert len(pending) == CODE_ROWS
        assert pending.isdisjoint(first)
