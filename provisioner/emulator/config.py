"""
Configure the emulator: fault knobs, tokens and their scopes, orgs, paging and quirks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = [
    "ALL_SCOPES",
    "DEFAULT_TOKEN",
    "EmulatorConfig",
    "FaultKnobs",
    "OrgSpec",
    "org_token",
    "parse_token",
]

#: The bearer token the emulator accepts by default; it carries every scope.
DEFAULT_TOKEN = "emulator-token"

#: Every scope an emulated operation can ask for (reference §2).
ALL_SCOPES: frozenset[str] = frozenset(
    {
        "spark:devices_read",
        "spark:devices_write",
        "spark-admin:devices_read",
        "spark-admin:devices_write",
        "identity:placeonetimepassword_create",
        "identity:one_time_password",
        "spark-admin:telephony_config_read",
        "spark-admin:telephony_config_write",
        "spark-admin:workspaces_read",
        "spark-admin:people_read",
        # People, Locations, Organizations (sources: directory_routes.py).
        "spark:people_read",
        "spark-admin:locations_read",
        "spark-admin:organizations_read",
    }
)

_ORG_KEY = re.compile(r"[A-Za-z0-9_-]{1,32}")


def org_token(key: str) -> str:
    """
    Return the admin token of the extra org ``key``: ``emulator-token-<key>``.
    """
    return f"{DEFAULT_TOKEN}-{key}"


def check_limits(rate_limit: float | None, burst: int, latency_ms: float) -> None:
    """
    Refuse a token bucket or latency that cannot work; raise ``ValueError``.
    """
    if rate_limit is not None and rate_limit <= 0:
        raise ValueError(f"rate_limit must be positive, got {rate_limit}")
    if burst < 1:
        raise ValueError(f"burst must be at least 1, got {burst}")
    if latency_ms < 0:
        raise ValueError(f"latency_ms must not be negative, got {latency_ms}")


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultKnobs:
    """
    The fault-injection settings that can change while the server runs.

    ``rate_limit`` is requests per second for the global token bucket (``None``: no
    limit) and ``burst`` its capacity. Rates are shares of requests in ``[0, 1]``.
    """

    rate_limit: float | None = None
    burst: int = 10
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    fault_rate: float = 0.0
    drop_rate: float = 0.0
    ambiguous_rate: float = 0.0
    echo_request_body: bool = False
    activation_code_id: bool = True

    def __post_init__(self) -> None:
        for name in ("fault_rate", "drop_rate", "ambiguous_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        check_limits(self.rate_limit, self.burst, self.latency_ms)
        if self.jitter_ms < 0:
            raise ValueError("latency_ms and jitter_ms must not be negative")
        for flag in ("echo_request_body", "activation_code_id"):
            if not isinstance(getattr(self, flag), bool):
                raise TypeError(f"{flag} must be true or false")


@dataclass(frozen=True, slots=True, kw_only=True)
class OrgSpec:
    """
    One org beside the seeded one: its own directory, devices and token bucket.

    ``key`` names it in flags, in its admin token (``org_token(key)``) and in the
    seed of its ids, which derive from the key alone. ``rate_limit`` (requests per
    second, ``None``: no limit) and ``burst`` shape its token bucket; ``latency_ms``
    is added to every request made for it. ``workspaces`` and ``people`` say how
    many owners to seed (the first person is the org's admin).
    """

    key: str
    display_name: str = ""
    rate_limit: float | None = None
    burst: int = 10
    latency_ms: float = 0.0
    workspaces: int = 6
    people: int = 6

    def __post_init__(self) -> None:
        if not _ORG_KEY.fullmatch(self.key):
            raise ValueError(
                f"an org key is 1-32 letters, digits, - or _: {self.key!r}"
            )
        check_limits(self.rate_limit, self.burst, self.latency_ms)
        if self.workspaces < 0 or self.people < 1:
            raise ValueError("an org needs at least one person (its admin)")

    @property
    def name(self) -> str:
        """
        The org's display name (``Customer <key>`` unless given).
        """
        return self.display_name or f"Customer {self.key}"


@dataclass(frozen=True, slots=True, kw_only=True)
class EmulatorConfig:
    """
    Everything that shapes one emulator instance.

    ``tokens`` maps each accepted bearer token to its scopes. ``mac_in_use_status``
    is the status of a create whose MAC is registered (400 like most Webex Calling
    validation errors; 409 is the other plausible answer). ``unknown_owner_status``
    answers a create or activation code for a workspace/person that does not exist.

    ``orgs`` adds orgs beside the seeded one; ``partners`` maps a token to the keys
    of the orgs it may act for with ``orgId`` (partner admins), its home being the
    seeded org; its scopes are those ``tokens`` gives it, else every scope.
    ``echo_request_body`` makes 4xx answers quote the request body, as some
    gateways do. ``activation_code_id`` False answers an activation code with only
    ``code`` and ``expiryTime``, as the API documents it (the pending device's
    ``id`` beside them is seen in the wild but not documented: reference §4.5).
    ``request_log_size`` bounds the admin view's request log.
    """

    seed: int = 0
    rate_limit: float | None = None
    burst: int = 10
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    fault_rate: float = 0.0
    drop_rate: float = 0.0
    ambiguous_rate: float = 0.0
    tokens: Mapping[str, frozenset[str]] = field(
        default_factory=lambda: {DEFAULT_TOKEN: ALL_SCOPES}
    )
    page_size: int = 100
    mac_in_use_status: int = 400
    unknown_owner_status: int = 404
    activation_code_days: int = 30
    orgs: tuple[OrgSpec, ...] = ()
    partners: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    echo_request_body: bool = False
    activation_code_id: bool = True
    request_log_size: int = 10_000

    def __post_init__(self) -> None:
        self.knobs()  # validates the fault settings
        if self.page_size < 1:
            raise ValueError(f"page_size must be at least 1, got {self.page_size}")
        if not self.tokens:
            raise ValueError("at least one token is needed")
        if self.request_log_size < 1:
            raise ValueError("request_log_size must be at least 1")
        keys = [spec.key for spec in self.orgs]
        if len(set(keys)) != len(keys):
            raise ValueError("org keys must be unique")
        org_tokens = {org_token(key) for key in keys}
        if taken := sorted(org_tokens & set(self.tokens)):
            raise ValueError(f"tokens must not reuse an org's admin token: {taken}")
        for token, managed in self.partners.items():
            if unknown := sorted(set(managed) - set(keys)):
                raise ValueError(f"partner {token!r} names unknown orgs: {unknown}")
            if token in org_tokens:
                raise ValueError(f"{token!r} is already an org's own admin token")

    def knobs(self) -> FaultKnobs:
        """
        Return the fault settings this configuration starts with.
        """
        return FaultKnobs(
            rate_limit=self.rate_limit,
            burst=self.burst,
            latency_ms=self.latency_ms,
            jitter_ms=self.jitter_ms,
            fault_rate=self.fault_rate,
            drop_rate=self.drop_rate,
            ambiguous_rate=self.ambiguous_rate,
            echo_request_body=self.echo_request_body,
            activation_code_id=self.activation_code_id,
        )


def parse_token(text: str) -> tuple[str, frozenset[str]]:
    """
    Split ``TOKEN[:scope,scope]`` into the token and its scopes.

    A token without a scope list gets every scope; ``TOKEN:`` gets none.
    """
    token, sep, scopes = text.partition(":")
    if not token:
        raise ValueError("a token must not be empty")
    if not sep:
        return token, ALL_SCOPES
    return token, frozenset(s.strip() for s in scopes.split(",") if s.strip())
