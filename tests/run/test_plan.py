"""
The engine's pure decisions: order, ownership, tags, code reuse, wording.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from provisioner.errors import (
    ApiTimeoutError,
    AuthError,
    ConnectError,
    InvalidRequestError,
    NotFoundError,
    RateLimitedError,
    ServerError,
)
from provisioner.models import Device, Outcome, Problem, Row, Status
from provisioner.run import plan
from provisioner.run.plan import Step, Verdict

NOW = datetime(2026, 11, 26, tzinfo=UTC)


def row(number: int, owner: str = "ws-1", **fields: object) -> Row:
    return Row(number=number, cells=(), workspace_id=owner, **fields)  # type: ignore[arg-type]


class TestJudgeFoundDevice:
    def test_verdicts(self) -> None:
        """None is absent, the row's owner is ours, anyone else is another owner."""
        mine = row(2, "ws-1", mac="AA")

        assert plan.judge_found_device(None, mine) is Verdict.ABSENT
        assert (
            plan.judge_found_device(Device(id="d", workspace_id="ws-1"), mine)
            is Verdict.OURS
        )
        assert (
            plan.judge_found_device(Device(id="d", workspace_id="ws-2"), mine)
            is Verdict.OTHER_OWNER
        )
        assert (
            plan.judge_found_device(Device(id="d", person_id="ws-1"), mine)
            is Verdict.OTHER_OWNER
        )

    def test_other_owner_text_names_the_owner(self) -> None:
        """The failure text says which workspace or person holds the MAC."""

        text = plan.other_owner_text(Device(id="d9", person_id="p-7"))

        assert "person p-7 (device d9)" in text


def pending(device_id: str, created: str | None, **fields: object) -> Device:
    fields.setdefault("connection_status", "activating")
    return Device(id=device_id, created=created, **fields)  # type: ignore[arg-type]


class TestLostCodeDevices:
    def test_only_unclaimed_pending_devices_made_since_the_start(self) -> None:
        """A device with a MAC, another status, an older stamp or a claim is not lost."""
        start = datetime(2026, 11, 26, 1, 0, 0, tzinfo=UTC)
        lost = pending("lost", "2026-11-26T01:00:05.000Z")
        devices = [
            lost,
            pending(
                "pending-status",
                "2026-11-26T01:00:06.000Z",
                connection_status="pending",
            ),
            pending("claimed", "2026-11-26T01:00:07.000Z"),
            pending("older", "2026-11-26T00:59:00.000Z"),
            pending("no-stamp", None),
            pending("bad-stamp", "yesterday"),
            pending("activated", "2026-11-26T01:00:08.000Z", mac="00AABB000001"),
            pending(
                "expired",
                "2026-11-26T01:00:09.000Z",
                connection_status="offline_expired",
            ),
        ]

        found = plan.lost_code_devices(devices, start, {"claimed"})

        assert [d.id for d in found] == ["lost", "pending-status"]

    def test_millisecond_stamps_within_the_tolerance_count(self) -> None:
        """A stamp cut to milliseconds just before the start still counts as since it."""
        start = datetime(2026, 11, 26, 1, 0, 0, 999_999, tzinfo=UTC)
        just_before = pending("cut", "2026-11-26T01:00:00.999Z")
        too_early = start - plan.CLOCK_TOLERANCE - timedelta(milliseconds=1)
        stamp = too_early.isoformat(timespec="milliseconds")

        found = plan.lost_code_devices(
            [just_before, pending("early", stamp)], start, ()
        )

        assert [d.id for d in found] == ["cut"]


class TestFoundStatus:
    START = datetime(2026, 11, 26, 1, 0, 0, tzinfo=UTC)

    @pytest.mark.parametrize(
        ("created", "unknown", "status"),
        [
            ("2026-11-26T01:00:03.000Z", True, Status.CREATED),
            ("2026-11-26T00:59:59.000Z", True, Status.CREATED),
            ("2026-11-26T00:40:00.000Z", True, Status.ADOPTED),
            (None, True, Status.ADOPTED),
            ("2026-11-26T01:00:03.000Z", False, Status.ADOPTED),
        ],
        ids=[
            "made after the start by our lost create",
            "within the clock tolerance",
            "there before the row started",
            "no stamp shows it is ours",
            "no create of ours was lost",
        ],
    )
    def test_only_a_lost_create_after_the_start_made_the_device(
        self, created: str | None, unknown: bool, status: Status
    ) -> None:
        """A device found after a lost create is the run's only if stamped since the
        row's first start; otherwise it was there before and is adopted."""
        device = Device(id="D", mac="00AABB000001", created=created)

        assert plan.found_status(device, self.START, unknown=unknown) is status

    def test_a_row_never_started_made_nothing(self) -> None:
        """Without a start time nothing shows the device is the run's."""
        device = Device(id="D", created="2026-11-26T01:00:03.000Z")

        assert plan.found_status(device, None, unknown=True) is Status.ADOPTED


class TestNewCodeDevice:
    def test_the_one_unclaimed_device_made_since_the_start(self) -> None:
        """The code's device is the one pending device made since the row started
        that no row claims; an older one or a claimed one is not it."""
        start = datetime(2026, 11, 26, 1, 0, 0, tzinfo=UTC)
        mine = pending("mine", "2026-11-26T01:00:01.000Z")
        devices = [
            pending("older", "2026-11-26T00:30:00.000Z"),
            pending("sibling", "2026-11-26T01:00:00.500Z"),
            mine,
        ]

        assert plan.new_code_device(devices, start, {"sibling"}) == mine

    def test_two_candidates_are_not_told_apart(self) -> None:
        """Two unclaimed pending devices made since the start: none is picked."""
        start = datetime(2026, 11, 26, 1, 0, 0, tzinfo=UTC)
        devices = [pending(i, "2026-11-26T01:00:01.000Z") for i in "pq"]

        assert plan.new_code_device(devices, start, ()) is None
        assert plan.new_code_device([], start, ()) is None


class TestMayHaveTakenEffect:
    @pytest.mark.parametrize(
        ("error", "expected"),
        [
            (ServerError("bad gateway", status=502), True),
            (ApiTimeoutError("no answer"), True),
            (RateLimitedError("slow down", status=429), False),
            (ConnectError("refused"), False),
            (NotFoundError("no such workspace", status=404), False),
        ],
    )
    def test_ambiguous_failures(self, error: Exception, expected: bool) -> None:
        """Timeouts and 5xx may have taken effect; 429, refused and 4xx did not."""

        assert plan.may_have_taken_effect(error) is expected  # type: ignore[arg-type]


class TestCanReuseCode:
    def test_reuse_rules(self) -> None:
        """A code still valid is kept; none, or an expired one, is not."""

        def outcome(expiry: str | None, code: str | None = "1") -> Outcome:
            return Outcome(
                row=2,
                status=Status.CODE_ISSUED,
                activation_code=code,
                activation_expiry=expiry,
            )

        assert plan.can_reuse_code(outcome("2026-12-01T00:00:00.000Z"), NOW)
        assert not plan.can_reuse_code(outcome("2026-11-01T00:00:00Z"), NOW)
        assert not plan.can_reuse_code(outcome("2026-12-01", code=None), NOW)
        assert not plan.can_reuse_code(None, NOW)
        assert plan.can_reuse_code(outcome(None), NOW)

    @pytest.mark.parametrize(
        ("expiry", "reusable"),
        [
            ("2026-11-26T00:00:00Z", False),  # expires exactly now: already expired
            ("2026-11-26T00:00:00.001Z", True),
            ("2026-11-26T00:00:00", False),  # no zone: read as the same wall clock
            ("2026-11-26T00:00:00.001", True),
            ("not a time", True),  # unreadable: keep the code rather than lose it
        ],
    )
    def test_expiry_at_exactly_now_is_expired(
        self, expiry: str, reusable: bool
    ) -> None:
        """A code is kept only while its expiry is strictly later than now."""
        previous = Outcome(
            row=2,
            status=Status.CODE_ISSUED,
            activation_code="1234567890123456",
            activation_expiry=expiry,
        )

        assert plan.can_reuse_code(previous, NOW) is reusable


class TestWording:
    def test_invalid_outcome_lists_problems(self) -> None:
        """An invalid row's error names every column and problem."""
        bad = row(
            4,
            problems=(
                Problem("mac", "zz", "not a MAC"),
                Problem("model", "", "missing"),
            ),
        )

        outcome = plan.invalid_outcome(bad)

        assert (outcome.status, outcome.error) == (
            Status.INVALID,
            "mac: not a MAC; model: missing",
        )

    def test_failure_names_step_reason_and_hint(self) -> None:
        """Failures start with the step and carry a hint for the kind of error."""

        assert plan.describe_failure(
            Step.CREATE, NotFoundError("Workspace not found.")
        ) == (
            "create device: Workspace not found (check the row's workspaceId or personId "
            "(and orgId))"
        )
        assert "check the token" in plan.describe_failure(Step.TAGS, AuthError("401"))
        assert "run rerun later" in plan.describe_failure(Step.TAGS, ServerError("503"))
        assert plan.describe_failure(Step.CODE, InvalidRequestError("Bad model")) == (
            "issue activation code: Bad model"
        )

    def test_failed_outcome_keeps_the_device(self) -> None:
        """A failure keeps the partial outcome's device and takes the call's status."""
        base = Outcome(row=2, status=Status.CREATED, device_id="d1", tags_deferred=True)

        failed = plan.failed_outcome(
            base, Step.TAGS, ServerError("x", status=502, tracking_id="T")
        )

        assert (
            failed.status,
            failed.device_id,
            failed.http_status,
            failed.tracking_id,
            failed.tags_deferred,
        ) == (Status.FAILED, "d1", 502, "T", False)

    def test_dry_run_text(self) -> None:
        """The dry-run line says what a run would do, tags included."""

        assert plan.dry_run_text(row(2, mac="AA", tags=("a", "b")), None) == (
            "would create the device by MAC and apply tags a;b"
        )
        assert "would adopt device d1" in plan.dry_run_text(
            row(2, mac="AA"), Device(id="d1")
        )
        assert "activation code" in plan.dry_run_text(row(2), None)
