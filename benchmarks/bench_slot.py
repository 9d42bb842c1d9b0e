"""
CPU per start slot of the rate limiter, in process: the client's per-request cost of
``OrgRateLimiter.slot()`` without any HTTP.

Sixteen tasks take slots back to back, first with no limit in sight (no caller ever
waits for its slot), then at 2,000 starts/s (most callers wait a little). Prints the
process CPU per slot. Compare commits by running it at each, back to back.

    .venv/bin/python benchmarks/bench_slot.py
"""

from __future__ import annotations

import time

import anyio
import anyio.lowlevel

from provisioner.settings import RateControl
from provisioner.webex.org_rates import OrgRateLimiter

WORKERS = 16


async def slots(count: int, rate: float) -> float:
    """
    Take ``count`` slots with ``WORKERS`` tasks; return the CPU seconds per slot.
    """
    limiter = OrgRateLimiter(WORKERS, RateControl(initial_rate=rate))

    async def worker(share: int) -> None:
        for _ in range(share):
            async with limiter.slot():
                await anyio.lowlevel.checkpoint()

    started = time.process_time()
    async with anyio.create_task_group() as group:
        for _ in range(WORKERS):
            group.start_soon(worker, count // WORKERS)
    return (time.process_time() - started) / count


def main() -> None:
    for label, count, rate in (
        ("no caller waits", 20_000, 1e9),
        ("most callers wait (2,000/s)", 6_000, 2_000.0),
    ):
        per_slot = anyio.run(slots, count, rate)
        print(f"{label}: {per_slot * 1e6:.1f} µs CPU per slot")


if __name__ == "__main__":
    main()
