"""
Configure the emulator: fault knobs, tokens and their scopes, paging and quirks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = [
    "ALL_SCOPES",
    "DEFAULT_TOKEN",
    "EmulatorConfig",
    "FaultKnobs",
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
    }
)


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

    def __post_init__(self) -> None:
        for name in ("fault_rate", "drop_rate", "ambiguous_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        if self.rate_limit is not None and self.rate_limit <= 0:
            raise ValueError(f"rate_limit must be positive, got {self.rate_limit}")
        if self.burst < 1:
            raise ValueError(f"burst must be at least 1, got {self.burst}")
        if self.latency_ms < 0 or self.jitter_ms < 0:
            raise ValueError("latency_ms and jitter_ms must not be negative")


@dataclass(frozen=True, slots=True, kw_only=True)
class EmulatorConfig:
    """
    Everything that shapes one emulator instance.

    ``tokens`` maps each accepted bearer token to its scopes. ``mac_in_use_status``
    is the status of a create whose MAC is registered (400 like most Webex Calling
    validation errors; 409 is the other plausible answer). ``unknown_owner_status``
    answers a create or activation code for a workspace/person that does not exist.
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

    def __post_init__(self) -> None:
        self.knobs()  # validates the fault settings
        if self.page_size < 1:
            raise ValueError(f"page_size must be at least 1, got {self.page_size}")
        if not self.tokens:
            raise ValueError("at least one token is needed")

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
