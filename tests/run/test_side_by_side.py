"""
side_by_side.py: two calls awaited at once, answers in order, failures unwrapped.
"""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

from provisioner.errors import AuthError
from provisioner.run.side_by_side import ahead_of, side_by_side

# A guard against a hang, not a measure of speed: a sequential await deadlocks.
DEADLOCK_GUARD = 5.0


class TestSideBySide:
    async def test_both_run_at_once_and_answer_in_order(self) -> None:
        """Each call waits for the other to have started: only a concurrent await ends."""
        started = {"first": anyio.Event(), "second": anyio.Event()}

        async def call(mine: str, other: str, answer: int) -> int:
            started[mine].set()
            await started[other].wait()
            return answer

        with anyio.fail_after(DEADLOCK_GUARD):
            answers = await side_by_side(
                call("first", "second", 1), call("second", "first", 2)
            )

        assert answers == (1, 2)

    async def test_a_failure_is_raised_as_itself_and_the_other_is_cancelled(
        self,
    ) -> None:
        """An AuthError comes out as AuthError, not an ExceptionGroup; the other stops."""
        finished: list[str] = []

        async def refused() -> int:
            await anyio.lowlevel.checkpoint()
            raise AuthError("token refused", status=401)

        async def slow() -> int:
            await anyio.sleep(DEADLOCK_GUARD)
            finished.append("slow")
            return 2

        with anyio.fail_after(DEADLOCK_GUARD / 2), pytest.raises(AuthError) as raised:
            await side_by_side(slow(), refused())

        assert raised.value.status == 401
        assert finished == []

    async def test_the_first_failure_wins_when_both_fail(self) -> None:
        """Two failures: the one that happened first is raised."""

        async def fails_now() -> int:
            raise ValueError("first")

        async def fails_later() -> int:
            await anyio.lowlevel.checkpoint()
            raise KeyError("second")

        with pytest.raises(ValueError, match="first"):
            await side_by_side(fails_later(), fails_now())


class TestAheadOf:
    async def test_a_call_started_ahead_runs_while_the_block_awaits(self) -> None:
        """The call ahead and the block's own await each wait for the other to start."""
        started = {"ahead": anyio.Event(), "block": anyio.Event()}

        async def call(mine: str, other: str, answer: int) -> int:
            started[mine].set()
            await started[other].wait()
            return answer

        with anyio.fail_after(DEADLOCK_GUARD):
            async with ahead_of() as early:
                ahead = early.start(call("ahead", "block", 1))
                own = await call("block", "ahead", 2)
                answer = await ahead.answer()

        assert (answer, own) == (1, 2)

    async def test_a_failure_ahead_waits_for_its_answer(self) -> None:
        """The block goes on after the call ahead failed; answer() raises it as itself."""
        went_on: list[str] = []

        async def refused() -> int:
            raise AuthError("token refused", status=401)

        async def block() -> None:
            async with ahead_of() as early:
                ahead = early.start(refused())
                await anyio.lowlevel.checkpoint()
                went_on.append("block")
                await ahead.answer()

        with pytest.raises(AuthError):
            await block()

        assert went_on == ["block"]

    async def test_the_block_failure_is_raised_and_the_call_ahead_cancelled(
        self,
    ) -> None:
        """A failing block raises its own error, unwrapped; the call ahead stops."""
        finished: list[str] = []

        async def slow() -> int:
            await anyio.sleep(DEADLOCK_GUARD)
            finished.append("slow")
            return 2

        async def block() -> None:
            async with ahead_of() as early:
                early.start(slow())
                await anyio.lowlevel.checkpoint()
                raise KeyError("refused")

        with anyio.fail_after(DEADLOCK_GUARD / 2), pytest.raises(KeyError):
            await block()

        assert finished == []
