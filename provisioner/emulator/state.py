"""
Hold everything one emulator instance remembers: orgs and their devices, faults,
clock, stats and the request log.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from provisioner.emulator.catalog import Catalog, load_catalog
from provisioner.emulator.config import EmulatorConfig, FaultKnobs
from provisioner.emulator.faults import FaultDice, TokenBucket
from provisioner.emulator.orgs import Identity, Org, OrgLimits, Tenancy
from provisioner.emulator.requestlog import RequestLog
from provisioner.emulator.store import DeviceStore, Problem

__all__ = ["STATE_KEY", "Clock", "EmulatorState", "Stats"]

NO_TOKEN = (
    "The request requires a valid access token set in the Authorization request header."
)


class Clock:
    """
    The emulator's "now": wall-clock UTC plus an offset that the admin view moves.
    """

    def __init__(self) -> None:
        self.offset = timedelta()

    def now(self) -> datetime:
        """
        Return the emulated current time (UTC, aware).
        """
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        """
        Move "now" forward (or back, with a negative value).
        """
        self.offset += timedelta(seconds=seconds)

    def set(self, moment: datetime) -> None:
        """
        Make "now" equal ``moment`` from here on (time keeps running).
        """
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        self.offset = moment - datetime.now(UTC)


class Stats:
    """
    Count API requests by route template and status.
    """

    def __init__(self) -> None:
        self.by_route: dict[str, dict[str, int]] = {}
        self.requests_total = 0
        self.rate_limited_total = 0
        self.dropped_total = 0
        self.server_errors_injected = 0

    def record(self, route: str, status: int | str) -> None:
        """
        Count one answered (or dropped) request.
        """
        self.requests_total += 1
        key = str(status)
        counts = self.by_route.setdefault(route, {})
        counts[key] = counts.get(key, 0) + 1
        if status == 429:
            self.rate_limited_total += 1
        elif status == "dropped":
            self.dropped_total += 1

    def snapshot(self) -> dict[str, Any]:
        """
        Return the counters as plain JSON-ready data.
        """
        return {
            "requests_total": self.requests_total,
            "rate_limited_total": self.rate_limited_total,
            "dropped_total": self.dropped_total,
            "server_errors_injected": self.server_errors_injected,
            "by_route": {route: dict(c) for route, c in self.by_route.items()},
        }


class EmulatorState:
    """
    The mutable heart of one emulator; routes and the admin view share it.

    The seeded org is ``tenancy.home``; ``store`` and ``bucket`` are its own. The
    global fault knobs' ``rate_limit`` and ``burst`` are the seeded org's bucket;
    every other org has its own (``set_org_limits``).
    """

    def __init__(self, config: EmulatorConfig, catalog: Catalog | None = None):
        self.config = config
        self.catalog = catalog or load_catalog()
        self.tenancy = Tenancy(config, self.catalog)
        self.clock = Clock()
        self.stats = Stats()
        self.dice = FaultDice(config.seed)
        self.knobs = config.knobs()
        self.requests = RequestLog(config.request_log_size)
        # One future per API request being answered, done when its answer is final.
        self.answering: set[asyncio.Future[None]] = set()

    @property
    def store(self) -> DeviceStore:
        """
        The seeded org's devices.
        """
        return self.tenancy.home.store

    @property
    def bucket(self) -> TokenBucket | None:
        """
        The seeded org's token bucket.
        """
        return self.tenancy.home.bucket

    def token_scopes(self, authorization: str) -> frozenset[str] | None:
        """
        Return the scopes of the bearer token in this header, or None if unknown.
        """
        identity = self.tenancy.identity(authorization)
        return identity.scopes if identity is not None else None

    def identity(self, request: web.Request) -> Identity:
        """
        Return who calls; raise a 401 ``Problem`` for a missing or unknown token.
        """
        identity = self.tenancy.identity(request.headers.get("Authorization", ""))
        if identity is None:
            raise Problem(401, NO_TOKEN)
        return identity

    def caller(self, request: web.Request) -> tuple[Identity, Org]:
        """
        Return who calls and the org the request acts for (``orgId``, else home).

        Raises 401, 403 or 404 ``Problem``.
        """
        identity = self.identity(request)
        return identity, self.tenancy.target(identity, request.query.get("orgId"))

    def set_faults(self, **changes: Any) -> FaultKnobs:
        """
        Change fault knobs at run time; a new rate or burst refills the seeded
        org's bucket.

        ``seed`` restarts the fault sequence. Unknown names raise ``TypeError``.
        """
        seed = changes.pop("seed", None)
        knobs = replace(self.knobs, **changes)
        self.tenancy.home.set_limits(rate_limit=knobs.rate_limit, burst=knobs.burst)
        self.knobs = knobs
        if seed is not None:
            self.dice.reseed(int(seed))
        return knobs

    def set_org_limits(self, org_id: str, **changes: Any) -> OrgLimits:
        """
        Change one org's ``rate_limit``, ``burst`` or ``latency_ms`` at run time.

        For the seeded org a rate or burst goes through ``set_faults``, so the two
        views agree. Unknown names raise ``TypeError``; an unknown org a 404.
        """
        org = self.tenancy.orgs.get(org_id)
        if org is None:
            raise Problem(404, "The organization was not found.")
        limits = replace(org.limits, **changes)  # validates before anything changes
        if org is self.tenancy.home:
            self.set_faults(rate_limit=limits.rate_limit, burst=limits.burst)
        return org.set_limits(**asdict(limits))

    def stats_snapshot(self) -> dict[str, Any]:
        """
        Return the request counters, with each org's requests, 429s and devices.
        """
        return {
            **self.stats.snapshot(),
            "by_org": {org.id: org.snapshot() for org in self.tenancy},
        }

    def faults_snapshot(self) -> dict[str, Any]:
        """
        Return the current fault knobs as plain data.
        """
        return asdict(self.knobs)

    async def drain(self) -> None:
        """
        Wait for the API requests being answered now (the caller bounds the wait).

        A client that gave up on a request (a Ctrl-C, a kill) leaves its handler
        running here, sleeping out the latency knob; a reset must not let it land
        afterwards as a write in the fresh stats and devices.
        """
        if self.answering:
            await asyncio.wait(set(self.answering))

    def reset(self) -> None:
        """
        Clear devices, stats and the request log, put the clock back to real time,
        refill the buckets and restart the seeded sequences. Fault knobs and org
        limits stay as they are.
        """
        self.tenancy.reset()
        self.clock = Clock()
        self.stats = Stats()
        self.dice.reseed(self.config.seed)
        self.requests.clear()


#: Where ``create_app`` keeps the ``EmulatorState``: ``app[STATE_KEY]``.
STATE_KEY = web.AppKey("emulator_state", EmulatorState)
