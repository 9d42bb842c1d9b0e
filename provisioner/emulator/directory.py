"""
Seed the directory of an extra org: its id, locations, workspaces and people.

Everything derives from the org's key alone (uuid5), so a test or a manifest can
name an extra org's ids before the emulator starts, and every run seeds the same.
The data has the shape of ``data/org.json``; ``Catalog.for_org`` indexes it.

Like the seeded org, each extra org has two workspaces named exactly "Lobby" in
different locations and one named "Lobby 2", so a client looking a workspace up by
name meets the same ambiguity in every org.
"""

from __future__ import annotations

import base64
import uuid
from typing import Any

from provisioner.emulator.config import OrgSpec

__all__ = ["generated_org", "org_id_for", "webex_id"]

# A fixed namespace: the ids of an extra org never change between runs.
_NAMESPACE = uuid.UUID("2f0d6c1e-5b7a-4c36-9a51-7d3e8f0b4c21")
_CREATED = "2021-06-01T12:00:00.000Z"
_WORKSPACE_NAMES = (
    "Lobby",
    "Lobby",
    "Lobby 2",
    "Reception",
    "Board Room",
    "Huddle Room",
    "Training Room",
    "Cafeteria",
)
_FIRST = ("Robin", "Quinn", "Rowan", "Sage", "Taylor", "Uma", "Vic", "Wren")
_LAST = ("Novak", "Okafor", "Petrov", "Quist", "Rahman", "Silva", "Tanaka")
_SITES = (
    ("North Office", "America/Chicago", "Chicago", "IL", "60601"),
    ("South Office", "America/New_York", "Atlanta", "GA", "30303"),
)


def webex_id(kind: str, value: uuid.UUID) -> str:
    """
    Encode an id the way Webex does: base64 of ``ciscospark://us/<KIND>/<uuid>``,
    padding stripped (reference §1, IDs).
    """
    raw = f"ciscospark://us/{kind}/{value}".encode()
    return base64.b64encode(raw).decode().rstrip("=")


def _id(key: str, kind: str, name: str) -> str:
    return webex_id(kind, uuid.uuid5(_NAMESPACE, f"{key}/{kind}/{name}"))


def org_id_for(key: str) -> str:
    """
    Return the org id of the extra org ``key``.
    """
    return _id(key, "ORGANIZATION", key)


def _locations(spec: OrgSpec) -> list[dict[str, Any]]:
    return [
        {
            "id": _id(spec.key, "LOCATION", site),
            "name": f"{spec.name} {site}",
            "timeZone": zone,
            "address": {
                "address1": f"{10 * (n + 1)} Example Ave",
                "city": city,
                "state": state,
                "postalCode": postal,
                "country": "US",
            },
        }
        for n, (site, zone, city, state, postal) in enumerate(_SITES)
    ]


def _workspaces(spec: OrgSpec, location_ids: list[str]) -> list[dict[str, Any]]:
    items = []
    for n in range(spec.workspaces):
        name = _WORKSPACE_NAMES[n % len(_WORKSPACE_NAMES)]
        if n >= len(_WORKSPACE_NAMES):
            name = f"{name} {n // len(_WORKSPACE_NAMES) + 1}"
        items.append(
            {
                "id": _id(spec.key, "PLACE", str(n)),
                "displayName": name,
                "locationId": location_ids[n % len(location_ids)],
                "type": "other",
                "calling": {"type": "webexCalling"},
            }
        )
    return items


def _people(spec: OrgSpec, location_ids: list[str]) -> list[dict[str, Any]]:
    items = []
    for n in range(spec.people):
        if n == 0:
            first, last, local = "Org", "Admin", "admin"
        else:
            first = _FIRST[n % len(_FIRST)]
            last = _LAST[(3 * n) % len(_LAST)]
            local = f"{first}.{last}{n}".lower()
        items.append(
            {
                "id": _id(spec.key, "PEOPLE", str(n)),
                "displayName": f"{first} {last}",
                "firstName": first,
                "lastName": last,
                "emails": [f"{local}@{spec.key.lower()}.example.com"],
                "locationId": location_ids[n % len(location_ids)],
            }
        )
    return items


def generated_org(spec: OrgSpec) -> dict[str, Any]:
    """
    Return the directory of an extra org, shaped like ``data/org.json``.
    """
    locations = _locations(spec)
    location_ids = [location["id"] for location in locations]
    people = _people(spec, location_ids)
    return {
        "orgId": org_id_for(spec.key),
        "orgName": spec.name,
        "created": _CREATED,
        "adminPersonId": people[0]["id"],
        "locations": locations,
        "workspaces": _workspaces(spec, location_ids),
        "people": people,
    }
