"""
The few API calls the engine makes, as a Protocol.

The engine is typed against ``DevicesApi``, not against HTTP or ``ApiClient``, so
tests can hand it a dict-backed fake. ``ApiClient`` in ``client.py`` is the real one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from provisioner.models import ActivationCode, Device, SupportedModel, TagMode

__all__ = [
    "CallTally",
    "Caller",
    "ClientStatistics",
    "DevicesApi",
    "Location",
    "MacState",
    "Organization",
    "Owner",
    "SupportedModel",
]


@dataclass(slots=True)
class CallTally:
    """
    Counts the HTTP calls made on behalf of one row (retries included).

    The client adds to the tally that is current in the calling task (see
    ``ApiClient.tally``), so the engine can fill the report's ``attempts`` column and
    the tracking id of the last call without threading it through every signature.
    """

    calls: int = 0
    last_tracking_id: str | None = None
    rate_limited: int = 0


@dataclass(frozen=True, slots=True)
class ClientStatistics:
    """
    Run-wide figures for the progress bar and the report summary.

    ``ApiClient.statistics()`` counts every attempt, retries included; a test fake
    counts its calls.

    Attributes:
        calls: HTTP attempts made (retries included).
        rate_limited: attempts answered 429 or 423.
        retries: attempts that were retries of an earlier one.
        in_flight: attempts holding an in-flight place now.
        rate: the rate controller's current start rate (per second); None without one.
        ceiling: the API limit the controller learned, or None.
        phase: the controller's phase (ramping, searching, settled).
        ceilings: each org's learned limit, by the org its calls named ("" for
            none), for the orgs that learned one; () once the orgs share one budget.
    """

    calls: int
    rate_limited: int
    retries: int
    in_flight: int
    rate: float | None
    ceiling: float | None
    phase: str
    ceilings: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class MacState:
    """
    One entry of the validateMacs answer: ``state`` is AVAILABLE, UNAVAILABLE,
    DUPLICATE_IN_LIST or INVALID.
    """

    mac: str
    state: str
    error_code: int | None = None
    message: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Owner:
    """
    A workspace or person that can own devices.

    ``emails`` are a person's addresses; ``location_id`` is where a workspace (or
    person) is, from the ``/locations`` API.
    """

    id: str
    display_name: str | None = None
    emails: tuple[str, ...] = ()
    location_id: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Location:
    """
    One location of an org (``GET /locations/{locationId}``).
    """

    id: str
    name: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Caller:
    """
    The person the access token belongs to (``GET /people/me``): whose org a run
    acts on when no ``--org-id`` is given, and who ran it.
    """

    id: str
    org_id: str | None = None
    email: str | None = None
    display_name: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Organization:
    """
    An org by id, with the name people know it by (``GET /organizations/{orgId}``).
    """

    id: str
    display_name: str | None = None


class DevicesApi(Protocol):
    """
    What the engine needs from the Webex API. Every call raises ``ApiError`` subclasses.
    """

    def tally(self) -> AbstractContextManager[CallTally]:
        """
        Count the calls the calling task makes inside the block in a fresh tally.
        """
        ...

    def server_now(self) -> datetime:
        """
        The API's "now" (UTC): what its stamps on devices and codes are compared with.
        """
        ...

    def statistics(self) -> ClientStatistics:
        """
        A snapshot of the run-wide figures (calls, 429s, retries, rate).
        """
        ...

    async def create_device(
        self,
        *,
        mac: str,
        model: str,
        workspace_id: str | None = None,
        person_id: str | None = None,
        password: str | None = None,
        org_id: str | None = None,
    ) -> Device:
        """
        Create a device by MAC; an empty 2xx body is resolved by a lookup by MAC.

        Raises ``OutcomeUnknownError`` when the create may have happened (timeout,
        dropped connection, 5xx) and ``MacInUseError`` when the MAC is registered.
        """
        ...

    async def find_device_by_mac(
        self, mac: str, *, org_id: str | None = None
    ) -> Device | None:
        """
        The device registered with this MAC, or None.
        """
        ...

    def list_devices(
        self,
        *,
        org_id: str | None = None,
        page_size: int | None = None,
        **filters: str,
    ) -> AsyncIterator[Device]:
        """
        Every device matching the filters (camelCase filter names are not used here:
        ``workspace_id``, ``person_id``, ``mac``, ``tag``, ``type``,
        ``connection_status``, ``display_name``), following ``Link rel="next"``.
        """
        ...

    def device_pages(
        self,
        *,
        org_id: str | None = None,
        page_size: int | None = None,
        **filters: str,
    ) -> AsyncIterator[list[Device]]:
        """
        The same list as ``list_devices``, a page at a time (``page_size`` is the
        ``max`` asked for; the API may answer fewer).
        """
        ...

    async def get_device(
        self, device_id: str, *, org_id: str | None = None
    ) -> Device: ...

    async def create_activation_code(
        self,
        *,
        model: str | None,
        workspace_id: str | None = None,
        person_id: str | None = None,
        org_id: str | None = None,
    ) -> ActivationCode: ...

    async def modify_tags(
        self,
        device_id: str,
        *,
        mode: TagMode | str,
        tags: Sequence[str],
        org_id: str | None = None,
    ) -> Device:
        """
        Apply tags with a single-object JSON Patch: ``add`` appends, ``replace`` sets,
        ``remove`` clears all tags.
        """
        ...

    async def delete_device(
        self, device_id: str, *, org_id: str | None = None
    ) -> None: ...

    async def supported_devices(
        self, *, org_id: str | None = None
    ) -> list[SupportedModel]: ...

    async def validate_macs(
        self, macs: Sequence[str], *, org_id: str | None = None
    ) -> list[MacState]: ...

    async def get_workspace(
        self, workspace_id: str, *, org_id: str | None = None
    ) -> Owner: ...

    async def get_person(
        self, person_id: str, *, org_id: str | None = None
    ) -> Owner: ...

    async def find_people(
        self, email: str, *, org_id: str | None = None
    ) -> list[Owner]:
        """
        The people ``GET /people?email=`` answers (empty when nobody has it).
        """
        ...

    async def find_workspaces(
        self, display_name: str, *, org_id: str | None = None
    ) -> list[Owner]:
        """
        The workspaces ``GET /workspaces?displayName=`` answers, every page. The
        filter is not an equality match: the caller picks the exact name out.
        """
        ...

    async def get_location(
        self, location_id: str, *, org_id: str | None = None
    ) -> Location: ...

    async def get_me(self) -> Caller:
        """
        The person behind the token, with their org's id.
        """
        ...

    async def get_organization(self, org_id: str) -> Organization:
        """
        An org's id and display name (needs an admin's organizations scope).
        """
        ...
