"""
A faithful local Webex API on aiohttp, with seeded fault injection.

It serves the Devices API (and the telephony helpers a provisioning client needs)
plus the directory a client resolves owners with: ``/people`` (``me``, by email or
name), ``/workspaces`` (by name, which is not an exact match), ``/locations`` and
``/organizations``. It can hold several orgs, each with its own directory, devices
and token bucket; ``orgId`` is honoured as the real API does, and partner tokens
may act for a list of orgs. The admin view under ``/_emulator/`` shows stats per
route and per org, and the ordered request log.

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
    OrgSpec,
    org_token,
    parse_token,
)
from provisioner.emulator.directory import org_id_for
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
    "OrgSpec",
    "RunningEmulator",
    "create_app",
    "main",
    "org_id_for",
    "org_token",
    "parse_token",
    "run_in_subprocess",
    "serve_in_process",
]
