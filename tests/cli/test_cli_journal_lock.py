"""
Two copies of one command at once: the second stops before any write while the first
holds the report's journal, so no row is started twice (no second activation code).
Judged by what the org holds.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from emulated import (
    CODE_MODEL,
    Emulator,
    code_rows,
    invoke,
    mac,
    phone_rows,
    write_manifest,
)
from org_manifests import workspaces_of

import provisioner
from provisioner.cli.run import rows_journals
from provisioner.emulator.config import DEFAULT_TOKEN
from provisioner.emulator.harness import run_in_subprocess
from provisioner.run.journal import hold_journal, journal_path_for, release_journal


@pytest.fixture(name="org", scope="module")
def _org() -> Iterator[Emulator]:
    with run_in_subprocess() as (_process, url):
        emulator = Emulator(url)
        emulator.reset()
        yield emulator


def test_a_second_copy_of_a_run_writes_nothing(org: Emulator, tmp_path: Path) -> None:
    org.reset()
    manifest = write_manifest(tmp_path / "site.csv", phone_rows(2) + code_rows(2))
    report = tmp_path / "r.csv"
    command = ["run", str(manifest), "--yes", "--report", str(report)]
    command += ["--base-url", org.base_url]
    held = hold_journal(journal_path_for(report))  # the first copy, still running
    assert held is not None
    try:
        second = invoke(command)
    finally:
        os.close(held)

    assert second.exit_code == 2, second.output
    assert "another provisioner command is working with the journal" in second.stderr
    assert org.write_calls() == 0
    assert org.devices() == []

    after = invoke(command)

    assert after.exit_code == 0, after.output
    assert len(org.devices()) == 4


#: The refusal of a command whose report's rows a run is working on.
BUSY = "another provisioner command is working with the journal"


def failing_run(org: Emulator, folder: Path) -> Path:
    """
    Run a MAC row and a code row whose workspace the org lacks (both fail, so a
    rerun and a renewal have rows to work on) beside two that end well; return the
    report, whose journal stays beside it.
    """
    missing = workspaces_of("org1")[0]
    rows = [
        *phone_rows(1),
        *code_rows(1),
        {"mac": mac(90), "model": "Cisco 8851", "workspaceId": missing},
        {"model": CODE_MODEL, "workspaceId": missing},
    ]
    manifest = write_manifest(folder / "site.csv", rows)
    report = folder / "r.csv"
    ran = invoke(
        ["run", str(manifest), "--yes", "-q", "--report", str(report)]
        + ["--base-url", org.base_url]
    )
    assert ran.exit_code == 1, ran.output
    return report


@contextmanager
def run_at_work(report: Path) -> Iterator[None]:
    """The run of ``report`` at work: its journal held, as that run holds it."""
    journal = journal_path_for(report)
    held = hold_journal(journal)
    try:
        yield
    finally:
        release_journal(journal, held)


class TestCommandsOnOneReportsRows:
    """A rerun, a renewal or a rollback of a report works on the rows its run works
    on: while that run is at work each stops before any call, and the other way
    round the run stops (its own journal is theirs too)."""

    def test_a_rerun_waits_for_the_run_of_its_report(
        self, org: Emulator, tmp_path: Path
    ) -> None:
        """A rerun started while the run of its report works changes nothing."""
        org.reset()
        report = failing_run(org, tmp_path)
        devices, writes = org.devices(), org.write_calls()

        with run_at_work(report):
            second = invoke(["rerun", str(report), "--yes", "--base-url", org.base_url])

        assert second.exit_code == 2, second.output
        assert f"{BUSY} {journal_path_for(report)}" in second.stderr
        assert "Wait for it to finish" in second.stderr
        assert org.write_calls() == writes
        assert org.devices() == devices
        assert not (tmp_path / "r-rerun.csv").exists()

    def test_the_run_waits_for_a_rerun_of_its_report(
        self, org: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A run started (in its own process) while a rerun of its report works
        stops before any write, as a second run does; the rerun goes on."""
        org.reset()
        report = failing_run(org, tmp_path)
        writes = org.write_calls()
        meanwhile: list[subprocess.CompletedProcess[str]] = []

        def run_meanwhile(*_: object, **__: object) -> None:
            # The rerun is confirmed, about to write: the run starts now.
            command = [sys.executable, "-m", "provisioner", "run"]
            command += [str(tmp_path / "site.csv"), "--yes", "-q"]
            command += ["--report", str(report), "--base-url", org.base_url]
            environment = {**os.environ, "WEBEX_ACCESS_TOKEN": DEFAULT_TOKEN}
            meanwhile.append(
                subprocess.run(
                    command,
                    capture_output=True,
                    text=True,
                    env=environment,
                    cwd=Path(provisioner.__file__).parent.parent,
                    timeout=60,
                    check=False,
                )
            )

        monkeypatch.setattr("provisioner.cli.run.confirm_changes", run_meanwhile)
        rerun = invoke(["rerun", str(report), "--yes", "--base-url", org.base_url])

        assert len(meanwhile) == 1
        assert meanwhile[0].returncode == 2, meanwhile[0].stderr
        assert f"{BUSY} {journal_path_for(report)}" in meanwhile[0].stderr
        assert rerun.exit_code == 1, rerun.output
        # The rerun's own calls alone: its two rows, each tried once.
        assert org.write_calls() == writes + 2

    def test_a_rerun_of_a_rerun_waits_for_the_first_run(
        self, org: Emulator, tmp_path: Path
    ) -> None:
        """The rows of a rerun's report are the report's rows: its rerun waits
        for the run of the report it came from too."""
        org.reset()
        report = failing_run(org, tmp_path)
        first = invoke(["rerun", str(report), "--yes", "--base-url", org.base_url])
        assert first.exit_code == 1, first.output
        writes = org.write_calls()

        with run_at_work(report):
            second = invoke(
                ["rerun", str(tmp_path / "r-rerun.csv"), "--yes"]
                + ["--base-url", org.base_url]
            )

        assert second.exit_code == 2, second.output
        assert f"{BUSY} {journal_path_for(report)}" in second.stderr
        assert org.write_calls() == writes

    def test_a_renewal_waits_while_listing_does_not(
        self, org: Emulator, tmp_path: Path
    ) -> None:
        """codes --renew renews nothing while the run of the report works; the
        listing only reads, and goes on."""
        org.reset()
        report = failing_run(org, tmp_path)
        pending, writes = org.pending(), org.write_calls()
        url = ["--base-url", org.base_url, "--within", "60d"]

        with run_at_work(report):
            renewal = invoke(["codes", str(report), "--renew", "--yes", *url])
            listing = invoke(["codes", str(report), *url])

        assert renewal.exit_code == 2, renewal.output
        assert f"{BUSY} {journal_path_for(report)}" in renewal.stderr
        assert org.write_calls() == writes
        assert org.pending() == pending
        assert not (tmp_path / "r-renewed.csv").exists()
        assert listing.exit_code == 0, listing.output
        assert "expiring 1" in listing.output

    def test_a_rollback_deletes_nothing_while_a_dry_run_reads(
        self, org: Emulator, tmp_path: Path
    ) -> None:
        """A rollback started while the run of the report works deletes nothing
        (its dry run reads on); once the run ends, the same rollback deletes and
        makes the journal forget."""
        org.reset()
        report = failing_run(org, tmp_path)
        devices, writes = org.devices(), org.write_calls()
        rollback = ["rollback", str(report), "--yes", "--base-url", org.base_url]

        with run_at_work(report):
            refused = invoke(rollback)
            dry = invoke([*rollback, "--dry-run"])
        meanwhile = org.write_calls(), org.devices()
        later = invoke(rollback)

        assert refused.exit_code == 2, refused.output
        assert f"{BUSY} {journal_path_for(report)}" in refused.stderr
        assert "run this rollback again" in refused.stderr
        assert dry.exit_code == 0, dry.output
        assert (writes, devices) == meanwhile
        assert later.exit_code == 0, later.output
        assert "deleted 2" in later.output
        assert f"run journal {journal_path_for(report)}: forgot 2 rows" in (
            later.output
        )
        assert org.devices() == []


@pytest.mark.parametrize(
    ("report", "journals"),
    [
        ("c.xlsx", ["c"]),
        ("c-rerun.xlsx", ["c-rerun", "c"]),
        ("c-rerun-3.csv", ["c-rerun-3", "c-rerun-2", "c-rerun", "c"]),
        ("c-renewed-rerun.xlsx", ["c-renewed-rerun", "c-renewed", "c"]),
        ("x-report-dry-run.csv", ["x-report-dry-run", "x-report"]),
        ("c-rerun-1.csv", ["c-rerun-1"]),
    ],
)
def test_rows_journals_follow_the_report_back_by_its_name(
    tmp_path: Path, report: str, journals: list[str]
) -> None:
    """A report's rows are those of the reports it was rerun, renewed or rehearsed
    from: their journals, nearest first."""
    expected = [tmp_path / f"{name}.journal.sqlite" for name in journals]

    actual = rows_journals(tmp_path / report)

    assert expected == list(actual)


def test_rows_journals_leave_out_the_commands_own(tmp_path: Path) -> None:
    """The journal the command writes itself is not held twice."""
    expected = [tmp_path / "c-rerun.journal.sqlite"]

    actual = rows_journals(tmp_path / "c-rerun.csv", but=tmp_path / "c.journal.sqlite")

    assert expected == list(actual)
