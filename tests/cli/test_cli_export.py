"""
``provisioner export`` end to end against the emulator in a subprocess.
"""

from __future__ import annotations

import csv
import json
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from click.testing import CliRunner, Result
from paths import EMULATOR_ORG

from provisioner.cli import main
from provisioner.emulator.config import DEFAULT_TOKEN
from provisioner.emulator.directory import org_id_for
from provisioner.emulator.harness import run_in_subprocess
from provisioner.intake.manifest import load_manifest

ORG = json.loads(EMULATOR_ORG.read_text())
WORKSPACES = [w["id"] for w in ORG["workspaces"]]


class Api:
    """
    The emulator subprocess, seen through its API and its admin view.
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

    def create(self, n: int, tags: Sequence[str] = ()) -> dict[str, Any]:
        device: dict[str, Any] = self.call(
            f"{self.base_url}/devices",
            "POST",
            {
                "mac": f"00AABD{n:06X}",
                "model": "DMS Cisco 8851",
                "workspaceId": WORKSPACES[n],
            },
        )
        if tags:
            self.set_tags(device["id"], tags)
        return device

    def set_tags(self, device_id: str, tags: Sequence[str]) -> None:
        request = urllib.request.Request(
            f"{self.base_url}/devices/{device_id}",
            data=json.dumps(
                {"op": "replace", "path": "tags", "value": list(tags)}
            ).encode(),
            method="PATCH",
            headers={
                "Content-Type": "application/json-patch+json",
                "Authorization": f"Bearer {DEFAULT_TOKEN}",
            },
        )
        with urllib.request.urlopen(request, timeout=10):
            pass

    def devices(self) -> list[dict[str, Any]]:
        return list(self.call(f"{self.admin_url}/devices")["items"])


@pytest.fixture(name="emulator_process", scope="module")
def _emulator_process() -> Iterator[str]:
    with run_in_subprocess() as (_process, base_url):
        yield base_url


@pytest.fixture(name="api")
def _api(emulator_process: str) -> Api:
    api = Api(emulator_process)
    api.call(f"{api.admin_url}/reset", "POST")
    return api


def mac_for(key: str) -> str:
    return "00AABF00000" + ("1" if key == "org1" else "2")


def invoke(args: Sequence[str], **env: str) -> Result:
    environment = {"WEBEX_ACCESS_TOKEN": DEFAULT_TOKEN, **env}
    return CliRunner().invoke(main, list(args), env=environment, catch_exceptions=False)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


class TestExportCommand:
    def test_xlsx_export_is_the_org_as_a_workbook(
        self, api: Api, tmp_path: Path
    ) -> None:
        """The workbook lists every device under a frozen, filtered header, as text
        (the MAC column formatted Text), with a Summary; the command says how many and
        exits 0."""
        made = [api.create(n, ["hq"]) for n in range(5)]
        output = tmp_path / "org.xlsx"

        result = invoke(["export", str(output), "--base-url", api.base_url, "-q"])

        assert result.exit_code == 0, result.output
        assert f"Exported 5 devices (1 page) to {output}" in result.output
        book = openpyxl.load_workbook(output)
        assert book.sheetnames == ["Devices", "Summary"]
        sheet = book["Devices"]
        rows = list(sheet.iter_rows(values_only=True))
        header = rows[0]
        assert header[:5] == ("mac", "model", "workspaceId", "personId", "tags")
        ids = {row[header.index("deviceId")] for row in rows[1:]}
        assert ids == {device["id"] for device in made}
        assert sheet.freeze_panes == "A2"
        assert sheet.auto_filter.ref == f"A1:O{len(made) + 1}"
        row = dict(zip(header, sheet[2], strict=True))
        assert row["mac"].number_format == "@"  # Text: an edited MAC stays text
        assert all(cell.data_type == "s" for cell in sheet[2] if cell.value is not None)
        summary = dict(book["Summary"].iter_rows(min_row=1, values_only=True))
        assert summary["devices"] == 5

    def test_filters_reach_the_api(self, api: Api, tmp_path: Path) -> None:
        """--tag and --product narrow the export to the devices that match them all."""
        tagged = [api.create(n, ["hq", "pilot"]) for n in range(3)]
        api.create(3, ["hq"])
        output = tmp_path / "pilot.csv"

        result = invoke(
            [
                "export",
                str(output),
                "--tag",
                "hq",
                "--tag",
                "pilot",
                "--product",
                "Cisco 8851",
                "--base-url",
                api.base_url,
            ]
        )

        assert result.exit_code == 0, result.output
        lines = read_csv(output)
        assert {line["deviceId"] for line in lines} == {d["id"] for d in tagged}
        assert {line["tags"] for line in lines} == {"hq;pilot"}

    def test_an_export_that_finds_nothing_says_so(
        self, api: Api, tmp_path: Path
    ) -> None:
        """No device matches: the file holds the header alone, and the command says
        the API listed none (not "0 devices (0 pages)")."""
        api.create(1, ["hq"])
        output = tmp_path / "none.csv"

        result = invoke(
            ["export", str(output), "--tag", "absent", "--base-url", api.base_url]
        )

        assert result.exit_code == 0, result.output
        assert f"Exported 0 devices to {output}: the API listed none" in result.output
        assert "pages" not in result.output
        assert output.read_text(encoding="utf-8").splitlines()[0].startswith("mac,")
        assert read_csv(output) == []

    def test_tags_a_manifest_would_split_are_named(
        self, api: Api, tmp_path: Path
    ) -> None:
        """Devices with a tag holding , or | are counted and named by MAC on stderr:
        fed back as a manifest the file gives exactly those devices other tags."""
        for n in range(4):
            api.create(n, ["hq"])
        comma = api.create(4, ["a,b", "hq"])
        bar = api.create(5, ["x|y"])
        output = tmp_path / "org.csv"

        result = invoke(["export", str(output), "--base-url", api.base_url, "-q"])

        assert result.exit_code == 0, result.output
        assert "Warning: 2 devices have tags" in result.stderr
        named = {comma["mac"], bar["mac"]}
        assert all(mac in result.stderr for mac in named)
        assert "Warning" not in result.stdout
        tags_now = {d["mac"]: tuple(d["tags"]) for d in api.devices()}
        read_back = {row.mac: row.tags for row in load_manifest(output).rows}
        mangled = {mac for mac, tags in read_back.items() if tags != tags_now[mac]}
        assert mangled == named

    def test_a_long_list_of_unreadable_tags_names_the_first_few(
        self, api: Api, tmp_path: Path
    ) -> None:
        """Past five devices the warning says how many more there are."""
        for n in range(7):
            api.create(n, [f"site,{n}"])
        output = tmp_path / "org.xlsx"

        result = invoke(["export", str(output), "--base-url", api.base_url, "-q"])

        assert result.exit_code == 0, result.output
        assert "Warning: 7 devices have tags" in result.stderr
        assert "and 2 more" in result.stderr
        summary = dict(
            openpyxl.load_workbook(output)["Summary"].iter_rows(values_only=True)
        )
        assert summary["devices whose tags a manifest reads back as others"] == 7

    def test_tags_that_read_back_give_no_warning(
        self, api: Api, tmp_path: Path
    ) -> None:
        """Plain tags: no warning."""
        api.create(1, ["hq", "floor-1"])
        output = tmp_path / "org.csv"

        result = invoke(["export", str(output), "--base-url", api.base_url, "-q"])

        assert result.exit_code == 0, result.output
        assert result.stderr == ""

    def test_csv_marks_would_be_formulas_and_runs_back_to_the_same_tags(
        self, api: Api, tmp_path: Path
    ) -> None:
        """Tags a spreadsheet would run (=1+1, @SUM…, -x, +44) are written '=1+1 so
        opening the CSV runs nothing; run as a manifest after the tags were cleared,
        the file puts the very same tags back on each device."""
        wanted = {
            api.create(0, ["=1+1", "pilot"])["id"]: ["=1+1", "pilot"],
            api.create(1, ["@SUM(A1:A9)", "pilot"])["id"]: ["@SUM(A1:A9)", "pilot"],
            api.create(2, ["-x", "pilot"])["id"]: ["-x", "pilot"],
            api.create(3, ["+44 lobby", "pilot"])["id"]: ["+44 lobby", "pilot"],
        }
        output = tmp_path / "org.csv"

        exported = invoke(
            ["export", str(output), "--tag", "pilot", "--base-url", api.base_url, "-q"]
        )
        for device in wanted:
            api.set_tags(device, [])
        ran = invoke(
            [
                "run",
                str(output),
                "--tag-mode",
                "replace",
                "--report",
                str(tmp_path / "r"),
            ]
            + ["--base-url", api.base_url, "-q"]
        )

        assert exported.exit_code == 0, exported.output
        assert exported.stderr == ""  # every tag makes the round trip
        cells = {line["deviceId"]: line["tags"] for line in read_csv(output)}
        assert cells[next(iter(wanted))] == "'=1+1;pilot"
        assert all(cell.startswith("'") for cell in cells.values())
        assert ran.exit_code == 0, ran.output
        tags_now = {d["id"]: d["tags"] for d in api.devices() if d["id"] in wanted}
        assert tags_now == wanted

    def test_xlsx_holds_would_be_formulas_as_text_and_names_them(
        self, api: Api, tmp_path: Path
    ) -> None:
        """A workbook's cells are text, never formulas, and take no mark; a tags cell
        starting with = reads as a formula there, so the warning names the device."""
        device = api.create(0, ["=1+1"])
        output = tmp_path / "org.xlsx"

        result = invoke(["export", str(output), "--base-url", api.base_url, "-q"])

        assert result.exit_code == 0, result.output
        sheet = openpyxl.load_workbook(output)["Devices"]
        header = [cell.value for cell in sheet[1]]
        (cell,) = [
            row[header.index("tags")]
            for row in sheet.iter_rows(min_row=2)
            if row[header.index("deviceId")].value == device["id"]
        ]
        assert (cell.value, cell.data_type) == ("=1+1", "s")
        assert "Warning: 1 device has tags" in result.stderr
        assert device["mac"] in result.stderr

    def test_a_killed_exports_temporary_file_goes_at_the_next_export(
        self, api: Api, tmp_path: Path
    ) -> None:
        """A SIGKILLed export's hidden temporary file, whose process is gone, is
        removed by the next export to the same OUTPUT; another OUTPUT's is not."""
        api.create(1, ["hq"])
        output = tmp_path / "org.csv"
        pid = subprocess.run(
            [sys.executable, "-c", "import os; print(os.getpid())"],
            capture_output=True,
            check=True,
            text=True,
        ).stdout.strip()
        left = tmp_path / f".org.csv.{pid}.0123abcd.tmp"
        other = tmp_path / f".other.csv.{pid}.0123abcd.tmp"
        for file in (left, other):
            file.write_text("mac,model\n00AABD00", encoding="utf-8")

        result = invoke(["export", str(output), "--base-url", api.base_url, "-q"])

        assert result.exit_code == 0, result.output
        assert not left.exists()
        assert other.exists()
        assert len(read_csv(output)) == len(api.devices())

    def test_existing_output_is_kept_without_overwrite(
        self, api: Api, tmp_path: Path
    ) -> None:
        """An existing file is not replaced unless --overwrite is given."""
        api.create(1)
        output = tmp_path / "org.csv"
        output.write_text("keep me")

        refused = invoke(["export", str(output), "--base-url", api.base_url])
        replaced = invoke(
            ["export", str(output), "--overwrite", "--base-url", api.base_url]
        )

        assert refused.exit_code == 2
        assert "exists already" in refused.output
        assert replaced.exit_code == 0
        assert len(read_csv(output)) == 1

    def test_overwrite_never_replaces_a_runs_report(
        self, api: Api, tmp_path: Path
    ) -> None:
        """--overwrite is for an earlier export: a run's report holding codes (or
        the devices a rollback deletes by) is kept, byte for byte, and named."""
        from provisioner.intake.manifest import RawTable, build_manifest
        from provisioner.models import Outcome, RunStats, Status
        from provisioner.report.files import write_report

        api.create(1)
        output = tmp_path / "site-report.csv"
        table = RawTable(
            path=Path("site.csv"),
            sheet=None,
            columns=("mac", "model", "workspaceId"),
            records=[
                (2, ("", "Cisco 8865", "ws")),
                (3, ("0A0000000001", "Cisco 8851", "ws")),
            ],
        )
        outcomes = {
            2: Outcome(row=2, status=Status.CODE_ISSUED, activation_code="1" * 16),
            3: Outcome(row=3, status=Status.CREATED, device_id="dev-3"),
        }
        stats = RunStats(
            started_at=datetime.now(UTC),
            finished_at=datetime.now(UTC),
            api_calls=3,
            rate_limited=0,
            retries=0,
        )
        write_report(build_manifest(table), outcomes, (output,), stats)
        before = output.read_bytes()

        result = invoke(
            ["export", str(output), "--overwrite", "--base-url", api.base_url]
        )

        assert result.exit_code == 2, result.output
        assert (
            "1 activation code and the 1 device this rollout created" in result.output
        )
        assert output.read_bytes() == before

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["org.txt"], "a .csv or .xlsx file"),
            (["org.csv", "--tag", "a,b"], "comma"),
            (["org.csv", "--mac", "nope"], "--mac"),
        ],
    )
    def test_unusable_flags_exit_2_without_a_call(
        self, api: Api, tmp_path: Path, args: list[str], message: str
    ) -> None:
        """A bad OUTPUT or filter stops the command before any call, with exit 2."""
        output = tmp_path / args[0]

        result = invoke(["export", str(output), *args[1:], "--base-url", api.base_url])

        assert result.exit_code == 2
        assert message in result.output
        assert not output.exists()
        assert api.call(f"{api.admin_url}/stats")["requests_total"] == 0

    def test_unreachable_api_exits_2_and_writes_nothing(self, tmp_path: Path) -> None:
        """Nothing listening: exit 2 in seconds, and no file."""
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        output = tmp_path / "org.csv"

        result = invoke(
            ["export", str(output), "--base-url", f"http://127.0.0.1:{port}/v1"]
        )

        assert result.exit_code == 2
        assert "Cannot reach the API" in result.output
        assert list(tmp_path.iterdir()) == []

    def test_refused_token_exits_2(self, api: Api, tmp_path: Path) -> None:
        """A refused token ends with exit 2 and the sentence that says what to do."""
        output = tmp_path / "org.csv"

        result = invoke(
            ["export", str(output), "--base-url", api.base_url],
            WEBEX_ACCESS_TOKEN="not-the-token",
        )

        assert result.exit_code == 2
        assert "refused the access token" in result.output
        assert not output.exists()

    def test_org_id_exports_that_org(self, tmp_path: Path) -> None:
        """--org-id lists another org's devices (a partner admin's token): only
        them, with the list calls charged to that org."""
        partner = ["--partner", f"{DEFAULT_TOKEN}=org1,org2", "--orgs", "2"]
        with run_in_subprocess(partner) as (_process, base_url):
            api = Api(base_url)
            made = {}
            for key in ("org1", "org2"):
                org = org_id_for(key)
                workspaces = api.call(f"{base_url}/workspaces?orgId={org}")["items"]
                body = {
                    "mac": mac_for(key),
                    "model": "DMS Cisco 8851",
                    "workspaceId": workspaces[0]["id"],
                }
                device = api.call(f"{base_url}/devices?orgId={org}", "POST", body)
                made[key] = device["id"]
            output = tmp_path / "org2.csv"

            result = invoke(
                ["export", str(output), "--org-id", org_id_for("org2")]
                + ["--base-url", base_url]
            )
            lists = {
                e["org"]
                for e in api.call(f"{api.admin_url}/requests")["items"]
                if e["route"] == "GET /v1/devices"
            }

        assert result.exit_code == 0, result.output
        assert [line["deviceId"] for line in read_csv(output)] == [made["org2"]]
        assert lists == {org_id_for("org2")}

    def test_org_id_the_token_may_not_act_for_names_the_org_not_a_scope(
        self, tmp_path: Path
    ) -> None:
        """--org-id naming an org a partner's token does not manage stops the export
        with the flag and the org's refusal (use a token of that org, or a partner
        admin's): not "the token lacks a scope". An org that does not exist is said
        to be none. Neither leaves a file."""
        partner = ["--partner", f"{DEFAULT_TOKEN}=org1", "--orgs", "2"]
        unknown = org_id_for("org9")
        with run_in_subprocess(partner) as (_process, base_url):
            refused = invoke(
                ["export", str(tmp_path / "org2.csv"), "--org-id", org_id_for("org2")]
                + ["--base-url", base_url]
            )
            missing = invoke(
                ["export", str(tmp_path / "org9.csv"), "--org-id", unknown]
                + ["--base-url", base_url]
            )

        assert refused.exit_code == 2
        assert f"--org-id {org_id_for('org2')}: the token may not act for this org" in (
            refused.output
        )
        assert "a partner admin's that manages it" in refused.output
        assert "lacks a scope" not in refused.output
        assert missing.exit_code == 2
        assert f"--org-id {unknown}: no such org (HTTP 404" in missing.output
        assert list(tmp_path.iterdir()) == []

    def test_help_documents_the_filters(self) -> None:
        """``export --help`` lists every filter and the connection options."""
        result = CliRunner().invoke(main, ["export", "--help"])

        assert result.exit_code == 0
        for flag in (
            "--tag",
            "--workspace-id",
            "--person-id",
            "--type",
            "--connection-status",
            "--mac",
            "--display-name",
            "--product",
            "--org-id",
            "--max-rate",
        ):
            assert flag in result.output
        assert "--tag-mode" not in result.output
