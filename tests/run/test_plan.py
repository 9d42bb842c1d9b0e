"""
The engine's pure decisions: order, ownership, tags, code reuse, wording.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from provisioner.errors import (
    ApiError,
    ApiTimeoutError,
    AuthError,
    ConnectError,
    ForbiddenError,
    InvalidRequestError,
    NotFoundError,
    OutcomeUnknownError,
    RateLimitedError,
    ServerError,
)
from provisioner.models import Device, Outcome, Problem, Row, Status
from provisioner.run import plan
from provisioner.run.journal import JournalEntry, Phase
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

    def test_a_lost_create_of_an_earlier_command_counts_within_its_span(
        self,
    ) -> None:
        """A rerun's row started now; a device its earlier command's lost create
        made is the rollout's when stamped while that command ran, not before."""
        earlier = (
            (
                datetime(2026, 11, 25, 9, 0, tzinfo=UTC),
                datetime(2026, 11, 25, 9, 30, tzinfo=UTC),
            ),
        )
        during = Device(id="D", created="2026-11-25T09:10:00.000Z")
        before = Device(id="D", created="2026-11-25T08:10:00.000Z")
        after = Device(id="D", created="2026-11-25T12:10:00.000Z")

        found = [
            plan.found_status(device, self.START, unknown=True, earlier=earlier)
            for device in (during, before, after)
        ]

        assert found == [Status.CREATED, Status.ADOPTED, Status.ADOPTED]
        assert (
            plan.found_status(during, self.START, unknown=False, earlier=earlier)
            is Status.ADOPTED
        )

    def test_a_create_whose_answer_every_try_lost_is_told_from_other_failures(
        self,
    ) -> None:
        lost = plan.failed_outcome(
            Outcome(row=2, status=Status.CREATED),
            Step.CREATE,
            OutcomeUnknownError("timeout", cause=ApiError("timeout"), status=None),
        )
        refused = plan.failed_outcome(
            Outcome(row=2, status=Status.CREATED), Step.CREATE, ApiError("bad model")
        )

        assert plan.create_answer_lost(lost)
        assert not plan.create_answer_lost(refused)
        assert not plan.create_answer_lost(replace(lost, device_id="dev"))
        assert not plan.create_answer_lost(None)


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


def person_row(number: int, person: str, **fields: object) -> Row:
    return Row(number=number, cells=(), person_id=person, **fields)  # type: ignore[arg-type]


class TestFailureWords:
    @pytest.mark.parametrize(
        ("step", "error", "hint"),
        [
            (
                Step.CREATE,
                AuthError("Unauthorized.", status=401),
                "the access token was refused; check the token and run again",
            ),
            (
                Step.TAGS,
                ForbiddenError("Forbidden", status=403),
                "the token lacks a needed scope or admin rights; use an admin token",
            ),
            (
                Step.CODE,
                NotFoundError("no such workspace", status=404),
                "check the row's workspaceId or personId (and orgId)",
            ),
            (
                Step.CREATE,
                OutcomeUnknownError("lost", cause=ServerError("x", status=502)),
                (
                    f"the API did not confirm it after {plan.MAX_CREATES} tries; run "
                    "rerun to check and continue"
                ),
            ),
            (
                Step.LOOKUP,
                ServerError("bad gateway", status=502),
                "the API kept failing after retries; run rerun later",
            ),
        ],
    )
    def test_each_kind_of_failure_gets_its_hint(
        self, step: Step, error: ApiError, hint: str
    ) -> None:
        """The step, the API's reason without its full stop, and what to do."""
        reason = error.message.rstrip(".")

        assert plan.describe_failure(step, error) == f"{step}: {reason} ({hint})"

    def test_a_not_found_outside_create_and_a_refusal_get_no_hint(self) -> None:
        """A 404 on a tag call, or a plain 400, is said as the API said it."""
        gone = NotFoundError("Device not found.", status=404)
        bad = InvalidRequestError("Invalid tag.", status=400)

        assert plan.describe_failure(Step.TAGS, gone) == "apply tags: Device not found"
        assert plan.describe_failure(Step.TAGS, bad) == "apply tags: Invalid tag"

    def test_failed_outcome_keeps_the_errors_status_and_tracking_id(self) -> None:
        """From an error: its words, status and tracking id; deferred tags cleared."""
        base = Outcome(
            row=4, status=Status.CODE_ISSUED, device_id="d", tags_deferred=True
        )
        error = ServerError("bad gateway", status=502, tracking_id="T-9")

        failed = plan.failed_outcome(base, Step.TAGS, error)

        assert failed == Outcome(
            row=4,
            status=Status.FAILED,
            device_id="d",
            error=plan.describe_failure(Step.TAGS, error),
            http_status=502,
            tracking_id="T-9",
        )

    def test_failed_outcome_from_our_own_words(self) -> None:
        """From a text: the step and the text; no status or tracking id."""
        base = Outcome(row=4, status=Status.FAILED)

        failed = plan.failed_outcome(base, Step.CREATE, None, "the MAC is elsewhere")

        assert (failed.error, failed.http_status, failed.tracking_id) == (
            "create device: the MAC is elsewhere",
            None,
            None,
        )

    def test_an_invalid_outcome_is_its_rows(self) -> None:
        """The invalid outcome carries its row's number and no call."""
        bad = row(9, problems=(Problem("mac", "zz", "not a MAC"),))

        assert plan.invalid_outcome(bad) == Outcome(
            row=9, status=Status.INVALID, error="mac: not a MAC"
        )

    @pytest.mark.parametrize(
        ("status", "http", "refused"),
        [
            (Status.FAILED, 401, True),
            (Status.FAILED, 403, False),
            (Status.FAILED, None, False),
            (Status.CREATED, 401, False),
        ],
    )
    def test_token_refusal_is_a_failed_401(
        self, status: Status, http: int | None, refused: bool
    ) -> None:
        """Only a row that failed with 401 says the token stopped working."""
        outcome = Outcome(row=2, status=status, http_status=http)

        assert plan.is_token_refusal(outcome) is refused

    def test_dry_run_of_a_code_row(self) -> None:
        """A code row's dry run says it would issue a code, and which tags."""
        code = Row(number=2, cells=(), workspace_id="ws-1", tags=("a", "b"))

        assert plan.dry_run_text(code, None) == (
            "would issue an activation code and apply tags a;b"
        )


class TestFoundDeviceOfAPerson:
    def test_a_persons_device(self) -> None:
        """A device with the row's person is ours; another person's is not."""
        mine = person_row(2, "p-1", mac="AA")

        assert (
            plan.judge_found_device(Device(id="d", person_id="p-1"), mine)
            is Verdict.OURS
        )
        assert (
            plan.judge_found_device(Device(id="d", person_id="p-2"), mine)
            is Verdict.OTHER_OWNER
        )

    @pytest.mark.parametrize(
        ("device", "owner"),
        [
            (Device(id="d1", workspace_id="ws-3"), "workspace ws-3"),
            (Device(id="d1"), "no workspace or person"),
        ],
    )
    def test_other_owner_text_in_full(self, device: Device, owner: str) -> None:
        """The holder, the device and both ways out."""
        assert plan.other_owner_text(device) == (
            f"the MAC is already registered to {owner} (device d1); delete that "
            "device first, or correct the row's mac or owner"
        )


class TestLostCodeDeviceBoundaries:
    def test_a_device_made_exactly_at_the_tolerance_counts(self) -> None:
        """Made exactly CLOCK_TOLERANCE before the start: still since the start."""
        start = datetime(2026, 11, 26, 1, 0, 2, tzinfo=UTC)
        edge = (start - plan.CLOCK_TOLERANCE).isoformat(timespec="milliseconds")

        found = plan.lost_code_devices([pending("edge", edge)], start, ())

        assert [d.id for d in found] == ["edge"]

    def test_a_stamp_without_zone_is_read_as_utc(self) -> None:
        """A ``created`` stamp without a zone is UTC, so it compares with the start."""
        start = datetime(2026, 11, 26, 1, 0, 0, tzinfo=UTC)

        found = plan.lost_code_devices(
            [
                pending("naive", "2026-11-26T01:00:05"),
                pending("old", "2026-11-26T00:00:05"),
            ],
            start,
            (),
        )

        assert [d.id for d in found] == ["naive"]

    def test_devices_after_a_skipped_one_are_still_seen(self) -> None:
        """A device with a MAC, or not pending, or claimed, is skipped, not the end."""
        start = datetime(2026, 11, 26, 1, 0, 0, tzinfo=UTC)
        stamp = "2026-11-26T01:00:05.000Z"
        devices = [
            pending("with-mac", stamp, mac="00AABB000001"),
            pending("later-1", stamp),
            pending("connected", stamp, connection_status="connected"),
            pending("claimed", stamp),
            pending("later-2", stamp),
        ]

        found = plan.lost_code_devices(devices, start, {"claimed"})

        assert [d.id for d in found] == ["later-1", "later-2"]


class TestCodeReuseZones:
    def test_an_aware_expiry_against_a_naive_now(self) -> None:
        """One side without a zone: both are read as wall clocks and compared."""
        previous = Outcome(
            row=2,
            status=Status.CODE_ISSUED,
            activation_code="1234123412341234",
            activation_expiry="2026-11-26T00:00:01Z",
        )
        naive_now = datetime(2026, 11, 26, 0, 0, 0)

        assert plan.can_reuse_code(previous, naive_now)
        assert not plan.can_reuse_code(previous, naive_now + timedelta(seconds=1))


class TestAnUnknownOutcome:
    def test_an_unknown_outcome_may_have(self) -> None:
        """An OutcomeUnknownError may have taken effect, whatever its cause."""
        unknown = OutcomeUnknownError("lost", cause=RateLimitedError("x", status=429))

        assert plan.may_have_taken_effect(unknown)


class TestPlannedChanges:
    def test_counts_what_may_be_written(self) -> None:
        """Creates and codes not yet made, every tagged row, voids and org notes."""
        rows = [
            row(2, mac="00AABB000001", tags=("a",)),
            row(3, mac="00AABB000002"),
            row(4, tags=("b",)),
            row(5),
            row(6, mac="00AABB000003", org_id="org-2"),
        ]
        entries = {3: JournalEntry(3, Phase.CREATED, "d3", None)}
        previous = {
            5: Outcome(row=5, status=Status.CODE_ISSUED, activation_code="1" * 16)
        }

        changes = plan.planned_changes(rows, entries, previous, voids=2, reissue=True)

        assert (
            changes.creates,
            changes.codes,
            changes.tag_updates,
            changes.voided_codes,
        ) == (2, 1, 2, 2)
        assert changes.notes == (
            (
                "void the pending codes the rows' owners already hold from earlier runs "
                "(--reissue-codes)"
            ),
            "1 of these rows act on 1 other org named in their orgId column",
        )

    def test_nothing_to_reissue_says_nothing(self) -> None:
        """--reissue-codes with no code to issue adds no note; no orgId, no note."""
        changes = plan.planned_changes(
            [row(2, mac="00AABB000001")], {}, {}, reissue=True
        )

        assert (changes.creates, changes.codes, changes.notes) == (1, 0, ())

    def test_a_rerun_row_whose_tags_failed_creates_nothing(self) -> None:
        """A rerun of a row whose device exists (only its tags failed) sets tags: the
        confirmation counts no create for it, only for the row that never got one."""
        previous = {
            2: Outcome(
                row=2,
                status=Status.FAILED,
                device_id="dev-2",
                error="tags on the created device: the API kept failing",
            ),
            3: Outcome(row=3, status=Status.FAILED, error="create: refused"),
        }

        changes = plan.planned_changes(
            [row(2, mac="00AABB000001", tags=("a",)), row(3, mac="00AABB000002")],
            {},
            previous,
        )

        assert (changes.creates, changes.tag_updates) == (1, 1)

    def test_a_started_row_is_still_counted(self) -> None:
        """A row journalled only as started may still create: it is counted."""
        entries = {
            2: JournalEntry(2, Phase.STARTED, None, None),
            3: JournalEntry(3, Phase.STARTED, None, None),
        }

        changes = plan.planned_changes(
            [row(2, mac="00AABB000001"), row(3)], entries, {}
        )

        assert (changes.creates, changes.codes) == (1, 1)


class TestOwnerKey:
    def test_keys_by_kind_and_id_or_row(self) -> None:
        """Workspace and person owners are told apart; an ownerless row is its own."""
        assert plan.owner_key(row(2, "x")) == "workspace:x"
        assert plan.owner_key(person_row(3, "x")) == "person:x"
        assert plan.owner_key(Row(number=4, cells=())) == "row:4"


class TestResumeFrom:
    DONE = Outcome(row=2, status=Status.CREATED, device_id="d2")

    def entry(
        self, phase: Phase, outcome: Outcome | None, **fields: object
    ) -> JournalEntry:
        values: dict[str, object] = {"device_id": None, "digest": "same"}
        values.update(fields)
        return JournalEntry(2, phase, outcome=outcome, **values)  # type: ignore[arg-type]

    def test_no_entry_or_an_unfinished_one_continues_from_it(self) -> None:
        """Nothing journalled: start afresh; started or created: continue from it."""
        started = self.entry(Phase.STARTED, None)
        created = self.entry(Phase.CREATED, self.DONE, device_id="d2")
        done_without_outcome = self.entry(Phase.DONE, None)
        mac_row = row(2, mac="00AABB000001")

        assert plan.resume_from(mac_row, None, "same") == (None, None)
        assert plan.resume_from(mac_row, started, "same") == (None, started)
        assert plan.resume_from(mac_row, created, "same") == (None, created)
        assert plan.resume_from(mac_row, done_without_outcome, "same") == (
            None,
            done_without_outcome,
        )

    def test_a_finished_row_asking_the_same_is_done(self) -> None:
        """Done, and the row still asks what it asked then: its outcome stands."""
        done = self.entry(Phase.DONE, self.DONE, device_id="d2")

        assert plan.resume_from(row(2, mac="00AABB000001"), done, "same") == (
            self.DONE,
            None,
        )

    def test_a_changed_mac_row_with_a_device_is_looked_up_again(self) -> None:
        """Its owner or tags changed: checked by MAC again, from a started entry."""
        done = self.entry(Phase.DONE, self.DONE, device_id="d2")

        outcome, entry = plan.resume_from(row(2, mac="00AABB000001"), done, "other")

        assert outcome is None
        assert entry == JournalEntry(
            2, Phase.STARTED, device_id="d2", outcome=None, digest="same"
        )

    def test_a_changed_mac_row_without_a_device_starts_afresh(self) -> None:
        """A failed MAC row (no device) whose values changed starts afresh."""
        failed = Outcome(row=2, status=Status.FAILED, error="x", http_status=404)
        done = self.entry(Phase.DONE, failed)

        assert plan.resume_from(row(2, mac="00AABB000001"), done, "other") == (
            None,
            None,
        )

    def test_a_changed_code_row_keeps_its_code(self) -> None:
        """A code row whose tags changed keeps its code; the failure is forgotten."""
        issued = Outcome(
            row=2,
            status=Status.FAILED,
            device_id="d2",
            activation_code="1234123412341234",
            error="apply tags: boom",
            http_status=502,
            tracking_id="T",
            tags_deferred=True,
        )
        done = self.entry(Phase.DONE, issued, device_id="d2")

        outcome, entry = plan.resume_from(row(2), done, "other")

        assert outcome is None
        assert entry == JournalEntry(
            2,
            Phase.CREATED,
            device_id="d2",
            outcome=Outcome(
                row=2,
                status=Status.CODE_ISSUED,
                device_id="d2",
                activation_code="1234123412341234",
            ),
            digest="same",
        )

    def test_a_changed_code_row_without_a_code_starts_afresh(self) -> None:
        """A code row that never got a code starts afresh."""
        failed = Outcome(row=2, status=Status.FAILED, error="issue activation code: x")

        assert plan.resume_from(row(2), self.entry(Phase.DONE, failed), "other") == (
            None,
            None,
        )


class TestEndedSince:
    FAILED = Outcome(row=2, status=Status.FAILED, error="create device: MAC in use")
    CREATED = Outcome(row=2, status=Status.CREATED, device_id="d2")

    def entry(
        self, outcome: Outcome, at: datetime, digest: str = "same"
    ) -> JournalEntry:
        return JournalEntry(2, Phase.DONE, outcome.device_id, outcome, digest, at)

    def test_a_failure_gives_way_to_the_latest_rerun_that_ended_the_row_since(
        self,
    ) -> None:
        """The run failed it; of the reruns since, the latest ending stands, a
        failure of its own included."""
        failed = self.entry(self.FAILED, NOW)
        created = self.entry(self.CREATED, NOW + timedelta(hours=1))
        failed_again = self.entry(
            replace(self.FAILED, error="apply tags: boom"), NOW + timedelta(hours=2)
        )

        assert plan.ended_since(failed, [created], "same") is created
        assert plan.ended_since(failed, [failed_again, created], "same") is (
            failed_again
        )

    def test_the_runs_own_ending_stands_otherwise(self) -> None:
        """A rerun ending before the run's, asking another thing or not finished,
        and a row the run did not fail, leave the run's journal its word."""
        failed = self.entry(self.FAILED, NOW)
        later = NOW + timedelta(hours=1)
        unfinished = replace(self.entry(self.CREATED, later), phase=Phase.CREATED)

        assert plan.ended_since(failed, [self.entry(self.CREATED, NOW)], "same") is None
        assert (
            plan.ended_since(failed, [self.entry(self.CREATED, later, "x")], "same")
            is None
        )
        assert plan.ended_since(failed, [unfinished], "same") is None
        assert plan.ended_since(failed, [], "same") is None
        assert (
            plan.ended_since(
                self.entry(self.CREATED, NOW), [self.entry(self.FAILED, later)], "same"
            )
            is None
        )

    def test_a_row_the_run_never_finished_gives_way_to_a_rerun_since(self) -> None:
        """A row the run never started (no entry: a rerun ending after the journal
        began), or left open, takes the latest rerun ending since."""
        later = NOW + timedelta(hours=1)
        created = self.entry(self.CREATED, later)
        open_entry = JournalEntry(2, Phase.STARTED, None, None, "same", NOW)

        assert plan.ended_since(None, [created], "same", began=NOW) is created
        assert plan.ended_since(open_entry, [created], "same") is created

    def test_a_rerun_before_the_journal_began_does_not_count(self) -> None:
        """A rerun that ended the row before the journal began (a --fresh start
        over since) or before the run last wrote it, or with no start known, is
        not taken."""
        created = self.entry(self.CREATED, NOW)
        later = NOW + timedelta(hours=1)
        open_entry = JournalEntry(2, Phase.CREATED, "d2", None, "same", later)

        assert plan.ended_since(None, [created], "same", began=later) is None
        assert plan.ended_since(open_entry, [created], "same") is None
        assert plan.ended_since(None, [created], "same") is None

    def test_a_row_ended_well_for_something_else_gives_way(self) -> None:
        """A row the run ended well asking something else gives way to a rerun that
        ended it since asking what it asks now; asking the same, it stands."""
        adopted = self.entry(replace(self.CREATED, status=Status.ADOPTED), NOW, "old")
        created = self.entry(self.CREATED, NOW + timedelta(hours=1))

        assert plan.ended_since(adopted, [created], "same") is created
        assert plan.ended_since(replace(adopted, digest="same"), [created], "same") is (
            None
        )


class TestDryRunOfAJournalledRow:
    def test_a_finished_row_is_planned_as_it_ended(self) -> None:
        """A dry run plans nothing for a finished row, and says how it ended."""
        created = Outcome(row=2, status=Status.CREATED, device_id="d2", attempts=2)
        failed = Outcome(row=3, status=Status.FAILED, error="create device: boom")

        assert plan.done_plan(created) == Outcome(
            row=2,
            status=Status.PLANNED,
            plan="would do nothing: an earlier run into this report ended it "
            "created (device d2)",
        )
        assert plan.done_plan(failed).plan == (
            "would do nothing: an earlier run into this report ended it failed; "
            "rerun that report to try it again"
        )

    def test_an_interrupted_row_keeps_what_it_made(self) -> None:
        """A row left created keeps its device or code, then gets its tags."""
        device = Outcome(row=2, status=Status.ADOPTED, device_id="d2")
        code = Outcome(row=3, status=Status.CODE_ISSUED, activation_code="1" * 16)

        assert plan.continued_text(row(2, mac="AA", tags=("a",)), device) == (
            "would keep device d2, which an interrupted run found (adopted) and "
            "apply tags a"
        )
        assert plan.continued_text(row(3), code) == (
            "would keep the code an interrupted run issued (code_issued)"
        )

    def test_a_device_an_interrupted_create_made_is_created(self) -> None:
        """Found after a lost create of the run: the run's own device."""

        text = plan.dry_run_text(row(2, mac="AA"), Device(id="d1"), made_by_run=True)

        assert text == (
            "would take device d1 as the one an interrupted run's create made (created)"
        )


class TestOrgs:
    def test_rows_grouped_by_their_org(self) -> None:
        """A row's own orgId, else the default; orgs and rows in manifest order."""
        rows = [row(2, org_id="b"), row(3), row(4, org_id="b"), row(5, org_id="a")]

        groups = plan.rows_by_org(rows, "home")

        assert {org: [r.number for r in rs] for org, rs in groups.items()} == {
            "b": [2, 4],
            "home": [3],
            "a": [5],
        }
        assert list(groups) == ["b", "home", "a"]
        assert plan.row_org(row(6), None) is None


class TestFoundStatusBoundaries:
    START = datetime(2026, 11, 26, 1, 0, 2, tzinfo=UTC)

    def test_created_at_exactly_the_tolerance_is_the_runs(self) -> None:
        """A lost create's device stamped exactly CLOCK_TOLERANCE early is ours."""
        edge = (self.START - plan.CLOCK_TOLERANCE).isoformat(timespec="milliseconds")
        earlier = (
            self.START - plan.CLOCK_TOLERANCE - timedelta(milliseconds=1)
        ).isoformat(timespec="milliseconds")

        assert (
            plan.found_status(Device(id="d", created=edge), self.START, unknown=True)
            is Status.CREATED
        )
        assert (
            plan.found_status(Device(id="d", created=earlier), self.START, unknown=True)
            is Status.ADOPTED
        )

    def test_without_a_lost_create_or_a_start_it_was_there_before(self) -> None:
        """No lost answer, or no start: adopted, however new the device."""
        new = Device(id="d", created="2026-11-26T02:00:00Z")

        assert plan.found_status(new, self.START, unknown=False) is Status.ADOPTED
        assert plan.found_status(new, None, unknown=True) is Status.ADOPTED

    def test_a_stamp_in_another_zone_is_compared_as_an_instant(self) -> None:
        """02:59 at +02:00 is 00:59 UTC: before the start, so not the run's."""
        device = Device(id="d", created="2026-11-26T02:59:00+02:00")

        assert plan.found_status(device, self.START, unknown=True) is Status.ADOPTED


class TestMoreWords:
    def test_only_the_final_full_stops_are_dropped(self) -> None:
        """The reason loses its full stops, nothing else at its end."""
        error = InvalidRequestError("Value above MAX.", status=400)

        assert plan.describe_failure(Step.TAGS, error) == "apply tags: Value above MAX"

    def test_dry_run_of_a_code_row_whose_owner_has_one_pending(self) -> None:
        """No second code by default; with --reissue-codes the old one is voided."""
        code = Row(number=2, cells=(), workspace_id="ws-1")
        waiting = Device(id="p-7")

        assert plan.dry_run_text(code, None, waiting) == (
            "would issue no code: the owner already has pending device p-7 of this "
            "model (code_pending)"
        )
        assert plan.dry_run_text(code, None, waiting, reissue=True) == (
            "would void pending device p-7 and issue a new code"
        )

    def test_planned_changes_defaults_void_nothing(self) -> None:
        """Without --fresh voids or --reissue-codes, nothing is voided or noted."""
        changes = plan.planned_changes([row(2)], {}, {})

        assert (changes.codes, changes.voided_codes, changes.notes) == (1, 0, ())


class TestDeviceTheRunMade:
    MADE = Outcome(
        row=2,
        status=Status.FAILED,
        device_id="D2",
        error="apply tags to the device this run created: refused",
    )

    def test_the_tags_step_names_a_created_device(self) -> None:
        created = Outcome(row=2, status=Status.CREATED, device_id="D2")
        adopted = Outcome(row=2, status=Status.ADOPTED, device_id="D2")

        assert plan.tags_step(created) is Step.TAGS_ON_CREATED
        assert plan.tags_step(adopted) is Step.TAGS
        failed = plan.failed_outcome(created, plan.tags_step(created), ServerError("x"))
        assert plan.made_by_run(failed)
        assert not plan.made_by_run(
            plan.failed_outcome(adopted, plan.tags_step(adopted), ServerError("x"))
        )

    def test_made_by_run_needs_a_failure_with_a_device(self) -> None:
        assert plan.made_by_run(self.MADE)
        no_device = Outcome(row=2, status=Status.FAILED, error=self.MADE.error)
        assert not plan.made_by_run(no_device)
        other_step = Outcome(
            row=2, status=Status.FAILED, device_id="D2", error="apply tags: refused"
        )
        assert not plan.made_by_run(other_step)

    def test_a_rerun_finding_that_device_calls_it_created(self) -> None:
        """The same device found again stays the run's; another device does not."""
        assert plan.rerun_status(Status.ADOPTED, "D2", self.MADE) is Status.CREATED
        assert plan.rerun_status(Status.ADOPTED, "D9", self.MADE) is Status.ADOPTED
        assert plan.rerun_status(Status.ADOPTED, "D2", None) is Status.ADOPTED
        plain = Outcome(
            row=2, status=Status.FAILED, device_id="D2", error="apply tags: refused"
        )
        assert plan.rerun_status(Status.ADOPTED, "D2", plain) is Status.ADOPTED
