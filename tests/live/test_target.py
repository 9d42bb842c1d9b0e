"""
live/target.py: an ``--max-rate ORG=R`` taken to be the token's own org is
confirmed by GET /people/me, or stops the command.
"""

from __future__ import annotations

import pytest
from fakes import FakeDevicesApi

from provisioner.errors import ConfigError
from provisioner.live.target import find_caller
from provisioner.settings import Settings


async def test_the_tokens_own_org_confirms_the_org_named() -> None:
    api = FakeDevicesApi(org_id="own-org")
    settings = Settings(token="t0ken", rate_org_to_confirm="own-org")

    caller = await find_caller(api, settings)

    assert caller is not None
    assert caller.org_id == "own-org"


async def test_another_org_than_the_tokens_stops_the_command() -> None:
    """No row goes to the org named, and it is not the token's: the flag is
    named, with the org the rows without orgId do go to."""
    api = FakeDevicesApi(org_id="own-org")
    settings = Settings(token="t0ken", rate_org_to_confirm="someone-else")

    with pytest.raises(ConfigError, match="--max-rate names org someone-else") as e:
        await find_caller(api, settings)

    assert "the token's own org, own-org" in str(e.value)
