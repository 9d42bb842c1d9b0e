"""
The admin view's request log: order, MACs, 429s and Retry-After, bounds, reset.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from paths import EMULATOR_ORG

from provisioner.emulator import DEFAULT_TOKEN, OrgSpec, RunningEmulator, org_id_for

ORG = json.loads(EMULATOR_ORG.read_text())
HOME = ORG["orgId"]
WORKSPACE = ORG["workspaces"][0]["id"]
AUTH = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}
MAC = "00AABB112233"
VALIDATE = "/telephony/config/devices/actions/validateMacs/invoke"


@pytest.fixture(name="http")
async def _http() -> AsyncIterator[aiohttp.ClientSession]:
    # A fresh connection per request, so a dropped one cannot taint the next.
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        yield session


async def send(
    http: aiohttp.ClientSession,
    server: RunningEmulator,
    method: str,
    path: str,
    **kwargs: Any,
) -> int | str:
    """Send one API request; return its status, or "dropped"."""
    try:
        async with http.request(
            method, server.base_url + path, headers=AUTH, **kwargs
        ) as response:
            await response.read()
            return response.status
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError):
        return "dropped"


async def create(
    http: aiohttp.ClientSession, server: RunningEmulator, mac: str = MAC
) -> int | str:
    body = {"mac": mac, "model": "Cisco 8851", "workspaceId": WORKSPACE}
    return await send(http, server, "POST", "/devices", json=body)


def starts_inside_a_wait(entries: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """Pairs (429, later request) where the later one started before Retry-After."""
    found = []
    for limited in (e for e in entries if e["status"] == 429):
        ends = limited["answered"] + limited["retryAfter"]
        found += [
            (limited["seq"], e["seq"])
            for e in entries
            if e["org"] == limited["org"] and limited["answered"] < e["started"] < ends
        ]
    return found


class TestEntries:
    async def test_entries_in_arrival_order(
        self, http: aiohttp.ClientSession, emulator: RunningEmulator
    ) -> None:
        """Each request is logged with method, path, query, org, status and times."""
        await send(http, emulator, "GET", "/devices", params={"mac": MAC})
        await create(http, emulator)
        await send(http, emulator, "GET", "/nowhere")

        entries = emulator.requests()

        assert [(e["method"], e["path"], e["status"]) for e in entries] == [
            ("GET", "/v1/devices", 200),
            ("POST", "/v1/devices", 200),
            ("GET", "/v1/nowhere", 404),
        ]
        assert [e["seq"] for e in entries] == [1, 2, 3]
        assert entries[0]["query"] == {"mac": MAC}
        assert {e["org"] for e in entries} == {HOME}
        assert all(e["started"] <= e["answered"] for e in entries)
        assert entries[0]["answered"] <= entries[1]["started"]
        assert entries[2]["route"] == "<unmatched>"

    async def test_a_macs_story(
        self, http: aiohttp.ClientSession, emulator: RunningEmulator
    ) -> None:
        """?mac= keeps the requests about one MAC, whatever the notation: a lookup
        that found nothing, the create, a second create refused, a validateMacs."""
        await send(
            http, emulator, "GET", "/devices", params={"mac": "00-aa-bb-11-22-33"}
        )
        await create(http, emulator, "00:aa:bb:11:22:33")
        await create(http, emulator, "001122334455")
        await create(http, emulator, MAC)
        await send(http, emulator, "POST", VALIDATE, json={"macs": ["00aabb112233"]})

        story = emulator.requests(mac="00:AA:BB:11:22:33")

        assert [(e["route"], e["status"]) for e in story] == [
            ("GET /v1/devices", 200),
            ("POST /v1/devices", 200),
            ("POST /v1/devices", 400),
            (f"POST /v1{VALIDATE}", 200),
        ]
        assert story[0]["items"] == 0
        assert story[1]["mac"] == MAC
        assert story[3]["macs"] == [MAC]

    async def test_lookup_counts_what_it_found(
        self, http: aiohttp.ClientSession, emulator: RunningEmulator
    ) -> None:
        """A list answered 200 records how many items it returned."""
        await create(http, emulator)
        await send(http, emulator, "GET", "/devices", params={"mac": MAC})
        await send(
            http, emulator, "GET", "/workspaces", params={"displayName": "Lobby"}
        )

        entries = emulator.requests()

        assert [e["items"] for e in entries] == [None, 1, 7]

    async def test_dropped_requests_are_logged(
        self, http: aiohttp.ClientSession, start_emulator: Any
    ) -> None:
        """A dropped connection shows as status "dropped"."""
        server = await start_emulator(drop_rate=1.0)

        status = await create(http, server)

        assert status == "dropped"
        assert [e["status"] for e in server.requests()] == ["dropped"]

    async def test_each_entry_names_its_org(
        self, http: aiohttp.ClientSession, start_emulator: Any
    ) -> None:
        """orgId= keeps one org's requests; the org is the one the request was for."""
        server = await start_emulator(
            orgs=(OrgSpec(key="org1"),), partners={DEFAULT_TOKEN: ("org1",)}
        )
        org1 = org_id_for("org1")
        await send(http, server, "GET", "/devices")
        await send(http, server, "GET", "/devices", params={"orgId": org1})

        entries = server.requests(org=org1)

        assert [e["query"] for e in entries] == [{"orgId": org1}]


class TestRateLimits:
    async def test_429_carries_retry_after(
        self, http: aiohttp.ClientSession, start_emulator: Any
    ) -> None:
        """A 429 entry records its Retry-After, and the log shows a request that
        started before that wait was over."""
        server = await start_emulator(rate_limit=0.5, burst=1)

        statuses = [await send(http, server, "GET", "/devices") for _ in range(3)]
        entries = server.requests()

        assert statuses == [200, 429, 429]
        assert [e["retryAfter"] for e in entries] == [None, 2, 2]
        assert starts_inside_a_wait(entries) == [(2, 3)]

    async def test_no_429_leaves_nothing_to_flag(
        self, http: aiohttp.ClientSession, start_emulator: Any
    ) -> None:
        """Requests that all arrive within the burst give nothing to flag."""
        server = await start_emulator(rate_limit=1.0, burst=3)

        for _ in range(3):
            await send(http, server, "GET", "/devices")

        assert starts_inside_a_wait(server.requests()) == []


class TestAdminRoute:
    async def test_filters_since_and_bounds(
        self, http: aiohttp.ClientSession, start_emulator: Any
    ) -> None:
        """GET /_emulator/requests keeps the newest entries; since= skips older ones."""
        server = await start_emulator(request_log_size=3)
        for _ in range(5):
            await send(http, server, "GET", "/devices")

        async with http.get(f"{server.admin_url}/requests") as response:
            everything = await response.json()
        async with http.get(f"{server.admin_url}/requests?since=4") as response:
            newest = await response.json()
        async with http.get(f"{server.admin_url}/requests?since=x") as response:
            bad = response.status

        assert [e["seq"] for e in everything["items"]] == [3, 4, 5]
        assert (everything["last"], everything["evicted"]) == (5, 2)
        assert [e["seq"] for e in newest["items"]] == [5]
        assert bad == 400

    async def test_reset_clears_the_log(
        self, http: aiohttp.ClientSession, emulator: RunningEmulator
    ) -> None:
        """POST /_emulator/reset empties the log and restarts its numbering."""
        await create(http, emulator)
        async with http.post(f"{emulator.admin_url}/reset"):
            pass
        await send(http, emulator, "GET", "/devices")

        async with http.get(f"{emulator.admin_url}/requests?mac={MAC}") as response:
            about_mac = (await response.json())["items"]

        assert about_mac == []
        assert [e["seq"] for e in emulator.requests()] == [1]

    async def test_admin_calls_are_not_logged(
        self, http: aiohttp.ClientSession, emulator: RunningEmulator
    ) -> None:
        """The admin view itself never shows up in the log."""
        async with http.get(f"{emulator.admin_url}/stats"):
            pass

        assert emulator.requests() == []
