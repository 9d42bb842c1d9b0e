"""
Time writing a 10,000-row report (XLSX and CSV) and loading it back.

Prints the median wall time of several runs for each step. Usage:

    .venv/bin/python benchmarks/bench_report.py [--rows 10000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import structlog

from provisioner.intake.manifest import load_manifest
from provisioner.models import Manifest, Outcome, RunStats, Status
from provisioner.report.files import load_report, write_report

HEADER = "MAC Address,Model,Workspace ID,Tags,Site,Notes\n"


def make_manifest(folder: Path, rows: int) -> Manifest:
    """
    Write and load a manifest of ``rows`` rows: MAC rows and every tenth a code row.
    """
    lines = [HEADER]
    for index in range(rows):
        mac = (
            ""
            if index % 10 == 9
            else f"00:1B:D4:{index >> 16:02X}:{index >> 8 & 255:02X}:{index & 255:02X}"
        )
        model = "Cisco 8875" if not mac else "Cisco 8851"
        lines.append(
            f"{mac},{model},ws-{index % 400},lobby;floor {index % 9},Site {index % 7},"
            f"rollout wave {index % 3}\n"
        )
    path = folder / "bench.csv"
    path.write_text("".join(lines), encoding="utf-8")
    return load_manifest(path)


def make_outcomes(manifest: Manifest) -> dict[int, Outcome]:
    """
    Give the rows a realistic mix: mostly created, some codes, a few failures.
    """
    outcomes = {}
    for index, row in enumerate(manifest.rows):
        number = row.number
        if row.mac is None:
            outcomes[number] = Outcome(
                row=number,
                status=Status.CODE_ISSUED,
                device_id=f"Y2lzY29zcGFyazovL3VzL0RFVklDRS9{number:010d}",
                activation_code=f"{4417328500000000 + number}",
                activation_expiry="2026-11-29T01:00:00.000Z",
                attempts=2,
                tags_deferred=True,
            )
        elif index % 50 == 7:
            outcomes[number] = Outcome(
                row=number,
                status=Status.FAILED,
                error="create device: the workspace does not exist; check the id",
                http_status=404,
                tracking_id=f"ROUTER_{number:08d}",
                attempts=1,
            )
        else:
            outcomes[number] = Outcome(
                row=number,
                status=Status.CREATED,
                device_id=f"Y2lzY29zcGFyazovL3VzL0RFVklDRS9{number:010d}",
                attempts=2,
            )
    return outcomes


def median_seconds(step: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()
    # Keep the report_written events out of the figures.
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(40),
        cache_logger_on_first_use=True,
    )
    started = datetime(2026, 11, 26, 1, 0, tzinfo=UTC)
    stats = RunStats(
        started_at=started,
        finished_at=started + timedelta(seconds=600),
        api_calls=options.rows * 2,
        rate_limited=12,
        retries=30,
    )
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        manifest = make_manifest(folder, options.rows)
        outcomes = make_outcomes(manifest)
        print(f"report of {options.rows} rows, median of {options.repeat} runs")
        for suffix in (".xlsx", ".csv"):
            path = folder / f"report{suffix}"
            write = median_seconds(
                lambda path=path: write_report(manifest, outcomes, [path], stats),
                options.repeat,
            )
            load = median_seconds(lambda path=path: load_report(path), options.repeat)
            size = path.stat().st_size / 1_000_000
            print(
                f"  {suffix[1:]:4}  write {write:6.3f} s   load {load:6.3f} s   "
                f"({size:.1f} MB)"
            )


if __name__ == "__main__":
    main()
