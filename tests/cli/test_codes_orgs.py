"""
codes_orgs.py: the orgs of a partner's report, for ``provisioner codes``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from provisioner.cli.codes_orgs import (
    refuse_unfinished,
    refused_rows,
    renewal_changes_by_org,
)
from provisioner.errors import ConfigError, ForbiddenError
from provisioner.live.code_rules import (
    CodeEntry,
    CodeState,
    refused_renewal,
    unchecked_entry,
)
from provisioner.live.orgs import OrgAccess
from provisioner.models import (
    Changes,
    Device,
    OrgChanges,
    OrgInfo,
    Outcome,
    Row,
    Status,
)

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
HOME = OrgAccess(info=OrgInfo(key=None, id="HOME", name="Home"))
ORG1 = OrgAccess(info=OrgInfo(key="ORG1", id="ORG1", name="Customer 1"))
ORG2 = OrgAccess(
    info=OrgInfo(key="ORG2", id="ORG2", refused="the token may not act for this org"),
    error=ForbiddenError("not allowed", status=403),
)
ORGS = {None: HOME, "ORG1": ORG1, "ORG2": ORG2}


def row(number: int, org_id: str | None) -> Row:
    return Row(number=number, cells=(), org_id=org_id, workspace_id=f"WS-{number}")


def expired(number: int) -> Outcome:
    return Outcome(
        row=number,
        status=Status.CODE_ISSUED,
        activation_code="1234567812345678",
        activation_expiry=(NOW - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )


def entry(number: int, org_id: str | None) -> CodeEntry:
    if org_id == "ORG2":
        return unchecked_entry(row(number, org_id), expired(number), ORG2)
    return CodeEntry(
        row=row(number, org_id),
        outcome=expired(number),
        device=None,
        state=CodeState.EXPIRED,
        expiry=NOW - timedelta(days=1),
    )


def test_only_the_rows_of_refused_orgs_are_refused() -> None:
    rows = [row(2, None), row(3, "ORG1"), row(4, "ORG2"), row(5, "HOME")]

    assert refused_rows(rows, ORGS, None, "HOME") == {4: ORG2}


def test_a_renewal_that_began_rows_of_a_refused_org_does_not_go_on() -> None:
    refuse_unfinished(frozenset({2}), {4: ORG2})

    with pytest.raises(
        ConfigError, match=r"while renewing rows 4 in org ORG2, which this token"
    ):
        refuse_unfinished(frozenset({2, 4}), {4: ORG2})


def test_the_confirmation_lists_a_refused_org_with_the_rows_that_will_fail() -> None:
    """The refused org's due rows are counted as failing there; its codes are not
    among those the renewal will issue."""
    entries = [entry(2, None), entry(3, "ORG1"), entry(4, "ORG2"), entry(5, "ORG2")]
    failing = {
        e.row.number: outcome
        for e in entries
        if (outcome := refused_renewal(e, NOW)) is not None
    }

    changes = renewal_changes_by_org(
        entries, ORGS, default_org=None, own_org="HOME", failing=failing
    )

    assert sorted(failing) == [4, 5]
    assert changes.codes == 2
    assert changes.orgs == (
        OrgChanges(org=HOME.info, rows=1, changes=Changes(codes=1)),
        OrgChanges(org=ORG1.info, rows=1, changes=Changes(codes=1)),
        OrgChanges(org=ORG2.info, rows=2, changes=Changes()),
    )


def test_the_confirmation_counts_tags_a_failed_rows_activated_device_may_lack() -> None:
    """A row an earlier step left failed, whose device has activated, may get its
    tags from the renewal: it is counted among the tag updates, in its org."""
    activated = Device(id="D3", mac="AABBCCDDEEFF", connection_status="connected")
    failed = CodeEntry(
        row=replace(row(3, "ORG1"), tags=("floor-1",)),
        outcome=replace(expired(3), status=Status.FAILED, error="check org: no"),
        device=activated,
        state=CodeState.ACTIVATED,
        expiry=NOW - timedelta(days=1),
    )

    changes = renewal_changes_by_org(
        [entry(2, None), failed], ORGS, default_org=None, own_org="HOME"
    )

    assert (changes.codes, changes.tag_updates) == (1, 1)
    assert changes.orgs[1] == OrgChanges(
        org=ORG1.info, rows=1, changes=Changes(tag_updates=1)
    )
