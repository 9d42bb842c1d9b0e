"""
Frozen domain values shared by every stage of a run.

The flow is manifest → rows → plan → engine → outcomes → report; these are the values
that travel along it. Nothing here does I/O, and nothing here knows the wire format:
camelCase exists only in ``webex/`` (``wire.py``) (and in the report's column names).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

__all__ = [
    "ROOM_OS",
    "ActivationCode",
    "Device",
    "Manifest",
    "Outcome",
    "OwnerKind",
    "Problem",
    "Row",
    "RunStats",
    "Status",
    "SupportedModel",
    "TagMode",
]


class Status(enum.StrEnum):
    """
    What became of a manifest row; the values are the report's ``status`` column.
    """

    CREATED = "created"
    ADOPTED = "adopted"
    CODE_ISSUED = "code_issued"
    FAILED = "failed"
    INVALID = "invalid"
    PLANNED = "planned"

    @property
    def is_ok(self) -> bool:
        """
        True when the row ended well (it does not make the exit code 1).
        """
        return self not in (Status.FAILED, Status.INVALID)


class OwnerKind(enum.StrEnum):
    """
    Who a device belongs to: a workspace (a place) or a person.
    """

    WORKSPACE = "workspace"
    PERSON = "person"


class TagMode(enum.StrEnum):
    """
    How a row's tags are applied to its device (``--tag-mode``).
    """

    ADD = "add"
    REPLACE = "replace"


@dataclass(frozen=True, slots=True)
class Problem:
    """
    One thing wrong with one cell of a manifest row.

    ``value`` is what the cell held, already masked where the column is secret, so a
    Problem can always be printed as it is.
    """

    column: str
    value: str
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Row:
    """
    One manifest row, normalised.

    ``number`` is the row number a spreadsheet shows (the header is row 1). ``cells`` are
    the row's original cell texts, in the order of ``Manifest.columns``; the report
    writes them back untouched (passwords masked). A row with ``problems`` is invalid
    and is never sent to the API. ``roomos`` marks a Board, Desk or Room Series
    model, whose activation code is requested without a model (``api_model``).
    """

    number: int
    cells: tuple[str, ...]
    mac: str | None = None
    model: str | None = None
    roomos: bool = False
    workspace_id: str | None = None
    person_id: str | None = None
    tags: tuple[str, ...] = ()
    org_id: str | None = None
    password: str | None = field(default=None, repr=False)
    problems: tuple[Problem, ...] = ()

    @property
    def is_valid(self) -> bool:
        return not self.problems

    @property
    def is_activation_code_row(self) -> bool:
        """
        A row without a MAC is onboarded with an activation code.
        """
        return self.mac is None

    @property
    def api_model(self) -> str | None:
        """
        The model an activation-code request carries: none for a RoomOS device (a
        code without a model works on RoomOS devices only; phones must name theirs).
        """
        return None if self.roomos else self.model

    @property
    def owner_id(self) -> str | None:
        return self.workspace_id or self.person_id

    @property
    def owner_kind(self) -> OwnerKind | None:
        if self.workspace_id:
            return OwnerKind.WORKSPACE
        if self.person_id:
            return OwnerKind.PERSON
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Manifest:
    """
    A whole manifest: its columns as the file spelled them, and its rows in order.

    ``field_columns`` maps a canonical field name (``mac``, ``model``, ``workspaceId``,
    ``personId``, ``tags``, ``orgId``, ``password``) to the header that supplied it.
    """

    path: Path
    sheet: str | None
    columns: tuple[str, ...]
    field_columns: Mapping[str, str]
    rows: tuple[Row, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Device:
    """
    A device as the API describes it, in snake_case; MACs are 12 upper-case hex digits.
    """

    id: str
    mac: str | None = None
    product: str | None = None
    type: str | None = None
    display_name: str | None = None
    workspace_id: str | None = None
    person_id: str | None = None
    org_id: str | None = None
    tags: tuple[str, ...] = ()
    connection_status: str | None = None
    created: str | None = None

    @property
    def owner_id(self) -> str | None:
        return self.workspace_id or self.person_id


@dataclass(frozen=True, slots=True, kw_only=True)
class ActivationCode:
    """
    A freshly issued activation code; ``code`` is a secret and stays out of ``repr``.
    """

    code: str = field(repr=False)
    expiry_time: str
    device_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """
    The result of one row: the report's result columns, as values.

    A failed row is an Outcome too: ``error`` names the step and the reason in words a
    person can act on, with the HTTP status and tracking id of the failing call.
    ``tags_deferred`` marks an activation-code row whose tags wait for the device to
    activate (a later ``rerun`` applies them).
    """

    row: int
    status: Status
    device_id: str | None = None
    activation_code: str | None = field(default=None, repr=False)
    activation_expiry: str | None = None
    error: str | None = None
    http_status: int | None = None
    tracking_id: str | None = None
    attempts: int = 0
    tags_deferred: bool = False


ROOM_OS = "ROOM_OS"
"""The supportedDevices ``type`` of Board, Desk and Room Series (RoomOS) devices."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SupportedModel:
    """
    One model a device can be: an entry of ``GET /telephony/config/supportedDevices``
    in snake_case, or of the bundled catalogue (``intake/data/models.json``).

    ``model`` is the string the API takes, ``display_name`` the one people know;
    ``aliases`` are other names people type for it (bundled catalogue only). Empty
    ``supported_for`` means "not said": both owner kinds are allowed.
    """

    model: str
    display_name: str
    type: str | None = None
    manufacturer: str | None = None
    managed_by: str | None = None
    supported_for: tuple[str, ...] = ()
    onboarding_methods: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()

    @property
    def needs_password(self) -> bool:
        """
        Customer-managed (third-party) devices are created with a SIP password.
        """
        return self.managed_by == "CUSTOMER"

    @property
    def supports_mac(self) -> bool:
        return "MAC_ADDRESS" in self.onboarding_methods

    @property
    def supports_activation_code(self) -> bool:
        return "ACTIVATION_CODE" in self.onboarding_methods

    @property
    def supports_people(self) -> bool:
        return not self.supported_for or "PEOPLE" in self.supported_for

    @property
    def supports_places(self) -> bool:
        return not self.supported_for or "PLACE" in self.supported_for

    @property
    def is_roomos(self) -> bool:
        """
        A Board, Desk or Room Series device: its activation code is requested
        without a model (reference §4.5: such a code works on RoomOS devices only).
        """
        return self.type == ROOM_OS


@dataclass(frozen=True, slots=True, kw_only=True)
class RunStats:
    """
    What a run measured, besides the outcomes themselves.

    Counts by status and by error are derived from the outcomes, never stored here.
    ``rows_worked`` is how many rows this run itself finished (a rerun carries the
    others over); None means every row with an outcome, which is right for ``run``.
    """

    started_at: datetime
    finished_at: datetime
    api_calls: int
    rate_limited: int
    retries: int
    dry_run: bool = False
    interrupted: bool = False
    final_rate: float | None = None
    rows_worked: int | None = None

    @property
    def duration(self) -> float:
        """
        Seconds from start to finish (never negative).
        """
        return max(0.0, (self.finished_at - self.started_at).total_seconds())
