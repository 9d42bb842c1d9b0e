"""
Decide what a rollback deletes, what it keeps and why: pure, no I/O.

A rollback takes a run's report and removes exactly what that run made:

- a ``created`` row's device, a ``failed`` row's device the run created before
  its tags failed (its error says so), and the pending device of a row that holds
  an activation code (``code_issued``, or ``failed`` at a later step with its code);
- the device a MAC row's lost create may have made (``failed``, every create's answer
  lost, no device id): found by MAC, it goes when it has the row's owner and the API
  made it while one of the rollout's commands ran (the report's history), as a rerun
  of the row would call it ``created`` (``judge_lost_create``);
- never an ``adopted`` device (it was there before the run), never a device the
  report does not name: every other row is ``skipped``, with the reason. Nor one the
  report calls the run's but the run journals or the report's history say is not
  (``rollback_trust``: a status cell edited by hand).

``plan_rollback`` picks the candidates. Each candidate's device is read (a lost
create's looked up by MAC) before the confirmation, and ``judge`` decides on what
the read found: gone already, kept because it no longer matches the row (another
MAC, another owner) or, for a code, because it was activated (unless
``--include-activated``), or to delete. The confirmation counts the devices to
delete (``planned_changes``), as a dry run plans them; a code's pending device is
read and judged again just before its delete. ``after_delete`` and
``after_error`` turn the delete's answer into the row's result. The results, one per
report row, become the rollback report's columns (``ROLLBACK_COLUMNS``).
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from provisioner.errors import ApiError
from provisioner.live.code_rules import is_activated
from provisioner.live.owner_rules import resolved_owner_id
from provisioner.models import (
    Changes,
    Device,
    Manifest,
    OrgChanges,
    Outcome,
    Status,
    utc_moment,
)
from provisioner.run.plan import create_answer_lost, found_status, made_by_run

__all__ = [
    "ROLLBACK_COLUMNS",
    "Candidate",
    "Delete",
    "RollbackPlan",
    "RollbackResult",
    "RollbackStats",
    "RollbackStatus",
    "after_delete",
    "after_error",
    "count_by_status",
    "judge",
    "judge_lost_create",
    "not_started",
    "plan_rollback",
    "planned",
    "planned_changes",
    "refused_org",
    "renewed_away",
    "renewed_into",
    "rollback_cells",
    "summary_items",
]

ROLLBACK_COLUMNS = (
    "rollback",
    "rollbackReason",
    "rollbackHttpStatus",
    "rollbackTrackingId",
)


class RollbackStatus(enum.StrEnum):
    """
    What a rollback did with a report row; the values are the ``rollback`` column.
    """

    DELETED = "deleted"
    ALREADY_GONE = "already_gone"
    KEPT = "kept"
    SKIPPED = "skipped"
    FAILED = "failed"
    #: An interrupted rollback never began the row; the same command continues.
    NOT_STARTED = "not_started"
    #: A dry run: the device matches its row and would be deleted.
    PLANNED = "planned"

    @property
    def is_ok(self) -> bool:
        """
        True when the row ended well (it does not make the exit code 1).
        """
        return self not in (RollbackStatus.FAILED, RollbackStatus.NOT_STARTED)

    @property
    def is_gone(self) -> bool:
        """
        True when the device is gone for sure: a resumed rollback need not look again.
        """
        return self in (RollbackStatus.DELETED, RollbackStatus.ALREADY_GONE)


@dataclass(frozen=True, slots=True, kw_only=True)
class RollbackResult:
    """
    What became of one report row in a rollback.
    """

    row: int
    status: RollbackStatus
    reason: str
    device_id: str | None = None
    http_status: int | None = None
    tracking_id: str | None = None
    attempts: int = 0
    #: The token may not act for the row's org: the same command cannot delete it,
    #: only one with a token that may.
    org_refused: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Candidate:
    """
    A report row whose device the run made: read it, then delete it if it still
    matches what the row says.

    ``is_code`` marks the pending device of an activation code (it has no MAC of its
    own until it is activated); ``mac`` is the row's MAC otherwise. ``device_id`` is
    None for a row whose every create lost its answer: its device, if the run made
    one, is found by MAC (``judge_lost_create`` then names it). ``confirmed``: a run
    journal of the rollout records the row's device as the run's own, so the report's
    word is not all there is (``rollback_trust``).
    """

    row: int
    device_id: str | None
    is_code: bool
    mac: str | None = None
    workspace_id: str | None = None
    person_id: str | None = None
    org_id: str | None = None
    confirmed: bool = False


@dataclass(frozen=True, slots=True)
class Delete:
    """
    ``judge``'s verdict that the device may go.
    """

    candidate: Candidate


@dataclass(frozen=True, slots=True, kw_only=True)
class RollbackPlan:
    """
    The rows to read and maybe delete, and the results settled without a call.
    """

    candidates: tuple[Candidate, ...]
    settled: Mapping[int, RollbackResult]


@dataclass(frozen=True, slots=True, kw_only=True)
class RollbackStats:
    """
    What a rollback measured, for its summary and its report's Summary sheet.
    """

    started_at: datetime
    finished_at: datetime
    api_calls: int
    rate_limited: int
    retries: int
    dry_run: bool = False
    interrupted: bool = False

    @property
    def duration(self) -> float:
        """
        Seconds from start to finish (never negative).
        """
        return max(0.0, (self.finished_at - self.started_at).total_seconds())


_NOTHING_MADE = {
    Status.ADOPTED: (
        "adopted: the device was registered before the run, so a rollback never "
        "deletes it"
    ),
    Status.CODE_PENDING: (
        "code_pending: the run issued no code for this row (the pending device was "
        "there before it)"
    ),
    Status.INVALID: "invalid: the run made nothing for this row",
    Status.NOT_STARTED: "not_started: the run made nothing for this row",
    Status.PLANNED: "planned: a dry run made nothing for this row",
}


def plan_rollback(manifest: Manifest, outcomes: Mapping[int, Outcome]) -> RollbackPlan:
    """
    Pick the devices the report's rows made; every other row is ``skipped``.

    A device named by two rows is a candidate once (for the first); the second row
    is skipped, naming the first.
    """
    candidates: list[Candidate] = []
    settled: dict[int, RollbackResult] = {}
    claimed: dict[str, int] = {}
    for row in manifest.rows:
        outcome = outcomes.get(row.number)
        reason = _skip_reason(outcome)
        device_id = outcome.device_id if outcome is not None else None
        if reason is None and device_id in claimed:
            reason = f"the same device as row {claimed[device_id]}, rolled back there"
        if reason is None and device_id is None and row.mac is None:
            reason = _LOST_NO_MAC
        if reason is not None or outcome is None:
            settled[row.number] = RollbackResult(
                row=row.number,
                status=RollbackStatus.SKIPPED,
                reason=reason or "nothing to roll back",
                device_id=device_id,
            )
            continue
        if device_id is not None:
            claimed[device_id] = row.number
        # A row that named its owner by name has no id of its own; the report's
        # owner cell says which id the name resolved to.
        resolved = resolved_owner_id(outcome.owner)
        candidates.append(
            Candidate(
                row=row.number,
                device_id=device_id,
                is_code=bool(outcome.activation_code) or row.mac is None,
                mac=row.mac,
                workspace_id=row.workspace_id
                or (resolved if row.workspace_name else None),
                person_id=row.person_id or (resolved if row.person_email else None),
                org_id=row.org_id,
            )
        )
    return RollbackPlan(candidates=tuple(candidates), settled=settled)


def _skip_reason(outcome: Outcome | None) -> str | None:
    """
    Why a row has nothing to delete, or None when it names a device the run made.
    """
    if outcome is None:
        return "the report holds no outcome for this row"
    status = outcome.status
    if status in _NOTHING_MADE:
        return _NOTHING_MADE[status]
    made_code = bool(outcome.activation_code)
    if made_by_run(outcome):
        # Created by the run, then its tags failed: the run's own device.
        return None
    if create_answer_lost(outcome):
        # Every create lost its answer: the last may have made the device. Its MAC
        # is looked up, as the row's rerun would (``judge_lost_create``).
        return None
    if status is Status.FAILED and not made_code:
        if outcome.device_id:
            # A MAC row that failed after its device was found cannot say whether
            # the run made that device or adopted it: keep it, say so.
            return (
                f"failed: the report does not say whether the run created device "
                f"{outcome.device_id} or found it there; delete it by hand if the "
                "run made it"
            )
        return "failed: the run made nothing for this row"
    if not outcome.device_id:
        what = "activation code" if made_code else "device"
        return (
            f"{status.value}: the report names no device for this {what} (the API did "
            "not say which), so none is deleted; remove it in Control Hub if needed"
        )
    return None


_LOST = "failed: a create whose answer was lost may have made this row's device"
_LOST_NO_MAC = f"{_LOST}, but the report's row has no MAC to look it up by"


def judge_lost_create(
    candidate: Candidate,
    device: Device | None,
    *,
    earlier: Sequence[tuple[datetime, datetime]] = (),
) -> Candidate | RollbackResult:
    """
    Decide on the device found by MAC for a row whose every create lost its answer.

    It is the rollout's own (the candidate is returned naming it, for ``judge``)
    when it has the row's owner and the API stamped it while one of the rollout's
    commands ran (``earlier``: the report's run history), as ``plan.found_status``
    tells it for the row's rerun; otherwise it is kept, saying why.

    Args:
        device: the device with the row's MAC; None when there is none.
    """
    if device is None:
        return RollbackResult(
            row=candidate.row,
            status=RollbackStatus.SKIPPED,
            reason=f"{_LOST}, but no device has its MAC {candidate.mac}",
        )
    found = replace(candidate, device_id=device.id)
    if not _has_row_owner(candidate, device):
        return _result(
            found,
            RollbackStatus.KEPT,
            f"{_LOST}, but the device found with its MAC belongs to "
            f"{_owner_text(device)}, not to the row's {_row_owner_text(candidate)}",
        )
    if found_status(device, None, unknown=True, earlier=earlier) is Status.CREATED:
        return found
    if not earlier:
        why = (
            "nothing shows the device found with its MAC is the rollout's: the "
            "report's history does not say when the rollout ran"
        )
    elif utc_moment(device.created) is None:
        why = (
            "nothing shows the device found with its MAC is the rollout's: the API "
            "does not say when it was made"
        )
    else:
        why = (
            f"the device found with its MAC is not the rollout's: the API made it "
            f"at {device.created}, when no command of the rollout ran"
        )
    return _result(found, RollbackStatus.KEPT, f"{_LOST}, but {why}")


def _has_row_owner(candidate: Candidate, device: Device) -> bool:
    if candidate.workspace_id:
        return device.workspace_id == candidate.workspace_id
    if candidate.person_id:
        return device.person_id == candidate.person_id
    return False


def _row_owner_text(candidate: Candidate) -> str:
    return _owner_words(
        candidate.workspace_id,
        candidate.person_id,
        "owner (the report names no owner id)",
    )


def judge(
    candidate: Candidate,
    device: Device | None,
    *,
    include_activated: bool = False,
    delete_was_sent: bool = False,
) -> Delete | RollbackResult:
    """
    Decide on what the read before the delete found.

    Args:
        device: the device as read now; None when the read answered 404.
        include_activated: delete a code's device even if it was activated.
        delete_was_sent: an earlier, interrupted rollback sent this delete (so a
            device now gone is one it deleted).
    """
    if device is None:
        if delete_was_sent:
            return _result(
                candidate,
                RollbackStatus.DELETED,
                "deleted (its delete was sent by an earlier, interrupted rollback)",
            )
        return _result(
            candidate, RollbackStatus.ALREADY_GONE, "already gone: no such device"
        )
    if not candidate.is_code and candidate.mac and device.mac != candidate.mac:
        shown = device.mac or "none"
        return _result(
            candidate,
            RollbackStatus.KEPT,
            f"the device's MAC is now {shown}, not the row's {candidate.mac}: it is "
            "not the device the run created",
        )
    owner = _owner_mismatch(candidate, device)
    if owner is not None:
        return _result(candidate, RollbackStatus.KEPT, owner)
    if candidate.is_code and is_activated(device) and not include_activated:
        state = device.connection_status or "activated"
        mac = f", MAC {device.mac}" if device.mac else ""
        return _result(
            candidate,
            RollbackStatus.KEPT,
            f"activated ({state}{mac}): someone set the device up with the code; "
            "add --include-activated to delete it anyway",
        )
    return Delete(candidate)


def _owner_mismatch(candidate: Candidate, device: Device) -> str | None:
    if candidate.workspace_id and device.workspace_id != candidate.workspace_id:
        now = _owner_text(device)
        return (
            f"the device now belongs to {now}, not to the row's workspace "
            f"{candidate.workspace_id}"
        )
    if candidate.person_id and device.person_id != candidate.person_id:
        now = _owner_text(device)
        return (
            f"the device now belongs to {now}, not to the row's person "
            f"{candidate.person_id}"
        )
    return None


def _owner_text(device: Device) -> str:
    return _owner_words(device.workspace_id, device.person_id, "no owner")


def _owner_words(workspace_id: str | None, person_id: str | None, none: str) -> str:
    if workspace_id:
        return f"workspace {workspace_id}"
    if person_id:
        return f"person {person_id}"
    return none


def after_delete(candidate: Candidate, *, was_missing: bool = False) -> RollbackResult:
    """
    The row's result once its delete was answered: deleted, or (404 on the delete
    itself) already gone.
    """
    if was_missing:
        return _result(
            candidate,
            RollbackStatus.ALREADY_GONE,
            "already gone: the delete found no such device",
        )
    return _result(candidate, RollbackStatus.DELETED, "deleted")


def after_error(candidate: Candidate, step: str, error: ApiError) -> RollbackResult:
    """
    The row's result when its read or delete failed even after retries.
    """
    return RollbackResult(
        row=candidate.row,
        status=RollbackStatus.FAILED,
        reason=f"{step}: {error.message}; run the same command again to retry",
        device_id=candidate.device_id,
        http_status=error.status,
        tracking_id=error.tracking_id,
    )


def renewed_away(
    results: Mapping[int, RollbackResult],
    renewals: Sequence[tuple[str, Mapping[int, Outcome]]],
) -> dict[int, str]:
    """
    The rows whose code a ``codes --renew`` of the report replaced, each with the
    name of the renewal's report that holds its working code.

    A row counts when its device is gone and a renewal's report (``renewals``:
    its name and outcomes, nearest first) holds a code for it on another device:
    the renewal voided the report's code and made that device, which this report
    does not name. The latest renewal holding one is named.
    """
    found: dict[int, str] = {}
    for name, outcomes in renewals:
        for number, result in results.items():
            outcome = outcomes.get(number)
            if (
                result.status.is_gone
                and outcome is not None
                and outcome.activation_code
                and outcome.device_id is not None
                and outcome.device_id != result.device_id
            ):
                found[number] = name
    return found


def renewed_into(result: RollbackResult, report: str) -> RollbackResult:
    """
    ``result`` with its reason saying where the row's working code went (a
    renewal's ``report``), and that this rollback does not delete its device.
    """
    return replace(
        result,
        reason=(
            f"{result.reason}; its code was renewed (codes --renew) into {report}, "
            "whose pending device this rollback does not delete: roll that report "
            "back too"
        ),
    )


def refused_org(
    candidate: Candidate, reason: str, error: ApiError | None
) -> RollbackResult:
    """
    The result of a row whose org the token may not act for: failed with the org's
    one reason (``live.orgs.refusal``), no call made for the row.
    """
    return RollbackResult(
        row=candidate.row,
        status=RollbackStatus.FAILED,
        reason=f"check org: {reason}",
        device_id=candidate.device_id,
        http_status=None if error is None else error.status,
        tracking_id=None if error is None else error.tracking_id,
        org_refused=True,
    )


def not_started(candidate: Candidate) -> RollbackResult:
    """
    The result of a row an interrupted rollback never began.
    """
    return _result(
        candidate,
        RollbackStatus.NOT_STARTED,
        "not started: the rollback was interrupted; run the same command again",
    )


def planned(candidate: Candidate) -> RollbackResult:
    """
    A dry run's result for a device that would be deleted.
    """
    return _result(candidate, RollbackStatus.PLANNED, "would be deleted")


def _result(
    candidate: Candidate, status: RollbackStatus, reason: str
) -> RollbackResult:
    return RollbackResult(
        row=candidate.row, status=status, reason=reason, device_id=candidate.device_id
    )


_READ_AGAIN = (
    "a code's pending device is read again just before its delete, and kept if "
    "someone used the code since"
)


def planned_changes(
    count: int,
    orgs: Sequence[OrgChanges] = (),
    *,
    read: Mapping[RollbackStatus, int] | None = None,
    codes: bool = False,
) -> Changes:
    """
    What a rollback will change, for the confirmation: ``count`` deletions (the
    devices its reads found to delete, as its dry run plans them) and, when the
    devices are in several orgs, each org's share.

    Args:
        read: how the reads before the confirmation ended the other rows they read
            (gone already, kept, failed...), said beside the count.
        codes: some of the devices are codes' pending devices, read again just
            before their delete (a code may be used while the person answers).
    """
    if not count:
        return Changes()
    notes = []
    if read is not None:
        found = " · ".join(
            f"{status.value} {read[status]}"
            for status in RollbackStatus
            if read.get(status)
        )
        total = count + sum(read.values())
        notes.append(
            f"read {total} devices first, as its dry run does: "
            + (
                f"{count} to delete · {found} (the rollback's report says why)"
                if found
                else "all to delete"
            )
        )
    if codes:
        notes.append(_READ_AGAIN)
    return Changes(deletions=count, notes=tuple(notes), orgs=tuple(orgs))


def rollback_cells(result: RollbackResult) -> list[str | int | None]:
    """
    The rollback columns of one report row, in ``ROLLBACK_COLUMNS`` order.
    """
    return [result.status.value, result.reason, result.http_status, result.tracking_id]


def count_by_status(results: Iterable[RollbackResult]) -> dict[RollbackStatus, int]:
    """
    How many rows ended in each status, every status listed.
    """
    counts = Counter(result.status for result in results)
    return {status: counts[status] for status in RollbackStatus}


def summary_items(
    results: Sequence[RollbackResult],
    stats: RollbackStats,
    *,
    report: str,
    base_url: str,
    org: str,
) -> list[tuple[str, str | int | None]]:
    """
    Lay a rollback's Summary sheet out as label/value pairs (value None: a heading).
    """
    items: list[tuple[str, str | int | None]] = [
        ("Rollback", None),
        ("report rolled back", report),
        ("API", base_url),
        ("org", org),
        ("dry run", "yes" if stats.dry_run else "no"),
        ("interrupted", "yes" if stats.interrupted else "no"),
        ("started", stats.started_at.isoformat(timespec="seconds")),
        ("finished", stats.finished_at.isoformat(timespec="seconds")),
        ("duration (s)", f"{stats.duration:.1f}"),
        ("API calls", stats.api_calls),
        ("retries", stats.retries),
        ("rate limited (429)", stats.rate_limited),
        ("Rows by rollback status", None),
        ("rows", len(results)),
    ]
    items.extend(
        (status.value, count) for status, count in count_by_status(results).items()
    )
    return items
