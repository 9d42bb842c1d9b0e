"""
Hold the emulated orgs and decide which org a request acts for.

Each org has its own directory, device store, token bucket and counters. Each
accepted token is an ``Identity``: its scopes, its home org, the person behind it,
and the orgs it may act for (its home, plus the managed orgs of a partner).

The rules, from the API (reference §1 and S1, the official spec): every Devices
operation takes ``orgId``; for get/delete/patch/create/activation "if omitted, the
caller's org is used"; on List it is "only usable by admins of another org (such as
partners)". List People, List Workspaces and List Locations say the same of their
``orgId`` (S1 and developer.webex.com "List People"). So an omitted ``orgId`` means
the token's home org; one the token may not act for is a 403, one naming no org a
404 (the emulator's reading; Webex documents no status for either). A device,
workspace or person is looked up in that one org only, so another org's is a 404.

A MAC is registered once across Webex (reference §6.4 counts "this or another
org"), so ``is_mac_in_use`` spans every org.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from typing import Any

from provisioner.emulator.catalog import Catalog
from provisioner.emulator.config import (
    ALL_SCOPES,
    EmulatorConfig,
    check_limits,
    org_token,
)
from provisioner.emulator.directory import generated_org
from provisioner.emulator.faults import TokenBucket
from provisioner.emulator.store import DeviceStore, Problem

__all__ = ["HOME_KEY", "Identity", "Org", "OrgLimits", "Tenancy"]

#: The key of the seeded org (``data/org.json``).
HOME_KEY = "home"
UNKNOWN_ORG = "The organization was not found."
FOREIGN_ORG = "The token is not allowed to act for this organization."


@dataclass(frozen=True, slots=True, kw_only=True)
class OrgLimits:
    """
    One org's token bucket (``rate_limit`` per second, ``None``: none; ``burst``)
    and the latency added to its requests.
    """

    rate_limit: float | None = None
    burst: int = 10
    latency_ms: float = 0.0

    def __post_init__(self) -> None:
        check_limits(self.rate_limit, self.burst, self.latency_ms)


@dataclass(frozen=True, slots=True)
class Identity:
    """
    Who a token is: scopes, home org, the person behind it, orgs it may act for.
    """

    scopes: frozenset[str]
    home_id: str
    person_id: str
    org_ids: frozenset[str]


class Org:
    """
    One emulated org: directory, devices, token bucket and request counters.
    """

    def __init__(
        self, key: str, catalog: Catalog, store: DeviceStore, limits: OrgLimits
    ) -> None:
        self.key = key
        self.catalog = catalog
        self.store = store
        self.limits = limits
        self.bucket = self._new_bucket()
        self.requests = 0
        self.rate_limited = 0

    @property
    def id(self) -> str:
        """
        The org id.
        """
        return self.catalog.org_id

    def _new_bucket(self) -> TokenBucket | None:
        if self.limits.rate_limit is None:
            return None
        return TokenBucket(self.limits.rate_limit, self.limits.burst)

    def set_limits(self, **changes: Any) -> OrgLimits:
        """
        Change the limits; a new rate or burst refills the bucket.

        Unknown names raise ``TypeError``, bad values ``ValueError``.
        """
        limits = replace(self.limits, **changes)
        old = (self.limits.rate_limit, self.limits.burst)
        self.limits = limits
        if (limits.rate_limit, limits.burst) != old:
            self.bucket = self._new_bucket()
        return limits

    def count(self, status: int | str) -> None:
        """
        Count one request charged to this org.
        """
        self.requests += 1
        if status == 429:
            self.rate_limited += 1

    def reset(self) -> None:
        """
        Forget devices and counters; refill the bucket.
        """
        self.store.clear()
        self.requests = self.rate_limited = 0
        self.bucket = self._new_bucket()

    def details(self) -> dict[str, Any]:
        """
        The org as ``GET /organizations/{orgId}`` answers it.
        """
        return {
            "id": self.id,
            "displayName": self.catalog.display_name,
            "created": str(self.catalog.org.get("created", "")),
        }

    def snapshot(self) -> dict[str, Any]:
        """
        The org's counters and limits for the admin view.
        """
        return {
            **self.details(),
            "key": self.key,
            "requests": self.requests,
            "rate_limited": self.rate_limited,
            "devices": len(self.store.devices),
            **asdict(self.limits),
        }


class Tenancy:
    """
    Every org of one emulator, and every token's identity.
    """

    def __init__(self, config: EmulatorConfig, catalog: Catalog) -> None:
        self.orgs: dict[str, Org] = {}
        status = config.unknown_owner_status
        home_limits = OrgLimits(rate_limit=config.rate_limit, burst=config.burst)
        self.home = self._add(HOME_KEY, catalog, config.seed, status, home_limits)
        home_ids = frozenset({self.home.id})
        self.identities: dict[str, Identity] = {
            token: Identity(scopes, self.home.id, catalog.admin_id, home_ids)
            for token, scopes in config.tokens.items()
        }
        by_key: dict[str, Org] = {}
        for spec in config.orgs:
            limits = OrgLimits(
                rate_limit=spec.rate_limit,
                burst=spec.burst,
                latency_ms=spec.latency_ms,
            )
            org_catalog = catalog.for_org(generated_org(spec))
            org = self._add(
                spec.key, org_catalog, f"{config.seed}/{spec.key}", status, limits
            )
            by_key[spec.key] = org
            self.identities[org_token(spec.key)] = Identity(
                ALL_SCOPES, org.id, org_catalog.admin_id, frozenset({org.id})
            )
        for token, keys in config.partners.items():
            self.identities[token] = Identity(
                config.tokens.get(token, ALL_SCOPES),
                self.home.id,
                catalog.admin_id,
                home_ids | {by_key[key].id for key in keys},
            )

    def _add(
        self,
        key: str,
        catalog: Catalog,
        seed: int | str,
        status: int,
        limits: OrgLimits,
    ) -> Org:
        store = DeviceStore(
            catalog,
            seed=seed,
            unknown_owner_status=status,
            mac_taken=self.is_mac_in_use,
        )
        org = Org(key, catalog, store, limits)
        self.orgs[org.id] = org
        return org

    def __iter__(self) -> Iterator[Org]:
        return iter(self.orgs.values())

    def identity(self, authorization: str) -> Identity | None:
        """
        Return the identity of the bearer token in this header, or None if unknown.
        """
        scheme, _, token = authorization.partition(" ")
        return self.identities.get(token) if scheme.lower() == "bearer" else None

    def revoke(self, token: str) -> bool:
        """
        Make ``token`` unknown from now on (expired or revoked); False if it was not.
        """
        return self.identities.pop(token, None) is not None

    def charged(self, authorization: str, org_param: str | None) -> Org:
        """
        Pick the org whose bucket a request is charged to, before any auth check:
        the ``orgId`` it names if known, else its token's home, else the seeded org.
        """
        if org_param and (org := self.orgs.get(org_param)) is not None:
            return org
        identity = self.identity(authorization)
        return self.orgs[identity.home_id] if identity is not None else self.home

    def target(self, identity: Identity, org_param: str | None) -> Org:
        """
        Return the org a request acts for; raise 404 or 403 ``Problem``.
        """
        if not org_param:
            return self.orgs[identity.home_id]
        org = self.orgs.get(org_param)
        if org is None:
            raise Problem(404, UNKNOWN_ORG)
        if org.id not in identity.org_ids:
            raise Problem(403, FOREIGN_ORG)
        return org

    def is_mac_in_use(self, mac: str) -> bool:
        """
        Whether any org has a device with this (normalised) MAC.
        """
        return any(mac in org.store.by_mac for org in self.orgs.values())

    def holder(self, device_id: str) -> Org:
        """
        Return the org that holds this device; raise a 404 ``Problem``.
        """
        for org in self.orgs.values():
            if device_id in org.store.devices:
                return org
        raise Problem(404, "The requested resource could not be found.")

    def reset(self) -> None:
        """
        Reset every org.
        """
        for org in self.orgs.values():
            org.reset()
