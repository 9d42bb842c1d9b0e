"""
ApiClient across several orgs on the emulator: each org's 429s pause that org alone.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import anyio
import pytest

from provisioner.emulator import OrgSpec, RunningEmulator, org_id_for
from provisioner.settings import RateControl, RetryPolicy, Settings
from provisioner.webex.client import ApiClient
from provisioner.webex.org_rates import HOME_ORG, OrgRateStatistics
from provisioner.webex.ratelimit import Phase, RateStatistics

PARTNER = "partner-token"
SLOW, FAST = org_id_for("slow"), org_id_for("fast")


async def test_a_429_in_one_org_does_not_pause_another(start_emulator: Any) -> None:
    """
    Between the slow org's 429 and its next request, the fast org's requests keep
    arriving and are answered: the pause was the slow org's alone (read from the
    emulator's request log, in arrival order).
    """
    server: RunningEmulator = await start_emulator(
        orgs=(OrgSpec(key="slow", rate_limit=2.0, burst=1), OrgSpec(key="fast")),
        partners={PARTNER: ("slow", "fast")},
    )
    concurrency = 4
    settings = Settings(
        token=PARTNER,
        base_url=server.base_url,
        concurrency=concurrency,
        rate=RateControl(initial_rate=20.0),
        retry=RetryPolicy(max_attempts=6, base_delay=0.01),
    )

    async with ApiClient(settings) as api:

        async def read(org: str, times: int) -> None:
            for _ in range(times):
                await api.supported_devices(org_id=org)

        async with anyio.create_task_group() as group:
            group.start_soon(read, SLOW, 4)
            for _ in range(concurrency):
                group.start_soon(read, FAST, 40)

    log = server.requests()
    slow = [entry for entry in log if entry["org"] == SLOW]
    refused = next(entry for entry in slow if entry["status"] == 429)
    after = next(entry for entry in slow if entry["seq"] > refused["seq"])
    between = [
        entry
        for entry in log
        if refused["seq"] < entry["seq"] < after["seq"] and entry["org"] == FAST
    ]
    assert refused["retryAfter"] >= 1
    # More than could have been in flight when the 429 came back: they started after.
    assert len(between) > concurrency
    assert {entry["status"] for entry in between} == {200}
    assert all(entry["status"] == 200 for entry in log if entry["org"] == FAST)
    assert server.stats()["by_org"][SLOW]["rate_limited"] >= 1


def lane(ceiling: float | None) -> RateStatistics:
    return RateStatistics(
        rate=10.0,
        ceiling=ceiling,
        phase=Phase.SETTLED if ceiling else Phase.RAMPING,
        starts=1,
        rate_limited_events=2 if ceiling else 0,
        paused_for=0.0,
    )


@pytest.mark.parametrize(
    ("shared", "expected"), [(False, (("", 30.0), ("org-a", 19.9))), (True, ())]
)
def test_each_orgs_learned_limit_is_in_the_statistics(
    monkeypatch: pytest.MonkeyPatch,
    shared: bool,
    expected: tuple[tuple[str, float], ...],
) -> None:
    """The orgs that learned a limit, by the org their calls named; none once the
    orgs share one budget (one controller then paces them all)."""
    client = ApiClient(Settings(token="t" * 20, base_url="http://127.0.0.1:9/v1"))
    lanes = {"": lane(30.0), "org-a": lane(19.9), "org-b": lane(None)}
    snapshot = OrgRateStatistics(
        rate=30.0, ceiling=None, phase="settled", shared=shared, by_lane=lanes
    )
    monkeypatch.setattr(client.limiter, "statistics", lambda: snapshot)

    assert client.statistics().ceilings == expected


def test_an_org_told_a_ceiling_no_row_names_paces_the_first_calls() -> None:
    """
    ``--max-rate ORG=R`` for an org no row names can only be the token's own: its
    ceiling paces the calls without orgId from the first, before GET /people/me
    has confirmed which org that is.
    """
    told = Settings(
        token="t" * 20,
        base_url="http://127.0.0.1:9/v1",
        org_rates=(("own-id", RateControl().capped(4.0)),),
        rate_org_to_confirm="own-id",
    )
    untold = replace(told, rate_org_to_confirm=None)

    rates = [ApiClient(s).limiter.rates.controller(HOME_ORG) for s in (told, untold)]

    assert [r.statistics().rate for r in rates] == [4.0, 20.0]
