"""
Carry an activation-code row through its calls: settle earlier codes, issue the code,
tag its pending device.

Activation codes cannot be read back, so a code whose answer was lost (a lost answer
in this run, or a resumed row journalled as ``started``) is replaced, never recovered:
under the owner's lock, the owner's pending devices made since the row first started
that no journalled row claims are the lost codes' devices; they are deleted, then a
fresh code is issued and journalled (with its device id) before the lock is released.
So a row leaves one pending device, never two, and each code row of an owner claims
its own device. A code answered without a device id (the documented answer has
none) is matched to its device the same way, under the same lock: the one unclaimed
pending device made since the row started. When that cannot be told, the row's tags
stay deferred; no device is ever guessed.

Codes from before this run are settled first, under the same lock (the decisions are
in ``pending.py``):

- a code this run replaces (``--fresh`` recorded it in the journal's ``void`` table,
  or ``--reissue-codes`` chose it) is voided once the new code is journalled: its
  pending device is deleted if it is still unactivated. One that was activated
  meanwhile is the row's device: the row is ``adopted`` and gets no new code;
- an earlier run's pending device of the row's model that nothing here accounts for
  means the owner already has a code out: the row is ``code_pending`` and gets no
  second code (unless ``--reissue-codes``).

``codes --renew`` replaces codes the same way (``renew_code_row``), in a journal of
its own: the old code's device is recorded to void before the new code is asked
for, and voided once the new code is journalled, so a renewal killed at any point
and run again loses no code and leaves no pending device that no row accounts for.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import replace

import structlog

from provisioner.errors import ApiError, NotFoundError, OutcomeUnknownError
from provisioner.live.code_rules import CodeEntry, is_activated, owner_key
from provisioner.models import Device, Outcome, Row, Status
from provisioner.run import pending, plan
from provisioner.run.journal import Journal, JournalEntry, Phase
from provisioner.run.plan import Step
from provisioner.run.steps import RowContext, RowFailedError, apply_tags, owner_devices
from provisioner.settings import Settings
from provisioner.webex.protocol import DevicesApi

__all__ = ["code_renewer", "provision_code_row", "renew_code_row"]

log = structlog.get_logger()


async def provision_code_row(
    ctx: RowContext,
    row: Row,
    entry: JournalEntry | None,
    previous: Outcome | None,
) -> Outcome:
    """
    Issue the row's activation code (or keep the one it has), then tag its device.

    The tags go on the pending device when it can be found for the owner; otherwise
    the outcome says ``tags_deferred`` and a later rerun applies them, keeping the code.
    """
    try:
        if entry is not None and entry.phase is Phase.CREATED and entry.outcome:
            base = entry.outcome
            # A crash may have come between the new code and voiding the old one.
            await _void_replaced(ctx, row)
        elif plan.can_reuse_code(previous, ctx.api.server_now()):
            assert previous is not None
            base = Outcome(
                row=row.number,
                status=Status.CODE_ISSUED,
                device_id=previous.device_id,
                activation_code=previous.activation_code,
                activation_expiry=previous.activation_expiry,
            )
        else:
            # A row journalled as started was caught mid-flight: its code may have
            # been issued, leaving a pending device whose code nobody holds.
            resumed = entry is not None and entry.phase is Phase.STARTED
            base = await _issue_code(ctx, row, suspect=resumed)
        if base.status is Status.CODE_PENDING or not row.tags:
            return base
        if base.status is Status.ADOPTED:
            await apply_tags(ctx, row, base, None)
            return base
        device = await _find_code_device(ctx, row, base)
        if device is None:
            untold = plan.UNTOLD_CODE_DEVICE if base.device_id is None else None
            return replace(base, tags_deferred=True, error=untold)
        base = replace(base, device_id=device.id)
        await apply_tags(ctx, row, base, device)
    except RowFailedError as failed:
        return failed.outcome
    return base


def code_renewer(
    api: DevicesApi,
    settings: Settings,
    journal: Journal,
    entries: Sequence[CodeEntry],
) -> Callable[[CodeEntry, AbstractAsyncContextManager[None]], Awaitable[Outcome]]:
    """
    The renewal of one row's code for ``codes --renew`` (``live.codes.renew_codes``
    calls it with the owner's lock), journalled in ``journal``.
    """
    owners: dict[tuple[str | None, str], list[int]] = {}
    for entry in entries:
        owners.setdefault(owner_key(entry.row), []).append(entry.row.number)

    async def renew(
        entry: CodeEntry, owner_lock: AbstractAsyncContextManager[None]
    ) -> Outcome:
        ctx = RowContext(
            api=api,
            settings=settings,
            journal=journal,
            owner_lock=owner_lock,
            owner_code_rows=tuple(owners[owner_key(entry.row)]),
        )
        return await renew_code_row(ctx, entry)

    return renew


async def renew_code_row(ctx: RowContext, entry: CodeEntry) -> Outcome:
    """
    Replace a row's activation code (``codes --renew``), journalled as a run's code.

    The old code's pending device is recorded to void before the new code is asked
    for, the new code is journalled (committed) before that device is deleted, and
    the row ends ``done`` with its new outcome. So a renewal stopped anywhere, a
    SIGKILL included, and run again finds what it did: a row journalled ``created``
    keeps its new code and voids the old one; a row journalled ``started`` first
    removes the device of a code whose answer was lost, then asks again; a row
    ``done`` is not renewed twice. The old code goes only once the new one is kept,
    and one used meanwhile stays the row's (no new code).

    Returns the row's outcome: the report's, with the new code and expiry (its tags
    deferred when they could not go on the new pending device), or ``failed`` naming
    the step, with the old code, when no new code could be issued.
    """
    row, old = entry.row, entry.outcome
    journalled = ctx.journal.entries_for([row.number]).get(row.number)
    if (
        journalled is not None
        and journalled.phase is Phase.DONE
        and journalled.outcome is not None
        and journalled.outcome.status is not Status.FAILED
    ):
        return journalled.outcome
    with ctx.api.tally() as tally:
        try:
            if (
                journalled is not None
                and journalled.phase is Phase.CREATED
                and journalled.outcome is not None
            ):
                base = journalled.outcome
                # Killed between the new code and voiding the old one.
                await _void_replaced(ctx, row)
            else:
                if (
                    entry.device is not None
                    and ctx.journal.void_for(row.number) is None
                ):
                    # Committed before the new code is asked for: whatever stops
                    # this renewal, the old device stays accounted for.
                    ctx.journal.add_void(entry.device.id, row.number)
                base = await _issue_code(
                    ctx, row, suspect=journalled is not None, renewal=True
                )
        except RowFailedError as failed:
            outcome = replace(
                old,
                status=Status.FAILED,
                error=failed.outcome.error,
                http_status=failed.outcome.http_status,
                tracking_id=failed.outcome.tracking_id,
            )
        else:
            if base.status is Status.ADOPTED:
                outcome = old  # the old code was used meanwhile: it stays the row's
            else:
                outcome = await _renewed(ctx, row, old, base)
        outcome = replace(outcome, attempts=old.attempts + tally.calls)
    ctx.journal.mark_done(outcome)
    return outcome


async def _renewed(ctx: RowContext, row: Row, old: Outcome, base: Outcome) -> Outcome:
    """
    The row's outcome with its new code, after its tags went on the new pending
    device (or, when they could not, with its tags deferred: the code stands).
    """
    deferred = bool(row.tags)
    if row.tags:
        try:
            device = await _find_code_device(ctx, row, base)
            if device is not None:
                base = replace(base, device_id=device.id)
                await apply_tags(ctx, row, base, device)
                deferred = False
        except RowFailedError as failed:
            log.warning("deferred_tags_failed", error=failed.outcome.error)
    log.info("code_renewed", expiry=base.activation_expiry)
    return replace(
        old,
        status=Status.CODE_ISSUED,
        device_id=base.device_id,
        activation_code=base.activation_code,
        activation_expiry=base.activation_expiry,
        error=None,
        http_status=None,
        tracking_id=None,
        tags_deferred=deferred,
    )


async def _issue_code(
    ctx: RowContext, row: Row, *, suspect: bool, renewal: bool = False
) -> Outcome:
    """
    Issue and journal an activation code, first removing the device of a lost one.

    ``suspect``: an earlier code for this row may have been issued unseen. The owner's
    lock is held from the search for its device to the journalling of the new code, so
    no other row of the owner issues a code (or claims a device) in between. A lost
    answer within the run makes the next attempt suspect too (bounded).

    ``renewal``: the code replaces the row's own (``codes --renew``): only the code
    recorded to void is settled, never the owner's other pending devices.
    """
    base = Outcome(row=row.number, status=Status.FAILED)
    step = Step.RENEW_CODE if renewal else Step.CODE
    last: ApiError | None = None
    async with ctx.owner_lock:
        await ctx.journal.start(row.number)
        if suspect:
            # Before anything is settled: a lost code's device goes whatever the
            # old code's fate (one used meanwhile still leaves the lost one behind).
            await _remove_lost_code_devices(ctx, row, base)
            suspect = False
        settled = await _settle_earlier_code(ctx, row, base, step, renewal=renewal)
        if settled is not None:
            return settled
        for attempt in range(1, plan.MAX_CREATES + 1):
            if suspect:
                await _remove_lost_code_devices(ctx, row, base)
            try:
                code = await ctx.api.create_activation_code(
                    model=row.api_model,
                    workspace_id=row.workspace_id,
                    person_id=row.person_id,
                    org_id=ctx.org(row),
                )
            except OutcomeUnknownError as error:
                log.info("code_answer_lost", status=error.status, attempt=attempt)
                suspect, last = True, error
                continue
            except ApiError as error:
                failed = plan.failed_outcome(base, step, error)
                if plan.may_have_taken_effect(error):
                    await _remove_lost_code_devices_quietly(ctx, row, base)
                raise RowFailedError(failed) from error
            device_id = code.device_id
            if device_id is None:
                device_id = await _identify_code_device(ctx, row)
            outcome = Outcome(
                row=row.number,
                status=Status.CODE_ISSUED,
                device_id=device_id,
                activation_code=code.code,
                activation_expiry=code.expiry_time,
            )
            # Journalled before the lock is released: the owner's next row must see
            # this device as claimed.
            ctx.journal.mark_created(outcome)
            await _void_replaced(ctx, row)
            return outcome
        assert last is not None
        await _remove_lost_code_devices_quietly(ctx, row, base)
    raise RowFailedError(plan.failed_outcome(base, step, last))


async def _settle_earlier_code(
    ctx: RowContext, row: Row, base: Outcome, step: Step, *, renewal: bool
) -> Outcome | None:
    """
    Decide about the codes from before this run, under the owner's lock.

    Returns the row's outcome when it gets no new code (its replaced code was used
    meanwhile: ``adopted``; the owner already has one out: ``code_pending``), else
    None (after recording, with ``--reissue-codes``, which code the new one voids).
    A ``renewal`` looks at the code it replaces only: the owner's other pending
    devices are other rows' codes.
    """
    org = ctx.org(row)
    replaced = ctx.journal.void_for(row.number)
    try:
        if replaced is not None:
            try:
                old = await ctx.api.get_device(replaced, org_id=org)
            except NotFoundError:
                ctx.journal.forget_void(replaced)
                return None
            if not is_activated(old):
                return None  # voided once the new code is journalled
            ctx.journal.forget_void(replaced)
            log.info("replaced_code_was_used", device_id=old.id)
            return Outcome(row=row.number, status=Status.ADOPTED, device_id=old.id)
        if renewal:
            return None
        devices = [d async for d in owner_devices(ctx, row)]
    except ApiError as error:
        raise RowFailedError(plan.failed_outcome(base, step, error)) from error
    own = ctx.journal.entries_for([row.number]).get(row.number)
    claimed = ctx.journal.claimed_devices() - {own.device_id if own else None}
    earlier = pending.earlier_pending(
        devices, row, {d for d in claimed if d}, ctx.journal.created_at
    )
    if not earlier:
        return None
    if ctx.settings.reissue_codes:
        ctx.journal.add_void(earlier[0].id, row.number)
        return None
    log.info("code_pending", device_id=earlier[0].id)
    return pending.code_pending_outcome(row, earlier[0])


async def _void_replaced(ctx: RowContext, row: Row) -> None:
    """
    Void the code this row's new code replaces: delete its pending device, unless it
    was activated meanwhile (then it is a real device and stays).
    """
    replaced = ctx.journal.void_for(row.number)
    if replaced is None:
        return
    org = ctx.org(row)
    try:
        old = await ctx.api.get_device(replaced, org_id=org)
        if is_activated(old):
            log.warning("replaced_code_was_used", device_id=replaced)
        else:
            await ctx.api.delete_device(replaced, org_id=org)
            ctx.voided.append(replaced)
            log.info("code_voided", device_id=replaced)
    except NotFoundError:
        pass  # already gone: nothing left to void
    except ApiError as error:
        # The new code stands; the old one stays recorded, for the next run to void.
        log.warning("code_not_voided", device_id=replaced, status=error.status)
        return
    ctx.journal.forget_void(replaced)


async def _remove_lost_code_devices(ctx: RowContext, row: Row, base: Outcome) -> None:
    """
    Delete the pending devices that lost activation codes of this row left behind.

    Called with the owner's lock held. When some code row of the owner holds a code
    but no device id (an API that does not answer one), a lost code's device cannot be
    told from that row's, so nothing is deleted.
    """
    since = ctx.journal.started_at(row.number)
    if since is None:
        return
    entries = ctx.journal.entries_for(ctx.owner_code_rows)
    claimed = {e.device_id for e in entries.values() if e.device_id}
    unclaimed = [
        number
        for number, e in entries.items()
        if number != row.number
        and e.outcome is not None
        and e.outcome.activation_code
        and not e.device_id
    ]
    try:
        devices = [d async for d in owner_devices(ctx, row)]
    except ApiError as error:
        raise RowFailedError(
            plan.failed_outcome(base, Step.LOST_CODE, error)
        ) from error
    lost = plan.lost_code_devices(devices, since, claimed)
    if not lost:
        return
    if unclaimed:
        log.warning(
            "lost_code_device_kept",
            devices=len(lost),
            rows_without_device_id=len(unclaimed),
        )
        return
    for device in lost:
        try:
            await ctx.api.delete_device(device.id, org_id=ctx.org(row))
        except NotFoundError:
            pass  # already gone: what the delete was for
        except ApiError as error:
            raise RowFailedError(
                plan.failed_outcome(base, Step.LOST_CODE, error)
            ) from error
        log.info("lost_code_device_deleted", device_id=device.id)


async def _remove_lost_code_devices_quietly(
    ctx: RowContext, row: Row, base: Outcome
) -> None:
    """
    Remove a lost code's device before the row fails; the code's failure is the news.
    """
    try:
        await _remove_lost_code_devices(ctx, row, base)
    except RowFailedError as failed:
        log.warning("lost_code_device_not_removed", error=failed.outcome.error)


async def _identify_code_device(ctx: RowContext, row: Row) -> str | None:
    """
    Find the device of a code the API answered without a device id, or None.

    Called with the owner's lock held, before the code is journalled: the owner's
    other code rows have journalled their devices, so the one unclaimed pending
    device made since this row started is this code's. Journalled with the code, it
    is claimed from then on, and the tags can go on it now or in a later rerun.
    """
    since = ctx.journal.started_at(row.number)
    if since is None:
        return None
    entries = ctx.journal.entries_for(ctx.owner_code_rows)
    claimed = {e.device_id for e in entries.values() if e.device_id}
    try:
        devices = [d async for d in owner_devices(ctx, row)]
    except ApiError as error:
        log.info("code_device_not_identified", status=error.status)
        return None
    found = plan.new_code_device(devices, since, claimed)
    return None if found is None else found.id


async def _find_code_device(ctx: RowContext, row: Row, base: Outcome) -> Device | None:
    """
    Find the device an activation code made, by its id; None when it has none.

    Without an id nothing is guessed: the owner's one pending device need not be
    this code's (another tool's, or another row's while this one has activated), and
    tags on it would be on the wrong device. The tags then stay deferred.
    """
    if base.device_id is None:
        return None
    try:
        return await ctx.api.get_device(base.device_id, org_id=ctx.org(row))
    except NotFoundError:
        return None
    except ApiError as error:
        raise RowFailedError(plan.failed_outcome(base, Step.TAGS, error)) from error
