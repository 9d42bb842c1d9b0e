"""
Simulate the rate controller against eight token buckets: how a tuning change fares.

The controller (``provisioner.webex.ratelimit``) is driven on a fake clock by a pool
of workers against a server-side token bucket, with each request's one-way trip
jittered and its send delayed by up to ``--delay-ms`` (a busy event loop). Per bucket
it prints the share of the limit the run got (the median over ``--seeds`` runs), the
most calls answered 429 and the most 429 episodes. ``--initial-rate``, ``--margin``,
``--ramp-interval``, ``--quick`` and ``--deep-backoff`` try a change without editing the
code.

It is its own copy of ``tests/webex/test_ratelimit.simulate`` (and its bucket) on
purpose: the tests' simulator is exact, with no jitter and no delay, because exact-value
tests of the controller stand on it; this one jitters every trip, as a real network does.

    .venv/bin/python benchmarks/sim_rates.py                    # as shipped
    .venv/bin/python benchmarks/sim_rates.py --initial-rate 40  # a faster start
    .venv/bin/python benchmarks/sim_rates.py --margin 0.005     # a thinner margin
    .venv/bin/python benchmarks/sim_rates.py --ramp-interval 0.05  # a faster ramp
    .venv/bin/python benchmarks/sim_rates.py --quick 0              # never halve
"""

from __future__ import annotations

import argparse
import heapq
import random
import statistics
import sys
from dataclasses import dataclass, replace

from provisioner.settings import RateControl
from provisioner.webex.ratelimit import DEFAULT_TUNING, ControllerTuning, RateController

#: (limit per second, burst, calls): Webex-like buckets, small and large.
BUCKETS = (
    (50, 10, 2000),
    (20, 5, 600),
    (5, 5, 150),
    (5, 1, 150),
    (100, 20, 4000),
    (10, 1, 400),
    (50, 50, 2000),
    (50, 2, 2000),
)


@dataclass
class Bucket:
    """The server's token bucket."""

    rate: float
    burst: float
    tokens: float = 0.0
    last: float = 0.0

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class Clock:
    """A clock that moves only when the simulation moves it."""

    now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True, slots=True)
class Outcome:
    """One simulated run: share of the limit, calls answered 429, 429 episodes."""

    share: float
    rejected: int
    episodes: int


def simulate(
    limit: float,
    burst: float,
    calls: int,
    *,
    control: RateControl,
    tuning: ControllerTuning,
    seed: int,
    workers: int = 16,
    latency: float = 0.04,
    jitter: float = 0.2,
    delay: float = 0.003,
    retry_after: float = 1.0,
) -> Outcome:
    """
    Run ``calls`` calls through the controller against one bucket; see the module.
    """
    dice = random.Random(seed)
    clock = Clock()
    controller = RateController(control, clock=clock, tuning=tuning)
    bucket = Bucket(limit, burst, tokens=burst)
    events: list[tuple[float, int, str, int, float]] = []
    waiting: dict[int, tuple[int, float, int]] = {}
    counter = {"seq": 0, "left": calls, "done": 0, "rejected": 0}
    seen_epoch = [controller.epoch]
    end = 0.0

    def push(at: float, kind: str, worker: int, value: float = 0.0) -> None:
        counter["seq"] += 1
        heapq.heappush(events, (at, counter["seq"], kind, worker, value))

    def one_way() -> float:
        return latency / 2 * (1 + dice.uniform(-jitter, jitter))

    def notify() -> None:
        if controller.epoch != seen_epoch[0]:
            seen_epoch[0] = controller.epoch
            for worker in list(waiting):
                del waiting[worker]
                push(clock.now, "acquire", worker)

    def send(worker: int, slot: float) -> None:
        controller.record_start_nowait(slot)
        push(clock.now + dice.uniform(0, delay) + one_way(), "arrive", worker, slot)

    def acquire(worker: int) -> None:
        epoch, slot = controller.epoch, controller.reserve_nowait()
        notify()
        if slot <= clock.now:
            send(worker, slot)
        else:
            counter["seq"] += 1
            waiting[worker] = (epoch, slot, counter["seq"])
            push(slot, "wake", worker, counter["seq"])

    for worker in range(workers):
        counter["left"] -= 1
        push(0.0, "acquire", worker)
    while events:
        clock.now, _, kind, worker, value = heapq.heappop(events)
        if kind == "acquire":
            acquire(worker)
        elif kind == "wake" and waiting.get(worker, (0, 0.0, -1))[2] == value:
            epoch, slot, _ = waiting.pop(worker)
            if controller.epoch == epoch:
                send(worker, slot)
            else:
                acquire(worker)
        elif kind == "arrive":
            answer = "accepted" if bucket.take(clock.now) else "rejected"
            push(clock.now + one_way(), answer, worker, value)
        elif kind == "accepted":
            counter["done"] += 1
            end = clock.now
            if counter["left"] > 0:
                counter["left"] -= 1
                acquire(worker)
        elif kind == "rejected":
            counter["rejected"] += 1
            controller.record_rejected_nowait(value, retry_after)
            notify()
            push(clock.now + retry_after, "acquire", worker)
    return Outcome(
        share=counter["done"] / end / limit,
        rejected=counter["rejected"],
        episodes=controller.statistics().rate_limited_events,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--initial-rate", type=float, default=None)
    parser.add_argument("--margin", type=float, default=None)
    parser.add_argument("--ramp-interval", type=float, default=None)
    parser.add_argument("--quick", type=float, default=None)
    parser.add_argument("--deep-backoff", type=float, default=None)
    parser.add_argument("--seeds", type=int, default=6)
    parser.add_argument("--delay-ms", type=float, default=3.0)
    options = parser.parse_args(argv)
    control = RateControl()
    if options.initial_rate is not None:
        control = replace(control, initial_rate=options.initial_rate)
    tuning = DEFAULT_TUNING
    if options.margin is not None:
        tuning = replace(tuning, margin=options.margin)
    if options.ramp_interval is not None:
        tuning = replace(tuning, ramp_interval=options.ramp_interval)
    if options.quick is not None:
        tuning = replace(tuning, quick=options.quick)
    if options.deep_backoff is not None:
        tuning = replace(tuning, deep_backoff=options.deep_backoff)
    print(
        f"initial rate {control.initial_rate:g}/s, margin {tuning.margin:g}, "
        f"doubling every {tuning.ramp_interval * 1000:g} ms, "
        f"halving after a 429 within {tuning.quick:g} s of a restart "
        f"(to {tuning.deep_backoff:g}), "
        f"{options.seeds} seeds, sends delayed up to {options.delay_ms:g} ms"
    )
    print(
        "bucket (rate/burst, calls)   share of the limit   429s (max)   episodes (max)"
    )
    for limit, burst, calls in BUCKETS:
        runs = [
            simulate(
                limit,
                burst,
                calls,
                control=control,
                tuning=tuning,
                seed=seed,
                delay=options.delay_ms / 1000,
            )
            for seed in range(options.seeds)
        ]
        share = statistics.median(run.share for run in runs)
        print(
            f"{limit:>4g}/s burst {burst:<3g} {calls:>5} calls   {share:17.1%}"
            f"   {max(r.rejected for r in runs):10}   {max(r.episodes for r in runs):14}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
