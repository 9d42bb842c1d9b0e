"""
Await independent calls at once and get their answers as plain values.

anyio's task groups wrap whatever a task raises in an ``ExceptionGroup``; the run's
callers catch ``AuthError`` and friends by type, so a failure is raised here as
itself.

- ``side_by_side``: two calls, both needed; the first failure is raised and the
  other call is cancelled (there is no use in its answer then).
- ``ahead_of``: calls sent beside one that must answer first. Their answers, or
  failures, are kept until that one has answered, so its failure (a refused token,
  a wrong URL) is the one raised, as if it had been made alone; they are cancelled
  then.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Any, Generic, TypeVar

import anyio
from anyio.abc import TaskGroup

__all__ = ["Ahead", "ahead_of", "side_by_side"]

First = TypeVar("First")
Second = TypeVar("Second")
Answer = TypeVar("Answer")


async def side_by_side(
    first: Awaitable[First], second: Awaitable[Second]
) -> tuple[First, Second]:
    """
    Await ``first`` and ``second`` concurrently; return both answers in that order.

    Raises:
        Exception: the first failure of either, unwrapped; the other is cancelled.
    """
    answers: dict[int, Any] = {}
    failures: list[Exception] = []

    async with anyio.create_task_group() as group:

        async def one(index: int, call: Awaitable[Any]) -> None:
            try:
                answers[index] = await call
            except Exception as error:  # noqa: BLE001 (re-raised below, as itself)
                failures.append(error)
                group.cancel_scope.cancel()

        group.start_soon(one, 0, first)
        group.start_soon(one, 1, second)
    if failures:
        raise failures[0]
    return answers[0], answers[1]


class Ahead(Generic[Answer]):
    """
    A call already on its way: ``answer()`` waits for it and returns its answer, or
    raises what it raised.
    """

    def __init__(self) -> None:
        self._done = anyio.Event()
        self._answer: Any = None
        self._failure: Exception | None = None

    async def answer(self) -> Answer:
        await self._done.wait()
        if self._failure is not None:
            raise self._failure
        return self._answer  # type: ignore[no-any-return]

    async def _run(self, call: Awaitable[Answer]) -> None:
        try:
            self._answer = await call
        except Exception as error:  # noqa: BLE001 (kept for answer() to raise)
            self._failure = error
        self._done.set()


class _Starter:
    """
    Starts calls ahead inside ``ahead_of``'s block.
    """

    def __init__(self, group: TaskGroup) -> None:
        self._group = group

    def start(self, call: Awaitable[Answer]) -> Ahead[Answer]:
        """
        Send ``call`` now; its failure waits for ``Ahead.answer()``.
        """
        ahead: Ahead[Answer] = Ahead()
        self._group.start_soon(ahead._run, call)
        return ahead


@asynccontextmanager
async def ahead_of() -> AsyncIterator[_Starter]:
    """
    A block in which calls can be started ahead (``start``) of what the block awaits.

    Leaving the block waits for the calls started ahead, unless the block raised:
    then they are cancelled and its exception is raised as itself.
    """
    failure: BaseException | None = None
    async with anyio.create_task_group() as group:
        try:
            yield _Starter(group)
        except BaseException as error:  # noqa: BLE001 (re-raised below, as itself)
            failure = error
            group.cancel_scope.cancel()
    if failure is not None:
        raise failure
