"""
Say where a rate-limited org's run time went, from the emulator's request log.

Replays the org's token bucket (rate ``limit``, burst ``burst``, full at the run's
first request) over the requests as they arrived, and counts the capacity that ran
to waste: refills a full bucket could not hold. Every second of such waste is a
second the org's run is longer than ``(calls - burst) / limit``, the least time its
calls can take. The waste is put down to what the run was doing:

- ``before writes``: from the run's first request to the org's first write (the
  pre-flight reads, the confirmation);
- ``pauses``: from a 429 episode's first refusal to the first start after it
  (``Retry-After`` at least a second, against the burst's refill);
- ``paced``: every other gap (a rate under the limit, a climb after a pause);
- ``tail``: from the org's last answer to the run's last (another org still busy);
- ``burst left``: tokens still in the bucket at the org's last start, a burst the
  run never spent.

``benchmarks/bench_orgs.py --explain`` prints it per org for each run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

#: The request methods that change an org: the rows' own calls.
WRITES = frozenset({"POST", "PATCH", "PUT", "DELETE"})


@dataclass(frozen=True, slots=True)
class OrgTime:
    """
    Seconds of one org's run lost to each cause, and the 429 episodes' times.
    """

    before_writes: float
    pauses: float
    paced: float
    tail: float
    burst_left: float
    refusals: tuple[float, ...]

    @property
    def lost(self) -> float:
        """
        All the seconds lost: what the run took over the least its calls needed.
        """
        return (
            self.before_writes + self.pauses + self.paced + self.tail + self.burst_left
        )


def org_time(
    entries: Sequence[dict[str, Any]],
    *,
    first: float,
    last: float,
    limit: float,
    burst: float,
) -> OrgTime:
    """
    Account one org's requests (the admin view's log entries) from ``first`` (the
    run's first request) to ``last`` (the run's last answer).
    """
    ordered = sorted(entries, key=lambda entry: entry["started"])
    writes = [e["started"] for e in ordered if e["method"] in WRITES]
    first_write = writes[0] if writes else first
    refused = [e["started"] for e in ordered if e["status"] == 429]
    # A pause runs from an episode's first refusal to the first start after the
    # episode's refusals: refusals closer than a second apart are one episode.
    episodes: list[float] = []
    for when in refused:
        if not episodes or when - episodes[-1] >= 1.0:
            episodes.append(when)
    tokens, clock = burst, first
    lost = {"before writes": 0.0, "pauses": 0.0, "paced": 0.0}
    for entry in ordered:
        now = entry["started"]
        overflow = max(0.0, tokens + (now - clock) * limit - burst)
        tokens = min(burst, tokens + (now - clock) * limit)
        if now <= first_write:
            lost["before writes"] += overflow
        elif any(opened < now and clock <= opened + 1.0 for opened in episodes):
            lost["pauses"] += overflow
        else:
            lost["paced"] += overflow
        clock = now
        if entry["status"] != 429 and tokens >= 1.0:
            tokens -= 1.0
    answered = max(e["answered"] for e in ordered if e["answered"] is not None)
    return OrgTime(
        before_writes=lost["before writes"] / limit,
        pauses=lost["pauses"] / limit,
        paced=lost["paced"] / limit,
        tail=max(0.0, last - answered),
        burst_left=min(burst, tokens + (answered - clock) * limit) / limit,
        refusals=tuple(round(opened - first, 2) for opened in episodes),
    )


def explain(
    logs: dict[str, Sequence[dict[str, Any]]],
    everything: Sequence[dict[str, Any]],
    *,
    limit: float,
    burst: float,
) -> list[str]:
    """
    One line per org of ``logs``: where its run's time went, in seconds;
    ``everything`` is the run's whole request log (the token's own org's too).
    """
    first = min(entry["started"] for entry in everything)
    last = max(e["answered"] for e in everything if e["answered"] is not None)
    lines = []
    for key, entries in logs.items():
        spent = org_time(entries, first=first, last=last, limit=limit, burst=burst)
        accepted = sum(1 for e in entries if e["status"] not in (429, None))
        least = (accepted - burst) / limit
        lines.append(
            f"  {key}: lost {spent.lost:.2f} s = before writes "
            f"{spent.before_writes:.2f} + pauses {spent.pauses:.2f} + paced "
            f"{spent.paced:.2f} + tail {spent.tail:.2f} + burst left "
            f"{spent.burst_left:.2f}; least {least:.2f} s; 429 episodes at "
            f"{list(spent.refusals)} s"
        )
    return lines
