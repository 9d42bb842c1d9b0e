"""
run/pending.py: what a code row does about a code an earlier run issued.
"""

from __future__ import annotations

from provisioner.models import Device, Row, Status
from provisioner.run.pending import code_pending_outcome

DEVICE = Device(id="dev-1", created="2026-11-28T09:00:00.000Z")


def test_a_code_pending_row_says_its_tags_were_not_applied() -> None:
    """The pending device is the earlier run's: the row's tags stay off it, and
    the report says so rather than dropping them in silence."""
    row = Row(number=4, cells=(), workspace_id="ws-1", tags=("lobby",))

    outcome = code_pending_outcome(row, DEVICE)

    assert (outcome.status, outcome.device_id) == (Status.CODE_PENDING, "dev-1")
    assert (outcome.error or "").endswith("this row's tags were not applied")


def test_without_tags_nothing_is_said_of_them() -> None:
    row = Row(number=4, cells=(), workspace_id="ws-1")

    outcome = code_pending_outcome(row, DEVICE)

    assert "tags" not in (outcome.error or "")
    assert "created 2026-11-28T09:00:00.000Z" in (outcome.error or "")
