"""
Carry one row through its calls: create or adopt, apply tags, dry-run.

Activation-code rows have their own module, ``code_rows.py``; what both kinds share
(the ``RowContext``, tags, the owner's devices) is here.

Each function takes a ``RowContext`` (the API, the settings, the journal and the row's
owner lock) and returns the row's Outcome; an ``ApiError`` from any call becomes a
failed Outcome naming the step, never an exception. The decisions are in ``plan.py``;
these functions await calls, journal what happened, and delegate.

Unknown outcomes: when a create may or may not have happened (``OutcomeUnknownError``),
or a resumed row was caught mid-flight (journal phase ``started``), the device is looked
up by MAC before anything else. Found with the row's owner and stamped after the row
first started: the create was ours, and the row reports ``created`` (this run, or the
journalled one, sent that create); stamped before: the device was there already
(``adopted``: a rollback never deletes it). Found with another owner: failed, naming
the owner. Not found: the create did not happen, so it is sent again, at most
``plan.MAX_CREATES`` times in all. An adopted device of another model than the row
says is kept as it is (the API cannot change a model), and the row's ``error`` cell
says so (``live.adoption``); the row is still ``adopted``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, replace
from datetime import datetime

import structlog

from provisioner.errors import (
    ApiError,
    MacInUseError,
    OutcomeUnknownError,
    TransientError,
)
from provisioner.live.adoption import (
    adopted_model_note,
    model_name,
    other_model,
    planned_model_note,
)
from provisioner.models import Device, Outcome, Row, Status
from provisioner.run import pending, plan
from provisioner.run.journal import Journal, JournalEntry, Phase
from provisioner.run.plan import Step, Verdict
from provisioner.settings import Settings
from provisioner.tags import tags_to_send
from provisioner.webex.protocol import DevicesApi, SupportedModel

__all__ = [
    "OwnerCache",
    "RowContext",
    "RowFailedError",
    "apply_tags",
    "dry_run_row",
    "owner_devices",
    "provision_mac_row",
]

log = structlog.get_logger()

#: Owner id → the error its lookup raised, or None when it exists (the dry run's cache).
OwnerCache = dict[str, ApiError | None]


class RowFailedError(Exception):
    """
    A step failed; ``outcome`` is the row's failed Outcome (internal control flow).
    """

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.error)
        self.outcome = outcome


@dataclass(frozen=True, slots=True, kw_only=True)
class RowContext:
    """
    What a row's steps need: the API, the settings, the journal and the owner's lock.
    """

    api: DevicesApi
    settings: Settings
    journal: Journal
    #: Held around the row's create or activation-code call (the owner's turn).
    owner_lock: AbstractAsyncContextManager[None]
    supported: tuple[SupportedModel, ...] = ()
    #: Every activation-code row of this row's owner (this one included): the rows
    #: whose journalled device ids a lost code's device is told apart from.
    owner_code_rows: tuple[int, ...] = ()
    #: The run's list of voided codes' devices (replaced codes deleted), shared.
    voided: list[str] = field(default_factory=list)
    #: A dry run's earlier pending devices already matched to a row, shared.
    dry_run_claimed: set[str] = field(default_factory=set)
    #: When the rollout's earlier commands ran (a rerun's report's history): a device
    #: made then by a create whose answer they lost is the rollout's own.
    earlier: tuple[tuple[datetime, datetime], ...] = ()
    #: The orgs a partner's run acts for (their keys): where a MAC another org holds
    #: may be found, to name it.
    orgs: tuple[str | None, ...] = ()

    def org(self, row: Row) -> str | None:
        """
        The org a row's calls go to: its own orgId, else the run's.
        """
        return row.org_id or self.settings.org_id


# -- MAC rows -----------------------------------------------------------------------


async def provision_mac_row(
    ctx: RowContext,
    row: Row,
    entry: JournalEntry | None,
    previous: Outcome | None = None,
) -> Outcome:
    """
    Create (or find) the row's device by MAC, then apply its tags.

    A rerun of a row that already has a device (it failed at tags) looks the MAC up
    first instead of sending a create that would only answer "MAC in use".
    """
    base = Outcome(row=row.number, status=Status.CREATED)
    device: Device | None = None
    try:
        if entry is not None and entry.phase is Phase.CREATED and entry.outcome:
            base = entry.outcome
        else:
            # A row journalled as started was caught mid-flight: its create may have
            # happened, so it is reconciled like an unknown outcome.
            # So is a rerun's row whose earlier create lost its answer every time.
            resumed = (
                entry is not None and entry.phase is Phase.STARTED
            ) or plan.create_answer_lost(previous)
            had_device = previous is not None and previous.device_id is not None
            await ctx.journal.start(row.number)
            device, status = await _obtain_device(
                ctx, row, unknown=resumed, look_first=resumed or had_device
            )
            status = plan.rerun_status(status, device.id, previous)
            base = Outcome(
                row=row.number,
                status=status,
                device_id=device.id,
                error=_adopted_model_note(ctx, row, device, status),
            )
            ctx.journal.mark_created(base)
        await apply_tags(ctx, row, base, device)
    except RowFailedError as failed:
        return failed.outcome
    return base


async def _obtain_device(
    ctx: RowContext, row: Row, *, unknown: bool, look_first: bool
) -> tuple[Device, Status]:
    """
    Create the device, or find it when its create may already have happened.

    ``unknown``: a create of ours may have taken effect, so a device found with the
    row's owner is reported ``created`` if it was made after the row first started.
    ``look_first``: look the MAC up before the first create.
    """
    assert row.mac is not None
    assert row.model is not None
    base = Outcome(row=row.number, status=Status.FAILED)
    last: ApiError | None = None
    for _ in range(plan.MAX_CREATES):
        if unknown or look_first:
            found = await _look_up(ctx, row, base)
            if found is not None:
                return _claim(row, found, base, _found_status(ctx, row, found, unknown))
            look_first = False
        try:
            async with ctx.owner_lock:
                device = await ctx.api.create_device(
                    mac=row.mac,
                    model=row.model,
                    workspace_id=row.workspace_id,
                    person_id=row.person_id,
                    password=row.password,
                    org_id=ctx.org(row),
                )
        except MacInUseError as error:
            found = await _look_up(ctx, row, base)
            if found is None:
                text = await _held_elsewhere(ctx, row) or (
                    "the MAC is registered, but to no device this token can see "
                    "(another organisation?); release it there or correct the row's mac"
                )
                raise RowFailedError(
                    plan.failed_outcome(base, Step.CREATE, error, text)
                ) from error
            # The owner's own device is adopted; another owner's fails the row,
            # which keeps the status (and tracking id) of the create's refusal.
            status = _found_status(ctx, row, found, unknown)
            return _claim(row, found, base, status, refused=error)
        except OutcomeUnknownError as error:
            log.info("create_answer_lost", status=error.status)
            unknown, last = True, error
            continue
        except ApiError as error:
            raise RowFailedError(
                plan.failed_outcome(base, Step.CREATE, error)
            ) from error
        return device, Status.CREATED
    assert last is not None
    raise RowFailedError(plan.failed_outcome(base, Step.CREATE, last))


def _found_status(ctx: RowContext, row: Row, found: Device, unknown: bool) -> Status:
    """
    ``created`` when a lost create of this row made the device, else ``adopted``.
    """
    since = ctx.journal.started_at(row.number)
    return plan.found_status(found, since, unknown=unknown, earlier=ctx.earlier)


def _adopted_model_note(
    ctx: RowContext, row: Row, device: Device, status: Status
) -> str | None:
    """
    The words beside a row whose adopted device the org holds as another model (its
    model cannot be changed: the person must know the org's device is not the row's).
    """
    if status is not Status.ADOPTED or row.model is None:
        return None
    org_has = other_model(device.product, row.model, ctx.supported)
    if org_has is None:
        return None
    return adopted_model_note(model_name(row.model, ctx.supported), org_has)


def _claim(
    row: Row,
    found: Device,
    base: Outcome,
    status: Status,
    *,
    refused: ApiError | None = None,
) -> tuple[Device, Status]:
    """
    Take a device found by MAC as the row's own, or fail the row naming its owner
    (and, ``refused``, the API's refusal of the row's create that led to the look).
    """
    if plan.judge_found_device(found, row) is Verdict.OURS:
        return found, status
    text = plan.other_owner_text(found)
    raise RowFailedError(plan.failed_outcome(base, Step.CREATE, refused, text))


async def _held_elsewhere(ctx: RowContext, row: Row) -> str | None:
    """
    Name the device of another org of the run that holds the row's MAC, if one does
    (a partner's run: the MAC typed on two customers' rows, or moved between them).
    """
    assert row.mac is not None
    for org in ctx.orgs:
        if org == ctx.org(row):
            continue
        try:
            device = await ctx.api.find_device_by_mac(row.mac, org_id=org)
        except ApiError:
            continue
        if device is not None:
            where = org or "the token's own org"
            return (
                f"the MAC is registered in org {where} (another org of this run) as "
                f"device {device.id}; delete that device there first if it is to "
                "move, or correct the row's mac"
            )
    return None


async def _look_up(ctx: RowContext, row: Row, base: Outcome) -> Device | None:
    """
    Find the device with the row's MAC; a lookup is idempotent, so retry it a little.
    """
    assert row.mac is not None
    for attempt in range(1, plan.MAX_LOOKUPS + 1):
        try:
            return await ctx.api.find_device_by_mac(row.mac, org_id=ctx.org(row))
        except TransientError as error:
            if attempt == plan.MAX_LOOKUPS:
                raise RowFailedError(
                    plan.failed_outcome(base, Step.LOOKUP, error)
                ) from error
        except ApiError as error:
            raise RowFailedError(
                plan.failed_outcome(base, Step.LOOKUP, error)
            ) from error
    raise AssertionError("unreachable")  # pragma: no cover


async def apply_tags(
    ctx: RowContext, row: Row, base: Outcome, device: Device | None
) -> None:
    """
    Send the row's tags to its device (none: no call); a failure keeps the device id.
    """
    if not row.tags or base.device_id is None:
        return
    org = ctx.org(row)
    try:
        if device is None:
            device = await ctx.api.get_device(base.device_id, org_id=org)
        tags = tags_to_send(device.tags, row.tags, ctx.settings.tag_mode)
        if tags is not None:
            await ctx.api.modify_tags(
                base.device_id, mode="replace", tags=tags, org_id=org
            )
    except ApiError as error:
        raise RowFailedError(
            plan.failed_outcome(base, plan.tags_step(base), error)
        ) from error


def owner_devices(ctx: RowContext, row: Row) -> AsyncIterator[Device]:
    """
    List the devices of the row's owner.
    """
    org = ctx.org(row)
    if row.workspace_id:
        return ctx.api.list_devices(org_id=org, workspace_id=row.workspace_id)
    return ctx.api.list_devices(org_id=org, person_id=row.person_id or "")


# -- dry run --------------------------------------------------------------------------


async def dry_run_row(
    ctx: RowContext, row: Row, owners: OwnerCache, entry: JournalEntry | None = None
) -> Outcome:
    """
    Check a row with read calls only and say what a real run would do with it.

    ``entry`` is where a real run would continue the row from (the journal of the
    report it would write, read by the dry run): a row an interrupted run left
    ``created`` keeps its device or code; one left ``started`` has its MAC looked
    up as a real run would, and a device its create made is the run's own.
    """
    base = Outcome(row=row.number, status=Status.PLANNED)
    if entry is not None and entry.phase is Phase.CREATED and entry.outcome:
        return replace(base, plan=plan.continued_text(row, entry.outcome))
    made_by_run = False
    try:
        # The model was judged against the org's own list before the rows ran
        # (``live.rules.with_catalogue``): an unsupported one made the row invalid.
        await _check_owner(ctx, row, owners, base)
        found: Device | None = None
        earlier: Device | None = None
        if row.mac is not None:
            found = await _look_up(ctx, row, base)
            if found is not None:
                _claim(row, found, base, Status.PLANNED)
                # Caught mid-flight, the row's own create may have made it.
                resumed = entry is not None and entry.phase is Phase.STARTED
                made_by_run = resumed and (
                    _found_status(ctx, row, found, resumed) is Status.CREATED
                )
        else:
            earlier = await _earlier_code(ctx, row, base)
    except RowFailedError as failed:
        return failed.outcome
    text = plan.dry_run_text(
        row,
        found,
        earlier,
        reissue=ctx.settings.reissue_codes,
        made_by_run=made_by_run,
    )
    note = None if made_by_run else _planned_model_note(ctx, row, found)
    if note is not None:
        text = f"{text}, {note}"
    return replace(base, plan=text)


def _planned_model_note(ctx: RowContext, row: Row, found: Device | None) -> str | None:
    """
    The words beside a row whose device to adopt the org holds as another model (as
    the run's ``_adopted_model_note``: a device the run's own create made is not).
    """
    if found is None or row.model is None:
        return None
    org_has = other_model(found.product, row.model, ctx.supported)
    if org_has is None:
        return None
    return planned_model_note(model_name(row.model, ctx.supported), org_has)


async def _earlier_code(ctx: RowContext, row: Row, base: Outcome) -> Device | None:
    """
    The pending device of an earlier code a real run would find for this code row.

    Under the owner's lock, each of the owner's rows takes its own (as a real run's
    rows claim theirs). The devices the journal's rows claim are theirs, and only a
    device older than the journal is an earlier run's, as in a real run
    (``code_rows._settle_earlier_code``).
    """
    async with ctx.owner_lock:
        try:
            devices = [d async for d in owner_devices(ctx, row)]
        except ApiError as error:
            raise RowFailedError(plan.failed_outcome(base, Step.CODE, error)) from error
        own = ctx.journal.entries_for([row.number]).get(row.number)
        claimed = ctx.journal.claimed_devices() - {own.device_id if own else None}
        earlier = pending.earlier_pending(
            devices,
            row,
            {d for d in claimed if d} | ctx.dry_run_claimed,
            ctx.journal.created_at,
        )
        if earlier:
            ctx.dry_run_claimed.add(earlier[0].id)
            return earlier[0]
    return None


async def _check_owner(
    ctx: RowContext, row: Row, owners: OwnerCache, base: Outcome
) -> None:
    owner_id = row.owner_id
    assert owner_id is not None
    # The owner lock makes a second row of the same owner wait for the first lookup
    # and read its answer: each distinct owner is looked up once.
    async with ctx.owner_lock:
        if owner_id not in owners:
            try:
                if row.workspace_id:
                    await ctx.api.get_workspace(owner_id, org_id=ctx.org(row))
                else:
                    await ctx.api.get_person(owner_id, org_id=ctx.org(row))
            except ApiError as error:
                owners[owner_id] = error
            else:
                owners[owner_id] = None
    refused = owners[owner_id]
    if refused is not None:
        raise RowFailedError(plan.failed_outcome(base, Step.OWNER, refused))
