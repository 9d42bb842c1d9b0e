"""
Take a run back out of the org: read each device the report says the run made, and
delete it if it is still what the run made.

``roll_back`` is the shell around ``rollback_rules``: it learns its target first
(who the token is, which org: a wrong URL or a refused token stops it there), plans
(pure), keeps what the run journals say the run did not make, whatever the report
says (``rollback_trust``; the journals are read, never taken), checks each other
org a partner run's report names once (``_Orgs``: a refused org's rows fail with
its reason, no call made for them), then runs a pool of workers over the
candidates twice. First each reads its device, as a dry run does (a lost create's
row looks its MAC up, and ``judge_lost_create`` says whether the device found is
the rollout's), and lets ``judge`` decide (and, for a row no journal confirms,
``judge_age``: a device made before the rollout is kept). Then ``before_deletes``
(the CLI's confirmation) is asked about the devices those reads found to delete, in
all and org by org: the count its dry run plans, never the devices the report
names. Then they are deleted, a code's pending device read again first (someone may
enter the code while the person answers);
every request goes through the client's rate controller and retries (a DELETE is
idempotent: a retry that finds the device gone counts as done). The journal records each delete before it is sent and
each result after, so running the same command after a kill continues without
deleting anything twice or losing track of what it deleted. Setting ``stop`` starts no new row; rows in flight finish.

Once the deletes are done, the run journals that recorded the report's rows
(``run_journals.run_journals``: the one beside REPORT, and those of the reports its reruns read)
forget every row whose device is now gone (``Journal.forget_devices``), each under
its lock, so the same run command provisions those rows again instead of taking
them for done. While it deletes, a rollback holds those journals' locks too, so it
never deletes while a run (or rerun, or renewal) of the report's rows is at work:
the one that comes second stops before any write. It lets them go before they
forget; a journal another command took in between is left as it was and named in
the result (``RunJournalChange.left``); running the same rollback again once it is
free forgets them then (the rows gone for sure are taken from the rollback's
journal).
A report a run moved aside (``<name>-replaced-<time>``) has no journal beside it:
the journal of the report it was moved from speaks for it when the run that moved
it continued that journal, and is otherwise (started over since: ``--fresh``) only
made to forget the rows naming devices that are gone (``RunJournals``).
A report ``codes --renew`` wrote (``<name>-renewed[-N]``) has no run journal either
(the renewal's own goes once the report is written): the journals of the reports
the renewals read speak for it, and as they still name the devices of the codes a
renewal replaced (voided, so gone), a row whose renewed device is gone is forgotten
by that device too (``run_journals.forget_gone``).
When no run journal is found at all (REPORT a copy, its run's journal left in the
folder the run wrote it to), the rows whose devices are gone (planned, in a dry
run) are counted (``RollbackRun.unforgotten``): nothing else can tell that run its
rows are undone, so the CLI says what to do.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import anyio
import structlog
from anyio.abc import ObjectReceiveStream

from provisioner.errors import (
    ApiError,
    AuthError,
    ConfigError,
    ForbiddenError,
    NotFoundError,
    TransientError,
)
from provisioner.inventory.first_call import open_api
from provisioner.inventory.rollback_journal import RollbackEntry, RollbackJournal
from provisioner.inventory.rollback_rules import (
    Candidate,
    Delete,
    RollbackResult,
    RollbackStats,
    RollbackStatus,
    after_delete,
    after_error,
    judge,
    judge_lost_create,
    not_started,
    plan_rollback,
    planned,
    planned_changes,
    refused_org,
)
from provisioner.inventory.rollback_trust import judge_age, trust_journals
from provisioner.inventory.run_journals import (
    RunJournalChange,
    forget_gone,
    journal_records,
    speaking,
    undone_rows,
)
from provisioner.live.code_rules import with_report_owners
from provisioner.live.orgs import LIST_DEVICES, OrgAccess, org_id_refusal, org_key
from provisioner.live.preflight import first_device_refused, survey_orgs
from provisioner.models import (
    Changes,
    Manifest,
    OrgChanges,
    OrgInfo,
    Outcome,
    Target,
)
from provisioner.run.journal import hold_journals
from provisioner.run.orgs import is_multi_org
from provisioner.settings import Settings
from provisioner.webex.protocol import DevicesApi

__all__ = ["RollbackProgress", "RollbackRun", "roll_back"]

log = structlog.get_logger()

#: Why a rollback stops while a run of its report's rows is at work.
DELETING = (
    "(a run of the rows this rollback deletes): deleting them while it works would "
    "leave it taking them for done, or making them again. Wait for it to finish, "
    "then run this rollback again"
)

#: What to do with a refused org's rows once a token that may act for it is at hand.
ROLL_BACK_ROWS = "roll its rows back"

#: How the reads before the confirmation ended the rows not to delete, by status.
_Read = Mapping[RollbackStatus, int]


@dataclass(frozen=True, slots=True, kw_only=True)
class RollbackProgress:
    """
    A snapshot of a rollback, handed to ``on_progress`` as rows finish (the run's
    progress display reads it like a run's).
    """

    total: int
    done: int
    counts: Mapping[RollbackStatus, int]
    api_calls: int
    rate_limited: int
    current_rate: float | None
    elapsed: float


@dataclass(frozen=True, slots=True, kw_only=True)
class RollbackRun:
    """
    What a rollback ended with: one result per report row, in report order.
    """

    results: dict[int, RollbackResult]
    stats: RollbackStats
    target: Target
    #: The token was refused (401) after rows had begun: the rest did not start.
    token_refused: bool = False
    #: The run journals that forgot rows (or could not), in ``run_journals`` order.
    journals: tuple[RunJournalChange, ...] = ()
    #: Rows whose devices are gone (a dry run: would go) that no run journal was
    #: found to forget: the run that wrote the report, its journal elsewhere (the
    #: report a copy), still takes them for done.
    unforgotten: int = 0

    @property
    def interrupted(self) -> bool:
        return self.stats.interrupted


async def roll_back(
    manifest: Manifest,
    outcomes: Mapping[int, Outcome],
    settings: Settings,
    *,
    api: DevicesApi | None = None,
    journal_path: Path | None = None,
    run_journals: Sequence[Path] = (),
    forget_only: Sequence[Path] = (),
    renewal: bool = False,
    include_activated: bool = False,
    dry_run: bool = False,
    on_progress: Callable[[RollbackProgress], None] | None = None,
    stop: anyio.Event | None = None,
    before_deletes: Callable[[Target, Changes], None] | None = None,
    earlier: Sequence[tuple[datetime, datetime]] = (),
) -> RollbackRun:
    """
    Roll back the rows of a run's report; return every row's result.

    Args:
        manifest, outcomes: the report, as ``load_report`` reads it.
        api: the Devices API; None opens an ``ApiClient(settings)``. Either way the
            first call learns the target (``first_call.open_api``).
        journal_path: the journal file; None keeps it in memory (no resume). A dry
            run keeps none.
        run_journals: the journals of the run (and reruns) that wrote the report
            (``run_journals``). What they recorded is read first (a dry run too): a
            row they record, none as the run's own device, is kept whatever the
            report says. Then each forgets the rows whose devices are gone, so the
            same run command does them again. A dry run changes none.
        forget_only: run journals only made to forget those rows, their word on the
            report's rows not taken (``RunJournals.forget_only``).
        renewal: REPORT is a renewal's (``RunJournals.renewal``): a code row whose
            device is gone is forgotten by the device the journals name for it too.
        include_activated: delete a code's device even when it was activated.
        dry_run: read only; a device that would be deleted is ``planned``.
        before_deletes: called once before the first delete, after every device
            was read, with the target and the devices those reads found to delete
            (what a dry run plans); it may raise (``NotConfirmedError``) to stop
            before any write.
        earlier: when the rollout's commands ran (start, end: the report's run
            history): a device a lost create's row finds by MAC is the rollout's
            own only if the API made it then, and a device the API made before the
            first of them is not, unless a run journal says it is.

    Raises:
        AuthError, ForbiddenError: the token was refused on the first call.
        TransientError: the API could not be reached (quickly, on the first call).
        ConfigError: the journal belongs to another target, or the base URL is not
            the API.
        JournalBusyError: another command holds one of ``run_journals`` or
            ``forget_only`` (not a dry run), before any call.
    """
    shell = _Rollback(
        rows=tuple(row.number for row in manifest.rows),
        settled={},
        include_activated=include_activated,
        dry_run=dry_run,
        concurrency=settings.concurrency,
        on_progress=on_progress,
        stop=stop or anyio.Event(),
        earlier=tuple(earlier),
    )
    forgetting = (*run_journals, *forget_only)
    async with contextlib.AsyncExitStack() as stack:
        if not dry_run:
            # No run of the report's rows works while this deletes them (it would
            # take them for done, or make them again): held from before the first
            # call, and let go before the journals are made to forget, each then
            # taken again under its own lock.
            stack.enter_context(hold_journals(forgetting, reason=DELETING))
        opened = await open_api(stack, settings, api)
        api, target, shell.probed = opened.api, opened.target, opened.probed
        # Keyed as the run journalled them: a row naming its owner by name under
        # the id the run resolved it to (the report's owner cell).
        as_run = with_report_owners(manifest, outcomes).rows
        records = journal_records(run_journals, target, as_run)
        plan = trust_journals(plan_rollback(manifest, outcomes), records)
        shell.settled.update(plan.settled)
        path = None if dry_run else journal_path
        journal = stack.enter_context(RollbackJournal.open(path, target))
        entries = journal.entries()
        taken = _taken_by_row(entries)
        found = tuple(_journalled(c, taken) for c in plan.candidates)
        left = [c for c in found if not _is_gone(entries, c)]
        orgs = _Orgs(default=settings.org_id, home=target)
        await orgs.check(api, left, concurrency=settings.concurrency)
        refused = orgs.refused_results(left)
        shell.settled.update(refused)

        def confirm(doomed: Sequence[Candidate], read: _Read) -> None:
            if before_deletes is not None and not dry_run:
                changes = orgs.changes(left, doomed, read, include_activated)
                before_deletes(target, changes)

        candidates = tuple(c for c in found if c.row not in refused)
        await shell.execute(api, journal, candidates, entries, confirm=confirm)
        run = shell.finish(api, target)
    if not speaking(forgetting, target):
        run = replace(run, unforgotten=undone_rows(run.results))
    if dry_run:
        return run
    renewed = as_run if renewal else ()
    journals = forget_gone(forgetting, target, run.results, renewed=renewed)
    return replace(run, journals=journals)


@dataclass(kw_only=True)
class _Orgs:
    """
    The orgs a rollback deletes in, when the report's rows name several (a
    partner's run): each checked once, named, and confirmed with its own counts.

    ``default`` is where rows without ``orgId`` go (``--org-id``; None: the token's
    own org: a row that spells its id out goes there too); ``home`` is that org as
    the first call found it.
    """

    default: str | None
    home: Target
    access: dict[str | None, OrgAccess] = field(default_factory=dict)

    def key(self, candidate: Candidate) -> str | None:
        return org_key(candidate.org_id, self.default, self.home.org_id)

    async def check(
        self, api: DevicesApi, left: list[Candidate], *, concurrency: int
    ) -> None:
        """
        Check the orgs the devices left to roll back are in, before any delete.

        The org ``--org-id`` names is the rollback's own: when the token may not act
        for it (or no such org exists) nothing starts, naming the flag, as a run
        does. Any other org that refuses fails its own rows, and the rest go on.
        """
        keys = list(dict.fromkeys(self.key(candidate) for candidate in left))
        if self.default is not None:
            # Checked even when no device left is there: the rollback acts in the
            # org --org-id names, and one it may not act for stops it, as a run.
            error = await first_device_refused(api, self.default)
            if error is not None:
                raise ConfigError(
                    org_id_refusal(self.default, error, read=LIST_DEVICES)
                )
        if not is_multi_org(keys, self.default):
            return
        home = OrgInfo(key=self.default, id=self.home.org_id, name=self.home.org_name)
        self.access = {self.default: OrgAccess(info=home)}
        others = [key for key in keys if key != self.default]
        self.access.update(
            await survey_orgs(api, others, concurrency=concurrency, then=ROLL_BACK_ROWS)
        )

    def refused_results(self, left: list[Candidate]) -> dict[int, RollbackResult]:
        """
        The rows of refused orgs: failed with their org's reason, no call made.
        """
        results = {}
        for candidate in left:
            access = self.access.get(self.key(candidate))
            if access is not None and access.is_refused:
                reason = access.info.refused or ""
                results[candidate.row] = refused_org(candidate, reason, access.error)
        return results

    def changes(
        self,
        left: list[Candidate],
        doomed: Sequence[Candidate],
        read: _Read,
        include_activated: bool,
    ) -> Changes:
        """
        What the rollback will delete, in all and (several orgs) org by org: the
        devices its reads found to delete (``doomed``), of the rows ``left``.
        """
        counts: Counter[str | None] = Counter(self.key(c) for c in left)
        deleting: Counter[str | None] = Counter(self.key(c) for c in doomed)
        orgs: list[OrgChanges] = []
        for key, rows in counts.items():
            access = self.access.get(key)
            if access is not None:
                refused = access.is_refused
                share = Changes() if refused else Changes(deletions=deleting[key])
                orgs.append(OrgChanges(org=access.info, rows=rows, changes=share))
        codes = not include_activated and any(c.is_code for c in doomed)
        return planned_changes(len(doomed), orgs, read=read, codes=codes)


def _entry(
    entries: Mapping[str, RollbackEntry], candidate: Candidate
) -> RollbackEntry | None:
    if candidate.device_id is None:
        return None
    return entries.get(candidate.device_id)


def _is_gone(entries: Mapping[str, RollbackEntry], candidate: Candidate) -> bool:
    entry = _entry(entries, candidate)
    return (
        entry is not None and entry.result is not None and entry.result.status.is_gone
    )


def _taken_by_row(entries: Mapping[str, RollbackEntry]) -> dict[int, str]:
    """
    For each row, the device an earlier (interrupted) rollback began deleting or
    deleted, as its journal names it: read once, not once per candidate.
    """
    taken: dict[int, str] = {}
    for entry in entries.values():
        if entry.row is None:
            continue
        if entry.delete_sent or (
            entry.result is not None and entry.result.status.is_gone
        ):
            taken.setdefault(entry.row, entry.device_id)
    return taken


def _journalled(candidate: Candidate, taken: Mapping[int, str]) -> Candidate:
    """
    A lost create's row whose device an earlier, interrupted rollback found by MAC and
    began deleting (or deleted): that device, as the journal names it, so the row
    reads as deleted rather than as finding no device now.
    """
    if candidate.device_id is not None or candidate.row not in taken:
        return candidate
    return replace(candidate, device_id=taken[candidate.row])


@dataclass(kw_only=True)
class _Rollback:
    """
    The state of one rollback: results so far, counts and figures for progress.
    """

    rows: tuple[int, ...]
    settled: dict[int, RollbackResult]
    include_activated: bool
    dry_run: bool
    concurrency: int
    on_progress: Callable[[RollbackProgress], None] | None
    stop: anyio.Event
    earlier: tuple[tuple[datetime, datetime], ...] = ()
    results: dict[int, RollbackResult] = field(default_factory=dict)
    counts: Counter[RollbackStatus] = field(default_factory=Counter)
    token_refused: bool = False
    probed: tuple[int, int, int] = (0, 0, 0)
    #: The calls each row's read before the confirmation made (its attempts).
    read_calls: dict[int, int] = field(default_factory=dict)
    clock: float = field(default_factory=time.monotonic)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    async def execute(
        self,
        api: DevicesApi,
        journal: RollbackJournal,
        candidates: tuple[Candidate, ...],
        entries: Mapping[str, RollbackEntry],
        *,
        confirm: Callable[[Sequence[Candidate], _Read], None],
    ) -> None:
        """
        Read every device, as a dry run does; then confirm the deletes, counted from
        those reads (``confirm``: it may raise to stop before any write); then
        delete.

        Nothing the reads found is journalled or shown as progress before the
        confirmation: until it, the command has changed nothing.
        """
        for result in self.settled.values():
            self._record(result)
        todo: list[Candidate] = []
        for candidate in candidates:
            entry = _entry(entries, candidate)
            if (
                entry is not None
                and entry.result is not None
                and _is_gone(entries, candidate)
            ):
                # Gone for sure: said as the journal has it, with no call.
                self._record(replace(entry.result, row=candidate.row))
            else:
                todo.append(candidate)
        log.info("rollback_started", rows=len(self.rows), to_do=len(todo))
        if self.dry_run:
            self._report_progress(api)
        doomed: list[Candidate] = []
        read: list[RollbackResult] = []

        async def read_one(candidate: Candidate) -> None:
            found = await self._read_one(api, entries, candidate)
            if isinstance(found, Delete):
                doomed.append(found.candidate)
            else:
                read.append(found)

        await self._each(todo, read_one)
        if not self.stop.is_set():
            confirm(doomed, Counter(result.status for result in read))
        for result in read:
            if result.status is not RollbackStatus.FAILED and not self.dry_run:
                journal.mark_done(result)
        self._report_progress(api)
        await self._each(
            doomed, lambda candidate: self._delete_one(api, journal, entries, candidate)
        )
        for candidate in todo:
            if candidate.row not in self.results:
                self._record(not_started(candidate))

    async def _each(
        self,
        todo: Sequence[Candidate],
        work: Callable[[Candidate], Awaitable[None]],
    ) -> None:
        """
        Do ``work`` for each candidate on a pool of workers; none starts once
        ``stop`` is set.
        """
        send, receive = anyio.create_memory_object_stream[Candidate](0)
        workers = max(1, min(self.concurrency, len(todo)))
        async with anyio.create_task_group() as group:
            for _ in range(workers):
                group.start_soon(self._worker, receive.clone(), work)
            receive.close()
            async with send:
                for candidate in todo:
                    if self.stop.is_set():
                        break
                    await send.send(candidate)

    async def _worker(
        self,
        candidates: ObjectReceiveStream[Candidate],
        work: Callable[[Candidate], Awaitable[None]],
    ) -> None:
        async with candidates:
            async for candidate in candidates:
                if not self.stop.is_set():
                    await work(candidate)

    async def _read_one(
        self,
        api: DevicesApi,
        entries: Mapping[str, RollbackEntry],
        candidate: Candidate,
    ) -> Delete | RollbackResult:
        """
        Read one row's device and judge it: a ``Delete`` (a dry run records it
        planned), or the row's result, recorded (shown only in a dry run: a real
        rollback shows nothing before its confirmation).
        """
        entry = _entry(entries, candidate)
        sent = entry is not None and entry.delete_sent
        with (
            structlog.contextvars.bound_contextvars(row=candidate.row),
            api.tally() as tally,
        ):
            found = await self._read(api, candidate, sent)
        self.read_calls[candidate.row] = tally.calls
        if isinstance(found, Delete) and not self.dry_run:
            return found
        result = planned(found.candidate) if isinstance(found, Delete) else found
        self._finished(replace(result, attempts=tally.calls))
        if self.dry_run:
            self._report_progress(api)
        return result

    async def _delete_one(
        self,
        api: DevicesApi,
        journal: RollbackJournal,
        entries: Mapping[str, RollbackEntry],
        candidate: Candidate,
    ) -> None:
        """
        Delete one device its read found to delete (a code's pending device is read
        again first), and record the row's result.
        """
        entry = _entry(entries, candidate)
        sent = entry is not None and entry.delete_sent
        with (
            structlog.contextvars.bound_contextvars(row=candidate.row),
            api.tally() as tally,
        ):
            result = await self._delete(api, journal, candidate, sent)
        calls = self.read_calls.get(candidate.row, 0) + tally.calls
        result = replace(result, attempts=calls)
        if result.status is not RollbackStatus.FAILED:
            journal.mark_done(result)
        self._finished(result)
        self._report_progress(api)

    def _finished(self, result: RollbackResult) -> None:
        log.info(
            "rollback_row_finished",
            row=result.row,
            status=result.status.value,
            http_status=result.http_status,
            tracking_id=result.tracking_id,
        )
        self._record(result)

    async def _read(
        self, api: DevicesApi, candidate: Candidate, delete_was_sent: bool
    ) -> Delete | RollbackResult:
        """
        Read the device and judge it: ``Delete`` (naming the device) when it may go.

        A lost create's row (no device id) looks its MAC up instead of reading a
        device, and goes on only with a device found that is the rollout's.
        """
        org = candidate.org_id
        try:
            if candidate.device_id is None:
                assert candidate.mac is not None
                step = "look up MAC"
                device = await api.find_device_by_mac(candidate.mac, org_id=org)
                found = judge_lost_create(candidate, device, earlier=self.earlier)
                if isinstance(found, RollbackResult):
                    return found
                candidate = found
            else:
                step = "read device"
                try:
                    device = await api.get_device(candidate.device_id, org_id=org)
                except NotFoundError:
                    device = None
        except ApiError as error:
            return self._failed(candidate, step, error)
        verdict = judge(
            candidate,
            device,
            include_activated=self.include_activated,
            delete_was_sent=delete_was_sent,
        )
        if not isinstance(verdict, Delete):
            return verdict
        assert device is not None  # judge deletes only a device it read
        older = judge_age(candidate, device, earlier=self.earlier)
        return verdict if older is None else older

    async def _delete(
        self,
        api: DevicesApi,
        journal: RollbackJournal,
        candidate: Candidate,
        delete_was_sent: bool,
    ) -> RollbackResult:
        """
        Delete a device its read found to delete.

        The read came before the confirmation, which may wait for a person: a
        code's pending device is read again first, since someone may have entered
        the code meanwhile. Nothing else the read judged changes for the same
        device id (the API patches a device's tags alone), and a device deleted
        since answers the delete 404: ``already_gone``.
        """
        if candidate.is_code and not self.include_activated:
            again = await self._read(api, candidate, delete_was_sent)
            if not isinstance(again, Delete):
                return again
        assert candidate.device_id is not None
        org = candidate.org_id
        journal.mark_deleting(candidate.row, candidate.device_id)
        try:
            await api.delete_device(candidate.device_id, org_id=org)
        except NotFoundError:
            return after_delete(candidate, was_missing=True)
        except ApiError as error:
            # The journal keeps "deleting": if this delete took effect after all,
            # the next rollback reports the device deleted, not found gone.
            return self._failed(candidate, "delete device", error)
        return after_delete(candidate)

    def _failed(
        self, candidate: Candidate, step: str, error: ApiError
    ) -> RollbackResult:
        if isinstance(error, AuthError | ForbiddenError):
            # Every later row would be refused the same way: start none of them.
            self.token_refused = isinstance(error, AuthError)
            self.stop.set()
        log.warning(
            "rollback_row_failed",
            row=candidate.row,
            step=step,
            status=error.status,
            transient=isinstance(error, TransientError),
        )
        return after_error(candidate, step, error)

    def _record(self, result: RollbackResult) -> None:
        earlier = self.results.get(result.row)
        if earlier is not None:
            self.counts[earlier.status] -= 1
        self.results[result.row] = result
        self.counts[result.status] += 1

    def _report_progress(self, api: DevicesApi) -> None:
        if self.on_progress is None:
            return
        figures = api.statistics()
        self.on_progress(
            RollbackProgress(
                total=len(self.rows),
                done=len(self.results),
                counts=+self.counts,
                api_calls=figures.calls + self.probed[0],
                rate_limited=figures.rate_limited + self.probed[1],
                current_rate=figures.rate,
                elapsed=time.monotonic() - self.clock,
            )
        )

    def finish(self, api: DevicesApi, target: Target) -> RollbackRun:
        figures = api.statistics()
        ordered = {number: self.results[number] for number in self.rows}
        interrupted = self.stop.is_set() and any(
            r.status is RollbackStatus.NOT_STARTED for r in ordered.values()
        )
        stats = RollbackStats(
            started_at=self.started_at,
            finished_at=datetime.now(UTC),
            api_calls=figures.calls + self.probed[0],
            rate_limited=figures.rate_limited + self.probed[1],
            retries=figures.retries + self.probed[2],
            dry_run=self.dry_run,
            interrupted=interrupted and not self.token_refused,
        )
        log.info("rollback_finished", rows=len(ordered), interrupted=interrupted)
        return RollbackRun(
            results=ordered,
            stats=stats,
            target=target,
            token_refused=self.token_refused,
        )
