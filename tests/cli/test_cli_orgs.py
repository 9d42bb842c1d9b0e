"""
A partner's run across several orgs, end to end: the confirmation lists every org,
the summary and the Summary sheet count per org, --split-by-org writes one report
per org, and each of those re-runs cleanly.
"""

from __future__ import annotations

import csv
import json
import re
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from click.testing import CliRunner, Result
from org_manifests import (
    HEADER,
    HOME,
    PARTNER,
    org_devices,
    run_partner_manifest,
    workspaces_of,
    write_org_manifest,
)

from provisioner.cli import main
from provisioner.emulator import org_id_for, org_token
from provisioner.emulator.directory import webex_id
from provisioner.emulator.harness import run_in_subprocess

ORG1, ORG2 = org_id_for("org1"), org_id_for("org2")


@pytest.fixture(name="base_url")
def _base_url() -> Iterator[str]:
    """org1 and org2 beside the seeded org; the partner token manages org1 only."""
    args = ["--orgs", "2", "--partner", f"{PARTNER}=org1"]
    with run_in_subprocess(args) as (_process, base_url):
        yield base_url


def invoke(args: Sequence[str], token: str = PARTNER) -> Result:
    return CliRunner().invoke(
        main, list(args), env={"WEBEX_ACCESS_TOKEN": token}, catch_exceptions=False
    )


def read_report(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def run_three_orgs(base_url: str, folder: Path, *extra: str) -> tuple[Result, Path]:
    return run_partner_manifest(
        base_url, folder, {None: 2, "org1": 3, "org2": 4}, *extra
    )


def test_refused_org_fails_only_its_rows_and_every_org_is_counted(
    base_url: str, tmp_path: Path
) -> None:
    """
    org2's rows fail with its one reason; the confirmation lists each org with its
    rows, and the summary's per-org counts add up to the whole. The refusal is said
    in those words only: no raw log line of it beside them.
    """
    result, report = run_three_orgs(base_url, tmp_path)

    assert result.exit_code == 1
    rows = read_report(Path(f"{report}.csv"))
    by_org = Counter((row["orgId"], row["status"]) for row in rows)
    assert by_org == {("", "created"): 2, (ORG1, "created"): 3, (ORG2, "failed"): 4}
    confirmation = result.stderr
    assert "in 3 orgs:" in confirmation
    assert f"Customer org1 ({ORG1}): 3 rows: create up to 3 devices" in confirmation
    assert re.search(
        rf"{re.escape(ORG2)}: 4 rows will fail: the token may not act for this org",
        confirmation,
    )
    counted = re.findall(r"^  (.+): (\d+) rows: (.+)$", result.stdout, re.MULTILINE)
    assert [(label, int(n)) for label, n, _ in counted] == [
        (counted[0][0], 2),
        (f"Customer org1 ({ORG1})", 3),
        (ORG2, 4),
    ]
    totals: Counter[str] = Counter()
    for _, _, text in counted:
        for part in text.split(" · "):
            status, number = part.rsplit(" ", 1)
            totals[status] += int(number)
    assert totals == Counter(row["status"] for row in rows)
    assert f"Run: {len(rows)} rows · created 5 · failed 4" in result.stdout
    assert "org_refused" not in result.output


def test_live_validation_says_each_row_met_its_own_orgs_models(
    base_url: str, tmp_path: Path
) -> None:
    """validate --live in a partner's manifest: the refused org's rows are invalid in
    orgId, and the models line speaks of each row's own org, not "the org"."""
    manifest = write_org_manifest(tmp_path / "p.csv", {None: 1, "org1": 1, "org2": 1})

    result = invoke(["validate", str(manifest), "--live", "--base-url", base_url])

    assert result.exit_code == 1, result.output
    assert "models: each row checked against its own org's supported devices" in (
        result.output
    )
    assert "(3 orgs)" in result.output
    assert "the org's" not in result.output
    assert re.search(r'row 4, column "orgId".*may not act for this org', result.output)


def test_live_validation_counts_the_token_own_org_once(
    base_url: str, tmp_path: Path
) -> None:
    """Rows without orgId and a row that spells out the token's own org id are one
    org, as a run takes them: counted once, and its supported devices read once."""
    manifest = write_org_manifest(tmp_path / "p.csv", {None: 3, "org1": 1})
    with manifest.open(newline="", encoding="utf-8") as handle:
        lines = list(csv.reader(handle))
    lines[1][HEADER.index("orgId")] = HOME["orgId"]
    with manifest.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, lineterminator="\n").writerows(lines)
    since = _last_request(base_url)

    result = invoke(["validate", str(manifest), "--live", "--base-url", base_url])

    assert result.exit_code == 0, result.output
    assert "(2 orgs)" in result.output
    reads = Counter(
        entry["org"]
        for entry in _requests(base_url, since)
        if entry["route"] == "GET /v1/telephony/config/supportedDevices"
    )
    assert reads == {HOME["orgId"]: 1, ORG1: 1}


def _requests(base_url: str, since: int = 0) -> list[dict[str, Any]]:
    admin = base_url.removesuffix("/v1") + "/_emulator/requests"
    with urllib.request.urlopen(f"{admin}?since={since}", timeout=10) as answer:
        return list(json.loads(answer.read())["items"])


def _last_request(base_url: str) -> int:
    return max((int(entry["seq"]) for entry in _requests(base_url)), default=0)


def test_code_renewal_confirms_every_org_it_changes(
    base_url: str, tmp_path: Path
) -> None:
    """
    codes --renew of a partner run's report lists each org it renews codes in, with
    its name, id and counts, not the token's org alone; and the new codes are made
    in each row's own org.
    """
    manifest = tmp_path / "codes.csv"
    with manifest.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(HEADER)
        for key, count in ((None, 2), ("org1", 3)):
            for index in range(count):
                org = "" if key is None else org_id_for(key)
                owner = workspaces_of(key)[index]
                writer.writerow(("", "Cisco 8875", owner, "", org, ""))
    report = tmp_path / "out" / "codes"
    run = invoke(
        ["run", str(manifest), "--base-url", base_url, "--report", str(report)]
        + ["--quiet"]
    )
    assert run.exit_code == 0, run.output
    issued = {row["deviceId"] for row in read_report(Path(f"{report}.csv"))}

    result = invoke(
        ["codes", f"{report}.csv", "--within", "31d", "--renew", "--yes"]
        + ["--base-url", base_url]
    )

    assert result.exit_code == 0, result.output
    confirmation = result.stderr
    assert "  org:  " not in confirmation
    assert "  issue up to 5 activation codes" in confirmation
    assert "  in 2 orgs:" in confirmation
    assert re.search(
        rf"^    {re.escape(HOME['orgName'])} \({re.escape(HOME['orgId'])}\): 2 rows: "
        "issue up to 2 activation codes",
        confirmation,
        re.MULTILINE,
    )
    assert re.search(
        rf"^    Customer org1 \({re.escape(ORG1)}\): 3 rows: issue up to 3 "
        r"activation codes .* void 3 earlier activation codes",
        confirmation,
        re.MULTILINE,
    )
    renewed = read_report(Path(f"{report}-renewed.csv"))
    held = {device["id"] for device in org_devices(base_url, "org1")}
    org1_devices = {row["deviceId"] for row in renewed if row["orgId"] == ORG1}
    assert len(org1_devices) == 3
    assert org1_devices <= held
    assert not issued & held


def test_summary_sheet_counts_per_org(base_url: str, tmp_path: Path) -> None:
    """The XLSX Summary sheet has a line per org, adding up to every row."""
    _, report = run_three_orgs(base_url, tmp_path)

    workbook = openpyxl.load_workbook(f"{report}.xlsx", read_only=True)
    lines = list(workbook["Summary"].iter_rows(values_only=True))
    workbook.close()
    start = next(i for i, line in enumerate(lines) if line[:1] == ("By org",))
    assert lines[start + 1][:3] == ("org", "rows", "by status")
    per_org = {line[0]: line[1:3] for line in lines[start + 2 : start + 5]}

    assert per_org[f"Customer org1 ({ORG1})"] == (3, "created 3")
    assert per_org[ORG2] == (4, "failed 4")
    assert sum(int(str(rows)) for rows, _ in per_org.values()) == 9


def test_split_by_org_reports_rerun_cleanly(base_url: str, tmp_path: Path) -> None:
    """
    --split-by-org writes one complete report per org; org2's, re-run with a token
    that may act for org2, creates its rows; org1's has nothing left to do.
    """
    result, report = run_three_orgs(base_url, tmp_path, "--split-by-org")

    split = sorted(Path(report).parent.glob("partner-org-*.csv"))
    assert len(split) == 3
    parts = {path: read_report(path) for path in split}
    numbers = sorted(int(row["row"]) for rows in parts.values() for row in rows)
    assert numbers == sorted(
        int(row["row"]) for row in read_report(Path(f"{report}.csv"))
    )
    org2_report = next(p for p, rows in parts.items() if rows[0]["orgId"] == ORG2)
    org1_report = next(p for p, rows in parts.items() if rows[0]["orgId"] == ORG1)
    # The token may not read org2's name either: its report is named by its id.
    assert org2_report.name.startswith("partner-org-")
    assert org1_report.name.startswith("partner-org-customer-org1-")
    assert f"report for {ORG2}: {org2_report}" in result.stdout
    assert {row["status"] for row in parts[org2_report]} == {"failed"}

    again = invoke(
        ["rerun", str(org2_report), "--base-url", base_url, "--quiet"],
        token=org_token("org2"),
    )
    nothing = invoke(["rerun", str(org1_report), "--base-url", base_url])

    assert again.exit_code == 0, again.output
    rerun_rows = read_report(org2_report.with_name(f"{org2_report.stem}-rerun.csv"))
    assert [row["row"] for row in rerun_rows] == [
        row["row"] for row in parts[org2_report]
    ]
    assert {row["status"] for row in rerun_rows} == {"created"}
    assert nothing.exit_code == 0
    assert "Nothing to re-run" in nothing.stdout


def test_split_by_org_files_are_distinct_though_short_ids_clash(
    base_url: str, tmp_path: Path
) -> None:
    """
    Two orgs the API does not know, their UUIDs alike in the first block, get a
    report each: every row of the run is in exactly one per-org file.
    """
    twins = [
        webex_id("ORGANIZATION", uuid.UUID(f"5632e78c-0000-4000-8000-00000000{tail}"))
        for tail in ("6f00", "6f11")
    ]
    owner = workspaces_of(None)[0]
    manifest = tmp_path / "twins.csv"
    with manifest.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(HEADER)
        for number, org in enumerate(["", *twins, *twins], start=1):
            writer.writerow((f"0A0B{number:08X}", "Cisco 8851", owner, "", org, ""))
    report = tmp_path / "out" / "twins"

    result = invoke(
        ["run", str(manifest), "--base-url", base_url, "--report", str(report)]
        + ["--quiet", "--split-by-org"]
    )

    assert result.exit_code == 1, result.output
    split = sorted(report.parent.glob("twins-org-*.csv"))
    assert len(split) == 3
    rows = Counter(row["row"] for path in split for row in read_report(path))
    assert rows == Counter(row["row"] for row in read_report(Path(f"{report}.csv")))
    for path in split:
        assert len({row["orgId"] for row in read_report(path)}) == 1


def test_the_dry_runs_command_writes_the_split_reports_at_the_rates_told(
    base_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """
    A dry run with --split-by-org, --max-rate ORG=R and --concurrency names a real
    run that keeps them: run as printed, it writes one report per org.
    """
    monkeypatch.chdir(tmp_path)
    write_org_manifest(tmp_path / "p.csv", {None: 1, "org1": 2})
    flags = ["--split-by-org", "--max-rate", f"{ORG1}=7", "--concurrency", "3"]

    dry = invoke(["run", "p.csv", "--dry-run", "--base-url", base_url, *flags])
    hint = dry.stderr.rsplit("without --dry-run: ", 1)[1].strip().split()
    real = invoke(hint[1:])

    assert dry.exit_code == 0, dry.output
    assert hint[hint.index("--max-rate") + 1] == f"{ORG1}=7"
    assert hint[hint.index("--concurrency") + 1] == "3"
    assert real.exit_code == 0, real.output
    assert len(list((tmp_path / "reports").glob("p-report-org-*.csv"))) == 2


def test_an_orgs_xlsx_report_reruns_with_that_orgs_own_token(
    base_url: str, tmp_path: Path
) -> None:
    """
    The XLSX report of a refused org, whose history names the partner's run, is
    rerun with a token of that org, as its rows' reason says: they are created
    there. The XLSX history once made the rerun refuse "another org".
    """
    result, report = run_three_orgs(base_url, tmp_path, "--split-by-org")
    org2_report = next(
        path
        for path in Path(report).parent.glob("partner-org-*.xlsx")
        if not path.name.startswith(("partner-org-customer", "partner-org-example"))
    )

    again = invoke(
        ["rerun", str(org2_report), "--base-url", base_url, "--quiet"],
        token=org_token("org2"),
    )

    assert result.exit_code == 1, result.output
    assert again.exit_code == 0, again.output
    rerun = openpyxl.load_workbook(
        org2_report.with_name(f"{org2_report.stem}-rerun.xlsx"), read_only=True
    )
    sheet = rerun.worksheets[0]
    header = [cell.value for cell in next(sheet.iter_rows(max_row=1))]
    statuses = {
        row[header.index("status")]
        for row in sheet.iter_rows(min_row=2, values_only=True)
    }
    assert statuses == {"created"}
    assert len(org_devices(base_url, "org2")) == 4


def test_a_mac_on_another_orgs_row_stays_a_duplicate_in_an_org_reports_rerun(
    base_url: str, tmp_path: Path
) -> None:
    """
    A MAC on a row of the token's org and on one of org1's: the run marks both
    invalid; a rerun of org1's report (and of that rerun's report) keeps its row
    invalid with the same words and registers nothing, until the MAC is fixed.
    """
    manifest = write_org_manifest(tmp_path / "p.csv", {None: 2, "org1": 2})
    home_mac = read_report(manifest)[0]["mac"]
    org1_mac = next(r["mac"] for r in read_report(manifest) if r["orgId"] == ORG1)
    manifest.write_text(manifest.read_text().replace(org1_mac, home_mac))
    report = tmp_path / "out" / "p"
    ran = invoke(
        ["run", str(manifest), "--base-url", base_url, "--report", str(report)]
        + ["--quiet", "--split-by-org"]
    )
    assert ran.exit_code == 1, ran.output
    combined = {r["row"]: r for r in read_report(Path(f"{report}.csv"))}
    (org1_report,) = report.parent.glob("p-org-customer-org1-*.csv")
    duplicate = next(r for r in read_report(org1_report) if r["mac"] == home_mac)
    assert duplicate["status"] == "invalid"

    again = invoke(["rerun", str(org1_report), "--base-url", base_url, "--quiet"])
    reran = org1_report.with_name(f"{org1_report.stem}-rerun.csv")
    once_more = invoke(["rerun", str(reran), "--base-url", base_url, "--quiet"])
    rows = [
        next(r for r in read_report(path) if r["row"] == duplicate["row"])
        for path in (reran, org1_report.with_name(f"{org1_report.stem}-rerun-2.csv"))
    ]
    held = {d["mac"] for d in org_devices(base_url, "org1")}
    reran.write_text(reran.read_text().replace(home_mac, "0A0B0C0D0E0F"))
    fixed = invoke(["rerun", str(reran), "--base-url", base_url, "--quiet"])

    assert again.exit_code == 1, again.output
    assert once_more.exit_code == 1, once_more.output
    for row in rows:
        assert row["status"] == "invalid"
        assert row["error"] == combined[duplicate["row"]]["error"]
        assert f"MAC {home_mac} is also on row 2;" in row["error"]
    assert home_mac not in held
    assert fixed.exit_code == 0, fixed.output
    assert "0A0B0C0D0E0F" in {d["mac"] for d in org_devices(base_url, "org1")}


def test_an_orgs_report_tells_nothing_of_the_other_customers(
    base_url: str, tmp_path: Path
) -> None:
    """
    A partner forwards org1's report to that customer: no sheet of it, the hidden
    run history included, names another customer's org (only the partner's own, as
    the token's) or counts its rows. Its history line counts org1's own rows.
    """
    result, report = run_three_orgs(base_url, tmp_path, "--split-by-org")
    org1_report = next(Path(report).parent.glob("partner-org-customer-org1-*.xlsx"))

    book = openpyxl.load_workbook(org1_report)
    cells = [
        str(cell)
        for sheet in book.worksheets
        for row in sheet.iter_rows(values_only=True)
        for cell in row
        if cell is not None
    ]
    history = [
        row
        for row in book["Summary"].iter_rows(values_only=True)
        if row and str(row[0]).startswith("1 · run")
    ]

    assert result.exit_code == 1, result.output
    assert not any(ORG2 in cell for cell in cells)
    ((*_, decided),) = history
    assert decided == "created 3"


def _api(base_url: str, method: str, path: str, body: Any = None) -> Any:
    """Call the emulated API with the partner's token (a blocker device, say)."""
    request = urllib.request.Request(
        f"{base_url}{path}",
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={
            "Authorization": f"Bearer {PARTNER}",
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        raw = response.read()
    return json.loads(raw) if raw else None


def test_a_rerun_of_an_orgs_report_with_its_own_token_counts_for_the_run(
    base_url: str, tmp_path: Path
) -> None:
    """
    An org1 row fails (its MAC is held elsewhere); once that is cleared, org1's
    report is rerun with org1's own token. The same partner run then reports the
    row as that rerun ended it (created, its device), and a rollback of the
    combined report takes the device out: the rerun's journal, written from
    another org's token, speaks for the rows that name their org.
    """
    manifest = write_org_manifest(tmp_path / "partner.csv", {"org1": 2})
    rows = read_report(manifest)
    mac, home_room = rows[0]["mac"], workspaces_of(None)[0]
    blocker = _api(
        base_url,
        "POST",
        "/devices",
        {"mac": mac, "model": "DMS Cisco 8851", "workspaceId": home_room},
    )
    report = tmp_path / "out" / "partner"
    run = ["run", str(manifest), "--base-url", base_url, "--report", str(report)]
    run += ["--quiet", "--split-by-org"]
    first = invoke(run)
    _api(base_url, "DELETE", f"/devices/{blocker['id']}")
    (org1_report,) = Path(report).parent.glob("partner-org-customer-org1-*.csv")

    rerun = invoke(
        ["rerun", str(org1_report), "--base-url", base_url, "--quiet"],
        token=org_token("org1"),
    )
    again = invoke(run)
    made = {row["mac"]: row for row in read_report(Path(f"{report}.csv"))}
    rolled = invoke(["rollback", f"{report}.csv", "--base-url", base_url, "--yes"])

    assert first.exit_code == 1, first.output
    assert rerun.exit_code == 0, rerun.output
    assert again.exit_code == 0, again.output
    assert made[mac]["status"] == "created"
    assert rolled.exit_code == 0, rolled.output
    assert org_devices(base_url, "org1") == []


def test_the_codes_sheet_of_a_partner_report_names_each_org(
    base_url: str, tmp_path: Path
) -> None:
    """
    codes --sheet of a partner's report writes the same sheet as the report's own:
    each code's org by the name the run read (org1's), not its id.
    """
    manifest = tmp_path / "codes.csv"
    with manifest.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(HEADER)
        writer.writerow(("", "Cisco 8875", workspaces_of(None)[0], "", "", ""))
        writer.writerow(("", "Cisco 8875", workspaces_of("org1")[0], "", ORG1, ""))
    report = tmp_path / "out" / "codes"
    run = invoke(
        ["run", str(manifest), "--base-url", base_url, "--report", str(report)]
        + ["--quiet"]
    )
    sheet = tmp_path / "sheet.xlsx"

    listed = invoke(
        ["codes", f"{report}.xlsx", "--base-url", base_url, "--sheet", str(sheet)]
    )

    assert run.exit_code == 0, run.output
    assert listed.exit_code == 0, listed.output
    lines = list(openpyxl.load_workbook(sheet).active.iter_rows(values_only=True))
    orgs = {line[0] for line in lines[1:]}
    assert lines[0][0] == "org"
    assert "Customer org1" in orgs
    assert ORG1 not in orgs
