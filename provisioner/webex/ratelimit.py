"""
Pace request starts under an API rate limit nobody told us, and cap calls in flight.

Webex does not publish its limits, and a 429 stops the whole pool for ``Retry-After``
(at least a second, i.e. a second's worth of calls lost). So the controller's job is
to find the limit with as few 429s as possible and then stay just under it.

The arithmetic lives in ``RateController``: synchronous, driven by an injectable clock,
testable without an event loop. ``RateLimiter`` is the thin async shell the client
awaits: an anyio ``Semaphore`` for the in-flight cap, and sleeps until the next
start slot the controller hands out.

How the controller behaves:

``ramping``
    Start at ``RateControl.initial_rate`` and double every ``ramp_interval`` while
    demand keeps up with the rate (a latency-bound pool is never held back: the
    concurrency cap already bounds the load).
``searching``
    After a 429 with no limit learned yet: pause for ``Retry-After``, restart at a
    share of the start rate measured just before the 429 (``backoff``, 85%), and
    raise the rate linearly until the next 429. A 429 within ``quick`` seconds of
    such a restart (before the climb added 5%) says the restart itself was well
    over the limit: restart at half (``deep_backoff``) instead. Against small
    bursts this is most of the search: a 5/s bucket of burst 5 or 1 rejects the
    ramp's 20/s within a few calls, and every 85% step under it cost another
    one-second pause (9 to 15 of them before the limit was reached, against 2 to 4
    now; ``benchmarks/sim_rates.py``).
``settled``
    A 429 in a server-side token bucket (rate ``L``, burst ``B``) happens when the
    starts since the bucket was last full exceeded ``B + L * t`` over some interval
    ``t``. Two 429 episodes with differently shaped start histories give two such
    curves ``B(L)``; where they cross is the limit (when the two drains differ
    enough in length to place the crossing at all). The controller then runs
    ``margin`` under it, holds for ``settle_hold`` seconds and probes up very slowly,
    so a raised limit is found again without oscillating across it.

What an episode says about ``B`` (``Episode.burst``): a bucket full where the
excess peaks holds ``B - excess`` at the end, which is under one call (the call was
rejected) and at least what refilled since the last start (that start took a whole
call). ``B`` is the middle of that range, not ``excess`` itself: a slow drain ends
with nearly one call in the bucket, a fast one with anything down to nothing, and
crossing the bare excess curves of a fast and a slow episode placed the limit a few
percent low (20/s burst 5: 89% of the limit, against 95% now). The one hard
constraint is ``B >= 1`` (a bucket that took a call held one), so a crossing is
refused only where ``excess <= 0``; refusing ``excess < 1``, as before, refused
every bucket of burst 1, whose excess at the true limit is always below one call.
A crossing must also explain the episodes paired past on the way to it: each ended
in a 429, so the learned bucket must have been under one call at each end. Two long
episodes of the same drain rate can otherwise cross far from the limit at a burst of
hundreds (50/s raised to 60/s: a "limit" of 55/s with a burst of 301).

Why not settle from the first 429 alone: one episode gives one curve, and a curve
cannot tell rate from burst. Against the ramp above, buckets of 45/s with burst
11, 50/s with burst 10 and 60/s with burst 8 accept and reject exactly the same
starts (``tests/webex/test_ratelimit.py`` shows it), so no rule can settle within a few
percent under all three after one 429. Even a known burst pins the rate only to
one call over the drain before the 429 (about 0.2 s after a doubling ramp: about
5/s either way at 50/s). Assuming a burst of 0.2 s and settling at once measured
worse on the emulator's 50/s, burst 10 (median 94.9% of the limit over three runs,
against 96.4% when the second, informative 429 is paid).

``RateControl.max_rate`` is a hard ceiling in every phase; ``min_rate`` a floor.
``RateControl.known_limit``, a limit an earlier command learned in the org, starts
the controller settled at it: the pauses that learned it are not paid again.

Past 450 lines on purpose: the controller's phases (ramp, search, settle) are one
state machine whose rules refer to each other; the comments that say why each number
is what it is account for much of the length.
"""

from __future__ import annotations

import enum
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio

from provisioner.settings import DEFAULT_RATE, RateControl

__all__ = [
    "DEFAULT_TUNING",
    "ControllerTuning",
    "Episode",
    "Phase",
    "RateController",
    "RateLimiter",
    "RateStatistics",
    "learn_limit",
]

Clock = Callable[[], float]


class Phase(enum.StrEnum):
    """
    Where the controller is in finding the limit.
    """

    RAMPING = "ramping"
    SEARCHING = "searching"
    SETTLED = "settled"


@dataclass(frozen=True, slots=True, kw_only=True)
class ControllerTuning:
    """
    The controller's internal knobs; the defaults suit Webex-like token buckets.

    Attributes:
        ramp_interval: seconds between doublings while ramping.
        ramp_demand: double only while the measured start rate is at least this share
            of the rate (otherwise the pool, not the controller, is the bottleneck).
        backoff: after a 429 with no limit learned, restart at this share of the
            start rate measured before it.
        quick: a 429 while searching within this many seconds of the restart
            (before the climb added ``search_slope``) means the restart itself was
            well over the limit ...
        deep_backoff: ... so restart at this share of the measured rate instead.
        max_drop: once settled, the most a newly learned limit may lower the rate,
            as a share of it.
        search_slope: while searching, the rate grows linearly by this share of the
            rate the 429 came at, per second: fast enough to climb back from a low
            restart, slow enough that the next 429 episode is long and informative.
        resolution: refuse a learned limit whose uncertainty (one call over the
            difference of the two drains) is more than this share of it.
        margin: how far under a learned limit to settle.
        settle_hold: seconds to stay settled before probing above the learned limit.
        settle_slope: share of the rate added per second while probing when settled.
        window: seconds of start history behind a measured rate.
        history: starts remembered per episode (bounds memory and learning time).
    """

    ramp_interval: float = 0.1
    ramp_demand: float = 0.75
    backoff: float = 0.85
    quick: float = 1.0
    deep_backoff: float = 0.5
    max_drop: float = 0.15
    search_slope: float = 0.05
    resolution: float = 0.5
    margin: float = 0.01
    settle_hold: float = 45.0
    settle_slope: float = 0.001
    window: float = 1.0
    history: int = 8192


DEFAULT_TUNING = ControllerTuning()


@dataclass(frozen=True, slots=True)
class Episode:
    """
    The starts between two pauses, ending at the start of the first rejected call.
    """

    starts: tuple[float, ...]
    end: float

    def excess(self, limit: float) -> float:
        """
        Return the burst a token bucket at ``limit`` would need to accept all starts.
        """
        return self._peak(limit)[0]

    def burst(self, limit: float) -> float:
        """
        Return the burst of a token bucket at ``limit`` that best explains the episode.

        Full at the peak of ``excess``, such a bucket holds ``burst - excess`` at the
        end: under one call (the call was rejected), and at least what refilled since
        the last start (which took the last whole call). The middle of that range.
        """
        refilled = min(1.0, limit * (self.end - self.starts[-1]))
        return self.excess(limit) + (1.0 + refilled) / 2

    def drain(self, limit: float) -> float:
        """
        Return how long a token bucket at ``limit`` had been draining at the end.

        The drain starts where ``excess`` peaks: the bucket was last full there.
        """
        return self.end - self._peak(limit)[1]

    def _peak(self, limit: float) -> tuple[float, float]:
        count = len(self.starts)
        # No floor at zero: past the true rate the curve keeps its slope, which keeps
        # the crossing of two curves well defined near the top of the search range.
        worst, since = -math.inf, self.end
        for index, start in enumerate(self.starts):
            excess = (count - index) - limit * (self.end - start)
            if excess > worst:
                worst, since = excess, start
        return worst, since


@dataclass(frozen=True, slots=True)
class RateStatistics:
    """
    A snapshot of the controller, for progress bars and run summaries.

    Attributes:
        rate: the current start rate (requests per second).
        ceiling: the learned limit, or None while none is known.
        phase: ramping, searching or settled.
        starts: request starts handed out.
        rate_limited_events: 429 episodes (one per pause, not per rejected call).
        paused_for: seconds left in the current pause (0 when not paused).
    """

    rate: float
    ceiling: float | None
    phase: Phase
    starts: int
    rate_limited_events: int
    paused_for: float


def learn_limit(
    first: Episode,
    second: Episode,
    *,
    low: float,
    high: float,
    resolution: float = 0.5,
) -> float | None:
    """
    Return the token-bucket rate both episodes agree on, or None when they do not.

    Each episode says "the bucket ran dry at its end": ``burst(L) == B`` for the same
    unknown burst ``B``. The difference of the two curves changes sign at most once
    between ``low`` and ``high`` for differently shaped episodes; bisect for it.

    An episode pins its burst only to within one call (the bucket ran dry somewhere
    between two starts), so the crossing is good to about one call over the
    difference of the two drains. When that is worse than ``resolution`` of the
    crossing itself (short episodes of nearly the same length), return None rather
    than settle on a guess: a 5/s bucket with burst 5 otherwise "learns" 13/s.
    """
    if not first.starts or not second.starts or not 0 < low < high:
        return None

    def gap(limit: float) -> float:
        return first.burst(limit) - second.burst(limit)

    gap_low, gap_high = gap(low), gap(high)
    if (
        gap_low == 0
        or gap_high == 0
        # pragma below: zero is refused just above, so "> 0" and ">= 0" agree here.
        or (gap_low > 0) == (gap_high > 0)  # pragma: no mutate
    ):
        return None
    # pragma below: the width test breaks out long before 40 halvings for any range
    # under 10^9/s, so a 41st step is never taken.
    for _ in range(40):  # pragma: no mutate
        middle = (low + high) / 2
        gap_middle = gap(middle)
        if (gap_middle > 0) == (gap_low > 0):
            low, gap_low = middle, gap_middle
        else:
            high = middle
        # pragma below: where the loop stops only moves the answer within 1e-3 (or
        # runs all 40 halvings), finer than anything the caller does with it.
        if high - low < 1e-3:  # pragma: no mutate
            break
    limit = (low + high) / 2
    # A bucket that took a call held one: B >= 1, and B < excess + 1 (the call at the
    # end was rejected), so no excess above nothing means no bucket fits.
    if first.excess(limit) <= 0.0:
        return None
    apart = abs(first.drain(limit) - second.drain(limit))
    if apart <= 0 or 1.0 / apart > resolution * limit:
        return None
    return limit


class RateController:
    """
    The adaptive start-rate arithmetic: hands out start times, learns from 429s.

    Not thread-safe and not async: the caller serialises calls (one event loop).
    """

    def __init__(
        self,
        control: RateControl = DEFAULT_RATE,
        *,
        clock: Clock = time.monotonic,
        tuning: ControllerTuning = DEFAULT_TUNING,
    ) -> None:
        self._control = control
        self._clock = clock
        self._tuning = tuning
        now = clock()
        self._phase = Phase.RAMPING
        self._base_rate = self._clamp(control.initial_rate)
        self._base_since = now
        self._slope = 0.0
        self._ceiling: float | None = None
        self._next = now
        self._paused_until = now
        self._episode_start = now
        self._starts: deque[float] = deque(maxlen=tuning.history)
        self._episodes: deque[Episode] = deque(maxlen=4)
        self._starts_total = 0
        self._events = 0
        #: Bumped whenever waiting callers must re-reserve (rate jump or pause).
        #: Only its changes matter, never its value (hence the pragma).
        self.epoch = 0  # pragma: no mutate
        if control.known_limit is not None:
            # A limit an earlier command learned here: run just under it from the
            # first start, as after learning it (the bucket is full, and a limit that
            # fell since is followed down by the 429s it brings).
            self._settle(control.known_limit)

    def rate_nowait(self) -> float:
        """
        Return the start rate now, after any doubling or probing that is due.
        """
        now = self._clock()
        self._ramp(now)
        return self._rate_at(now)

    def reserve_nowait(self) -> float:
        """
        Reserve the next start slot and return its time on the controller's clock.

        A reservation made before ``epoch`` changes is void: re-reserve. Call
        ``record_start_nowait`` when the request really starts.
        """
        now = self._clock()
        self._ramp(now)
        slot = max(now, self._next, self._paused_until)
        self._next = slot + 1.0 / self._rate_at(slot)
        return slot

    def record_start_nowait(self, slot: float) -> None:
        """
        Note that the request holding ``slot`` started; only real starts teach.
        """
        self._starts.append(slot)
        self._starts_total += 1

    def record_rejected_nowait(self, started_at: float, retry_after: float) -> None:
        """
        Learn from a 429 on a call that started at ``started_at``; pause every start.

        Calls that started before the current pause began belong to the same episode:
        they extend the pause to their own ``Retry-After`` but teach nothing new.
        """
        now = self._clock()
        pause_end = now + max(0.0, retry_after)
        if started_at < self._episode_start:
            self._paused_until = max(self._paused_until, pause_end)
            return
        self._events += 1
        rate_then = self._rate_at(started_at)
        episode = Episode(
            starts=tuple(sorted(s for s in self._starts if s < started_at)),
            end=started_at,
        )
        measured = self._measured_rate(episode)
        self._episodes.append(episode)
        limit = None
        # Pair the new episode with the latest earlier one that differs in shape
        # (identical shapes cannot tell rate from burst), and believe the answer only
        # if every episode passed over on the way ended in a 429 under it too: the
        # learned bucket (at least ``excess`` of the earlier one) under one call at
        # its end. The excess is a lower bound of the burst, so this only refuses
        # what no burst consistent with the pair explains.
        between: list[Episode] = []
        for earlier in reversed(list(self._episodes)[:-1]):
            limit = learn_limit(
                earlier,
                episode,
                low=self._control.min_rate,
                high=max(rate_then, measured) * 1.05,
                resolution=self._tuning.resolution,
            )
            if limit is not None and all(
                other.excess(limit) + 1 > earlier.excess(limit) for other in between
            ):
                break
            limit = None
            between.append(earlier)
        self._paused_until = max(self._paused_until, pause_end)
        if limit is not None and self._phase is Phase.SETTLED:
            # Settled, one new pair may lower the rate by ``max_drop`` at most: two
            # episodes of orgs sharing one budget can cross far under it, and a
            # limit that really fell is followed down by the next 429s.
            limit = max(limit, (1 - self._tuning.max_drop) * rate_then)
        if limit is not None:
            self._settle(min(limit, max(rate_then, measured)))
        elif self._ceiling is not None:
            # Settled, yet rejected: the limit fell or was overestimated; step under.
            self._settle(min(self._ceiling, rate_then) * (1 - 2 * self._tuning.margin))
        else:
            # A 429 soon after a search's restart: the restart was well over the
            # limit, and another 85% step would likely cost another pause.
            quick = (
                self._phase is Phase.SEARCHING
                and started_at - self._base_since < self._tuning.quick
            )
            backoff = self._tuning.deep_backoff if quick else self._tuning.backoff
            self._search(measured * backoff, max(rate_then, measured))
        self._episode_start = self._paused_until
        self._starts.clear()
        self._next = self._paused_until
        self.epoch += 1

    @property
    def paused_until(self) -> float:
        """
        When starts may resume, on the controller's clock (past when not paused).
        """
        return self._paused_until

    def statistics(self) -> RateStatistics:
        """
        Return a frozen snapshot of the controller.
        """
        now = self._clock()
        return RateStatistics(
            rate=self._rate_at(now),
            ceiling=self._ceiling,
            phase=self._phase,
            starts=self._starts_total,
            rate_limited_events=self._events,
            paused_for=max(0.0, self._paused_until - now),
        )

    # -- arithmetic -----------------------------------------------------------------

    def _clamp(self, rate: float) -> float:
        rate = max(rate, self._control.min_rate)
        if self._control.max_rate is not None:
            rate = min(rate, self._control.max_rate)
        return rate

    def _rate_at(self, when: float) -> float:
        elapsed = max(0.0, when - self._base_since)
        return self._clamp(self._base_rate + self._slope * elapsed)

    def _ramp(self, now: float) -> None:
        if self._phase is not Phase.RAMPING:
            return
        interval = self._tuning.ramp_interval
        if now - self._base_since < interval:
            return
        recent = 0
        for start in reversed(self._starts):
            if start < now - interval:
                break
            recent += 1
        self._base_since = now
        # One start of slack: at a low rate an interval holds only a start or two,
        # and a start landing just outside it must not stall the ramp for good.
        if recent + 1 >= self._tuning.ramp_demand * self._base_rate * interval:
            doubled = self._clamp(self._base_rate * 2)
            if doubled != self._base_rate:
                self._base_rate = doubled
                # Slots reserved at the old pace are too far out: void them (the
                # epoch bump makes their holders re-reserve) and pace on from the
                # last start that really happened.
                last = self._starts[-1] if self._starts else -math.inf
                # reserve_nowait takes the max with now and the pause end again,
                # so leaving either out here changes nothing (hence the pragmas).
                self._next = max(
                    now,  # pragma: no mutate
                    self._paused_until,  # pragma: no mutate
                    last + 1.0 / doubled,
                )
                self.epoch += 1

    def _measured_rate(self, episode: Episode) -> float:
        span = min(self._tuning.window, episode.end - self._episode_start)
        # pragma below: with no span no start is at or after the episode's end (its
        # starts all come before), so "< 0" falls through to the same base rate.
        if span <= 0:  # pragma: no mutate
            return self._base_rate
        count = sum(1 for s in episode.starts if s >= episode.end - span)
        if count < 2:
            return self._base_rate
        return count / span

    def _search(self, restart: float, rate_then: float) -> None:
        self._phase = Phase.SEARCHING
        self._base_rate = self._clamp(restart)
        self._base_since = self._paused_until
        self._slope = self._tuning.search_slope * rate_then

    def _settle(self, limit: float) -> None:
        self._phase = Phase.SETTLED
        self._ceiling = limit
        self._base_rate = self._clamp(limit * (1 - self._tuning.margin))
        self._base_since = self._paused_until + self._tuning.settle_hold
        self._slope = self._tuning.settle_slope * self._base_rate


class RateLimiter:
    """
    The async shell: cap calls in flight and wait for a start slot.

    Use ``async with limiter.slot() as started_at:`` around one HTTP attempt, and
    report a 429 with ``rejected(started_at, retry_after)``. Sleeping for a retry
    happens outside the slot, so a backing-off call holds no in-flight place.
    """

    def __init__(
        self,
        concurrency: int,
        control: RateControl = DEFAULT_RATE,
        *,
        clock: Clock = time.monotonic,
        tuning: ControllerTuning = DEFAULT_TUNING,
    ) -> None:
        # fast_acquire: a free place is taken without a trip through the event loop,
        # a few percent of the client's CPU per call.
        self._capacity = max(1, concurrency)
        # pragma below: fast_acquire only saves a trip through the loop (equivalent).
        self._in_flight = anyio.Semaphore(  # pragma: no mutate
            self._capacity,
            fast_acquire=True,  # pragma: no mutate
        )
        self.controller = RateController(control, clock=clock, tuning=tuning)
        self._clock = clock
        self._changed = anyio.Event()
        # pragma below: the first acquire notifies before anyone waits, so a
        # spurious first "change" would wake nobody.
        self._seen_epoch = self.controller.epoch  # pragma: no mutate

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[float]:
        """
        Hold an in-flight place and wait for a start slot; yield the start time.
        """
        async with self._in_flight:
            yield await self.acquire()

    async def acquire(self) -> float:
        """
        Wait until the controller lets one more request start; return its start time.
        """
        controller = self.controller
        while True:
            epoch = controller.epoch
            start = controller.reserve_nowait()
            self._notify_if_changed()
            delay = start - self._clock()
            if delay > 0:
                changed = self._changed
                with anyio.move_on_after(delay):
                    await changed.wait()
                if controller.epoch != epoch:
                    continue
            controller.record_start_nowait(start)
            return start

    def rejected(self, started_at: float, retry_after: float) -> None:
        """
        Tell the controller a call starting at ``started_at`` got a 429; pause the pool.
        """
        self.controller.record_rejected_nowait(started_at, retry_after)
        self._notify_if_changed()

    def statistics(self) -> RateStatistics:
        """
        Return the controller's snapshot.
        """
        return self.controller.statistics()

    @property
    def in_flight(self) -> int:
        """
        Calls holding an in-flight place right now.
        """
        return self._capacity - self._in_flight.value

    def _notify_if_changed(self) -> None:
        if self.controller.epoch != self._seen_epoch:
            self._seen_epoch = self.controller.epoch
            self._changed.set()
            self._changed = anyio.Event()
