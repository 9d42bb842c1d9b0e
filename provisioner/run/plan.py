"""
Decide, without I/O, what the engine does with each row and how a result reads.

Everything the engine decides lives here as plain functions: the order rows are
started in, whether a device found by MAC is ours, which tags to send, which pending
device an activation code made, which pending devices a lost code left behind,
whether a previous code can be kept, and the words of every failure and dry-run
line. ``steps.py`` awaits the calls; this module only thinks.

Longer than most modules on purpose: it is every decision the engine makes about a
row, kept together so ``steps.py`` stays a readable list of awaits.
"""

from __future__ import annotations

import enum
import heapq
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from provisioner.errors import (
    ApiError,
    AuthError,
    ForbiddenError,
    NotFoundError,
    OutcomeUnknownError,
    TransientError,
)
from provisioner.models import Changes, Device, Outcome, Row, Status, utc_moment
from provisioner.run.journal import JournalEntry, Phase
from provisioner.webex.retry import is_replay_safe
from provisioner.words import count_of

__all__ = [
    "CLOCK_TOLERANCE",
    "GAVE_UP",
    "MAX_CREATES",
    "MAX_LOOKUPS",
    "UNANSWERED_ROWS",
    "UNCONFIRMED",
    "UNTOLD_CODE_DEVICE",
    "Schedule",
    "Step",
    "Verdict",
    "can_reuse_code",
    "continued_text",
    "create_answer_lost",
    "describe_failure",
    "done_plan",
    "dry_run_text",
    "ended_since",
    "failed_outcome",
    "found_status",
    "invalid_outcome",
    "is_token_refusal",
    "is_unanswered",
    "judge_found_device",
    "kept_device",
    "lost_code_devices",
    "may_have_taken_effect",
    "new_code_device",
    "order_rows",
    "other_owner_text",
    "owner_key",
    "planned_changes",
    "resume_from",
    "row_org",
    "rows_by_org",
]

#: Creates (or activation codes) sent for one row at most, while each one's outcome
#: stays unknown. A lookup follows each, so a create that happened is never repeated.
#: Why eight: under ``make soak``'s faults (about 15% of creates lost) one row in a
#: 5,000-row soak lost five running about once a soak, and six (the old bound, which
#: fails the row: "run rerun") in 3 partner soaks of 9; each more try cuts that about
#: sevenfold, for a few calls more only on a row the API keeps failing.
MAX_CREATES = 8
# The hint of a create whose answer every try lost: the rerun of such a row looks its
# MAC up first, and a device made while the earlier command ran is the rollout's own.
UNCONFIRMED = (
    f"the API did not confirm it after {MAX_CREATES} tries; run rerun to check and "
    "continue"
)
#: The hint of a row whose calls kept failing transiently after every retry.
GAVE_UP = "the API kept failing after retries; run rerun later"
#: Rows in a row that got no answer at all from the API (every try dropped, refused
#: or timed out) before a run starts no more rows: the API is down or out of reach,
#: and every later row would fail the same way, each after all its retries (a QA
#: pass's stopped emulator had a run failing 0.7 rows/s for half an hour). Five:
#: ``make soak``'s dropped connections never fail one row's every try, let alone
#: five rows' in a row.
UNANSWERED_ROWS = 5
#: Lookups by MAC for one row at most, when each one fails transiently.
MAX_LOOKUPS = 3
#: How much earlier than a row's start the API's ``created`` stamp of a device the row
#: made may read: the stamp is cut to milliseconds, and the two clocks differ a little.
CLOCK_TOLERANCE = timedelta(seconds=2)
#: The status of a refused token.
HTTP_UNAUTHORIZED = 401
#: Why a code row's tags wait when the API did not say which device its code made.
UNTOLD_CODE_DEVICE = (
    "the API did not say which device this code made, and it cannot be told from "
    "the owner's other pending devices; once it activates, set the tags on it in "
    "Control Hub"
)
#: The connection statuses of a device still waiting for its activation code.
PENDING_STATUSES = frozenset({"activating", "pending"})


class Step(enum.StrEnum):
    """
    The per-row steps, named as the report's ``error`` column names them.
    """

    CREATE = "create device"
    LOOKUP = "look up MAC"
    TAGS = "apply tags"
    #: The same step on a device the run itself created: the report must say so,
    #: or a rollback could not tell it from a device found there (and keep it),
    #: and a rerun that finds it would call it adopted.
    TAGS_ON_CREATED = "apply tags to the device this run created"
    CODE = "issue activation code"
    #: The same call made by ``codes --renew`` to replace a row's code.
    RENEW_CODE = "renew activation code"
    LOST_CODE = "remove a lost code's device"
    OWNER = "look up owner"


class Verdict(enum.Enum):
    """
    What a device found by MAC means for a row.
    """

    ABSENT = "absent"
    OURS = "ours"
    OTHER_OWNER = "other_owner"


def owner_key(row: Row) -> str:
    """
    The key of the owner whose creates a row takes turns with (one at a time).
    """
    if row.owner_id is None:
        return f"row:{row.number}"
    return f"{row.owner_kind}:{row.owner_id}"


class Schedule:
    """
    Which row a free worker starts next: longest-processing-time first across owners.

    One owner's creates and activation codes run one at a time, so an owner with n
    rows left is a chain of at least n create latencies. Starting the owner with the
    most rows left whenever a worker is free (ties: the owner that comes first in
    the manifest) starts the long chains early, so they end with the rest instead of
    being the run's tail; the many small owners fill the workers meanwhile. Each
    owner's rows keep manifest order.

    ``take`` hands out a row only for an owner that is free; the owner is busy until
    ``release`` (the engine releases it when the row's create or code call ends, or
    when the row ends without one), so a worker never sits on another row's lock.
    Pure and synchronous: the engine awaits, this only decides.
    """

    def __init__(self, rows: Iterable[Row]) -> None:
        self._queues: dict[str, deque[Row]] = {}
        for row in rows:
            self._queues.setdefault(owner_key(row), deque()).append(row)
        # Max-heap on rows left (negated), then on manifest order of the owner.
        self._order = {key: index for index, key in enumerate(self._queues)}
        self._free = [
            (-len(queue), self._order[key], key) for key, queue in self._queues.items()
        ]
        heapq.heapify(self._free)
        self._busy: set[str] = set()
        self._left = sum(len(queue) for queue in self._queues.values())

    @property
    def left(self) -> int:
        """
        Rows not handed out yet.
        """
        return self._left

    @property
    def busy(self) -> frozenset[str]:
        """
        The owners with a row handed out and not released yet.
        """
        return frozenset(self._busy)

    def take(self) -> Row | None:
        """
        Hand out the next row of the free owner with the most rows left, and mark
        that owner busy; None when every owner with rows left is busy (or none is
        left: see ``left``).
        """
        if not self._free:
            return None
        _, _, key = heapq.heappop(self._free)
        self._busy.add(key)
        self._left -= 1
        return self._queues[key].popleft()

    def release(self, key: str) -> None:
        """
        Mark ``key``'s owner free again; its next row can be handed out. Releasing an
        owner that is not busy does nothing.
        """
        if key not in self._busy:
            return
        self._busy.discard(key)
        queue = self._queues[key]
        if queue:
            heapq.heappush(self._free, (-len(queue), self._order[key], key))


def order_rows(rows: Iterable[Row]) -> tuple[Row, ...]:
    """
    The order ``Schedule`` starts rows in when each row ends before the next starts.

    For showing and testing the policy: each owner's rows in manifest order, the
    owner with the most rows left first.
    """
    schedule = Schedule(rows)
    ordered: list[Row] = []
    while (row := schedule.take()) is not None:
        ordered.append(row)
        schedule.release(owner_key(row))
    return tuple(ordered)


def resume_from(
    row: Row, entry: JournalEntry | None, digest: str
) -> tuple[Outcome | None, JournalEntry | None]:
    """
    Decide what a journal entry means for a row now: done, or where to continue.

    Returns ``(outcome, None)`` for a row that is done (its entry finished, and the
    row asks for what it asked for then), else ``(None, entry)`` with the entry to
    continue from (None: start afresh). A finished row whose owner, model or tags
    changed since is looked at again: a MAC row with a device is checked by MAC (its
    owner may differ now); a code row keeps its code and has its tags applied again.
    """
    if entry is None or entry.phase is not Phase.DONE or entry.outcome is None:
        return None, entry
    outcome = entry.outcome
    if entry.digest == digest:
        return outcome, None
    if row.is_activation_code_row and outcome.activation_code:
        kept = replace(
            outcome,
            status=Status.CODE_ISSUED,
            error=None,
            http_status=None,
            tracking_id=None,
            tags_deferred=False,
        )
        return None, replace(entry, phase=Phase.CREATED, outcome=kept)
    if not row.is_activation_code_row and entry.device_id:
        return None, replace(entry, phase=Phase.STARTED, outcome=None)
    return None, None


def ended_since(
    entry: JournalEntry | None,
    later: Iterable[JournalEntry],
    digest: str,
    *,
    began: datetime | None = None,
) -> JournalEntry | None:
    """
    The entry of a rerun of the run's report that ended a row since the run's own
    journal last wrote it (``entry``), when that journal does not say the row ended
    well asking what it asks now (``digest``): the latest that finished the row asking
    that. None: the run's own word stands, or the run does the row itself.

    A rerun takes the report's ``failed`` and ``not_started`` rows, and its journal is
    not the run's: without this, the same run command again would report a row the
    rerun has since created as failed (with a reason about an org that is no longer
    so), or, for a row it never finished, find the rerun's device by MAC and report it
    ``adopted``, which a rollback keeps. So a row the run failed, never finished (left
    open by a Ctrl-C or a kill, or never started: ``entry`` None, when ``began`` is
    when the journal began, so a rerun before a ``--fresh`` start over does not
    count), or finished asking something else gives way to a rerun that ended it
    later. A row the run ended well for what it asks now was not rerun.
    """
    if (
        entry is not None
        and entry.phase is Phase.DONE
        and entry.outcome is not None
        and entry.digest == digest
        and entry.outcome.status is not Status.FAILED
    ):
        return None
    ended = began if entry is None else entry.updated_at
    if ended is None:
        return None
    since = [
        other
        for other in later
        if other.phase is Phase.DONE
        and other.outcome is not None
        and other.digest == digest
        and other.updated_at is not None
        and other.updated_at > ended
    ]
    return max(since, key=lambda other: other.updated_at or ended, default=None)


def row_org(row: Row, default_org: str | None) -> str | None:
    """
    The org a row's calls go to: its own ``orgId``, else the run's (None: the token's).
    """
    return row.org_id or default_org


def rows_by_org(
    rows: Iterable[Row], default_org: str | None
) -> dict[str | None, list[Row]]:
    """
    Group rows by the org they go to, orgs and rows in manifest order.
    """
    groups: dict[str | None, list[Row]] = {}
    for row in rows:
        groups.setdefault(row_org(row, default_org), []).append(row)
    return groups


def planned_changes(
    rows: Iterable[Row],
    entries: Mapping[int, JournalEntry],
    previous: Mapping[int, Outcome],
    *,
    voids: int = 0,
    reissue: bool = False,
    note_orgs: bool = True,
) -> Changes:
    """
    Count what working ``rows`` may write, for the confirmation before the first write.

    A row whose device or code already exists (journalled as created, a rerun's
    code that still stands, or a rerun's device that only its tags failed on)
    creates nothing; every row with tags may set them.
    ``voids`` codes replaced by ``--fresh`` are voided; with ``reissue`` the earlier
    pending codes of the rows' owners are too (how many, only the calls will say).
    Rows that name their own org are said to (``note_orgs``; not in an org's own
    line of a partner's confirmation, where every row is that org's).
    """
    rows = list(rows)
    creates = codes = tags = 0
    for row in rows:
        entry = entries.get(row.number)
        exists = entry is not None and entry.phase is Phase.CREATED
        earlier = previous.get(row.number)
        if row.is_activation_code_row:
            exists = exists or (
                earlier is not None and earlier.activation_code is not None
            )
            codes += not exists
        else:
            # A rerun's row whose device the earlier command found or made (its
            # tags failed) is looked up by MAC, not created again.
            exists = exists or (earlier is not None and earlier.device_id is not None)
            creates += not exists
        tags += bool(row.tags)
    notes: list[str] = []
    if reissue and codes:
        notes.append(
            "void the pending codes the rows' owners already hold from earlier runs "
            "(--reissue-codes)"
        )
    orgs = {row.org_id for row in rows if row.org_id}
    if orgs and note_orgs:
        notes.append(
            f"{sum(1 for row in rows if row.org_id)} of these rows act on "
            f"{count_of(len(orgs), 'other org')} named in their orgId column"
        )
    return Changes(
        creates=creates,
        codes=codes,
        tag_updates=tags,
        voided_codes=voids,
        notes=tuple(notes),
    )


def is_token_refusal(outcome: Outcome) -> bool:
    """
    True for a row that failed because the API refused the token (401): the token
    stopped working, which says nothing about the row.
    """
    return outcome.status is Status.FAILED and outcome.http_status == HTTP_UNAUTHORIZED


def is_unanswered(outcome: Outcome) -> bool:
    """
    True for a row that failed because its calls got no answer at all after every
    try (no HTTP status: a dropped network, a stopped or hung API), which says
    nothing about the row: the same command does it again.
    """
    return (
        outcome.status is Status.FAILED
        and outcome.http_status is None
        and outcome.error is not None
        and (GAVE_UP in outcome.error or UNCONFIRMED in outcome.error)
    )


def invalid_outcome(row: Row) -> Outcome:
    """
    The outcome of a row that failed validation: its problems, and no call made.
    """
    text = "; ".join(f"{p.column}: {p.message}" for p in row.problems)
    return Outcome(row=row.number, status=Status.INVALID, error=text)


_NOT_RERUN = "not rerun, the row is invalid now: "


def kept_device(previous: Outcome | None, invalid: Outcome) -> Outcome:
    """
    The outcome of a rerun's row that is invalid now (a masked password, say).

    When its previous outcome says the rollout created its device (``created``, or
    failed at tags on the device it created), or holds an activation code it issued,
    the rerun's report must still say so: a rollback of it would leave that device,
    and a code dropped from the report is lost. The previous outcome is kept, the
    row's problems added to its error, so fixing the report and rerunning it goes
    on from there. Otherwise the row is plainly ``invalid``.
    """
    if previous is None:
        return invalid
    created = previous.device_id is not None and (
        made_by_run(previous) or previous.status is Status.CREATED
    )
    if not (created or previous.activation_code):
        return invalid
    # A rerun of this rerun's report says the row's problems once, as they are now.
    kept = (previous.error or "").split(f"; {_NOT_RERUN}")[0]
    problems = f"{_NOT_RERUN}{invalid.error}"
    return replace(previous, error=f"{kept}; {problems}" if kept else problems)


def judge_found_device(found: Device | None, row: Row) -> Verdict:
    """
    Decide whether the device registered with the row's MAC belongs to the row's owner.
    """
    if found is None:
        return Verdict.ABSENT
    if row.workspace_id and found.workspace_id == row.workspace_id:
        return Verdict.OURS
    if row.person_id and found.person_id == row.person_id:
        return Verdict.OURS
    return Verdict.OTHER_OWNER


def other_owner_text(found: Device) -> str:
    """
    Say who holds a MAC, and what to do about it.
    """
    if found.workspace_id:
        owner = f"workspace {found.workspace_id}"
    elif found.person_id:
        owner = f"person {found.person_id}"
    else:
        owner = "no workspace or person"
    return (
        f"the MAC is already registered to {owner} (device {found.id}); delete that "
        "device first, or correct the row's mac or owner"
    )


def new_code_device(
    devices: Iterable[Device], since: datetime, claimed: Iterable[str]
) -> Device | None:
    """
    Tell which device an activation code answered without a device id made, or None.

    Asked under the owner's lock right after the code was issued: it is the one
    pending device made since the row started that no journalled row claims. With
    none or several (another tool made one at the same moment), it cannot be told,
    and None leaves the row's tags deferred rather than on someone else's device.
    """
    made = lost_code_devices(devices, since, claimed)
    return made[0] if len(made) == 1 else None


def found_status(
    device: Device,
    since: datetime | None,
    *,
    unknown: bool,
    earlier: Sequence[tuple[datetime, datetime]] = (),
) -> Status:
    """
    Say whether a device found by MAC with the row's owner is the rollout's own
    (``created``) or was there before (``adopted``).

    Only a create whose answer was lost (``unknown``) can have made it, and only if the
    API stamped it at or after the row's first start (``since``, less
    ``CLOCK_TOLERANCE``), or while an earlier command of the rollout ran (``earlier``:
    a rerun of a row whose create's answer that command lost). A lost answer to a
    create of a MAC that was registered already must not make that device look like
    the run's: a rollback deletes what a report says was created. Without a readable
    stamp or a start, nothing shows the device is the run's.
    """
    if not unknown:
        return Status.ADOPTED
    created = utc_moment(device.created)
    if created is None:
        return Status.ADOPTED
    if since is not None and created >= since - CLOCK_TOLERANCE:
        return Status.CREATED
    for started, finished in earlier:
        if started - CLOCK_TOLERANCE <= created <= finished + CLOCK_TOLERANCE:
            return Status.CREATED
    return Status.ADOPTED


def create_answer_lost(outcome: Outcome | None) -> bool:
    """
    True for a MAC row that failed at its create with the answer lost: the device may
    exist, made by that create (a rerun looks it up before creating).
    """
    return (
        outcome is not None
        and outcome.status is Status.FAILED
        and outcome.device_id is None
        and (outcome.error or "").startswith(f"{Step.CREATE}:")
        and UNCONFIRMED in (outcome.error or "")
    )


def lost_code_devices(
    devices: Iterable[Device], since: datetime, claimed: Iterable[str]
) -> tuple[Device, ...]:
    """
    Pick the pending devices that lost activation codes left among an owner's devices.

    A device qualifies when it waits for activation (no MAC, status activating or
    pending), was created at or after ``since`` (the row's first start, less
    ``CLOCK_TOLERANCE``), and no journalled row claims it. A device without a
    readable ``created`` stamp never qualifies: nothing shows it is this run's.
    """
    taken = set(claimed)
    earliest = since - CLOCK_TOLERANCE
    lost = []
    for device in devices:
        if device.mac or device.id in taken:
            continue
        if device.connection_status not in PENDING_STATUSES:
            continue
        created = utc_moment(device.created)
        if created is not None and created >= earliest:
            lost.append(device)
    return tuple(lost)


def may_have_taken_effect(error: ApiError) -> bool:
    """
    Decide whether a write call that failed with ``error`` may still have taken effect.

    An unknown outcome may have; so may a timeout, a dropped connection or a 5xx. A
    429/423 or a refused connection means the API never processed the call.
    """
    if isinstance(error, OutcomeUnknownError):
        return True
    # idempotent=None would read the same (falsy): pragma on that argument's line.
    return isinstance(error, TransientError) and not is_replay_safe(
        error,
        idempotent=False,  # pragma: no mutate
    )


def can_reuse_code(previous: Outcome | None, now: datetime) -> bool:
    """
    Decide whether a previous outcome's activation code still stands (no new code).

    A rerun of a row whose code was issued (tags deferred, or failed at tags) keeps
    that code until it expires; issuing another would leave two pending devices.
    """
    if previous is None or previous.activation_code is None:
        return False
    if not previous.activation_expiry:
        return True
    try:
        expiry = datetime.fromisoformat(previous.activation_expiry)
    except ValueError:
        return True
    if expiry.tzinfo is None or now.tzinfo is None:
        return expiry.replace(tzinfo=None) > now.replace(tzinfo=None)
    return expiry > now


def describe_failure(step: Step, error: ApiError) -> str:
    """
    Put a failed call into words a person can act on: the step, the reason, a hint.
    """
    reason = error.message.rstrip(".")
    if isinstance(error, AuthError):
        hint = "the access token was refused; check the token and run again"
    elif isinstance(error, ForbiddenError):
        hint = "the token lacks a needed scope or admin rights; use an admin token"
    elif isinstance(error, NotFoundError) and step in (
        Step.CREATE,
        Step.CODE,
        Step.RENEW_CODE,
        Step.OWNER,
    ):
        hint = "check the row's workspaceId or personId (and orgId)"
    elif isinstance(error, OutcomeUnknownError):
        hint = UNCONFIRMED
    elif isinstance(error, TransientError):
        hint = GAVE_UP
    else:
        hint = ""  # pragma: no mutate - None reads the same: no hint either way
    return f"{step}: {reason}" + (f" ({hint})" if hint else "")


def failed_outcome(
    base: Outcome, step: Step, error: ApiError | None, text: str | None = None
) -> Outcome:
    """
    Turn a row's partial outcome into a failed one, keeping what it already has.
    """
    if text is None:
        assert error is not None
        text = describe_failure(step, error)
    else:
        text = f"{step}: {text}"
    return replace(
        base,
        status=Status.FAILED,
        error=text,
        http_status=error.status if error is not None else None,
        tracking_id=error.tracking_id if error is not None else None,
        tags_deferred=False,
    )


def tags_step(base: Outcome) -> Step:
    """
    The step a tags call of a MAC row is named by: on the run's own device or not.
    """
    return Step.TAGS_ON_CREATED if base.status is Status.CREATED else Step.TAGS


def made_by_run(outcome: Outcome) -> bool:
    """
    True for a failed MAC row whose device the run created before its tags failed.
    """
    return (
        outcome.status is Status.FAILED
        and outcome.device_id is not None
        and (outcome.error or "").startswith(f"{Step.TAGS_ON_CREATED}:")
    )


def rerun_status(status: Status, device_id: str, previous: Outcome | None) -> Status:
    """
    Say ``created`` for the device an earlier run created, found again by a rerun.

    A rerun of a row that failed at its tags finds its device by MAC; that device
    is the earlier run's own when the report said so, and stays the run's own (a
    rollback of the new report deletes it) rather than turning ``adopted``.
    """
    if (
        status is Status.ADOPTED
        and previous is not None
        and made_by_run(previous)
        and previous.device_id == device_id
    ):
        return Status.CREATED
    return status


def dry_run_text(
    row: Row,
    found: Device | None,
    pending: Device | None = None,
    *,
    reissue: bool = False,
    made_by_run: bool = False,
) -> str:
    """
    Say what a real run would do with a row that passed the read-only checks.

    ``pending``: for a code row, a pending device of its model the owner already has.
    ``made_by_run``: ``found`` is the device an interrupted run's create made (the
    journal's ``started`` row; ``found_status``), which the run reports ``created``.
    """
    if row.is_activation_code_row and pending is not None and not reissue:
        return (
            f"would issue no code: the owner already has pending device "
            f"{pending.id} of this model (code_pending)"
        )
    if row.is_activation_code_row and pending is not None:
        action = f"would void pending device {pending.id} and issue a new code"
    elif row.is_activation_code_row:
        action = "would issue an activation code"
    elif found is not None and made_by_run:
        action = (
            f"would take device {found.id} as the one an interrupted run's create "
            "made (created)"
        )
    elif found is not None:
        action = f"would adopt device {found.id} (already registered to this owner)"
    else:
        action = "would create the device by MAC"
    if row.tags:
        action += " and apply tags " + ";".join(row.tags)
    return action


def continued_text(row: Row, outcome: Outcome) -> str:
    """
    Say what a real run would do with a row an interrupted run left ``created`` in
    the journal: keep its device or code (``outcome``, partial), then its tags.
    """
    if row.is_activation_code_row:
        action = f"would keep the code an interrupted run issued ({outcome.status})"
    else:
        action = (
            f"would keep device {outcome.device_id}, which an interrupted run "
            f"{'created' if outcome.status is Status.CREATED else 'found'} "
            f"({outcome.status})"
        )
    if row.tags:
        action += " and apply tags " + ";".join(row.tags)
    return action


def done_plan(done: Outcome) -> Outcome:
    """
    A dry run's outcome for a row the journal of its report finished: a real run
    does not redo it, and reports it as it ended then (said in ``plan``).
    """
    device = f" (device {done.device_id})" if done.device_id else ""
    text = f"would do nothing: an earlier run into this report ended it {done.status}"
    text += device
    if done.status is Status.FAILED:
        text += "; rerun that report to try it again"
    return Outcome(row=done.row, status=Status.PLANNED, plan=text)
