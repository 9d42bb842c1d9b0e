"""
webex/answers.py: how far the API's clock is from this machine's, from a Date header.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from provisioner.webex.answers import clock_offset

NOW = datetime(2026, 11, 29, 12, 0, 0, 300_000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("date", "offset"),
    [
        ("Sun, 29 Nov 2026 12:00:00 GMT", timedelta()),
        ("Sun, 29 Nov 2026 12:00:01 GMT", timedelta()),
        ("Tue, 29 Dec 2026 12:00:00 GMT", timedelta(days=30, seconds=0.2)),
        ("Sun, 29 Nov 2026 11:50:00 GMT", -timedelta(minutes=9, seconds=59.8)),
    ],
    ids=["in step", "within the tolerance", "a month ahead", "ten minutes behind"],
)
def test_the_apis_clock_is_read_from_its_date(date: str, offset: timedelta) -> None:
    """The header has whole seconds: its middle is taken, and a gap within the
    tolerance is none (the run then keeps this machine's clock)."""
    assert clock_offset(date, NOW) == offset


@pytest.mark.parametrize("date", [None, "", "yesterday", "Sun, 29 Nov 2026 12:00:00"])
def test_no_readable_date_says_nothing(date: str | None) -> None:
    """A missing, unreadable or zone-less Date is no measurement."""
    assert clock_offset(date, NOW) is None
