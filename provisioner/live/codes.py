"""
The life of an activation code after the run: activated, pending, expiring, expired.

A report lists the codes a run issued. ``code_state`` decides where each one stands,
as a pure function of the row's outcome, the device found for it (or None) and the
time now, so it is tested with a moved clock and no server. ``inspect_codes`` finds
the devices; ``renew_codes`` issues fresh codes for the expired and expiring ones
whose devices never activated, and applies tags that were deferred until activation.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import anyio
import structlog

from provisioner.errors import ApiError, NotFoundError
from provisioner.models import Device, Manifest, Outcome, Row, Status, TagMode
from provisioner.webex.protocol import CallTally, DevicesApi

__all__ = [
    "DEFAULT_WITHIN",
    "CodeEntry",
    "CodeState",
    "code_state",
    "inspect_codes",
    "is_activated",
    "issued_rows",
    "mask_code",
    "match_devices",
    "now_utc",
    "parse_expiry",
    "parse_within",
    "renew_codes",
    "wants_renewal",
]

log = structlog.get_logger()

DEFAULT_WITHIN = timedelta(days=7)
LOOKUP_CONCURRENCY = 8

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


@dataclass(frozen=True, slots=True, kw_only=True)
class CodeEntry:
    """
    One report row holding an activation code, with the device found for it.
    """

    row: Row
    outcome: Outcome
    device: Device | None
    state: CodeState
    expiry: datetime | None

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


def parse_expiry(text: str | None) -> datetime | None:
    """
    Read an ISO 8601 expiry (``2026-12-26T10:00:00.000Z``); None when absent or odd.
    """
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


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
) -> CodeState:
    """
    Decide where a row's code stands.

    Args:
        outcome: the row's outcome from the report (its code and expiry).
        device: the device found for the code, or None when none was found.
        now: the time to judge by (timezone-aware).
        within: a code expiring sooner than this is ``expiring``.
    """
    if device is not None and is_activated(device):
        return CodeState.ACTIVATED
    if device is not None and device.connection_status == EXPIRED_STATUS:
        return CodeState.EXPIRED
    expiry = parse_expiry(outcome.activation_expiry)
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
    """
    return entry.state in (CodeState.EXPIRED, CodeState.EXPIRING)


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


async def inspect_codes(
    manifest: Manifest,
    outcomes: Mapping[int, Outcome],
    api: DevicesApi,
    *,
    now: datetime,
    within: timedelta = DEFAULT_WITHIN,
) -> list[CodeEntry]:
    """
    Find the device behind every issued code and decide each code's state.

    Read calls only: ``GET /devices/{id}`` for a code whose device id the report
    holds, otherwise one device list per owner.
    """
    issued = issued_rows(manifest, outcomes)
    claimed = frozenset(o.device_id for o in outcomes.values() if o.device_id)
    found: dict[int, Device | None] = {}
    limiter = anyio.CapacityLimiter(LOOKUP_CONCURRENCY)
    by_owner: dict[tuple[str, str | None], list[Row]] = {}
    async with anyio.create_task_group() as group:
        for row, outcome in issued:
            if outcome.device_id:
                group.start_soon(_get, api, row, outcome.device_id, found, limiter)
            elif row.owner_id:
                by_owner.setdefault((row.owner_id, row.org_id), []).append(row)
        for rows in by_owner.values():
            group.start_soon(_match_owner, api, rows, claimed, found, limiter)
    return [
        CodeEntry(
            row=row,
            outcome=outcome,
            device=found.get(row.number),
            state=code_state(outcome, found.get(row.number), now, within),
            expiry=parse_expiry(outcome.activation_expiry),
        )
        for row, outcome in issued
    ]


async def _get(
    api: DevicesApi,
    row: Row,
    device_id: str,
    found: dict[int, Device | None],
    limiter: anyio.CapacityLimiter,
) -> None:
    async with limiter:
        try:
            found[row.number] = await api.get_device(device_id, org_id=row.org_id)
        except NotFoundError:
            found[row.number] = None


async def _match_owner(
    api: DevicesApi,
    rows: Sequence[Row],
    claimed: frozenset[str],
    found: dict[int, Device | None],
    limiter: anyio.CapacityLimiter,
) -> None:
    first = rows[0]
    async with limiter:
        if first.workspace_id:
            listing = api.list_devices(
                org_id=first.org_id, workspace_id=first.workspace_id
            )
        else:
            listing = api.list_devices(
                org_id=first.org_id, person_id=first.person_id or ""
            )
        devices = [device async for device in listing]
    found.update(match_devices(rows, devices, claimed))


async def renew_codes(
    entries: Sequence[CodeEntry],
    api: DevicesApi,
    *,
    tag_mode: TagMode = TagMode.ADD,
) -> dict[int, Outcome]:
    """
    Renew expired and expiring codes, and apply tags deferred until activation.

    For a code to renew, a fresh code is issued first, then the old pending device
    (re-read just before, and only if it has still not activated) is deleted so the
    old code stops working; the row keeps a code at every moment. Rows that need
    nothing are left out of the answer.

    Returns:
        The new outcomes, by row number: ``code_issued`` with the new code and
        expiry, or ``failed`` naming the step when the new code could not be issued.
    """
    updated: dict[int, Outcome] = {}
    limiter = anyio.CapacityLimiter(LOOKUP_CONCURRENCY)
    # Webex asks that codes for one person or workspace are not issued concurrently.
    locks = {_owner(entry.row): anyio.Lock() for entry in entries}
    async with anyio.create_task_group() as group:
        for entry in entries:
            if wants_renewal(entry):
                lock = locks[_owner(entry.row)]
                group.start_soon(
                    _renew_one, api, entry, tag_mode, updated, limiter, lock
                )
            elif entry.needs_tags and entry.device is not None:
                group.start_soon(_tag_one, api, entry, tag_mode, updated, limiter)
            elif entry.device is not None and not entry.outcome.device_id:
                # Remember the device found for the code, so the next look is direct.
                updated[entry.row.number] = dataclasses.replace(
                    entry.outcome, device_id=entry.device.id
                )
    return updated


async def _renew_one(
    api: DevicesApi,
    entry: CodeEntry,
    tag_mode: TagMode,
    updated: dict[int, Outcome],
    limiter: anyio.CapacityLimiter,
    owner_lock: anyio.Lock,
) -> None:
    row, old = entry.row, entry.outcome
    async with limiter:
        with api.tally() as tally:
            try:
                async with owner_lock:
                    code = await api.create_activation_code(
                        model=row.api_model,
                        workspace_id=row.workspace_id,
                        person_id=row.person_id,
                        org_id=row.org_id,
                    )
            except ApiError as error:
                updated[row.number] = _failed(
                    old, "renew activation code", error, tally
                )
                log.warning("code_renewal_failed", row=row.number, status=error.status)
                return
            outcome = dataclasses.replace(
                old,
                status=Status.CODE_ISSUED,
                device_id=code.device_id,
                activation_code=code.code,
                activation_expiry=code.expiry_time,
                error=None,
                http_status=None,
                tracking_id=tally.last_tracking_id,
                tags_deferred=bool(row.tags),
            )
            if entry.device is not None:
                await _retire(api, entry.device, row)
            if row.tags and code.device_id:
                outcome = await _apply_tags(api, row, outcome, None, tag_mode)
            updated[row.number] = dataclasses.replace(
                outcome, attempts=old.attempts + tally.calls
            )
    log.info("code_renewed", row=row.number, expiry=code.expiry_time)


async def _retire(api: DevicesApi, device: Device, row: Row) -> None:
    """
    Delete the old pending device, unless it activated meanwhile.
    """
    try:
        current = await api.get_device(device.id, org_id=row.org_id)
        if is_activated(current):
            log.warning("old_code_used_meanwhile", row=row.number, device_id=device.id)
            return
        await api.delete_device(device.id, org_id=row.org_id)
    except NotFoundError:
        return
    except ApiError as error:
        # The new code stands either way; the old device only clutters the org.
        log.warning(
            "old_device_not_deleted",
            row=row.number,
            device_id=device.id,
            status=error.status,
        )


async def _tag_one(
    api: DevicesApi,
    entry: CodeEntry,
    tag_mode: TagMode,
    updated: dict[int, Outcome],
    limiter: anyio.CapacityLimiter,
) -> None:
    assert entry.device is not None  # renew_codes checked it
    async with limiter:
        with api.tally() as tally:
            outcome = dataclasses.replace(entry.outcome, device_id=entry.device.id)
            outcome = await _apply_tags(api, entry.row, outcome, entry.device, tag_mode)
            updated[entry.row.number] = dataclasses.replace(
                outcome, attempts=entry.outcome.attempts + tally.calls
            )


async def _apply_tags(
    api: DevicesApi,
    row: Row,
    outcome: Outcome,
    device: Device | None,
    tag_mode: TagMode,
) -> Outcome:
    """
    Apply a row's tags to its device; the outcome says whether they still wait.

    ``add`` is sent as a ``replace`` with the union of the device's tags and the
    row's, so trying again after an unclear answer never duplicates a tag.
    """
    assert outcome.device_id is not None  # callers set it
    current = device.tags if device is not None else ()
    tags = (
        list(dict.fromkeys((*current, *row.tags)))
        if tag_mode is TagMode.ADD
        else list(row.tags)
    )
    try:
        await api.modify_tags(
            outcome.device_id, mode=TagMode.REPLACE, tags=tags, org_id=row.org_id
        )
    except ApiError as error:
        log.warning("deferred_tags_failed", row=row.number, status=error.status)
        return dataclasses.replace(outcome, tags_deferred=True)
    log.info("deferred_tags_applied", row=row.number, tags=len(tags))
    return dataclasses.replace(outcome, tags_deferred=False, error=None)


def _owner(row: Row) -> tuple[str | None, str]:
    return row.org_id, row.owner_id or f"row {row.number}"


def _failed(old: Outcome, step: str, error: ApiError, tally: CallTally) -> Outcome:
    return dataclasses.replace(
        old,
        status=Status.FAILED,
        error=f"{step}: {error.message}",
        http_status=error.status,
        tracking_id=error.tracking_id or tally.last_tracking_id,
        attempts=old.attempts + tally.calls,
    )


def now_utc() -> datetime:
    """
    The time now, timezone-aware (the one place the codes command reads the clock).
    """
    return datetime.now(UTC)
