"""
What a rollback deletes, keeps and skips, and why (pure).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from provisioner.errors import ServerError
from provisioner.inventory.rollback_rules import (
    ROLLBACK_COLUMNS,
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
    renewed_away,
    rollback_cells,
    summary_items,
)
from provisioner.live.owner_rules import resolved_owner_id
from provisioner.models import Device, Manifest, Outcome, Row, Status
from provisioner.run.plan import UNCONFIRMED

MAC = "00AABB000001"


def mac_row(number: int, owner: str = "WS1") -> Row:
    return Row(
        number=number,
        cells=(),
        mac=f"00AABB{number:06X}",
        model="DMS Cisco 8851",
        workspace_id=owner,
    )


def code_row(number: int, person: str = "P1") -> Row:
    return Row(number=number, cells=(), model="DMS Cisco 8875", person_id=person)


def manifest_of(*rows: Row) -> Manifest:
    return Manifest(
        path=Path("r.csv"), sheet=None, columns=(), field_columns={}, rows=rows
    )


def plan_one(row: Row, outcome: Outcome) -> Candidate | RollbackResult:
    plan = plan_rollback(manifest_of(row), {row.number: outcome})
    return plan.candidates[0] if plan.candidates else plan.settled[row.number]


class TestPlan:
    def test_created_row_is_a_candidate_with_its_mac_and_owner(self) -> None:
        """A created row's device is read and maybe deleted, checked by MAC and owner."""
        row = mac_row(2)

        found = plan_one(row, Outcome(row=2, status=Status.CREATED, device_id="D2"))

        assert found == Candidate(
            row=2, device_id="D2", is_code=False, mac=row.mac, workspace_id="WS1"
        )

    def test_code_issued_row_is_a_candidate_as_a_code(self) -> None:
        """A code_issued row's pending device is a candidate, checked as a code."""
        outcome = Outcome(
            row=3, status=Status.CODE_ISSUED, device_id="D3", activation_code="1234"
        )

        found = plan_one(code_row(3), outcome)

        assert found == Candidate(row=3, device_id="D3", is_code=True, person_id="P1")

    def test_failed_row_holding_its_code_is_a_candidate(self) -> None:
        """A code row that failed at its tags still made the pending device."""
        outcome = Outcome(
            row=3,
            status=Status.FAILED,
            device_id="D3",
            activation_code="1234",
            error="apply tags: refused",
        )

        found = plan_one(code_row(3), outcome)

        assert isinstance(found, Candidate)
        assert found.is_code

    def test_failed_row_whose_device_the_run_created_is_a_candidate(self) -> None:
        """A MAC row created, then failed at its tags: its device is the run's own."""
        outcome = Outcome(
            row=2,
            status=Status.FAILED,
            device_id="D2",
            error="apply tags to the device this run created: refused",
        )

        found = plan_one(mac_row(2), outcome)

        assert found == Candidate(
            row=2, device_id="D2", is_code=False, mac=mac_row(2).mac, workspace_id="WS1"
        )

    @pytest.mark.parametrize(
        ("outcome", "reason"),
        [
            (Outcome(row=2, status=Status.ADOPTED, device_id="D"), "adopted"),
            (Outcome(row=2, status=Status.CODE_PENDING, device_id="D"), "issued no"),
            (Outcome(row=2, status=Status.INVALID), "made nothing"),
            (Outcome(row=2, status=Status.NOT_STARTED), "made nothing"),
            (Outcome(row=2, status=Status.PLANNED), "dry run made nothing"),
            (Outcome(row=2, status=Status.FAILED), "made nothing"),
            (
                Outcome(row=2, status=Status.FAILED, device_id="D"),
                "does not say whether the run created",
            ),
            (
                Outcome(
                    row=2,
                    status=Status.FAILED,
                    device_id="D",
                    error="apply tags: refused",
                ),
                "does not say whether the run created",
            ),
            (Outcome(row=2, status=Status.CREATED), "names no device"),
            (
                Outcome(row=2, status=Status.CODE_ISSUED, activation_code="1"),
                "names no device for this activation code",
            ),
        ],
        ids=[
            "adopted",
            "code_pending",
            "invalid",
            "not_started",
            "planned",
            "failed",
            "failed with a device",
            "failed at tags on a found device",
            "created without a device id",
            "code without a device id",
        ],
    )
    def test_rows_the_run_made_nothing_for_are_skipped(
        self, outcome: Outcome, reason: str
    ) -> None:
        """Every other row is skipped, saying why; no device is read for it."""
        found = plan_one(mac_row(2), outcome)

        assert isinstance(found, RollbackResult)
        assert found.status is RollbackStatus.SKIPPED
        assert reason in found.reason

    def test_owner_named_by_name_is_checked_by_the_id_it_resolved_to(self) -> None:
        """A row that named its workspace by name is checked against the id the
        report's owner cell says the name resolved to."""
        row = Row(
            number=2,
            cells=(),
            mac=MAC,
            model="DMS Cisco 8851",
            workspace_name="Lobby",
        )
        outcome = Outcome(
            row=2, status=Status.CREATED, device_id="D2", owner="Lobby (id WS7)"
        )

        found = plan_one(row, outcome)

        assert isinstance(found, Candidate)
        assert (found.workspace_id, found.person_id) == ("WS7", None)
        moved = judge(found, Device(id="D2", mac=MAC, workspace_id="WS8"))
        assert isinstance(moved, RollbackResult)
        assert moved.status is RollbackStatus.KEPT

    @pytest.mark.parametrize(
        ("cell", "found"),
        [
            ("Lobby (id WS7)", "WS7"),
            ("Lobby, Denver (id WS7)", "WS7"),
            ("ann@x.example (id P1)", "P1"),
            ("Lobby", None),
            (None, None),
        ],
    )
    def test_resolved_owner_id(self, cell: str | None, found: str | None) -> None:
        """The id is read from the end of the owner cell, when it names one."""
        assert resolved_owner_id(cell) == found

    def test_a_device_named_twice_is_rolled_back_once(self) -> None:
        """The second row naming the same device is skipped, naming the first."""
        rows = (mac_row(2), mac_row(3))
        outcomes = {
            n: Outcome(row=n, status=Status.CREATED, device_id="D") for n in (2, 3)
        }

        plan = plan_rollback(manifest_of(*rows), outcomes)

        assert [c.row for c in plan.candidates] == [2]
        assert "row 2" in plan.settled[3].reason

    def test_every_row_is_planned_once(self) -> None:
        """Candidates and settled rows together are every report row, once."""
        rows = (mac_row(2), mac_row(3), code_row(4))
        outcomes = {
            2: Outcome(row=2, status=Status.CREATED, device_id="D2"),
            3: Outcome(row=3, status=Status.ADOPTED, device_id="D3"),
            4: Outcome(row=4, status=Status.FAILED),
        }

        plan = plan_rollback(manifest_of(*rows), outcomes)

        numbers = [c.row for c in plan.candidates] + list(plan.settled)
        assert sorted(numbers) == [2, 3, 4]


LOST = Outcome(
    row=2,
    status=Status.FAILED,
    error=f"create device: gateway timeout ({UNCONFIRMED})",
    http_status=504,
)


def stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class TestLostCreate:
    """A MAC row whose every create lost its answer may have made its device: the
    rollback looks the MAC up and deletes the device only if it is the rollout's
    (the row's owner, made while one of the rollout's commands ran)."""

    RAN = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
    SPANS = ((RAN, RAN + timedelta(minutes=10)),)

    def candidate(self) -> Candidate:
        found = plan_one(mac_row(2), LOST)
        assert isinstance(found, Candidate)
        return found

    def test_the_row_is_a_candidate_found_by_its_mac(self) -> None:
        """Not skipped as "made nothing": a candidate without a device id."""
        assert self.candidate() == Candidate(
            row=2, device_id=None, is_code=False, mac=mac_row(2).mac, workspace_id="WS1"
        )

    def test_a_row_without_its_mac_is_skipped_saying_why(self) -> None:
        """Nothing to look the device up by: skipped, never a guess."""
        found = plan_one(Row(number=2, cells=(), workspace_id="WS1"), LOST)

        assert isinstance(found, RollbackResult)
        assert found.status is RollbackStatus.SKIPPED
        assert "no MAC" in found.reason

    def test_a_device_made_while_the_rollout_ran_is_deleted(self) -> None:
        """The row's owner, stamped within a span of the report's history: the
        candidate now names the device, and judge lets it go."""
        candidate = self.candidate()
        made = self.RAN + timedelta(minutes=3)
        device = Device(
            id="D9", mac=candidate.mac, workspace_id="WS1", created=stamp(made)
        )

        found = judge_lost_create(candidate, device, earlier=self.SPANS)

        assert isinstance(found, Candidate)
        assert found.device_id == "D9"
        assert judge(found, device) == Delete(found)

    @pytest.mark.parametrize(
        ("device", "spans", "reason"),
        [
            (None, SPANS, "no device has its MAC"),
            (
                Device(id="D9", workspace_id="WS7", created="2025-03-01T09:03:00Z"),
                SPANS,
                "belongs to workspace WS7, not to the row's workspace WS1",
            ),
            (
                Device(id="D9", workspace_id="WS1", created="2025-02-28T09:03:00Z"),
                SPANS,
                "when no command of the rollout ran",
            ),
            (
                Device(id="D9", workspace_id="WS1", created="2025-03-01T09:03:00Z"),
                (),
                "history does not say when the rollout ran",
            ),
            (
                Device(id="D9", workspace_id="WS1"),
                SPANS,
                "does not say when it was made",
            ),
        ],
        ids=["none", "other owner", "made before", "no history", "no stamp"],
    )
    def test_any_other_device_is_kept_saying_why(
        self,
        device: Device | None,
        spans: tuple[tuple[datetime, datetime], ...],
        reason: str,
    ) -> None:
        """Not shown to be the rollout's: no delete, and the reason says the lost
        create may have made it and why this device is not taken for it."""
        candidate = self.candidate()
        if device is not None:
            device = Device(
                id=device.id,
                mac=candidate.mac,
                workspace_id=device.workspace_id,
                created=device.created,
            )

        found = judge_lost_create(candidate, device, earlier=spans)

        assert isinstance(found, RollbackResult)
        assert found.status is (
            RollbackStatus.SKIPPED if device is None else RollbackStatus.KEPT
        )
        assert "may have made" in found.reason
        assert reason in found.reason
        assert found.device_id == (None if device is None else "D9")


MAC_CANDIDATE = Candidate(
    row=2, device_id="D2", is_code=False, mac=MAC, workspace_id="WS1"
)
CODE_CANDIDATE = Candidate(row=3, device_id="D3", is_code=True, person_id="P1")


class TestJudge:
    def test_matching_device_is_deleted(self) -> None:
        """A device with the row's MAC and owner may go."""
        device = Device(id="D2", mac=MAC, workspace_id="WS1")

        assert judge(MAC_CANDIDATE, device) == Delete(MAC_CANDIDATE)

    def test_missing_device_is_already_gone(self) -> None:
        """A 404 on the read: already gone, nothing to delete."""
        verdict = judge(MAC_CANDIDATE, None)

        assert isinstance(verdict, RollbackResult)
        assert verdict.status is RollbackStatus.ALREADY_GONE

    def test_missing_device_whose_delete_was_sent_was_deleted(self) -> None:
        """After an interrupted delete, a device found gone is one we deleted."""
        verdict = judge(MAC_CANDIDATE, None, delete_was_sent=True)

        assert isinstance(verdict, RollbackResult)
        assert verdict.status is RollbackStatus.DELETED

    def test_other_mac_is_kept(self) -> None:
        """A device id that now has another MAC is not the device the run made."""
        verdict = judge(
            MAC_CANDIDATE, Device(id="D2", mac="FFEEDDCCBBAA", workspace_id="WS1")
        )

        assert isinstance(verdict, RollbackResult)
        assert verdict.status is RollbackStatus.KEPT
        assert "FFEEDDCCBBAA" in verdict.reason

    @pytest.mark.parametrize(
        ("candidate", "device"),
        [
            (MAC_CANDIDATE, Device(id="D2", mac=MAC, workspace_id="WS9")),
            (MAC_CANDIDATE, Device(id="D2", mac=MAC, person_id="P9")),
            (CODE_CANDIDATE, Device(id="D3", person_id="P9")),
        ],
        ids=["other workspace", "moved to a person", "code moved to another person"],
    )
    def test_other_owner_is_kept(self, candidate: Candidate, device: Device) -> None:
        """A device that now belongs to someone else is kept, saying to whom."""
        verdict = judge(candidate, device)

        assert isinstance(verdict, RollbackResult)
        assert verdict.status is RollbackStatus.KEPT
        assert "now belongs to" in verdict.reason

    def test_activated_code_device_is_kept(self) -> None:
        """Someone used the code: its device is kept unless asked otherwise."""
        device = Device(id="D3", person_id="P1", mac=MAC, connection_status="connected")

        verdict = judge(CODE_CANDIDATE, device)
        forced = judge(CODE_CANDIDATE, device, include_activated=True)

        assert isinstance(verdict, RollbackResult)
        assert verdict.status is RollbackStatus.KEPT
        assert "--include-activated" in verdict.reason
        assert forced == Delete(CODE_CANDIDATE)

    def test_pending_code_device_is_deleted(self) -> None:
        """A code's device still waiting for activation may go."""
        device = Device(id="D3", person_id="P1", connection_status="activating")

        assert judge(CODE_CANDIDATE, device) == Delete(CODE_CANDIDATE)


class TestResults:
    def test_delete_answers(self) -> None:
        """A delete is deleted; a 404 on the delete itself is already_gone."""
        assert after_delete(MAC_CANDIDATE).status is RollbackStatus.DELETED
        gone = after_delete(MAC_CANDIDATE, was_missing=True)
        assert gone.status is RollbackStatus.ALREADY_GONE

    def test_failure_keeps_status_and_tracking_id(self) -> None:
        """A failed read or delete names the step, the status and the tracking id."""
        error = ServerError("overloaded", status=503, tracking_id="T1")

        result = after_error(MAC_CANDIDATE, "delete device", error)

        assert result.status is RollbackStatus.FAILED
        assert result.reason.startswith("delete device: overloaded")
        assert (result.http_status, result.tracking_id) == (503, "T1")

    def test_statuses_that_end_well(self) -> None:
        """Only failed and not_started rows make the exit code non-zero."""
        assert [s.value for s in RollbackStatus if not s.is_ok] == [
            "failed",
            "not_started",
        ]
        assert not_started(MAC_CANDIDATE).status is RollbackStatus.NOT_STARTED
        assert planned(MAC_CANDIDATE).status is RollbackStatus.PLANNED

    def test_cells_follow_the_columns(self) -> None:
        """A result's cells are the rollback columns, in order."""
        result = RollbackResult(
            row=2,
            status=RollbackStatus.FAILED,
            reason="delete device: x",
            http_status=500,
            tracking_id="T",
        )

        assert dict(zip(ROLLBACK_COLUMNS, rollback_cells(result), strict=True)) == {
            "rollback": "failed",
            "rollbackReason": "delete device: x",
            "rollbackHttpStatus": 500,
            "rollbackTrackingId": "T",
        }

    def test_changes_count_the_deletions(self) -> None:
        """The confirmation shows N deletions, beside what the reads found of the
        other devices and that codes are read again; none asks nothing."""
        read = {RollbackStatus.ALREADY_GONE: 2, RollbackStatus.KEPT: 1}

        assert planned_changes(0, read=read, codes=True).is_empty
        assert planned_changes(3).deletions == 3
        assert planned_changes(3, read={}).notes == (
            "read 3 devices first, as its dry run does: all to delete",
        )
        found = (
            "read 6 devices first, as its dry run does: 3 to delete · "
            "already_gone 2 · kept 1 (the rollback's report says why)"
        )
        again = (
            "a code's pending device is read again just before its delete, and kept "
            "if someone used the code since"
        )
        assert planned_changes(3, read=read, codes=True).notes == (found, again)

    def test_summary_counts_every_status(self) -> None:
        """The Summary sheet counts rows by rollback status."""
        start = datetime(2026, 1, 1, tzinfo=UTC)
        stats = RollbackStats(
            started_at=start,
            finished_at=start + timedelta(seconds=3),
            api_calls=5,
            rate_limited=0,
            retries=1,
        )
        results = [
            after_delete(MAC_CANDIDATE),
            not_started(CODE_CANDIDATE),
        ]

        items = dict(
            summary_items(results, stats, report="r.csv", base_url="u", org="o")
        )

        assert (items["rows"], items["deleted"], items["not_started"]) == (2, 1, 1)
        assert items["kept"] == 0
        assert items["duration (s)"] == "3.0"


def test_renewed_away_names_the_latest_renewal_holding_a_gone_rows_code() -> None:
    """A gone row whose code a renewal moved to another device is named with the
    latest renewal holding one; a row the renewal left on its device, or whose
    device the rollback kept, is not."""
    gone = RollbackStatus.ALREADY_GONE
    results = {
        2: RollbackResult(row=2, status=gone, reason="gone", device_id="old2"),
        3: RollbackResult(row=3, status=gone, reason="gone", device_id="d3"),
        4: RollbackResult(
            row=4, status=RollbackStatus.KEPT, reason="used", device_id="old4"
        ),
    }

    def code(row: int, device: str) -> Outcome:
        return Outcome(
            row=row,
            status=Status.CODE_ISSUED,
            device_id=device,
            activation_code="1234567890123456",
        )

    first = {2: code(2, "new2"), 3: code(3, "d3"), 4: code(4, "new4")}
    second = {2: code(2, "newer2"), 3: code(3, "d3"), 4: code(4, "new4")}

    found = renewed_away(
        results, [("r-renewed.csv", first), ("r-renewed-2.csv", second)]
    )

    assert found == {2: "r-renewed-2.csv"}
