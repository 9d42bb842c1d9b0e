"""
Benchmark a partner's run across several orgs, each with a rate limit of its own.

The emulator (a separate process) holds five extra orgs, each allowing 20 requests/s
(burst 5) with 40 ms latency; its default token is a partner token for all five.
The manifest has 300 MAC rows with tags per org (two calls a row), every row naming
its ``orgId``, owners taken from each org's seeded workspaces and people.
``provisioner run`` runs as a child process, as a user runs it, and is told no limit.

Regimes:

- equal: every org at 20/s. Aggregate = successful calls ÷ the run's own duration
  (its summary's "took") ÷ 100/s, the five limits together; 429 share from the
  emulator's counters.
- equal, told: after each run above, the same run given the line of
  ``--max-rate ORG=R`` flags that run's summary advised (each org that learned its
  limit told one percent under it; an org that learned none stays adaptive). The
  same two figures.
- one slow org: org1 at 5/s, the other four at 20/s. Each fast org's rate =
  its successful calls ÷ its own span in the emulator's request log (first request
  arrived to last answered) ÷ 20/s; the slowest of the four is reported.

Figures are medians over ``--runs`` runs with the spread (min–max); nothing is
asserted except that every run provisioned every row.

    .venv/bin/python benchmarks/bench_orgs.py [--runs 3] [--rows 300] [--quick]
        [--only equal|slow] [--explain]
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import shlex
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bucket_time import explain
from common import OUT, ROOT, Emulator, Spread, markdown_table, run_cli, start_emulator

from provisioner.emulator import DEFAULT_TOKEN, OrgSpec, org_id_for
from provisioner.emulator.directory import generated_org

ORGS = ("org1", "org2", "org3", "org4", "org5")
LIMIT, BURST, LATENCY_MS = 20.0, 5, 40.0
SLOW_LIMIT = 5.0
MODEL = "Cisco 8851"
HEADER = ("mac", "model", "workspaceId", "personId", "tags", "orgId", "notes")


def say(text: str) -> None:
    """
    Print a progress line on stderr (the table goes to stdout at the end).
    """
    print(text, file=sys.stderr, flush=True)


def org_manifest(path: Path, rows_per_org: int) -> Path:
    """
    Write a manifest of ``rows_per_org`` rows for each org, orgs interleaved.

    Owners alternate between each org's seeded workspaces and people, as
    ``common.manifest_rows`` does for the seeded org; MACs are unique across orgs.
    """
    owners = {}
    for key in ORGS:
        directory = generated_org(OrgSpec(key=key))
        owners[key] = (
            [item["id"] for item in directory["workspaces"]],
            [item["id"] for item in directory["people"]],
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(HEADER)
        for index in range(rows_per_org):
            for number, key in enumerate(ORGS, start=1):
                workspaces, people = owners[key]
                on_workspace = index % 2 == 0
                pool = workspaces if on_workspace else people
                owner = pool[index // 2 % len(pool)]
                writer.writerow(
                    (
                        f"{0x1000 + number:04X}{index:08X}",
                        MODEL,
                        owner if on_workspace else "",
                        "" if on_workspace else owner,
                        f"wave-{index % 5};floor-{index % 9}",
                        org_id_for(key),
                        f"{key} desk {index}",
                    )
                )
    return path


def emulator_args() -> list[str]:
    """
    The emulator's flags: five orgs at 20/s, and the default token a partner of all.
    """
    args = ["--orgs", str(len(ORGS)), "--request-log-size", "200000"]
    for key in ORGS:
        args += [
            "--org-rate-limit",
            f"{key}={LIMIT:g}",
            "--org-burst",
            f"{key}={BURST}",
            "--org-latency-ms",
            f"{key}={LATENCY_MS:g}",
        ]
    return [*args, "--partner", f"{DEFAULT_TOKEN}={','.join(ORGS)}"]


def admin(emulator: Emulator, method: str, path: str, body: Any = None) -> Any:
    """
    Call the emulator's admin view (loopback only) and return the decoded answer.
    """
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{emulator.admin_url}/{path}",
        data=data,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        raw = response.read()
    return json.loads(raw) if raw else None


def set_limit(emulator: Emulator, key: str, rate: float) -> None:
    """
    Change one org's rate limit through the admin view.
    """
    admin(emulator, "PATCH", f"orgs/{org_id_for(key)}", {"rate_limit": rate})


def requests_of(emulator: Emulator, key: str) -> list[dict[str, Any]]:
    """
    The emulator's request log for one org, oldest first.
    """
    return list(admin(emulator, "GET", f"requests?orgId={org_id_for(key)}")["items"])


def provision(
    emulator: Emulator, manifest: Path, rows: int, flags: Sequence[str] = ()
) -> tuple[float, str]:
    """
    Reset the emulator and run the manifest with ``flags``; return the run's
    duration and stdout.
    """
    emulator.reset()
    report = OUT / "orgs-report.csv"
    run = run_cli(
        ["run", str(manifest), "--report", str(report), "--fresh", "--quiet", *flags],
        base_url=emulator.base_url,
        cwd=ROOT,
    )
    created = re.search(r"created (\d+)", run.stdout)
    if run.code != 0 or created is None or int(created[1]) != rows:
        sys.stderr.write(run.stdout + run.stderr)
        raise SystemExit(f"the run did not create all {rows} rows")
    assert run.duration is not None
    return run.duration, run.stdout


def org_rate(entries: list[dict[str, Any]]) -> float:
    """
    Successful calls per second of one org over its own span in the request log.
    """
    accepted = [
        e for e in entries if isinstance(e["status"], int) and e["status"] < 400
    ]
    span = max(e["answered"] for e in entries) - min(e["started"] for e in entries)
    return len(accepted) / span


#: The line of a partner run's summary that tells each org its learned limit.
ADVICE = re.compile(
    r"^  Next run, start each org at .*?: (--max-rate .+)$", re.MULTILINE
)


def aggregate(emulator: Emulator, duration: float) -> tuple[float, float, int, int]:
    """
    The last run's successful calls/s ÷ 100/s, its 429 share, ok calls and 429s.
    """
    by_org = emulator.stats()["by_org"]
    ours = [by_org[org_id_for(key)] for key in ORGS]
    calls = sum(org["requests"] for org in ours)
    limited = sum(org["rate_limited"] for org in ours)
    share = (calls - limited) / duration / (LIMIT * len(ORGS))
    return share, limited / calls, calls - limited, limited


def equal_limits(
    emulator: Emulator, manifest: Path, rows: int, runs: int, *, why: bool = False
) -> list[tuple[str, str, str, str, str]]:
    """
    Every org at 20/s: the aggregate share of 100/s and the share answered 429;
    then the same told the --max-rate ORG=R flags each run advised.
    """
    for key in ORGS:
        set_limit(emulator, key, LIMIT)
    shares, refused = [], []
    told_shares, told_refused, told_orgs, told_rates = [], [], [], []
    for number in range(1, runs + 1):
        duration, stdout = provision(emulator, manifest, rows)
        share, refused_share, ok, limited = aggregate(emulator, duration)
        shares.append(share)
        refused.append(refused_share)
        say(
            f"equal run {number}: {duration:.1f} s, {ok} ok calls = "
            f"{share:.1%} of 100/s, 429s {limited}/{ok + limited}"
        )
        if why:
            logs = {key: requests_of(emulator, key) for key in ORGS}
            everything = admin(emulator, "GET", "requests")["items"]
            for line in explain(logs, everything, limit=LIMIT, burst=BURST):
                say(line)
        # The next batch, told what this run learned: the flags it advised.
        advice = ADVICE.search(stdout)
        if advice is None:
            say("  no org learned its limit: nothing to tell")
            continue
        flags = shlex.split(advice[1])
        told = [flag.rpartition("=")[2] for flag in flags if flag != "--max-rate"]
        duration, _ = provision(emulator, manifest, rows, flags)
        share, refused_share, ok, limited = aggregate(emulator, duration)
        told_shares.append(share)
        told_refused.append(refused_share)
        told_orgs.append(len(told))
        told_rates += [float(rate) for rate in told]
        say(
            f"  told {len(told)} orgs ({', '.join(told)}/s): {duration:.1f} s, "
            f"{ok} ok calls = {share:.1%} of 100/s, 429s {limited}/{ok + limited}"
        )
    regime = f"5 orgs × 20/s (burst 5, 40 ms), {rows // len(ORGS)} rows each"
    spread, spread_429 = Spread.of(shares), Spread.of(refused)
    told_rows: list[tuple[str, str, str, str, str]] = []
    if told_shares:
        told_regime = (
            "same, each org told the --max-rate ORG=R its run above advised "
            f"({Spread.of(told_orgs).show('{:.0f}')} of 5 orgs told, "
            f"{min(told_rates):g}–{max(told_rates):g}/s)"
        )
        told_rows = [
            (
                told_regime,
                "successful calls/s ÷ 100/s",
                Spread.of(told_shares).show("{:.1f}%", 100),
                "",
                "",
            ),
            (
                told_regime,
                "calls answered 429",
                Spread.of(told_refused).show("{:.2f}%", 100),
                "",
                "",
            ),
        ]
    return [
        (
            regime,
            "successful calls/s ÷ 100/s",
            spread.show("{:.1f}%", 100),
            "≥ 95%",
            verdict(spread.median >= 0.95),
        ),
        (
            regime,
            "calls answered 429",
            spread_429.show("{:.2f}%", 100),
            "≤ 1%",
            verdict(spread_429.median <= 0.01),
        ),
        *told_rows,
    ]


def one_slow_org(
    emulator: Emulator, manifest: Path, rows: int, runs: int
) -> list[tuple[str, str, str, str, str]]:
    """
    org1 at 5/s: the slowest of the other four orgs, as a share of its own 20/s.
    """
    set_limit(emulator, ORGS[0], SLOW_LIMIT)
    worst, slow = [], []
    for number in range(1, runs + 1):
        provision(emulator, manifest, rows)
        rates = {key: org_rate(requests_of(emulator, key)) for key in ORGS}
        fast = [rates[key] / LIMIT for key in ORGS[1:]]
        worst.append(min(fast))
        slow.append(rates[ORGS[0]] / SLOW_LIMIT)
        shown = ", ".join(f"{key} {rate:.1f}/s" for key, rate in rates.items())
        say(f"slow-org run {number}: {shown}")
    for key in ORGS:
        set_limit(emulator, key, LIMIT)
    regime = f"org1 at 5/s, four at 20/s, {rows // len(ORGS)} rows each"
    low = Spread.of(worst)
    return [
        (
            regime,
            "slowest fast org ÷ its 20/s",
            low.show("{:.1f}%", 100),
            "≥ 95%",
            verdict(low.median >= 0.95),
        ),
        (regime, "slow org ÷ its 5/s", Spread.of(slow).show("{:.1f}%", 100), "", ""),
    ]


#: Targets hold at full size only: a --quick run is all learning and start-up.
JUDGED = [True]


def verdict(met: bool) -> str:
    """
    Say whether a median met its target (not judged on a --quick run).
    """
    if not JUDGED[0]:
        return "n/a (--quick)"
    return "yes" if met else "**no**"


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (3)")
    parser.add_argument("--rows", type=int, default=300, help="rows per org (300)")
    parser.add_argument(
        "--quick", action="store_true", help="one run of 60 rows per org"
    )
    parser.add_argument(
        "--only",
        choices=("equal", "slow"),
        help="one regime: equal limits (with its told pass), or one slow org",
    )
    parser.add_argument(
        "--explain",
        action="store_true",
        help="say where each org's time went in each equal-limits run (bucket_time.py)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse(argv)
    runs, per_org = (1, 60) if options.quick else (max(1, options.runs), options.rows)
    JUDGED[0] = not options.quick
    rows = per_org * len(ORGS)
    manifest = org_manifest(OUT / f"bench-orgs-{per_org}.csv", per_org)
    started = time.perf_counter()
    with start_emulator(emulator_args()) as emulator:
        table = []
        if options.only in (None, "equal"):
            table += equal_limits(emulator, manifest, rows, runs, why=options.explain)
        if options.only in (None, "slow"):
            table += one_slow_org(emulator, manifest, rows, runs)
    header = ("regime", "figure", "median (min–max)", "target", "met")
    took = (time.perf_counter() - started) / 60
    print(f"Multi-org: {runs} run(s) per figure; took {took:.1f} min.\n")
    print(markdown_table(header, table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
