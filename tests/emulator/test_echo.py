"""
The echo knob: 4xx answers quote the request body, as some gateways do.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from paths import EMULATOR_ORG

from provisioner.emulator import DEFAULT_TOKEN, RunningEmulator

ORG = json.loads(EMULATOR_ORG.read_text())
AUTH = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}
SECRET = "S3cret-Pass!"
# A third-party phone with its SIP password, for a workspace that does not exist.
REFUSED = {
    "mac": "00AABB112233",
    "model": "Polycom EE400",
    "workspaceId": "missing",
    "password": SECRET,
}


@pytest.fixture(name="http")
async def _http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def post(
    http: aiohttp.ClientSession, server: RunningEmulator, body: dict[str, Any]
) -> tuple[int, Any, aiohttp.ClientResponse]:
    async with http.post(f"{server.base_url}/devices", json=body, headers=AUTH) as r:
        return r.status, await r.json(), r


class TestEcho:
    async def test_off_by_default(
        self, http: aiohttp.ClientSession, emulator: RunningEmulator
    ) -> None:
        """Without the knob a refused create never mentions the password."""
        status, body, _ = await post(http, emulator, REFUSED)

        assert status == 404
        assert SECRET not in json.dumps(body)
        assert emulator.state.knobs.echo_request_body is False

    async def test_4xx_quotes_the_body(
        self, http: aiohttp.ClientSession, start_emulator: Any
    ) -> None:
        """With echo_request_body the message and every description quote the body;
        the tracking id and error code stay."""
        server = await start_emulator(echo_request_body=True)

        status, body, response = await post(http, server, REFUSED)

        assert status == 404
        assert SECRET in body["message"]
        assert all(SECRET in e["description"] for e in body["errors"])
        assert body["trackingId"] == response.headers["trackingid"]

    async def test_success_is_not_echoed(
        self, http: aiohttp.ClientSession, start_emulator: Any
    ) -> None:
        """A 200 answer is unchanged: the password stays out of it."""
        server = await start_emulator(echo_request_body=True)
        created = {**REFUSED, "workspaceId": ORG["workspaces"][0]["id"]}

        status, body, _ = await post(http, server, created)

        assert status == 200
        assert SECRET not in json.dumps(body)

    async def test_knob_changes_at_run_time(
        self, http: aiohttp.ClientSession, emulator: RunningEmulator
    ) -> None:
        """PATCH /_emulator/faults turns the echo on; a non-boolean is a 400."""
        url = f"{emulator.admin_url}/faults"
        async with http.patch(url, json={"echo_request_body": True}) as r:
            knobs = await r.json()
        async with http.patch(url, json={"echo_request_body": "yes"}) as r:
            bad = r.status

        _, body, _ = await post(http, emulator, REFUSED)

        assert (knobs["echo_request_body"], bad) == (True, 400)
        assert SECRET in body["message"]

    async def test_429_is_echoed_and_keeps_retry_after(
        self, http: aiohttp.ClientSession, start_emulator: Any
    ) -> None:
        """A rate-limited create quotes its body too, and still says Retry-After."""
        server = await start_emulator(echo_request_body=True, rate_limit=0.01, burst=1)
        await post(http, server, REFUSED)

        status, body, response = await post(http, server, REFUSED)

        assert status == 429
        assert SECRET in body["message"]
        assert int(response.headers["Retry-After"]) >= 1
