"""
ApiClient's directory lookups against the emulator: people by email, workspaces by name.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from paths import EMULATOR_ORG

from provisioner.emulator import RunningEmulator
from provisioner.settings import Settings
from provisioner.webex.client import ApiClient

ORG = json.loads(EMULATOR_ORG.read_text(encoding="utf-8"))
LOCATIONS = {location["id"]: location["name"] for location in ORG["locations"]}


def settings_for(server: RunningEmulator, **changes: object) -> Settings:
    return Settings(token=server.token, base_url=server.base_url, **changes)  # type: ignore[arg-type]


async def test_people_by_email_ignore_case(emulator: RunningEmulator) -> None:
    """GET /people?email= finds a person whose address is stored in mixed case."""
    stored = next(
        person
        for person in ORG["people"]
        if person["emails"][0] != person["emails"][0].lower()
    )

    async with ApiClient(settings_for(emulator)) as api:
        found = await api.find_people(stored["emails"][0].lower())
        nobody = await api.find_people("nobody@agency.example.gov")

    assert [(owner.id, owner.emails) for owner in found] == [
        (stored["id"], tuple(stored["emails"]))
    ]
    assert nobody == []


async def test_workspaces_by_name_answer_more_than_the_name(
    start_emulator: Callable[..., Any],
) -> None:
    """GET /workspaces?displayName=Lobby answers every name containing it, every page."""
    emulator = await start_emulator(page_size=2)

    async with ApiClient(settings_for(emulator)) as api:
        found = await api.find_workspaces("Lobby")

    expected = {
        workspace["id"]
        for workspace in ORG["workspaces"]
        if "lobby" in workspace["displayName"].lower()
    }
    assert {owner.id for owner in found} == expected
    assert len([owner for owner in found if owner.display_name == "Lobby"]) == 3
    assert all(owner.location_id in LOCATIONS for owner in found)


async def test_a_location_by_id(emulator: RunningEmulator) -> None:
    """GET /locations/{id} gives the location's name."""
    location_id, name = next(iter(LOCATIONS.items()))

    async with ApiClient(settings_for(emulator)) as api:
        location = await api.get_location(location_id)

    assert (location.id, location.name) == (location_id, name)
