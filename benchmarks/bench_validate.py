"""
Time ``provisioner validate`` on a 100,000-row CSV: median wall time and peak RSS.

The CSV is generated under benchmarks/out/ (git-ignored) from the emulator's seeded
owners and the packaged catalogue: unique MACs in mixed notations, a sixth of the
rows by activation code, tags, and a few invalid rows so the problem path runs too.
Each run is a fresh subprocess, so interpreter start-up and imports are counted, as a
user would feel them. The bar: at most 3 s and 400 MB.

    .venv/bin/python benchmarks/bench_validate.py [--rows N] [--runs N] [--xlsx]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out"
ORG = ROOT / "provisioner" / "emulator" / "data" / "org.json"
MODELS = ROOT / "provisioner" / "data" / "models.json"
WALL_LIMIT = 3.0
RSS_LIMIT_MB = 400.0


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


def measure(path: Path, runs: int) -> tuple[list[float], float, int]:
    """
    Run ``provisioner validate`` ``runs`` times; return wall times, peak RSS, exit code.
    """
    command = [sys.executable, "-m", "provisioner", "validate", str(path)]
    times: list[float] = []
    code = 0
    for _ in range(runs):
        start = time.perf_counter()
        completed = subprocess.run(command, capture_output=True, check=False, cwd=ROOT)
        times.append(time.perf_counter() - start)
        code = completed.returncode
        if code not in (0, 1):
            sys.stderr.write(completed.stderr.decode(errors="replace"))
            raise SystemExit(f"validate failed with exit code {code}")
    # ru_maxrss of the children is the largest of them, in KiB on Linux.
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return times, peak_mb, code


def to_xlsx(source: Path) -> Path:
    """
    Convert the generated CSV to XLSX (for a comparison figure; not the bar).
    """
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Devices")
    with source.open(newline="", encoding="utf-8") as handle:
        for row in csv.reader(handle):
            sheet.append(row)
    target = source.with_suffix(".xlsx")
    workbook.save(target)
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--xlsx", action="store_true", help="also time the same rows as XLSX"
    )
    options = parser.parse_args()

    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"validate-{options.rows}.csv"
    generate(path, options.rows)
    size_mb = os.path.getsize(path) / 1e6
    times, peak_mb, code = measure(path, options.runs)
    median = statistics.median(times)
    print(f"manifest: {path.relative_to(ROOT)} ({options.rows} rows, {size_mb:.1f} MB)")
    print(
        f"validate csv: median {median:.2f} s over {options.runs} runs "
        f"(min {min(times):.2f}, max {max(times):.2f}); peak RSS {peak_mb:.0f} MB; "
        f"exit {code}"
    )
    ok = median <= WALL_LIMIT and peak_mb <= RSS_LIMIT_MB
    print(
        f"bar (≤ {WALL_LIMIT:.0f} s, ≤ {RSS_LIMIT_MB:.0f} MB): {'met' if ok else 'MISSED'}"
    )
    if options.xlsx:
        xlsx = to_xlsx(path)
        xlsx_times, _, _ = measure(xlsx, max(1, options.runs // 2))
        print(
            f"validate xlsx: median {statistics.median(xlsx_times):.2f} s (for comparison)"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
