"""
Measure the emulator's throughput: requests per second with no latency or faults.

Starts ``python -m provisioner.emulator`` as a separate process (one event loop,
one core) and drives it with an aiohttp client: a mix of POST /devices, GET
/devices?mac= and PATCH tags. Prints each run and the median.

    .venv/bin/python benchmarks/bench_emulator.py [--devices 2000] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path

import aiohttp

from provisioner.emulator import DEFAULT_TOKEN, run_in_subprocess

ORG = json.loads(
    (
        Path(__file__).resolve().parents[1] / "provisioner/emulator/data/org.json"
    ).read_text()
)
WORKSPACES = [w["id"] for w in ORG["workspaces"]]
HEADERS = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}
PATCH_HEADERS = {**HEADERS, "Content-Type": "application/json-patch+json"}


async def provision_one(
    http: aiohttp.ClientSession, base_url: str, n: int, run: int
) -> int:
    """Create one device, find it by MAC, tag it: three requests."""
    mac = f"{run:04X}{n:08X}"
    body = {"mac": mac, "model": "DMS Cisco 8851", "workspaceId": WORKSPACES[n % 48]}
    async with http.post(f"{base_url}/devices", json=body, headers=HEADERS) as r:
        assert r.status == 200, r.status
        device = await r.json()
    async with http.get(
        f"{base_url}/devices", params={"mac": mac}, headers=HEADERS
    ) as r:
        assert r.status == 200, r.status
        await r.read()
    patch = json.dumps({"op": "add", "path": "tags", "value": ["bench"]})
    async with http.patch(
        f"{base_url}/devices/{device['id']}", data=patch, headers=PATCH_HEADERS
    ) as r:
        assert r.status == 200, r.status
        await r.read()
    return 3


async def one_run(base_url: str, devices: int, concurrency: int, run: int) -> float:
    """Provision ``devices`` devices with ``concurrency`` workers; return requests/s."""
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:
        admin = base_url.removesuffix("/v1") + "/_emulator"
        async with http.post(f"{admin}/reset") as r:
            assert r.status == 204
        queue = iter(range(devices))
        counts: list[int] = []

        async def worker() -> None:
            for n in queue:
                counts.append(await provision_one(http, base_url, n, run))

        started = time.perf_counter()
        # A benchmark script, not library code: a plain gather is enough here.
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return sum(counts) / elapsed


async def bench(devices: int, runs: int, concurrency: int) -> None:
    with run_in_subprocess() as (_, base_url):
        await one_run(base_url, 200, concurrency, 999)  # warm-up
        rates = []
        for run in range(runs):
            rate = await one_run(base_url, devices, concurrency, run)
            rates.append(rate)
            print(f"run {run + 1}: {rate:,.0f} requests/s ({devices * 3} requests)")
    print(
        f"emulator throughput, median of {runs} runs: "
        f"{statistics.median(rates):,.0f} requests/s "
        f"(concurrency {concurrency}, no latency, no faults)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    asyncio.run(bench(args.devices, args.runs, args.concurrency))


if __name__ == "__main__":
    main()
