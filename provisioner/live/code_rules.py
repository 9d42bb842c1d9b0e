"""
Where an activation code stands, decided without I/O.

A report lists the codes a run issued. ``code_state`` decides where each one stands,
as a pure function of the row's outcome, the device found for it (or None) and the
time now, so it is tested with a moved clock and no server. ``match_devices`` pairs
code rows with an owner's devices when the report holds no device id.
``with_report_owners`` gives a row that named its owner by name the id its run
resolved the name to. A row of an org the token may not act for (a partner's
report) is not read at all: it is ``unchecked``, and ``refused_renewal`` says whether
``--renew`` owes it a code it cannot give. ``codes.py`` makes the calls and delegates
every decision here.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from provisioner.live.orgs import OrgAccess
from provisioner.live.owner_rules import resolved_owner_id
from provisioner.models import (
    Device,
    Manifest,
    Outcome,
    Row,
    Status,
    TagMode,
    utc_moment,
)
from provisioner.tags import tags_to_send

__all__ = [
    "DEFAULT_WITHIN",
    "CodeEntry",
    "CodeState",
    "code_state",
    "failed_owner",
    "fits_row",
    "is_activated",
    "issued_rows",
    "mask_code",
    "match_devices",
    "may_tag",
    "owner_key",
    "parse_within",
    "product_matches",
    "refused_renewal",
    "standing_outcome",
    "unchecked_entry",
    "wants_renewal",
    "with_report_owners",
]

DEFAULT_WITHIN = timedelta(days=7)

# A device that ever reached the cloud has a MAC or one of these statuses; a device
# still waiting for its code is ``activating`` (or ``pending``), and one whose code
# ran out is ``offline_expired``.
ACTIVE_STATUSES = frozenset(
    {"connected", "connected_with_issues", "disconnected", "offline_deep_sleep"}
)
EXPIRED_STATUS = "offline_expired"


class CodeState(enum.StrEnum):
    """
    Where an issued activation code stands.
    """

    ACTIVATED = "activated"
    PENDING = "pending"
    EXPIRING = "expiring"
    EXPIRED = "expired"
    #: The device the code made answers 404: it was deleted, so the code no longer
    #: works, whatever its expiry says.
    GONE = "gone"
    #: The token may not act for the row's org: nothing was read there.
    UNCHECKED = "not checked"


@dataclass(frozen=True, slots=True, kw_only=True)
class CodeEntry:
    """
    One report row holding an activation code, with the device found for it.

    ``owner_problem`` says why a row that named its owner by name has no owner id
    (the name no longer resolves in the org): its code cannot be renewed.
    ``refused_org`` is the row's org when the token may not act for it (the row
    is then ``unchecked``).
    """

    row: Row
    outcome: Outcome
    device: Device | None
    state: CodeState
    expiry: datetime | None
    owner_problem: str | None = None
    refused_org: OrgAccess | None = None

    @property
    def needs_tags(self) -> bool:
        """
        True when the row's tags wait for the device and it has now activated.
        """
        return self.outcome.tags_deferred and self.state is CodeState.ACTIVATED


def parse_within(text: str) -> timedelta:
    """
    Read a window such as ``7d`` or ``12h`` (a bare number means days).

    Raises:
        ValueError: with a message that says what is accepted.
    """
    match = re.fullmatch(r"\s*(\d+)\s*([dDhH]?)\s*", text)
    if match is None:
        raise ValueError(
            f"{text!r} is not a time window; write a number of days or hours, "
            "e.g. 7d or 12h"
        )
    amount, unit = int(match.group(1)), match.group(2).lower()
    return timedelta(hours=amount) if unit == "h" else timedelta(days=amount)


def is_activated(device: Device) -> bool:
    """
    Tell whether a device has used its code: it has a MAC or has been online.
    """
    return bool(device.mac) or (device.connection_status or "") in ACTIVE_STATUSES


def code_state(
    outcome: Outcome,
    device: Device | None,
    now: datetime,
    within: timedelta = DEFAULT_WITHIN,
    *,
    deleted: bool = False,
) -> CodeState:
    """
    Decide where a row's code stands.

    Args:
        outcome: the row's outcome from the report (its code and expiry).
        device: the device found for the code, or None when none was found.
        now: the time to judge by (timezone-aware).
        within: a code expiring sooner than this is ``expiring``.
        deleted: the code's device, asked for by its id, answered 404.
    """
    if deleted:
        # A pending device is the code: deleted (a renewal that voided it, a
        # rollback, a person in Control Hub), it takes the code with it.
        return CodeState.GONE
    if device is not None and is_activated(device):
        return CodeState.ACTIVATED
    if device is not None and device.connection_status == EXPIRED_STATUS:
        return CodeState.EXPIRED
    expiry = utc_moment(outcome.activation_expiry)
    if expiry is None:
        return CodeState.PENDING
    if expiry <= now:
        return CodeState.EXPIRED
    if expiry - now <= within:
        return CodeState.EXPIRING
    return CodeState.PENDING


def wants_renewal(entry: CodeEntry) -> bool:
    """
    True for a code that ran out or soon will, whose device never activated.

    Never a ``gone`` code: its device was deleted by a renewal that voided it (whose
    report holds the code that replaced it), by a rollback, or by a person, and a
    new code for it would be a second code for one device, or bring back what was
    taken out.
    """
    return entry.state in (CodeState.EXPIRED, CodeState.EXPIRING)


def unchecked_entry(row: Row, outcome: Outcome, access: OrgAccess) -> CodeEntry:
    """
    A code row of an org the token may not act for: nothing read, nothing known
    beyond what the report says.
    """
    return CodeEntry(
        row=row,
        outcome=outcome,
        device=None,
        state=CodeState.UNCHECKED,
        expiry=utc_moment(outcome.activation_expiry),
        refused_org=access,
    )


def refused_renewal(
    entry: CodeEntry, now: datetime, within: timedelta = DEFAULT_WITHIN
) -> Outcome | None:
    """
    The outcome of an unchecked row whose code ran out or soon will, by the
    report's expiry: ``failed`` with its org's reason, the old code kept (a renewal
    with a token that may act for the org renews it). None for any other row: an
    unchecked code the report gives time is left as the report has it.
    """
    access = entry.refused_org
    if access is None:
        return None
    if code_state(entry.outcome, None, now, within) is CodeState.PENDING:
        return None
    error = access.error
    return dataclasses.replace(
        entry.outcome,
        status=Status.FAILED,
        error=f"check org: {access.info.refused}",
        http_status=None if error is None else error.status,
        tracking_id=None if error is None else error.tracking_id,
    )


def standing_outcome(entry: CodeEntry, tag_mode: TagMode) -> Outcome:
    """
    The outcome of a row whose code stands (activated, or pending and not due), as
    ``--renew`` leaves it: the report's, with the device found for a code that had
    no id, and a ``failed`` row (a refused org's, a renewal that could not be made)
    back to ``code_issued`` with its error cleared, since its code checks out. Its
    failure may have been its tags: when its device is not known to carry them,
    they are deferred, for ``--renew`` to apply once the device has activated.
    """
    outcome = entry.outcome
    device = entry.device
    if device is not None and not outcome.device_id:
        # Remember the device found for the code, so the next look is direct.
        outcome = dataclasses.replace(outcome, device_id=device.id)
    if outcome.status is not Status.FAILED:
        return outcome
    owed = bool(entry.row.tags) and (
        device is None
        or tags_to_send(device.tags, entry.row.tags, tag_mode) is not None
    )
    return dataclasses.replace(
        outcome,
        status=Status.CODE_ISSUED,
        error=None,
        http_status=None,
        tracking_id=None,
        tags_deferred=outcome.tags_deferred or owed,
    )


def may_tag(entry: CodeEntry) -> bool:
    """
    True when ``--renew`` may set tags on the entry's activated device: its tags
    waited for activation, or its row failed (perhaps at its tags) and its device
    may lack them (``standing_outcome`` tells, by the device's tags).
    """
    if entry.device is None or entry.state is not CodeState.ACTIVATED:
        return False
    failed = entry.outcome.status is Status.FAILED and bool(entry.row.tags)
    return entry.needs_tags or failed


def mask_code(code: str | None) -> str:
    """
    Show only the last four digits of a code: it is a secret until used.
    """
    if not code:
        return ""
    digits = code.strip()
    return "•" * max(0, len(digits) - 4) + digits[-4:]


def product_matches(device: Device, model: str | None) -> bool:
    """
    Tell whether a device's product names the row's model (``DMS`` prefix aside).
    """
    if not device.product or not model:
        return True
    wanted = {_fold(model), _fold(model.removeprefix("DMS "))}
    return _fold(device.product) in wanted


def fits_row(device: Device, row: Row) -> bool:
    """
    Tell whether a pending device can be the one a row's code made.

    A RoomOS row's code names no model, so its device is told by its kind (a
    ``roomdesk``), not by its product; a phone row never takes a ``roomdesk``.
    """
    if row.roomos:
        return device.type == "roomdesk"
    return device.type != "roomdesk" and product_matches(device, row.model)


def _fold(text: str) -> str:
    return " ".join(text.lower().split())


def match_devices(
    rows: Sequence[Row], devices: Sequence[Device], claimed: frozenset[str]
) -> dict[int, Device]:
    """
    Pair code rows without a device id with the owner's devices (pure).

    Used when the report holds no device id for a code. Devices another report row
    already names are skipped; the rest are taken oldest first, each row in manifest
    order taking the first device of its model.
    """
    free = sorted(
        (d for d in devices if d.id not in claimed), key=lambda d: d.created or "~"
    )
    paired: dict[int, Device] = {}
    for row in sorted(rows, key=lambda r: r.number):
        for device in free:
            if fits_row(device, row):
                paired[row.number] = device
                free.remove(device)
                break
    return paired


def issued_rows(
    manifest: Manifest, outcomes: Mapping[int, Outcome]
) -> list[tuple[Row, Outcome]]:
    """
    Return the rows whose outcome holds an activation code, in manifest order.
    """
    return [
        (row, outcomes[row.number])
        for row in manifest.rows
        if row.number in outcomes and outcomes[row.number].activation_code
    ]


def with_report_owners(manifest: Manifest, outcomes: Mapping[int, Outcome]) -> Manifest:
    """
    Give each row that named its owner by name the id its run resolved it to.

    The run wrote that id into the report's ``owner`` cell (``Lobby (id X)``); the
    code was issued for that owner, so a renewal goes to the same one, even if the
    name has since moved. A row whose cell names no id is left without one.
    """
    rows = []
    for row in manifest.rows:
        outcome = outcomes.get(row.number)
        owner = None if outcome is None else resolved_owner_id(outcome.owner)
        if owner is not None and row.owner_id is None:
            if row.workspace_name:
                row = dataclasses.replace(row, workspace_id=owner)
            elif row.person_email:
                row = dataclasses.replace(row, person_id=owner)
        rows.append(row)
    return dataclasses.replace(manifest, rows=tuple(rows))


def owner_key(row: Row) -> tuple[str | None, str]:
    """
    The (org, owner) a code row belongs to: one lookup of devices per owner.
    """
    return row.org_id, row.owner_id or f"row {row.number}"


def failed_owner(old: Outcome, reason: str) -> Outcome:
    """
    The row's outcome when its code cannot be renewed for want of an owner id.
    """
    return dataclasses.replace(
        old,
        status=Status.FAILED,
        error=f"renew activation code: {reason}",
        http_status=None,
        tracking_id=None,
    )
