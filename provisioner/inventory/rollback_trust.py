"""
Whether a report's word that the run made a device can be trusted: pure, no I/O.

A report is a spreadsheet: its ``status`` cell can be edited by hand (``adopted``
turned ``created``) or be otherwise wrong, and a rollback that took it at its word
would delete a device that was registered before the run. Two witnesses know better:

- **The run journals** of the rollout (the one beside the report, and those of the
  reports its reruns read): what the run did with each row. A row they record, and
  none of them as the run's own device (``adopted``, ``code_pending``, a failure
  that made nothing), is kept, whatever the report says (``trust_journals``). A row
  one of them records as the run's own is confirmed.
- **The report's run history**, when no journal records the row (an XLSX report
  sent on alone): a device the API made before the rollout's first command began
  cannot be the rollout's, and is kept (``judge_age``, after the device is read).

A row no journal records and whose report has no history (a CSV alone) is taken at
its word: nothing else says what the run did.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from provisioner.inventory.rollback_rules import (
    Candidate,
    RollbackPlan,
    RollbackResult,
    RollbackStatus,
)
from provisioner.models import Device, Outcome, Status, utc_moment
from provisioner.run.plan import CLOCK_TOLERANCE, create_answer_lost, made_by_run

__all__ = ["JournalRecord", "judge_age", "trust_journals"]

#: The statuses of a row whose device the run made (created, or issued its code).
_MADE = frozenset({Status.CREATED, Status.CODE_ISSUED})


@dataclass(frozen=True, slots=True)
class JournalRecord:
    """
    What one run journal of the rollout recorded for a report row.

    ``outcome`` is None for a row started and never finished (a kill mid-row: what
    it did is not known); a row caught after its create holds a partial outcome.
    """

    journal: str
    outcome: Outcome | None


def trust_journals(
    plan: RollbackPlan, records: Mapping[int, Sequence[JournalRecord]]
) -> RollbackPlan:
    """
    Check each candidate against what the run journals recorded for its row.

    A row they record, none of them as made by the run, is settled ``kept`` (its
    device is never read, never deleted); a row one of them records as made by the
    run is ``confirmed``; any other (no record, or one that cannot tell) is left for
    ``judge_age``.

    Args:
        records: by report row number, every journal's record of that row.
    """
    candidates: list[Candidate] = []
    settled = dict(plan.settled)
    for candidate in plan.candidates:
        found = records.get(candidate.row, ())
        if any(_made(record.outcome) for record in found):
            candidates.append(replace(candidate, confirmed=True))
        elif found and not any(_unsure(record.outcome) for record in found):
            settled[candidate.row] = _not_made(candidate, found[0])
        else:
            candidates.append(candidate)
    return RollbackPlan(candidates=tuple(candidates), settled=settled)


def _made(outcome: Outcome | None) -> bool:
    """
    True when the outcome says the run made the row's device: created, its code
    issued, or made before a later step failed.
    """
    if outcome is None:
        return False
    if outcome.status in _MADE or made_by_run(outcome):
        return True
    return outcome.status is Status.FAILED and bool(outcome.activation_code)


def _unsure(outcome: Outcome | None) -> bool:
    """
    True when the record cannot tell whether the run made a device: the row was
    started and never finished, or every create of it lost its answer.
    """
    return outcome is None or create_answer_lost(outcome)


def _not_made(candidate: Candidate, record: JournalRecord) -> RollbackResult:
    assert record.outcome is not None
    status = record.outcome.status
    if status is Status.ADOPTED:
        what = (
            "adopted: its device was registered before the run, and a rollback never "
            "deletes an adopted device"
        )
    else:
        what = f"{status.value}: the run did not create this row's device"
    return RollbackResult(
        row=candidate.row,
        status=RollbackStatus.KEPT,
        reason=(
            f"the run journal {record.journal} records this row as {what}, whatever "
            "the report's status says"
        ),
        device_id=candidate.device_id,
    )


def judge_age(
    candidate: Candidate,
    device: Device,
    *,
    earlier: Sequence[tuple[datetime, datetime]],
) -> RollbackResult | None:
    """
    Keep a device the API made before the rollout's first command began, unless a
    run journal confirmed the row; None when nothing says it is not the rollout's.

    Args:
        device: the device as read before its delete.
        earlier: when the rollout's commands ran (the report's run history); none
            known, nothing can be said.
    """
    if candidate.confirmed or not earlier:
        return None
    created = utc_moment(device.created)
    first = min(started for started, _ in earlier)
    if created is None or created >= first - CLOCK_TOLERANCE:
        return None
    return RollbackResult(
        row=candidate.row,
        status=RollbackStatus.KEPT,
        reason=(
            f"the API made the device at {device.created}, before the rollout's first "
            f"command began ({first.isoformat(timespec='seconds')}): it is not the "
            "rollout's, whatever the report's status says"
        ),
        device_id=candidate.device_id,
    )
