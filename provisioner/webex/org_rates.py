"""
Pace request starts per org: one rate controller per org, one budget if they share one.

Webex's limits are per app and org, so a partner's run across many customer orgs
keeps one ``RateController`` per org (``ratelimit.py``): each learns its own limit,
and a 429 in one org pauses and slows that org alone. The cap on calls in flight
stays one for the whole run.

An API may also limit the token across orgs. ``OrgRates`` watches for it: when
every org that is sending opens a 429 episode within ``SharingRule.together``
seconds of the others, at least two of them had settled under the limit they had
learned, and the orgs' total start rate had just risen above anything it had
sustained before, the refusals are not each org's own limit (a settled org is
refused only when it probes above its own limit, and orgs with limits of their own
cross them seconds apart, not together, and not because the total rose). From then
on one controller paces every org's starts, inheriting the orgs' pause, and learns
the shared limit as one org's is learned. The typical case: orgs settled on their
shares of one budget, and another org starts.

Why the total must have risen: a stalled process or a congested network holds
calls back and then delivers them at once, and every org's limit refuses its part
of the burst in the same instant. The start times the controllers hand out do not
move in a stall, so the total did not rise, and the orgs keep their own
controllers (a false "shared" would pace five orgs' independent limits as one, and
turn every imbalance into a pause of the whole run).

Why settled orgs: while orgs ramp or search, their 429s coincide under independent
limits too (orgs that start together ramp in step, so five orgs with a 20/s limit
each are refused within a few tens of milliseconds of each other, as a shared
100/s budget would refuse them). Sharing one budget across orgs with limits of
their own would turn every imbalance into a pause of the whole run; not noticing
a shared budget costs less: each org settles on a share of it (simulated in
``tests/webex/test_org_rates.py``: over 90% of a shared 100/s, under 1% refused),
and each org's 429 then pauses that org alone, so refusals stop coming together.

The rule needs the refusals to line up, which happens when orgs that under-use a
shared budget are overrun at once (a newcomer's ramp). Orgs that fill it, as they
do since each org's controller centres its estimate of a bucket (``ratelimit.py``),
are refused one at a time as a newcomer starts, and each steps down alone to a
share: the budget stays filled (``test_a_fifth_org_joining_a_shared_budget_keeps_it
_filled``: at least 95% of 90, 100 and 110/s, under 1% refused), though nothing
was noticed.

An org may be told its own ceiling (``--max-rate ORG=R``, ``by_org`` below): its
controller starts no faster than it and never exceeds it, while the orgs not named
keep the run's own control. The token's own org is named by its id too, though its
calls name no org (``HOME_ORG``): the client says which org that is once
``GET /people/me`` has answered (``name_home``).

The decisions are ``OrgRates``: synchronous, on an injectable clock, testable
without an event loop. ``OrgRateLimiter`` is the async shell the client awaits: a
request first waits for its org's start slot, holding nothing, then takes an
in-flight place, so an org paused by a 429 never holds places the others need.

Past 450 lines on purpose: the sharing rule and the lanes it switches are one piece
of state that the async shell beside it reads at every start.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace

import anyio
import structlog

from provisioner.settings import DEFAULT_RATE, RateControl
from provisioner.webex.ratelimit import (
    DEFAULT_TUNING,
    ControllerTuning,
    Phase,
    RateController,
    RateStatistics,
)

__all__ = [
    "DEFAULT_SHARING",
    "HOME_ORG",
    "SHARED_LANE",
    "OrgRateLimiter",
    "OrgRateStatistics",
    "OrgRates",
    "SharingRule",
    "Start",
]

log = structlog.get_logger()

Clock = Callable[[], float]

#: The org key of calls without an ``orgId``: the token's own org.
HOME_ORG = ""
#: The lane every org's starts go through once the orgs share one budget.
SHARED_LANE = "*shared*"


@dataclass(frozen=True, slots=True, kw_only=True)
class SharingRule:
    """
    When 429s say the orgs share one budget.

    Attributes:
        together: 429 episodes that open this many seconds apart or less are "at once".
        active: an org that started a call this many seconds before a 429 is
            sending; an org that is not sending cannot be refused.
        min_orgs: the fewest orgs sending for a coincidence to mean anything.
        rise: the orgs' total start rate over the last ``window`` seconds must
            exceed the highest it reached in any ``window`` of the ``baseline``
            seconds before by this share: refused together right after the total
            rose, the total is what is limited. Refused together at a total they
            had sustained, the orgs met a stall and a burst, not a shared limit.
        window: seconds of starts behind one total rate.
        baseline: seconds before the last ``window`` whose highest total rate the
            last one is compared with.
    """

    together: float = 0.25
    active: float = 1.0
    min_orgs: int = 2
    rise: float = 0.1
    window: float = 0.5
    baseline: float = 10.0


DEFAULT_SHARING = SharingRule()


@dataclass(frozen=True, slots=True)
class Start:
    """
    One request start: its org, the lane that paced it, and when it started.

    ``at`` is when the request went out, what the API's bucket counts and the
    controller learns from; ``slot`` the start time its lane handed out (the same
    unless a busy event loop woke the caller late; None: the same).
    """

    org: str
    lane: str
    at: float
    slot: float | None = None

    @property
    def handed_out(self) -> float:
        """
        The start time the lane handed out, which a stall in this process does not move.
        """
        return self.at if self.slot is None else self.slot


@dataclass(frozen=True, slots=True, kw_only=True)
class OrgRateStatistics:
    """
    A snapshot of every org's controller, and their sum for progress bars.

    Attributes:
        rate: starts per second allowed now, summed over the orgs sending.
        ceiling: the sum of the learned limits, or None while an org has none.
        phase: the one controller's phase, or the phases the orgs' controllers
            are in (``searching, settled``); ``shared, …`` once they share one.
        shared: the orgs share one budget (one controller paces them all).
        by_lane: each controller's snapshot, by org key (or ``SHARED_LANE``).
    """

    rate: float
    ceiling: float | None
    phase: str
    shared: bool
    by_lane: Mapping[str, RateStatistics]


@dataclass(slots=True)
class _Round:
    """
    The 429 episodes opened within ``together`` of the first one.
    """

    start: float
    orgs: set[str] = field(default_factory=set)
    settled: set[str] = field(default_factory=set)
    counted: bool = False


class OrgRates:
    """
    One ``RateController`` per org, and the switch to one shared by all of them.

    Not thread-safe and not async: the caller serialises calls (one event loop).
    """

    def __init__(
        self,
        control: RateControl = DEFAULT_RATE,
        *,
        by_org: Mapping[str, RateControl] | None = None,
        clock: Clock = time.monotonic,
        tuning: ControllerTuning = DEFAULT_TUNING,
        sharing: SharingRule = DEFAULT_SHARING,
    ) -> None:
        self._control = control
        #: An org's own control, by org id: it beats ``control`` for that org.
        self._by_org = dict(by_org or {})
        #: The token's own org's id, once known: ``HOME_ORG``'s calls go there.
        self._home: str | None = None
        self._clock = clock
        self._tuning = tuning
        self._sharing = sharing
        self._lanes: dict[str, RateController] = {}
        self._last_start: dict[str, float] = {}
        #: Every org's start slots of the last ``window + baseline`` seconds.
        self._recent: deque[float] = deque()
        self._round: _Round | None = None
        #: Bumped when the orgs start sharing one budget: every waiter re-reserves.
        self.generation = 0

    @property
    def is_shared(self) -> bool:
        """
        True once one controller paces every org.
        """
        return SHARED_LANE in self._lanes

    def lane(self, org: str) -> str:
        """
        Return the lane that paces ``org``'s starts: its own, or the shared one.
        """
        return SHARED_LANE if self.is_shared else org

    def controller(self, lane: str) -> RateController:
        """
        Return a lane's controller, starting a fresh one for an org seen first.
        """
        found = self._lanes.get(lane)
        if found is None:
            found = RateController(
                self.control_of(lane), clock=self._clock, tuning=self._tuning
            )
            self._lanes[lane] = found
        return found

    def control_of(self, lane: str) -> RateControl:
        """
        Return the control a lane's controller starts from: its org's own, or the run's.
        """
        org = self._home if lane == HOME_ORG and self._home is not None else lane
        return self._by_org.get(org, self._control)

    def name_home(self, org_id: str | None) -> bool:
        """
        Say which org the calls without ``orgId`` go to (the token's own).

        When that org was told a ceiling of its own, or an earlier command learned
        its limit, its lane's controller starts again from it, unless a 429 has
        taught it something already (the first call,
        ``GET /people/me``, is what says the org, so little has gone out before).
        Returns True when the lane's controller was replaced. A caller waiting for a
        slot of the old one keeps it (a few calls at most, this being a command's
        first answer); every later one is paced by the new one.
        """
        if org_id is None or org_id == self._home:
            return False
        self._home = org_id
        current = self._lanes.get(HOME_ORG)
        control = self.control_of(HOME_ORG)
        if (
            current is None
            or control is self._control
            or current.statistics().rate_limited_events
        ):
            return False
        fresh = RateController(control, clock=self._clock, tuning=self._tuning)
        last = self._last_start.get(HOME_ORG)
        # Keep the new pace's spacing after the old controller's last start (a
        # ceiling's, or a remembered limit's, whose bucket the first calls have just
        # drained): one slot reserved and left unused puts the first real one 1/R
        # from now.
        if last is not None and self._clock() < last + 1 / fresh.rate_nowait():
            fresh.reserve_nowait()
        self._lanes[HOME_ORG] = fresh
        return True

    def record_start_nowait(self, start: Start) -> None:
        """
        Note that a request started in the slot its lane handed out.
        """
        self.controller(start.lane).record_start_nowait(start.at)
        self._last_start[start.org] = start.at
        if not self.is_shared:
            # The total's history takes the handed-out times: after a stall here,
            # the calls held back go out at once, and their times of going out
            # would look like a total that rose (see "Why the total must have
            # risen" above).
            slot = start.handed_out
            recent, keep = self._recent, self._sharing.window + self._sharing.baseline
            recent.append(slot)
            while recent and recent[0] < slot - keep:
                recent.popleft()

    def record_rejected_nowait(self, start: Start, retry_after: float) -> None:
        """
        Learn from a 429 on the request that started at ``start``; pause its lane.

        Only that lane pauses: the org's own, or every org's once they share one.
        """
        controller = self.controller(start.lane)
        before = controller.statistics()
        controller.record_rejected_nowait(start.at, retry_after)
        opened = (
            controller.statistics().rate_limited_events > before.rate_limited_events
        )
        if opened and start.lane == start.org and not self.is_shared:
            self._note_episode(start.org, start.at, before.phase is Phase.SETTLED)

    def statistics(self) -> OrgRateStatistics:
        """
        Return a frozen snapshot of every lane, and their sum.
        """
        now = self._clock()
        by_lane = {lane: c.statistics() for lane, c in self._lanes.items()}
        if self.is_shared:
            shared = by_lane[SHARED_LANE]
            return OrgRateStatistics(
                rate=shared.rate,
                ceiling=shared.ceiling,
                phase=f"shared, {shared.phase}",
                shared=True,
                by_lane=by_lane,
            )
        sending = [
            stats
            for org, stats in by_lane.items()
            if self._last_start.get(org, -1e9) >= now - self._sharing.active
        ] or list(by_lane.values())
        ceilings = [stats.ceiling for stats in by_lane.values()]
        phases = sorted({str(stats.phase) for stats in by_lane.values()})
        return OrgRateStatistics(
            rate=sum(stats.rate for stats in sending),
            ceiling=(
                sum(c for c in ceilings if c is not None)
                if ceilings and None not in ceilings
                else None
            ),
            phase=", ".join(phases) or str(Phase.RAMPING),
            shared=False,
            by_lane=by_lane,
        )

    # -- the shared-budget rule ------------------------------------------------------

    def _note_episode(self, org: str, at: float, settled: bool) -> None:
        rule = self._sharing
        current = self._round
        if current is None or at - current.start > rule.together:
            current = self._round = _Round(start=at)
        current.orgs.add(org)
        if settled:
            current.settled.add(org)
        sending = {
            name for name, last in self._last_start.items() if last >= at - rule.active
        } | current.orgs
        if (
            not current.counted
            and len(sending) >= rule.min_orgs
            and sending <= current.orgs
        ):
            current.counted = True
            if len(current.settled) >= rule.min_orgs and self._total_rose(at):
                self._share()

    def _total_rose(self, at: float) -> bool:
        """
        Whether the orgs' total start rate just before ``at`` rose above the highest
        it had been in the baseline before it (slot times: a stall does not move them).
        """
        rule = self._sharing
        starts = [s for s in self._recent if s < at]
        last = sum(1 for s in starts if s >= at - rule.window)
        earlier = [s for s in starts if s < at - rule.window]
        if not earlier:
            return False
        counts: deque[float] = deque()
        highest = 0
        for moment in earlier:
            counts.append(moment)
            while counts[0] <= moment - rule.window:
                counts.popleft()
            highest = max(highest, len(counts))
        return last > highest * (1 + rule.rise)

    def _share(self) -> None:
        """
        Let one controller pace every org from now on, starting paused like them.
        """
        now = self._clock()
        stats = [c.statistics() for c in self._lanes.values()]
        together = sum(s.rate for s in stats)
        pause = max((s.paused_for for s in stats), default=0.0)
        control = replace(self._control, initial_rate=together)
        shared = RateController(control, clock=self._clock, tuning=self._tuning)
        # Recorded as a 429 so the shared controller starts as a refused one does:
        # paused with the orgs, then searching up from under their combined rate.
        shared.record_rejected_nowait(now, pause)
        self._lanes[SHARED_LANE] = shared
        self.generation += 1


#: Seconds: a wait for a start slot this short sleeps instead of watching for a
#: change (a 429's pause or a new pace is then noticed at most this late).
SHORT_WAIT = 0.01


class OrgRateLimiter:
    """
    The async shell: wait for the org's start slot, then hold an in-flight place.

    Use ``async with limiter.slot(org) as start:`` around one HTTP attempt, and
    report a 429 with ``rejected(start, retry_after)``. ``org`` is the org's key:
    its id, or ``HOME_ORG`` for calls without one.
    """

    def __init__(
        self,
        concurrency: int,
        control: RateControl = DEFAULT_RATE,
        *,
        by_org: Mapping[str, RateControl] | None = None,
        clock: Clock = time.monotonic,
        tuning: ControllerTuning = DEFAULT_TUNING,
        sharing: SharingRule = DEFAULT_SHARING,
    ) -> None:
        self._concurrency = max(1, concurrency)
        # Semaphores with fast_acquire: a free place is taken without a trip through
        # the event loop (CapacityLimiter yields on every acquire and tracks its
        # borrowers), a measurable share of the client's CPU per call.
        self._in_flight = anyio.Semaphore(self._concurrency, fast_acquire=True)
        self.rates = OrgRates(
            control, by_org=by_org, clock=clock, tuning=tuning, sharing=sharing
        )
        self._clock = clock
        self._tickets: dict[str, anyio.Semaphore] = {}
        self._changed: dict[str, anyio.Event] = {}
        self._seen: dict[str, int] = {}

    @asynccontextmanager
    async def slot(self, org: str = HOME_ORG) -> AsyncIterator[Start]:
        """
        Wait for a start slot of ``org``, then hold an in-flight place; yield the start.

        The slot comes first: a request of a paused org waits holding nothing, so
        the in-flight places stay with the orgs that may start. A request that had
        to wait for its place (the other orgs held them all) while a 429 paused its
        own org gives the place back and queues for a slot after the pause.
        """
        start = await self.acquire(org)
        while True:
            await self._in_flight.acquire()
            if not self._paused(start.org):
                break
            self._in_flight.release()
            start = await self.acquire(org)
        try:
            yield start
        finally:
            self._in_flight.release()

    async def acquire(self, org: str = HOME_ORG) -> Start:
        """
        Wait until ``org``'s lane lets one more request start; return the start.

        At most ``concurrency`` callers of a lane hold a reserved slot at once, as
        many as could be in flight: a reservation is a promise at the pace of the
        moment, and a long queue of them would keep a lane at an old pace after
        its controller has moved on.
        """
        rates = self.rates
        while True:
            lane, generation = rates.lane(org), rates.generation
            async with self._lane_tickets(lane):
                start = await self._wait_for_slot(org, lane, generation)
            if start is not None:
                return start
            # The orgs began sharing one budget: queue again in the shared lane.

    async def _wait_for_slot(
        self, org: str, lane: str, generation: int
    ) -> Start | None:
        rates = self.rates
        controller = rates.controller(lane)
        while rates.generation == generation:
            epoch = controller.epoch
            slot = controller.reserve_nowait()
            self._notify_if_changed(lane)
            delay = slot - self._clock()
            if delay > 0:
                if delay <= SHORT_WAIT:
                    # A slot a few milliseconds away: sleep it out, then see what
                    # changed meanwhile. A cancel scope and an event per call cost
                    # more CPU than the rare wake-up a few milliseconds late.
                    await anyio.sleep(delay)
                else:
                    changed = self._event(lane)
                    with anyio.move_on_after(delay):
                        await changed.wait()
                if controller.epoch != epoch:
                    continue
                if rates.generation != generation:
                    break
            # The start is when the request really goes out, not the slot it was
            # given: a busy event loop wakes a waiter late, and the API's bucket
            # counts the call when it arrives. Learning from slot times, a stall
            # that bunched calls together looked like a lower limit.
            start = Start(org, lane, max(slot, self._clock()), slot)
            rates.record_start_nowait(start)
            return start
        return None

    def rejected(self, start: Start, retry_after: float) -> None:
        """
        Tell the controllers the request of ``start`` got a 429; pause its lane.
        """
        generation = self.rates.generation
        self.rates.record_rejected_nowait(start, retry_after)
        if self.rates.generation != generation:
            # The orgs now share one budget: wake every waiter to re-reserve there.
            log.warning("rate_budget_shared", org_id=start.org or None)
            for lane in list(self._changed):
                self._wake(lane)
        self._notify_if_changed(start.lane)

    def statistics(self) -> OrgRateStatistics:
        """
        Return the controllers' snapshot.
        """
        return self.rates.statistics()

    @property
    def in_flight(self) -> int:
        """
        Calls holding an in-flight place right now.
        """
        return self._concurrency - self._in_flight.value

    def _paused(self, org: str) -> bool:
        controller = self.rates.controller(self.rates.lane(org))
        return self._clock() < controller.paused_until

    def _lane_tickets(self, lane: str) -> anyio.Semaphore:
        tickets = self._tickets.get(lane)
        if tickets is None:
            tickets = self._tickets[lane] = anyio.Semaphore(
                self._concurrency, fast_acquire=True
            )
        return tickets

    def _event(self, lane: str) -> anyio.Event:
        event = self._changed.get(lane)
        if event is None:
            event = self._changed[lane] = anyio.Event()
        return event

    def _notify_if_changed(self, lane: str) -> None:
        epoch = self.rates.controller(lane).epoch
        if self._seen.get(lane) != epoch:
            self._seen[lane] = epoch
            self._wake(lane)

    def _wake(self, lane: str) -> None:
        event = self._changed.pop(lane, None)
        if event is not None:
            event.set()
