"""
Keep the ordered log of the API requests the emulator received, for tests to read.

An entry is appended when a request arrives, so the log is in arrival order and a
request still in flight shows ``status: null``; it is completed when the answer is
ready. Times are ``time.monotonic()`` seconds: the clock of the token buckets, and
the one a client on the same machine reads. The newest ``size`` entries are kept;
``evicted`` counts the ones that fell off.

Entries carry the MAC a request is about (a create's body, a ``mac=`` lookup, the
list of a validateMacs call), normalised, so a test can follow one MAC's story.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from multidict import MultiMapping

from provisioner.emulator.store import normalize_mac

__all__ = ["LoggedRequest", "RequestLog", "macs_in"]

CREATE_ROUTE = "POST /v1/devices"
LIST_ROUTE = "GET /v1/devices"
VALIDATE_ROUTE = "POST /v1/telephony/config/devices/actions/validateMacs/invoke"
#: Routes whose request body says which MAC(s) they are about.
MAC_BODY_ROUTES = frozenset({CREATE_ROUTE, VALIDATE_ROUTE})


@dataclass(slots=True)
class LoggedRequest:
    """
    One API request: what was asked, for which org, when, and how it was answered.

    ``status`` is an HTTP status, ``"dropped"``, or None while in flight;
    ``retry_after`` is set on a 429, ``items`` on a list answered 200.
    """

    seq: int
    method: str
    path: str
    route: str
    query: dict[str, str]
    org: str
    tracking_id: str
    started: float
    mac: str | None = None
    macs: tuple[str, ...] = ()
    answered: float | None = None
    status: int | str | None = None
    retry_after: int | None = None
    items: int | None = None

    def is_about(self, mac: str) -> bool:
        """
        Whether the request names this (normalised) MAC.
        """
        return self.mac == mac or mac in self.macs

    def wire(self) -> dict[str, Any]:
        """
        The entry as the admin view shows it (every key always present).
        """
        return {
            "seq": self.seq,
            "method": self.method,
            "path": self.path,
            "route": self.route,
            "query": self.query,
            "org": self.org,
            "trackingId": self.tracking_id,
            "mac": self.mac,
            "macs": list(self.macs),
            "started": self.started,
            "answered": self.answered,
            "status": self.status,
            "retryAfter": self.retry_after,
            "items": self.items,
        }


def _normal(text: object) -> str | None:
    if not isinstance(text, str) or not text:
        return None
    return normalize_mac(text) or text


def macs_in(
    route: str, query: Mapping[str, str], raw: bytes
) -> tuple[str | None, tuple[str, ...]]:
    """
    Return the MAC a request is about and the MACs it lists, normalised when valid.
    """
    if route == LIST_ROUTE:
        return _normal(query.get("mac")), ()
    if route not in MAC_BODY_ROUTES:
        return None, ()
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        return None, ()
    if not isinstance(body, dict):
        return None, ()
    if route == CREATE_ROUTE:
        return _normal(body.get("mac")), ()
    listed = body.get("macs")
    found = [_normal(m) for m in listed] if isinstance(listed, list) else []
    return None, tuple(m for m in found if m is not None)


def flat_query(query: MultiMapping[str]) -> dict[str, str]:
    """
    Flatten a query: a repeated parameter's values are joined with commas.
    """
    return {key: ",".join(query.getall(key)) for key in dict.fromkeys(query.keys())}


class RequestLog:
    """
    The bounded, ordered request log.
    """

    def __init__(self, size: int) -> None:
        self._entries: deque[LoggedRequest] = deque(maxlen=size)
        self._seq = 0
        self.evicted = 0

    def start(
        self,
        *,
        method: str,
        path: str,
        route: str,
        query: dict[str, str],
        org: str,
        tracking_id: str,
        started: float,
    ) -> LoggedRequest:
        """
        Append the entry of a request that just arrived.
        """
        self._seq += 1
        if len(self._entries) == self._entries.maxlen:
            self.evicted += 1
        entry = LoggedRequest(
            seq=self._seq,
            method=method,
            path=path,
            route=route,
            query=query,
            org=org,
            tracking_id=tracking_id,
            started=started,
        )
        self._entries.append(entry)
        return entry

    @staticmethod
    def finish(
        entry: LoggedRequest,
        status: int | str,
        *,
        retry_after: int | None = None,
        items: int | None = None,
    ) -> None:
        """
        Complete an entry with its answer, stamped now.
        """
        entry.answered = time.monotonic()
        entry.status = status
        entry.retry_after = retry_after
        entry.items = items

    def clear(self) -> None:
        """
        Forget every entry and restart the sequence.
        """
        self._entries.clear()
        self._seq = 0
        self.evicted = 0

    def select(
        self, *, mac: str | None = None, since: int = 0, org: str | None = None
    ) -> list[LoggedRequest]:
        """
        Return the entries after sequence number ``since``, about ``mac`` and for
        ``org`` when given, oldest first.
        """
        normal = _normal(mac) if mac else None
        return [
            entry
            for entry in self._entries
            if entry.seq > since
            and (normal is None or entry.is_about(normal))
            and (org is None or entry.org == org)
        ]

    def snapshot(self, entries: list[LoggedRequest]) -> dict[str, Any]:
        """
        The admin view's answer: the entries, the last sequence number, evictions.
        """
        return {
            "items": [entry.wire() for entry in entries],
            "last": self._seq,
            "evicted": self.evicted,
        }
