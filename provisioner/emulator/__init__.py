"""
A faithful local Webex Devices API on aiohttp, with seeded fault injection.

It imports only aiohttp and the standard library, never the rest of ``provisioner``,
so it stays an independent reading of the API contract.
"""

from __future__ import annotations

from provisioner.emulator.app import create_app
from provisioner.emulator.config import (
    ALL_SCOPES,
    DEFAULT_TOKEN,
    EmulatorConfig,
    FaultKnobs,
    parse_token,
)
from provisioner.emulator.harness import (
    RunningEmulator,
    run_in_subprocess,
    serve_in_process,
)
from provisioner.emulator.main import main
from provisioner.emulator.state import STATE_KEY, EmulatorState

__all__ = [
    "ALL_SCOPES",
    "DEFAULT_TOKEN",
    "STATE_KEY",
    "EmulatorConfig",
    "EmulatorState",
    "FaultKnobs",
    "RunningEmulator",
    "create_app",
    "main",
    "parse_token",
    "run_in_subprocess",
    "serve_in_process",
]
