"""
A run whose own org is the one ``--org-id`` names: an org the token may not act for,
or one that does not exist, stops the run before any write, naming the flag (not the
token's scopes). Judged by what the orgs hold.
"""

from __future__ import annotations

import itertools
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from org_manifests import PARTNER, workspaces_of

from provisioner.cli import main
from provisioner.emulator import org_id_for
from provisioner.emulator.harness import run_in_subprocess

ORG1, ORG2 = org_id_for("org1"), org_id_for("org2")
UNKNOWN = org_id_for("no-such-org")
#: The org1 workspaces left for the code reports, one each (the first is the runs').
_CODE_OWNERS = itertools.count(1)


@pytest.fixture(name="base_url", scope="module")
def _base_url() -> Iterator[str]:
    """org1 and org2 beside the seeded org; the partner token manages org1 only."""
    args = ["--orgs", "2", "--partner", f"{PARTNER}=org1"]
    with run_in_subprocess(args) as (_process, base_url):
        yield base_url


def device_count(base_url: str) -> int:
    admin = base_url.removesuffix("/v1") + "/_emulator/devices"
    with urllib.request.urlopen(admin, timeout=10) as answer:
        return len(json.load(answer)["items"])


def run_in(base_url: str, folder: Path, org_id: str) -> Result:
    manifest = folder / "site.csv"
    workspace = workspaces_of("org1")[0]
    manifest.write_text(f"mac,model,workspaceId\n00451D0A0001,Cisco 8851,{workspace}\n")
    args = ["run", str(manifest), "--yes", "--report", str(folder / "r.csv")]
    args += ["--base-url", base_url, "--org-id", org_id]
    return CliRunner().invoke(
        main, args, env={"WEBEX_ACCESS_TOKEN": PARTNER}, catch_exceptions=False
    )


@pytest.mark.parametrize(
    ("org_id", "said"),
    [
        (ORG2, "the token may not act for this org"),
        (UNKNOWN, "no such org (HTTP 404"),
    ],
    ids=["refused", "unknown"],
)
def test_an_org_id_the_run_cannot_use_stops_it_naming_the_flag(
    base_url: str, tmp_path: Path, org_id: str, said: str
) -> None:
    before = device_count(base_url)

    result = run_in(base_url, tmp_path, org_id)

    assert result.exit_code == 2, result.output
    assert f"--org-id {org_id}: {said}" in result.stderr
    assert "lacks a scope" not in result.stderr
    assert device_count(base_url) == before


@pytest.mark.parametrize(
    ("org_id", "said"),
    [
        (ORG2, "the token may not act for this org"),
        (UNKNOWN, "no such org (HTTP 404"),
    ],
    ids=["refused", "unknown"],
)
def test_validate_live_names_the_flag_too(
    base_url: str, tmp_path: Path, org_id: str, said: str
) -> None:
    """validate --live reads the org --org-id names first, as a run does, and says
    an unknown or refused one by the flag, exit 2."""
    manifest = tmp_path / "site.csv"
    workspace = workspaces_of("org1")[0]
    manifest.write_text(f"mac,model,workspaceId\n00451D0A0001,Cisco 8851,{workspace}\n")

    result = CliRunner().invoke(
        main,
        [
            "validate",
            str(manifest),
            "--live",
            "--base-url",
            base_url,
            "--org-id",
            org_id,
        ],
        env={"WEBEX_ACCESS_TOKEN": PARTNER},
        catch_exceptions=False,
    )

    assert result.exit_code == 2, result.output
    assert f"--org-id {org_id}: {said}" in result.stderr
    assert "Traceback" not in result.output


def devices_of(base_url: str) -> list[dict[str, object]]:
    """Every device of every org, as the emulator's admin view lists them."""
    admin = base_url.removesuffix("/v1") + "/_emulator/devices"
    with urllib.request.urlopen(admin, timeout=10) as answer:
        return list(json.load(answer)["items"])


def code_report_in_org1(base_url: str, folder: Path, *, mac: str = "") -> Path:
    """A partner's report of one activation code in org1 (its row names org1), for
    a workspace no earlier test gave a code (its second would be code_pending); or,
    given ``mac``, of one device by that MAC."""
    manifest = folder / "codes.csv"
    owners = workspaces_of("org1")
    workspace = owners[0] if mac else owners[next(_CODE_OWNERS)]
    manifest.write_text(
        f"mac,model,workspaceId,orgId\n{mac},Cisco 8851,{workspace},{ORG1}\n"
    )
    report = folder / "r.csv"
    args = ["run", str(manifest), "--yes", "-q", "--report", str(report)]
    ran = CliRunner().invoke(
        main,
        [*args, "--base-url", base_url],
        env={"WEBEX_ACCESS_TOKEN": PARTNER},
        catch_exceptions=False,
    )
    assert ran.exit_code == 0, ran.output
    return report


@pytest.mark.parametrize(
    ("org_id", "said"),
    [
        (ORG2, "the token may not act for this org"),
        (UNKNOWN, "no such org (HTTP 404"),
    ],
    ids=["refused", "unknown"],
)
@pytest.mark.parametrize("renew", [False, True], ids=["list", "renew"])
def test_codes_names_the_flag_even_when_no_row_goes_there(
    base_url: str, tmp_path: Path, org_id: str, said: str, renew: bool
) -> None:
    """codes (and codes --renew) of a report whose rows all name their own org
    stops at an --org-id the token cannot use, exit 2, naming the flag: no code
    listed, none renewed."""
    report = code_report_in_org1(base_url, tmp_path)
    before = devices_of(base_url)
    args = ["codes", str(report), "--within", "60d", "--yes"]
    args += ["--base-url", base_url, "--org-id", org_id]

    result = CliRunner().invoke(
        main,
        [*args, "--renew"] if renew else args,
        env={"WEBEX_ACCESS_TOKEN": PARTNER},
        catch_exceptions=False,
    )

    assert result.exit_code == 2, result.output
    assert f"--org-id {org_id}: {said}" in result.stderr
    assert "expiring" not in result.output
    assert devices_of(base_url) == before
    assert not (tmp_path / "r-renewed.csv").exists()


@pytest.mark.parametrize("dry_run", [False, True], ids=["rollback", "dry-run"])
def test_rollback_names_the_flag_even_when_no_row_goes_there(
    base_url: str, tmp_path: Path, dry_run: bool
) -> None:
    """rollback (and its dry run) of a report whose rows all name their own org
    stops at an --org-id the token may not act for, exit 2, naming the flag:
    nothing deleted."""
    mac = "00451D0A0E02" if dry_run else "00451D0A0E01"
    report = code_report_in_org1(base_url, tmp_path, mac=mac)
    before = devices_of(base_url)
    args = ["rollback", str(report), "--yes", "-q"]
    args += ["--base-url", base_url, "--org-id", ORG2]

    result = CliRunner().invoke(
        main,
        [*args, "--dry-run"] if dry_run else args,
        env={"WEBEX_ACCESS_TOKEN": PARTNER},
        catch_exceptions=False,
    )

    assert result.exit_code == 2, result.output
    assert f"--org-id {ORG2}: the token may not act for this org" in result.stderr
    assert devices_of(base_url) == before
