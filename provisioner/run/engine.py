"""
Run a manifest against the API: a pool of workers, fed by the plan, under one task group.

``provision`` is the library's entry point. It makes cheap authenticated reads first
(GET /people/me, and beside it supportedDevices: the org's list then decides which
rows' models go through, see ``live.rules.with_catalogue``), so a refused token raises
``AuthError``/``ForbiddenError`` before any row. A refused connection on those reads is
tried only a few times (``first_call_policy``): at the very start it means a wrong URL
or an API that is not running, and the command should say so in seconds. Then each
org the rows name gets ``Settings.concurrency`` workers of its own, taking that
org's rows from its own ``plan.Schedule`` (a row waiting out its org's rate-limit
pause holds a worker of that org only; the client's cap on calls in flight is one
for the whole run). A schedule hands out rows longest-processing-time first across
owners, so the owners with the most rows start first and no owner's serial chain of
creates becomes the run's tail. An owner has one row at a time between its start and
the end of its create or activation-code call (that call runs under the owner's
``anyio.Lock``), so one owner's writes are never concurrent while owners run in
parallel, and a worker never waits on another row's lock. The
client applies the rate controller on every request start; the worker count caps rows
in flight.

Every row's progress goes to the journal as it happens; rows the journal (or, for a
rerun, ``previous``) already finished are not redone. Setting ``stop`` stops starting
rows, lets rows in flight finish, and returns with ``interrupted=True``; so does a
token the API refuses (401) after rows have run (``token_refused=True``), and an API
that stopped answering: ``plan.UNANSWERED_ROWS`` rows in a row whose calls got no
answer after every try (``api_unanswered=True``). A row failed either way is not
journalled as done, so the same command does it again. Setting
``abandon`` as well cancels the rows in flight at once and still returns: those rows
are ``not_started`` (``ABANDONED_ERROR``) while their journal entries stay open, so the
same command checks each of them (by MAC, or the owner's pending devices) first.

The first call learns the target (``live.target``): who the token is and which org
the run acts on. The journal is opened for that target only, so a journal written
against another API, org or tag mode is never continued.

Longer than most modules: it is the one place where a run's state (outcomes, locks,
figures, the first calls, the workers) comes together; the decisions it needs are in
``plan.py``, ``pending.py`` and ``identity.py``.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import anyio
import structlog

from provisioner.errors import (
    ApiError,
    AuthError,
    ConfigError,
    ConnectError,
    ForbiddenError,
    NotFoundError,
    TransientError,
)
from provisioner.live.orgs import (
    OrgAccess,
    acted_for,
    merge_rows,
    org_id_refusal,
    org_keys,
    refused_outcome,
)
from provisioner.live.owners import resolve_owners
from provisioner.live.preflight import (
    name_orgs,
    preflight,
    read_orgs,
    with_catalogues,
)
from provisioner.live.target import acted_on, find_caller, name_org, target_of
from provisioner.logs import event_logger
from provisioner.models import (
    Changes,
    Manifest,
    OrgInfo,
    Outcome,
    Problem,
    Row,
    RunStats,
    Status,
    Target,
)
from provisioner.run import code_rows, plan, steps
from provisioner.run.identity import describe_target, row_digest, row_keys
from provisioner.run.journal import Journal, JournalEntry, read_entries
from provisioner.run.orgs import (
    is_multi_org,
    org_changes,
    own_org_as_default,
    refused_access,
)
from provisioner.run.renewals import Renewal, renewed_outcomes, renewed_since
from provisioner.run.side_by_side import Ahead, ahead_of, side_by_side
from provisioner.settings import Settings
from provisioner.webex.protocol import (
    Caller,
    ClientStatistics,
    DevicesApi,
    SupportedModel,
)
from provisioner.webex.retry import (
    FIRST_CALL_ATTEMPTS,
    FIRST_CALL_MAX_DELAY,
    FIRST_CALL_MAX_TOTAL,
    first_call_policy,
)

__all__ = [
    "ABANDONED_ERROR",
    "FIRST_CALL_ATTEMPTS",
    "FIRST_CALL_MAX_DELAY",
    "FIRST_CALL_MAX_TOTAL",
    "Progress",
    "RunResult",
    "first_call_policy",
    "provision",
]

# The report's error for a row a second Ctrl-C cancelled in flight: its create or
# activation code may have reached the API, and its journal entry says so.
ABANDONED_ERROR = (
    "not started: abandoned in flight by a second Ctrl-C (its device or code may "
    "exist); run the same command again: it checks for them before anything else"
)

# Rows log as they start and finish: the hot path's logger (see provisioner.logs).
log = event_logger()


@dataclass(frozen=True, slots=True, kw_only=True)
class Progress:
    """
    A snapshot of a run, handed to ``on_progress`` as rows finish.
    """

    total: int
    done: int
    counts: Mapping[Status, int]
    api_calls: int
    rate_limited: int
    current_rate: float | None
    elapsed: float


@dataclass(frozen=True, slots=True, kw_only=True)
class RunResult:
    """
    What a run ended with: every row's outcome so far, the run's figures, and whether
    it was stopped before every row was started.
    """

    outcomes: dict[int, Outcome]
    stats: RunStats
    interrupted: bool
    #: The API refused the token (401) mid-run: rows stopped starting; the rows it
    #: refused are ``failed`` in the outcomes but not journalled as done, so running
    #: the same command again (with a fresh token) does them.
    token_refused: bool = False
    #: The API stopped answering mid-run (``plan.UNANSWERED_ROWS`` rows in a row got
    #: no answer after every try): rows stopped starting. Those rows are ``failed``
    #: in the outcomes, their journal entries left open, as for ``token_refused``.
    api_unanswered: bool = False
    #: The rows ``abandon`` cancelled in flight (``not_started``, journal entry open).
    abandoned: frozenset[int] = frozenset()
    #: The rows the journal ended failed that a rerun of the report ended since,
    #: reported as it ended them: by the rerun's journal (one of ``reruns``).
    since_reruns: Mapping[Path, frozenset[int]] = field(default_factory=dict)
    #: The code rows the journal ended with a code that a renewal of the report
    #: replaced since, reported as it left them: by the renewal's report (one of
    #: ``renewals``), whose code, device and expiry the journal now holds.
    since_renewals: Mapping[Path, frozenset[int]] = field(default_factory=dict)
    #: The codes those renewals voided (their devices deleted), which the report
    #: no longer holds: no reason to keep the report that did.
    voided_codes: frozenset[str] = frozenset()


async def provision(
    manifest: Manifest,
    settings: Settings,
    *,
    api: DevicesApi | None = None,
    journal_path: Path | None = None,
    previous: Mapping[int, Outcome] | None = None,
    only_rows: frozenset[int] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    stop: anyio.Event | None = None,
    before_rows: Callable[[Target, Changes], None] | None = None,
    fresh: bool = False,
    previous_target: Target | None = None,
    earlier: Sequence[tuple[datetime, datetime]] = (),
    abandon: anyio.Event | None = None,
    reruns: Sequence[Path] = (),
    renewals: Sequence[Renewal] = (),
) -> RunResult:
    """
    Provision every valid row of ``manifest`` and return each row's outcome.

    Args:
        api: the Devices API; None opens an ``ApiClient(settings)`` for the run.
        journal_path: the journal file; None keeps the journal in memory (no resume).
            A dry run reads a copy of it (``Journal.snapshot``: no lock, no write),
            so it plans what a run continuing that journal would do now.
        previous: a rerun's earlier outcomes; rows outside ``only_rows`` keep them,
            and rows inside keep an activation code that still stands.
        only_rows: the rows to work on (a rerun); None for all.
        on_progress: called with a ``Progress`` snapshot whenever a row finishes.
        stop: when set, no new row starts; rows in flight finish.
        before_rows: called once before the first row starts, after the target is
            known and the rows left to do are counted, with what the run may change
            (nothing, on a dry run). It may raise (``NotConfirmedError``) to stop the
            run before any write: this is where the CLI asks for confirmation.
        fresh: forget the journal's rows and start over; the activation codes it
            holds are voided as their rows get new ones (``--fresh``).
        previous_target: where ``previous`` (a rerun's report) was written, when
            known: a rerun against another API or org is refused, since the rows that
            ended well there did not happen here.
        earlier: when the rollout's earlier commands ran (start, end): a rerun's row
            whose create lost its answer then finds its device by MAC, and reports it
            ``created`` when the API made it in one of those spans.
        abandon: when set (after ``stop``: a second Ctrl-C), the rows in flight are
            cancelled at once and the run returns what it has; each of them is
            ``not_started`` with ``ABANDONED_ERROR``, and its journal entry is left
            open, so the same command looks for what it may have made first.
        reruns: the journals of the reruns of the report ``journal_path`` belongs
            to (``<report>-rerun``, …): a row the journal ended failed, or never
            ended (a Ctrl-C's ``not_started``), that one of them ended since (for the
            same target, asking the same) is reported as the latest of them ended
            it, not redone (``plan.ended_since``).
        renewals: the reports ``codes --renew`` wrote from the report
            ``journal_path`` belongs to (``<report>-renewed``, …): a code row the
            journal ended with a code one of them replaced since is reported as the
            latest of them left it (``renewals.renewed_since``), and the journal
            takes that outcome as its own (so a rollback of the new report makes it
            forget the row), with no call made.

    Raises:
        AuthError: the token was refused (401) on the first call.
        ForbiddenError: the token lacks a needed scope (403) on the first call.
        ConnectError: nothing accepted the connection on the first call, after a few
            quick attempts (when ``api`` is None).
        TransientError: the API kept failing on the first call, after the client's
            retries.
        NoApiError: the base URL answered, but not as the Webex API (a 404, or no
            JSON, to the first call).
        ConfigError: the journal belongs to another target, or cannot be read.
    """
    probe: DevicesApi | None = None
    async with contextlib.AsyncExitStack() as stack:
        if api is None:
            from provisioner.webex.client import ApiClient

            api = await stack.enter_async_context(ApiClient(settings))
            quick = replace(settings, retry=first_call_policy(settings.retry))
            probe = await stack.enter_async_context(
                ApiClient(quick, limiter=api.limiter)
            )
        run = _Run(
            manifest=manifest,
            settings=settings,
            api=api,
            probe=probe,
            previous=dict(previous or {}),
            on_progress=on_progress,
            stop=stop or anyio.Event(),
            abandon=abandon or anyio.Event(),
            before_rows=before_rows,
            previous_target=previous_target,
            earlier=tuple(earlier),
            reruns=tuple(reruns),
            renewals=tuple(renewals),
        )
        return await run.execute(journal_path, only_rows, fresh=fresh)


@dataclass(kw_only=True)
class _Run:
    """
    The state of one run: outcomes so far, owner locks, figures for progress and stats.
    """

    manifest: Manifest
    settings: Settings
    api: DevicesApi
    #: The same API with ``first_call_policy`` retries, for the first call; None
    #: when the caller handed in the API (a test fake, or its own client).
    probe: DevicesApi | None
    previous: dict[int, Outcome]
    on_progress: Callable[[Progress], None] | None
    stop: anyio.Event
    abandon: anyio.Event = field(default_factory=anyio.Event)
    before_rows: Callable[[Target, Changes], None] | None = None
    previous_target: Target | None = None
    earlier: tuple[tuple[datetime, datetime], ...] = ()
    #: The journals of later reruns of this report (``provision``'s ``reruns``).
    reruns: tuple[Path, ...] = ()
    #: What each of them recorded for the rows, read once the journal is open.
    rerun_entries: dict[Path, dict[int, JournalEntry]] = field(default_factory=dict)
    #: The rows taken as one of them ended them (``RunResult.since_reruns``).
    since_reruns: dict[Path, set[int]] = field(default_factory=dict)
    #: The renewals of this report (``provision``'s ``renewals``).
    renewals: tuple[Renewal, ...] = ()
    #: Row number → each renewal's outcome for the row, read once the journal is
    #: open.
    renewed: dict[int, list[tuple[Path, Outcome]]] = field(default_factory=dict)
    #: The rows taken as a renewal left them (``RunResult.since_renewals``).
    since_renewals: dict[Path, set[int]] = field(default_factory=dict)
    #: Those rows' outcomes: as the journal had them (with the codes the renewal
    #: voided), and as the renewal left them.
    renewed_away: dict[int, tuple[Outcome, Outcome]] = field(default_factory=dict)
    #: When the journal began (its ``created_at``; renewed by ``--fresh``): a rerun
    #: ending a row the journal never recorded counts only after it.
    journal_began: datetime | None = None
    outcomes: dict[int, Outcome] = field(default_factory=dict)
    #: The rows a worker is working on now (an abandoned run's ``not_started``).
    in_flight: set[int] = field(default_factory=set)
    # Kept alongside ``outcomes`` so a progress snapshot costs O(statuses), not
    # O(rows): counting the outcomes on every finished row made a run quadratic.
    counts: Counter[Status] = field(default_factory=Counter)
    #: The probe's (calls, 429s, retries): its client keeps figures of its own.
    probe_figures: tuple[int, int, int] = (0, 0, 0)
    locks: dict[str, anyio.Lock] = field(default_factory=dict)
    #: Set (and replaced) whenever an owner's turn ends: idle workers wait on it.
    owner_freed: anyio.Event = field(default_factory=anyio.Event)
    #: Owner key → that owner's activation-code rows, for telling a lost code's
    #: device from the devices of the owner's other code rows.
    code_rows: dict[str, tuple[int, ...]] = field(default_factory=dict)
    owners: steps.OwnerCache = field(default_factory=dict)
    #: Row number → the report's ``owner`` cell (rows that named an owner by name).
    owner_labels: dict[int, str] = field(default_factory=dict)
    clock_start: float = field(default_factory=time.monotonic)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    #: Where the run writes; the org is filled in once the API has said whose it is.
    target: Target = field(init=False)
    #: What each valid row asks for (``row_digest``), journalled with its outcome.
    digests: dict[int, str] = field(default_factory=dict)
    #: The journal entry each row to work on continues from (``plan.resume_from``).
    resume: dict[int, JournalEntry | None] = field(default_factory=dict)
    #: The devices of replaced activation codes this run deleted.
    voided: list[str] = field(default_factory=list)
    #: A dry run's earlier pending devices already matched to a code row.
    dry_run_claimed: set[str] = field(default_factory=set)
    #: The problems a dry run's live checks found, by row (a run makes none).
    live_problems: dict[int, tuple[Problem, ...]] = field(default_factory=dict)
    #: Set when the API refused the token (401) after rows had run: no row starts.
    token_refused: bool = False
    #: Rows in a row, lately, whose calls got no answer (``plan.is_unanswered``);
    #: at ``plan.UNANSWERED_ROWS`` the API is taken for gone and no row starts.
    unanswered_rows: int = 0
    api_unanswered: bool = False
    #: What reading each org the rows go to answered (its list, or a refusal).
    orgs: dict[str | None, OrgAccess] = field(default_factory=dict)
    #: The orgs the rows go to, in order, when that is not the run's org alone.
    org_keys: tuple[str | None, ...] = ()

    @property
    def readable_orgs(self) -> tuple[str | None, ...]:
        """
        The orgs of a partner's run the token may act for (none in a one-org run).
        """
        if not self.org_keys:
            return ()
        return tuple(
            key
            for key in self.org_keys
            if (access := self.orgs.get(key)) is not None and not access.is_refused
        )

    #: Outcomes known before any row was worked on (invalid rows, rows the journal
    #: or a rerun's previous report finished): not this run's throughput.
    settled: int = 0
    #: True when the journal already held rows: this run continues an earlier one.
    resumed: bool = False
    #: The rows this run decided, by status, for the report's run history: the rows
    #: it worked on, and the invalid rows it found (unless an earlier run of this
    #: journal already counted them).
    worked: Counter[Status] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.target = Target(
            base_url=self.settings.base_url,
            org_id=self.settings.org_id,
            tag_mode=self.settings.tag_mode,
        )

    async def execute(
        self, path: Path | None, only_rows: frozenset[int] | None, *, fresh: bool
    ) -> RunResult:
        supported = await self._check_access(
            partial(self._prepare_rows, only_rows=only_rows)
        )
        # Opened once the target is known, and the owners named by name have their
        # ids: a journal for another target is refused (by a dry run too: the run
        # it rehearses would be).
        if self.settings.dry_run:
            journal = Journal.snapshot(
                path,
                self.target,
                self._rows_as_run(),
                fresh=fresh,
                clock=self.server_now,
            )
        else:
            journal = Journal.open(
                path,
                self.target,
                self.manifest.rows,
                fresh=fresh,
                clock=self.server_now,
            )
        with journal:
            return await self._work(journal, only_rows, supported)

    async def _prepare_rows(
        self, supported: tuple[SupportedModel, ...], *, only_rows: frozenset[int] | None
    ) -> None:
        """
        Settle what each row asks for: its org, its model against that org's list,
        its owner's id; then what the journal and the workers need of the rows.

        Runs while the org's name is still being read (it needs the org's id and
        list only); the rows' reads here are pre-flight reads like it.
        """
        self._own_org_as_default()
        await self._check_orgs(supported, only_rows)
        if self.settings.dry_run:
            await self._check_live()
        else:
            # Each org's own list decides which of its rows' models go through (a
            # dry run's pre-flight does the same): one it lacks makes the row
            # invalid, one only it knows is fine.
            lists = {key: access.supported for key, access in self.orgs.items()}
            self.manifest = with_catalogues(self.manifest, lists, self.settings.org_id)
            await self._resolve_owner_names()
        # The checks above rebuild rows from their cells, orgId as typed.
        self._own_org_as_default()
        rows = self.manifest.rows
        self.owner_labels = {
            row.number: label for row in rows if (label := row.owner_label) is not None
        }
        self.digests = {row.number: row_digest(row) for row in rows if row.is_valid}
        self.code_rows = _code_rows_by_owner(rows)

    async def _work(
        self,
        journal: Journal,
        only_rows: frozenset[int] | None,
        supported: tuple[SupportedModel, ...],
    ) -> RunResult:
        entries = journal.entries()
        self.resumed = bool(entries)
        self.journal_began = journal.created_at
        self.rerun_entries = {
            path: read_entries(path, self._rows_as_run(), target=self.target)
            for path in self.reruns
        }
        self.renewed = self._renewed_rows()
        todo, refused = self._settle_known_rows(entries, only_rows)
        self._take_renewals(journal)
        self.settled = len(self.outcomes)
        if self.before_rows is not None:
            changes = Changes()
            if not self.settings.dry_run:
                changes = plan.planned_changes(
                    todo,
                    entries,
                    self.previous,
                    voids=journal.voids_left(),
                    reissue=self.settings.reissue_codes,
                )
            if self.org_keys:
                per_org = org_changes(
                    self.org_keys,
                    self.orgs,
                    todo,
                    refused,
                    entries,
                    self.previous,
                    self.settings.org_id,
                )
                changes = replace(changes, orgs=per_org)
            self.before_rows(self.target, changes)
        log.info(
            "run_started",
            rows=len(self.manifest.rows),
            to_do=len(todo),
            dry_run=self.settings.dry_run,
            concurrency=self.settings.concurrency,
        )
        self._report_progress()
        async with anyio.create_task_group() as watch:
            async with anyio.create_task_group() as group:
                watch.start_soon(_cancel_when, self.abandon, group.cancel_scope)
                # Each org has its own schedule and workers: a row waiting out its
                # org's 429 pause holds a worker of that org only.
                for key, rows in plan.rows_by_org(todo, self.settings.org_id).items():
                    schedule = plan.Schedule(rows)
                    models = self.orgs[key].supported
                    for _ in range(max(1, min(self.settings.concurrency, len(rows)))):
                        group.start_soon(self._worker, schedule, journal, models)
            watch.cancel_scope.cancel()
        abandoned = frozenset(self.in_flight)
        for number in sorted(abandoned):
            # Not journalled: the entry stays as the row left it, so the same
            # command checks what the row may have made before anything else.
            self._record(
                number,
                Outcome(row=number, status=Status.NOT_STARTED, error=ABANDONED_ERROR),
            )
        interrupted = bool(abandoned) or (
            len(self.outcomes) < len(self.manifest.rows) and self._halted()
        )
        log.info(
            "run_finished",
            rows_done=len(self.outcomes) - len(abandoned),
            interrupted=interrupted,
            abandoned=len(abandoned),
        )
        return RunResult(
            outcomes=dict(self.outcomes),
            stats=self._stats(interrupted),
            interrupted=interrupted,
            token_refused=self.token_refused,
            api_unanswered=self.api_unanswered,
            abandoned=abandoned,
            since_reruns={
                path: frozenset(rows) for path, rows in self.since_reruns.items()
            },
            since_renewals={
                path: frozenset(rows) for path, rows in self.since_renewals.items()
            },
            voided_codes=frozenset(
                old.activation_code
                for old, _ in self.renewed_away.values()
                if old.activation_code
            ),
        )

    async def _check_access(
        self,
        meanwhile: Callable[[tuple[SupportedModel, ...]], Awaitable[None]],
    ) -> tuple[SupportedModel, ...]:
        """
        Make the first reads: who the token is, its org's name and supportedDevices;
        run ``meanwhile`` with the org's list while its name is still being read.

        GET /people/me fails fast on a refused token or a wrong URL, and its failure
        is the one raised. The reads that do not need its answer go out beside it
        (supportedDevices, and the org's name when ``--org-id`` names the org): one
        round trip before the first row instead of two. The name of the token's own
        org waits for people/me, which says which org that is; the rows are readied
        (``meanwhile``) during that read, since only the confirmation needs the name.
        """
        given = self.settings.org_id
        with self.api.tally():
            async with ahead_of() as early:
                catalogue = early.start(self._first_call())
                named = early.start(name_org(self.api, given)) if given else None
                caller = await self._identify()
                if named is None:
                    own = acted_on(self.settings, caller)
                    named = early.start(name_org(self.api, own))
                models = await self._supported_models(catalogue)
                self.target = target_of(self.settings, caller, None)
                self._refuse_another_target()
                org_name, _ = await side_by_side(named.answer(), meanwhile(models))
            self._name_own_org(org_name)
        return models

    def _refuse_another_target(self) -> None:
        """
        Refuse to rerun a report written against another API or org.

        Against another org, a report whose every row names its org (``orgId``: a
        partner's per-org report) is rerun all the same: its rows went to the orgs
        they name, whichever token's org the run acted from, so a token of that
        org (the README's way for a refused one) takes them on. Another API never.
        """
        earlier = self.previous_target
        if earlier is None or earlier.same_org_as(self.target):
            return
        named = all(row.org_id for row in self.manifest.rows)
        same_api = earlier.identity()["base_url"] == self.target.identity()["base_url"]
        if not (named and same_api):
            raise ConfigError(
                "the report being rerun was written by a run against "
                f"{describe_target(earlier.identity())}, not "
                f"{describe_target(self.target.identity())}: its rows that ended "
                "well there did not happen here. Rerun it against that target, or "
                "provision this one with provisioner run and another --report"
            )

    def server_now(self) -> datetime:
        """
        The API's "now": the first call (the probe's, when there is one) read its
        clock, which stamps every device the rows look at.
        """
        return (self.probe or self.api).server_now()

    def _name_own_org(self, org_name: str | None) -> None:
        """
        Give the target, and the run's own org among the orgs, the name just read.
        """
        self.target = replace(self.target, org_name=org_name)
        key = self.settings.org_id
        access = self.orgs.get(key)
        if access is not None:
            self.orgs[key] = replace(access, info=replace(access.info, name=org_name))

    def _own_org_as_default(self) -> None:
        """
        Key rows that spell out the token's own org as the rows that name none.
        """
        own = self.target.org_id
        if self.settings.org_id is None and own is not None:
            self.manifest = own_org_as_default(self.manifest, own)

    async def _supported_models(
        self, catalogue: Ahead[list[SupportedModel]]
    ) -> tuple[SupportedModel, ...]:
        """
        The org's supportedDevices, read ahead; () when only the list is refused.
        """
        try:
            return tuple(await catalogue.answer())
        except (ForbiddenError, NotFoundError) as error:
            if self.settings.org_id is not None:
                # The org --org-id names, refused or unknown: name the flag, not the
                # token's scopes (no row could succeed there, so nothing starts).
                raise ConfigError(org_id_refusal(self.settings.org_id, error)) from None
            if isinstance(error, ForbiddenError):
                raise
            log.warning("supported_devices_refused", status=error.status)
            return ()
        except (AuthError, TransientError):
            # Refused, or unreachable even after retries: no row could succeed,
            # so the run does not start (the CLI exits 2).
            raise
        except ApiError as error:
            # Any other refusal concerns the catalogue alone: a run goes on
            # without it, judging models by the bundled catalogue.
            log.warning("supported_devices_refused", status=error.status)
            return ()

    async def _check_orgs(
        self, supported: Sequence[SupportedModel], only_rows: frozenset[int] | None
    ) -> None:
        """
        Read each other org the rows go to once: its list, or why it is refused.

        A run within one org reads nothing more. A partner's run also looks up the
        other orgs' names for the confirmation and the summary; a refused org's
        rows fail with its one reason before any row starts, and the others go on.
        """
        default = self.settings.org_id
        home = OrgInfo(key=default, id=self.target.org_id, name=self.target.org_name)
        self.orgs = {default: OrgAccess(info=home, supported=tuple(supported))}
        rows = self.manifest.rows
        if only_rows is not None:
            rows = tuple(row for row in rows if row.number in only_rows)
        keys = org_keys(rows, default)
        if not is_multi_org(keys, default):
            return
        others = [key for key in keys if key != default]
        concurrency = self.settings.concurrency
        with self.api.tally():
            self.orgs.update(await read_orgs(self.api, others, concurrency=concurrency))
            infos = [self.orgs[key].info for key in others]
            for named in await name_orgs(self.api, infos, concurrency=concurrency):
                self.orgs[named.key] = replace(self.orgs[named.key], info=named)
        self.org_keys = tuple(keys)

    async def _check_live(self) -> None:
        """
        Run ``validate --live``'s read-only checks, so a dry run flags what they flag.

        Rows with live problems become ``invalid`` like rows with offline ones; the
        owners found are remembered so the per-row checks do not look them up again.
        """
        default = self.settings.org_id
        with self.api.tally():
            checked = await preflight(
                self.manifest,
                self.api,
                org_id=default,
                concurrency=self.settings.concurrency,
                supported=self.orgs[default].supported,
                orgs=self.orgs,
            )
        self.manifest = checked.manifest
        self.live_problems = dict(checked.live_problems)
        for key, lookup in checked.owners.items():
            if lookup.owner is not None:
                self.owners[key.id] = None
        for row in self.manifest.rows:
            if row.owner_name and row.owner_id:
                # Found by name just now: no need to read it again by id.
                self.owners[row.owner_id] = None
        for warning in checked.warnings:
            log.warning("live_check_skipped", reason=warning)
        for number, warning in sorted(checked.other_models.items()):
            log.warning("adopted_model_differs", row=number, reason=warning)

    async def _resolve_owner_names(self) -> None:
        """
        Give rows that name their owner by workspace name or email the owner's id.

        Each distinct name is looked up once; a name that matches no owner, or
        several, makes its rows invalid, saying which were found.
        """
        with self.api.tally():
            resolution = await resolve_owners(
                acted_for(self.manifest, self.orgs, self.settings.org_id),
                self.api,
                org_id=self.settings.org_id,
                concurrency=self.settings.concurrency,
            )
        self.manifest = merge_rows(self.manifest, resolution.manifest)
        for warning in resolution.warnings:
            log.warning("live_check_skipped", reason=warning)

    async def _identify(self) -> Caller | None:
        """
        Learn who the token is (and so its org), giving up soon on a refused
        connection: this is the run's first call.
        """
        if self.probe is not None:
            try:
                return await find_caller(self.probe, self.settings)
            except ConnectError:
                raise
            except TransientError as error:
                log.info("first_call_retried", error=type(error).__name__)
            finally:
                self._note_probe_figures()
        return await find_caller(self.api, self.settings)

    def _note_probe_figures(self) -> None:
        if self.probe is not None:
            probed = self.probe.statistics()
            self.probe_figures = (probed.calls, probed.rate_limited, probed.retries)

    async def _first_call(self) -> list[SupportedModel]:
        """
        Read supportedDevices, giving up soon on a refused connection.

        The probe tries a few times; a refused connection there ends the run. Any
        other transient failure (a 5xx, a 429, a timeout) is retried as every call
        is, by the run's own client.
        """
        org = self.settings.org_id
        if self.probe is not None:
            try:
                return await self.probe.supported_devices(org_id=org)
            except ConnectError:
                raise
            except TransientError as error:
                log.info("first_call_retried", error=type(error).__name__)
            finally:
                self._note_probe_figures()
        return await self.api.supported_devices(org_id=org)

    def _settle_known_rows(
        self, entries: Mapping[int, JournalEntry], only_rows: frozenset[int] | None
    ) -> tuple[list[Row], list[Row]]:
        """
        Fill in the outcomes known without a call; return the rows left to work on,
        and those of orgs the token may not act for (failed with the org's reason).
        """
        todo: list[Row] = []
        refused: list[Row] = []
        for row in self.manifest.rows:
            entry = entries.get(row.number)
            if only_rows is not None and row.number not in only_rows:
                if row.number in self.previous:
                    self._record(row.number, self.previous[row.number])
            elif not row.is_valid:
                self._settle_invalid(row, entry)
            else:
                done, resume = plan.resume_from(row, entry, self.digests[row.number])
                done = self._renewed_since(row.number, entry, done)
                done = self._ended_since(row.number, entry, done)
                access = refused_access(row, self.orgs, self.settings.org_id)
                if done is not None and self.settings.dry_run:
                    # What the run would report again, said as a plan: a dry run's
                    # report holds no outcome a rollback could take for its own.
                    self._record(row.number, plan.done_plan(done))
                elif done is not None:
                    self._record(row.number, done)
                elif access is not None:
                    self._record(row.number, refused_outcome(row, access))
                    self.worked[Status.FAILED] += 1
                    refused.append(row)
                else:
                    self.resume[row.number] = resume
                    todo.append(row)
        return todo, refused

    def _ended_since(
        self, number: int, entry: JournalEntry | None, done: Outcome | None
    ) -> Outcome | None:
        """
        A row's outcome known without a call: as the journal ended it (``done``;
        None: not ended, for what the row asks now), or as the latest rerun of the
        report ended it since, when the journal failed it or did not end it.
        """
        found = [
            (path, entries[number])
            for path, entries in self.rerun_entries.items()
            if number in entries
        ]
        if not found:
            return done
        latest = plan.ended_since(
            entry,
            [e for _, e in found],
            self.digests[number],
            began=self.journal_began,
        )
        if latest is None or latest.outcome is None:
            return done
        path = next(path for path, e in found if e is latest)
        self.since_reruns.setdefault(path, set()).add(number)
        log.info("row_ended_by_rerun", row=number, journal=str(path))
        return latest.outcome

    def _renewed_rows(self) -> dict[int, list[tuple[Path, Outcome]]]:
        """
        Each run row's outcome in each renewal of the report that holds a code for
        it, matched by what the row is (``row_keys``), as the journal matches rows.
        """
        own = self.target.org_id if self.settings.org_id is None else None
        keys = row_keys(self._rows_as_run())
        found: dict[int, list[tuple[Path, Outcome]]] = {}
        for renewal in self.renewals:
            outcomes = renewed_outcomes(renewal, own)
            for number, key in keys.items():
                if key in outcomes:
                    found.setdefault(number, []).append((renewal.path, outcomes[key]))
        return found

    def _renewed_since(
        self, number: int, entry: JournalEntry | None, done: Outcome | None
    ) -> Outcome | None:
        """
        A row's outcome as the journal ended it (``done``), or, when a renewal of
        the report replaced the code it ended it with, as the latest such renewal
        left it: the journal's code is void (its device deleted).
        """
        # Only the journal's own ending (``resume_from`` hands back its outcome
        # itself): a renewal of the report replaced codes the run issued.
        if done is None or entry is None or done is not entry.outcome:
            return done
        found = renewed_since(done, self.renewed.get(number, ()))
        if found is None:
            return done
        path, outcome = found
        self.since_renewals.setdefault(path, set()).add(number)
        self.renewed_away[number] = (done, outcome)
        log.info("row_code_renewed", row=number, report=str(path))
        return outcome

    def _take_renewals(self, journal: Journal) -> None:
        """
        Record in the journal the rows taken as a renewal left them: it names their
        renewed devices from now on, so a rollback of the report (which names them)
        makes it forget them, and ``--fresh`` voids their live codes, not the dead
        ones. A dry run keeps nothing (its journal is a copy).

        Kept before the confirmation: it records what the org holds already (the
        renewal made it so), not a change this run makes.
        """
        if self.settings.dry_run or not self.renewed_away:
            return
        for number, (_, outcome) in sorted(self.renewed_away.items()):
            journal.mark_done(outcome, self.digests[number])
        journal.commit()

    def _settle_invalid(self, row: Row, entry: JournalEntry | None) -> None:
        """
        Record an invalid row's outcome (a rerun's row keeps its device), unless the
        row is invalid only by a dry run's live checks and its journal says how the
        run ended it.
        """
        done = self._finished_past_live_checks(row, entry)
        if done is not None:
            self._record(row.number, plan.done_plan(done))
            return
        invalid = plan.invalid_outcome(row)
        self._record(
            row.number, plan.kept_device(self.previous.get(row.number), invalid)
        )
        if not self.resumed:
            self.worked[Status.INVALID] += 1

    def _finished_past_live_checks(
        self, row: Row, entry: JournalEntry | None
    ) -> Outcome | None:
        """
        The journalled outcome of a row only a dry run's live checks made invalid,
        when the run finished it: that run does not redo it (nor check it), so it
        reports it as it ended (a MAC another owner holds: failed), and its dry run
        plans that, not the row as invalid. None for any other row.
        """
        if row.number not in self.live_problems or entry is None:
            return None
        as_run = self._as_run(row)
        if not as_run.is_valid:
            return None
        done, _ = plan.resume_from(as_run, entry, row_digest(as_run))
        return done

    def _rows_as_run(self) -> tuple[Row, ...]:
        """
        The rows as the run would see them: a dry run's without the problems only its
        live checks found, so its copy of the journal names each row as the run's
        journal does (an invalid row has no name there).
        """
        return tuple(self._as_run(row) for row in self.manifest.rows)

    def _as_run(self, row: Row) -> Row:
        found = self.live_problems.get(row.number)
        if not found:
            return row
        return replace(row, problems=tuple(p for p in row.problems if p not in found))

    async def _worker(
        self,
        schedule: plan.Schedule,
        journal: Journal,
        supported: Sequence[SupportedModel],
    ) -> None:
        readable = self.readable_orgs  # settled before the rows start
        while not self._halted():
            row = schedule.take()
            if row is None:
                if not schedule.left:
                    return
                # Every owner with rows left has a create in flight: wait for one.
                await self.owner_freed.wait()
                continue
            key = plan.owner_key(row)
            turn = _OwnerTurn(self._lock_for(row), partial(self._free, schedule, key))
            ctx = steps.RowContext(
                api=self.api,
                settings=self.settings,
                journal=journal,
                owner_lock=turn,
                supported=tuple(supported),
                owner_code_rows=self.code_rows.get(key, ()),
                voided=self.voided,
                dry_run_claimed=self.dry_run_claimed,
                earlier=self.earlier,
                orgs=readable,
            )
            self.in_flight.add(row.number)
            try:
                outcome = await self._run_row(ctx, row, self.resume.get(row.number))
            finally:
                turn.done()
            if plan.is_token_refusal(outcome):
                # The token stopped working: every later row would fail the same
                # way. Stop starting rows, and leave this one's journal entry as it
                # was so the same command picks it up again.
                if not self.token_refused:
                    log.warning("token_refused_mid_run", row=row.number)
                self.token_refused = True
            elif plan.is_unanswered(outcome):
                # No answer after every try says nothing about the row: its entry
                # stays as it was, so the same command does it again (a create
                # whose answer was lost is looked up first). Enough such rows in
                # a row, and the API is gone: stop starting rows (a dry run too).
                self.unanswered_rows += 1
                if self.unanswered_rows >= plan.UNANSWERED_ROWS:
                    if not self.api_unanswered:
                        log.warning("api_unanswered_mid_run", row=row.number)
                    self.api_unanswered = True
            else:
                self.unanswered_rows = 0
                if not self.settings.dry_run:
                    journal.mark_done(outcome, self.digests.get(row.number))
            self._record(row.number, outcome)
            self.in_flight.discard(row.number)
            self.worked[outcome.status] += 1
            self._report_progress()

    def _free(self, schedule: plan.Schedule, key: str) -> None:
        """
        Let the schedule hand out ``key``'s next row, and wake a waiting worker.
        """
        schedule.release(key)
        self.owner_freed.set()
        self.owner_freed = anyio.Event()

    def _halted(self) -> bool:
        """
        True once no new row may start: a stop was asked for, the token was refused,
        or the API stopped answering.
        """
        return self.stop.is_set() or self.token_refused or self.api_unanswered

    async def _run_row(
        self, ctx: steps.RowContext, row: Row, entry: JournalEntry | None
    ) -> Outcome:
        # Every event of the row names it. Bound and reset by token:
        # ``bound_contextvars`` reads the whole context first, which cost a tenth of
        # a row's own bookkeeping.
        bound = structlog.contextvars.bind_contextvars(row=row.number, mac=row.mac)
        try:
            with self.api.tally() as tally:
                log.info("row_started", owner=row.owner_id, resumed=entry is not None)
                previous = self.previous.get(row.number)
                if self.settings.dry_run:
                    outcome = await steps.dry_run_row(ctx, row, self.owners, entry)
                elif row.is_activation_code_row:
                    outcome = await code_rows.provision_code_row(
                        ctx, row, entry, previous
                    )
                else:
                    outcome = await steps.provision_mac_row(ctx, row, entry, previous)
                earlier = entry.outcome.attempts if entry and entry.outcome else 0
                outcome = _with_attempts(outcome, earlier + tally.calls)
                log.info(
                    "row_finished",
                    status=outcome.status.value,
                    attempts=outcome.attempts,
                    tags_deferred=outcome.tags_deferred,
                    http_status=outcome.http_status,
                    tracking_id=outcome.tracking_id,
                )
        finally:
            structlog.contextvars.reset_contextvars(**bound)
        return outcome

    def _record(self, number: int, outcome: Outcome) -> None:
        """
        Keep a row's outcome and the counts by status in step.
        """
        earlier = self.outcomes.get(number)
        if earlier is not None:
            self.counts[earlier.status] -= 1
        label = self.owner_labels.get(number)
        if label is not None and outcome.owner is None:
            outcome = replace(outcome, owner=label)
        self.outcomes[number] = outcome
        self.counts[outcome.status] += 1

    def _lock_for(self, row: Row) -> anyio.Lock:
        key = plan.owner_key(row)
        if key not in self.locks:
            # fast_acquire: a free owner's lock is taken without a trip through the
            # event loop (the schedule makes a free lock the common case).
            self.locks[key] = anyio.Lock(fast_acquire=True)
        return self.locks[key]

    def _figures(
        self, figures: ClientStatistics | None = None
    ) -> tuple[int, int, int, float | None]:
        """
        Calls, 429s, retries and the current request rate, for progress and stats.

        ``statistics()`` counts every attempt, retries included (``figures``: a
        snapshot already taken); the probe's own client (the quick first call) is
        added to it.
        """
        if figures is None:
            figures = self.api.statistics()
        more_calls, more_limited, more_retries = self.probe_figures
        return (
            figures.calls + more_calls,
            figures.rate_limited + more_limited,
            figures.retries + more_retries,
            figures.rate,
        )

    def _report_progress(self) -> None:
        if self.on_progress is None:
            return
        calls, rate_limited, _, rate = self._figures()
        self.on_progress(
            Progress(
                total=len(self.manifest.rows),
                done=len(self.outcomes),
                counts=+self.counts,
                api_calls=calls,
                rate_limited=rate_limited,
                current_rate=rate,
                elapsed=time.monotonic() - self.clock_start,
            )
        )

    def _stats(self, interrupted: bool) -> RunStats:
        figures = self.api.statistics()
        calls, rate_limited, retries, rate = self._figures(figures)
        # A partner's ceiling is the sum of its orgs' limits: no one org's limit.
        one_org = len(self.org_keys) <= 1
        # The client paces an org under the id its calls name: "" for none.
        learned = {} if one_org else dict(figures.ceilings)
        org_limits = tuple(
            (key, learned[key or ""]) for key in self.org_keys if (key or "") in learned
        )
        return RunStats(
            started_at=self.started_at,
            finished_at=datetime.now(UTC),
            api_calls=calls,
            rate_limited=rate_limited,
            retries=retries,
            dry_run=self.settings.dry_run,
            interrupted=interrupted,
            final_rate=rate,
            learned_limit=figures.ceiling if one_org else None,
            org_limits=org_limits,
            rows_worked=len(self.outcomes) - self.settled,
            target=self.target,
            resumed=self.resumed,
            worked=dict(+self.worked),
            orgs=tuple(self.orgs[key].info for key in self.org_keys),
            codes_voided=len(self.voided),
        )


class _OwnerTurn:
    """
    An owner's lock that also ends the owner's turn in the schedule.

    The turn ends when the row's first create or code call ends (the owner's next
    row may start its own while this one applies tags), or when the row ends
    without one; the lock itself still keeps any later call of this row serial.
    """

    def __init__(self, lock: anyio.Lock, end_turn: Callable[[], None]) -> None:
        self._lock = lock
        self._end_turn: Callable[[], None] | None = end_turn

    async def __aenter__(self) -> None:
        await self._lock.acquire()

    async def __aexit__(self, *_: object) -> None:
        self._lock.release()
        self.done()

    def done(self) -> None:
        """
        End the owner's turn, once.
        """
        end_turn, self._end_turn = self._end_turn, None
        if end_turn is not None:
            end_turn()


async def _cancel_when(event: anyio.Event, scope: anyio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


def _code_rows_by_owner(rows: Sequence[Row]) -> dict[str, tuple[int, ...]]:
    found: dict[str, list[int]] = {}
    for row in rows:
        if row.is_valid and row.is_activation_code_row:
            found.setdefault(plan.owner_key(row), []).append(row.number)
    return {key: tuple(numbers) for key, numbers in found.items()}


def _with_attempts(outcome: Outcome, attempts: int) -> Outcome:
    return replace(outcome, attempts=attempts)
