"""
Benchmark ``provisioner export`` on a large org: devices/s, pages against the limit,
and peak memory.

An emulator (its own process) is seeded with ``--devices`` devices through the API,
then ``provisioner export`` runs as a child process (its wall time and peak RSS from
``os.wait4``) in three regimes:

- no rate limit: how fast pages of 1000 come and are written (CSV and XLSX);
- the API's rate limit at ``--rate`` requests/s (burst 10, as ``run_all.py``'s
  limited regime), not told to the tool: the export should take about as long as its
  calls take at that rate (pages, plus the first call's two);
- a small org (a tenth of the devices), CSV and XLSX: the peak RSS should not grow with
  the number of devices (the export streams).

Usage:

    .venv/bin/python benchmarks/bench_export.py [--devices 50000] [--rate 5] [--quick]

``--quick`` seeds 5,000 devices (with a 500-device small org) to try the script out;
its figures are not the benchmark's.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import re
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from common import (
    API_MODEL,
    OUT,
    PEOPLE,
    WORKSPACES,
    CliRun,
    Emulator,
    markdown_table,
    run_cli,
    start_emulator,
)

from provisioner.emulator import DEFAULT_TOKEN

#: Devices a page asks for (``export_rules.PAGE_SIZE``).
PAGE = 1000
#: Calls an export makes besides its pages: who the token is, the org's name.
FIRST_CALLS = 2
SEED_CONCURRENCY = 64
#: The limited regime's burst, as in run_all.py.
BURST = 10


@dataclass(frozen=True, slots=True)
class Figure:
    """
    One export run, as the table shows it.
    """

    regime: str
    devices: int
    pages: int
    wall: float
    took: float
    max_rss_mb: float
    rate_limited: int = 0
    ideal: float | None = None

    @property
    def per_second(self) -> float:
        return self.devices / self.took if self.took > 0 else 0.0


async def _seed(base_url: str, count: int, prefix: int) -> None:
    """
    Create ``count`` phones by MAC, spread over the org's workspaces and people.
    """
    headers = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}
    owners = [("workspaceId", w) for w in WORKSPACES] + [
        ("personId", p) for p in PEOPLE
    ]
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(count):
        queue.put_nowait(index)

    async def worker(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            index = queue.get_nowait()
            key, owner = owners[index % len(owners)]
            body = {"mac": f"{prefix:02X}{index:010X}", "model": API_MODEL, key: owner}
            async with session.post(f"{base_url}/devices", json=body) as answer:
                if answer.status != 200:
                    raise RuntimeError(f"seeding failed: {answer.status}")

    connector = aiohttp.TCPConnector(limit=SEED_CONCURRENCY)
    async with aiohttp.ClientSession(headers=headers, connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(SEED_CONCURRENCY)))


def seed(emulator: Emulator, count: int, prefix: int = 0x0E) -> float:
    """
    Seed the emulator; return how long it took (seconds).
    """
    started = time.perf_counter()
    asyncio.run(_seed(emulator.base_url, count, prefix))
    return time.perf_counter() - started


def export(emulator: Emulator, output: Path, regime: str) -> Figure:
    """
    Run ``provisioner export OUTPUT`` as a child and read its figures.
    """
    output.unlink(missing_ok=True)
    run: CliRun = run_cli(["export", str(output), "-q"], base_url=emulator.base_url)
    if run.code != 0:
        raise RuntimeError(f"export failed ({run.code}): {run.stderr[-2000:]}")
    found = re.search(r"Exported (\d+) devices? \((\d+) pages?\)", run.stdout)
    refused = re.search(r"(\d+) rate-limited", run.stdout)
    if found is None or refused is None or run.duration is None:
        raise RuntimeError(f"no summary in: {run.stdout}")
    return Figure(
        regime=regime,
        devices=int(found[1]),
        pages=int(found[2]),
        wall=run.wall,
        took=run.duration,
        max_rss_mb=run.max_rss_mb,
        rate_limited=int(refused[1]),
    )


def check_lines(path: Path, expected: int) -> None:
    """
    The CSV holds every device once.
    """
    with path.open(newline="", encoding="utf-8") as file:
        ids = [line["deviceId"] for line in csv.DictReader(file)]
    if len(ids) != expected or len(set(ids)) != expected:
        raise RuntimeError(f"{path}: {len(ids)} lines, {len(set(ids))} ids")


def measure(devices: int, rate: float, folder: Path) -> list[Figure]:
    """
    Seed a large and a small emulator; export from each in each regime.
    """
    figures: list[Figure] = []
    small = max(1, devices // 10)
    with start_emulator(log=folder / "emulator.log") as emulator:
        took = seed(emulator, devices)
        print(f"seeded {devices} devices in {took:.1f}s", file=sys.stderr)
        for suffix in ("csv", "xlsx"):
            output = folder / f"org.{suffix}"
            figures.append(export(emulator, output, f"no limit, {suffix.upper()}"))
        check_lines(folder / "org.csv", devices)
        emulator.set_faults(rate_limit=rate, burst=BURST)
        limited = export(emulator, folder / "limited.csv", f"{rate:g} req/s, CSV")
        figures.append(_with_ideal(limited, rate))
        emulator.set_faults(rate_limit=None)
    with start_emulator(log=folder / "emulator-small.log") as emulator:
        seed(emulator, small)
        for suffix in ("csv", "xlsx"):
            output = folder / f"small.{suffix}"
            figures.append(export(emulator, output, f"small org, {suffix.upper()}"))
    return figures


def _with_ideal(figure: Figure, rate: float) -> Figure:
    """
    The time the export's calls take at ``rate`` after the burst (a start every
    1/rate s once the bucket's first ``BURST`` are spent).
    """
    calls = figure.pages + FIRST_CALLS
    return Figure(**{**_fields(figure), "ideal": max(0, calls - BURST) / rate})


def _fields(figure: Figure) -> dict[str, object]:
    return {name: getattr(figure, name) for name in Figure.__slots__}


def render(figures: Sequence[Figure], rate: float) -> str:
    """
    The figures as a markdown table, with what the limited regime is judged against.
    """
    rows = []
    for f in figures:
        if f.ideal is None:
            ideal = ""
        elif f.ideal <= 0:
            # Every call fits in the bucket's burst (--quick): no pace to compare with.
            ideal = "0s (within the burst)"
        else:
            ideal = f"{f.ideal:.1f}s ({f.took / f.ideal:.2f}×)"
        rows.append(
            [
                f.regime,
                str(f.devices),
                str(f.pages),
                f"{f.took:.1f}s",
                f"{f.wall:.1f}s",
                f"{f.per_second:,.0f}",
                str(f.rate_limited),
                ideal,
                f"{f.max_rss_mb:.0f} MB",
            ]
        )
    header = [
        "export",
        "devices",
        "pages",
        "took",
        "wall",
        "devices/s",
        "429s",
        f"calls at {rate:g}/s",
        "peak RSS",
    ]
    return markdown_table(header, rows)


def main(argv: Sequence[str] | None = None) -> int:
    """
    Run the benchmark and print the table (also written to benchmarks/out/).
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=50_000)
    parser.add_argument("--rate", type=float, default=5.0, help="the API's limit")
    parser.add_argument("--quick", action="store_true", help="5,000 devices")
    args = parser.parse_args(argv)
    devices = 5_000 if args.quick else args.devices
    with tempfile.TemporaryDirectory() as folder:
        figures = measure(devices, args.rate, Path(folder))
    table = render(figures, args.rate)
    print(f"\nprovisioner export, {devices} devices (pages of {PAGE})\n")
    print(table)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "export.md").write_text(table + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
