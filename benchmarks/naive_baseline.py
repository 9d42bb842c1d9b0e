"""
The loop people write today with an SDK: the naive baseline ``make bench`` compares to.

It reads the same CSV manifest and, for each row, creates the device by MAC and then
sets its tags: ``asyncio.gather`` over every row, a semaphore of 10 around each
request, a sleep of ``Retry-After`` seconds on a 429 before sending that request again,
and no other retry (a 5xx or a dropped connection fails the row). It is what
wxc_sdk-style code does, written directly on aiohttp so the SDK's own overhead does not
count against it. It prints one JSON line of figures.

    .venv/bin/python benchmarks/naive_baseline.py MANIFEST --base-url URL
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import time
from pathlib import Path
from typing import Any

import aiohttp

from provisioner.emulator import DEFAULT_TOKEN

# Somebody writing this loop passes the model string the API wants.
MODEL_NAMES = {"Cisco 8851": "DMS Cisco 8851"}


class Counters:
    """
    What the naive loop saw: calls, 429s and rows that failed.
    """

    def __init__(self) -> None:
        self.calls = 0
        self.rate_limited = 0
        self.failed = 0


async def call(
    http: aiohttp.ClientSession,
    gate: asyncio.Semaphore,
    counters: Counters,
    method: str,
    url: str,
    **kwargs: Any,
) -> Any:
    """
    Send one request under the semaphore; on a 429 sleep Retry-After, send it again.
    """
    while True:
        async with gate:
            counters.calls += 1
            async with http.request(method, url, **kwargs) as response:
                if response.status == 429:
                    counters.rate_limited += 1
                    wait = float(response.headers.get("Retry-After", "1"))
                else:
                    response.raise_for_status()
                    return await response.json()
        # Like the SDKs: the sleep happens outside the semaphore, per request.
        await asyncio.sleep(wait)


async def provision_row(
    http: aiohttp.ClientSession,
    gate: asyncio.Semaphore,
    counters: Counters,
    base_url: str,
    row: dict[str, str],
) -> None:
    """
    Create one device by MAC, then set its tags; count the row failed on any error.
    """
    body = {"mac": row["mac"], "model": MODEL_NAMES.get(row["model"], row["model"])}
    if row.get("workspaceId"):
        body["workspaceId"] = row["workspaceId"]
    else:
        body["personId"] = row["personId"]
    tags = [t for t in row.get("tags", "").split(";") if t]
    try:
        device = await call(
            http, gate, counters, "POST", f"{base_url}/devices", json=body
        )
        if tags:
            patch = {"op": "add", "path": "tags", "value": tags}
            await call(
                http,
                gate,
                counters,
                "PATCH",
                f"{base_url}/devices/{device['id']}",
                data=json.dumps(patch),
                headers={"Content-Type": "application/json-patch+json"},
            )
    except aiohttp.ClientError:
        counters.failed += 1


async def main(manifest: Path, base_url: str, concurrency: int) -> dict[str, Any]:
    """
    Provision every row of ``manifest``; return the figures.
    """
    with manifest.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    counters = Counters()
    gate = asyncio.Semaphore(concurrency)
    headers = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}
    started = time.perf_counter()
    async with aiohttp.ClientSession(headers=headers) as http:
        await asyncio.gather(
            *(provision_row(http, gate, counters, base_url, row) for row in rows)
        )
    return {
        "rows": len(rows),
        "failed": counters.failed,
        "calls": counters.calls,
        "rate_limited": counters.rate_limited,
        "duration": time.perf_counter() - started,
    }


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("manifest", type=Path)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--concurrency", type=int, default=10)
    return parser.parse_args()


if __name__ == "__main__":
    options = parse()
    figures = asyncio.run(main(options.manifest, options.base_url, options.concurrency))
    print(json.dumps(figures))
