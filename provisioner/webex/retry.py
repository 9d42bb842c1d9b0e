"""
Decide whether and when a failed API call is tried again (pure, no I/O).

Policy, in one place:

- ``PermanentError`` and ``OutcomeUnknownError`` are never retried.
- ``TransientError`` is retried with full-jitter exponential backoff
  (``uniform(0, min(max_delay, base_delay * 2 ** (attempt - 1)))``), within
  ``max_attempts`` calls and ``max_total`` seconds since the first attempt.
- ``RateLimitedError`` waits exactly its ``Retry-After`` (``retry_after_default`` when
  the answer named none), cut to ``retry_after_cap``. No jitter is added: the rate
  controller paces the restarts of the whole pool after the pause.
- A call that is not idempotent (create by MAC) is replayed only when the failed
  attempt cannot have taken effect: a 429/423 (the API did not process it) or a
  connection that was never opened (``ConnectError``). Any other transient failure
  of such a call is ambiguous; the client raises ``OutcomeUnknownError`` instead.
- Before the API has answered anything at all, a refused connection or a silence
  means a wrong URL or an API that is not running, which waiting does not mend:
  those get ``first_call_policy``'s few quick attempts, so a command says so in
  seconds rather than minutes.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace

from provisioner.errors import (
    ApiError,
    ConnectError,
    OutcomeUnknownError,
    RateLimitedError,
    TransientError,
)
from provisioner.settings import RetryPolicy

__all__ = [
    "FIRST_CALL_ATTEMPTS",
    "FIRST_CALL_MAX_DELAY",
    "FIRST_CALL_MAX_TOTAL",
    "backoff_delay",
    "first_call_policy",
    "is_replay_safe",
    "next_delay",
    "retry_after_delay",
]

#: Attempts, longest backoff and seconds in all for a call that finds nothing
#: answering yet (see ``first_call_policy``).
FIRST_CALL_ATTEMPTS = 3
FIRST_CALL_MAX_DELAY = 1.0
FIRST_CALL_MAX_TOTAL = 5.0

RandomSource = Callable[[], float]


def first_call_policy(policy: RetryPolicy) -> RetryPolicy:
    """
    The retries of a call made before anything has answered: a few, quickly.

    A refused connection then means a wrong URL or an API that is not running, which
    waiting does not mend. No bound is looser than ``policy``'s own.
    """
    return replace(
        policy,
        max_attempts=min(policy.max_attempts, FIRST_CALL_ATTEMPTS),
        max_delay=min(policy.max_delay, FIRST_CALL_MAX_DELAY),
        max_total=min(policy.max_total, FIRST_CALL_MAX_TOTAL),
    )


def backoff_delay(policy: RetryPolicy, attempt: int, rand: RandomSource) -> float:
    """
    Return a full-jitter backoff delay after failed attempt number ``attempt`` (1-based).
    """
    window = min(policy.max_delay, policy.base_delay * 2.0 ** max(0, attempt - 1))
    return float(window * rand())


def retry_after_delay(policy: RetryPolicy, retry_after: float | None) -> float:
    """
    Return how long to wait on a 429/423: its ``Retry-After``, defaulted and capped.
    """
    if retry_after is None or retry_after < 0:
        return policy.retry_after_default
    return min(retry_after, policy.retry_after_cap)


def is_replay_safe(error: ApiError, *, idempotent: bool) -> bool:
    """
    Return True when sending the same request again cannot duplicate its effect.
    """
    if idempotent:
        return True
    # 429/423 mean "not processed"; a refused connection never carried the request.
    return isinstance(error, RateLimitedError | ConnectError)


def next_delay(
    policy: RetryPolicy,
    error: ApiError,
    *,
    attempt: int,
    elapsed: float,
    rand: RandomSource = random.random,
) -> float | None:
    """
    Return seconds to wait before the next attempt, or None to give up.

    Args:
        attempt: how many attempts have been made so far (the failed one included).
        elapsed: seconds since the first attempt started.
        rand: a source of floats in ``[0, 1)``; tests inject a fixed one.
    """
    if isinstance(error, OutcomeUnknownError) or not isinstance(error, TransientError):
        return None
    if attempt >= policy.max_attempts:
        return None
    if isinstance(error, RateLimitedError):
        delay = retry_after_delay(policy, error.retry_after)
    else:
        delay = backoff_delay(policy, attempt, rand)
    if elapsed + delay > policy.max_total:
        return None
    return delay
