"""
Live pre-flight across several orgs: each org read once, a refused org named once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from org_manifests import write_org_manifest

from provisioner.emulator import OrgSpec, RunningEmulator, org_id_for
from provisioner.intake.manifest import load_manifest
from provisioner.live.preflight import preflight
from provisioner.settings import Settings
from provisioner.webex.client import ApiClient

PARTNER = "partner-token"
ORG1, ORG2 = org_id_for("org1"), org_id_for("org2")
SUPPORTED = "GET /v1/telephony/config/supportedDevices"


async def test_each_org_is_checked_and_a_refused_one_named_once(
    start_emulator: Any, tmp_path: Path
) -> None:
    """
    org1's rows get their MAC and owner checks in org1; org2, which the token may
    not act for, is read once and its rows carry that one problem in orgId.
    """
    server: RunningEmulator = await start_emulator(
        orgs=(OrgSpec(key="org1"), OrgSpec(key="org2")),
        partners={PARTNER: ("org1",)},
    )
    manifest = load_manifest(
        write_org_manifest(tmp_path / "m.csv", {None: 1, "org1": 2, "org2": 2})
    )
    settings = Settings(token=PARTNER, base_url=server.base_url)

    async with ApiClient(settings) as api:
        checked = await preflight(manifest, api)

    problems = {
        row.number: [(p.column, p.message) for p in row.problems]
        for row in checked.manifest.rows
        if row.problems
    }
    refused = [row.number for row in checked.manifest.rows if row.org_id == ORG2]
    assert sorted(problems) == refused
    assert {column for found in problems.values() for column, _ in found} == {"orgId"}
    assert all("may not act for this org" in m for f in problems.values() for _, m in f)
    assert [e["route"] for e in server.requests(org=ORG2)] == [SUPPORTED]
    org1_routes = [e["route"] for e in server.requests(org=ORG1)]
    assert org1_routes.count(SUPPORTED) == 1
    assert (
        "POST /v1/telephony/config/devices/actions/validateMacs/invoke" in org1_routes
    )
    assert org1_routes.count("GET /v1/workspaces/{workspaceId}") == 2


def test_with_catalogues_judges_each_row_by_its_orgs_list_and_keeps_duplicates(
    tmp_path: Path,
) -> None:
    """Orgs listing different models; a MAC on rows of two orgs is still flagged."""
    from provisioner.live.orgs import with_catalogues
    from provisioner.webex.protocol import SupportedModel

    def listed(name: str) -> tuple[SupportedModel, ...]:
        return (
            SupportedModel(
                model=f"DMS Cisco {name}",
                display_name=f"Cisco {name}",
                onboarding_methods=("MAC_ADDRESS",),
            ),
        )

    path = tmp_path / "m.csv"
    path.write_text(
        "mac,model,workspaceId,orgId\n"
        "0A0000000001,Cisco 8851,ws-1,org-a\n"
        "0A0000000002,Cisco 8851,ws-1,org-b\n"
        "0A0000000001,Cisco 8865,ws-1,org-b\n"
    )
    manifest = load_manifest(path)

    judged = with_catalogues(
        manifest, {"org-a": listed("8851"), "org-b": listed("8865")}, None
    )

    columns = [[p.column for p in row.problems] for row in judged.rows]
    assert columns == [["mac"], ["model"], ["mac"]]


async def test_a_row_whose_org_id_is_wrong_is_asked_nothing_more(
    start_emulator: Any, tmp_path: Path
) -> None:
    """
    A row whose orgId cell is not an id (a name typed there) keeps that one problem:
    its workspace name is not looked up in the token's own org, nor its MAC checked
    there, as if it named no org.
    """
    server: RunningEmulator = await start_emulator()
    path = tmp_path / "m.csv"
    path.write_text(
        "mac,model,workspace,orgId\n0A0000000001,Cisco 8851,Reception,Customer org1\n",
        encoding="utf-8",
    )
    manifest = load_manifest(path)
    settings = Settings(token="emulator-token", base_url=server.base_url)

    async with ApiClient(settings) as api:
        checked = await preflight(manifest, api)

    (row,) = checked.manifest.rows
    assert [problem.column for problem in row.problems] == ["orgId"]
    routes = [entry["route"] for entry in server.requests()]
    assert "GET /v1/workspaces" not in routes
    assert not any("validateMacs" in route for route in routes)


async def test_a_mac_held_in_another_org_of_the_manifest_is_named_there(
    start_emulator: Any, tmp_path: Path
) -> None:
    """
    A MAC already registered in org2 (another org of the same partner manifest) on
    an org1 row: the problem names the device and the org it is in, not "a device
    this token cannot see".
    """
    from org_manifests import workspaces_of

    server: RunningEmulator = await start_emulator(
        orgs=(OrgSpec(key="org1"), OrgSpec(key="org2")),
        partners={PARTNER: ("org1", "org2")},
    )
    settings = Settings(token=PARTNER, base_url=server.base_url)
    org2_room = workspaces_of("org2")[0]
    path = tmp_path / "m.csv"
    path.write_text(
        "mac,model,workspaceId,orgId\n"
        f"0A0B0C0D0E0F,Cisco 8851,{workspaces_of('org1')[0]},{ORG1}\n"
        f"0A0B0C0D0E10,Cisco 8851,{org2_room},{ORG2}\n",
        encoding="utf-8",
    )
    async with ApiClient(settings) as api:
        held = await api.create_device(
            mac="0A0B0C0D0E0F",
            model="DMS Cisco 8851",
            workspace_id=org2_room,
            org_id=ORG2,
        )
        checked = await preflight(load_manifest(path), api)

    row = checked.manifest.rows[0]
    (problem,) = row.problems
    assert f"in org {ORG2} (another org of this manifest)" in problem.message
    assert held.id in problem.message
    assert "cannot see" not in problem.message
