"""
The life of an activation code after the run, as calls: find, renew, retire, tag.

``inspect_codes`` finds the device of each code a report lists and lets
``code_rules.code_state`` say where it stands; ``renew_codes`` has fresh codes issued
for the expired and expiring ones whose devices never activated, and for those whose
device was deleted (each by the journalled step it is given,
``run.code_rows.code_renewer``, which retires the old pending device once the new
code is kept), applies tags that were deferred until activation, and gives a row
whose code stands its true status back. A row that named its owner by name renews
for the id its run resolved the name to (the report's ``owner`` cell), or, when the
report names none, for the id the name resolves to now, looked up as a run does
(``live.owners``). A row of an org the token may not act for (a partner's report)
is not read: it is ``unchecked``. Every decision is in ``code_rules``; this module
only awaits.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

import anyio
import structlog

from provisioner.errors import ApiError, NotFoundError
from provisioner.live.code_rules import (
    DEFAULT_WITHIN,
    CodeEntry,
    CodeState,
    code_state,
    failed_owner,
    issued_rows,
    match_devices,
    owner_key,
    standing_outcome,
    unchecked_entry,
    wants_renewal,
    with_report_owners,
)
from provisioner.live.orgs import OrgAccess, merge_rows
from provisioner.live.owners import resolve_owners
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
from provisioner.webex.protocol import DevicesApi

__all__ = ["RenewRow", "inspect_codes", "now_utc", "renew_codes"]

log = structlog.get_logger()

#: Renew one row's code, holding its owner's lock around the code call: the row's
#: new outcome (``run.code_rows.code_renewer`` makes one that journals each step).
RenewRow = Callable[[CodeEntry, anyio.Lock], Awaitable[Outcome]]

LOOKUP_CONCURRENCY = 8
#: How much later than the report's last command a device the API stamped may
#: still be that command's: the stamp is the API's clock, the history this
#: machine's. Generous (a renewal comes days later), since a code of the report's
#: taken for a later one would be called gone.
MADE_BY_TOLERANCE = timedelta(minutes=10)


async def inspect_codes(
    manifest: Manifest,
    outcomes: Mapping[int, Outcome],
    api: DevicesApi,
    *,
    now: datetime,
    within: timedelta = DEFAULT_WITHIN,
    org_id: str | None = None,
    refused: Mapping[int, OrgAccess] | None = None,
    made_by: datetime | None = None,
) -> list[CodeEntry]:
    """
    Find the device behind every issued code and decide each code's state.

    Read calls only: owner names the report holds no id for are looked up (each
    once, in ``org_id`` for rows without their own), then ``GET /devices/{id}`` for
    a code whose device id the report holds (one that answers 404 is ``gone``),
    otherwise one device list per owner. The rows in ``refused`` (by number: their
    org, which the token may not act for) are not read at all: each is
    ``unchecked``, in its place.

    ``made_by`` is when the report's last command ended (its run history). An
    owner's device made after it is a later command's (a renewal of this report, a
    run of another), never a code of this report: a row matched by owner takes no
    such device, and one that finds none is ``gone``, like a device id that answers
    404. Without it (a CSV report alone), any device of the owner may match, and a
    row that finds none is judged by its expiry.
    """
    refused = refused or {}
    unchecked = {
        row.number: unchecked_entry(row, outcome, refused[row.number])
        for row, outcome in issued_rows(manifest, outcomes)
        if row.number in refused
    }
    readable = {n: o for n, o in outcomes.items() if n not in unchecked}
    manifest, unresolved = await _owners(manifest, readable, api, org_id)
    issued = issued_rows(manifest, readable)
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
            group.start_soon(_match_owner, api, rows, claimed, found, limiter, made_by)
    # A device asked for by its id that answered 404 was deleted: its code is gone;
    # so is one matched by owner that found none the report's commands made.
    deleted = {
        row.number
        for row, outcome in issued
        if (outcome.device_id or (made_by is not None and row.owner_id))
        and found.get(row.number) is None
    }
    checked = {
        row.number: CodeEntry(
            row=row,
            outcome=outcome,
            device=found.get(row.number),
            state=code_state(
                outcome,
                found.get(row.number),
                now,
                within,
                deleted=row.number in deleted,
            ),
            expiry=utc_moment(outcome.activation_expiry),
            owner_problem=unresolved.get(row.number),
        )
        for row, outcome in issued
    }
    entries = {**checked, **unchecked}
    return [entries[row.number] for row in manifest.rows if row.number in entries]


async def _owners(
    manifest: Manifest,
    outcomes: Mapping[int, Outcome],
    api: DevicesApi,
    org_id: str | None,
) -> tuple[Manifest, dict[int, str]]:
    """
    Give code rows named by name their owner's id: the one the report says the run
    resolved the name to, else the one the name resolves to now. Return the manifest
    and, by row number, why a name did not resolve.
    """
    manifest = with_report_owners(manifest, outcomes)
    named = tuple(
        row
        for row, _outcome in issued_rows(manifest, outcomes)
        if row.owner_id is None and row.owner_name
    )
    if not named:
        return manifest, {}
    resolution = await resolve_owners(
        dataclasses.replace(manifest, rows=named), api, org_id=org_id
    )
    unresolved = {
        number: "; ".join(problem.message for problem in problems)
        for number, problems in resolution.problems.items()
    }
    return merge_rows(manifest, resolution.manifest), unresolved


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
    made_by: datetime | None,
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
    if made_by is not None:
        latest = made_by + MADE_BY_TOLERANCE
        devices = [d for d in devices if not _made_after(d, latest)]
    found.update(match_devices(rows, devices, claimed))


def _made_after(device: Device, moment: datetime) -> bool:
    created = utc_moment(device.created)
    return created is not None and created > moment


async def renew_codes(
    entries: Sequence[CodeEntry],
    api: DevicesApi,
    *,
    renew_row: RenewRow,
    tag_mode: TagMode = TagMode.ADD,
    unfinished: frozenset[int] = frozenset(),
) -> dict[int, Outcome]:
    """
    Renew expired and expiring codes, and apply tags deferred until activation.

    Each code to renew goes to ``renew_row`` (``run.code_rows.code_renewer``: a fresh
    code is issued and journalled first, then the old pending device, re-read just
    before and only if it has still not activated, is deleted, so the row keeps a
    code at every moment), with its owner's lock. ``unfinished`` rows are renewals
    an earlier, stopped renewal began: they are carried on whatever their code's
    state. A row whose code stands (activated, or pending and not due) says so:
    one an earlier step left ``failed`` is ``code_issued`` again
    (``code_rules.standing_outcome``). Rows that need nothing are left out of the
    answer, and so are the ``unchecked`` rows (their org refused the token:
    ``code_rules.refused_renewal`` says what becomes of them).

    Returns:
        The new outcomes, by row number: ``code_issued`` with the new code and
        expiry (or the code that stands), or ``failed`` naming the step when the
        new code could not be issued.
    """
    updated: dict[int, Outcome] = {}
    limiter = anyio.CapacityLimiter(LOOKUP_CONCURRENCY)
    # Webex asks that codes for one person or workspace are not issued concurrently.
    locks = {owner_key(entry.row): anyio.Lock() for entry in entries}
    async with anyio.create_task_group() as group:
        for entry in entries:
            if entry.state is CodeState.UNCHECKED:
                continue  # its org refused the token: no call is made there
            if wants_renewal(entry) or entry.row.number in unfinished:
                lock = locks[owner_key(entry.row)]
                group.start_soon(_renew_one, renew_row, entry, updated, limiter, lock)
                continue
            # The code stands: the row says so, even one an earlier step failed.
            standing = dataclasses.replace(
                entry, outcome=standing_outcome(entry, tag_mode)
            )
            if standing.needs_tags and standing.device is not None:
                group.start_soon(_tag_one, api, standing, tag_mode, updated, limiter)
            elif standing.outcome != entry.outcome:
                updated[entry.row.number] = standing.outcome
    return updated


async def _renew_one(
    renew_row: RenewRow,
    entry: CodeEntry,
    updated: dict[int, Outcome],
    limiter: anyio.CapacityLimiter,
    owner_lock: anyio.Lock,
) -> None:
    row, old = entry.row, entry.outcome
    if row.owner_id is None:
        reason = entry.owner_problem or "the row names no owner"
        updated[row.number] = failed_owner(old, reason)
        log.warning("code_renewal_failed", row=row.number, reason="owner_unresolved")
        return
    async with limiter:
        outcome = await renew_row(entry, owner_lock)
    updated[row.number] = outcome
    if outcome.status is Status.FAILED:
        log.warning("code_renewal_failed", row=row.number, status=outcome.http_status)


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
    tags = tags_to_send(current, row.tags, tag_mode)
    try:
        if tags is not None:
            await api.modify_tags(
                outcome.device_id, mode=TagMode.REPLACE, tags=tags, org_id=row.org_id
            )
    except ApiError as error:
        log.warning("deferred_tags_failed", row=row.number, status=error.status)
        return dataclasses.replace(outcome, tags_deferred=True)
    log.info("deferred_tags_applied", row=row.number, tags=len(tags or ()))
    return dataclasses.replace(outcome, tags_deferred=False, error=None)


def now_utc() -> datetime:
    """
    The time now, timezone-aware (the one place the codes command reads the clock).
    """
    return datetime.now(UTC)
