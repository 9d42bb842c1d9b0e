"""
CPU per API call, layer by layer: what the HTTP pool costs alone, and the client on it.

``run_all.py``'s CPU row measures a whole ``provisioner run``; this splits it, in
process, against the emulator in its own process (no latency, no limit):

- ``pool``: ``HttpPool.request`` alone, ``GET /people/me`` with 32 in flight, the
  answer's JSON parsed: the HTTP layer and the event loop.
- ``client``: ``ApiClient`` with 16 workers, each row a create by MAC then a tag
  add (two calls): the pool plus the rate limiter, the tally, JSON both ways and
  the answers made into values.

The engine (journal, schedule, report) is the rest of ``run_all.py``'s figure. CPU is
this process's own (``resource.getrusage``) over the calls only, imports excluded.
Medians over ``--runs``; nothing is asserted.

    .venv/bin/python benchmarks/bench_layers.py [--runs 3] [--calls 6000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
from collections.abc import Iterator

import anyio

# benchmarks/ is a folder of scripts, not a package: siblings import by name.
from common import WORKSPACES, start_emulator
from yarl import URL

from provisioner.emulator import DEFAULT_TOKEN
from provisioner.logs import configure_logging
from provisioner.settings import Settings
from provisioner.webex.client import ApiClient
from provisioner.webex.http import HttpPool


def cpu() -> float:
    """This process's CPU time so far, user and system."""
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime + used.ru_stime


async def pool_per_call(base_url: str, calls: int) -> float:
    """Milliseconds of CPU per ``HttpPool.request``, 32 in flight."""
    base = URL(base_url)
    pool = HttpPool(base, idle=32, timeout=30, user_agent="bench")
    url = base / "people" / "me"
    headers = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}
    gate = asyncio.Semaphore(32)

    async def one() -> None:
        async with gate:
            json.loads((await pool.request("GET", url, headers, None)).body)

    started = cpu()
    await asyncio.gather(*(one() for _ in range(calls)))
    used = cpu() - started
    await pool.close()
    return used / calls * 1000


async def client_per_call(base_url: str, calls: int) -> float:
    """Milliseconds of CPU per ``ApiClient`` call: creates and tag adds, 16 workers."""
    settings = Settings(token=DEFAULT_TOKEN, base_url=base_url, concurrency=16)
    numbers: Iterator[int] = iter(range(calls // 2))
    async with ApiClient(settings) as api:

        async def worker() -> None:
            for n in numbers:
                device = await api.create_device(
                    mac=f"0D{n:010X}",
                    model="DMS Cisco 8851",
                    workspace_id=WORKSPACES[n % len(WORKSPACES)],
                )
                await api.modify_tags(device.id, mode="add", tags=["a", "b"])

        started = cpu()
        async with anyio.create_task_group() as group:
            for _ in range(16):
                group.start_soon(worker)
        used = cpu() - started
    return used / (calls // 2 * 2) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--calls", type=int, default=6000)
    options = parser.parse_args()
    configure_logging(verbosity=0)
    figures: dict[str, list[float]] = {"pool": [], "client": []}
    with start_emulator() as emulator:
        for number in range(1, options.runs + 1):
            emulator.reset()
            figures["pool"].append(
                asyncio.run(pool_per_call(emulator.base_url, options.calls))
            )
            emulator.reset()
            figures["client"].append(
                anyio.run(client_per_call, emulator.base_url, options.calls)
            )
            print(
                f"run {number}: pool {figures['pool'][-1]:.3f} ms/call, "
                f"client {figures['client'][-1]:.3f} ms/call"
            )
    for layer, values in figures.items():
        print(
            f"{layer}: median {statistics.median(values):.3f} ms/call "
            f"({min(values):.3f}–{max(values):.3f})"
        )


if __name__ == "__main__":
    main()
