"""
No file is overwritten unsafely, and a report is never taken for a manifest: end to
end against an emulator process, checking the files on disk and the org itself.
"""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import Result
from emulated import (
    Emulator,
    code_rows,
    invoke,
    phone_rows,
    read_report,
    write_manifest,
)

from provisioner.emulator.harness import run_in_subprocess


@pytest.fixture(name="emulator_process", scope="module")
def _emulator_process() -> Iterator[str]:
    with run_in_subprocess() as (_process, base_url):
        yield base_url


@pytest.fixture(name="emulator")
def _emulator(emulator_process: str) -> Emulator:
    emulator = Emulator(emulator_process)
    emulator.reset()
    return emulator


def _run(emulator: Emulator, *args: str) -> list[str]:
    return ["run", *args, "--base-url", emulator.base_url]


class TestInputsAreNeverOverwritten:
    @pytest.mark.parametrize("dry_run", [True, False])
    def test_report_path_that_is_the_manifest_is_refused(
        self, emulator: Emulator, tmp_path: Path, dry_run: bool
    ) -> None:
        """--report naming the manifest itself stops the command before anything:
        exit 2, the manifest byte for byte as it was, nothing written to the org."""
        manifest = write_manifest(tmp_path / "ex.csv", phone_rows(3))
        before = manifest.read_bytes()
        args = _run(emulator, str(manifest), "--report", str(manifest))

        result = invoke([*args, "--dry-run"] if dry_run else args)

        assert result.exit_code == 2, result.output
        assert "choose another --report path" in result.stderr
        assert manifest.read_bytes() == before
        assert emulator.devices() == []

    def test_rerun_into_its_own_input_is_refused(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        """rerun --report naming the report it reads is refused; the input stays."""
        rows = phone_rows(2)
        rows[0]["workspaceId"] = "no-such-workspace"
        manifest = write_manifest(tmp_path / "ex.csv", rows)
        report = tmp_path / "r.csv"
        invoke(_run(emulator, str(manifest), "--report", str(report)))
        before = report.read_bytes()

        result = invoke(
            ["rerun", str(report), "--report", str(report)]
            + ["--base-url", emulator.base_url]
        )

        assert result.exit_code == 2, result.output
        assert report.read_bytes() == before

    def test_a_report_given_as_a_manifest_points_at_rerun(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        """run REPORT exits 2 naming rerun, and issues no code (no pending device)."""
        manifest = write_manifest(tmp_path / "ex.csv", phone_rows(1) + code_rows(2))
        report = tmp_path / "x-report.xlsx"
        invoke(_run(emulator, str(manifest), "--report", str(report)))
        devices = len(emulator.devices())

        result = invoke(_run(emulator, str(report)))

        assert result.exit_code == 2, result.output
        assert f"provisioner rerun {report}" in result.stderr
        assert len(emulator.devices()) == devices == 3


class TestReportsAreKept:
    def test_a_dry_run_never_replaces_a_real_report(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        """A dry run given the report path of a real run refuses: the codes in the
        real report are still there, readable, after it."""
        manifest = write_manifest(tmp_path / "ex.csv", phone_rows(2) + code_rows(2))
        report = tmp_path / "r.csv"
        invoke(_run(emulator, str(manifest), "--report", str(report)))
        before = report.read_bytes()

        result = invoke(
            _run(emulator, str(manifest), "--report", str(report), "--dry-run")
        )

        assert result.exit_code == 2, result.output
        assert "a dry run never replaces it" in result.stderr
        assert report.read_bytes() == before
        codes = [r["activationCode"] for r in read_report(report)]
        assert len([c for c in codes if c]) == 2

    def test_a_dry_run_replaces_its_own_rehearsal(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        """A dry run may replace an earlier dry run's report (it changed nothing)."""
        manifest = write_manifest(tmp_path / "ex.csv", phone_rows(2))
        report = tmp_path / "plan.csv"
        args = _run(emulator, str(manifest), "--report", str(report), "--dry-run")
        invoke(args)

        again = invoke(args)

        assert again.exit_code == 0, again.output
        assert {r["status"] for r in read_report(report)} == {"planned"}

    def test_a_report_with_codes_is_moved_aside_not_replaced(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        """Starting over into the same report keeps the earlier one, with its codes,
        beside it under a timestamped name the command prints (mode 0600 kept)."""
        manifest = write_manifest(tmp_path / "ex.csv", code_rows(2))
        report = tmp_path / "r.csv"
        args = _run(emulator, str(manifest), "--report", str(report))
        invoke(args)
        first = report.read_bytes()

        result = invoke([*args, "--fresh"])

        kept = sorted(tmp_path.glob("r-replaced-*.csv"))
        assert result.exit_code == 0, result.output
        assert len(kept) == 1
        assert f"as {kept[0]}" in result.stdout
        assert kept[0].read_bytes() == first
        assert stat.S_IMODE(kept[0].stat().st_mode) == 0o600
        assert [r["activationCode"] for r in read_report(report)] != [
            r["activationCode"] for r in read_report(kept[0])
        ]

    def test_a_report_of_created_devices_is_kept_when_fresh_adopts_them(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        """--fresh forgets the journal, so the same devices come back adopted: the
        earlier report, the only one saying the rollout created them, is kept, and a
        rollback of it still deletes them."""
        manifest = write_manifest(tmp_path / "ex.csv", phone_rows(2))
        report = tmp_path / "r.csv"
        args = _run(emulator, str(manifest), "--report", str(report))
        invoke(args)

        result = invoke([*args, "--fresh"])

        (kept,) = sorted(tmp_path.glob("r-replaced-*.csv"))
        assert result.exit_code == 0, result.output
        assert (
            "it names 2 devices this rollout created that the new report does not"
            in result.stdout
        )
        assert {r["status"] for r in read_report(report)} == {"adopted"}
        assert {r["status"] for r in read_report(kept)} == {"created"}
        back = invoke(["rollback", str(kept), "--yes", "--base-url", emulator.base_url])
        assert back.exit_code == 0, back.output
        assert emulator.devices() == []

    def test_the_same_run_again_replaces_its_report_in_place(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        """A resumed run keeps every code, so its report simply replaces the old one."""
        manifest = write_manifest(tmp_path / "ex.csv", code_rows(2))
        report = tmp_path / "r.csv"
        args = _run(emulator, str(manifest), "--report", str(report))
        invoke(args)

        again = invoke(args)

        assert again.exit_code == 0, again.output
        assert list(tmp_path.glob("r-replaced-*")) == []


class TestDryRunLeadsToTheRealRun:
    def test_the_hint_names_the_command_that_does_the_work(
        self, emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """After a dry run the tool names a command; running exactly that command
        creates every device the dry run planned."""
        monkeypatch.chdir(tmp_path)
        write_manifest(tmp_path / "site.csv", phone_rows(3))
        dry = invoke(_run(emulator, "site.csv", "--dry-run"))
        hint = dry.stderr.rsplit("without --dry-run: ", 1)[1].strip()
        words = hint.split()

        real = invoke(words[1:])

        assert dry.exit_code == 0, dry.output
        assert words[:3] == ["provisioner", "run", "site.csv"]
        assert real.exit_code == 0, real.output
        assert len(emulator.devices()) == 3

    def test_the_hint_keeps_what_changes_a_rows_outcome(
        self, emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A dry run with --reissue-codes plans to void the earlier code and issue a
        new one; the command it names must do that, not leave the row code_pending."""
        monkeypatch.chdir(tmp_path)
        write_manifest(tmp_path / "site.csv", code_rows(1))
        invoke(_run(emulator, "site.csv", "--report", "first.csv"))
        (earlier,) = emulator.pending()

        dry = invoke(_run(emulator, "site.csv", "--dry-run", "--reissue-codes"))
        hint = dry.stderr.rsplit("without --dry-run: ", 1)[1].strip()
        real = invoke(hint.split()[1:])

        assert "--reissue-codes" in hint.split()
        assert real.exit_code == 0, real.output
        (now,) = emulator.pending()
        assert now["id"] != earlier["id"]

    def test_rerun_of_a_dry_run_report_does_its_planned_rows(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        """rerun of a dry run's report makes the planned changes, not only the
        invalid rows: every planned device exists after it."""
        rows = phone_rows(3)
        rows.append({"mac": "not-a-mac", "model": "Cisco 8851"})
        manifest = write_manifest(tmp_path / "ex.csv", rows)
        plan = tmp_path / "plan.csv"
        invoke(_run(emulator, str(manifest), "--report", str(plan), "--dry-run"))

        result = invoke(["rerun", str(plan), "--base-url", emulator.base_url])

        statuses = [r["status"] for r in read_report(tmp_path / "plan-rerun.csv")]
        assert result.exit_code == 1, result.output  # the invalid row stays invalid
        assert statuses == ["created", "created", "created", "invalid"]
        assert len(emulator.devices()) == 3


def _stopped_cleanly(result: Result, folder: Path, flag: str) -> None:
    """Exit 2 and one sentence naming the folder and the option to change."""
    assert result.exit_code == 2, result.output
    assert result.stderr.count("Error:") == 1, result.stderr
    assert f"cannot write in the folder {folder}" in result.stderr
    assert f"choose another {flag} path" in result.stderr


class TestUnwritableFolders:
    @pytest.mark.parametrize("dry_run", [False, True])
    def test_run_stops_before_the_org_changes(
        self, emulator: Emulator, tmp_path: Path, unwritable: Path, dry_run: bool
    ) -> None:
        """A report folder that exists but takes no file (so no journal either)
        stops run, dry or not, with exit 2 before any call that writes."""
        manifest = write_manifest(tmp_path / "ex.csv", phone_rows(2) + code_rows(1))
        args = _run(emulator, str(manifest), "--yes", "--report", f"{unwritable}/r")

        result = invoke([*args, "--dry-run"] if dry_run else args)

        _stopped_cleanly(result, unwritable, "--report")
        assert emulator.write_calls() == 0
        assert emulator.devices() == []

    def test_rerun_stops_before_the_org_changes(
        self, emulator: Emulator, tmp_path: Path, unwritable: Path
    ) -> None:
        """rerun into an unwritable folder does none of the rows it would redo."""
        manifest = write_manifest(tmp_path / "ex.csv", phone_rows(2))
        plan = tmp_path / "plan.csv"
        invoke(_run(emulator, str(manifest), "--report", str(plan), "--dry-run"))

        result = invoke(
            [
                "rerun",
                str(plan),
                "--yes",
                "--report",
                str(unwritable / "r.csv"),
                "--base-url",
                emulator.base_url,
            ]
        )

        _stopped_cleanly(result, unwritable, "--report")
        assert emulator.write_calls() == 0

    def test_rollback_stops_before_deleting(
        self, emulator: Emulator, tmp_path: Path, unwritable: Path
    ) -> None:
        """A rollback whose report (and journal) cannot be written deletes nothing."""
        manifest = write_manifest(tmp_path / "ex.csv", phone_rows(2))
        report = tmp_path / "r.csv"
        invoke(_run(emulator, str(manifest), "--report", str(report)))
        before = emulator.write_calls()

        result = invoke(
            [
                "rollback",
                str(report),
                "--yes",
                "--report",
                str(unwritable / "rb.csv"),
                "--base-url",
                emulator.base_url,
            ]
        )

        _stopped_cleanly(result, unwritable, "--report")
        assert emulator.write_calls() == before
        assert len(emulator.devices()) == 2

    def test_export_names_the_folder(
        self, emulator: Emulator, unwritable: Path
    ) -> None:
        """An export whose OUTPUT folder takes no file stops before reading the org."""
        output = unwritable / "devices.csv"

        result = invoke(["export", str(output), "--base-url", emulator.base_url])

        _stopped_cleanly(result, unwritable, "OUTPUT")

    @pytest.mark.parametrize(
        "command", ["run", "rerun", "codes", "rollback", "export", "validate"]
    )
    def test_a_log_file_that_cannot_be_opened_stops_the_command(
        self, emulator: Emulator, tmp_path: Path, unwritable: Path, command: str
    ) -> None:
        """--log-file in a folder that takes no file: exit 2, one sentence naming
        the file, before any call that writes."""
        manifest = write_manifest(tmp_path / "ex.csv", phone_rows(2))
        plan = tmp_path / "plan.csv"
        invoke(_run(emulator, str(manifest), "--report", str(plan), "--dry-run"))
        given = {
            "run": [str(manifest), "--yes", "--report", str(tmp_path / "r.csv")],
            "rerun": [str(plan), "--yes", "--report", str(tmp_path / "r.csv")],
            "codes": [str(plan)],
            "rollback": [str(plan), "--yes"],
            "export": [str(tmp_path / "devices.csv")],
            "validate": [str(manifest), "--live"],
        }[command]
        log_file = unwritable / "run.log"

        result = invoke(
            [
                command,
                *given,
                "--log-file",
                str(log_file),
                "--base-url",
                emulator.base_url,
            ]
        )

        assert result.exit_code == 2, result.output
        assert result.stderr.count("Error:") == 1, result.stderr
        assert f"cannot open the log file {log_file}" in result.stderr
        assert "choose another --log-file path" in result.stderr
        assert emulator.write_calls() == 0
