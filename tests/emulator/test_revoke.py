"""
A token that stops working, as an expired or revoked Webex token does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest

from provisioner.emulator import DEFAULT_TOKEN, EmulatorConfig, RunningEmulator
from provisioner.emulator.config import ALL_SCOPES

OTHER = "second-token"


@pytest.fixture(name="http")
async def _http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def status_of(
    http: aiohttp.ClientSession, server: RunningEmulator, token: str
) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    async with http.get(f"{server.base_url}/devices", headers=headers) as answer:
        return answer.status


async def test_a_revoked_token_answers_401_and_others_still_work(
    start_emulator: Callable[..., Awaitable[RunningEmulator]],
    http: aiohttp.ClientSession,
) -> None:
    """After POST /_emulator/tokens/revoke, that token gets 401; another does not;
    an unknown token cannot be revoked (404); the token is never in the path."""
    server = await start_emulator(
        EmulatorConfig(tokens={DEFAULT_TOKEN: ALL_SCOPES, OTHER: ALL_SCOPES})
    )
    before = await status_of(http, server, DEFAULT_TOKEN)
    url = f"{server.admin_url}/tokens/revoke"

    async with http.post(url, json={"token": DEFAULT_TOKEN}) as revoked:
        revoked_status = revoked.status
    async with http.post(url, json={"token": "never-issued"}) as unknown:
        unknown_status = unknown.status

    assert (before, revoked_status, unknown_status) == (200, 204, 404)
    assert await status_of(http, server, DEFAULT_TOKEN) == 401
    assert await status_of(http, server, OTHER) == 200
