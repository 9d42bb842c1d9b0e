"""
Start the emulator for tests, the demo and benchmarks: in-process or as a subprocess.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp.test_utils import TestServer

from provisioner.emulator.app import create_app
from provisioner.emulator.config import DEFAULT_TOKEN, EmulatorConfig, FaultKnobs
from provisioner.emulator.orgs import OrgLimits
from provisioner.emulator.state import STATE_KEY, EmulatorState

__all__ = ["RunningEmulator", "run_in_subprocess", "serve_in_process"]

START_TIMEOUT_S = 20.0


@dataclass(frozen=True, slots=True)
class RunningEmulator:
    """
    An emulator serving in this process: URLs, a usable token and its state.
    """

    base_url: str
    admin_url: str
    token: str
    state: EmulatorState

    def set_faults(self, **knobs: Any) -> FaultKnobs:
        """
        Change fault knobs now (same names as ``EmulatorConfig``, plus ``seed``).
        """
        return self.state.set_faults(**knobs)

    def set_org_limits(self, org_id: str, **limits: Any) -> OrgLimits:
        """
        Change one org's ``rate_limit``, ``burst`` or ``latency_ms`` now.
        """
        return self.state.set_org_limits(org_id, **limits)

    def stats(self) -> dict[str, Any]:
        """
        Return the request counters (as ``GET /_emulator/stats`` does).
        """
        return self.state.stats_snapshot()

    def requests(
        self, *, mac: str | None = None, since: int = 0, org: str | None = None
    ) -> list[dict[str, Any]]:
        """
        Return the request log's entries (as ``GET /_emulator/requests`` does).
        """
        entries = self.state.requests.select(mac=mac, since=since, org=org)
        return [entry.wire() for entry in entries]

    def reset(self) -> None:
        """
        Clear devices, stats and the request log (as ``POST /_emulator/reset``).
        """
        self.state.reset()


@contextlib.asynccontextmanager
async def serve_in_process(
    config: EmulatorConfig | None = None,
) -> AsyncIterator[RunningEmulator]:
    """
    Serve the emulator on 127.0.0.1 in the running event loop.
    """
    config = config or EmulatorConfig()
    app = create_app(config)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        root = str(server.make_url("")).rstrip("/")
        token = (
            DEFAULT_TOKEN
            if DEFAULT_TOKEN in config.tokens
            else next(iter(config.tokens))
        )
        yield RunningEmulator(
            base_url=f"{root}/v1",
            admin_url=f"{root}/_emulator",
            token=token,
            state=app[STATE_KEY],
        )
    finally:
        await server.close()


def _first_line(process: subprocess.Popen[str], timeout: float) -> str:
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise RuntimeError(f"the emulator did not start within {timeout} s")
    line = process.stdout.readline().strip()
    if not line.startswith("http://"):
        raise RuntimeError(f"the emulator did not start (exit code {process.poll()})")
    return line


@contextlib.contextmanager
def run_in_subprocess(
    args: Sequence[str] = (), *, timeout: float = START_TIMEOUT_S
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """
    Run ``python -m provisioner.emulator --port 0 ARGS`` and yield it with its base
    URL (``http://127.0.0.1:PORT/v1``); terminate it on exit.
    """
    command = [sys.executable, "-m", "provisioner.emulator", "--port", "0", *args]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        yield process, _first_line(process, timeout)
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
