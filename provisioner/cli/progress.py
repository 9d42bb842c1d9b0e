"""
Show a run's progress on standard error: a rich bar on a terminal, plain lines otherwise.

The engine calls ``on_progress(snapshot)`` as rows finish; a ``ProgressDisplay`` is that
callable. It only formats what the snapshot says (rows done of total, counts by status,
API calls, 429s, the current rate); the arithmetic of ETA and rows/s is pure and lives
in ``format_plain_line`` and ``rows_per_second`` so it can be tested without a clock.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Protocol, Self, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)

from provisioner.inventory.rollback_rules import RollbackStatus
from provisioner.models import Status

__all__ = [
    "PLAIN_INTERVAL",
    "ListingDisplay",
    "ListingSnapshot",
    "ProgressDisplay",
    "ProgressSnapshot",
    "format_counts",
    "format_listing_line",
    "format_plain_line",
    "rows_per_second",
]

# Seconds between two plain progress lines when standard error is not a terminal.
PLAIN_INTERVAL = 5.0
# Seconds between two updates of the bar: rich redraws it ten times a second anyway,
# and formatting a snapshot for every finished row cost CPU on the run's own thread.
BAR_INTERVAL = 0.1

# The statuses shown live, in this order (a run's, then a rollback's); the others
# appear in the final summary.
_LIVE_STATUSES = (
    "created",
    "adopted",
    "code_issued",
    "code_pending",
    "deleted",
    "already_gone",
    "kept",
    "skipped",
    "failed",
    "invalid",
    "planned",
)

#: Rows by status: a run's (``Status``) or a rollback's (``RollbackStatus``).
StatusCounts = Mapping[Status, int] | Mapping[RollbackStatus, int]


class ProgressSnapshot(Protocol):
    """
    What a display reads from the engine's ``Progress`` snapshot (or a rollback's
    ``RollbackProgress``).
    """

    @property
    def total(self) -> int: ...

    @property
    def done(self) -> int: ...

    @property
    def counts(self) -> StatusCounts: ...

    @property
    def api_calls(self) -> int: ...

    @property
    def rate_limited(self) -> int: ...

    @property
    def current_rate(self) -> float | None: ...

    @property
    def elapsed(self) -> float: ...


def rows_per_second(done: int, elapsed: float) -> float | None:
    """
    Rows finished per second so far, or None before there is anything to divide.
    """
    if done <= 0 or elapsed <= 0:
        return None
    return done / elapsed


def format_counts(counts: StatusCounts) -> str:
    """
    Render non-zero status counts as ``created 3 · failed 1`` in a stable order.
    """
    by_name = {str(k.value): v for k, v in counts.items()}
    names = [s for s in _LIVE_STATUSES if by_name.get(s)]
    names += sorted(n for n in by_name if n not in _LIVE_STATUSES and by_name[n])
    return " · ".join(f"{name} {by_name[name]}" for name in names)


def _format_rate(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.1f}/s"


def _format_rows_rate(rate: float | None) -> str:
    return "- rows/s" if rate is None else f"{rate:.1f} rows/s"


def format_plain_line(snapshot: ProgressSnapshot) -> str:
    """
    One plain progress line: rows, percentage, rows/s, ETA, counts, calls, 429s, rate.
    """
    speed = rows_per_second(snapshot.done, snapshot.elapsed)
    percent = 100.0 * snapshot.done / snapshot.total if snapshot.total else 100.0
    if speed is None or snapshot.done >= snapshot.total:
        eta = "-"
    else:
        eta = f"{(snapshot.total - snapshot.done) / speed:.0f}s"
    counts = format_counts(snapshot.counts) or "none finished yet"
    return (
        f"progress: {snapshot.done}/{snapshot.total} rows ({percent:.0f}%)"
        f" · {_format_rows_rate(speed)} · eta {eta} · {counts}"
        f" · api calls {snapshot.api_calls} · 429s {snapshot.rate_limited}"
        f" · request rate {_format_rate(snapshot.current_rate)}"
    )


class ProgressDisplay:
    """
    The ``on_progress`` callback of a run, used as a context manager around it.

    Modes: ``"bar"`` (a rich live bar, for a terminal), ``"plain"`` (a line every
    ``interval`` seconds and one at the end, for logs and pipes) and ``"quiet"``
    (nothing). ``mode=None`` picks bar or plain by whether ``stream`` is a terminal.
    """

    def __init__(
        self,
        *,
        mode: str | None = None,
        stream: TextIO | None = None,
        interval: float = PLAIN_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self.mode = _pick_mode(mode, self._stream)
        self._interval = interval
        self._clock = clock
        self._last_line_at: float | None = None
        self._last_bar_at: float | None = None
        self._last: ProgressSnapshot | None = None
        self._printed_last = False
        self._lines_written = 0
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> Self:
        return self

    def _start_bar(self) -> None:
        """
        Start the bar at the first snapshot, so nothing draws over what the command
        prints (and asks) before its rows start.
        """
        if self.mode == "bar" and self._progress is None:
            console = Console(file=self._stream, stderr=self._stream is sys.stderr)
            self._progress = Progress(
                BarColumn(bar_width=24),
                MofNCompleteColumn(),
                TextColumn("· {task.fields[speed]} · eta"),
                TimeRemainingColumn(),
                TextColumn("· {task.fields[counts]} · requests {task.fields[rate]}"),
                console=console,
                transient=False,
            )
            self._task = self._progress.add_task(
                "rows", total=None, speed="-", counts="", rate="-"
            )
            self._progress.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __call__(self, snapshot: ProgressSnapshot) -> None:
        """
        Take a new snapshot from the engine and show it if it is time to.
        """
        self._last = snapshot
        self._printed_last = False
        if self.mode == "bar":
            self._start_bar()
            now = self._clock()
            if self._last_bar_at is None or now - self._last_bar_at >= BAR_INTERVAL:
                self._update_bar(snapshot)
                self._last_bar_at = now
        elif self.mode == "plain":
            now = self._clock()
            if self._last_line_at is None:
                # The first line waits a full interval: short runs stay silent.
                self._last_line_at = now
            elif now - self._last_line_at >= self._interval:
                self._write_line(snapshot)
                self._last_line_at = now

    def close(self) -> None:
        """
        Stop the bar, or print the last plain line if it was not printed yet.
        """
        if self._progress is not None:
            if self._last is not None:
                self._update_bar(self._last)
            self._progress.stop()
            self._progress = None
        elif self.mode == "plain" and self._lines_written and not self._printed_last:
            # A run long enough to have printed lines ends with one at its last state;
            # a short one prints none (the summary says it all).
            assert self._last is not None
            self._write_line(self._last)

    def _write_line(self, snapshot: ProgressSnapshot) -> None:
        self._stream.write(format_plain_line(snapshot) + "\n")
        self._stream.flush()
        self._printed_last = True
        self._lines_written += 1

    def _update_bar(self, snapshot: ProgressSnapshot) -> None:
        if self._progress is None or self._task is None:
            return
        speed = rows_per_second(snapshot.done, snapshot.elapsed)
        self._progress.update(
            self._task,
            total=snapshot.total,
            completed=snapshot.done,
            speed=_format_rows_rate(speed),
            counts=format_counts(snapshot.counts) or "-",
            rate=_format_rate(snapshot.current_rate),
        )


def _pick_mode(mode: str | None, stream: TextIO) -> str:
    """
    The display mode: as asked, else a bar on a terminal and plain lines otherwise.
    """
    if mode is None:
        mode = "bar" if _is_terminal(stream) else "plain"
    if mode not in ("bar", "plain", "quiet"):
        raise ValueError(f"unknown progress mode {mode!r}")
    return mode


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class ListingSnapshot(Protocol):
    """
    What a listing's display reads (an export's ``ExportProgress``): pages and devices
    so far; how many there will be is not known until the last page.
    """

    @property
    def pages(self) -> int: ...

    @property
    def devices(self) -> int: ...

    @property
    def api_calls(self) -> int: ...

    @property
    def rate_limited(self) -> int: ...

    @property
    def current_rate(self) -> float | None: ...

    @property
    def elapsed(self) -> float: ...


def format_listing_line(snapshot: ListingSnapshot) -> str:
    """
    One plain line of a listing: pages, devices, devices/s, calls, 429s, rate.
    """
    speed = rows_per_second(snapshot.devices, snapshot.elapsed)
    shown = "-" if speed is None else f"{speed:.0f}"
    return (
        f"progress: {snapshot.pages} pages · {snapshot.devices} devices"
        f" · {shown} devices/s · api calls {snapshot.api_calls}"
        f" · 429s {snapshot.rate_limited}"
        f" · request rate {_format_rate(snapshot.current_rate)}"
    )


class ListingDisplay:
    """
    The ``on_progress`` callback of an export, used as a context manager around it.

    The same modes as ``ProgressDisplay``: a rich line that counts up on a terminal,
    a plain line every ``interval`` seconds otherwise, or nothing.
    """

    def __init__(
        self,
        *,
        mode: str | None = None,
        stream: TextIO | None = None,
        interval: float = PLAIN_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self.mode = _pick_mode(mode, self._stream)
        self._interval = interval
        self._clock = clock
        self._last_line_at: float | None = None
        self._last: ListingSnapshot | None = None
        self._printed_last = False
        self._lines_written = 0
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> Self:
        if self.mode == "bar":
            console = Console(file=self._stream, stderr=self._stream is sys.stderr)
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.fields[line]}"),
                console=console,
                transient=False,
            )
            self._task = self._progress.add_task("devices", total=None, line="")
            self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __call__(self, snapshot: ListingSnapshot) -> None:
        """
        Take a new snapshot and show it if it is time to.
        """
        self._last = snapshot
        self._printed_last = False
        if self._progress is not None and self._task is not None:
            line = format_listing_line(snapshot).removeprefix("progress: ")
            self._progress.update(self._task, line=line)
        elif self.mode == "plain":
            now = self._clock()
            if self._last_line_at is None:
                self._last_line_at = now
            elif now - self._last_line_at >= self._interval:
                self._write_line(snapshot)
                self._last_line_at = now

    def close(self) -> None:
        """
        Stop the live line, or print the last plain line if lines were printed.
        """
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        elif self.mode == "plain" and self._lines_written and not self._printed_last:
            assert self._last is not None
            self._write_line(self._last)

    def _write_line(self, snapshot: ListingSnapshot) -> None:
        self._stream.write(format_listing_line(snapshot) + "\n")
        self._stream.flush()
        self._printed_last = True
        self._lines_written += 1
