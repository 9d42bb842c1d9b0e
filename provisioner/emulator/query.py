"""
Filter and page lists the way Webex does: pure functions over wire dicts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from provisioner.emulator.store import DeviceStore, Problem, normalize_mac

__all__ = ["filter_devices", "page", "parse_paging", "split_tags"]

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
