"""
``provisioner rollback`` end to end against the emulator in a subprocess: a run under
faults rolled back to exactly the devices that were there before, a second rollback
that changes nothing, a rollback SIGKILLed mid-way and continued by the same command.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from click.testing import CliRunner, Result
from org_manifests import (
    EVERY_ORG,
    HOME,
    PARTNER,
    org_devices,
    run_partner_manifest,
    write_org_manifest,
)
from paths import EMULATOR_ORG

from provisioner.cli import confirm, main
from provisioner.emulator import org_id_for
from provisioner.emulator.config import DEFAULT_TOKEN
from provisioner.emulator.harness import run_in_subprocess
from provisioner.inventory import rollback as rollback_module
from provisioner.run.journal import hold_journal, journal_path_for, release_journal
from provisioner.run.plan import UNCONFIRMED

ORG = json.loads(EMULATOR_ORG.read_text())
WORKSPACES = [w["id"] for w in ORG["workspaces"]]
PEOPLE = [p["id"] for p in ORG["people"]]
CLEAN = {"latency_ms": 0, "rate_limit": None, "fault_rate": 0, "drop_rate": 0}
FAULTS = {"fault_rate": 0.04, "drop_rate": 0.02, "ambiguous_rate": 0.02}


class Emulator:
    """
    The emulator subprocess: its API (with the default token) and its admin view.
    """

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.admin_url = base_url.removesuffix("/v1") + "/_emulator"

    def call(self, url: str, method: str = "GET", body: Any = None) -> Any:
        request = urllib.request.Request(
            url,
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {DEFAULT_TOKEN}",
            },
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        return self.call(self.admin_url + path, method, body)

    def create(self, mac: str, owner: dict[str, str]) -> str:
        body = {"mac": mac, "model": "DMS Cisco 8851", **owner}
        device: dict[str, Any] = self.call(f"{self.base_url}/devices", "POST", body)
        return str(device["id"])

    def devices(self) -> list[dict[str, Any]]:
        return list(self.admin("GET", "/devices")["items"])

    def requests(self) -> list[dict[str, Any]]:
        return list(self.admin("GET", "/requests")["items"])


@pytest.fixture(name="emulator_process", scope="module")
def _emulator_process() -> Iterator[str]:
    with run_in_subprocess() as (_process, base_url):
        yield base_url


@pytest.fixture(name="emulator")
def _emulator(emulator_process: str) -> Emulator:
    emulator = Emulator(emulator_process)
    emulator.admin("POST", "/reset")
    emulator.admin("POST", "/faults", {**CLEAN, "ambiguous_rate": 0})
    return emulator


def invoke(args: Sequence[str]) -> Result:
    env = {"WEBEX_ACCESS_TOKEN": DEFAULT_TOKEN}
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def mac(n: int) -> str:
    return f"00AAC0{n:06X}"


def owner(n: int) -> dict[str, str]:
    if n % 4 == 3:
        return {"personId": PEOPLE[n % len(PEOPLE)]}
    return {"workspaceId": WORKSPACES[n % len(WORKSPACES)]}


def write_manifest(path: Path, macs: int, codes: int) -> Path:
    columns = ["mac", "model", "workspaceId", "personId", "tags", "note"]
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=columns)
        writer.writeheader()
        for n in range(macs):
            writer.writerow(
                {
                    "mac": mac(n),
                    "model": "Cisco 8851",
                    "tags": f"wave;t{n % 3}",
                    **owner(n),
                }
                | {"note": f"desk {n}"}
            )
        for n in range(codes):
            writer.writerow(
                {
                    "mac": "",
                    "model": "Cisco 8865",
                    "workspaceId": WORKSPACES[n],
                    "tags": "",
                }
                | {"personId": "", "note": f"code {n}"}
            )
    return path


def seed_before(emulator: Emulator, adopted: int) -> set[str]:
    """
    Devices that were there before the run (made an hour earlier): the first
    ``adopted`` MAC rows' own devices (the run adopts them) and a few the manifest
    does not name.
    """
    emulator.admin("POST", "/clock", {"advance_seconds": -3600})
    try:
        ids = {emulator.create(mac(n), owner(n)) for n in range(adopted)}
        ids |= {
            emulator.create(f"00FFC0{n:06X}", {"workspaceId": WORKSPACES[n]})
            for n in range(5)
        }
    finally:
        emulator.admin("POST", "/clock", {"advance_seconds": 3600})
    return ids


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def rewrite_rows(path: Path, changes: dict[str, dict[str, str]]) -> None:
    """
    Change the report rows whose MAC ``changes`` names, as a run that ended them
    otherwise would have written them.
    """
    with path.open(newline="", encoding="utf-8") as file:
        reader = csv.DictReader(file)
        columns = list(reader.fieldnames or ())
        lines = list(reader)
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=columns)
        writer.writeheader()
        for line in lines:
            writer.writerow(line | changes.get(line["mac"], {}))


#: A MAC row as a run writes it when every create lost its answer.
LOST_CREATE = {
    "status": "failed",
    "deviceId": "",
    "error": f"create device: connection dropped ({UNCONFIRMED})",
    "httpStatus": "502",
}


def journal_lost_creates(journal: Path, macs: Sequence[str]) -> None:
    """
    Record these MAC rows in the run's journal as every create lost its answer
    (``LOST_CREATE``), as the run that wrote them so in the report would have.
    """
    with contextlib.closing(sqlite3.connect(journal)) as db, db:
        for lost in macs:
            key = f"mac:{lost}"
            (text,) = db.execute(
                "SELECT outcome FROM rows WHERE key = ?", (key,)
            ).fetchone()
            outcome = json.loads(text) | {
                "status": LOST_CREATE["status"],
                "device_id": None,
                "error": LOST_CREATE["error"],
                "http_status": int(LOST_CREATE["httpStatus"]),
            }
            db.execute(
                "UPDATE rows SET device_id = NULL, outcome = ? WHERE key = ?",
                (json.dumps(outcome), key),
            )


class TestRollback:
    def test_run_export_rollback_under_faults(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        """A few hundred rows provisioned under faults (some adopted), exported, then
        rolled back: the export matches the admin view and validates, the rollback
        leaves exactly the devices that were there before, and a second rollback
        changes nothing and exits 0."""
        before = seed_before(emulator, adopted=30)
        manifest = write_manifest(tmp_path / "wave.csv", macs=250, codes=30)
        report = tmp_path / "wave-report.csv"
        emulator.admin("POST", "/faults", FAULTS)
        url = ["--base-url", emulator.base_url, "-q"]

        ran = invoke(["run", str(manifest), "--report", str(report), *url])
        exported = invoke(["export", str(tmp_path / "org.csv"), *url])
        admin_view = emulator.devices()
        validated = invoke(["validate", str(tmp_path / "org.csv")])
        first = invoke(["rollback", str(report), "--yes", *url])
        after_first = {d["id"] for d in emulator.devices()}
        since = emulator.admin("GET", "/requests")["last"]
        second = invoke(["rollback", str(report), "--yes", *url])

        assert ran.exit_code == 0, ran.output
        statuses = Counter(line["status"] for line in read_csv(report))
        assert statuses == {"created": 220, "adopted": 30, "code_issued": 30}
        assert exported.exit_code == 0, exported.output
        lines = {line["deviceId"]: line for line in read_csv(tmp_path / "org.csv")}
        assert set(lines) == {d["id"] for d in admin_view}
        for device in admin_view:
            line = lines[device["id"]]
            assert line["mac"] == (device.get("mac") or "").replace(":", "")
            assert (line["workspaceId"] or line["personId"]) == (
                device.get("workspaceId") or device.get("personId")
            )
            assert (line["tags"].split(";") if line["tags"] else []) == device["tags"]
        assert validated.exit_code == 0, validated.output
        assert first.exit_code == 0, first.output
        assert after_first == before
        rolled = read_csv(tmp_path / "wave-report-rollback.csv")
        assert [line["row"] for line in rolled] == [
            line["row"] for line in read_csv(report)
        ]
        assert Counter(line["rollback"] for line in rolled) == {
            "deleted": 250,
            "skipped": 30,
        }
        assert second.exit_code == 0, second.output
        assert "deleted 250 · skipped 30" in second.output
        # The second rollback only asked who the token is: no device call at all.
        again = emulator.admin("GET", f"/requests?since={since}")["items"]
        assert {e["route"] for e in again} <= {
            "GET /v1/people/me",
            "GET /v1/organizations/{orgId}",
        }
        assert {d["id"] for d in emulator.devices()} == before

    def test_killed_rollback_continues_with_the_same_command(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        """A rollback SIGKILLed mid-way is continued by the same command: every
        device the run made is deleted once, none twice, and the report says
        deleted for each."""
        before = seed_before(emulator, adopted=4)
        manifest = write_manifest(tmp_path / "wave.csv", macs=60, codes=0)
        report = tmp_path / "wave-report.csv"
        url = ["--base-url", emulator.base_url, "-q"]
        assert (
            invoke(["run", str(manifest), "--report", str(report), *url]).exit_code == 0
        )
        emulator.admin("POST", "/faults", {"latency_ms": 30})
        since = emulator.admin("GET", "/requests")["last"]
        command = [sys.executable, "-m", "provisioner", "rollback", str(report)]
        command += ["--yes", "--concurrency", "2", *url]
        env = {**os.environ, "WEBEX_ACCESS_TOKEN": DEFAULT_TOKEN}

        with subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        ) as child:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and _deletes(emulator, since) < 15:
                time.sleep(0.02)
            child.send_signal(signal.SIGKILL)
            child.wait()
        killed_after = _deletes(emulator, since)
        emulator.admin("POST", "/faults", {"latency_ms": 0})
        resumed = invoke(["rollback", str(report), "--yes", *url])

        assert child.returncode == -signal.SIGKILL
        assert 15 <= killed_after < 56
        assert resumed.exit_code == 0, resumed.output
        assert {d["id"] for d in emulator.devices()} == before
        deletes = [
            e
            for e in emulator.admin("GET", f"/requests?since={since}")["items"]
            if e["method"] == "DELETE"
        ]
        assert {e["status"] for e in deletes} == {204}
        per_device = Counter(e["path"] for e in deletes)
        assert set(per_device.values()) == {1}
        assert len(per_device) == 56
        rolled = read_csv(tmp_path / "wave-report-rollback.csv")
        assert Counter(line["rollback"] for line in rolled) == {
            "deleted": 56,
            "skipped": 4,
        }

    def test_its_csv_report_marks_what_a_spreadsheet_would_run(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        """The rollback's CSV report writes the run's tags and notes that a
        spreadsheet would run (=SUM(1), -desk) after a ', as the run's report did."""
        manifest = write_manifest(tmp_path / "wave.csv", macs=2, codes=0)
        text = manifest.read_text(encoding="utf-8")
        text = text.replace("wave;t0", "'=SUM(1);t0").replace("desk 1", "-desk 1")
        manifest.write_text(text, encoding="utf-8")
        report = tmp_path / "wave-report.csv"
        url = ["--base-url", emulator.base_url, "-q"]
        ran = invoke(["run", str(manifest), "--report", str(report), *url])

        result = invoke(["rollback", str(report), "--yes", *url])

        assert ran.exit_code == 0, ran.output
        assert result.exit_code == 0, result.output
        rolled = read_csv(tmp_path / "wave-report-rollback.csv")
        assert [(line["tags"], line["note"]) for line in rolled] == [
            ("'=SUM(1);t0", "desk 0"),
            ("wave;t1", "'-desk 1"),
        ]
        assert [line["rollback"] for line in rolled] == ["deleted", "deleted"]

    def test_dry_run_lists_and_deletes_nothing(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        """--dry-run reads each device, lists what would go and writes nothing."""
        seed_before(emulator, adopted=1)
        manifest = write_manifest(tmp_path / "wave.csv", macs=4, codes=1)
        report = tmp_path / "wave-report.csv"
        url = ["--base-url", emulator.base_url, "-q"]
        assert (
            invoke(["run", str(manifest), "--report", str(report), *url]).exit_code == 0
        )
        devices = emulator.devices()

        result = invoke(["rollback", str(report), "--dry-run", *url])

        assert result.exit_code == 0, result.output
        assert "5 rows · skipped 1 · planned 4" in result.output
        assert f"row 3 planned: {mac(1)}" in result.output
        assert "Cisco 8865 (activation code)" in result.output
        assert emulator.devices() == devices
        assert not any(e["method"] == "DELETE" for e in emulator.requests())
        dry = read_csv(tmp_path / "wave-report-rollback-dry-run.csv")
        assert Counter(line["rollback"] for line in dry) == {"planned": 4, "skipped": 1}
        assert not list(tmp_path.glob("*rollback.journal*"))

    def test_a_lost_creates_device_is_found_by_mac_and_deleted_if_the_run_made_it(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        """Rows whose every create lost its answer name no device: the rollback
        looks each MAC up, deletes the device the API made while the run ran (the
        report's history says when) and keeps the rest, saying why; the dry run
        predicts the same."""
        before = seed_before(emulator, adopted=1)
        manifest = write_manifest(tmp_path / "wave.csv", macs=5, codes=0)
        report = tmp_path / "wave-report.csv"
        url = ["--base-url", emulator.base_url, "-q"]
        assert (
            invoke(["run", str(manifest), "--report", str(report), *url]).exit_code == 0
        )
        ids = {line["mac"]: line["deviceId"] for line in read_csv(report)}
        # mac(2)'s device now belongs to another workspace; mac(3)'s is gone.
        for gone in (mac(2), mac(3)):
            emulator.call(f"{emulator.base_url}/devices/{ids[gone]}", "DELETE")
        other = WORKSPACES[(2 + 1) % len(WORKSPACES)]
        moved = emulator.create(mac(2), {"workspaceId": other})
        # mac(0) was there before the run (adopted), mac(1) the run made.
        rewrite_rows(report, {mac(n): LOST_CREATE for n in range(4)})
        journal_lost_creates(journal_path_for(report), [mac(n) for n in range(4)])

        dry = invoke(["rollback", str(report), "--dry-run", *url])
        rolled = invoke(["rollback", str(report), "--yes", *url])

        assert dry.exit_code == 0, dry.output
        assert rolled.exit_code == 0, rolled.output
        predicted = read_csv(tmp_path / "wave-report-rollback-dry-run.csv")
        done = read_csv(tmp_path / "wave-report-rollback.csv")
        assert [line["rollback"] for line in predicted] == [
            "kept",
            "planned",
            "kept",
            "skipped",
            "planned",
        ]
        assert [line["rollback"] for line in done] == [
            "kept",
            "deleted",
            "kept",
            "skipped",
            "deleted",
        ]
        reasons = [line["rollbackReason"] for line in done]
        assert all("may have made" in reason for reason in reasons[:4:2])
        assert "when no command of the rollout ran" in reasons[0]
        assert f"belongs to workspace {other}" in reasons[2]
        assert "no device has its MAC" in reasons[3]
        assert done[1]["deviceId"] == ""  # the report row as it was
        assert {d["id"] for d in emulator.devices()} == before | {moved}

    def test_a_rerun_row_invalid_now_keeps_the_device_for_the_rollback(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        """A third-party row created its device and failed at its tags; the report
        masks its password, so its rerun finds it invalid. The rerun's report still
        names the device the rollout created, and a rollback of it deletes it."""
        manifest = tmp_path / "desk.csv"
        manifest.write_text(
            "mac,model,workspaceId,tags,password\n"
            f"{mac(1)},Polycom VVX 411,{WORKSPACES[0]},lobby,Pa55-Polycom-Alpha\n",
            encoding="utf-8",
        )
        report = tmp_path / "desk-report.csv"
        url = ["--base-url", emulator.base_url, "-q"]
        assert (
            invoke(["run", str(manifest), "--report", str(report), *url]).exit_code == 0
        )
        (created,) = read_csv(report)
        # As a run whose tags call kept failing writes the row.
        failed = {
            "status": "failed",
            "error": "apply tags to the device this run created: bad gateway (the "
            "API kept failing after retries; run rerun later)",
            "httpStatus": "502",
        }
        rewrite_rows(report, {mac(1): failed})

        rerun = invoke(["rerun", str(report), *url])
        rerun_report = tmp_path / "desk-report-rerun.csv"
        (line,) = read_csv(rerun_report)
        rolled = invoke(["rollback", str(rerun_report), "--yes", *url])

        assert rerun.exit_code == 1, rerun.output
        assert (line["status"], line["deviceId"]) == ("failed", created["deviceId"])
        assert "password was masked" in line["error"]
        assert rolled.exit_code == 0, rolled.output
        (result,) = read_csv(tmp_path / "desk-report-rerun-rollback.csv")
        assert result["rollback"] == "deleted"
        assert emulator.devices() == []

    def test_report_keeps_every_input_row_and_is_private_with_codes(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        """The rollback's XLSX has the input report's rows and columns as they were,
        the rollback columns on the right, coloured, and mode 0600 (codes)."""
        manifest = write_manifest(tmp_path / "wave.csv", macs=2, codes=1)
        report = tmp_path / "wave-report.xlsx"
        url = ["--base-url", emulator.base_url, "-q"]
        assert (
            invoke(["run", str(manifest), "--report", str(report), *url]).exit_code == 0
        )

        result = invoke(["rollback", str(report), "--yes", *url])

        output = tmp_path / "wave-report-rollback.xlsx"
        assert result.exit_code == 0, result.output
        assert stat.S_IMODE(output.stat().st_mode) == 0o600
        original = list(
            openpyxl.load_workbook(report)["Report"].iter_rows(values_only=True)
        )
        sheet = openpyxl.load_workbook(output)["Report"]
        rows = list(sheet.iter_rows(values_only=True))
        width = len(original[0])
        assert rows[0][width:] == (
            "rollback",
            "rollbackReason",
            "rollbackHttpStatus",
            "rollbackTrackingId",
        )
        assert [row[:width] for row in rows] == original
        assert [row[width] for row in rows[1:]] == ["deleted"] * 3
        assert sheet.cell(row=2, column=width + 1).fill.fgColor.rgb.endswith("C6EFCE")

    def test_remote_org_needs_yes_off_a_terminal(
        self, emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Against an org not on this machine, a scripted rollback shows what it
        would delete, deletes nothing and exits 2 without --yes."""
        manifest = write_manifest(tmp_path / "wave.csv", macs=3, codes=0)
        report = tmp_path / "wave-report.csv"
        url = ["--base-url", emulator.base_url, "-q"]
        assert (
            invoke(["run", str(manifest), "--report", str(report), *url]).exit_code == 0
        )
        monkeypatch.setattr(confirm, "is_loopback_target", lambda _target: False)

        refused = invoke(["rollback", str(report), *url])
        devices_after_refusal = len(emulator.devices())
        accepted = invoke(["rollback", str(report), "--yes", *url])

        assert refused.exit_code == 2
        assert "delete 3 devices" in refused.stderr
        assert "--yes" in refused.stderr
        assert devices_after_refusal == 3
        assert accepted.exit_code == 0, accepted.output
        assert emulator.devices() == []

    def test_the_confirmation_counts_what_the_dry_run_plans(
        self, emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Rows naming a device gone already, or a code someone used, are not
        counted as deletions: the confirmation's count is the dry run's planned
        count, and what the rollback then deletes."""
        manifest = write_manifest(tmp_path / "wave.csv", macs=5, codes=2)
        report = tmp_path / "wave-report.csv"
        url = ["--base-url", emulator.base_url, "-q"]
        assert (
            invoke(["run", str(manifest), "--report", str(report), *url]).exit_code == 0
        )
        lines = read_csv(report)
        emulator.call(f"{emulator.base_url}/devices/{lines[0]['deviceId']}", "DELETE")
        emulator.call(f"{emulator.base_url}/devices/{lines[1]['deviceId']}", "DELETE")
        emulator.admin("POST", f"/devices/{lines[5]['deviceId']}/activate")
        monkeypatch.setattr(confirm, "is_loopback_target", lambda _target: False)

        dry = invoke(["rollback", str(report), "--dry-run", *url])
        refused = invoke(["rollback", str(report), *url])
        devices_after_refusal = len(emulator.devices())
        accepted = invoke(["rollback", str(report), "--yes", *url])

        assert dry.exit_code == 0, dry.output
        assert "7 rows · already_gone 2 · kept 1 · planned 4" in dry.output
        assert refused.exit_code == 2
        assert "  delete 4 devices\n" in refused.stderr
        assert devices_after_refusal == 5
        assert accepted.exit_code == 0, accepted.output
        assert "  delete 4 devices\n" in accepted.stderr
        assert "deleted 4 · already_gone 2 · kept 1" in accepted.output
        assert [d["id"] for d in emulator.devices()] == [lines[5]["deviceId"]]

    def test_report_path_that_is_the_input_is_refused(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        """The input report is never overwritten: --report naming it exits 2."""
        manifest = write_manifest(tmp_path / "wave.csv", macs=1, codes=0)
        report = tmp_path / "wave-report.csv"
        url = ["--base-url", emulator.base_url, "-q"]
        assert (
            invoke(["run", str(manifest), "--report", str(report), *url]).exit_code == 0
        )
        before = report.read_bytes()

        result = invoke(
            ["rollback", str(report), "--report", str(report), "--yes", *url]
        )

        assert result.exit_code == 2
        assert "never overwritten" in result.output
        assert report.read_bytes() == before
        assert len(emulator.devices()) == 1

    def test_not_a_report_exits_2(self, tmp_path: Path) -> None:
        """A manifest given as REPORT is refused with the reason."""
        manifest = write_manifest(tmp_path / "wave.csv", macs=1, codes=0)

        result = invoke(
            ["rollback", str(manifest), "--base-url", "http://127.0.0.1:9/v1"]
        )

        assert result.exit_code == 2
        assert "not a provisioner report" in result.output
        # The words fit every command that reads a report, not rerun's alone.
        assert "give a report written by `provisioner run`" in result.output
        assert "rerun takes" not in result.output

    def test_help(self) -> None:
        """``rollback --help`` documents the flags."""
        result = CliRunner().invoke(main, ["rollback", "--help"])

        assert result.exit_code == 0
        for flag in (
            "--dry-run",
            "--yes",
            "--report",
            "--include-activated",
            "--max-rate",
        ):
            assert flag in result.output


class TestTheReportIsNotTakenAtItsWord:
    """
    A report row's status edited by hand from ``adopted`` to ``created``: the
    rollback keeps the device that was there before the run, as the run's journal
    says (or, the report sent on without it, as the API's stamp and the report's
    history say), and deletes what the run did make.
    """

    def test_the_journal_keeps_a_device_the_run_adopted(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        before = seed_before(emulator, adopted=1)
        manifest = write_manifest(tmp_path / "wave.csv", macs=3, codes=1)
        report = tmp_path / "wave-report.csv"
        url = ["--base-url", emulator.base_url, "-q"]
        assert (
            invoke(["run", str(manifest), "--report", str(report), *url]).exit_code == 0
        )
        adopted = next(line for line in read_csv(report) if line["mac"] == mac(0))
        assert adopted["status"] == "adopted"
        rewrite_rows(report, {mac(0): {"status": "created"}})

        dry = invoke(["rollback", str(report), "--dry-run", *url])
        rolled = invoke(["rollback", str(report), "--yes", *url])

        assert dry.exit_code == 0, dry.output
        assert rolled.exit_code == 0, rolled.output
        assert "kept 1 · planned 3" in dry.output
        assert "deleted 3 · kept 1" in rolled.output
        assert {d["id"] for d in emulator.devices()} == before
        assert adopted["deviceId"] in before
        (line,) = [
            line
            for line in read_csv(tmp_path / "wave-report-rollback.csv")
            if line["mac"] == mac(0)
        ]
        assert line["rollback"] == "kept"
        assert line["rollbackReason"].startswith(
            "the run journal wave-report.journal.sqlite records this row as adopted"
        )

    def test_the_journal_speaks_for_a_code_row_that_names_its_owner(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        """A code row naming its owner by workspace name is journalled under the id
        the run resolved it to: the rollback reads the journal under that id too.
        The owner had a pending code of the row's model (the run reports the row
        code_pending, issuing none); with its status cell edited to code_issued,
        the rollback keeps that device, as the journal says. (Made just before the
        run, the device's age cannot tell it from the rollout's.)"""
        workspace = emulator.call(f"{emulator.base_url}/workspaces/{WORKSPACES[0]}")
        earlier = emulator.call(
            f"{emulator.base_url}/devices/activationCode",
            "POST",
            {"model": "DMS Cisco 8865", "workspaceId": WORKSPACES[0]},
        )
        before = {d["id"] for d in emulator.devices()}
        manifest = tmp_path / "named.csv"
        manifest.write_text(
            f"mac,model,workspace\n,Cisco 8865,{workspace['displayName']}\n"
        )
        report = tmp_path / "named-report.csv"
        url = ["--base-url", emulator.base_url, "-q"]
        ran = invoke(["run", str(manifest), "--report", str(report), *url])
        assert ran.exit_code == 0, ran.output
        (line,) = read_csv(report)
        assert line["status"] == "code_pending"
        assert earlier is not None
        assert len(before) == 1
        with report.open(newline="", encoding="utf-8") as file:
            reader = csv.DictReader(file)
            columns = list(reader.fieldnames or ())
            lines = [line | {"status": "code_issued"} for line in reader]
        with report.open("w", newline="", encoding="utf-8") as file:
            writer = csv.DictWriter(file, fieldnames=columns)
            writer.writeheader()
            writer.writerows(lines)

        rolled = invoke(["rollback", str(report), "--yes", *url])

        assert rolled.exit_code == 0, rolled.output
        assert {d["id"] for d in emulator.devices()} == before
        (kept,) = read_csv(tmp_path / "named-report-rollback.csv")
        assert kept["rollback"] == "kept"
        assert "records this row as code_pending" in kept["rollbackReason"]

    def test_the_same_run_replaces_the_edited_report_without_keeping_it(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        """Both files edited, then the same run into the same report: its journal
        (continued) says adopted, so the edited report is replaced in place, not
        kept aside as naming a device "a rollback of it deletes"; the device the
        run adopted stays through the rollback."""
        before = seed_before(emulator, adopted=1)
        manifest = write_manifest(tmp_path / "wave.csv", macs=3, codes=1)
        report = tmp_path / "wave-report"
        run = ["run", str(manifest), "--report", str(report), "--yes"]
        url = ["--base-url", emulator.base_url, "-q"]
        assert invoke([*run, *url]).exit_code == 0
        csv_report, xlsx_report = (
            report.with_suffix(".csv"),
            report.with_suffix(".xlsx"),
        )
        rewrite_rows(csv_report, {mac(0): {"status": "created"}})
        _edit_status(xlsx_report, xlsx_report, mac(0), "created")

        again = invoke([*run, *url])
        statuses = {line["mac"]: line["status"] for line in read_csv(csv_report)}
        rolled = invoke(["rollback", str(csv_report), "--yes", *url])

        assert again.exit_code == 0, again.output
        assert "kept the earlier report" not in again.output
        assert list(tmp_path.glob("*-replaced-*")) == []
        assert statuses[mac(0)] == "adopted"
        assert rolled.exit_code == 0, rolled.output
        assert "deleted 3 · skipped 1" in rolled.output
        assert {d["id"] for d in emulator.devices()} == before

    def test_a_report_moved_aside_is_rolled_back_by_its_runs_journal(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        """The edited report moved aside by the same run (a row left out of the
        manifest): the rollback of the moved CSV finds the journal of the report it
        was moved from, keeps the device it records as adopted, deletes the rest,
        and makes that journal forget them, so the same run does them again."""
        before = seed_before(emulator, adopted=1)
        manifest = write_manifest(tmp_path / "wave.csv", macs=3, codes=1)
        report = tmp_path / "wave-report.csv"
        run = ["run", str(manifest), "--report", str(report), "--yes"]
        url = ["--base-url", emulator.base_url, "-q"]
        assert invoke([*run, *url]).exit_code == 0
        rewrite_rows(report, {mac(0): {"status": "created"}})
        lines = manifest.read_text().splitlines(keepends=True)
        manifest.write_text("".join(line for line in lines if mac(2) not in line))
        moved = invoke([*run, *url])
        (aside,) = tmp_path.glob("wave-report-replaced-*.csv")

        rolled = invoke(["rollback", str(aside), "--yes", *url])
        again = invoke([*run, *url])

        assert moved.exit_code == 0, moved.output
        assert "it names 1 device this rollout created" in moved.output
        assert rolled.exit_code == 0, rolled.output
        assert "deleted 3 · kept 1" in rolled.output
        assert f"run journal {journal_path_for(report)}: forgot 3 rows" in (
            rolled.output
        )
        (line,) = [
            line
            for line in read_csv(aside.with_name(f"{aside.stem}-rollback.csv"))
            if line["mac"] == mac(0)
        ]
        assert line["rollback"] == "kept"
        assert line["rollbackReason"].startswith(
            "the run journal wave-report.journal.sqlite records this row as adopted"
        )
        assert again.exit_code == 0, again.output
        assert "created 1 · adopted 1 · code_issued 1" in again.output
        held = {d["id"] for d in emulator.devices()}
        assert before <= held
        assert {line["deviceId"] for line in read_csv(report)} <= held

    def test_a_report_sent_on_alone_keeps_a_device_older_than_the_rollout(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        """No journal beside the XLSX: the device the API made before the run's
        first command began (its history sheet says when) is kept."""
        before = seed_before(emulator, adopted=1)
        manifest = write_manifest(tmp_path / "wave.csv", macs=3, codes=0)
        report = tmp_path / "run" / "wave-report.xlsx"
        url = ["--base-url", emulator.base_url, "-q"]
        assert (
            invoke(["run", str(manifest), "--report", str(report), *url]).exit_code == 0
        )
        sent = tmp_path / "sent" / report.name
        sent.parent.mkdir()
        _edit_status(report, sent, mac(0), "created")

        rolled = invoke(["rollback", str(sent), "--yes", *url])

        assert rolled.exit_code == 0, rolled.output
        assert "deleted 2 · kept 1" in rolled.output
        assert {d["id"] for d in emulator.devices()} == before
        sheet = openpyxl.load_workbook(sent.with_name("wave-report-rollback.xlsx"))
        rows = list(sheet["Report"].iter_rows(values_only=True))
        header = list(rows[0])
        (line,) = [r for r in rows[1:] if r[header.index("mac")] == mac(0)]
        assert line[header.index("rollback")] == "kept"
        assert "before the rollout's first command began" in str(
            line[header.index("rollbackReason")]
        )


def _edit_status(report: Path, to: Path, row_mac: str, status: str) -> None:
    """
    Save the XLSX report at ``to`` with the status of the row of ``row_mac``
    changed, as a person editing the copy they were sent would.
    """
    book = openpyxl.load_workbook(report)
    sheet = book["Report"]
    header = [cell.value for cell in sheet[1]]
    for cells in sheet.iter_rows(min_row=2):
        if cells[header.index("mac")].value == row_mac:
            cells[header.index("status")].value = status
    book.save(to)


class TestRunAfterRollback:
    """
    A rollback makes the run journals that recorded its rows forget the rows whose
    devices it deleted: the same run command then provisions them again, and its
    report names live devices.
    """

    def test_the_same_run_provisions_the_rolled_back_rows_again(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        seed_before(emulator, adopted=1)
        manifest = write_manifest(tmp_path / "wave.csv", macs=5, codes=2)
        report = tmp_path / "rb" / "x.csv"
        run = ["run", str(manifest), "--report", str(report), "--yes"]
        url = ["--base-url", emulator.base_url, "-q"]
        assert invoke([*run, *url]).exit_code == 0

        rolled = invoke(["rollback", str(report), "--yes", *url])
        left = {d["id"] for d in emulator.devices()}
        again = invoke([*run, *url])

        assert rolled.exit_code == 0, rolled.output
        assert "deleted 6 · skipped 1" in rolled.output
        assert (
            f"run journal {report.with_suffix('.journal.sqlite')}: forgot 6 rows"
            in rolled.output
        )
        assert again.exit_code == 0, again.output
        assert "nothing to do" not in again.output
        assert "created 4 · adopted 1 · code_issued 2" in again.output
        # The earlier report is kept aside, said as what it is now: the record of
        # devices the rollback deleted, not what a rollback of it would delete.
        (aside,) = report.parent.glob("x-replaced-*.csv")
        assert (
            f"kept the earlier report {report} as {aside} (it holds 2 activation "
            "codes the new report does not; it is the record of 4 devices this "
            "rollout created that a rollback has deleted since)"
        ) in again.output
        assert "which a rollback of it deletes" not in again.output
        lines = read_csv(report)
        assert Counter(line["status"] for line in lines) == {
            "created": 4,
            "adopted": 1,
            "code_issued": 2,
        }
        held = {d["id"]: d for d in emulator.devices()}
        for line in lines:
            assert line["deviceId"] in held
            if line["status"] != "adopted":
                assert line["deviceId"] not in left
        codes = [line for line in lines if line["status"] == "code_issued"]
        assert all(held[line["deviceId"]]["workspaceId"] for line in codes)

    def test_a_rerun_reports_rollback_clears_the_journal_it_reran_too(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        """run → a row invalid → fixed in the report → rerun → rollback of the
        rerun's report: both journals forget the deleted rows, and the first run
        command provisions its valid rows again."""
        manifest = write_manifest(tmp_path / "wave.csv", macs=3, codes=1)
        text = manifest.read_text().replace(mac(2), "NOTAMAC")
        manifest.write_text(text)
        report = tmp_path / "x.csv"
        run = ["run", str(manifest), "--report", str(report), "--yes"]
        url = ["--base-url", emulator.base_url, "-q"]
        ran = invoke([*run, *url])
        assert ran.exit_code == 1, ran.output
        report.write_text(report.read_text().replace("NOTAMAC", mac(2)))
        reran = invoke(["rerun", str(report), "--yes", *url])
        assert reran.exit_code == 0, reran.output
        rerun_report = tmp_path / "x-rerun.csv"

        rolled = invoke(["rollback", str(rerun_report), "--yes", *url])
        again = invoke([*run, *url])

        assert rolled.exit_code == 0, rolled.output
        assert "deleted 4" in rolled.output
        assert f"run journal {tmp_path / 'x-rerun.journal.sqlite'}: forgot 1 row" in (
            rolled.output
        )
        assert f"run journal {tmp_path / 'x.journal.sqlite'}: forgot 3 rows" in (
            rolled.output
        )
        assert again.exit_code == 1, again.output
        lines = read_csv(report)
        assert Counter(line["status"] for line in lines) == {
            "created": 2,
            "code_issued": 1,
            "invalid": 1,
        }
        held = {d["id"] for d in emulator.devices()}
        assert {line["deviceId"] for line in lines if line["deviceId"]} == held

    def test_a_copys_rollback_says_its_run_still_takes_the_rows_for_done(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        """The report copied to another folder and rolled back there: no run journal
        is beside the copy to forget the rows, so the rollback (and its dry run)
        says so and what to do; doing it (rolling back the original in its own
        folder) makes the same run provision the rows again."""
        manifest = write_manifest(tmp_path / "wave.csv", macs=2, codes=1)
        report = tmp_path / "run" / "x.xlsx"
        run = ["run", str(manifest), "--report", str(report), "--yes"]
        url = ["--base-url", emulator.base_url, "-q"]
        assert invoke([*run, *url]).exit_code == 0
        copy = tmp_path / "copy" / report.name
        copy.parent.mkdir()
        copy.write_bytes(report.read_bytes())

        dry = invoke(["rollback", str(copy), "--dry-run", *url])
        rolled = invoke(["rollback", str(copy), "--yes", *url])
        left = emulator.devices()
        original = invoke(["rollback", str(report), "--yes", *url])
        again = invoke([*run, *url])

        assert dry.exit_code == 0, dry.output
        assert (
            f"Warning: no run journal beside {copy} (x.journal.sqlite): if this "
            "report is a copy, the run that wrote it would still take the 3 rows"
        ) in dry.output
        assert rolled.exit_code == 0, rolled.output
        assert "deleted 3" in rolled.output
        assert (
            f"Warning: no run journal beside {copy} (x.journal.sqlite): if this "
            "report is a copy, the run that wrote it still takes the 3 rows whose "
            "devices are gone for done"
        ) in rolled.output
        assert "Roll back the report it was copied from, in its own folder" in (
            rolled.output
        )
        assert "--fresh" in rolled.output
        assert left == []
        assert original.exit_code == 0, original.output
        assert "already_gone 3" in original.output
        assert "Warning: no run journal" not in original.output
        assert f"run journal {journal_path_for(report)}: forgot 3 rows" in (
            original.output
        )
        assert again.exit_code == 0, again.output
        assert "nothing to do" not in again.output
        assert "created 2 · code_issued 1" in again.output
        assert len(emulator.devices()) == 3

    def test_a_report_moved_aside_by_fresh_is_deleted_and_forgotten(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        """--fresh starts the journal over and adopts the rollout's devices: the
        moved report's rollback deletes them (the journal's "adopted" is not the
        moved report's word) and the journal forgets the rows naming them, so the
        same run creates them again rather than say "nothing to do"."""
        manifest = write_manifest(tmp_path / "wave.csv", macs=2, codes=0)
        report = tmp_path / "x.csv"
        run = ["run", str(manifest), "--report", str(report), "--yes"]
        url = ["--base-url", emulator.base_url, "-q"]
        assert invoke([*run, *url]).exit_code == 0
        assert invoke([*run, "--fresh", *url]).exit_code == 0
        (aside,) = tmp_path.glob("x-replaced-*.csv")

        rolled = invoke(["rollback", str(aside), "--yes", *url])
        again = invoke([*run, *url])

        assert rolled.exit_code == 0, rolled.output
        assert "deleted 2" in rolled.output
        assert f"run journal {journal_path_for(report)}: forgot 2 rows" in (
            rolled.output
        )
        assert "Warning: no run journal" not in rolled.output
        assert again.exit_code == 0, again.output
        assert "nothing to do" not in again.output
        assert "created 2" in again.output
        assert {d["id"] for d in emulator.devices()} == {
            line["deviceId"] for line in read_csv(report)
        }

    def test_a_journal_in_use_is_left_and_the_same_rollback_forgets_later(
        self, emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Another command takes the run's journal once the rollback has deleted
        (it held the journal while deleting): the journal is left as it was, the
        rollback says so (and what to do); the same rollback once the journal is
        free forgets the rows."""
        manifest = write_manifest(tmp_path / "wave.csv", macs=2, codes=1)
        report = tmp_path / "x.csv"
        journal = journal_path_for(report)
        run = ["run", str(manifest), "--report", str(report), "--yes"]
        url = ["--base-url", emulator.base_url, "-q"]
        assert invoke([*run, *url]).exit_code == 0
        taken: list[int | None] = []
        forget = rollback_module.forget_gone

        def taken_first(*args: Any, **kwargs: Any) -> Any:
            taken.append(hold_journal(journal))
            return forget(*args, **kwargs)

        monkeypatch.setattr(rollback_module, "forget_gone", taken_first)
        try:
            busy = invoke(["rollback", str(report), "--yes", *url])
            unchanged = _journal_rows(journal)
            held = emulator.devices()
        finally:
            for lock in taken:
                release_journal(journal, lock)
        monkeypatch.undo()
        later = invoke(["rollback", str(report), "--yes", *url])
        again = invoke([*run, *url])

        assert busy.exit_code == 0, busy.output
        assert "deleted 3" in busy.output
        assert f"run journal {journal} left as it was (another provisioner" in (
            busy.output
        )
        assert "--fresh" in busy.output
        assert unchanged == 3
        assert held == []
        assert later.exit_code == 0, later.output
        assert f"run journal {journal}: forgot 3 rows" in later.output
        assert again.exit_code == 0, again.output
        assert len(emulator.devices()) == 3

    def test_kept_rows_stay_done_and_a_dry_run_forgets_nothing(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        """A code someone used is kept by the rollback and stays done in the run
        journal (the same run keeps it, no second code); a dry run changes no
        journal."""
        manifest = write_manifest(tmp_path / "wave.csv", macs=2, codes=1)
        report = tmp_path / "x.csv"
        journal = journal_path_for(report)
        url = ["--base-url", emulator.base_url, "-q"]
        run = ["run", str(manifest), "--report", str(report), "--yes"]
        assert invoke([*run, *url]).exit_code == 0
        used = read_csv(report)[2]["deviceId"]
        emulator.admin("POST", f"/devices/{used}/activate")

        dry = invoke(["rollback", str(report), "--dry-run", *url])
        rows_after_dry = _journal_rows(journal)
        rolled = invoke(["rollback", str(report), "--yes", *url])
        rows_after = _journal_rows(journal)
        again = invoke([*run, *url])

        assert dry.exit_code == 0, dry.output
        assert rows_after_dry == 3
        assert rolled.exit_code == 0, rolled.output
        assert "deleted 2 · kept 1" in rolled.output
        assert rows_after == 1
        assert again.exit_code == 0, again.output
        assert "nothing to do" not in again.output
        lines = read_csv(report)
        assert [line["status"] for line in lines] == [
            "created",
            "created",
            "code_issued",
        ]
        assert lines[2]["deviceId"] == used
        assert {d["id"] for d in emulator.devices()} == {
            line["deviceId"] for line in lines
        }


class TestRenewedReports:
    """
    ``codes --renew`` replaces a run's codes and writes ``<report>-renewed``: its
    rollback and the rollback of the report it renewed leave no working code and
    no run journal that takes a rolled-back row for done.
    """

    def test_a_renewed_reports_rollback_makes_the_runs_journal_forget_its_rows(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        """run → codes --renew → rollback of the renewed report: the renewed
        codes' devices are deleted and the run's journal (beside the report the
        renewal read) forgets those rows, so the same run issues them codes
        again rather than say "nothing to do"."""
        report, url = _renewed_rollout(emulator, tmp_path)
        renewed = tmp_path / "s-renewed.csv"
        renewed_devices = {line["deviceId"] for line in read_csv(renewed)}

        rolled = invoke(["rollback", str(renewed), "--yes", *url])
        left = emulator.devices()
        again = invoke(
            ["run", str(tmp_path / "codes.csv"), "--report", str(report), "--yes", *url]
        )

        assert rolled.exit_code == 0, rolled.output
        assert "deleted 2" in rolled.output
        assert f"run journal {journal_path_for(report)}: forgot 2 rows" in (
            rolled.output
        )
        assert "Warning: no run journal" not in rolled.output
        assert left == []
        assert again.exit_code == 0, again.output
        assert "nothing to do" not in again.output
        lines = read_csv(report)
        assert [line["status"] for line in lines] == ["code_issued", "code_issued"]
        held = {d["id"] for d in emulator.devices()}
        assert held == {line["deviceId"] for line in lines}
        assert len(held) == 2
        assert not held & renewed_devices

    def test_the_renewed_reports_rollback_names_the_renewal_holding_its_codes(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        """run → codes --renew → rollback of the run's report: its codes' devices
        are gone already (the renewal voided them); the rollback says, on stderr
        and in each row's reason, that the renewed report holds their working
        codes, and rolling that one back leaves the org empty."""
        report, url = _renewed_rollout(emulator, tmp_path)
        renewed = tmp_path / "s-renewed.csv"
        renewed_devices = {line["deviceId"] for line in read_csv(renewed)}

        rolled = invoke(["rollback", str(report), "--yes", *url])
        left = {d["id"] for d in emulator.devices()}
        then = invoke(["rollback", str(renewed), "--yes", *url])

        assert rolled.exit_code == 0, rolled.output
        assert "already_gone 2" in rolled.output
        assert (
            f"Warning: the codes of rows 2, 3 were renewed (codes --renew) into "
            f"{renewed}: this rollback does not delete" in rolled.stderr
        )
        assert f"provisioner rollback {renewed}" in rolled.stderr
        reasons = [
            line["rollbackReason"] for line in read_csv(tmp_path / "s-rollback.csv")
        ]
        assert all(
            "its code was renewed (codes --renew) into s-renewed.csv" in reason
            for reason in reasons
        ), reasons
        assert left == renewed_devices
        assert then.exit_code == 0, then.output
        assert "deleted 2" in then.output
        assert "were renewed" not in then.stderr
        assert emulator.devices() == []


def _renewed_rollout(emulator: Emulator, tmp_path: Path) -> tuple[Path, list[str]]:
    """
    Two code rows by person email run to ``s.csv``, then, 25 days on, renewed by
    ``codes --renew`` into ``s-renewed.csv``; the report and the connection flags.
    """
    manifest = tmp_path / "codes.csv"
    emails = [person["emails"][0] for person in ORG["people"][:2]]
    manifest.write_text(
        "personEmail,model\n" + "".join(f"{email},Cisco 8865\n" for email in emails),
        encoding="utf-8",
    )
    report = tmp_path / "s.csv"
    url = ["--base-url", emulator.base_url, "-q"]
    ran = invoke(["run", str(manifest), "--report", str(report), "--yes", *url])
    assert ran.exit_code == 0, ran.output
    emulator.admin("POST", "/clock", {"advance_seconds": 25 * 86400})
    renewal = invoke(["codes", str(report), "--renew", "--yes", *url])
    assert renewal.exit_code == 0, renewal.output
    assert "renewed 2 codes" in renewal.output
    return report, url


def _journal_rows(journal: Path) -> int:
    with contextlib.closing(sqlite3.connect(journal)) as db:
        return int(db.execute("SELECT COUNT(*) FROM rows").fetchone()[0])


def _deletes(emulator: Emulator, since: int) -> int:
    items = emulator.admin("GET", f"/requests?since={since}")["items"]
    return sum(1 for e in items if e["method"] == "DELETE" and e["status"] == 204)


@pytest.fixture(name="partner_emulator")
def _partner_emulator() -> Iterator[str]:
    """org1 and org2 beside the seeded org: the partner token manages org1 only,
    another partner token both (it makes the report)."""
    args = ["--orgs", "2", "--partner", f"{PARTNER}=org1"]
    args += ["--partner", f"{EVERY_ORG}=org1,org2"]
    with run_in_subprocess(args) as (_process, base_url):
        yield base_url


def test_partner_rollback_confirms_every_org_and_fails_only_the_refused_ones(
    partner_emulator: str, tmp_path: Path
) -> None:
    """
    A partner run's report rolled back with a token that may not act for one of its
    orgs: the confirmation lists every org with its name, id and deletions (not the
    token's org alone); the refused org's rows fail with its reason and no advice to
    retry, it keeps its devices, and the other orgs' devices all go.
    """
    made, report = run_partner_manifest(
        partner_emulator, tmp_path, {None: 2, "org1": 3, "org2": 2}, token=EVERY_ORG
    )
    assert made.exit_code == 0, made.output
    org1, org2 = org_id_for("org1"), org_id_for("org2")
    assert [len(org_devices(partner_emulator, k)) for k in ("org1", "org2")] == [3, 2]
    home_macs = {r["mac"] for r in read_csv(Path(f"{report}.csv")) if not r["orgId"]}
    assert home_macs <= {d["mac"] for d in org_devices(partner_emulator, None)}

    result = CliRunner().invoke(
        main,
        ["rollback", f"{report}.csv", "--base-url", partner_emulator, "--yes", "-q"],
        env={"WEBEX_ACCESS_TOKEN": PARTNER},
        catch_exceptions=False,
    )

    assert result.exit_code == 1, result.output
    confirmation = result.stderr
    assert "  org:  " not in confirmation
    assert "  delete 5 devices" in confirmation
    assert "  in 3 orgs:" in confirmation
    assert f"{HOME['orgName']} ({HOME['orgId']}): 2 rows: delete 2 devices" in (
        confirmation
    )
    assert f"Customer org1 ({org1}): 3 rows: delete 3 devices" in confirmation
    assert f"{org2}: 2 rows will fail: the token may not act for this org" in (
        confirmation
    )
    rows = read_csv(report.parent / "partner-rollback.csv")
    assert Counter((r["orgId"], r["rollback"]) for r in rows) == {
        ("", "deleted"): 2,
        (org1, "deleted"): 3,
        (org2, "failed"): 2,
    }
    for row in rows:
        if row["orgId"] == org2:
            assert row["rollbackReason"].startswith(
                "check org: the token may not act for this org (HTTP 403"
            )
            assert "a partner admin's that manages it" in row["rollbackReason"]
            assert "run the same command again" not in row["rollbackReason"]
            assert row["rollbackHttpStatus"] == "403"
    assert "retry them" not in result.stderr
    assert "a retry with this token cannot delete them" in result.stderr
    # What the orgs hold: the refused org keeps its devices, the others none of
    # the run's.
    assert not home_macs & {d["mac"] for d in org_devices(partner_emulator, None)}
    assert org_devices(partner_emulator, "org1") == []
    assert len(org_devices(partner_emulator, "org2")) == 2


def _partner(args: Sequence[str], token: str = EVERY_ORG) -> Result:
    return CliRunner().invoke(
        main, list(args), env={"WEBEX_ACCESS_TOKEN": token}, catch_exceptions=False
    )


def _org_report(report: Path, key: str) -> Path:
    """The CSV report of one org of a --split-by-org run into ``report``."""
    wanted = org_id_for(key)
    for path in sorted(report.parent.glob(f"{report.name}-org-*.csv")):
        if "-rerun" not in path.name and read_csv(path)[0]["orgId"] == wanted:
            return path
    raise AssertionError(f"no report of {key} beside {report}")


def _held(base_url: str) -> dict[str | None, set[str]]:
    return {
        key: {device["id"] for device in org_devices(base_url, key)}
        for key in (None, "org1", "org2")
    }


class TestAnOrgsReport:
    """
    One org's report of a partner run (--split-by-org) has no journal beside it: its
    rollback (and that of its rerun's report) makes the combined run's journal
    forget that org's deleted rows, so the same run command provisions that org
    again and leaves the others as they are; the combined report's rollback reads
    the journals of the org reports' reruns.
    """

    ROWS: dict[str | None, int] = {None: 2, "org1": 3, "org2": 2}  # noqa: RUF012

    def test_the_same_run_provisions_the_rolled_back_org_again(
        self, partner_emulator: str, tmp_path: Path
    ) -> None:
        """Rolled back: org1's devices go and the combined run's journal forgets
        them; the same run creates org1's devices again, the others untouched."""
        url = ["--base-url", partner_emulator, "-q"]
        made, report = run_partner_manifest(
            partner_emulator, tmp_path, self.ROWS, "--split-by-org", token=EVERY_ORG
        )
        assert made.exit_code == 0, made.output
        before = _held(partner_emulator)
        org1 = _org_report(report, "org1")

        rolled = _partner(["rollback", str(org1), "--yes", *url])
        emptied = org_devices(partner_emulator, "org1")
        again, _ = run_partner_manifest(
            partner_emulator, tmp_path, self.ROWS, "--split-by-org", token=EVERY_ORG
        )

        assert rolled.exit_code == 0, rolled.output
        assert "deleted 3" in rolled.output
        assert (
            f"run journal {journal_path_for(report)}: forgot 3 rows whose devices "
            "are gone"
        ) in rolled.output
        assert "Warning" not in rolled.output
        assert emptied == []
        assert again.exit_code == 0, again.output
        assert "nothing to do" not in again.output
        after = _held(partner_emulator)
        assert after[None] == before[None]
        assert after["org2"] == before["org2"]
        assert len(after["org1"]) == 3
        assert not after["org1"] & before["org1"]
        rows = read_csv(Path(f"{report}.csv"))
        assert {r["deviceId"] for r in rows if r["orgId"] == org_id_for("org1")} == (
            after["org1"]
        )

    def test_a_rerun_of_the_org_report_rolled_back_is_provisioned_again(
        self, partner_emulator: str, tmp_path: Path
    ) -> None:
        """org2's report, one row fixed and rerun, then the rerun's report rolled
        back: the combined run's journal forgets org2's row it had created too, and
        the same run creates it again."""
        manifest = write_org_manifest(tmp_path / "partner.csv", self.ROWS)
        lines = read_csv(manifest)
        bad = next(r["mac"] for r in lines if r["orgId"] == org_id_for("org2"))
        manifest.write_text(manifest.read_text().replace(bad, "NOTAMAC"))
        report = tmp_path / "out" / "partner"
        url = ["--base-url", partner_emulator, "-q"]
        run = ["run", str(manifest), "--report", str(report), "--split-by-org", *url]
        assert _partner(run).exit_code == 1
        org2 = _org_report(report, "org2")
        org2.write_text(org2.read_text().replace("NOTAMAC", bad))
        reran = _partner(["rerun", str(org2), *url])
        assert reran.exit_code == 0, reran.output
        before = _held(partner_emulator)
        assert len(before["org2"]) == 2

        rolled = _partner(
            ["rollback", str(org2.with_stem(f"{org2.stem}-rerun")), "--yes", *url]
        )
        again = _partner(run)

        assert rolled.exit_code == 0, rolled.output
        assert "deleted 2" in rolled.output
        assert f"run journal {journal_path_for(report)}: forgot 1 row" in (
            rolled.output
        )
        assert again.exit_code == 1, again.output
        after = _held(partner_emulator)
        assert after[None] == before[None]
        assert after["org1"] == before["org1"]
        assert len(after["org2"]) == 1
        assert not after["org2"] & before["org2"]

    def test_the_combined_rollback_deletes_what_an_org_reports_rerun_made(
        self, partner_emulator: str, tmp_path: Path
    ) -> None:
        """org2 refused in the run, its report rerun with a token that may act for
        it, the same run again: the combined report names org2's devices as the
        rerun made them, and its rollback deletes every org's devices."""
        url = ["--base-url", partner_emulator, "-q"]
        made, report = run_partner_manifest(
            partner_emulator, tmp_path, self.ROWS, "--split-by-org"
        )
        assert made.exit_code == 1, made.output
        reran = _partner(["rerun", str(_org_report(report, "org2")), *url])
        assert reran.exit_code == 0, reran.output
        again, _ = run_partner_manifest(
            partner_emulator, tmp_path, self.ROWS, "--split-by-org", token=EVERY_ORG
        )
        assert again.exit_code == 0, again.output

        rolled = _partner(["rollback", f"{report}.csv", "--yes", *url])

        assert rolled.exit_code == 0, rolled.output
        assert "deleted 7" in rolled.output
        assert _held(partner_emulator) == {None: set(), "org1": set(), "org2": set()}

    def test_a_copys_rollback_warns_not_to_roll_back_the_combined_report(
        self, partner_emulator: str, tmp_path: Path
    ) -> None:
        """An org's report copied elsewhere: the warning says to roll it back in
        its own folder, never the combined report (every org's devices)."""
        made, report = run_partner_manifest(
            partner_emulator, tmp_path, self.ROWS, "--split-by-org", token=EVERY_ORG
        )
        assert made.exit_code == 0, made.output
        org1 = _org_report(report, "org1")
        copy = tmp_path / "sent" / org1.name
        copy.parent.mkdir()
        copy.write_bytes(org1.read_bytes())

        rolled = _partner(
            ["rollback", str(copy), "--yes", "--base-url", partner_emulator]
        )

        assert rolled.exit_code == 0, rolled.output
        assert (
            f"Warning: {copy.name} is named as one org's report of a partner run"
        ) in rolled.stderr
        assert "not the combined report partner.csv" in rolled.stderr
        assert "copied from" not in rolled.stderr
