"""
The run's identity (``Target``) and the statuses' meaning.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from provisioner.models import (
    Row,
    RunKind,
    RunRecord,
    Status,
    TagMode,
    Target,
    merge_history,
)

BASE = Target(base_url="https://webexapis.com/v1", org_id="ORG-A", org_name="Acme")


class TestTarget:
    @pytest.mark.parametrize(
        "other",
        [
            Target(base_url="https://api-usgov.webex.com/v1", org_id="ORG-A"),
            Target(base_url="https://webexapis.com/v1", org_id="ORG-B"),
            Target(
                base_url="https://webexapis.com/v1",
                org_id="ORG-A",
                tag_mode=TagMode.REPLACE,
            ),
        ],
    )
    def test_another_api_org_or_tag_mode_is_another_target(self, other: Target) -> None:
        """A run against another API, another org or with another tag mode does
        something else: it is not the same target."""

        assert not BASE.same_as(other)

    def test_org_name_and_caller_do_not_change_the_target(self) -> None:
        """A renamed org, another admin of it, or a trailing slash is the same target."""
        other = Target(
            base_url="https://webexapis.com/v1/",
            org_id="ORG-A",
            org_name="Acme Inc",
            caller="someone@acme.test",
        )

        assert BASE.same_as(other)

    def test_org_label(self) -> None:
        """The org reads as name and id, the id alone, or the token's org."""

        assert [
            BASE.org_label(),
            Target(base_url="x", org_id="ORG-A").org_label(),
            Target(base_url="x").org_label(),
        ] == ["Acme (ORG-A)", "ORG-A", "the token's org"]


class TestStatus:
    def test_rows_a_rerun_takes(self) -> None:
        """Rerun takes failed, invalid, not-started and planned rows, nothing else."""

        assert {s for s in Status if s.wants_rerun} == {
            Status.FAILED,
            Status.INVALID,
            Status.NOT_STARTED,
            Status.PLANNED,
        }

    def test_rows_that_did_not_end_well(self) -> None:
        """Failed, invalid and not-started rows did not end well; a pending code did."""

        assert {s for s in Status if not s.is_ok} == {
            Status.FAILED,
            Status.INVALID,
            Status.NOT_STARTED,
        }


class TestRunRecord:
    RECORD = RunRecord(
        kind=RunKind.RERUN,
        started_at=datetime(2026, 11, 26, 9, 0, 0, 123456, tzinfo=UTC),
        finished_at=datetime(2026, 11, 26, 9, 5, tzinfo=UTC),
        source="site-report.xlsx",
        source_sha256="ab" * 32,
        caller="lead@acme.test",
        counts={Status.CREATED: 3, Status.FAILED: 0, Status.NOT_STARTED: 2},
        interrupted=True,
    )

    def test_json_round_trip(self) -> None:
        """A record reads back from its JSON as the same record (zero counts aside)."""

        again = RunRecord.from_json(self.RECORD.to_json())

        assert again == dataclasses.replace(
            self.RECORD, counts={Status.CREATED: 3, Status.NOT_STARTED: 2}
        )

    @pytest.mark.parametrize(
        "text", ["", "[]", '{"kind": "party"}', '{"kind": "run", "started_at": 3}']
    )
    def test_not_a_record(self, text: str) -> None:
        """Anything else is a ValueError, never another exception."""

        with pytest.raises(ValueError, match="not a run record"):
            RunRecord.from_json(text)

    def test_merge_keeps_each_command_once_oldest_first(self) -> None:
        """Histories from a report and a journal join without repeats."""

        later = dataclasses.replace(
            self.RECORD,
            kind=RunKind.RESUME,
            started_at=self.RECORD.started_at + timedelta(hours=1),
        )
        earlier = dataclasses.replace(
            self.RECORD, started_at=self.RECORD.started_at - timedelta(days=1)
        )

        merged = merge_history((self.RECORD, later), (earlier, self.RECORD))

        assert merged == (earlier, self.RECORD, later)


class TestRunRecordTarget:
    def test_where_a_command_wrote_reads_back(self) -> None:
        """A report copied without its journal still says its API and org."""
        record = RunRecord(
            kind=RunKind.RUN,
            started_at=datetime(2026, 11, 29, 9, 0, tzinfo=UTC),
            finished_at=datetime(2026, 11, 29, 9, 5, tzinfo=UTC),
            base_url="https://api-usgov.webex.com/v1",
            org_id="ORG-A",
            tag_mode=TagMode.REPLACE,
            org_names=(("ORG-B", "Customer B"),),
            limits=(("ORG-A", 49.63), ("ORG-B", 5.0)),
        )

        again = RunRecord.from_json(record.to_json())

        assert again == record

    def test_a_limit_edited_into_no_rate_is_left_out(self) -> None:
        """A limit a person edited into text, zero or true is not a pace to start
        at; the record and its other limits still read."""
        text = (
            '{"kind": "run", "started_at": "2026-11-29T09:00:00+00:00", '
            '"finished_at": "2026-11-29T09:05:00+00:00", "limits": {"A": "fast", '
            '"B": 0, "C": true, "D": 19.9, "E": Infinity}}'
        )

        record = RunRecord.from_json(text)

        assert record.limits == (("D", 19.9),)

    def test_an_older_record_says_nowhere(self) -> None:
        text = (
            '{"kind": "run", "started_at": "2026-11-29T09:00:00+00:00", '
            '"finished_at": "2026-11-29T09:05:00+00:00"}'
        )

        record = RunRecord.from_json(text)

        assert (record.base_url, record.org_id, record.tag_mode) == (None, None, None)
        assert record.org_names == ()
        assert record.limits == ()


class TestOwnerLabel:
    def test_each_name_is_shown_with_its_own_kind_of_id(self) -> None:
        """A row naming a workspace and a person (invalid: two owners) whose email
        resolved must not show the workspace's name with the person's id."""
        row = Row(
            number=2,
            cells=(),
            workspace_name="Denver Lobby 2",
            person_email="avery@example.com",
            person_id="PERSON-ID",
        )

        assert row.owner_label == "Denver Lobby 2"
        assert dataclasses.replace(row, workspace_id="WS-ID").owner_label == (
            "Denver Lobby 2 (id WS-ID)"
        )

    def test_an_email_is_shown_with_the_persons_id(self) -> None:
        row = Row(number=2, cells=(), person_email="avery@example.com", person_id="P")

        assert row.owner_label == "avery@example.com (id P)"
