"""
Manifests of a partner's run across the emulator's orgs, and that run as a person
types it, for tests in any folder.

The emulator seeds each extra org from its key alone (``generated_org``), so a test
can name the orgs' owners before the emulator starts; ``None`` is the seeded org.
"""

from __future__ import annotations

import csv
import json
import urllib.request
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result
from paths import EMULATOR_ORG

from provisioner.cli import main
from provisioner.emulator import OrgSpec, org_id_for
from provisioner.emulator.directory import generated_org

HEADER = ("mac", "model", "workspaceId", "tags", "orgId", "notes")
#: The token the tests' emulators make a partner of their extra orgs.
PARTNER = "partner-token"
#: A partner token of every extra org, where a test's emulator adds one: it makes
#: the report whose rows ``PARTNER``, refused by some of those orgs, works on.
EVERY_ORG = "every-org-token"
HOME = json.loads(EMULATOR_ORG.read_text())


def workspaces_of(key: str | None) -> list[str]:
    """The seeded workspaces of an extra org (None: of the seeded org)."""
    directory = HOME if key is None else generated_org(OrgSpec(key=key))
    return [item["id"] for item in directory["workspaces"]]


def write_org_manifest(path: Path, rows: dict[str | None, int]) -> Path:
    """
    Write a CSV with ``rows[key]`` MAC rows for each org, orgs interleaved.

    Rows of an extra org carry its ``orgId``; the seeded org's (key None) carry
    none. MACs are unique across orgs; owners rotate over each org's workspaces.
    """
    keys = list(rows)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(HEADER)
        for index in range(max(rows.values())):
            for number, key in enumerate(keys, start=1):
                if index >= rows[key]:
                    continue
                owners = workspaces_of(key)
                writer.writerow(
                    (
                        f"0A{number:02X}{index:08X}",
                        "Cisco 8851",
                        owners[index % len(owners)],
                        "pilot",
                        "" if key is None else org_id_for(key),
                        f"{key or 'home'} desk {index}",
                    )
                )
    return path


def org_devices(base_url: str, key: str | None) -> list[dict[str, Any]]:
    """
    What an org holds: its devices, as the emulator's admin view lists them (None:
    the seeded org), whichever token a command used.
    """
    admin = base_url.removesuffix("/v1") + "/_emulator/devices"
    url = admin if key is None else f"{admin}?orgId={org_id_for(key)}"
    with urllib.request.urlopen(url, timeout=10) as response:
        return list(json.loads(response.read())["items"])


def run_partner_manifest(
    base_url: str,
    folder: Path,
    rows: dict[str | None, int],
    *flags: str,
    token: str = PARTNER,
) -> tuple[Result, Path]:
    """
    Write ``rows`` per org to ``folder/partner.csv`` and run it with the partner's
    token (or ``token``) and ``flags``, quietly; return the result and the report's
    path without its extension (``folder/out/partner``).
    """
    manifest = write_org_manifest(folder / "partner.csv", rows)
    report = folder / "out" / "partner"
    args = ["run", str(manifest), "--base-url", base_url, "--report", str(report)]
    result = CliRunner().invoke(
        main,
        [*args, "--quiet", *flags],
        env={"WEBEX_ACCESS_TOKEN": token},
        catch_exceptions=False,
    )
    return result, report
