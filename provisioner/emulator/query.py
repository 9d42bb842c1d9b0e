"""
Filter and page lists the way Webex does: pure functions over wire dicts.

Devices here; the directory (people, workspaces, locations) below.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from provisioner.emulator.store import DeviceStore, Problem, normalize_mac

__all__ = [
    "filter_devices",
    "filter_locations",
    "filter_people",
    "filter_workspaces",
    "page",
    "parse_paging",
    "split_tags",
]

# Filters compared for equality with the device field of the same name.
EXACT_FILTERS = ("type", "connectionStatus", "product", "serial", "locationId")


def split_tags(values: Iterable[str]) -> list[str]:
    """
    Collect tags from repeated ``tag`` parameters, each possibly comma-separated.
    """
    return [tag.strip() for value in values for tag in value.split(",") if tag.strip()]


def parse_paging(query: Mapping[str, str], default_max: int) -> tuple[int, int]:
    """
    Read ``start`` and ``max``; a value that is not a non-negative integer is a 400.
    """
    values = []
    for name, default in (("start", 0), ("max", default_max)):
        text = query.get(name)
        if text is None:
            values.append(default)
            continue
        try:
            number = int(text)
        except ValueError:
            number = -1
        if number < 0 or (name == "max" and number == 0):
            raise Problem(400, f"Invalid value for {name}: use a positive integer.")
        values.append(number)
    return values[0], values[1]


def filter_devices(
    store: DeviceStore, query: Mapping[str, str], tags: Sequence[str]
) -> list[dict[str, Any]]:
    """
    Return the wire dicts of the devices matching every filter given.

    ``mac`` matches whatever the notation; ``displayName`` is a case-insensitive
    substring match; several tags must all be present (AND).
    """
    candidates: Iterable[str]
    mac = query.get("mac")
    if mac is not None:
        normal = normalize_mac(mac)
        found = store.by_mac.get(normal) if normal else None
        candidates = [found] if found else []
    elif owner := (query.get("workspaceId") or query.get("personId")):
        candidates = list(store.by_owner.get(owner, {}))
    else:
        candidates = list(store.devices)
    checks = [(name, query[name]) for name in EXACT_FILTERS if name in query]
    for name in ("workspaceId", "personId"):
        if name in query:
            checks.append((name, query[name]))
    display = query.get("displayName", "").casefold()
    result = []
    for device_id in candidates:
        wire = store.devices[device_id].wire
        if any(wire.get(name) != value for name, value in checks):
            continue
        if display and display not in str(wire.get("displayName", "")).casefold():
            continue
        if tags and not all(tag in wire["tags"] for tag in tags):
            continue
        result.append(wire)
    return result


def page(items: Sequence[Any], start: int, size: int) -> tuple[list[Any], int | None]:
    """
    Cut one page; return it and the next page's ``start``, or None on the last.
    """
    end = start + size
    return list(items[start:end]), (end if end < len(items) else None)


# -- the directory: people, workspaces, locations ------------------------------------

#: List People takes "up to 85 person IDs separated by commas" (developer.webex.com,
#: List People, ``id``).
MAX_PERSON_IDS = 85


def _fold(value: object) -> str:
    return str(value or "").casefold()


def filter_people(
    people: Iterable[dict[str, Any]], query: Mapping[str, str]
) -> list[dict[str, Any]]:
    """
    Return the people matching every filter given (List People).

    ``email`` matches any of a person's ``emails`` exactly, ignoring case (email
    addresses are compared without case, as Webex identity does; the page says only
    "with this email address"). ``displayName`` is a prefix match ("List people
    whose name starts with this string"), ignoring case. ``id`` is a comma list of
    at most 85 ids; ``locationId`` must equal the person's.
    """
    email = _fold(query.get("email")) if "email" in query else None
    prefix = _fold(query.get("displayName"))
    ids: set[str] | None = None
    if "id" in query:
        ids = {i.strip() for i in query["id"].split(",") if i.strip()}
        if len(ids) > MAX_PERSON_IDS:
            raise Problem(400, f"id accepts at most {MAX_PERSON_IDS} person ids.")
    location = query.get("locationId")
    return [
        person
        for person in people
        if (email is None or email in {_fold(e) for e in person.get("emails", ())})
        and _fold(person.get("displayName")).startswith(prefix)
        and (ids is None or person["id"] in ids)
        and (location is None or person.get("locationId") == location)
    ]


def filter_workspaces(
    workspaces: Iterable[dict[str, Any]], query: Mapping[str, str]
) -> list[dict[str, Any]]:
    """
    Return the workspaces matching every filter given (List Workspaces).

    ``displayName`` is a case-insensitive substring match: Webex documents only
    "List workspaces by display name", and wxc_sdk's own example
    (``examples/workspaces_and_users.py``) re-checks the answer for the exact name,
    so an exact match cannot be relied on. A contains match answers every name a
    prefix or exact match would, so a client that copes with it copes with those.
    ``locationId``, ``type`` and ``calling`` (the calling type) must be equal.
    """
    name = _fold(query.get("displayName"))
    location = query.get("locationId")
    kind = query.get("type")
    calling = query.get("calling")
    return [
        workspace
        for workspace in workspaces
        if name in _fold(workspace.get("displayName"))
        and (location is None or workspace.get("locationId") == location)
        and (kind is None or workspace.get("type") == kind)
        and (calling is None or workspace.get("calling", {}).get("type") == calling)
    ]


def filter_locations(
    locations: Iterable[dict[str, Any]], query: Mapping[str, str]
) -> list[dict[str, Any]]:
    """
    Return the locations matching every filter given (List Locations): ``name``
    "contains this string (case-insensitive)" and ``id`` is equal (S1, the spec).
    """
    name = _fold(query.get("name"))
    wanted = query.get("id")
    return [
        location
        for location in locations
        if name in _fold(location.get("name"))
        and (wanted is None or location["id"] == wanted)
    ]
