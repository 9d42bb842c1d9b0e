"""
Time ``provisioner validate`` on a 100,000-row CSV and XLSX: wall time and peak RSS.

The CSV is generated under benchmarks/out/ (git-ignored) from the emulator's seeded
owners and the packaged catalogue: unique MACs in mixed notations, a sixth of the
rows by activation code, tags, and a few invalid rows so the problem path runs too.
The XLSX holds the same rows, written once by openpyxl (inline strings: a larger
sheet XML than Excel's shared strings, so a harder case) and kept for later runs.
Each run is a fresh subprocess, so interpreter start-up and imports are counted, as a
user would feel them; its CPU time and peak RSS come from ``os.wait4`` for that one
child. The package is byte-compiled first, as pip does when it installs it: with
PYTHONDONTWRITEBYTECODE set (as in some shells and CI), every run would otherwise
compile the package's modules from source again (~0.04 s), which no installed copy
does. The goals (issue 15): CSV at most 1 s; XLSX at most 2 s and 300 MB.

    .venv/bin/python benchmarks/bench_validate.py [--rows N] [--runs N] [--no-xlsx]
"""

from __future__ import annotations

import argparse
import compileall
import csv
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out"
ORG = ROOT / "provisioner" / "emulator" / "data" / "org.json"
MODELS = ROOT / "provisioner" / "intake" / "data" / "models.json"
CSV_WALL_LIMIT = 1.0
XLSX_WALL_LIMIT = 2.0
XLSX_RSS_LIMIT_MB = 300.0


def generate(path: Path, rows: int) -> None:
    """
    Write a manifest of ``rows`` devices that the seeded org could own.
    """
    org = json.loads(ORG.read_text(encoding="utf-8"))
    workspaces = [item["id"] for item in org["workspaces"]]
    people = [item["id"] for item in org["people"]]
    catalogue = json.loads(MODELS.read_text(encoding="utf-8"))["models"]
    # Models any owner may have, by MAC and by code, without a password.
    easy = [
        entry["display_name"]
        for entry in catalogue
        if entry["managed_by"] == "CISCO"
        and set(entry["supported_for"]) == {"PEOPLE", "PLACE"}
        and set(entry["onboarding_methods"]) == {"MAC_ADDRESS", "ACTIVATION_CODE"}
    ]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(
            ["MAC Address", "Model", "Workspace ID", "Person ID", "Tags", "Notes"]
        )
        for index in range(rows):
            raw = f"0A{index:010X}"
            notation = index % 4
            if notation == 1:
                mac = ":".join(raw[i : i + 2] for i in range(0, 12, 2)).lower()
            elif notation == 2:
                mac = "-".join(raw[i : i + 2] for i in range(0, 12, 2))
            elif notation == 3:
                mac = ".".join(raw[i : i + 4] for i in range(0, 12, 4)).lower()
            else:
                mac = raw
            if index % 6 == 5:
                mac = ""  # activation-code row
            if index % 10_000 == 9_999:
                mac = "1.23457E+11"  # a mangled MAC: the problem path runs too
            owner_ws = workspaces[index % len(workspaces)] if index % 2 else ""
            owner_person = "" if index % 2 else people[index % len(people)]
            writer.writerow(
                [
                    mac,
                    easy[index % len(easy)],
                    owner_ws,
                    owner_person,
                    f"wave-{index % 7};floor-{index % 12}",
                    f"desk {index}",
                ]
            )


# The summary line validate prints last when it read and checked every row.
SUMMARY = re.compile(
    r"^.*: ([0-9]+) rows?, ([0-9]+) valid, ([0-9]+) invalid$", re.MULTILINE
)


def measure(
    path: Path, runs: int, rows: int
) -> tuple[list[float], list[float], float, int]:
    """
    Run ``provisioner validate`` ``runs`` times; return wall and CPU times, the
    largest peak RSS and the last exit code.

    A run counts only when validate finished its work: exit 0 or 1 and a summary
    line naming all ``rows``. Anything else (a traceback, exit 2, a missing reader)
    stops the bench with validate's output, never a figure: a crash is fast.
    """
    from common import wait_child

    command = [sys.executable, "-m", "provisioner", "validate", str(path)]
    walls: list[float] = []
    cpus: list[float] = []
    peak_mb = 0.0
    code = 0
    for _ in range(runs):
        start = time.perf_counter()
        # One pipe for both streams, read to its end: two pipes could each fill
        # while the other is being read.
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT
        )
        assert process.stdout is not None
        output = process.stdout.read().decode(errors="replace")
        process.stdout.close()
        code, usage = wait_child(process)
        walls.append(time.perf_counter() - start)
        cpus.append(usage.ru_utime + usage.ru_stime)
        peak_mb = max(peak_mb, usage.ru_maxrss / 1024)  # KiB on Linux
        problem = _unfinished(output, code, rows)
        if problem is not None:
            sys.stdout.flush()
            sys.stderr.write(output[-4000:])
            raise SystemExit(
                f"validate {path.name}: {problem}; no figure is reported for a run "
                "that did not finish its work"
            )
    return walls, cpus, peak_mb, code


def _unfinished(output: str, code: int, rows: int) -> str | None:
    """
    Say why a validate run did not finish its work, or None when it did.
    """
    if code not in (0, 1):
        return f"exit code {code}"
    if "Traceback (most recent call last)" in output:
        return f"a traceback (exit code {code})"
    found = SUMMARY.findall(output)
    if not found:
        return f"no summary line (exit code {code})"
    counted, valid, invalid = (int(number) for number in found[-1])
    if counted != rows or valid + invalid != rows:
        return f"the summary counts {counted} rows, not {rows}"
    if (invalid > 0) != (code == 1):
        return f"exit code {code} with {invalid} invalid rows"
    return None


def to_xlsx(source: Path) -> Path:
    """
    Convert the generated CSV to XLSX once; later runs reuse it.
    """
    target = source.with_suffix(".xlsx")
    if target.exists() and target.stat().st_mtime >= source.stat().st_mtime:
        return target
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Devices")
    with source.open(newline="", encoding="utf-8") as handle:
        for row in csv.reader(handle):
            sheet.append(row)
    workbook.save(target)
    return target


def report(kind: str, path: Path, runs: int, rows: int) -> tuple[float, float]:
    """
    Measure one file and print its line; return the median wall time and peak RSS.
    """
    walls, cpus, peak_mb, code = measure(path, runs, rows)
    size_mb = os.path.getsize(path) / 1e6
    print(
        f"validate {kind}: median {statistics.median(walls):.2f} s over {runs} runs "
        f"(min {min(walls):.2f}, max {max(walls):.2f}); CPU median "
        f"{statistics.median(cpus):.2f} s; peak RSS {peak_mb:.0f} MB; "
        f"{size_mb:.1f} MB file; exit {code}"
    )
    return statistics.median(walls), peak_mb


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-xlsx", action="store_true", help="time the CSV only")
    options = parser.parse_args()

    OUT.mkdir(parents=True, exist_ok=True)
    compileall.compile_dir(ROOT / "provisioner", quiet=1)
    path = OUT / f"validate-{options.rows}.csv"
    if not path.exists():
        generate(path, options.rows)
    print(f"manifest: {path.relative_to(ROOT)} ({options.rows} rows)")
    csv_wall, _ = report("csv", path, options.runs, options.rows)
    ok = csv_wall <= CSV_WALL_LIMIT
    if not options.no_xlsx:
        xlsx_wall, xlsx_rss = report("xlsx", to_xlsx(path), options.runs, options.rows)
        ok = ok and xlsx_wall <= XLSX_WALL_LIMIT and xlsx_rss <= XLSX_RSS_LIMIT_MB
    print(f"goals (CSV ≤ 1 s; XLSX ≤ 2 s, ≤ 300 MB): {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
