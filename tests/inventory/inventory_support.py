"""
What the inventory tests share: the emulator's seeded org and settings for it.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from paths import EMULATOR_ORG

from provisioner.emulator import RunningEmulator
from provisioner.settings import RateControl, RetryPolicy, Settings

ORG = json.loads(EMULATOR_ORG.read_text())
WORKSPACES = [w["id"] for w in ORG["workspaces"]]
PEOPLE = [p["id"] for p in ORG["people"]]
FAST_RETRY = RetryPolicy(
    max_attempts=12,
    base_delay=0.005,
    max_delay=0.05,
    max_total=60.0,
    retry_after_cap=0.05,
    retry_after_default=0.05,
)


def settings_for(server: RunningEmulator, **changes: Any) -> Settings:
    """
    Settings for an emulator: quick retries, a high starting rate.
    """
    settings = Settings(
        token=server.token,
        base_url=server.base_url,
        concurrency=8,
        request_timeout=5.0,
        retry=FAST_RETRY,
        rate=RateControl(initial_rate=200.0),
    )
    return replace(settings, **changes)
