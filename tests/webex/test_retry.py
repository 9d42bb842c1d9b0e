"""
retry.py: when a failed call is tried again, and after how long.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provisioner.errors import (
    ApiError,
    ApiTimeoutError,
    AuthError,
    ConnectError,
    InvalidRequestError,
    MacInUseError,
    NetworkError,
    NotFoundError,
    OutcomeUnknownError,
    RateLimitedError,
    ServerError,
)
from provisioner.settings import RetryPolicy
from provisioner.webex.retry import (
    backoff_delay,
    first_call_policy,
    is_replay_safe,
    next_delay,
    retry_after_delay,
)

POLICY = RetryPolicy(
    max_attempts=5,
    base_delay=0.5,
    max_delay=4.0,
    max_total=60.0,
    retry_after_cap=30.0,
    retry_after_default=5.0,
)


def top() -> float:
    """A random source that always draws the top of the window."""
    return 1.0


class TestBackoff:
    def test_window_doubles_then_caps(self) -> None:
        """The full-jitter window doubles per attempt up to max_delay."""
        windows = [backoff_delay(POLICY, attempt, top) for attempt in range(1, 7)]

        assert windows == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]

    @given(
        attempt=st.integers(min_value=1, max_value=60),
        draw=st.floats(min_value=0.0, max_value=0.999999),
    )
    def test_jitter_stays_in_window(self, attempt: int, draw: float) -> None:
        """Every delay lies between zero and the capped window."""
        delay = backoff_delay(POLICY, attempt, lambda: draw)

        assert 0.0 <= delay <= POLICY.max_delay


class TestRetryAfter:
    @pytest.mark.parametrize(
        ("header", "expected"),
        [(7.0, 7.0), (0.0, 0.0), (500.0, 30.0), (None, 5.0), (-1.0, 5.0)],
    )
    def test_honoured_capped_defaulted(
        self, header: float | None, expected: float
    ) -> None:
        """Retry-After is used as given, cut to the cap, and defaulted when absent."""
        assert retry_after_delay(POLICY, header) == expected

    def test_rate_limited_waits_retry_after_without_jitter(self) -> None:
        """A 429 waits exactly its Retry-After, whatever the random source says."""
        error = RateLimitedError("slow down", retry_after=3.0, status=429)

        delay = next_delay(POLICY, error, attempt=1, elapsed=0.0, rand=lambda: 0.0)

        assert delay == 3.0


class TestGiveUp:
    @pytest.mark.parametrize(
        "error",
        [
            InvalidRequestError("bad", status=400),
            AuthError("who", status=401),
            NotFoundError("gone", status=404),
            MacInUseError("in use", status=400),
            OutcomeUnknownError("maybe", cause=ServerError("x", status=500)),
        ],
    )
    def test_permanent_and_unknown_are_not_retried(self, error: ApiError) -> None:
        """Permanent errors and unknown outcomes are never retried."""
        assert next_delay(POLICY, error, attempt=1, elapsed=0.0) is None

    @pytest.mark.parametrize(
        "error",
        [
            ServerError("x", status=503),
            ApiTimeoutError("slow"),
            NetworkError("dropped"),
            RateLimitedError("429", retry_after=1.0),
        ],
    )
    def test_transient_retried_until_max_attempts(self, error: ApiError) -> None:
        """Transient errors are retried until max_attempts calls have been made."""
        delays = [
            next_delay(POLICY, error, attempt=n, elapsed=0.0, rand=top)
            for n in range(1, 6)
        ]

        assert [d is not None for d in delays] == [True, True, True, True, False]

    def test_no_retry_past_max_total(self) -> None:
        """A retry that would start after max_total seconds is not scheduled."""
        error = RateLimitedError("429", retry_after=10.0)

        assert next_delay(POLICY, error, attempt=1, elapsed=49.0) == 10.0
        assert next_delay(POLICY, error, attempt=1, elapsed=51.0) is None

    @pytest.mark.parametrize(
        "error",
        [RateLimitedError("429", retry_after=10.0), ServerError("x", status=503)],
    )
    def test_retry_ending_exactly_at_max_total_is_scheduled(
        self, error: ApiError
    ) -> None:
        """The limit is inclusive: a retry landing exactly on max_total still runs."""
        # Both kinds wait 10 s here: Retry-After 10, or the top of attempt 3's
        # backoff window (2.5 * 2**2).
        policy = RetryPolicy(
            max_attempts=5, base_delay=2.5, max_delay=10.0, max_total=60.0
        )

        delay = next_delay(policy, error, attempt=3, elapsed=50.0, rand=lambda: 1.0)
        later = next_delay(policy, error, attempt=3, elapsed=50.5, rand=lambda: 1.0)

        assert delay == 10.0
        assert later is None


class TestReplaySafety:
    @pytest.mark.parametrize(
        ("error", "expected"),
        [
            (RateLimitedError("429", status=429), True),
            (ConnectError("refused"), True),
            (ServerError("500", status=500), False),
            (ApiTimeoutError("slow"), False),
            (NetworkError("dropped"), False),
        ],
    )
    def test_create_replayed_only_when_not_processed(
        self, error: ApiError, expected: bool
    ) -> None:
        """A non-idempotent call is replayed only after a 429 or a refused connection."""
        assert is_replay_safe(error, idempotent=False) is expected

    def test_idempotent_always_replay_safe(self) -> None:
        """An idempotent call may be replayed after any transient failure."""
        assert is_replay_safe(ApiTimeoutError("slow"), idempotent=True)


class TestFirstCallPolicy:
    def test_a_few_quick_attempts_by_default(self) -> None:
        """Before anything answered: 3 attempts, 1 s backoff at most, 5 s in all."""
        quick = first_call_policy(RetryPolicy())

        assert (quick.max_attempts, quick.max_delay, quick.max_total) == (3, 1.0, 5.0)
        assert quick.base_delay == RetryPolicy().base_delay

    def test_never_looser_than_the_runs_own(self) -> None:
        """A policy tighter than the first-call bounds is kept as it is."""
        tight = RetryPolicy(
            max_attempts=2, base_delay=0.01, max_delay=0.02, max_total=0.5
        )

        assert first_call_policy(tight) == tight
