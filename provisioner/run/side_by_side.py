"""
Await two independent calls at once and get their answers as plain values.

anyio's task groups wrap whatever a task raises in an ``ExceptionGroup``; the run's
callers catch ``AuthError`` and friends by type, so the first failure is raised here
as itself, and the other call is cancelled (there is no use in its answer then).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

import anyio

__all__ = ["side_by_side"]

First = TypeVar("First")
Second = TypeVar("Second")


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
