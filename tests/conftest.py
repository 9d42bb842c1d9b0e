"""
Shared fixtures: the emulator in the test's own loop, and clean global state.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import structlog

from provisioner.emulator import EmulatorConfig, RunningEmulator, serve_in_process
from provisioner.logs import reset_logging
from provisioner.redaction import forget_secrets

StartEmulator = Callable[..., AbstractAsyncContextManager[RunningEmulator]]

# Hypothesis fails an example slower than 200 ms by default: a timed assertion, which
# a machine shared by several test runs trips at random. Speed is make bench's job.
hypothesis.settings.register_profile("no-deadline", deadline=None)
hypothesis.settings.load_profile("no-deadline")

# `make mutate` (mutmut) runs each test many times in one process, once per mutant:
# hypothesis then sees one test called from several executors, and the mutation
# trampolines slow every example. Its runs draw the same examples every time, so a
# mutant is killed or not whatever the order.
if "MUTANT_UNDER_TEST" in os.environ:
    hypothesis.settings.register_profile(
        "mutmut",
        suppress_health_check=[
            hypothesis.HealthCheck.differing_executors,
            hypothesis.HealthCheck.too_slow,
        ],
        deadline=None,
        derandomize=True,
        database=None,
    )
    hypothesis.settings.load_profile("mutmut")


@pytest.fixture(autouse=True)
def _clean_globals(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """
    Reset logging and secrets, and drop the Webex environment variables, around
    every test.

    A CLI test that configured logging (a ``--log-file`` among them) leaves the file
    closed and structlog at its defaults for the next test; the secrets a test
    registered (its token, its passwords) do not redact the next test's text.
    """
    structlog.reset_defaults()
    forget_secrets()
    monkeypatch.delenv("WEBEX_ACCESS_TOKEN", raising=False)
    monkeypatch.delenv("WEBEX_BASE_URL", raising=False)
    yield
    reset_logging()
    forget_secrets()


@pytest.fixture(name="unwritable", params=["mode 0555", "/proc"])
def _unwritable(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    """
    A folder that exists and takes no new file: one of mode 0555 (skipped where it
    takes one: root's), and /proc (which refuses new files even to root).
    """
    if request.param == "/proc":
        if not Path("/proc/self").exists():
            pytest.skip("no /proc on this system")
        yield Path("/proc")
        return
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        (folder / "probe").touch()
    except PermissionError:
        yield folder
        folder.chmod(0o755)
        return
    folder.chmod(0o755)
    pytest.skip("this user (root) writes in a folder of mode 0555")


@pytest.fixture(name="start_emulator")
async def _start_emulator() -> AsyncIterator[Callable[..., Any]]:
    """
    Start emulators with custom configs; all stop when the test ends.

    Call it with an ``EmulatorConfig`` or with its keyword arguments:
    ``server = await start_emulator(rate_limit=5, burst=1)``.
    """
    async with AsyncExitStack() as stack:

        async def start(
            config: EmulatorConfig | None = None, **options: Any
        ) -> RunningEmulator:
            if config is None:
                config = EmulatorConfig(**options)
            return await stack.enter_async_context(serve_in_process(config))

        yield start


@pytest.fixture(name="emulator")
async def _emulator() -> AsyncIterator[RunningEmulator]:
    """
    A default emulator (no faults, default token) on 127.0.0.1.
    """
    async with serve_in_process() as server:
        yield server
