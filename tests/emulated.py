"""
An emulator in its own process, seen the way an admin would check an org, and the
CLI invoked as a person types it: for the end-to-end tests of trust across runs.

CliRunner runs each command in this process with its own event loop, so the emulator
runs in a subprocess (``run_in_subprocess``) and is read back through its admin view,
which tells what the org really holds, whatever the tool said.
"""

from __future__ import annotations

import csv
import json
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result
from paths import EMULATOR_ORG

from provisioner.cli import main
from provisioner.emulator.config import DEFAULT_TOKEN

__all__ = [
    "CODE_MODEL",
    "ORG_ID",
    "PEOPLE",
    "WORKSPACES",
    "Emulator",
    "code_rows",
    "invoke",
    "phone_rows",
    "read_report",
    "write_manifest",
]

ORG = json.loads(EMULATOR_ORG.read_text())
ORG_ID = ORG["orgId"]
WORKSPACES = [w["id"] for w in ORG["workspaces"]]
PEOPLE = [p["id"] for p in ORG["people"]]
CODE_MODEL = "Cisco 8865"
# A POST that only reads: the dry run's pre-flight check of MACs.
_READ_ONLY_POSTS = ("validateMacs",)
_COLUMNS = ("mac", "model", "workspaceId", "personId", "tags", "note")


@dataclass
class Emulator:
    """
    A running emulator process: its API URL and its admin view.
    """

    base_url: str

    @property
    def admin_url(self) -> str:
        return self.base_url.removesuffix("/v1") + "/_emulator"

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.admin_url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def reset(self) -> None:
        """
        Clear devices and stats, and switch every fault off.
        """
        self.admin("POST", "/reset")
        self.admin(
            "POST",
            "/faults",
            {
                "latency_ms": 0,
                "rate_limit": None,
                "fault_rate": 0,
                "drop_rate": 0,
                "ambiguous_rate": 0,
            },
        )

    def devices(self) -> list[dict[str, Any]]:
        return list(self.admin("GET", "/devices")["items"])

    def pending(self) -> list[dict[str, Any]]:
        """
        The devices still waiting for an activation code (no MAC, not activated).
        """
        return [
            d
            for d in self.devices()
            if not d.get("mac")
            and d.get("connectionStatus") in ("activating", "pending")
        ]

    def write_calls(self) -> int:
        by_route: dict[str, dict[str, int]] = self.admin("GET", "/stats")["by_route"]
        return sum(
            sum(counts.values())
            for route, counts in by_route.items()
            if route.split()[0] in ("POST", "PATCH", "PUT", "DELETE")
            and not any(marker in route for marker in _READ_ONLY_POSTS)
        )


def mac(n: int) -> str:
    return f"AA:BB:CC:{n >> 16 & 0xFF:02X}:{n >> 8 & 0xFF:02X}:{n & 0xFF:02X}"


def phone_rows(count: int, start: int = 1) -> list[dict[str, str]]:
    """
    MAC rows for the emulator's workspaces, tagged, one per workspace in turn.
    """
    return [
        {
            "mac": mac(start + i),
            "model": "Cisco 8851",
            "workspaceId": WORKSPACES[i % len(WORKSPACES)],
            "tags": "lobby;floor-1",
            "note": f"desk {start + i}",
        }
        for i in range(count)
    ]


def code_rows(count: int, start: int = 0) -> list[dict[str, str]]:
    """
    Activation-code rows, each for its own workspace (from the end of the list).
    """
    return [
        {
            "model": CODE_MODEL,
            "workspaceId": WORKSPACES[-1 - (start + i)],
            "note": f"code {start + i}",
        }
        for i in range(count)
    ]


def write_manifest(path: Path, rows: Sequence[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in _COLUMNS})
    return path


def read_report(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as file:
        return list(csv.DictReader(file))


def invoke(
    args: Sequence[str], *, token: str | None = DEFAULT_TOKEN, **env: str
) -> Result:
    """
    Run the CLI as a person would; the result has the exit code, stdout and stderr.
    """
    environment = dict(env)
    if token is not None:
        environment["WEBEX_ACCESS_TOKEN"] = token
    return CliRunner().invoke(main, list(args), env=environment, catch_exceptions=False)
