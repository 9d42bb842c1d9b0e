"""
Soak ``provisioner run`` under faults and kills, then check the emulator's state.

The emulator (its own process) limits requests to 200/s (burst 20), answers 10% of
requests 502/503/504, drops 5% of connections before any state change, and makes 3% of
creates ambiguous (the device is created, then the connection drops). The manifest has
5,000 rows: MAC rows and every tenth an activation-code row, all with tags.

The same ``provisioner run`` command is started, SIGKILLed at a seeded random moment,
and started again, five times; the sixth run is left to finish. Then the check, which
reads the emulator's devices and the report independently of the tool's own code:

- every manifest row appears exactly once in the report, and ended well;
- every MAC is registered exactly once, to the row's owner, with exactly its tags, and
  the report names that device;
- every activation-code row's device exists for its owner with exactly its tags;
- no other device exists (no duplicate, no orphaned pending device).

It prints the counts and exits 1 on any violation.

With ``--orgs N`` it is a partner's soak: the rows go round the seeded org, N customer
orgs (each with a token bucket of its own, 100/s burst 10) and one more org the token
may not act for. Each org's devices are checked against its own rows, and every row of
the refused org must end ``failed`` with that org's one reason, leaving no device there.

    .venv/bin/python benchmarks/soak.py [--rows 5000] [--kills 5] [--seed 6] [--orgs N]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import (
    OUT,
    ROOT,
    Emulator,
    manifest_rows,
    provisioner_command,
    start_emulator,
    wait_child,
    write_manifest,
)

from provisioner.emulator import DEFAULT_TOKEN, OrgSpec, org_id_for
from provisioner.emulator.directory import generated_org
from provisioner.run.journal import journal_path_for

OK_STATUSES = {"created", "adopted", "code_issued"}


@dataclass
class Check:
    """
    The violations found, by kind, with a few examples each.
    """

    counts: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def fail(self, kind: str, example: str) -> None:
        """
        Record one violation of ``kind``.
        """
        self.counts[kind] += 1
        shown = self.examples.setdefault(kind, [])
        if len(shown) < 3:
            shown.append(example)


@dataclass(frozen=True, slots=True)
class Attempt:
    """
    One start of the command: when it was killed (None: ran to the end), its exit code.
    """

    killed_after: float | None
    code: int
    wall: float
    rows_done: int
    rows_in_flight: int


def emulator_args(seed: int, latency_ms: float) -> list[str]:
    """
    The soak's fault plan as emulator flags.
    """
    return [
        "--seed",
        str(seed),
        "--rate-limit",
        "200",
        "--burst",
        "20",
        "--latency-ms",
        str(latency_ms),
        "--jitter-ms",
        str(latency_ms / 2),
        "--fault-rate",
        "0.10",
        "--drop-rate",
        "0.05",
        "--ambiguous-rate",
        "0.03",
    ]


#: A customer org's own limit in a partner soak (the seeded org keeps the global one).
ORG_LIMIT, ORG_BURST = 100, 10
#: What a refused org's rows must say (the run's one reason for that org).
REFUSED_REASON = "the token may not act for this org"


def partner_keys(orgs: int) -> tuple[list[str], str]:
    """
    The customer orgs' keys, and the key of the org the token may not act for.
    """
    return [f"org{n}" for n in range(1, orgs + 1)], f"org{orgs + 1}"


def partner_args(orgs: int) -> list[str]:
    """
    The emulator's flags for a partner soak: the orgs, their limits, the partner token.
    """
    managed, refused = partner_keys(orgs)
    args = ["--orgs", str(orgs + 1)]
    for key in (*managed, refused):
        args += ["--org-rate-limit", f"{key}={ORG_LIMIT}"]
        args += ["--org-burst", f"{key}={ORG_BURST}"]
    return [*args, "--partner", f"{DEFAULT_TOKEN}={','.join(managed)}"]


def partner_rows(rows: int, orgs: int, code_every: int) -> list[dict[str, str]]:
    """
    ``manifest_rows`` dealt round the seeded org, the customer orgs and the refused
    one, each row owned by a workspace or person of its own org.
    """
    managed, refused = partner_keys(orgs)
    owners: dict[str, tuple[list[str], list[str]]] = {}
    for key in (*managed, refused):
        directory = generated_org(OrgSpec(key=key))
        owners[org_id_for(key)] = (
            [item["id"] for item in directory["workspaces"]],
            [item["id"] for item in directory["people"]],
        )
    cycle = ["", *owners]
    dealt = []
    for index, row in enumerate(manifest_rows(rows, code_every=code_every)):
        # Shifted one org every ten rows: every org gets its share of code rows too.
        org = cycle[(index + index // 10) % len(cycle)]
        if org:
            workspaces, people = owners[org]
            if row["workspaceId"]:
                row["workspaceId"] = workspaces[index % len(workspaces)]
            else:
                row["personId"] = people[index % len(people)]
        dealt.append({**row, "orgId": org})
    return dealt


def write_rows_csv(path: Path, rows: Sequence[dict[str, str]]) -> Path:
    """
    Write manifest rows (with whatever columns they have) as a CSV.
    """
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def run_once(
    command: Sequence[str],
    emulator: Emulator,
    kill_after: float | None,
    journal: Path,
) -> Attempt:
    """
    Start the command; SIGKILL it after ``kill_after`` seconds unless it ended first.
    """
    env = {
        **os.environ,
        "WEBEX_ACCESS_TOKEN": DEFAULT_TOKEN,
        "WEBEX_BASE_URL": emulator.base_url,
    }
    started = time.monotonic()
    with (OUT / "soak" / "runs.log").open("a", encoding="utf-8") as log:
        log.write(f"--- start (kill after {kill_after} s)\n")
        log.flush()
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT
        )
        # wait_child sends SIGKILL when the timeout passes first.
        code, _ = wait_child(process, timeout=kill_after)
    wall = time.monotonic() - started
    killed = code == -signal.SIGKILL
    done, in_flight = journal_counts(journal)
    return Attempt(
        killed_after=kill_after if killed else None,
        code=code,
        wall=wall,
        rows_done=done,
        rows_in_flight=in_flight,
    )


def journal_counts(journal: Path) -> tuple[int, int]:
    """
    Rows the journal holds as done, and as caught mid-flight (started or created).
    """
    if not journal.exists():
        return 0, 0
    with contextlib.closing(sqlite3.connect(journal)) as db:
        phases = dict(db.execute("SELECT phase, count(*) FROM rows GROUP BY phase"))
    done = int(phases.pop("done", 0))
    return done, sum(int(n) for n in phases.values())


def check_report(
    path: Path, rows: int, check: Check, refused: frozenset[int] = frozenset()
) -> dict[int, dict[str, str]]:
    """
    Every row once, in order, ended well (the ``refused`` rows failed with the
    refused org's reason); return the report rows by row number.
    """
    with path.open(newline="", encoding="utf-8-sig") as handle:
        records = list(csv.DictReader(handle))
    numbers = Counter(int(record["row"]) for record in records)
    expected = set(range(2, rows + 2))  # header is row 1
    for number in expected - numbers.keys():
        check.fail("row missing from the report", f"row {number}")
    for number, seen in numbers.items():
        if seen > 1:
            check.fail("row in the report more than once", f"row {number} × {seen}")
        if number not in expected:
            check.fail("row in the report not in the manifest", f"row {number}")
    by_row = {int(record["row"]): record for record in records}
    for number, record in by_row.items():
        if number in refused:
            if record["status"] != "failed" or REFUSED_REASON not in record["error"]:
                check.fail(
                    "refused org's row did not fail with its reason",
                    f"row {number}: {record['status']} {record['error']}",
                )
            continue
        if record["status"] not in OK_STATUSES:
            check.fail(
                f"row ended {record['status']}",
                f"row {number}: {record['error']}",
            )
        elif record["error"]:
            check.fail(
                "row ended with an error text", f"row {number}: {record['error']}"
            )
    return by_row


def _owner(item: dict[str, Any]) -> str:
    return str(item.get("workspaceId") or item.get("personId") or "")


def _tags(text: str) -> list[str]:
    return [tag for tag in text.split(";") if tag]


def check_devices(
    manifest: Iterable[tuple[int, dict[str, str]]],
    report: dict[int, dict[str, str]],
    devices: list[dict[str, Any]],
    check: Check,
) -> None:
    """
    Compare one org's devices with its manifest rows (numbered) and the report.
    """
    by_mac: dict[str, list[dict[str, Any]]] = {}
    by_id = {str(device["id"]): device for device in devices}
    for device in devices:
        if device.get("mac"):
            by_mac.setdefault(str(device["mac"]).replace(":", "").upper(), []).append(
                device
            )
    claimed: set[str] = set()
    for number, row in manifest:
        reported = report.get(number, {})
        if row["mac"]:
            found = by_mac.get(row["mac"], [])
            if not found:
                check.fail("MAC row without a device (lost row)", f"row {number}")
                continue
            if len(found) > 1:
                check.fail("MAC registered more than once", f"row {number}")
            device = found[0]
        else:
            device = by_id.get(reported.get("deviceId", ""), {})
            if not device:
                check.fail("code row without its device (lost row)", f"row {number}")
                continue
        claimed.add(str(device["id"]))
        if _owner(device) != (row["workspaceId"] or row["personId"]):
            check.fail("device with the wrong owner", f"row {number}")
        if sorted(device.get("tags", [])) != sorted(_tags(row["tags"])):
            check.fail(
                "device tags differ from the row's",
                f"row {number}: {device.get('tags')} vs {_tags(row['tags'])}",
            )
        if reported and reported.get("deviceId") != device["id"]:
            check.fail("report names another device", f"row {number}")
    for device_id, device in by_id.items():
        if device_id not in claimed:
            kind = device.get("connectionStatus", "")
            check.fail(
                "device no row accounts for (duplicate)",
                f"{kind} device of {_owner(device)[-12:]}",
            )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--seed", type=int, default=6, help="seeds kills and faults")
    parser.add_argument(
        "--orgs",
        type=int,
        default=0,
        metavar="N",
        help="a partner's soak: N customer orgs and one refused org besides the seeded",
    )
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument(
        "--kill-window",
        type=float,
        nargs=2,
        default=(1.0, 12.0),
        metavar=("MIN", "MAX"),
        help="each kill comes this many seconds after its run started",
    )
    options = parser.parse_args(argv)
    folder = OUT / "soak"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    if options.orgs:
        manifest = partner_rows(options.rows, options.orgs, code_every=10)
        manifest_path = write_rows_csv(folder / "soak.csv", manifest)
    else:
        manifest_path = write_manifest(folder / "soak.csv", options.rows, code_every=10)
        manifest = list(manifest_rows(options.rows, code_every=10))
    numbered = list(enumerate(manifest, start=2))  # the header is row 1
    _, refused_key = partner_keys(options.orgs)
    refused_org = org_id_for(refused_key) if options.orgs else None
    refused = frozenset(
        n for n, row in numbered if refused_org and row["orgId"] == refused_org
    )
    org_ids = sorted({row.get("orgId", "") for row in manifest})
    report_path = folder / "soak-report.csv"
    journal = journal_path_for(report_path)
    # The same command every time: no --fresh, so each start continues the journal.
    command = provisioner_command(
        "run", str(manifest_path), "--report", str(report_path), "--quiet"
    )
    dice = random.Random(options.seed)
    low, high = options.kill_window
    started = time.monotonic()
    attempts: list[Attempt] = []
    args = emulator_args(options.seed, options.latency_ms)
    if options.orgs:
        args += partner_args(options.orgs)
    with start_emulator(args, log=folder / "emulator.log") as emulator:
        for _ in range(options.kills):
            kill_after = round(dice.uniform(low, high), 2)
            attempt = run_once(command, emulator, kill_after, journal)
            attempts.append(attempt)
            print(
                f"start {len(attempts)}: "
                + (
                    f"SIGKILLed after {attempt.killed_after:.2f} s"
                    if attempt.killed_after is not None
                    else f"ended by itself (exit {attempt.code}) before its kill"
                )
                + f"; journal: {attempt.rows_done} rows done, "
                f"{attempt.rows_in_flight} caught mid-flight",
                flush=True,
            )
        final = run_once(command, emulator, None, journal)
        attempts.append(final)
        print(
            f"start {len(attempts)}: ran to the end in {final.wall:.1f} s, "
            f"exit {final.code}; {final.rows_done} rows done in the journal",
            flush=True,
        )
        stats = emulator.stats()
        devices = {org: emulator.devices(org or None) for org in org_ids}
        if refused_org is not None:
            devices[refused_org] = emulator.devices(refused_org)
    elapsed = time.monotonic() - started

    check = Check()
    report = (
        check_report(report_path, options.rows, check, refused)
        if report_path.exists()
        else {}
    )
    if not report_path.exists():
        check.fail("no report written", str(report_path))
    # Exit 1 says some rows failed: right when (and only when) an org was refused.
    if final.code != (1 if refused else 0):
        check.fail("the last run's exit code", f"exit {final.code}")
    for org in org_ids:
        if org != refused_org:
            rows_of_org = [
                (n, row) for n, row in numbered if row.get("orgId", "") == org
            ]
            check_devices(rows_of_org, report, devices[org], check)
    if refused_org is not None and devices[refused_org]:
        check.fail("device in the refused org", f"{len(devices[refused_org])} devices")

    kills = sum(1 for a in attempts if a.killed_after is not None)
    statuses = Counter(record["status"] for record in report.values())
    code_rows = sum(1 for row in manifest if not row["mac"])
    print()
    print(
        f"soak: {options.rows} rows ({options.rows - code_rows} by MAC, {code_rows} "
        f"by activation code), {kills} SIGKILLs, {len(attempts)} starts, "
        f"{elapsed:.0f} s in all"
    )
    print(
        "emulator: "
        f"{stats['requests_total']} requests, {stats['rate_limited_total']} answered "
        f"429, {stats['server_errors_injected']} answered 5xx, "
        f"{stats['dropped_total']} dropped (ambiguous creates included); "
        f"{sum(len(found) for found in devices.values())} devices"
        + (f" in {len(devices)} orgs" if options.orgs else "")
    )
    print(
        "report: "
        + ", ".join(f"{status} {n}" for status, n in sorted(statuses.items()))
        + f"; {len(report)} rows"
    )
    lost = sum(n for kind, n in check.counts.items() if "lost" in kind)
    duplicates = sum(
        n
        for kind, n in check.counts.items()
        if "duplicate" in kind or "more than" in kind
    )
    print(f"lost rows: {lost}; duplicate devices: {duplicates}")
    if not check.counts:
        print("violations: none")
        return 0
    print(f"violations: {sum(check.counts.values())}")
    for kind, count in check.counts.most_common():
        print(f"  {count} × {kind}: " + "; ".join(check.examples[kind]))
    print(
        f"(the runs' output is in {(folder / 'runs.log').relative_to(ROOT)}, the "
        f"emulator's in {(folder / 'emulator.log').relative_to(ROOT)})"
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
