"""
The run judges rows by the org's own supportedDevices list; RoomOS codes name no model.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from fakes import FakeDevicesApi

from provisioner.intake.manifest import load_manifest
from provisioner.models import Status, SupportedModel
from provisioner.run.engine import provision
from provisioner.settings import Settings

WS = "ws-1"
PERSON = "person-1"
HEADER = "mac,model,workspaceId,personId"


def settings(**changes: object) -> Settings:
    return replace(
        Settings(token="secret-token", base_url="http://127.0.0.1:1/v1"), **changes
    )  # type: ignore[arg-type]


def phone(model: str, display_name: str) -> SupportedModel:
    return SupportedModel(
        model=model,
        display_name=display_name,
        type="MPP",
        managed_by="CISCO",
        supported_for=("PEOPLE", "PLACE"),
        onboarding_methods=("MAC_ADDRESS", "ACTIVATION_CODE"),
    )


def write(folder: Path, *lines: str) -> Path:
    path = folder / "m.csv"
    path.write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
    return path


async def test_a_model_only_the_org_lists_is_provisioned(tmp_path: Path) -> None:
    """A model the bundled catalogue lacks goes through when the org lists it."""
    manifest = load_manifest(write(tmp_path, f"00AABB000002,Cisco 9999,{WS},"))
    assert not manifest.rows[0].is_valid
    api = FakeDevicesApi(
        workspaces={WS}, supported=[phone("DMS Cisco 9999", "Cisco 9999")]
    )

    result = await provision(manifest, settings(), api=api)

    assert result.outcomes[2].status is Status.CREATED
    (device,) = api.devices.values()
    assert (device.mac, device.product) == ("00AABB000002", "Cisco 9999")


async def test_a_model_the_org_does_not_list_is_invalid(tmp_path: Path) -> None:
    """A model only the bundled catalogue knows is invalid in a run: nothing is sent."""
    manifest = load_manifest(
        write(
            tmp_path,
            f"00AABB000002,Cisco 8851,{WS},",
            f"00AABB000003,Cisco 8865,{WS},",
        )
    )
    assert all(row.is_valid for row in manifest.rows)
    api = FakeDevicesApi(
        workspaces={WS}, supported=[phone("DMS Cisco 8865", "Cisco 8865")]
    )

    result = await provision(manifest, settings(), api=api)

    invalid = result.outcomes[2]
    assert invalid.status is Status.INVALID
    assert "this org does not list this model" in (invalid.error or "")
    assert result.outcomes[3].status is Status.CREATED
    assert api.count("create_device") == 1


async def test_roomos_codes_are_requested_without_a_model(tmp_path: Path) -> None:
    """RoomOS rows get codes without a model, for a workspace and a person; phones name theirs."""
    manifest = load_manifest(
        write(
            tmp_path,
            f",Cisco Room Kit,{WS},",
            f",Desk Pro,,{PERSON}",
            f",Cisco 8875,{WS},",
        )
    )
    api = FakeDevicesApi(
        workspaces={WS},
        people={PERSON},
        supported=[phone("DMS Cisco 8875", "Cisco 8875")],
    )

    result = await provision(manifest, settings(), api=api)

    assert [result.outcomes[n].status for n in (2, 3, 4)] == [Status.CODE_ISSUED] * 3
    assert sorted(api.code_models, key=str) == ["DMS Cisco 8875", None, None]


async def test_the_8875_is_created_by_mac(tmp_path: Path) -> None:
    """An 8875 row with a MAC is created by MAC, not refused."""
    manifest = load_manifest(write(tmp_path, f"00AABB000002,Cisco 8875,{WS},"))
    api = FakeDevicesApi(workspaces={WS})

    result = await provision(manifest, settings(), api=api)

    assert result.outcomes[2].status is Status.CREATED
    assert api.count("create_device") == 1


async def test_a_roomos_code_is_not_issued_twice_across_reports(tmp_path: Path) -> None:
    """An earlier run's pending Room Kit makes the row code_pending, not a second code."""
    manifest = load_manifest(
        write(tmp_path, f",Cisco Room Kit,{WS},", f",Desk Pro,,{PERSON}")
    )
    api = FakeDevicesApi(workspaces={WS}, people={PERSON})

    first = await provision(
        manifest, settings(), api=api, journal_path=tmp_path / "a.sqlite"
    )
    second = await provision(
        manifest, settings(), api=api, journal_path=tmp_path / "b.sqlite"
    )

    assert [first.outcomes[n].status for n in (2, 3)] == [Status.CODE_ISSUED] * 2
    assert [second.outcomes[n].status for n in (2, 3)] == [Status.CODE_PENDING] * 2
    assert api.count("create_activation_code") == 2
