"""
Frozen domain values shared by every stage of a run.

The flow is manifest → rows → plan → engine → outcomes → report; these are the values
that travel along it. Nothing here does I/O, and nothing here knows the wire format:
camelCase exists only in ``webex/`` (``wire.py``) (and in the report's column names).

Longer than most modules on purpose: this is the vocabulary every stage shares (rows,
outcomes, the run's target, changes and figures). Keeping it in one module below all
the stages is what lets each stage import only downward.
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

__all__ = [
    "ROOM_OS",
    "ActivationCode",
    "Changes",
    "Device",
    "Manifest",
    "OrgChanges",
    "OrgInfo",
    "Outcome",
    "OwnerKind",
    "Problem",
    "Row",
    "RunKind",
    "RunRecord",
    "RunStats",
    "Status",
    "SupportedModel",
    "TagMode",
    "Target",
    "merge_history",
    "utc_moment",
]


class Status(enum.StrEnum):
    """
    What became of a manifest row; the values are the report's ``status`` column.
    """

    CREATED = "created"
    ADOPTED = "adopted"
    CODE_ISSUED = "code_issued"
    #: The owner already had a pending device of the row's model that this run did
    #: not make: no second code was issued (``codes --renew`` or ``--reissue-codes``).
    CODE_PENDING = "code_pending"
    FAILED = "failed"
    INVALID = "invalid"
    #: An interrupted run never began the row; resuming or ``rerun`` picks it up.
    NOT_STARTED = "not_started"
    PLANNED = "planned"

    @property
    def is_ok(self) -> bool:
        """
        True when the row ended well (it does not make the exit code 1).
        """
        return self not in (Status.FAILED, Status.INVALID, Status.NOT_STARTED)

    @property
    def wants_rerun(self) -> bool:
        """
        True for the rows ``rerun`` takes: not done, or only planned by a dry run.
        """
        return self in (
            Status.FAILED,
            Status.INVALID,
            Status.NOT_STARTED,
            Status.PLANNED,
        )


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


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """
    Where a run writes, and the options that change what a row does there.

    ``base_url`` and ``org_id`` name the API and the org (``--org-id``, else the
    token's own org from ``GET /people/me``; None when the API would not say);
    ``tag_mode`` changes what a row does to its device. Those three are the run's
    identity: a journal written for one target is never resumed for another
    (``same_as``). ``org_name`` and ``caller`` (who the token belongs to) are shown
    to people and recorded in the report, but a renamed org is still the same org.
    """

    base_url: str
    org_id: str | None = None
    org_name: str | None = None
    tag_mode: TagMode = TagMode.ADD
    caller: str | None = None

    def identity(self) -> dict[str, str]:
        """
        The parts two runs must share to continue one another, as plain text.
        """
        return {
            "base_url": self.base_url.rstrip("/"),
            "org_id": self.org_id or "",
            "tag_mode": self.tag_mode.value,
        }

    def same_as(self, other: Target) -> bool:
        """
        True when ``other`` is the same API, org and tag mode.
        """
        return self.identity() == other.identity()

    def same_org_as(self, other: Target) -> bool:
        """
        True when ``other`` is the same API and org, whatever its tag mode.
        """
        mine, theirs = self.identity(), other.identity()
        return (mine["base_url"], mine["org_id"]) == (
            theirs["base_url"],
            theirs["org_id"],
        )

    def org_label(self) -> str:
        """
        The org as people know it: ``Name (id)``, the id alone, or "the token's org".
        """
        if self.org_name and self.org_id:
            return f"{self.org_name} ({self.org_id})"
        return self.org_id or self.org_name or "the token's org"


@dataclass(frozen=True, slots=True, kw_only=True)
class OrgInfo:
    """
    One org a run's rows go to, as people know it (a partner's run names several).

    ``key`` is what the rows say: their ``orgId``, else the run's org (``--org-id``),
    None for the token's own org. ``id`` is the org's id where known (for the
    token's own org, from ``GET /people/me``), ``name`` its display name.
    ``refused`` says, in one sentence, why the token may not act for it: its rows
    then fail with those words and the run goes on with the other orgs.
    """

    key: str | None
    id: str | None = None
    name: str | None = None
    refused: str | None = None

    def label(self) -> str:
        """
        The org as people know it: ``Name (id)``, the id alone, or "the token's org".
        """
        org_id = self.id or self.key
        if self.name and org_id:
            return f"{self.name} ({org_id})"
        return org_id or self.name or "the token's org"


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

    The owner is named by id (``workspace_id``, ``person_id``) or by name: a
    workspace's display name (``workspace_name``, told apart by ``location`` when
    several share it) or a person's email (``person_email``). A row named by name has
    no id until the live checks resolve it (``live.owners``) and fill the id in.
    """

    number: int
    cells: tuple[str, ...]
    mac: str | None = None
    model: str | None = None
    roomos: bool = False
    workspace_id: str | None = None
    person_id: str | None = None
    workspace_name: str | None = None
    person_email: str | None = None
    location: str | None = None
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
        if self.workspace_id or self.workspace_name:
            return OwnerKind.WORKSPACE
        if self.person_id or self.person_email:
            return OwnerKind.PERSON
        return None

    @property
    def owner_name(self) -> str | None:
        """
        The owner as the row named it when not by id: a workspace name or an email.
        """
        return self.workspace_name or self.person_email

    @property
    def owner_label(self) -> str | None:
        """
        The report's ``owner`` cell: the name or email the row gave, with the id it
        resolved to (None for a row that named its owner by id).
        """
        if self.workspace_name:
            name, owner_id = self.workspace_name, self.workspace_id
            if self.location:
                name = f"{name}, {self.location}"
        elif self.person_email:
            name, owner_id = self.person_email, self.person_id
        else:
            return None
        # The id of the owner the name found: an invalid row naming a workspace and
        # a person (resolved) must not pair the one's name with the other's id.
        return f"{name} (id {owner_id})" if owner_id else name


@dataclass(frozen=True, slots=True, kw_only=True)
class Manifest:
    """
    A whole manifest: its columns as the file spelled them, and its rows in order.

    ``field_columns`` maps a canonical field name (``mac``, ``model``, ``workspaceId``,
    ``personId``, ``tags``, ``orgId``, ``password``) to the header that supplied it.
    ``numbers`` holds the value of each XLSX cell stored as a number, by (row number,
    column index), as the file gave it (``RawTable.numbers``): the rows are checked
    again against an org's models (``live.rules.with_catalogue``), and a MAC typed as
    a number must fail that check as it failed the first. ``elsewhere`` holds the
    MACs of rows of the same run outside this manifest, with their row numbers (one
    org's report of a partner run: the combined report's other rows), so a MAC on
    one of them is a duplicate here too, and stays one when the rows are checked again.
    """

    path: Path
    sheet: str | None
    columns: tuple[str, ...]
    field_columns: Mapping[str, str]
    rows: tuple[Row, ...]
    numbers: Mapping[tuple[int, int], float] = field(default_factory=dict, repr=False)
    elsewhere: Mapping[str, tuple[int, ...]] = field(default_factory=dict, repr=False)


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
    serial: str | None = None
    software: str | None = None
    ip: str | None = None

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
    activate (a later ``rerun`` applies them). ``plan`` is what a dry run found a real
    run would do with the row (``planned`` rows only): it is not an error. ``owner``
    is the report's ``owner`` cell (``Row.owner_label``).
    """

    row: int
    status: Status
    device_id: str | None = None
    activation_code: str | None = field(default=None, repr=False)
    activation_expiry: str | None = None
    error: str | None = None
    plan: str | None = None
    http_status: int | None = None
    tracking_id: str | None = None
    attempts: int = 0
    tags_deferred: bool = False
    owner: str | None = None


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
class Changes:
    """
    What a command is about to write to an org, counted, for the confirmation.

    ``creates`` devices by MAC (at most: some may turn out registered already and be
    adopted), activation ``codes`` (each makes a pending device), ``tag_updates`` on
    devices, ``deletions`` of devices (a rollback), ``voided_codes``: earlier codes
    whose pending devices are deleted so they stop working (a renewal, ``--fresh``).
    ``notes`` are further lines for changes that cannot be counted before the calls
    (one short sentence each).
    """

    creates: int = 0
    codes: int = 0
    tag_updates: int = 0
    deletions: int = 0
    voided_codes: int = 0
    notes: tuple[str, ...] = ()
    #: The same counts for each org, when the rows go to more than one.
    orgs: tuple[OrgChanges, ...] = ()

    @property
    def is_empty(self) -> bool:
        """
        True when nothing would be written.
        """
        counted = (
            self.creates
            + self.codes
            + self.tag_updates
            + self.deletions
            + self.voided_codes
        )
        return counted == 0 and not self.notes


@dataclass(frozen=True, slots=True, kw_only=True)
class OrgChanges:
    """
    One org of a run, for the confirmation: which org, its rows, what may change.
    """

    org: OrgInfo
    rows: int
    changes: Changes = field(default_factory=Changes)


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
    #: The API's limit (requests/s) the rate controller learned from 429s, in a
    #: run to one org; None when it learned none, or in a partner's run.
    learned_limit: float | None = None
    rows_worked: int | None = None
    #: Where the run wrote (None for a report not written by a run, or an old one).
    target: Target | None = None
    #: Pending devices of replaced activation codes this run deleted (``--fresh``,
    #: ``--reissue-codes``), so no code is left that no row accounts for.
    codes_voided: int = 0
    #: The orgs the rows went to, when more than one (a partner's run).
    orgs: tuple[OrgInfo, ...] = ()
    #: True when the run continued an earlier one from its journal.
    resumed: bool = False
    #: The rows this run itself decided, by status (rows carried over from the
    #: journal or an earlier report are not in it); None when not counted.
    worked: Mapping[Status, int] | None = None
    #: Every command of this rollout so far, this one last, oldest first; empty when
    #: not known (the report then shows this run alone).
    history: tuple[RunRecord, ...] = ()
    #: In one org's part of a partner's report (``--split-by-org``): how many orgs
    #: the whole run went to, whose API figures these are; 0 in a whole report.
    part_of_orgs: int = 0
    #: In a partner's run, the limit each org's controller learned from 429s, by
    #: ``OrgInfo.key`` (the orgs that learned one; none once they shared a budget).
    org_limits: tuple[tuple[str | None, float], ...] = ()

    def limit_of(self, key: str | None) -> float | None:
        """
        The limit the run learned for the org of ``key``, if it learned one.
        """
        return dict(self.org_limits).get(key)

    def limits_by_org_id(self) -> tuple[tuple[str, float], ...]:
        """
        Each org's learned limit by the org's id (what a later command's rate
        control is keyed by): the one org's, or each partner org's that learned one.
        """
        limits: dict[str, float] = {}
        if self.learned_limit is not None and self.target and self.target.org_id:
            limits[self.target.org_id] = self.learned_limit
        for info in self.orgs:
            limit = self.limit_of(info.key)
            org = info.id or info.key
            if limit is not None and org:
                limits[org] = limit
        return tuple(limits.items())

    @property
    def duration(self) -> float:
        """
        Seconds from start to finish (never negative).
        """
        return max(0.0, (self.finished_at - self.started_at).total_seconds())


class RunKind(enum.StrEnum):
    """
    What one command of a rollout was, as the report's run history names it.
    """

    RUN = "run"
    RESUME = "resume"
    RERUN = "rerun"
    DRY_RUN = "dry run"
    RENEWAL = "codes --renew"


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRecord:
    """
    One command that worked on a rollout's rows: a line of the report's run history.

    ``source`` is the file name the command read (the manifest, or the report a rerun
    or renewal took) and ``source_sha256`` that file's SHA-256, so a person can tell
    which version of a sheet was run. ``counts`` are the rows this command itself
    decided, by status. ``base_url``, ``org_id`` and ``tag_mode`` are where it wrote
    and how it tagged (None in a record an older version wrote): a rerun of a report
    whose journal is not beside it (a dry run's has none) is still refused against
    another API or org, and tags as the run did. ``org_names`` are the names of the
    orgs a partner's command looked up (org id, name), so a later rerun that looks up
    fewer still names them. ``limits`` are the API's limits the command learned or
    ran at (org id, requests/s): a later command of the rollout starts there at that
    pace. Two records are the same command when their ``key`` is.
    """

    kind: RunKind
    started_at: datetime
    finished_at: datetime
    source: str = ""
    source_sha256: str | None = None
    caller: str | None = None
    counts: Mapping[Status, int] = field(default_factory=dict)
    interrupted: bool = False
    base_url: str | None = None
    org_id: str | None = None
    tag_mode: TagMode | None = None
    org_names: tuple[tuple[str, str], ...] = ()
    limits: tuple[tuple[str, float], ...] = ()

    @property
    def key(self) -> tuple[str, str]:
        """
        What tells one command from another: its kind and its start, to the microsecond.
        """
        return (self.kind.value, self.started_at.isoformat())

    def to_json(self) -> str:
        """
        The record as one line of JSON (what the journal and the XLSX report keep).
        """
        return json.dumps(
            {
                "kind": self.kind.value,
                "started_at": self.started_at.isoformat(),
                "finished_at": self.finished_at.isoformat(),
                "source": self.source,
                "source_sha256": self.source_sha256,
                "caller": self.caller,
                "counts": {status.value: n for status, n in self.counts.items() if n},
                "interrupted": self.interrupted,
                "base_url": self.base_url,
                "org_id": self.org_id,
                "tag_mode": self.tag_mode.value if self.tag_mode else None,
                "org_names": dict(self.org_names),
                "limits": dict(self.limits),
            },
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str) -> RunRecord:
        """
        Read a record written by ``to_json``.

        Raises:
            ValueError: the text is not such a record (a person edited it, say).
        """
        try:
            data = json.loads(text)
            counts = {
                Status(name): int(n) for name, n in data.get("counts", {}).items()
            }
            return cls(
                kind=RunKind(data["kind"]),
                started_at=_aware(datetime.fromisoformat(data["started_at"])),
                finished_at=_aware(datetime.fromisoformat(data["finished_at"])),
                source=str(data.get("source") or ""),
                source_sha256=data.get("source_sha256") or None,
                caller=data.get("caller") or None,
                counts=counts,
                interrupted=bool(data.get("interrupted", False)),
                base_url=data.get("base_url") or None,
                org_id=data.get("org_id") or None,
                tag_mode=TagMode(data["tag_mode"]) if data.get("tag_mode") else None,
                org_names=tuple(
                    (str(org), str(name))
                    for org, name in (data.get("org_names") or {}).items()
                ),
                limits=tuple(
                    (str(org), float(limit))
                    for org, limit in (data.get("limits") or {}).items()
                    if _is_rate(limit)
                ),
            )
        except (KeyError, TypeError, AttributeError, ValueError) as error:
            raise ValueError(f"not a run record: {error}") from None


def _is_rate(value: object) -> bool:
    """
    Whether a history's limit is a number of requests per second (one edited by
    hand into something else is left out, not the whole record).
    """
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def merge_history(*parts: tuple[RunRecord, ...]) -> tuple[RunRecord, ...]:
    """
    Join histories from several places (an earlier report, a journal) into one: each
    command once, oldest first.
    """
    seen: dict[tuple[str, str], RunRecord] = {}
    for part in parts:
        for record in part:
            seen.setdefault(record.key, record)
    return tuple(sorted(seen.values(), key=lambda record: record.started_at))


def utc_moment(text: str | None) -> datetime | None:
    """
    Read an ISO 8601 time (``2026-12-26T10:00:00.000Z``) as a moment in UTC; None
    when absent or not a time. A time without an offset is taken as UTC.
    """
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return _aware(moment).astimezone(UTC)


def _aware(moment: datetime) -> datetime:
    # Times are written in UTC with their offset; one without is taken as UTC, so
    # records always compare.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
