"""
org_rates.py: one rate controller per org on a fake clock, the shared-budget rule,
and the async shell's ordering (start slot first, in-flight place second).
"""

from __future__ import annotations

import heapq
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import anyio
import anyio.lowlevel
import pytest

from provisioner.settings import RateControl
from provisioner.webex.org_rates import (
    HOME_ORG,
    SHARED_LANE,
    SHORT_WAIT,
    OrgRateLimiter,
    OrgRates,
    Start,
)
from provisioner.webex.ratelimit import Phase


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Bucket:
    """The server side: a token bucket, as Webex and the emulator keep one."""

    rate: float
    burst: float
    tokens: float = field(init=False)
    last: float = 0.0

    def __post_init__(self) -> None:
        self.tokens = self.burst

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


@dataclass
class Outcome:
    """What a simulated multi-org run did."""

    rates: OrgRates
    done: dict[str, int]
    rejected: dict[str, int]
    #: (time, org) of every 429, in order.
    refusals: list[tuple[float, str]]
    #: (time, org) of every accepted call, in order.
    accepted: list[tuple[float, str]]
    shared_at: float | None


def simulate(
    calls: dict[str, int],
    buckets: dict[str, Bucket],
    *,
    latency: float = 0.04,
    workers: int = 16,
    retry_after: float = 1.0,
    seed: int = 0,
    until: float = 1e9,
    rates: OrgRates | None = None,
    clock: FakeClock | None = None,
    begin: dict[str, float] | None = None,
    stalls: tuple[tuple[float, float], ...] = (),
) -> Outcome:
    """
    Drive ``OrgRates`` with ``workers`` workers per org against token buckets.

    ``buckets`` maps an org to its own bucket; orgs missing from it use the bucket
    under the key ``"*"`` (a budget shared across orgs). Latencies get ±10% of
    seeded jitter, so orgs do not move in perfect lockstep. A worker waits for its
    org's slot (re-reserving when its lane's epoch or the generation changes, as
    OrgRateLimiter does), reaches the server half a latency later and learns the
    answer a full latency after starting; a 429 pauses it for Retry-After. Given
    ``rates`` and their ``clock``, the run goes on from where they are. ``begin``
    delays an org's first start; during each ``(at, seconds)`` of ``stalls`` nothing
    reaches the server, and what was sent arrives at once when it ends (a stalled
    process or a congested network).
    """
    jitter = random.Random(seed)
    clock = clock or FakeClock()
    rates = rates or OrgRates(RateControl(), clock=clock)
    events: list[tuple[float, int, str, str, int, float]] = []
    seq = [0]
    left = dict(calls)
    done = dict.fromkeys(calls, 0)
    rejected = dict.fromkeys(calls, 0)
    refusals: list[tuple[float, str]] = []
    accepted: list[tuple[float, str]] = []
    waiting: dict[tuple[str, int], tuple[str, int, int, float, int]] = {}
    seen: dict[str, int] = {}
    shared_at: float | None = None

    def push(at: float, kind: str, org: str, worker: int, value: float = 0.0) -> None:
        seq[0] += 1
        heapq.heappush(events, (at, seq[0], kind, org, worker, value))

    def notify(lane: str) -> None:
        epoch = rates.controller(lane).epoch
        if seen.get(lane) == epoch:
            return
        seen[lane] = epoch
        for key, (waiting_lane, *_rest) in list(waiting.items()):
            if waiting_lane == lane:
                del waiting[key]
                push(clock.now, "acquire", *key)

    def acquire(org: str, worker: int) -> None:
        lane = rates.lane(org)
        controller = rates.controller(lane)
        epoch, generation = controller.epoch, rates.generation
        slot = controller.reserve_nowait()
        notify(lane)
        if slot <= clock.now:
            start(org, lane, slot, worker)
        else:
            seq[0] += 1
            waiting[(org, worker)] = (lane, epoch, generation, slot, seq[0])
            push(slot, "wake", org, worker, seq[0])

    def start(org: str, lane: str, slot: float, worker: int) -> None:
        rates.record_start_nowait(Start(org, lane, slot))
        trip = latency * jitter.uniform(0.9, 1.1)
        push(slot + trip / 2, "arrive", org, worker, slot)
        starts[(org, worker)] = (lane, slot, trip)

    starts: dict[tuple[str, int], tuple[str, float, float]] = {}
    for org in calls:
        for worker in range(workers):
            if left[org] > 0:
                left[org] -= 1
                push(clock.now + (begin or {}).get(org, 0.0), "acquire", org, worker)
    while events:
        clock.now, _, kind, org, worker, value = heapq.heappop(events)
        if clock.now > until:
            break
        if kind == "acquire":
            acquire(org, worker)
        elif kind == "wake":
            pending = waiting.get((org, worker))
            if pending is None or pending[4] != value:
                continue
            lane, epoch, generation, slot, _ = waiting.pop((org, worker))
            fresh = rates.controller(lane).epoch == epoch
            if fresh and rates.generation == generation:
                start(org, lane, slot, worker)
            else:
                acquire(org, worker)
        elif kind == "arrive":
            held = [
                end for at, length in stalls if at <= clock.now < (end := at + length)
            ]
            if held:
                push(held[0], "arrive", org, worker, value)
                continue
            bucket = buckets.get(org) or buckets["*"]
            lane, slot, trip = starts[(org, worker)]
            answer = "accepted" if bucket.take(clock.now) else "rejected"
            push(slot + trip, answer, org, worker, slot)
        elif kind == "accepted":
            done[org] += 1
            accepted.append((clock.now, org))
            if left[org] > 0:
                left[org] -= 1
                acquire(org, worker)
        elif kind == "rejected":
            rejected[org] += 1
            refusals.append((clock.now, org))
            lane, slot, _ = starts[(org, worker)]
            generation = rates.generation
            rates.record_rejected_nowait(Start(org, lane, slot), retry_after)
            if rates.generation != generation:
                shared_at = clock.now if shared_at is None else shared_at
                for key in list(waiting):
                    del waiting[key]
                    push(clock.now, "acquire", *key)
            notify(lane)
            push(clock.now + retry_after, "acquire", org, worker)
    return Outcome(rates, done, rejected, refusals, accepted, shared_at)


def rate_over(accepted: list[tuple[float, str]], org: str, since: float) -> float:
    """Accepted calls per second of one org from ``since`` to its last one."""
    times = [t for t, name in accepted if name == org and t >= since]
    return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0


ORGS = ("org1", "org2", "org3", "org4", "org5")


class TestPerOrgControl:
    def test_a_429_pauses_only_its_own_org(self) -> None:
        """A 429 in one org pauses and slows that org; another org's slots are untouched."""
        clock = FakeClock()
        rates = OrgRates(RateControl(initial_rate=20.0), clock=clock)
        for org in ("a", "b"):
            rates.record_start_nowait(
                Start(org, org, rates.controller(org).reserve_nowait())
            )

        rates.record_rejected_nowait(Start("a", "a", 0.0), 1.0)
        paused = rates.controller("a").statistics()
        slot_b = rates.controller("b").reserve_nowait()

        assert paused.paused_for == pytest.approx(1.0)
        assert paused.rate_limited_events == 1
        assert slot_b < 0.1
        assert rates.controller("b").statistics().rate_limited_events == 0
        assert not rates.is_shared

    def test_each_org_learns_its_own_limit(self) -> None:
        """Five orgs, one limited to 5/s and four to 20/s: each settles under its own."""
        buckets = {org: Bucket(20.0, 5) for org in ORGS}
        buckets["org1"] = Bucket(5.0, 5)
        run = simulate(dict.fromkeys(ORGS, 600), buckets, until=40.0)

        stats = run.rates.statistics().by_lane
        assert not run.rates.is_shared
        assert stats["org1"].ceiling == pytest.approx(5.0, rel=0.15)
        for org in ORGS[1:]:
            assert stats[org].phase is Phase.SETTLED
            assert stats[org].ceiling == pytest.approx(20.0, rel=0.1)
            assert rate_over(run.accepted, org, 10.0) >= 20.0 * 0.9
        twenties = [org for org in ORGS if org != "org1"]
        refused = sum(run.rejected[org] for org in twenties)
        assert refused / sum(run.done[org] for org in twenties) < 0.01

    @pytest.mark.parametrize("seed", range(3))
    def test_a_stall_that_bunches_every_org_is_not_a_shared_budget(
        self, seed: int
    ) -> None:
        """
        Settled orgs whose calls arrive bunched after a stall are all refused at
        once; their total rate did not rise, so they keep their own controllers.
        """
        buckets = {org: Bucket(20.0, 5) for org in ORGS}
        stalls = ((12.0, 0.5), (20.0, 0.7), (27.0, 0.5))

        run = simulate(
            dict.fromkeys(ORGS, 1200), buckets, seed=seed, until=40.0, stalls=stalls
        )

        bunched = {org for t, org in run.refusals if 12.0 < t < 13.0}
        assert len(bunched) >= 4  # the stall did refuse (nearly) every org at once
        assert not run.rates.is_shared

    @pytest.mark.parametrize("seed", range(4))
    def test_independent_limits_hit_in_step_are_not_shared(self, seed: int) -> None:
        """Five equal orgs refused together while ramping keep their own controllers."""
        buckets = {org: Bucket(20.0, 5) for org in ORGS}

        run = simulate(dict.fromkeys(ORGS, 2400), buckets, seed=seed, until=120.0)

        first = [t for t, _ in run.refusals[:5]]
        assert len({org for _, org in run.refusals[:5]}) >= 4
        assert max(first) - min(first) < 0.25  # they did coincide at first
        assert not run.rates.is_shared
        assert sum(run.rejected.values()) / sum(run.done.values()) < 0.01


class TestToldCeilings:
    """``--max-rate ORG=R``: one org's own ceiling, the others' control untouched."""

    def test_a_told_org_never_starts_faster_than_told(self) -> None:
        """
        Org "told" has a ceiling of 5/s and a bucket of 50/s: from its first second
        on it never goes faster than 5/s, while "free" beside it ramps far past.
        """
        clock = FakeClock()
        rates = OrgRates(
            RateControl(initial_rate=20.0),
            by_org={"told": RateControl().capped(5.0)},
            clock=clock,
        )
        buckets = {"told": Bucket(50.0, 10), "free": Bucket(50.0, 10)}

        run = simulate(
            {"told": 100, "free": 600}, buckets, rates=rates, clock=clock, until=60.0
        )

        told = [t for t, org in run.accepted if org == "told"]
        assert len(told) == 100
        # Any second holds at most 5 starts (6 accepted answers at a boundary).
        assert max(sum(1 for u in told if t <= u < t + 1.0) for t in told) <= 6
        assert rate_over(run.accepted, "told", 0.0) <= 5.0 * 1.01
        assert run.rejected["told"] == 0
        assert rates.controller("told").statistics().rate <= 5.0
        assert rate_over(run.accepted, "free", 0.0) > 20.0

    def test_a_told_org_starts_no_faster_than_its_ceiling(self) -> None:
        """Its controller starts at min(the run's initial rate, the ceiling)."""
        rates = OrgRates(
            RateControl(initial_rate=20.0),
            by_org={
                "slow": RateControl().capped(5.0),
                "fast": RateControl().capped(50),
            },
            clock=FakeClock(),
        )

        assert rates.control_of("slow") == RateControl(
            initial_rate=5.0, max_rate=5.0, min_rate=0.5
        )
        assert rates.control_of("fast").initial_rate == 20.0
        assert rates.control_of("other") == RateControl(initial_rate=20.0)

    def test_the_tokens_own_org_is_paced_by_its_id_once_named(self) -> None:
        """
        Calls without orgId (lane "") go to the token's org. Once the client says
        which org that is, a ceiling told for its id paces that lane, whose
        controller starts again from it.
        """
        clock = FakeClock()
        rates = OrgRates(
            RateControl(initial_rate=20.0),
            by_org={"own-id": RateControl().capped(4.0)},
            clock=clock,
        )
        before = rates.controller(HOME_ORG)
        rates.record_start_nowait(Start(HOME_ORG, HOME_ORG, before.reserve_nowait()))
        assert before.statistics().rate == 20.0
        clock.now = 0.01

        assert rates.name_home("own-id")

        assert rates.controller(HOME_ORG) is not before
        assert rates.controller(HOME_ORG).statistics().rate == 4.0
        # Its first slot keeps 1/4 s after the last start the old one paced.
        assert rates.controller(HOME_ORG).reserve_nowait() >= 0.25
        assert not rates.name_home("own-id")  # said once is enough

    def test_an_untold_home_org_keeps_its_controller(self) -> None:
        rates = OrgRates(
            RateControl(initial_rate=20.0),
            by_org={"customer": RateControl().capped(4.0)},
            clock=FakeClock(),
        )
        before = rates.controller(HOME_ORG)

        assert not rates.name_home("own-id")
        assert rates.controller(HOME_ORG) is before

    def test_a_home_controller_that_met_a_429_is_kept(self) -> None:
        """A controller paused by a 429 is not swapped for a fresh one that would
        forget the pause."""
        clock = FakeClock()
        rates = OrgRates(by_org={"own-id": RateControl().capped(4.0)}, clock=clock)
        rates.record_start_nowait(Start(HOME_ORG, HOME_ORG, 0.0))
        rates.record_rejected_nowait(Start(HOME_ORG, HOME_ORG, 0.0), 1.0)
        before = rates.controller(HOME_ORG)

        assert not rates.name_home("own-id")
        assert rates.controller(HOME_ORG) is before


class TestSharedBudget:
    @pytest.mark.parametrize(
        ("rate", "burst"), [(100.0, 10), (90.0, 10), (110.0, 12)], ids=str
    )
    def test_a_fifth_org_joining_a_shared_budget_keeps_it_filled(
        self, rate: float, burst: int
    ) -> None:
        """
        Four orgs fill a shared budget, then a fifth starts: the orgs step down to
        shares of it, keeping it filled with few refusals.

        Whether the sharing is noticed (one lane) depends on the refusals lining up;
        orgs that fill the budget step down one at a time instead, which fills it as
        well (``test_settled_orgs_refused_at_once_after_the_total_rose_share`` shows
        the rule itself).
        """
        run = simulate(
            dict.fromkeys(ORGS, 6000),
            {"*": Bucket(rate, burst)},
            until=120.0,
            begin={"org5": 30.0},
        )

        late = [t for t, _ in run.accepted if 40.0 <= t < 100.0]
        refused = [t for t, _ in run.refusals if 40.0 <= t < 100.0]
        assert len(late) / 60.0 >= 0.95 * rate
        assert len(refused) / len(late) < 0.01

    def test_orgs_under_a_shared_budget_share_it_even_unnoticed(self) -> None:
        """
        Five orgs starting together under one 100/s budget: their first 429s look
        like independent limits, yet each org settles on a share and few calls fail.
        """
        run = simulate(dict.fromkeys(ORGS, 6000), {"*": Bucket(100.0, 10)}, until=60.0)

        late = [t for t, _ in run.accepted if t >= 20.0]
        assert len(late) / (late[-1] - late[0]) >= 90.0
        assert sum(run.rejected.values()) / len(run.accepted) < 0.01

    def test_settled_orgs_refused_at_once_after_the_total_rose_share(self) -> None:
        """
        Every sending org refused within a quarter second, settled, just after
        their total start rate rose: one lane, starting paused like them.
        """
        clock = FakeClock()
        rates = OrgRates(RateControl(initial_rate=20.0), clock=clock)
        for org in ("a", "b"):
            settle(rates, clock, org)
        steady(rates, clock, {"a": 20.0, "b": 20.0}, seconds=5.0)
        steady(rates, clock, {"a": 40.0, "b": 40.0}, seconds=0.5)
        generation = rates.generation

        rates.record_rejected_nowait(Start("a", "a", clock.now), 1.0)
        alone = rates.is_shared
        rates.record_rejected_nowait(Start("b", "b", clock.now + 0.05), 1.0)

        assert not alone
        assert rates.is_shared
        assert rates.generation == generation + 1
        assert rates.lane("a") == rates.lane("b") == SHARED_LANE
        shared = rates.controller(SHARED_LANE).statistics()
        assert shared.paused_for == pytest.approx(1.0, abs=0.01)

    def test_refused_together_at_a_sustained_total_is_not_shared(self) -> None:
        """The same refusals at a total the orgs had kept for seconds: a burst."""
        clock = FakeClock()
        rates = OrgRates(RateControl(initial_rate=20.0), clock=clock)
        for org in ("a", "b"):
            settle(rates, clock, org)
        steady(rates, clock, {"a": 20.0, "b": 20.0}, seconds=5.0)

        rates.record_rejected_nowait(Start("a", "a", clock.now), 1.0)
        rates.record_rejected_nowait(Start("b", "b", clock.now + 0.1), 1.0)

        assert not rates.is_shared

    def test_calls_a_stall_here_held_back_are_no_rise_in_the_total(self) -> None:
        """
        This process stalled for a second: the calls whose slots fell in it go out
        together when it ends, and both orgs are refused. Their slots kept the pace
        the orgs had sustained, so the total did not rise: not a shared budget.
        """
        clock = FakeClock()
        rates = OrgRates(RateControl(initial_rate=20.0), clock=clock)
        for org in ("a", "b"):
            settle(rates, clock, org)
        steady(rates, clock, {"a": 20.0, "b": 20.0}, seconds=5.0)
        stalled_from, clock.now = clock.now, clock.now + 1.0
        for n in range(20):  # a second's slots of each org, all going out now
            for org in ("a", "b"):
                rates.record_start_nowait(
                    Start(org, org, clock.now, slot=stalled_from + n / 20.0)
                )

        rates.record_rejected_nowait(Start("a", "a", clock.now), 1.0)
        rates.record_rejected_nowait(Start("b", "b", clock.now + 0.01), 1.0)

        assert not rates.is_shared

    def test_an_idle_org_does_not_block_the_rule(self) -> None:
        """An org that sent nothing for a second is not waited for."""
        clock = FakeClock()
        rates = OrgRates(RateControl(initial_rate=20.0), clock=clock)
        for org in ("a", "b", "idle"):
            settle(rates, clock, org)
        steady(rates, clock, {"a": 20.0, "b": 20.0}, seconds=5.0)
        steady(rates, clock, {"a": 30.0, "b": 30.0}, seconds=0.5)

        rates.record_rejected_nowait(Start("a", "a", clock.now), 1.0)
        rates.record_rejected_nowait(Start("b", "b", clock.now), 1.0)

        assert rates.is_shared

    def test_one_org_refused_alone_keeps_its_own_lane(self) -> None:
        """A settled org refused while the other keeps going is its own limit."""
        clock = FakeClock()
        rates = OrgRates(RateControl(initial_rate=20.0), clock=clock)
        for org in ("a", "b"):
            settle(rates, clock, org)
        steady(rates, clock, {"a": 20.0, "b": 20.0}, seconds=5.0)
        steady(rates, clock, {"a": 30.0, "b": 30.0}, seconds=0.5)

        rates.record_rejected_nowait(Start("a", "a", clock.now), 1.0)
        steady(rates, clock, {"b": 30.0}, seconds=0.5)
        rates.record_rejected_nowait(Start("b", "b", clock.now), 1.0)

        assert not rates.is_shared


def steady(
    rates: OrgRates, clock: FakeClock, per_org: dict[str, float], *, seconds: float
) -> None:
    """Record starts at a steady rate per org for ``seconds``, moving the clock."""
    step = 0.001
    until = clock.now + seconds
    due = dict.fromkeys(per_org, clock.now)
    while clock.now < until:
        for org, rate in per_org.items():
            if clock.now >= due[org]:
                rates.record_start_nowait(Start(org, org, clock.now))
                due[org] += 1.0 / rate
        clock.now += step


def settle(rates: OrgRates, clock: FakeClock, org: str) -> None:
    """Run an org alone against its own 20/s bucket until it has settled."""
    simulate({org: 800}, {org: Bucket(20.0, 5)}, rates=rates, clock=clock)
    assert rates.controller(org).statistics().phase is Phase.SETTLED


async def second_start_while(
    limiter: OrgRateLimiter, meanwhile: Callable[[Start], None]
) -> tuple[Start, Start]:
    """
    Start one call of org "a", then a second one; while the second waits for its
    slot, call ``meanwhile`` with the first start. Return both starts.
    """
    first = await limiter.acquire("a")
    started: list[Start] = []

    async def second() -> None:
        started.append(await limiter.acquire("a"))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(second)
            await anyio.lowlevel.checkpoint()  # it waits for its slot now
            meanwhile(first)
    return first, started[0]


class TestOrgRateLimiter:
    async def test_a_paused_org_holds_no_in_flight_place(self) -> None:
        """While one org waits out a 429, another org's call still gets the only place."""
        limiter = OrgRateLimiter(1, RateControl(initial_rate=50.0))
        async with limiter.slot("a") as start:
            pass
        limiter.rejected(start, 5.0)
        order: list[str] = []

        async def call(org: str) -> None:
            async with limiter.slot(org):
                order.append(org)

        with anyio.fail_after(2):
            async with anyio.create_task_group() as group:
                group.start_soon(call, "a")
                await anyio.sleep(0.01)
                group.start_soon(call, "b")
                await anyio.sleep(0.1)
                group.cancel_scope.cancel()

        assert order == ["b"]
        assert limiter.in_flight == 0

    async def test_a_short_wait_still_notices_a_pause(self) -> None:
        """
        A caller sleeping out a slot a few milliseconds away, when a 429 pauses its
        org meanwhile, starts only after the pause: its slot is re-reserved.
        """
        limiter = OrgRateLimiter(4, RateControl(initial_rate=200.0))
        assert 0 < 1 / 200.0 <= SHORT_WAIT  # the next slot is a short wait away
        paused_for: list[float] = []

        def pause(first: Start) -> None:
            limiter.rejected(first, 0.2)
            paused_for.append(limiter.statistics().by_lane["a"].paused_for)

        first, second = await second_start_while(limiter, pause)

        assert paused_for[0] > 0.1
        assert second.at >= first.at + 0.2

    async def test_a_waiter_woken_late_starts_when_it_really_went(self) -> None:
        """
        A caller whose slot came while the event loop was busy records the moment
        it went out, not the slot: the API's bucket counted it then, and learning
        from slot times took such bunched calls for a lower limit.
        """
        limiter = OrgRateLimiter(4, RateControl(initial_rate=20.0))

        def busy(_first: Start) -> None:
            time.sleep(0.15)  # blocking on purpose: the loop is busy past the slot

        first, second = await second_start_while(limiter, busy)

        # Its slot was 1/20 s after the first start; it went out 0.15 s after.
        assert second.at >= first.at + 0.15
        assert second.handed_out == pytest.approx(first.handed_out + 0.05, abs=1e-6)

    async def test_in_flight_counts_the_places_held(self) -> None:
        """The in-flight figure is the places held right now, back to 0 after."""
        limiter = OrgRateLimiter(3)
        async with limiter.slot("a"), limiter.slot("b"):
            assert limiter.in_flight == 2
        assert limiter.in_flight == 0

    async def test_a_request_waiting_for_a_place_does_not_go_out_in_its_pause(
        self,
    ) -> None:
        """
        Org a's request has its start slot but waits for the only in-flight place
        (org b holds it); a 429 then pauses org a. When b lets go, a's request takes
        a new slot after the pause instead of going out inside it.
        """
        limiter = OrgRateLimiter(1, RateControl(initial_rate=1000.0))
        async with limiter.slot("a") as earlier:
            pass
        b_holds, let_go = anyio.Event(), anyio.Event()
        entered: list[Start] = []

        async def hold_b() -> None:
            async with limiter.slot("b"):
                b_holds.set()
                await let_go.wait()

        async def call_a() -> None:
            async with limiter.slot("a") as start:
                entered.append(start)

        with anyio.fail_after(5):
            async with anyio.create_task_group() as group:
                group.start_soon(hold_b)
                await b_holds.wait()
                group.start_soon(call_a)
                await anyio.sleep(0.02)  # a has its slot and waits for the place
                assert entered == []
                limiter.rejected(earlier, 0.2)
                pause_end = limiter.rates.controller("a").paused_until
                let_go.set()

        assert entered[0].at >= pause_end
        assert limiter.in_flight == 0
