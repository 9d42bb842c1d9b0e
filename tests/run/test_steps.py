"""
steps.py against the emulator: a MAC row whose device the org already holds for the
row's owner, as another model than the row says, is adopted as it is, and its report
row says so; the dry run says so beforehand. A MAC another owner holds fails its row
with the status of the API's refusal.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import structlog

import provisioner
from provisioner.emulator import RunningEmulator
from provisioner.intake.manifest import load_manifest
from provisioner.models import Manifest, Status
from provisioner.run.engine import provision
from provisioner.settings import RateControl, Settings

ORG = json.loads(
    (Path(provisioner.__file__).parent / "emulator" / "data" / "org.json").read_text()
)
WS = ORG["workspaces"][0]["id"]
OTHER_WS = ORG["workspaces"][1]["id"]
HELD = "0A0B0C0D0E02"  # registered to WS as a Cisco 8865 before the run
FREE = "0A0B0C0D0E09"
SAME = "0A0B0C0D0E03"  # registered to WS as the Cisco 8851 its row says


def seeded(emulator: RunningEmulator) -> None:
    store, now = emulator.state.store, emulator.state.clock.now()
    for mac, model in ((HELD, "DMS Cisco 8865"), (SAME, "DMS Cisco 8851")):
        store.create_by_mac({"mac": mac, "model": model, "workspaceId": WS}, now, 400)


def manifest(folder: Path) -> Manifest:
    path = folder / "m.csv"
    path.write_text(
        "mac,model,workspaceId,tags\n"
        f"{HELD},Cisco 8851,{WS},lobby\n"
        f"{FREE},Cisco 8851,{WS},\n"
        f"{SAME},Cisco 8851,{WS},\n",
        encoding="utf-8",
    )
    return load_manifest(path)


def settings_for(emulator: RunningEmulator, **changes: object) -> Settings:
    base = Settings(
        token=emulator.token,
        base_url=emulator.base_url,
        concurrency=4,
        rate=RateControl(initial_rate=200.0),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


async def test_an_adopted_device_of_another_model_is_said_in_its_report_row(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    """The row is adopted and tagged; the org's device stays the 8865 it was (the only
    device with that MAC), and the row's error cell names both models."""
    seeded(emulator)

    result = await provision(manifest(tmp_path), settings_for(emulator))

    held, free, same = (result.outcomes[n] for n in (2, 3, 4))
    assert (held.status, free.status, same.status) == (
        Status.ADOPTED,
        Status.CREATED,
        Status.ADOPTED,
    )
    assert held.error == (
        "model differs: the org has this MAC as a Cisco 8865, not the Cisco 8851 the "
        "row says; the device was adopted as it is (its model was not changed): "
        "correct the model in the manifest, or delete the device and provision the "
        "row again if it is to be replaced"
    )
    assert (free.error, same.error) == (None, None)
    records = [r for r in emulator.state.store.devices.values() if r.mac == HELD]
    assert [(r.id, r.wire["product"], r.wire["tags"]) for r in records] == [
        (held.device_id, "Cisco 8865", ["lobby"])
    ]


async def test_the_dry_run_says_so_in_its_plan_and_warns(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    """The planned row's plan names both models; a warning names row and MAC; the
    org is left as it was."""
    seeded(emulator)
    before = {r.id: dict(r.wire) for r in emulator.state.store.devices.values()}

    with structlog.testing.capture_logs() as logs:
        result = await provision(
            manifest(tmp_path), settings_for(emulator, dry_run=True)
        )

    plan = result.outcomes[2].plan or ""
    assert result.outcomes[2].status is Status.PLANNED
    assert plan.startswith("would adopt device ")
    assert plan.endswith(
        "and apply tags lobby, but the org has this MAC as a Cisco 8865, not the "
        "Cisco 8851 the row says: it would be adopted as it is (its model is not "
        "changed); correct the row's model, or delete that device first if it is to "
        "be replaced"
    )
    assert "org has" not in (result.outcomes[4].plan or "")
    warned = [e for e in logs if e["event"] == "adopted_model_differs"]
    assert [(e["log_level"], e["row"]) for e in warned] == [("warning", 2)]
    assert f"MAC {HELD}" in warned[0]["reason"]
    after = {r.id: dict(r.wire) for r in emulator.state.store.devices.values()}
    assert after == before


@pytest.mark.parametrize("refusal", [400, 409])
async def test_a_mac_another_owner_holds_fails_with_the_refusals_status(
    start_emulator: Any, tmp_path: Path, refusal: int
) -> None:
    """The create is refused (the API's status for a MAC in use, 400 or 409); the
    row fails naming the owner that holds the MAC, with that status in its report
    row; the org keeps the one device it had, untouched."""
    emulator = await start_emulator(mac_in_use_status=refusal)
    store, now = emulator.state.store, emulator.state.clock.now()
    store.create_by_mac(
        {"mac": FREE, "model": "DMS Cisco 8851", "workspaceId": OTHER_WS}, now, 400
    )
    before = {r.id: dict(r.wire) for r in store.devices.values()}
    path = tmp_path / "m.csv"
    path.write_text(
        f"mac,model,workspaceId,tags\n{FREE},Cisco 8851,{WS},lobby\n",
        encoding="utf-8",
    )

    result = await provision(load_manifest(path), settings_for(emulator))

    outcome = result.outcomes[2]
    assert (outcome.status, outcome.http_status) == (Status.FAILED, refusal)
    assert outcome.tracking_id
    assert f"registered to workspace {OTHER_WS}" in (outcome.error or "")
    assert {r.id: dict(r.wire) for r in store.devices.values()} == before
