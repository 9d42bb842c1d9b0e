"""
Progress display: a bar on a terminal, periodic plain lines otherwise, nothing if quiet.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest

from provisioner.cli.progress import (
    ListingDisplay,
    ProgressDisplay,
    format_counts,
    format_listing_line,
    format_plain_line,
    rows_per_second,
)
from provisioner.models import Status


@dataclass(frozen=True)
class Snapshot:
    total: int = 10
    done: int = 0
    counts: Mapping[Status, int] = field(default_factory=dict)
    api_calls: int = 0
    rate_limited: int = 0
    current_rate: float | None = None
    elapsed: float = 0.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class TtyStringIO(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_rows_per_second_needs_rows_and_time() -> None:
    """Rows/s is None until a row is done and time has passed."""

    assert (
        rows_per_second(0, 3.0),
        rows_per_second(3, 0.0),
        rows_per_second(5, 2.0),
    ) == (None, None, 2.5)


def test_counts_are_ordered_and_skip_zeros() -> None:
    """Counts show non-zero statuses in a fixed order, whatever the mapping order."""
    counts = {Status.FAILED: 1, Status.ADOPTED: 0, Status.CREATED: 3}

    assert format_counts(counts) == "created 3 · failed 1"


def test_plain_line_has_rows_speed_eta_counts_and_rate() -> None:
    """A plain line says done/total, rows/s, ETA, counts, calls, 429s and rate."""
    snapshot = Snapshot(
        total=100,
        done=25,
        counts={Status.CREATED: 24, Status.FAILED: 1},
        api_calls=60,
        rate_limited=2,
        current_rate=12.5,
        elapsed=5.0,
    )

    line = format_plain_line(snapshot)

    assert line == (
        "progress: 25/100 rows (25%) · 5.0 rows/s · eta 15s · created 24 · failed 1"
        " · api calls 60 · 429s 2 · request rate 12.5/s"
    )


def test_plain_mode_prints_every_interval() -> None:
    """Non-terminal output gets one line per interval, not one per snapshot."""
    stream, clock = io.StringIO(), FakeClock()
    display = ProgressDisplay(stream=stream, clock=clock, interval=5.0)

    with display:
        for second in range(12):
            clock.now = float(second)
            display(Snapshot(done=second, elapsed=float(second)))

    lines = stream.getvalue().splitlines()
    assert display.mode == "plain"
    assert [line.split()[1] for line in lines] == ["5/10", "10/10", "11/10"]


def test_plain_mode_stays_silent_on_short_runs() -> None:
    """A run shorter than the interval prints no progress line (the summary follows)."""
    stream, clock = io.StringIO(), FakeClock()

    with ProgressDisplay(stream=stream, clock=clock) as display:
        display(Snapshot(done=10, total=10, elapsed=1.0))
        clock.now = 1.0

    assert stream.getvalue() == ""


def test_quiet_mode_prints_nothing() -> None:
    """--quiet means no progress output at all, even on a terminal."""
    stream, clock = TtyStringIO(), FakeClock()

    with ProgressDisplay(mode="quiet", stream=stream, clock=clock) as display:
        for second in range(20):
            clock.now = float(second)
            display(Snapshot(done=second % 10, elapsed=float(second)))

    assert stream.getvalue() == ""


def test_terminal_gets_a_bar_with_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a terminal the bar shows rows done of total and the status counts."""
    monkeypatch.setenv("COLUMNS", "160")
    stream = TtyStringIO()

    with ProgressDisplay(stream=stream) as display:
        display(
            Snapshot(
                total=4,
                done=3,
                counts={Status.CREATED: 2, Status.ADOPTED: 1},
                current_rate=8.0,
                elapsed=1.0,
            )
        )

    output = stream.getvalue()
    assert display.mode == "bar"
    assert "3/4" in output
    assert "created 2 · adopted 1" in output
    assert "8.0/s" in output


def test_unknown_mode_is_refused() -> None:
    """A typo in the mode is a programming error, not a silent fallback."""

    with pytest.raises(ValueError, match="unknown progress mode"):
        ProgressDisplay(mode="fancy")


@dataclass(frozen=True)
class Listing:
    pages: int = 0
    devices: int = 0
    api_calls: int = 0
    rate_limited: int = 0
    current_rate: float | None = None
    elapsed: float = 0.0


def test_listing_line_counts_pages_and_devices() -> None:
    """A listing's line shows pages, devices, devices/s, calls, 429s and the rate."""
    line = format_listing_line(
        Listing(
            pages=3,
            devices=2500,
            api_calls=4,
            rate_limited=1,
            current_rate=9.5,
            elapsed=2.0,
        )
    )

    assert line == (
        "progress: 3 pages · 2500 devices · 1250 devices/s · api calls 4 · 429s 1"
        " · request rate 9.5/s"
    )


def test_listing_display_prints_plain_lines_on_a_pipe() -> None:
    """Off a terminal a listing prints a line per interval and its last state."""
    clock = FakeClock()
    stream = io.StringIO()

    with ListingDisplay(stream=stream, interval=5.0, clock=clock) as display:
        for page in range(1, 5):
            clock.now = page * 3.0
            display(Listing(pages=page, devices=page * 1000, elapsed=clock.now))

    lines = stream.getvalue().splitlines()
    assert [line.split(" · ")[0] for line in lines] == [
        "progress: 3 pages",
        "progress: 4 pages",
    ]


def test_listing_display_quiet_prints_nothing() -> None:
    """Quiet means quiet."""
    stream = TtyStringIO()

    with ListingDisplay(mode="quiet", stream=stream) as display:
        display(Listing(pages=1, devices=10, elapsed=1.0))

    assert stream.getvalue() == ""
