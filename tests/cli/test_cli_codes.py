"""
``provisioner codes`` end to end: an emulator in its own process, a report, a moved clock.
"""

from __future__ import annotations

import csv
import json
import stat
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import openpyxl
import org_manifests
import pytest
from click.testing import CliRunner, Result
from org_manifests import EVERY_ORG, PARTNER, org_devices, workspaces_of

from provisioner.cli import confirm, main
from provisioner.cli.codes import renewed_report_path
from provisioner.emulator import DEFAULT_TOKEN, org_id_for, run_in_subprocess
from provisioner.intake.manifest import RawTable, build_manifest
from provisioner.models import Manifest, Outcome, RunStats, Status
from provisioner.report.files import load_report, write_report
from provisioner.report.history import load_history
from provisioner.run.journal import Journal, release_journal
from provisioner.webex.client import ApiClient

ORG = json.loads(
    resources.files("provisioner.emulator")
    .joinpath("data", "org.json")
    .read_text(encoding="utf-8")
)
WS = [w["id"] for w in ORG["workspaces"]]
PEOPLE = [p["id"] for p in ORG["people"]]
HEADER = ("mac", "model", "workspaceId", "personId", "tags")


class Emulator:
    """A subprocess emulator and a few plain HTTP calls to it (loopback only)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.admin_url = base_url.removesuffix("/v1") + "/_emulator"

    def call(self, method: str, url: str, body: object | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Authorization", f"Bearer {DEFAULT_TOKEN}")
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def api(self, method: str, path: str, body: object | None = None) -> Any:
        return self.call(method, self.base_url + path, body)

    def admin(self, method: str, path: str, body: object | None = None) -> Any:
        return self.call(method, self.admin_url + path, body)

    def devices(self) -> dict[str, dict[str, Any]]:
        return {d["id"]: d for d in self.admin("GET", "/devices")["items"]}

    def writes(self) -> int:
        routes = self.admin("GET", "/stats")["by_route"]
        return sum(
            sum(counts.values())
            for route, counts in routes.items()
            if not route.startswith("GET ") and "validateMacs" not in route
        )

    def advance(self, days: float) -> None:
        self.admin("POST", "/clock", {"advance_seconds": days * 86400})


@pytest.fixture(name="server", scope="module")
def _server() -> Iterator[Emulator]:
    """One emulator process for the module (each test issues its own codes)."""
    with run_in_subprocess() as (_process, base_url):
        yield Emulator(base_url)


@pytest.fixture(name="env")
def _env(server: Emulator) -> dict[str, str]:
    return {"WEBEX_ACCESS_TOKEN": DEFAULT_TOKEN, "WEBEX_BASE_URL": server.base_url}


def manifest_of(*rows: tuple[str, ...]) -> Manifest:
    records = [(n, cells) for n, cells in enumerate(rows, start=2)]
    return build_manifest(
        RawTable(path=Path("codes.csv"), sheet=None, columns=HEADER, records=records)
    )


def make_report(
    server: Emulator, folder: Path, env: dict[str, str]
) -> tuple[Path, dict[int, Outcome]]:
    """
    Run ``provisioner run`` on four code rows and one MAC row, and read its report.

    Codes are answered as the API documents them, without a device id. Row 4's
    person had a pending device from another admin at that moment, so its code's
    device cannot be told: its tags wait (for real) and the report holds no device
    id for it; the other admin then deletes their device. The other rows' devices
    are told and journalled.
    """
    # Another model than row 4's, so it is not an earlier code of row 4 itself.
    foreign = server.api(
        "POST",
        "/devices/activationCode",
        {"model": "Cisco 8851", "personId": PEOPLE[10]},
    )
    manifest = folder / "codes.csv"
    manifest.write_text(
        ",".join(HEADER)
        + "\n"
        + "\n".join(
            [
                f",Cisco 8865,{WS[10]},,",
                f",Cisco 8851,{WS[11]},,",
                f",Cisco 8865,,{PEOPLE[10]},floor-2;desk",
                f",Cisco 8845,{WS[12]},,",
                f"0A1B2C3D4E5F,Cisco 8851,{WS[13]},,",
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    path = folder / "codes-report.csv"
    server.admin("POST", "/faults", {"activation_code_id": False})
    try:
        ran = CliRunner().invoke(
            main, ["run", str(manifest), "--report", str(path)], env=env
        )
    finally:
        server.admin("POST", "/faults", {"activation_code_id": True})
    server.api("DELETE", f"/devices/{foreign['id']}")
    assert ran.exit_code == 0, ran.output
    _manifest, outcomes = load_report(path)
    assert [outcomes[n].status for n in range(2, 7)] == [Status.CODE_ISSUED] * 4 + [
        Status.CREATED
    ]
    assert (outcomes[4].device_id, outcomes[4].tags_deferred) == (None, True)
    return path, outcomes


def person_device(server: Emulator) -> str:
    """The id of row 4's device (its person's only device), which the report lacks."""
    (device,) = [
        i for i, d in server.devices().items() if d.get("personId") == PEOPLE[10]
    ]
    return device


def at(monkeypatch: pytest.MonkeyPatch, days: float) -> None:
    """Move the command's clock: now plus ``days``."""
    moment = datetime.now(UTC) + timedelta(days=days)
    monkeypatch.setattr("provisioner.live.codes.now_utc", lambda: moment)


def invoke(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, ["codes", *args], env=env)


@pytest.fixture(name="fresh")
def _fresh(server: Emulator) -> None:
    """A clean emulator (devices, stats, clock) for each test."""
    server.admin("POST", "/reset")
    server.admin("POST", "/clock", {"now": datetime.now(UTC).isoformat()})


@pytest.mark.usefixtures("fresh")
def test_listing_by_state_with_moved_clock(
    server: Emulator, env: dict[str, str], tmp_path: Path
) -> None:
    """States follow the API's clock (the emulator's, moved 25 days on: this
    machine's is not) and activation; codes are masked; nothing is written."""
    report, outcomes = make_report(server, tmp_path, env)
    server.admin("POST", f"/devices/{person_device(server)}/activate", {})
    before = server.writes()
    server.advance(25)

    result = invoke(env, str(report))

    assert result.exit_code == 0, result.output
    assert "activated 1 · pending 0 · expiring 3 · expired 0" in result.output
    assert "tags deferred on 1 rows; 1 of their devices have activated" in result.output
    for outcome in outcomes.values():
        if outcome.activation_code:
            assert outcome.activation_code not in result.output
            assert outcome.activation_code[-4:] in result.output
    assert server.writes() == before


@pytest.mark.usefixtures("fresh")
def test_window_and_show_codes(
    server: Emulator,
    env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A short window keeps codes pending; --show-codes prints them in full."""
    report, outcomes = make_report(server, tmp_path, env)
    at(monkeypatch, 25)

    result = invoke(env, str(report), "--within", "48h", "--show-codes")

    assert result.exit_code == 0, result.output
    assert "pending 4" in result.output
    assert grouped(outcomes[2].activation_code) in result.output


@pytest.mark.usefixtures("fresh")
def test_renew_replaces_expired_and_applies_deferred_tags(
    server: Emulator,
    env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """--renew gives expired rows new codes, tags the activated device, writes 0600."""
    report, outcomes = make_report(server, tmp_path, env)
    activated = person_device(server)
    server.admin("POST", f"/devices/{activated}/activate", {})
    server.advance(31)
    at(monkeypatch, 31)

    result = invoke(env, str(report), "--renew")

    assert result.exit_code == 0, result.output
    renewed = tmp_path / "codes-report-renewed.csv"
    assert f"new report: {renewed}" in result.output
    assert stat.S_IMODE(renewed.stat().st_mode) == 0o600
    _manifest, new = load_report(renewed)
    assert sorted(new) == [2, 3, 4, 5, 6]
    for number in (2, 3, 5):
        assert new[number].status is Status.CODE_ISSUED
        assert new[number].activation_code != outcomes[number].activation_code
        assert new[number].device_id is not None
    assert new[4].activation_code == outcomes[4].activation_code
    assert not new[4].tags_deferred
    assert new[6] == outcomes[6]
    devices = server.devices()
    assert devices[activated]["tags"] == ["floor-2", "desk"]
    old_pending = {outcomes[n].device_id for n in (2, 5)}
    assert old_pending.isdisjoint(devices)
    again = invoke(env, str(renewed))
    assert "activated 1 · pending 3 · expiring 0 · expired 0" in again.output


@pytest.mark.usefixtures("fresh")
def test_the_report_a_renewal_replaced_renews_nothing_again(
    server: Emulator,
    env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After --renew, the old report's codes are gone (the renewal voided their
    devices): listing it names the renewed report, and --renew of it again issues
    no second code for any owner (before: each row a second pending device)."""
    report, _outcomes = make_report(server, tmp_path, env)
    server.advance(31)
    at(monkeypatch, 31)
    assert invoke(env, str(report), "--renew", "--yes").exit_code == 0
    pending = set(server.devices())

    listed = invoke(env, str(report))
    again = invoke(
        env, str(report), "--renew", "--yes", "--report", str(tmp_path / "again.csv")
    )

    assert "4 codes are gone" in listed.output
    assert "a renewal of this report wrote codes-report-renewed.csv" in listed.output
    assert "renew them with" not in listed.output
    assert again.exit_code == 0, again.output
    assert set(server.devices()) == pending


@pytest.mark.usefixtures("fresh")
def test_renew_of_a_remote_org_needs_yes_off_a_terminal(
    server: Emulator,
    env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Against an org that is not on this machine, --renew in a script changes
    nothing without --yes; it names the renewals, and with --yes it renews."""
    report, outcomes = make_report(server, tmp_path, env)
    server.advance(31)
    at(monkeypatch, 31)
    monkeypatch.setattr(confirm, "is_loopback_target", lambda _target: False)
    before = server.writes()

    refused = invoke(env, str(report), "--renew")
    writes_refused = server.writes() - before
    renewed_after_refusal = (tmp_path / "codes-report-renewed.csv").exists()
    accepted = invoke(env, str(report), "--renew", "--yes")

    assert refused.exit_code == 2, refused.output
    assert "issue up to 4 activation codes" in refused.stderr
    assert "void 4 earlier activation codes" in refused.stderr
    assert "--yes" in refused.stderr
    assert writes_refused == 0
    assert not renewed_after_refusal
    assert accepted.exit_code == 0, accepted.output
    _manifest, new = load_report(tmp_path / "codes-report-renewed.csv")
    assert new[2].activation_code != outcomes[2].activation_code


@pytest.mark.usefixtures("fresh")
def test_renew_leaves_pending_codes_alone(
    server: Emulator,
    env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Codes far from expiry are not renewed, so no activation code call is made."""
    report, outcomes = make_report(server, tmp_path, env)
    at(monkeypatch, 1)
    out = tmp_path / "out.csv"

    result = invoke(env, str(report), "--renew", "--report", str(out))

    assert result.exit_code == 0, result.output
    assert "renewed 0 codes" in result.output
    _manifest, new = load_report(out)
    assert [new[n].activation_code for n in (2, 3, 4, 5)] == [
        outcomes[n].activation_code for n in (2, 3, 4, 5)
    ]


@pytest.mark.usefixtures("fresh")
@pytest.mark.parametrize("where", ["--report", "--sheet"])
def test_renew_into_an_unwritable_folder_renews_nothing(
    server: Emulator,
    env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    unwritable: Path,
    where: str,
) -> None:
    """--renew whose new report or sheet cannot be written stops with exit 2 before
    voiding a code: the new codes would be lost with the file."""
    report, _outcomes = make_report(server, tmp_path, env)
    server.advance(31)
    at(monkeypatch, 31)
    suffix = ".csv" if where == "--report" else ".xlsx"
    before = server.writes()

    result = invoke(
        env, str(report), "--renew", "--yes", where, str(unwritable / f"x{suffix}")
    )

    assert server.writes() == before
    assert result.exit_code == 2, result.output
    assert result.stderr.count("Error:") == 1, result.stderr
    assert f"cannot write in the folder {unwritable}" in result.stderr
    assert f"choose another {where} path" in result.stderr


def grouped(code: str | None) -> str:
    digits = code or ""
    return "-".join(digits[i : i + 4] for i in range(0, len(digits), 4))


def sheet_codes(path: Path) -> dict[int, str]:
    """The Activation codes sheet's codes by row number."""
    book = openpyxl.load_workbook(path)
    rows = list(book["Activation codes"].iter_rows(min_row=2, values_only=True))
    return {row[0]: row[3] for row in rows}


@pytest.mark.usefixtures("fresh")
def test_sheet_lists_the_codes_still_pending(
    server: Emulator,
    env: dict[str, str],
    tmp_path: Path,
) -> None:
    """--sheet writes the pending codes (not the activated one) beside the report,
    grouped for reading off, in a file only its owner can read."""
    report, outcomes = make_report(server, tmp_path, env)
    server.admin("POST", f"/devices/{person_device(server)}/activate", {})

    result = invoke(env, str(report), "--sheet")

    sheet = tmp_path / "codes-report-codes.xlsx"
    assert result.exit_code == 0, result.output
    assert f"3 pending activation codes written to {sheet}" in result.output
    assert sheet_codes(sheet) == {
        n: grouped(outcomes[n].activation_code) for n in (2, 3, 5)
    }
    assert stat.S_IMODE(sheet.stat().st_mode) == 0o600


@pytest.mark.usefixtures("fresh")
def test_sheet_after_renew_holds_the_new_codes(
    server: Emulator,
    env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After --renew the sheet lists the fresh codes, as the new report holds them,
    and the new report's history has the run (from the CSV's journal) and the
    renewal as its own line."""
    report, outcomes = make_report(server, tmp_path, env)
    server.admin("POST", f"/devices/{person_device(server)}/activate", {})
    server.advance(31)
    at(monkeypatch, 31)
    sheet = tmp_path / "print-me.xlsx"
    renewed = tmp_path / "renewed.xlsx"

    result = invoke(
        env, str(report), "--renew", "--report", str(renewed), "--sheet", str(sheet)
    )

    assert result.exit_code == 0, result.output
    _manifest, new = load_report(renewed)
    listed = sheet_codes(sheet)
    assert listed == {n: grouped(new[n].activation_code) for n in (2, 3, 5)}
    assert all(listed[n] != grouped(outcomes[n].activation_code) for n in listed)
    story = load_history(renewed)
    assert [r.kind.value for r in story] == ["run", "codes --renew"]
    # Three codes renewed, and the activated row's deferred tags applied.
    assert dict(story[-1].counts) == {Status.CODE_ISSUED: 4}


@pytest.mark.usefixtures("fresh")
def test_a_code_whose_device_was_deleted_is_gone_and_off_the_sheet(
    server: Emulator, env: dict[str, str], tmp_path: Path
) -> None:
    """A code whose pending device was deleted (its GET answers 404) is listed
    gone, never written to the printable sheet; --renew issues it no new code (a
    rollback or a person took the device out)."""
    report, outcomes = make_report(server, tmp_path, env)
    server.api("DELETE", f"/devices/{outcomes[2].device_id}")

    listed = invoke(env, str(report), "--sheet")

    sheet = tmp_path / "codes-report-codes.xlsx"
    assert listed.exit_code == 0, listed.output
    assert "activated 0 · pending 3 · expiring 0 · expired 0 · gone 1" in listed.output
    (line,) = [text for text in listed.output.splitlines() if "  row 2 " in text]
    assert line.endswith("device deleted: this code no longer works")
    assert f"3 pending activation codes written to {sheet}" in listed.output
    assert sheet_codes(sheet) == {
        n: grouped(outcomes[n].activation_code) for n in (3, 4, 5)
    }

    before = set(server.devices())

    renewed = invoke(env, str(report), "--renew", "--yes")

    assert renewed.exit_code == 0, renewed.output
    assert "renewed 1 codes" not in renewed.output
    assert set(server.devices()) == before


def test_no_token_exits_2(tmp_path: Path) -> None:
    """Without a token the command stops with exit 2 and says how to give one."""
    path = tmp_path / "r.csv"
    now = datetime.now(UTC)
    manifest = manifest_of(("", "Cisco 8865", WS[0], "", ""))
    outcome = Outcome(
        row=2,
        status=Status.CODE_ISSUED,
        activation_code="1234123412341234",
        activation_expiry="2030-01-01T00:00:00.000Z",
    )
    write_report(
        manifest,
        {2: outcome},
        [path],
        RunStats(
            started_at=now, finished_at=now, api_calls=0, rate_limited=0, retries=0
        ),
    )

    result = CliRunner().invoke(main, ["codes", str(path)], env={})

    assert result.exit_code == 2
    assert "WEBEX_ACCESS_TOKEN" in result.output


def test_bad_window_exits_2(tmp_path: Path) -> None:
    """An unreadable --within is a usage error that shows the accepted form."""
    result = CliRunner().invoke(
        main, ["codes", str(tmp_path / "r.csv"), "--within", "7w"]
    )

    assert result.exit_code == 2
    assert "e.g. 7d or 12h" in result.output


def test_not_a_report_exits_2(tmp_path: Path) -> None:
    """A manifest given instead of a report is refused with exit 2."""
    path = tmp_path / "m.csv"
    path.write_text("mac,model,workspaceId\n,Cisco 8865,X\n", encoding="utf-8")

    result = CliRunner().invoke(
        main, ["codes", str(path)], env={"WEBEX_ACCESS_TOKEN": "t"}
    )

    assert result.exit_code == 2
    assert "not a provisioner report" in result.output


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("r/x-report.csv", "r/x-report-renewed.csv"),
        ("r/x-report-renewed.xlsx", "r/x-report-renewed-2.xlsx"),
        ("r/x-report-renewed-2.csv", "r/x-report-renewed-3.csv"),
    ],
)
def test_renewed_report_path(given: str, expected: str) -> None:
    """The default output sits next to the input and never overwrites it."""
    assert renewed_report_path(Path(given)) == Path(expected)


NAMED_WORKSPACE = ORG["workspaces"][20]
NAMED_PERSON = ORG["people"][20]
NAMED_HEADER = ("mac", "model", "workspace", "personEmail")


def make_named_report(
    folder: Path, env: dict[str, str]
) -> tuple[Path, dict[int, Outcome]]:
    """
    Run ``provisioner run`` on two code rows that name their owner by name: row 2 by
    workspace display name, row 3 by email. Return the report and its outcomes.
    """
    manifest = folder / "named.csv"
    manifest.write_text(
        ",".join(NAMED_HEADER)
        + "\n"
        + f",Cisco 8865,{NAMED_WORKSPACE['displayName']},\n"
        + f",Cisco 8865,,{NAMED_PERSON['emails'][0]}\n",
        encoding="utf-8",
    )
    path = folder / "named-report.csv"
    ran = CliRunner().invoke(
        main, ["run", str(manifest), "--report", str(path), "--yes"], env=env
    )
    assert ran.exit_code == 0, ran.output
    _manifest, outcomes = load_report(path)
    assert [outcomes[n].status for n in (2, 3)] == [Status.CODE_ISSUED] * 2
    assert all(outcomes[n].device_id for n in (2, 3))
    return path, outcomes


@pytest.mark.usefixtures("fresh")
def test_renew_rows_that_name_their_owner_by_name(
    server: Emulator,
    env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Rows given by workspace name or email get a fresh code for the owner their run
    resolved, and their old pending devices go, as rows given by id do."""
    report, outcomes = make_named_report(tmp_path, env)
    server.advance(31)
    at(monkeypatch, 31)

    result = invoke(env, str(report), "--renew", "--yes")

    assert result.exit_code == 0, result.output
    assert "renewed 2 codes (rows 2, 3)" in result.output
    _manifest, new = load_report(tmp_path / "named-report-renewed.csv")
    devices = server.devices()
    for number in (2, 3):
        assert new[number].status is Status.CODE_ISSUED
        assert new[number].activation_code != outcomes[number].activation_code
        assert new[number].device_id in devices
        assert outcomes[number].device_id not in devices
    assert devices[new[2].device_id or ""]["workspaceId"] == NAMED_WORKSPACE["id"]
    assert devices[new[3].device_id or ""]["personId"] == NAMED_PERSON["id"]


@pytest.mark.usefixtures("fresh")
def test_renew_looks_up_names_the_report_has_no_id_for(
    server: Emulator,
    env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without the run's id in the owner cell, a name is looked up as a run does; a
    name that no longer resolves fails its row alone, saying why, and keeps its
    old device."""
    report, outcomes = make_named_report(tmp_path, env)
    manifest, _outcomes = load_report(report)
    ghost = "ghost@agency.example.gov"
    edited = build_manifest(
        RawTable(
            path=manifest.path,
            sheet=None,
            columns=NAMED_HEADER,
            records=[
                (2, ("", "Cisco 8865", NAMED_WORKSPACE["displayName"], "")),
                (3, ("", "Cisco 8865", "", ghost)),
            ],
        )
    )
    now = datetime.now(UTC)
    bare = tmp_path / "bare-report.csv"
    write_report(
        edited,
        {n: replace(outcomes[n], owner=None) for n in (2, 3)},
        [bare],
        RunStats(
            started_at=now, finished_at=now, api_calls=0, rate_limited=0, retries=0
        ),
    )
    server.advance(31)
    at(monkeypatch, 31)

    result = invoke(env, str(bare), "--renew", "--yes")

    assert result.exit_code == 1, result.output
    assert "renewed 1 codes (rows 2)" in result.output
    assert (
        f'row 3 failed: renew activation code: no person with the email "{ghost}"'
        in result.output
    )
    _manifest, new = load_report(tmp_path / "bare-report-renewed.csv")
    devices = server.devices()
    assert new[2].status is Status.CODE_ISSUED
    assert devices[new[2].device_id or ""]["workspaceId"] == NAMED_WORKSPACE["id"]
    assert outcomes[2].device_id not in devices
    assert new[3].status is Status.FAILED
    assert new[3].activation_code == outcomes[3].activation_code
    assert outcomes[3].device_id in devices


class Killed(BaseException):
    """Stands for a SIGKILL of ``codes --renew``: nothing after it runs."""


KILL_OWNERS = [("workspaceId", w) for w in WS[20:28]] + [
    ("personId", p) for p in PEOPLE[20:24]
]


def make_code_report(folder: Path, env: dict[str, str]) -> Path:
    """Run twelve code rows, one per owner (some with tags), and return the report."""
    lines = [
        ",Cisco 8865,"
        + (f"{owner}," if kind == "workspaceId" else f",{owner}")
        + (",floor-1" if n % 3 == 0 else ",")
        for n, (kind, owner) in enumerate(KILL_OWNERS)
    ]
    manifest = folder / "codes12.csv"
    manifest.write_text(",".join(HEADER) + "\n" + "\n".join(lines) + "\n")
    report = folder / "r.csv"
    ran = CliRunner().invoke(
        main, ["run", str(manifest), "--report", str(report)], env=env
    )
    assert ran.exit_code == 0, ran.output
    return report


def kill_at(
    monkeypatch: pytest.MonkeyPatch, method: str, count: int, *, answered: bool
) -> None:
    """
    Kill the command at its ``count``-th ``method`` call: before the request is
    sent, or (``answered``) once the API has carried it out but before the command
    sees the answer. Like a SIGKILL, the journal is neither committed nor closed;
    only its lock goes with the "process".
    """
    real = getattr(ApiClient, method)
    calls = 0

    async def killing(self: ApiClient, *args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        fatal = calls == count
        if fatal and not answered:
            raise Killed
        result = await real(self, *args, **kwargs)
        if fatal:
            raise Killed
        return result

    def killed(journal: Journal) -> None:
        journal._db.close()
        release_journal(journal.path, journal._lock)

    monkeypatch.setattr(ApiClient, method, killing)
    monkeypatch.setattr("provisioner.cli.codes._let_go", killed, raising=False)


@pytest.mark.usefixtures("fresh")
@pytest.mark.parametrize(
    ("method", "count", "answered"),
    [
        ("create_activation_code", 10, False),
        ("create_activation_code", 5, True),
        ("delete_device", 4, False),
        ("delete_device", 4, True),
    ],
    ids=["before-code", "code-answer-lost", "before-void", "voided-not-done"],
)
def test_renew_killed_anywhere_then_run_again_loses_no_code(
    server: Emulator,
    env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    count: int,
    answered: bool,
) -> None:
    """A renewal killed at any step, then run again, leaves every row a working
    code of a live pending device of its owner; no owner has two, and no pending
    device is left that the report does not account for."""
    report = make_code_report(tmp_path, env)
    server.advance(29)
    at(monkeypatch, 29)
    with monkeypatch.context() as patch:
        kill_at(patch, method, count, answered=answered)
        with pytest.raises(BaseExceptionGroup) as caught:
            invoke(env, str(report), "--renew", "--within", "7d", "--yes")
    assert caught.value.subgroup(Killed) is not None
    renewed = tmp_path / "r-renewed.csv"
    assert not renewed.exists()

    again = invoke(env, str(report), "--renew", "--within", "7d", "--yes")

    assert again.exit_code == 0, again.output
    assert "renewed 12 codes" in again.output
    _manifest, final = load_report(renewed)
    _manifest, first = load_report(report)
    devices = server.devices()
    pending = {
        i: d
        for i, d in devices.items()
        if not d.get("mac") and d.get("connectionStatus") == "activating"
    }
    for number, (kind, owner) in enumerate(KILL_OWNERS, start=2):
        outcome = final[number]
        assert outcome.status is Status.CODE_ISSUED, outcome
        assert outcome.activation_code != first[number].activation_code
        assert outcome.device_id in pending, number
        assert pending[outcome.device_id or ""].get(kind) == owner
        assert not outcome.tags_deferred
    assert set(pending) == {final[n].device_id for n in final}
    owners = Counter(
        d.get("workspaceId") or d.get("personId") for d in pending.values()
    )
    assert max(owners.values()) == 1
    assert not (tmp_path / "r-renewed.journal.sqlite").exists()


@pytest.mark.usefixtures("fresh")
def test_listing_after_a_killed_renewal_says_which_codes_are_gone_and_how_to_finish(
    server: Emulator,
    env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A renewal killed after its 4th void leaves old codes whose devices are gone:
    the listing of the report calls exactly those gone (the rest expiring), writes
    none of them to the sheet, and names the renewal's journal and the command that
    finishes it; that command then finishes it."""
    report = make_code_report(tmp_path, env)
    server.advance(25)
    at(monkeypatch, 25)
    with monkeypatch.context() as patch:
        kill_at(patch, "delete_device", 4, answered=True)
        with pytest.raises(BaseExceptionGroup):
            invoke(env, str(report), "--renew", "--yes")
    _manifest, first = load_report(report)
    held = server.devices()
    voided = {n for n, o in first.items() if o.device_id not in held}
    journal = tmp_path / "r-renewed.journal.sqlite"
    before = server.writes()

    listed = invoke(env, str(report), "--sheet")

    assert listed.exit_code == 0, listed.output
    # The 4th void and any begun beside it (the renewal works on several owners).
    assert len(voided) >= 4
    assert f"expiring {12 - len(voided)} · expired 0 · gone {len(voided)}" in (
        listed.output
    )
    gone = listed.output.split("gone:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert {int(line.split()[1]) for line in gone} == voided
    assert set(sheet_codes(tmp_path / "r-codes.xlsx")) == set(first) - voided
    assert f"its journal is {journal}" in listed.output
    assert f"finish it with: provisioner codes {report} --renew" in listed.output
    assert server.writes() == before

    finished = invoke(env, str(report), "--renew", "--yes")

    assert finished.exit_code == 0, finished.output
    assert not journal.exists()
    _manifest, final = load_report(tmp_path / "r-renewed.csv")
    assert all(o.status is Status.CODE_ISSUED for o in final.values())
    assert {o.device_id for o in final.values()} <= set(server.devices())


ORG2 = org_id_for("org2")


@pytest.fixture(name="partner_url")
def _partner_url() -> Iterator[str]:
    """org1 and org2 beside the seeded org: the partner token manages org1 only,
    another partner token both (it makes the report)."""
    args = ["--orgs", "2", "--partner", f"{PARTNER}=org1"]
    args += ["--partner", f"{EVERY_ORG}=org1,org2"]
    with run_in_subprocess(args) as (_process, base_url):
        yield base_url


def partner_code_report(
    base_url: str, folder: Path, rows: dict[str | None, int]
) -> Path:
    """A partner run's report of ``rows`` code rows per org (None: the seeded org),
    one workspace each, made with the token of every org; its CSV's path."""
    manifest = folder / "partner-codes.csv"
    with manifest.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(org_manifests.HEADER)
        for key, count in rows.items():
            org = "" if key is None else org_id_for(key)
            for owner in workspaces_of(key)[:count]:
                writer.writerow(("", "Cisco 8875", owner, "", org, ""))
    report = folder / "out" / "partner-codes"
    made = partner_codes(
        base_url, ["run", str(manifest), "--report", str(report), "--quiet"]
    )
    assert made.exit_code == 0, made.output
    return Path(f"{report}.csv")


def partner_codes(base_url: str, args: list[str], token: str = EVERY_ORG) -> Result:
    return CliRunner().invoke(
        main,
        [*args, "--base-url", base_url],
        env={"WEBEX_ACCESS_TOKEN": token},
        catch_exceptions=False,
    )


def org_of(manifest: Manifest, number: int) -> str:
    (row,) = [row for row in manifest.rows if row.number == number]
    return row.org_id or ""


def test_renew_of_a_partner_report_goes_on_past_a_refused_org(
    partner_url: str, tmp_path: Path
) -> None:
    """
    codes --renew of a partner's report with a token org2 refuses: the seeded org's
    and org1's codes are renewed in the emulator, org2's rows fail with its one
    reason and keep their codes, and org2's devices are left as they were.
    """
    report = partner_code_report(partner_url, tmp_path, {None: 2, "org1": 2, "org2": 2})
    manifest, before = load_report(report)
    held = {key: org_devices(partner_url, key) for key in (None, "org1", "org2")}

    result = partner_codes(
        partner_url,
        ["codes", str(report), "--within", "31d", "--renew", "--yes"],
        token=PARTNER,
    )

    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert "lacks a scope" not in result.output
    _manifest, after = load_report(renewed_report_path(report))
    refused = [n for n in before if org_of(manifest, n) == ORG2]
    renewed = [n for n in before if n not in refused]
    assert (len(refused), len(renewed)) == (2, 4)
    for number in refused:
        assert after[number].status is Status.FAILED
        assert after[number].activation_code == before[number].activation_code
        assert after[number].device_id == before[number].device_id
        assert (after[number].error or "").startswith(
            "check org: the token may not act for this org (HTTP 403"
        )
        assert "then renew its codes" in (after[number].error or "")
    assert f"rows {', '.join(map(str, refused))} failed: check org:" in result.stdout
    assert org_devices(partner_url, "org2") == held["org2"]
    for key in (None, "org1"):
        now_held = {device["id"] for device in org_devices(partner_url, key)}
        rows = [
            n
            for n in renewed
            if org_of(manifest, n) == (org_id_for(key) if key else "")
        ]
        assert len(rows) == 2
        for number in rows:
            assert after[number].status is Status.CODE_ISSUED
            assert after[number].activation_code != before[number].activation_code
            assert after[number].device_id in now_held
            assert before[number].device_id not in now_held


def test_listing_of_a_partner_report_says_which_rows_were_not_checked(
    partner_url: str, tmp_path: Path
) -> None:
    """
    codes (listing only) of a partner's report with a token org2 refuses: the
    other orgs' codes are listed by state, org2's rows as not checked with its
    reason once, nothing is written, and the exit says the listing is partial.
    """
    report = partner_code_report(partner_url, tmp_path, {None: 1, "org1": 2, "org2": 2})
    manifest, before = load_report(report)
    held = {key: org_devices(partner_url, key) for key in (None, "org1", "org2")}

    result = partner_codes(partner_url, ["codes", str(report)], token=PARTNER)

    assert result.exit_code == 1, result.output
    assert "activated 0 · pending 3 · expiring 0 · expired 0 · not checked 2" in (
        result.stdout
    )
    refused = [n for n in before if org_of(manifest, n) == ORG2]
    not_checked = result.stdout.split("not checked:\n", 1)[1].splitlines()
    assert [line.split()[1] for line in not_checked[:2]] == list(map(str, refused))
    assert not_checked[2].startswith(
        f"  {ORG2}, rows {', '.join(map(str, refused))}: the token may not act for "
        "this org (HTTP 403"
    )
    assert not_checked[2].endswith("then list its codes")
    assert {k: org_devices(partner_url, k) for k in (None, "org1", "org2")} == held


def test_codes_with_an_org_id_the_token_may_not_act_for_names_the_flag(
    partner_url: str, tmp_path: Path
) -> None:
    """The org --org-id names is the command's own: refused, nothing is read
    or written, and the one sentence names the flag, as run and rollback say it."""
    report = partner_code_report(partner_url, tmp_path, {"org2": 1})

    result = partner_codes(
        partner_url,
        ["codes", str(report), "--renew", "--yes", "--org-id", ORG2],
        token=PARTNER,
    )

    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(
        f"Error: --org-id {ORG2}: the token may not act for this org"
    )
    assert not renewed_report_path(report).exists()


def test_renewal_stopped_in_an_org_this_token_may_not_act_for_waits_for_one_that_may(
    partner_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """
    A renewal killed once org2's new code was issued, run again with a token org2
    refuses: it stops before any write, saying why (only a token that may act there
    can keep that code and void the old one). With such a token the same command
    then finishes: no code lost, no pending device the report does not account for.
    """
    report = partner_code_report(partner_url, tmp_path, {"org2": 2})
    renew = ["codes", str(report), "--within", "31d", "--renew", "--yes"]
    with monkeypatch.context() as patch:
        kill_at(patch, "create_activation_code", 1, answered=True)
        with pytest.raises(BaseExceptionGroup):
            partner_codes(partner_url, renew)
    held = org_devices(partner_url, "org2")

    refused = partner_codes(partner_url, renew, token=PARTNER)

    assert refused.exit_code == 2, refused.output
    assert "an earlier codes --renew stopped while renewing rows" in refused.stderr
    assert org_devices(partner_url, "org2") == held
    assert not renewed_report_path(report).exists()
    again = partner_codes(partner_url, renew)
    assert again.exit_code == 0, again.output
    _manifest, final = load_report(renewed_report_path(report))
    pending = {d["id"] for d in org_devices(partner_url, "org2")}
    assert pending == {outcome.device_id for outcome in final.values()}
    assert all(outcome.status is Status.CODE_ISSUED for outcome in final.values())


def test_renew_confirmation_lists_a_refused_org_as_refused(
    partner_url: str, tmp_path: Path
) -> None:
    """
    The confirmation of codes --renew lists org2, which refuses the token, with the
    rows that will fail there and why, not as codes it will issue; the counts are
    the other orgs' alone.
    """
    report = partner_code_report(partner_url, tmp_path, {None: 1, "org2": 2})

    result = partner_codes(
        partner_url,
        ["codes", str(report), "--within", "31d", "--renew", "--yes"],
        token=PARTNER,
    )

    assert result.exit_code == 1, result.output
    confirmation = result.stderr.splitlines()
    assert "  issue up to 1 activation code (each makes a pending device)" in (
        confirmation
    )
    assert "  in 2 orgs:" in confirmation
    (org2,) = [line for line in confirmation if ORG2 in line]
    assert org2.startswith(
        f"    {ORG2}: 2 rows will fail: the token may not act for this org (HTTP 403"
    )
    assert org2.endswith("then renew its codes")


def test_a_failed_row_whose_code_now_checks_out_is_code_issued_again(
    partner_url: str, tmp_path: Path
) -> None:
    """
    A renewal refused in org2 leaves org2's rows failed; 25 days on, one of their
    devices activated, a renewal of that report with a token org2 accepts renews
    the other and gives the activated one its true status back (code_issued, its
    code kept, the 403 cleared): every code row ends well, exit 0.
    """
    report = partner_code_report(partner_url, tmp_path, {None: 1, "org2": 2})
    manifest, before = load_report(report)
    used, waiting = [n for n in before if org_of(manifest, n) == ORG2]
    emulator = Emulator(partner_url)
    emulator.admin("POST", f"/devices/{before[used].device_id}/activate", {})
    emulator.advance(25)
    refused = partner_codes(
        partner_url, ["codes", str(report), "--renew", "--yes"], token=PARTNER
    )
    assert refused.exit_code == 1, refused.output
    first = renewed_report_path(report)
    _manifest, failed = load_report(first)
    assert [failed[n].status for n in (used, waiting)] == [Status.FAILED] * 2

    result = partner_codes(partner_url, ["codes", str(first), "--renew", "--yes"])

    assert result.exit_code == 0, result.output
    assert "cleared the failure of 1 rows whose code stands" in result.output
    _manifest, final = load_report(renewed_report_path(first))
    assert all(o.status is Status.CODE_ISSUED for o in final.values()), final
    assert (final[used].error, final[used].http_status) == (None, None)
    assert final[used].activation_code == before[used].activation_code
    held = {d["id"]: d for d in org_devices(partner_url, "org2")}
    assert held[final[used].device_id or ""]["connectionStatus"] == "connected"
    assert final[waiting].activation_code != before[waiting].activation_code
    assert final[waiting].device_id in held
    assert before[waiting].device_id not in held


def test_the_help_promises_no_renewal_of_a_gone_code() -> None:
    """--renew gives a gone code no new one (its device was deleted, by the renewal
    that replaced it, say); the help once said gone codes are replaced."""
    text = " ".join(CliRunner().invoke(main, ["codes", "--help"]).output.split())

    assert "expired and expiring codes of devices that never activated" in text
    assert "a gone code gets no new one" in text
    assert "gone codes of devices that never activated are replaced" not in text
