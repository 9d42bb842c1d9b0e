"""
A run resolves owners named by workspace name or email before its first write.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from fakes import FakeDevicesApi

from provisioner.intake.manifest import load_manifest
from provisioner.models import Status
from provisioner.run.engine import provision
from provisioner.settings import Settings

HEADER = "mac,model,workspace,location,personEmail,tags"


def settings(**changes: object) -> Settings:
    return replace(
        Settings(token="secret-token", base_url="http://127.0.0.1:1/v1"), **changes
    )  # type: ignore[arg-type]


def directory() -> FakeDevicesApi:
    return FakeDevicesApi(
        workspace_names={
            "ws-lobby-hq": ("Lobby", "loc-hq"),
            "ws-lobby-den": ("Lobby", "loc-den"),
            "ws-board": ("Boardroom", "loc-hq"),
        },
        person_emails={"person-pat": "pat@agency.example.gov"},
        locations={"loc-hq": "HQ", "loc-den": "Denver"},
    )


def write(folder: Path, *lines: str) -> Path:
    path = folder / "m.csv"
    path.write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
    return path


async def test_rows_by_name_and_email_are_provisioned_under_their_owner(
    tmp_path: Path,
) -> None:
    """Names resolve once each; devices land on the right owner; the report names it."""
    manifest = load_manifest(
        write(
            tmp_path,
            "00AABB000002,Cisco 8851,Boardroom,,,a",
            "00AABB000003,Cisco 8851,Boardroom,,,b",
            "00AABB000004,Cisco 8851,Lobby,Denver,,c",
            "00AABB000005,Cisco 8851,,,PAT@agency.example.gov,d",
            ",Room Kit,Lobby,HQ,,",
        )
    )
    api = directory()

    result = await provision(manifest, settings(), api=api)

    by_mac = {device.mac: device for device in api.devices.values()}
    assert by_mac["00AABB000002"].workspace_id == "ws-board"
    assert by_mac["00AABB000004"].workspace_id == "ws-lobby-den"
    assert by_mac["00AABB000005"].person_id == "person-pat"
    assert by_mac["00AABB000005"].tags == ("d",)
    assert [result.outcomes[n].status for n in range(2, 7)] == [
        *([Status.CREATED] * 4),
        Status.CODE_ISSUED,
    ]
    assert result.outcomes[2].owner == "Boardroom (id ws-board)"
    assert result.outcomes[5].owner == "PAT@agency.example.gov (id person-pat)"
    assert result.outcomes[6].owner == "Lobby, HQ (id ws-lobby-hq)"
    assert api.code_models == [None]
    assert api.count("find_workspaces") == 2
    assert api.count("find_people") == 1


async def test_unknown_and_ambiguous_names_are_invalid_and_never_sent(
    tmp_path: Path,
) -> None:
    """A name that matches nothing, or several, makes its rows invalid: no write."""
    manifest = load_manifest(
        write(
            tmp_path,
            "00AABB000002,Cisco 8851,Lobby,,,",
            "00AABB000003,Cisco 8851,Atrium,,,",
            "00AABB000004,Cisco 8851,,,nobody@agency.example.gov,",
        )
    )
    api = directory()

    result = await provision(manifest, settings(), api=api)

    statuses = [result.outcomes[n].status for n in (2, 3, 4)]
    assert statuses == [Status.INVALID] * 3
    assert '2 workspaces are named "Lobby": ws-lobby-hq (location "HQ")' in (
        result.outcomes[2].error or ""
    )
    assert 'no workspace is named exactly "Atrium"' in (result.outcomes[3].error or "")
    assert "nobody@agency.example.gov" in (result.outcomes[4].error or "")
    assert result.outcomes[2].owner == "Lobby"
    assert api.writes == []


async def test_a_dry_run_resolves_names_without_reading_them_again(
    tmp_path: Path,
) -> None:
    """The dry run resolves names in its pre-flight and does not look them up by id."""
    manifest = load_manifest(write(tmp_path, "00AABB000002,Cisco 8851,Boardroom,,,"))
    api = directory()

    result = await provision(manifest, settings(dry_run=True), api=api)

    assert result.outcomes[2].status is Status.PLANNED
    assert result.outcomes[2].owner == "Boardroom (id ws-board)"
    assert api.count("get_workspace") == 0
    assert api.writes == []
