"""
The run's identity (``Target``) and the statuses' meaning.
"""

from __future__ import annotations

import pytest

from provisioner.models import Status, TagMode, Target

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
