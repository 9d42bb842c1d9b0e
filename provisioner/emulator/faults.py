"""
Decide, per request, which fault the emulator injects: pure and seeded.

Each request draws the same number of random values whatever the outcome, so the
fault sequence depends only on the seed and the order requests arrive in.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from provisioner.emulator.config import FaultKnobs

__all__ = ["FaultDecision", "FaultDice", "TokenBucket"]

GATEWAY_STATUSES = (502, 503, 504)


class TokenBucket:
    """
    A global token bucket: ``rate`` tokens per second, at most ``burst`` stored.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._updated = clock()

    def take_nowait(self) -> int:
        """
        Take one token; return 0 on success, else the whole seconds to wait.

        The wait is the ceiling of the time until one token is available, and at
        least 1 because ``Retry-After`` is an integer and 0 would invite a busy loop.
        """
        now = self._clock()
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate)
        self._updated = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0
        return max(1, math.ceil((1.0 - self._tokens) / self.rate))


@dataclass(frozen=True, slots=True)
class FaultDecision:
    """
    What to do to one request: delay it, drop it, answer 5xx, or make it ambiguous.
    """

    delay_s: float = 0.0
    drop: bool = False
    server_error: int | None = None
    plain_text_error: bool = False
    ambiguous: bool = False


NO_FAULT = FaultDecision()


class FaultDice:
    """
    Roll seeded fault decisions, one per API request.
    """

    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)

    def reseed(self, seed: int) -> None:
        """
        Start the fault sequence again from ``seed``.
        """
        self._random.seed(seed)

    def roll(self, knobs: FaultKnobs) -> FaultDecision:
        """
        Decide the faults for the next request under ``knobs``.
        """
        draw = self._random.random
        # Always five draws, so one request's outcome never shifts the next ones.
        jitter, drop, error, kind, ambiguous = draw(), draw(), draw(), draw(), draw()
        delay_ms = knobs.latency_ms + (2.0 * jitter - 1.0) * knobs.jitter_ms
        decision = FaultDecision(
            delay_s=max(0.0, delay_ms) / 1000.0,
            drop=drop < knobs.drop_rate,
            server_error=(
                GATEWAY_STATUSES[int(kind * 6) % 3]
                if error < knobs.fault_rate
                else None
            ),
            plain_text_error=kind >= 0.5,
            ambiguous=ambiguous < knobs.ambiguous_rate,
        )
        return NO_FAULT if decision == NO_FAULT else decision
