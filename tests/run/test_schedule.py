"""
The order rows start in: longest-processing-time first across owners, one create at
a time per owner. Pure: a simulated clock counts create turns, nothing is timed.
"""

from __future__ import annotations

import heapq
import random

from provisioner.models import Row
from provisioner.run import plan


def row(number: int, owner: str) -> Row:
    return Row(number=number, cells=(), workspace_id=owner)


def rows_of(counts: dict[str, int]) -> list[Row]:
    """
    Rows for owners with these row counts, interleaved as a sheet might list them.
    """
    queues = dict(counts)
    rows: list[Row] = []
    number = 2
    while any(queues.values()):
        for owner in list(queues):
            if queues[owner]:
                rows.append(row(number, owner))
                queues[owner] -= 1
                number += 1
    return rows


def simulate(rows: list[Row], workers: int) -> tuple[list[int], int]:
    """
    Run the schedule with ``workers`` workers where every row's create takes one
    turn; return the rows in start order and the turns the run took.
    """
    schedule = plan.Schedule(rows)
    running: list[tuple[int, int, str]] = []
    started: list[int] = []
    now = 0
    while schedule.left or running:
        while len(running) < workers and (next_row := schedule.take()) is not None:
            started.append(next_row.number)
            key = plan.owner_key(next_row)
            heapq.heappush(running, (now + 1, next_row.number, key))
        now, _, key = heapq.heappop(running)
        schedule.release(key)
    return started, now


class TestOrder:
    def test_the_owner_with_most_rows_left_goes_first(self) -> None:
        """With one worker: most rows left first, ties in manifest order, and each
        owner's rows in manifest order."""
        rows = [row(2, "a"), row(3, "a"), row(4, "a"), row(5, "b"), row(6, "c")]
        rows.append(row(7, "b"))

        ordered = [r.number for r in plan.order_rows(rows)]

        assert ordered == [2, 3, 5, 4, 7, 6]

    def test_nothing_is_lost_or_repeated(self) -> None:
        rows = [row(n, f"o{n % 3}") for n in range(2, 40)]

        assert sorted(r.number for r in plan.order_rows(rows)) == list(range(2, 40))

    def test_rows_without_an_owner_each_stand_alone(self) -> None:
        rows = [Row(number=n, cells=()) for n in (2, 3)]

        assert {plan.owner_key(r) for r in rows} == {"row:2", "row:3"}


class TestOneTurnPerOwner:
    def test_a_busy_owner_gets_no_second_row(self) -> None:
        schedule = plan.Schedule([row(2, "a"), row(3, "a")])

        first = schedule.take()
        second = schedule.take()

        assert first is not None
        assert first.number == 2
        assert second is None
        assert schedule.left == 1
        assert schedule.busy == {"workspace:a"}

    def test_release_hands_out_the_owners_next_row(self) -> None:
        schedule = plan.Schedule([row(2, "a"), row(3, "a")])
        schedule.take()

        schedule.release("workspace:a")
        schedule.release("workspace:a")  # a second release changes nothing
        following = schedule.take()

        assert following is not None
        assert following.number == 3
        assert schedule.take() is None
        assert schedule.left == 0

    def test_never_two_rows_of_one_owner_at_once_in_any_release_order(self) -> None:
        random_order = random.Random(7)
        rows = [row(n, f"o{random_order.randrange(6)}") for n in range(2, 200)]
        schedule = plan.Schedule(rows)
        running: list[Row] = []
        done: list[int] = []
        while schedule.left or running:
            while len(running) < 4 and (taken := schedule.take()) is not None:
                owners = [plan.owner_key(r) for r in running]
                assert plan.owner_key(taken) not in owners
                running.append(taken)
            finished = running.pop(random_order.randrange(len(running)))
            schedule.release(plan.owner_key(finished))
            done.append(finished.number)

        assert sorted(done) == list(range(2, 200))


class TestFinishingTogether:
    def test_a_big_owner_starts_first_and_is_not_the_tail(self) -> None:
        """One workspace with 10 devices among 20 people with one each, 4 workers:
        its chain of 10 creates starts at once, so the run takes the chain's 10 turns,
        not 10 turns after the people are done."""
        rows = rows_of({f"person-{n}": 1 for n in range(20)} | {"big": 10})

        started, turns = simulate(rows, workers=4)

        big = [r.number for r in rows if r.workspace_id == "big"]
        assert started[0] == big[0]
        assert turns == 10

    def test_skewed_owners_take_the_lower_bound(self) -> None:
        """A skewed mix (a few big workspaces, many one- and two-device people) ends
        at the larger of the longest chain and the work shared by the workers."""
        counts = {"ws-a": 30, "ws-b": 24, "ws-c": 12}
        counts |= {f"p-{n}": 1 + n % 2 for n in range(150)}
        rows = rows_of(counts)

        _, turns = simulate(rows, workers=8)

        lower_bound = max(max(counts.values()), -(-len(rows) // 8))
        assert turns == lower_bound

    def test_round_robin_would_make_the_big_owner_the_tail(self) -> None:
        """The reason for the policy: starting owners in turn leaves the big chain
        to run alone at the end (a longer run in the same simulation)."""
        rows = rows_of({f"person-{n}": 1 for n in range(40)} | {"big": 12})
        by_owner: dict[str, list[Row]] = {}
        for r in rows:
            by_owner.setdefault(r.workspace_id or "", []).append(r)
        round_robin = [
            queue[i]
            for i in range(max(len(q) for q in by_owner.values()))
            for queue in by_owner.values()
            if i < len(queue)
        ]

        _, longest_first = simulate(rows, workers=4)
        _, in_turn = simulate_fifo(round_robin, workers=4)

        assert longest_first == 13
        assert in_turn > longest_first


def simulate_fifo(rows: list[Row], workers: int) -> tuple[list[int], int]:
    """
    The old engine: rows in a fixed order, a worker waits on a busy owner's lock.
    """
    free_at = [0] * workers
    owner_free: dict[str, int] = {}
    order: list[int] = []
    end = 0
    for r in rows:
        worker = min(range(workers), key=free_at.__getitem__)
        start = max(free_at[worker], owner_free.get(plan.owner_key(r), 0))
        free_at[worker] = owner_free[plan.owner_key(r)] = start + 1
        order.append(r.number)
        end = max(end, start + 1)
    return order, end
