"""
Hold everything one emulator instance remembers: devices, faults, clock, stats.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from provisioner.emulator.catalog import Catalog, load_catalog
from provisioner.emulator.config import EmulatorConfig, FaultKnobs
from provisioner.emulator.faults import FaultDice, TokenBucket
from provisioner.emulator.store import DeviceStore

__all__ = ["STATE_KEY", "Clock", "EmulatorState", "Stats"]


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
    """

    def __init__(self, config: EmulatorConfig, catalog: Catalog | None = None):
        self.config = config
        self.catalog = catalog or load_catalog()
        self.store = DeviceStore(
            self.catalog,
            seed=config.seed,
            unknown_owner_status=config.unknown_owner_status,
        )
        self.tokens = dict(config.tokens)
        self.clock = Clock()
        self.stats = Stats()
        self.dice = FaultDice(config.seed)
        self.knobs = config.knobs()
        self.bucket = self._new_bucket(self.knobs)

    def token_scopes(self, authorization: str) -> frozenset[str] | None:
        """
        Return the scopes of the bearer token in this header, or None if unknown.
        """
        scheme, _, token = authorization.partition(" ")
        return self.tokens.get(token) if scheme.lower() == "bearer" else None

    @staticmethod
    def _new_bucket(knobs: FaultKnobs) -> TokenBucket | None:
        if knobs.rate_limit is None:
            return None
        return TokenBucket(knobs.rate_limit, knobs.burst)

    def set_faults(self, **changes: Any) -> FaultKnobs:
        """
        Change fault knobs at run time; a new rate or burst refills the bucket.

        ``seed`` restarts the fault sequence. Unknown names raise ``TypeError``.
        """
        seed = changes.pop("seed", None)
        knobs = replace(self.knobs, **changes)
        if (knobs.rate_limit, knobs.burst) != (self.knobs.rate_limit, self.knobs.burst):
            self.bucket = self._new_bucket(knobs)
        self.knobs = knobs
        if seed is not None:
            self.dice.reseed(int(seed))
        return knobs

    def faults_snapshot(self) -> dict[str, Any]:
        """
        Return the current fault knobs as plain data.
        """
        return asdict(self.knobs)

    def reset(self) -> None:
        """
        Clear devices and stats, put the clock back to real time, refill the bucket
        and restart the seeded sequences. Fault knobs stay as they are.
        """
        self.store.clear()
        self.clock = Clock()
        self.stats = Stats()
        self.dice.reseed(self.config.seed)
        self.bucket = self._new_bucket(self.knobs)


#: Where ``create_app`` keeps the ``EmulatorState``: ``app[STATE_KEY]``.
STATE_KEY = web.AppKey("emulator_state", EmulatorState)
