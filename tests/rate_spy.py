"""
A spy on the real rate limiter: how many starts each set of rate controllers saw.
"""

from __future__ import annotations

import pytest

from provisioner.webex.org_rates import OrgRates, Start


def starts_by_limiter(monkeypatch: pytest.MonkeyPatch) -> dict[int, int]:
    """
    Count every request start from now on, by the ``OrgRates`` that paced it (its
    ``id``): one entry when one limiter paced every call.
    """
    seen: dict[int, int] = {}
    record = OrgRates.record_start_nowait

    def counted(rates: OrgRates, start: Start) -> None:
        seen[id(rates)] = seen.get(id(rates), 0) + 1
        record(rates, start)

    monkeypatch.setattr(OrgRates, "record_start_nowait", counted)
    return seen
