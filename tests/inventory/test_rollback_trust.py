"""
Whether a report's word that the run made a device can be trusted (pure): the run
journals' records of each row, then the API's stamp against the rollout's history.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from provisioner.inventory.rollback_rules import (
    Candidate,
    RollbackResult,
    RollbackStatus,
    plan_rollback,
)
from provisioner.inventory.rollback_trust import (
    JournalRecord,
    judge_age,
    trust_journals,
)
from provisioner.models import Device, Manifest, Outcome, Row, Status
from provisioner.run.plan import UNCONFIRMED

START = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
SPANS = ((START, START + timedelta(minutes=5)),)
MAC = "00AABB000002"
CREATED = Outcome(row=2, status=Status.CREATED, device_id="D2")


def plan_of(outcome: Outcome, *records: Outcome | None) -> Candidate | RollbackResult:
    """The row's candidate or settled result once the journals' records are heard."""
    row = Row(number=2, cells=(), mac=MAC, model="DMS Cisco 8851", workspace_id="WS1")
    manifest = Manifest(
        path=Path("r.csv"), sheet=None, columns=(), field_columns={}, rows=(row,)
    )
    heard = [JournalRecord(f"j{n}.journal.sqlite", r) for n, r in enumerate(records)]
    plan = trust_journals(
        plan_rollback(manifest, {2: outcome}), {2: heard} if heard else {}
    )
    return plan.candidates[0] if plan.candidates else plan.settled[2]


class TestTrustJournals:
    def test_a_row_the_journal_records_adopted_is_kept(self) -> None:
        """The report says created (its cell edited), the journal adopted: the
        device is kept, never read, the reason naming the journal."""
        adopted = Outcome(row=2, status=Status.ADOPTED, device_id="D2")

        found = plan_of(CREATED, adopted)

        assert isinstance(found, RollbackResult)
        assert (found.status, found.device_id) == (RollbackStatus.KEPT, "D2")
        assert found.reason.startswith(
            "the run journal j0.journal.sqlite records this row as adopted: its "
            "device was registered before the run"
        )
        assert "whatever the report's status says" in found.reason

    @pytest.mark.parametrize(
        "recorded",
        [
            Outcome(row=2, status=Status.CODE_PENDING, device_id="D2"),
            Outcome(row=2, status=Status.FAILED, device_id="D2", error="tags: x"),
            Outcome(row=2, status=Status.FAILED, error="create device: 400 bad"),
        ],
        ids=["code_pending", "failed at an adopted device's tags", "failed"],
    )
    def test_a_row_recorded_as_nothing_the_run_made_is_kept(
        self, recorded: Outcome
    ) -> None:
        """Any record that says the run made no device keeps it, saying which."""
        found = plan_of(CREATED, recorded)

        assert isinstance(found, RollbackResult)
        assert found.status is RollbackStatus.KEPT
        assert f"as {recorded.status.value}: the run did not create" in found.reason

    @pytest.mark.parametrize(
        "recorded",
        [
            CREATED,
            Outcome(
                row=2, status=Status.CODE_ISSUED, device_id="D1", activation_code="1"
            ),
            Outcome(
                row=2,
                status=Status.FAILED,
                device_id="D2",
                error="apply tags to the device this run created: 502",
            ),
            Outcome(row=2, status=Status.FAILED, device_id="D2", activation_code="1"),
        ],
        ids=["created", "a code since renewed", "tags failed", "code then failed"],
    )
    def test_a_row_recorded_as_the_runs_own_is_confirmed(
        self, recorded: Outcome
    ) -> None:
        """A record of a device the run made confirms the report's word."""
        found = plan_of(CREATED, recorded)

        assert isinstance(found, Candidate)
        assert found.confirmed

    def test_one_journal_that_made_it_outweighs_another_that_did_not(self) -> None:
        """The first run failed the row, its rerun created it: the rerun's journal
        confirms it, whichever is read first."""
        failed = Outcome(row=2, status=Status.FAILED, error="create device: 400")

        found = plan_of(CREATED, failed, CREATED)

        assert isinstance(found, Candidate)
        assert found.confirmed

    @pytest.mark.parametrize(
        "recorded",
        [
            None,
            Outcome(
                row=2,
                status=Status.FAILED,
                error=f"create device: connection dropped ({UNCONFIRMED})",
            ),
        ],
        ids=["started, never finished", "every create lost its answer"],
    )
    def test_a_record_that_cannot_tell_leaves_it_to_the_age(
        self, recorded: Outcome | None
    ) -> None:
        """Started and never finished, or every create lost: neither kept nor
        confirmed, the device's age decides."""
        found = plan_of(CREATED, recorded)

        assert isinstance(found, Candidate)
        assert not found.confirmed

    def test_a_row_no_journal_records_is_left_as_it_was(self) -> None:
        """No journal (a report sent on alone): the candidate is unchanged."""
        found = plan_of(CREATED)

        assert found == Candidate(
            row=2, device_id="D2", is_code=False, mac=MAC, workspace_id="WS1"
        )


def device_made(at: datetime | None) -> Device:
    stamp = None if at is None else at.isoformat().replace("+00:00", "Z")
    return Device(id="D2", mac=MAC, workspace_id="WS1", created=stamp)


class TestJudgeAge:
    CANDIDATE = Candidate(row=2, device_id="D2", is_code=False, mac=MAC)

    def test_a_device_made_before_the_rollout_is_kept(self) -> None:
        """Made a day before the first command began: kept, saying when both were."""
        device = device_made(START - timedelta(days=1))

        found = judge_age(self.CANDIDATE, device, earlier=SPANS)

        assert found is not None
        assert found.status is RollbackStatus.KEPT
        assert found.reason == (
            f"the API made the device at {device.created}, before the rollout's "
            "first command began (2026-11-29T09:00:00+00:00): it is not the "
            "rollout's, whatever the report's status says"
        )

    @pytest.mark.parametrize(
        "at",
        [START - timedelta(seconds=1), START + timedelta(hours=3), None],
        ids=["within the clock tolerance", "after the first command", "no stamp"],
    )
    def test_a_device_made_since_or_of_unknown_age_goes_on(
        self, at: datetime | None
    ) -> None:
        """Made after the first command began (a renewal's code, say), within the
        clocks' tolerance of it, or with no stamp: nothing says it is not the
        rollout's."""
        assert judge_age(self.CANDIDATE, device_made(at), earlier=SPANS) is None

    def test_without_history_nothing_is_said(self) -> None:
        """No history (a CSV alone): the report is taken at its word."""
        device = device_made(START - timedelta(days=1))

        assert judge_age(self.CANDIDATE, device, earlier=()) is None

    def test_a_row_a_journal_confirmed_is_not_judged_by_age(self) -> None:
        """The journal's word is the run's own: no clock is second-guessed."""
        confirmed = Candidate(
            row=2, device_id="D2", is_code=False, mac=MAC, confirmed=True
        )
        device = device_made(START - timedelta(days=1))

        assert judge_age(confirmed, device, earlier=SPANS) is None
