"""
The ``run`` and ``rerun`` commands end to end against the emulator in a subprocess.

CliRunner drives the commands in this process (each command enters its own event loop,
so the emulator runs in a separate process); the crash and Ctrl-C tests run the CLI
as a subprocess too, so a real SIGKILL or SIGINT can hit it mid-run.
"""

from __future__ import annotations

import csv
import dataclasses
import importlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import emulated
import openpyxl
import pytest
from click.testing import CliRunner, Result
from paths import EMULATOR_ORG

from provisioner.cli import confirm, main
from provisioner.cli.common import (
    ConnectionOptions,
    build_settings,
    exit_code_for,
    read_token,
    resolve_base_url,
)
from provisioner.cli.rates import MaxRates
from provisioner.cli.run import rerun_report_path
from provisioner.emulator.config import DEFAULT_TOKEN
from provisioner.emulator.directory import org_id_for
from provisioner.emulator.harness import run_in_subprocess
from provisioner.errors import ConfigError
from provisioner.intake.mac import normalise_mac as normalise
from provisioner.models import Outcome, Status
from provisioner.report.history import load_history
from provisioner.run.journal import read_history
from provisioner.settings import (
    COMMERCIAL_BASE_URL,
    FEDRAMP_BASE_URL,
    RetryPolicy,
    Settings,
)

ORG = json.loads((EMULATOR_ORG).read_text())
WORKSPACES = [w["id"] for w in ORG["workspaces"]]
PEOPLE = [p["id"] for p in ORG["people"]]
MISSING_WORKSPACE = "Y2lzY29zcGFyazovL3VzL1BMQUNFL25vLXN1Y2gtd29ya3NwYWNl"
# The module, not the command of the same name that provisioner.cli exports.
run_module = importlib.import_module("provisioner.cli.run")


class Emulator(emulated.Emulator):
    """
    The shared emulator handle, plus the API reads and call counts these tests use.
    """

    def api_get(self, path: str) -> Any:
        request = urllib.request.Request(
            self.base_url + path, headers={"Authorization": f"Bearer {DEFAULT_TOKEN}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def api_delete(self, path: str) -> None:
        request = urllib.request.Request(
            self.base_url + path,
            method="DELETE",
            headers={"Authorization": f"Bearer {DEFAULT_TOKEN}"},
        )
        with urllib.request.urlopen(request, timeout=10):
            pass

    def calls(self, route: str) -> int:
        by_route: dict[str, dict[str, int]] = self.admin("GET", "/stats")["by_route"]
        return sum(by_route.get(route, {}).values())


@pytest.fixture(name="emulator_process", scope="module")
def _emulator_process() -> Iterator[str]:
    with run_in_subprocess() as (_process, base_url):
        yield base_url


@pytest.fixture(name="emulator")
def _emulator(emulator_process: str) -> Emulator:
    emulator = Emulator(emulator_process)
    emulator.reset()
    return emulator


def mac(n: int) -> str:
    return f"AA:BB:CC:{n >> 16 & 0xFF:02X}:{n >> 8 & 0xFF:02X}:{n & 0xFF:02X}"


def write_manifest(path: Path, rows: Sequence[dict[str, str]]) -> Path:
    columns = ["mac", "model", "workspaceId", "personId", "tags", "note"]
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in columns})
    return path


def phone_rows(count: int, start: int = 1) -> list[dict[str, str]]:
    return [
        {
            "mac": mac(start + i),
            "model": "Cisco 8851",
            "workspaceId": WORKSPACES[i % len(WORKSPACES)],
            "tags": "lobby;floor-1",
            "note": f"desk {start + i}",
        }
        for i in range(count)
    ]


def read_report(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as file:
        return list(csv.DictReader(file))


def read_xlsx_report(path: Path) -> list[dict[str, str]]:
    """The Report sheet's rows by column name, every cell as text ("" for empty)."""
    sheet = openpyxl.load_workbook(path, read_only=True)["Report"]
    lines = [
        ["" if value is None else str(value) for value in line]
        for line in sheet.iter_rows(values_only=True)
    ]
    return [dict(zip(lines[0], line, strict=True)) for line in lines[1:]]


def invoke(
    args: Sequence[str], *, token: str | None = DEFAULT_TOKEN, **env: str
) -> Result:
    environment = dict(env)
    if token is not None:
        environment["WEBEX_ACCESS_TOKEN"] = token
    return CliRunner().invoke(main, list(args), env=environment, catch_exceptions=False)


class TestRun:
    def test_clean_run_creates_every_row_and_exits_0(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        """A good manifest ends 0 with one report row per manifest row, all created."""
        manifest = write_manifest(tmp_path / "phones.csv", phone_rows(6))
        report = tmp_path / "out" / "phones"

        result = invoke(
            [
                "run",
                str(manifest),
                "--report",
                str(report),
                "--base-url",
                emulator.base_url,
            ]
        )

        rows = read_report(report.with_suffix(".csv"))
        assert result.exit_code == 0, result.output
        assert report.with_suffix(".xlsx").exists()
        assert [r["row"] for r in rows] == ["2", "3", "4", "5", "6", "7"]
        assert {r["status"] for r in rows} == {"created"}
        assert [r["note"] for r in rows] == [f"desk {n}" for n in range(1, 7)]
        assert len(emulator.devices()) == 6
        assert "created 6" in result.stdout
        assert str(report.with_suffix(".csv")) in result.stdout

    def test_faults_end_with_one_device_per_row_and_exact_tags(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        """Under a rate limit, 10% 5xx, 5% dropped connections and 3% ambiguous creates,
        every row ends created or adopted once, with one device per MAC and its tags."""
        rows = phone_rows(40)
        for i, row in enumerate(rows):
            row["tags"] = f"wave-1;desk-{i}"
        manifest = write_manifest(tmp_path / "phones.csv", rows)
        emulator.admin(
            "POST",
            "/faults",
            {
                "rate_limit": 60,
                "burst": 10,
                "fault_rate": 0.10,
                "drop_rate": 0.05,
                "ambiguous_rate": 0.03,
                "seed": 7,
            },
        )

        result = invoke(
            ["run", str(manifest), "--report", str(tmp_path / "r.csv")]
            + ["--base-url", emulator.base_url, "--quiet"]
        )

        report = read_report(tmp_path / "r.csv")
        devices = emulator.devices()
        by_mac = {d["mac"]: d for d in devices}
        expected_tags = {
            normalise(r["mac"]): sorted(r["tags"].split(";")) for r in rows
        }
        assert result.exit_code == 0, result.output
        assert [r["row"] for r in report] == [str(n) for n in range(2, 42)]
        assert {r["status"] for r in report} <= {"created", "adopted"}
        assert len(devices) == len(by_mac) == 40
        assert {m: sorted(d["tags"]) for m, d in by_mac.items()} == expected_tags
        assert {r["deviceId"] for r in report} == {d["id"] for d in devices}
        answered = Counter(
            status
            for counts in emulator.admin("GET", "/stats")["by_route"].values()
            for status, n in counts.items()
            for _ in range(n)
        )
        assert answered["dropped"] > 0  # the faults did happen
        assert sum(n for status, n in answered.items() if status.startswith("5")) > 0

    def test_default_report_paths_are_under_reports(
        self, emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without --report, both reports/<stem>-report.xlsx and .csv are written."""
        monkeypatch.chdir(tmp_path)
        write_manifest(tmp_path / "site.csv", phone_rows(2))

        result = invoke(["run", "site.csv", "--base-url", emulator.base_url])

        assert result.exit_code == 0, result.output
        assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == [
            "site-report.csv",
            "site-report.journal.sqlite",
            "site-report.xlsx",
        ]

    def test_a_failed_row_makes_exit_1(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        """A row whose workspace does not exist fails; the others are created; exit 1."""
        rows = phone_rows(3)
        rows[1]["workspaceId"] = MISSING_WORKSPACE
        manifest = write_manifest(tmp_path / "phones.csv", rows)
        report = tmp_path / "phones.csv-report.csv"

        result = invoke(
            [
                "run",
                str(manifest),
                "--report",
                str(report),
                "--base-url",
                emulator.base_url,
            ]
        )

        statuses = [r["status"] for r in read_report(report)]
        assert result.exit_code == 1, result.output
        assert statuses == ["created", "failed", "created"]
        assert read_report(report)[1]["error"]
        assert "failed 1" in result.stdout
        assert f"provisioner rerun {report}" in result.stderr

    def test_invalid_rows_are_reported_without_calls(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        """A row with a bad MAC is invalid in the report, never sent, and exit is 1."""
        rows = phone_rows(2)
        rows[0]["mac"] = "not-a-mac"
        manifest = write_manifest(tmp_path / "phones.csv", rows)
        report = tmp_path / "r.csv"

        result = invoke(
            [
                "run",
                str(manifest),
                "--report",
                str(report),
                "--base-url",
                emulator.base_url,
            ]
        )

        assert result.exit_code == 1, result.output
        assert [r["status"] for r in read_report(report)] == ["invalid", "created"]
        assert len(emulator.devices()) == 1

    def test_dry_run_writes_nothing_to_the_api(
        self, emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """--dry-run makes no POST/PATCH/DELETE and writes a separate -dry-run report."""
        monkeypatch.chdir(tmp_path)
        write_manifest(tmp_path / "site.csv", phone_rows(4))

        result = invoke(
            ["run", "site.csv", "--dry-run", "--base-url", emulator.base_url]
        )

        rows = read_report(tmp_path / "reports" / "site-report-dry-run.csv")
        assert result.exit_code == 0, result.output
        assert emulator.write_calls() == 0
        assert emulator.devices() == []
        assert {r["status"] for r in rows} == {"planned"}
        assert not (tmp_path / "reports" / "site-report.csv").exists()
        assert not (tmp_path / "reports" / "site-report.journal.sqlite").exists()
        assert "Dry run" in result.stdout

    def test_a_dry_run_after_a_run_plans_what_the_run_reports_now(
        self, emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """After a run, its dry run reads the run's journal (beside the run's report):
        the finished rows are planned as the run reports them again, and the same
        run then reports what the dry run planned, with no write."""
        monkeypatch.chdir(tmp_path)
        rows = [
            *phone_rows(2),
            {"model": emulated.CODE_MODEL, "workspaceId": WORKSPACES[9]},
        ]
        write_manifest(tmp_path / "site.csv", rows)
        run_args = ["run", "site.csv", "--base-url", emulator.base_url]
        journal = tmp_path / "reports" / "site-report.journal.sqlite"
        invoke(run_args)
        writes = emulator.write_calls()

        dry = invoke([*run_args, "--dry-run"])
        plans = [
            r["plan"]
            for r in read_report(tmp_path / "reports" / "site-report-dry-run.csv")
        ]
        kept = [r.kind for r in read_history(journal)]
        again = invoke(run_args)

        statuses = [
            r["status"] for r in read_report(tmp_path / "reports" / "site-report.csv")
        ]
        assert (dry.exit_code, again.exit_code) == (0, 0), dry.output + again.output
        assert statuses == ["created", "created", "code_issued"]
        assert [p.split(": ")[1].split(" (")[0] for p in plans] == [
            f"an earlier run into this report ended it {status}" for status in statuses
        ]
        assert emulator.write_calls() == writes
        # The dry run's report tells the story so far; the journal keeps none of it.
        dry_report = tmp_path / "reports" / "site-report-dry-run.xlsx"
        assert [r.kind for r in load_history(dry_report)] == ["run", "dry run"]
        assert kept == ["run"]

    def test_a_dry_run_with_fresh_plans_the_start_over_and_names_it(
        self, emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """--dry-run --fresh plans what --fresh would do (every device found again,
        adopted), and the command it names to do it keeps --fresh."""
        monkeypatch.chdir(tmp_path)
        write_manifest(tmp_path / "site.csv", phone_rows(2))
        run_args = ["run", "site.csv", "--base-url", emulator.base_url]
        invoke(run_args)

        dry = invoke([*run_args, "--dry-run", "--fresh"])

        plans = [
            r["plan"]
            for r in read_report(tmp_path / "reports" / "site-report-dry-run.csv")
        ]
        assert dry.exit_code == 0, dry.output
        assert all(p.startswith("would adopt device") for p in plans), plans
        assert "provisioner run site.csv --fresh --base-url" in dry.stderr

    def test_the_same_command_again_redoes_nothing(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        """A second identical run finds every row done in the journal and makes no write."""
        manifest = write_manifest(tmp_path / "phones.csv", phone_rows(3))
        args = [
            "run",
            str(manifest),
            "--report",
            str(tmp_path / "r.csv"),
            "--base-url",
            emulator.base_url,
        ]
        invoke(args)
        writes_after_first = emulator.write_calls()

        result = invoke(args)

        assert result.exit_code == 0, result.output
        assert emulator.write_calls() == writes_after_first
        assert len(emulator.devices()) == 3
        assert {r["status"] for r in read_report(tmp_path / "r.csv")} == {"created"}

    def test_fresh_starts_over(self, emulator: Emulator, tmp_path: Path) -> None:
        """--fresh forgets the journal: existing devices are found again and adopted."""
        manifest = write_manifest(tmp_path / "phones.csv", phone_rows(2))
        args = [
            "run",
            str(manifest),
            "--report",
            str(tmp_path / "r.csv"),
            "--base-url",
            emulator.base_url,
        ]
        invoke(args)

        result = invoke([*args, "--fresh"])

        assert result.exit_code == 0, result.output
        assert len(emulator.devices()) == 2
        assert {r["status"] for r in read_report(tmp_path / "r.csv")} == {"adopted"}

    def test_replace_mode_leaves_tags_alone_when_the_cell_is_empty(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        """--tag-mode replace with an empty tags cell sends no tag call: the device
        keeps the tags it has (an empty cell is "no tags to apply", not "no tags")."""
        tagged = phone_rows(2)
        first = invoke(
            ["run", str(write_manifest(tmp_path / "first.csv", tagged))]
            + ["--report", str(tmp_path / "first.csv.report.csv")]
            + ["--base-url", emulator.base_url]
        )
        untagged = [{**row, "tags": ""} for row in tagged]
        patches = emulator.calls("PATCH /v1/devices/{deviceId}")

        result = invoke(
            ["run", str(write_manifest(tmp_path / "again.csv", untagged))]
            + ["--report", str(tmp_path / "again-report.csv")]
            + ["--base-url", emulator.base_url, "--tag-mode", "replace"]
        )

        report = read_report(tmp_path / "again-report.csv")
        assert (first.exit_code, result.exit_code) == (0, 0), result.output
        assert [r["status"] for r in report] == ["adopted", "adopted"]
        assert [sorted(d["tags"]) for d in emulator.devices()] == [
            ["floor-1", "lobby"]
        ] * 2
        assert emulator.calls("PATCH /v1/devices/{deviceId}") == patches == 2

    def test_a_remote_org_needs_yes_off_a_terminal(
        self, emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Against an org not on this machine, a run in a script shows what it would
        change, writes nothing and exits 2 without --yes; with --yes it runs."""
        monkeypatch.setattr(confirm, "is_loopback_target", lambda _target: False)
        rows = phone_rows(2)
        rows.append({"model": "Cisco 8865", "workspaceId": WORKSPACES[3]})
        manifest = write_manifest(tmp_path / "phones.csv", rows)
        args = ["run", str(manifest), "--report", str(tmp_path / "r.csv")]
        args += ["--base-url", emulator.base_url]

        refused = invoke(args)
        writes_refused = emulator.write_calls()
        report_after_refusal = (tmp_path / "r.csv").exists()
        accepted = invoke([*args, "--yes"])

        assert refused.exit_code == 2, refused.output
        assert "create up to 2 devices by MAC" in refused.stderr
        assert "issue up to 1 activation code " in refused.stderr
        assert "set tags on up to 2 devices (tag mode add)" in refused.stderr
        assert "--yes" in refused.stderr
        assert "Traceback" not in refused.output
        assert writes_refused == 0
        assert not report_after_refusal
        assert accepted.exit_code == 0, accepted.output
        assert len(emulator.devices()) == 3

    def test_a_rows_org_id_wins_over_the_flag(self, tmp_path: Path) -> None:
        """A row's own orgId column sends its calls to that org; rows without one go
        to --org-id's org (a partner admin's manifest over several customers)."""
        partner = ["--partner", f"{DEFAULT_TOKEN}=org1,org2", "--orgs", "2"]
        with run_in_subprocess(partner) as (_process, base_url):
            other = Emulator(base_url)
            org1, org2 = org_id_for("org1"), org_id_for("org2")
            ws1 = other.api_get(f"/workspaces?orgId={org1}")["items"][0]["id"]
            ws2 = other.api_get(f"/workspaces?orgId={org2}")["items"][0]["id"]
            manifest = tmp_path / "customers.csv"
            manifest.write_text(
                "mac,model,workspaceId,orgId\n"
                f"{mac(901)},Cisco 8851,{ws2},{org2}\n"
                f"{mac(902)},Cisco 8851,{ws1},\n",
                encoding="utf-8",
            )

            result = invoke(
                ["run", str(manifest), "--report", str(tmp_path / "r.csv")]
                + ["--base-url", base_url, "--org-id", org1]
            )

            creates = {
                e["mac"]: e["org"]
                for e in other.admin("GET", "/requests")["items"]
                if e["route"] == "POST /v1/devices"
            }
        report = read_report(tmp_path / "r.csv")
        assert result.exit_code == 0, result.output
        assert [r["status"] for r in report] == ["created", "created"]
        assert creates == {normalise(mac(901)): org2, normalise(mac(902)): org1}

    def test_log_file_has_one_event_per_api_call(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        """--log-file gets one JSON event per request the API received, each with its
        method, path, status, attempt, timing, tracking id and row."""
        rows = phone_rows(2)
        rows[1]["tags"] = ""
        manifest = write_manifest(tmp_path / "phones.csv", rows)
        log_file = tmp_path / "run.jsonl"

        result = invoke(
            [
                "run",
                str(manifest),
                "--report",
                str(tmp_path / "r.csv"),
                "--base-url",
                emulator.base_url,
                "--log-file",
                str(log_file),
            ]
        )

        events = [json.loads(line) for line in log_file.read_text().splitlines()]
        calls = [e for e in events if e["event"] == "api_call_finished"]
        by_route = emulator.admin("GET", "/stats")["by_route"]
        received = Counter(
            (route.split()[0], int(status))
            for route, counts in by_route.items()
            for status, n in counts.items()
            for _ in range(n)
        )
        logged = Counter((e["method"], e["status"]) for e in calls)
        assert result.exit_code == 0, result.output
        # One event per request the API received: the first calls (who the token is,
        # its org, the catalogue), 2 creates, 1 PATCH.
        assert logged == received
        assert sum(received.values()) == 6
        assert len({e["tracking_id"] for e in calls}) == len(calls)
        for event in calls:
            assert event["level"] == "info"
            assert event["tracking_id"].startswith("PROVISIONER_")
            assert event["path"].startswith("/v1/")
            assert event["attempt"] == 1
            assert event["elapsed_ms"] >= 0
            assert event["timestamp"].endswith("Z")
        row_calls = [(e.get("row"), e["method"]) for e in calls if e.get("row")]
        assert sorted(row_calls) == [(2, "PATCH"), (2, "POST"), (3, "POST")]


class TestRunRefusesToStart:
    def test_missing_manifest_exits_2(self, tmp_path: Path) -> None:
        """A manifest that does not exist is a clear error and exit 2, no traceback."""

        result = invoke(
            ["run", str(tmp_path / "nope.csv"), "--base-url", "http://127.0.0.1:9/v1"]
        )

        assert result.exit_code == 2
        assert "nope.csv" in result.stderr
        assert "Traceback" not in result.output

    def test_manifest_without_required_columns_exits_2(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        """A manifest with no model column cannot start: exit 2 naming the column."""
        manifest = tmp_path / "bad.csv"
        manifest.write_text("colour,size\nred,big\n")

        result = invoke(["run", str(manifest), "--base-url", emulator.base_url])

        assert result.exit_code == 2
        assert "Error:" in result.stderr
        assert emulator.write_calls() == 0

    def test_missing_token_exits_2_and_says_how_to_give_one(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        """Without a token the run stops with exit 2 naming the variable and the flag."""
        manifest = write_manifest(tmp_path / "phones.csv", phone_rows(1))

        result = invoke(
            ["run", str(manifest), "--base-url", emulator.base_url], token=None
        )

        assert result.exit_code == 2
        assert "WEBEX_ACCESS_TOKEN" in result.stderr
        assert "--token-file" in result.stderr

    def test_non_loopback_http_is_refused(self, tmp_path: Path) -> None:
        """Plain http:// to a non-loopback host is refused with exit 2."""
        manifest = write_manifest(tmp_path / "phones.csv", phone_rows(1))

        result = invoke(
            ["run", str(manifest), "--base-url", "http://api.example.com/v1"]
        )

        assert result.exit_code == 2
        assert "Refusing plain http://" in result.stderr

    def test_wrong_token_exits_2_without_printing_it(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        """A 401 at the start stops the run: exit 2, 'check the token', never the token."""
        manifest = write_manifest(tmp_path / "phones.csv", phone_rows(2))
        wrong = "wrong-token-4242-abcdef"

        result = invoke(
            [
                "run",
                str(manifest),
                "--report",
                str(tmp_path / "r.csv"),
                "--base-url",
                emulator.base_url,
            ],
            token=wrong,
        )

        assert result.exit_code == 2
        assert "check the token" in result.stderr
        assert wrong not in result.output
        assert emulator.write_calls() == 0
        assert not (tmp_path / "r.csv").exists()

    def test_base_url_and_cloud_together_exit_2(self, tmp_path: Path) -> None:
        """--base-url and --cloud are two answers to one question: exit 2."""
        manifest = write_manifest(tmp_path / "phones.csv", phone_rows(1))

        result = invoke(
            [
                "run",
                str(manifest),
                "--cloud",
                "commercial",
                "--base-url",
                "https://webexapis.com/v1",
            ]
        )

        assert result.exit_code == 2
        assert "either --base-url or --cloud" in result.stderr

    def test_unknown_report_extension_exits_2(self, tmp_path: Path) -> None:
        """--report with an extension other than .csv/.xlsx is refused with exit 2."""
        manifest = write_manifest(tmp_path / "phones.csv", phone_rows(1))

        result = invoke(
            [
                "run",
                str(manifest),
                "--report",
                str(tmp_path / "r.json"),
                "--base-url",
                "http://127.0.0.1:9/v1",
            ]
        )

        assert result.exit_code == 2
        assert "r.json" in result.stderr

    def test_unreachable_api_exits_2(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Nothing listening at the base URL: exit 2 with a message, no traceback."""
        manifest = write_manifest(tmp_path / "phones.csv", phone_rows(1))
        build = run_module.build_settings

        def build_with_quick_retries(*args: Any, **kwargs: Any) -> Settings:
            # The default policy retries a refused connection for half a minute.
            quick = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.01)
            return dataclasses.replace(build(*args, **kwargs), retry=quick)

        monkeypatch.setattr(run_module, "build_settings", build_with_quick_retries)

        result = invoke(
            [
                "run",
                str(manifest),
                "--report",
                str(tmp_path / "r.csv"),
                "--base-url",
                "http://127.0.0.1:9/v1",
            ]
        )

        assert result.exit_code == 2
        assert "Cannot reach the API" in result.stderr
        assert "Traceback" not in result.output


class TestRerun:
    def test_rerun_after_fixing_a_value_creates_the_row(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        """Fixing a failed row's workspace id in the report and re-running creates it."""
        rows = phone_rows(3)
        rows[2]["workspaceId"] = MISSING_WORKSPACE
        manifest = write_manifest(tmp_path / "phones.csv", rows)
        report = tmp_path / "phones-report.csv"
        first = invoke(
            [
                "run",
                str(manifest),
                "--report",
                str(report),
                "--base-url",
                emulator.base_url,
            ]
        )
        assert first.exit_code == 1, first.output
        original = report.read_text(encoding="utf-8")
        report.write_text(original.replace(MISSING_WORKSPACE, WORKSPACES[5]))
        edited = report.read_text(encoding="utf-8")

        result = invoke(["rerun", str(report), "--base-url", emulator.base_url])

        rerun_rows = read_report(tmp_path / "phones-report-rerun.csv")
        assert result.exit_code == 0, result.output
        assert [r["status"] for r in rerun_rows] == ["created"] * 3
        assert rerun_rows[2]["workspaceId"] == WORKSPACES[5]
        assert rerun_rows[0]["deviceId"] == read_report(report)[0]["deviceId"]
        assert report.read_text(encoding="utf-8") == edited
        assert len(emulator.devices()) == 3

    def test_rerun_of_an_xlsx_edited_in_a_spreadsheet(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        """A failed row fixed in the XLSX report (saved as a spreadsheet program saves
        it, with openpyxl) is created by rerun; the others keep their devices."""
        rows = phone_rows(3)
        rows[1]["workspaceId"] = MISSING_WORKSPACE
        manifest = write_manifest(tmp_path / "phones.csv", rows)
        report = tmp_path / "phones-report.xlsx"
        first = invoke(
            ["run", str(manifest), "--report", str(report)]
            + ["--base-url", emulator.base_url]
        )
        assert first.exit_code == 1, first.output
        workbook = openpyxl.load_workbook(report)
        sheet = workbook["Report"]
        header = [cell.value for cell in sheet[1]]
        fixed = sheet.cell(row=3, column=header.index("workspaceId") + 1)
        assert fixed.value == MISSING_WORKSPACE
        fixed.value = WORKSPACES[7]
        sheet.cell(row=3, column=header.index("note") + 1).value = "moved desk"
        workbook.save(report)
        first_ids = [r["deviceId"] for r in read_xlsx_report(report)]

        result = invoke(["rerun", str(report), "--base-url", emulator.base_url])

        again = read_xlsx_report(tmp_path / "phones-report-rerun.xlsx")
        by_mac = {d["mac"]: d for d in emulator.devices()}
        assert result.exit_code == 0, result.output
        assert [r["status"] for r in again] == ["created"] * 3
        assert [r["deviceId"] for r in again][::2] == first_ids[::2]
        assert (again[1]["workspaceId"], again[1]["note"]) == (
            WORKSPACES[7],
            "moved desk",
        )
        assert by_mac[normalise(rows[1]["mac"])]["workspaceId"] == WORKSPACES[7]
        assert len(by_mac) == 3

    def test_rerun_with_nothing_to_do_exits_0(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        """A report where every row ended well has nothing to re-run: exit 0."""
        manifest = write_manifest(tmp_path / "phones.csv", phone_rows(2))
        report = tmp_path / "r.csv"
        invoke(
            [
                "run",
                str(manifest),
                "--report",
                str(report),
                "--base-url",
                emulator.base_url,
            ]
        )
        writes = emulator.write_calls()

        result = invoke(["rerun", str(report), "--base-url", emulator.base_url])

        assert result.exit_code == 0, result.output
        assert "Nothing to re-run" in result.stdout
        assert emulator.write_calls() == writes

    def test_rerun_to_a_named_report(self, emulator: Emulator, tmp_path: Path) -> None:
        """--report names the rerun's output; still failing rows make exit 1."""
        rows = phone_rows(2)
        rows[0]["workspaceId"] = MISSING_WORKSPACE
        manifest = write_manifest(tmp_path / "phones.csv", rows)
        report = tmp_path / "r.csv"
        invoke(
            [
                "run",
                str(manifest),
                "--report",
                str(report),
                "--base-url",
                emulator.base_url,
            ]
        )

        result = invoke(
            [
                "rerun",
                str(report),
                "--report",
                str(tmp_path / "again.csv"),
                "--base-url",
                emulator.base_url,
            ]
        )

        assert result.exit_code == 1, result.output
        assert [r["status"] for r in read_report(tmp_path / "again.csv")] == [
            "failed",
            "created",
        ]

    def test_a_rerun_sends_the_tags_a_spreadsheet_would_run_as_they_were(
        self, emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Tags and notes a spreadsheet would run (=SUM(1), -5, +44, @home, -desk 1)
        are marked in the dry run's CSV report; its rerun puts the very tags on the
        devices and writes the same input cells into its own report."""
        monkeypatch.chdir(tmp_path)
        rows = phone_rows(3)
        rows[0] |= {"tags": "'=SUM(1);pilot", "note": "-desk 1"}
        rows[1] |= {"tags": "-5;+44;@home", "note": "=1+1"}
        rows[2] |= {"tags": "'quoted", "note": "@desk 3"}
        write_manifest(tmp_path / "site.csv", rows)
        base = ["--base-url", emulator.base_url]
        dry_run = tmp_path / "reports" / "site-report-dry-run.csv"

        planned = invoke(["run", "site.csv", "--dry-run", *base])
        result = invoke(["rerun", str(dry_run), *base])

        assert planned.exit_code == 0, planned.output
        marked = [(line["tags"], line["note"]) for line in read_report(dry_run)]
        assert marked == [
            ("'=SUM(1);pilot", "'-desk 1"),
            ("'-5;+44;@home", "'=1+1"),
            ("'quoted", "'@desk 3"),
        ]
        assert result.exit_code == 0, result.output
        tags = {device["mac"]: device["tags"] for device in emulator.devices()}
        assert tags == {
            normalise(rows[0]["mac"]): ["=SUM(1)", "pilot"],
            normalise(rows[1]["mac"]): ["-5", "+44", "@home"],
            normalise(rows[2]["mac"]): ["'quoted"],
        }
        again = read_report(tmp_path / "reports" / "site-report-dry-run-rerun.csv")
        assert [line["status"] for line in again] == ["created"] * 3
        assert [(line["tags"], line["note"]) for line in again] == marked

    def test_the_run_again_after_a_rerun_reports_the_rows_the_rerun_ended(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        """Rows the run failed (their MACs held by another owner, freed since) and a
        rerun of its report created are reported by the same run command as the
        rerun ended them, naming its report, and nothing is sent again."""
        rows = phone_rows(3)
        elsewhere = [
            {**row, "workspaceId": WORKSPACES[-1], "tags": ""} for row in rows[1:]
        ]
        held = write_manifest(tmp_path / "elsewhere.csv", elsewhere)
        base = ["--base-url", emulator.base_url]
        invoke(["run", str(held), "--report", str(tmp_path / "held.csv"), *base])
        manifest = write_manifest(tmp_path / "phones.csv", rows)
        report = tmp_path / "r.csv"
        run = ["run", str(manifest), "--report", str(report), *base]
        assert invoke(run).exit_code == 1
        for device in emulator.devices():
            if device["workspaceId"] == WORKSPACES[-1]:
                emulator.api_delete(f"/devices/{device['id']}")
        assert invoke(["rerun", str(report), *base]).exit_code == 0
        rerun_report = tmp_path / "r-rerun.csv"
        writes = emulator.write_calls()

        result = invoke(run)

        again = read_report(report)
        devices = {d["id"]: d for d in emulator.devices()}
        assert result.exit_code == 0, result.output
        assert [r["status"] for r in again] == ["created"] * 3
        assert [r["error"] for r in again] == [""] * 3
        assert [r["deviceId"] for r in again] == [
            r["deviceId"] for r in read_report(rerun_report)
        ]
        assert [devices[r["deviceId"]]["mac"] for r in again] == [
            normalise(row["mac"]) for row in rows
        ]
        assert len(devices) == 3
        assert emulator.write_calls() == writes
        assert f"2 rows as the rerun {rerun_report} ended them" in result.stdout

        # That report names the rerun's devices as created, and its rollback takes
        # them out too: the rerun's journal says the rollout made them.
        rolled = invoke(["rollback", str(report), "--yes", *base])

        assert rolled.exit_code == 0, rolled.output
        assert "deleted 3" in rolled.output
        assert emulator.devices() == []

    def test_the_run_again_after_a_rerun_reports_the_not_started_rows_it_ended(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        """Rows a Ctrl-C left not_started that a rerun of the report created are
        reported created by the same run command (not adopted: the rollout made
        them), with nothing sent, and a rollback of its report deletes them."""
        emulator.admin("POST", "/faults", {"latency_ms": 150})
        manifest = write_manifest(tmp_path / "phones.csv", phone_rows(12))
        report = tmp_path / "r.csv"
        base = ["--base-url", emulator.base_url]
        run = ["run", str(manifest), "--report", str(report), "--concurrency", "2"]
        process = _cli_subprocess([*run, *base])
        _wait_until(lambda: len(emulator.devices()) >= 2)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
        emulator.admin("POST", "/faults", {"latency_ms": 0})
        never = [r["row"] for r in read_report(report) if r["status"] == "not_started"]
        assert invoke(["rerun", str(report), *base]).exit_code == 0
        rerun_report = tmp_path / "r-rerun.csv"
        rerun_ids = {r["row"]: r["deviceId"] for r in read_report(rerun_report)}
        writes = emulator.write_calls()

        result = invoke([*run, *base])

        again = {r["row"]: r for r in read_report(report)}
        assert process.returncode == 130, out + err
        assert never
        assert result.exit_code == 0, result.output
        assert [again[n]["status"] for n in never] == ["created"] * len(never)
        assert [again[n]["deviceId"] for n in never] == [rerun_ids[n] for n in never]
        assert emulator.write_calls() == writes
        assert f"{len(never)} rows as the rerun {rerun_report} ended them" in (
            result.stdout
        )

        # The org's state: the rollback of that report deletes what the rollout
        # made, the rerun's devices of the rows the run never started included.
        rolled = invoke(["rollback", str(report), "--yes", *base])

        assert rolled.exit_code == 0, rolled.output
        assert "deleted 12" in rolled.output
        assert emulator.devices() == []


def _cli_subprocess(args: Sequence[str], **popen: Any) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "WEBEX_ACCESS_TOKEN": DEFAULT_TOKEN,
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("WEBEX_BASE_URL", None)
    return subprocess.Popen(
        [sys.executable, "-m", "provisioner", *args],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **popen,
    )


def _wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the condition did not come true in time")
        time.sleep(0.05)


class TestRunAfterARenewal:
    """
    ``codes --renew`` voids a run's codes (deletes their pending devices) and writes
    the new ones to ``<report>-renewed``, while the run's journal still names the
    voided ones: the same run command then reports its code rows as the renewal left
    them, never a voided code.
    """

    def test_the_run_again_reports_the_renewed_codes_not_the_voided_ones(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        """After run → 25 days → codes --renew, the same run's report and its
        Activation codes sheet hold the renewed codes and devices, none of the
        voided ones, nothing is sent, the summary names the renewal, and listing
        that report calls no code gone."""
        run, report, old = _renewed_run(emulator, tmp_path)
        renewed = read_xlsx_report(report.with_name("c-renewed.xlsx"))
        writes = emulator.write_calls()

        result = invoke(run)

        again = read_xlsx_report(report.with_suffix(".xlsx"))
        csv_report = report.with_suffix(".csv")
        sheet = _codes_sheet_cells(report.with_suffix(".xlsx"))
        listed = invoke(
            ["codes", str(report.with_suffix(".xlsx")), "--base-url", emulator.base_url]
        )
        old_codes = {r["activationCode"] for r in old if r["activationCode"]}
        new_codes = {r["activationCode"] for r in renewed if r["activationCode"]}
        assert result.exit_code == 0, result.output
        assert emulator.write_calls() == writes
        assert len(new_codes) == 2
        assert not old_codes & new_codes
        cells = ("status", "deviceId", "activationCode", "activationExpiry")
        assert [[r[c] for c in cells] for r in again] == [
            [r[c] for c in cells] for r in renewed
        ]
        assert [[r[c] for c in cells[:3]] for r in read_report(csv_report)] == [
            [r[c] for c in cells[:3]] for r in renewed
        ]
        assert new_codes <= sheet
        assert not old_codes & sheet
        assert {r["deviceId"] for r in again if r["activationCode"]} == {
            d["id"] for d in emulator.pending()
        }
        renewal = report.with_name("c-renewed.xlsx")
        assert f"2 code rows as the renewal {renewal} issued them" in result.stdout
        assert "kept the earlier report" not in result.stdout
        assert listed.exit_code == 0, listed.output
        assert "pending 2" in listed.output
        assert "gone" not in listed.output

    def test_a_rollback_of_the_new_report_deletes_the_renewed_devices(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        """The report the run wrote after a renewal names the renewed codes'
        devices: its rollback deletes them and the run's own device, nothing that
        was there before, and the run's journal forgets the rows, so the same run
        then issues the code rows new codes, which stand after it."""
        before = {d["id"] for d in emulator.devices()}
        run, report, _old = _renewed_run(emulator, tmp_path)
        assert invoke(run).exit_code == 0
        base = ["--base-url", emulator.base_url]

        rolled = invoke(["rollback", str(report.with_suffix(".xlsx")), "--yes", *base])
        left = {d["id"] for d in emulator.devices()}
        again = invoke(run)

        assert rolled.exit_code == 0, rolled.output
        assert "deleted 3" in rolled.output
        assert "forgot 3 rows" in rolled.output
        assert left == before
        assert again.exit_code == 0, again.output
        lines = read_report(report.with_suffix(".csv"))
        assert [r["status"] for r in lines] == ["created", "code_issued", "code_issued"]
        held = {d["id"] for d in emulator.devices()} - before
        assert held == {r["deviceId"] for r in lines}
        assert "as the renewal" not in again.stdout
        # The renewal's report is still there, its codes older than the ones the
        # run issued since: the run's own codes stand.
        third = invoke(run)

        assert third.exit_code == 0, third.output
        assert "as the renewal" not in third.stdout
        assert read_report(report.with_suffix(".csv")) == lines


def _renewed_run(
    emulator: Emulator, tmp_path: Path
) -> tuple[list[str], Path, list[dict[str, str]]]:
    """
    A phone and two code rows run into ``r/c`` (both formats), then, 25 days on (the
    emulator's clock), ``codes r/c.xlsx --renew``: the run command, the report path
    without extension, and the run's first report's rows.
    """
    manifest = write_manifest(tmp_path / "m.csv", phone_rows(1) + emulated.code_rows(2))
    report = tmp_path / "r" / "c"
    run = ["run", str(manifest), "--report", str(report), "--base-url"]
    run += [emulator.base_url, "-q"]
    assert invoke(run).exit_code == 0
    first = read_xlsx_report(report.with_suffix(".xlsx"))
    emulator.admin("POST", "/clock", {"advance_seconds": 25 * 86400})
    renewal = invoke(
        [
            "codes",
            str(report.with_suffix(".xlsx")),
            "--renew",
            "--base-url",
            emulator.base_url,
        ]
    )
    assert renewal.exit_code == 0, renewal.output
    assert "renewed 2 codes" in renewal.output
    return run, report, first


def _codes_sheet_cells(path: Path) -> set[str]:
    """Every cell of an XLSX report's Activation codes sheet, as text."""
    sheet = openpyxl.load_workbook(path, read_only=True)["Activation codes"]
    return {str(value) for line in sheet.iter_rows(values_only=True) for value in line}


class TestInterruptedRuns:
    ROWS = 24

    def _start(self, emulator: Emulator, tmp_path: Path) -> tuple[list[str], Path]:
        emulator.admin("POST", "/faults", {"latency_ms": 150})
        manifest = write_manifest(tmp_path / "phones.csv", phone_rows(self.ROWS))
        report = tmp_path / "r.csv"
        args = [
            "run",
            str(manifest),
            "--report",
            str(report),
            "--concurrency",
            "2",
            "--base-url",
            emulator.base_url,
        ]
        return args, report

    def _assert_complete(self, emulator: Emulator, report: Path) -> None:
        rows = read_report(report)
        macs = [d["mac"] for d in emulator.devices()]
        assert [r["row"] for r in rows] == [str(n) for n in range(2, self.ROWS + 2)]
        assert {r["status"] for r in rows} <= {"created", "adopted"}
        assert len(macs) == self.ROWS
        assert len(set(macs)) == self.ROWS

    def test_sigkill_then_same_command_ends_complete(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        """A run killed with SIGKILL mid-way and run again ends with every row once."""
        args, report = self._start(emulator, tmp_path)
        process = _cli_subprocess(args)
        _wait_until(lambda: len(emulator.devices()) >= 3)

        process.kill()
        process.communicate(timeout=10)
        assert 0 < len(emulator.devices()) < self.ROWS
        emulator.admin("POST", "/faults", {"latency_ms": 0})
        again = _cli_subprocess(args)
        out, err = again.communicate(timeout=60)

        assert again.returncode == 0, out + err
        self._assert_complete(emulator, report)

    def test_sigint_exits_130_with_a_report_then_continues(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        """Ctrl-C ends 130 with a full report whose rows never begun are not_started
        (none failed); the same command then finishes the rest."""
        args, report = self._start(emulator, tmp_path)
        process = _cli_subprocess(args)
        _wait_until(lambda: len(emulator.devices()) >= 3)

        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
        first = read_report(report)
        done_before = len(emulator.devices())
        emulator.admin("POST", "/faults", {"latency_ms": 0})
        again = _cli_subprocess(args)
        out2, err2 = again.communicate(timeout=60)

        assert process.returncode == 130, out + err
        assert len(first) == self.ROWS
        statuses = Counter(r["status"] for r in first)
        assert statuses["not_started"] == self.ROWS - done_before
        assert statuses["failed"] == 0  # no row that never started is failed
        assert 0 < done_before < self.ROWS
        assert "run the same command again" in err
        # Said in words only: no raw log line of the stop beside the sentence.
        assert "stop_requested" not in err
        assert again.returncode == 0, out2 + err2
        self._assert_complete(emulator, report)

    def test_second_sigint_abandons_rows_in_flight(
        self, emulator: Emulator, tmp_path: Path
    ) -> None:
        """A second Ctrl-C abandons the rows in flight at once (exit 130) and still
        writes the report: every row once, the abandoned ones not_started; the same
        command then finishes."""
        args, report = self._start(emulator, tmp_path)
        emulator.admin("POST", "/faults", {"latency_ms": 1000})
        process = _cli_subprocess(args)
        _wait_until(lambda: len(emulator.devices()) >= 2)

        process.send_signal(signal.SIGINT)
        assert process.stderr is not None
        while "Stopping" not in process.stderr.readline():
            pass
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
        first = read_report(report)
        emulator.admin("POST", "/faults", {"latency_ms": 0})
        again = _cli_subprocess(args)
        out2, err2 = again.communicate(timeout=60)

        assert process.returncode == 130, out + err
        assert "Abandoning" in err
        assert "Traceback" not in err
        assert [r["row"] for r in first] == [str(n) for n in range(2, self.ROWS + 2)]
        statuses = Counter(r["status"] for r in first)
        assert set(statuses) <= {"created", "adopted", "not_started"}
        assert statuses["not_started"] > 0
        abandoned = [r for r in first if "abandoned in flight" in r["error"]]
        # At most the two workers' rows (concurrency 2) were in flight.
        assert len(abandoned) <= 2
        assert {r["status"] for r in abandoned} == {"not_started"}
        assert again.returncode == 0, out2 + err2
        self._assert_complete(emulator, report)


class TestOptions:
    def test_base_url_precedence(self) -> None:
        """--base-url beats --cloud's absence and WEBEX_BASE_URL; FedRAMP is default."""
        env = {"WEBEX_BASE_URL": "http://127.0.0.1:1/v1"}

        assert [
            resolve_base_url("https://x.test/v1", None, env),
            resolve_base_url(None, "commercial", env),
            resolve_base_url(None, None, env),
            resolve_base_url(None, None, {}),
        ] == [
            "https://x.test/v1",
            COMMERCIAL_BASE_URL,
            "http://127.0.0.1:1/v1",
            FEDRAMP_BASE_URL,
        ]

    def test_token_file_beats_environment(self, tmp_path: Path) -> None:
        """--token-file is read (stripped) in preference to WEBEX_ACCESS_TOKEN."""
        token_file = tmp_path / "token"
        token_file.write_text("from-file-token\n")

        assert (
            read_token(token_file, {"WEBEX_ACCESS_TOKEN": "env"}) == "from-file-token"
        )

    @pytest.mark.parametrize("content", ["", "   \n", "Bearer abc"])
    def test_unusable_token_file_is_refused(self, tmp_path: Path, content: str) -> None:
        """An empty token file or one with spaces in the token is a ConfigError."""
        token_file = tmp_path / "token"
        token_file.write_text(content)

        with pytest.raises(ConfigError):
            read_token(token_file, {})

    def test_max_rate_caps_the_rate_controller(self) -> None:
        """--max-rate sets the ceiling and keeps the start and floor at or below it."""
        options = ConnectionOptions(max_rate=MaxRates(every=0.25))

        settings = build_settings(options, {"WEBEX_ACCESS_TOKEN": "t0ken"})

        assert (
            settings.rate.max_rate,
            settings.rate.initial_rate,
            settings.rate.min_rate,
        ) == (0.25, 0.25, 0.25)

    def test_settings_keep_the_token_out_of_repr(self) -> None:
        """The token read from the environment is in Settings but not in its repr."""

        settings = build_settings(
            ConnectionOptions(), {"WEBEX_ACCESS_TOKEN": "t0ken-x"}
        )

        assert settings.token == "t0ken-x"
        assert "t0ken-x" not in repr(settings)

    def test_exit_codes(self) -> None:
        """0 all well, 1 with a failed or invalid row, 130 when interrupted."""
        good = [Outcome(row=2, status=Status.CREATED)]
        bad = [*good, Outcome(row=3, status=Status.INVALID)]

        assert [
            exit_code_for(good, interrupted=False),
            exit_code_for(bad, interrupted=False),
            exit_code_for(good, interrupted=True),
        ] == [0, 1, 130]

    @pytest.mark.parametrize(
        ("given", "expected"),
        [
            ("reports/site-report.xlsx", "reports/site-report-rerun.xlsx"),
            ("reports/site-report-rerun.csv", "reports/site-report-rerun-2.csv"),
            ("site-report-rerun-2.csv", "site-report-rerun-3.csv"),
        ],
    )
    def test_rerun_report_path(self, given: str, expected: str) -> None:
        """A rerun's default output sits next to its input and never overwrites it."""

        assert rerun_report_path(Path(given)) == Path(expected)

    @pytest.mark.parametrize("command", ["run", "rerun"])
    def test_commands_have_help(self, command: str) -> None:
        """Every command documents itself and its connection options."""

        result = CliRunner().invoke(main, [command, "--help"])

        assert result.exit_code == 0
        assert "--token-file" in result.output
        assert "--max-rate" in result.output
