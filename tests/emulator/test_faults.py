"""
The emulator's fault injection, admin view, clock and process harness.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from click.testing import CliRunner

import provisioner.emulator
from provisioner.cli import main as cli_main
from provisioner.emulator import (
    DEFAULT_TOKEN,
    FaultKnobs,
    RunningEmulator,
    run_in_subprocess,
)
from provisioner.emulator.faults import FaultDice, TokenBucket

ORG = json.loads(
    (Path(provisioner.emulator.__file__).parent / "data" / "org.json").read_text()
)
WORKSPACE = ORG["workspaces"][0]["id"]
AUTH = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}
DISCONNECTED = (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)


@pytest.fixture(name="http")
async def _http() -> AsyncIterator[aiohttp.ClientSession]:
    # A fresh connection per request, so one dropped connection cannot taint the next.
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        yield session


async def create(
    http: aiohttp.ClientSession, server: RunningEmulator, mac: str = "00AABB112233"
) -> int:
    payload = {"mac": mac, "model": "Cisco 8851", "workspaceId": WORKSPACE}
    async with http.post(f"{server.base_url}/devices", json=payload, headers=AUTH) as r:
        await r.read()
        return r.status


async def statuses(
    http: aiohttp.ClientSession, server: RunningEmulator, count: int
) -> list[int | str]:
    """GET /devices ``count`` times; a dropped connection shows as 'dropped'."""
    seen: list[int | str] = []
    for _ in range(count):
        try:
            async with http.get(f"{server.base_url}/devices", headers=AUTH) as r:
                await r.read()
                seen.append(r.status)
        except DISCONNECTED:
            seen.append("dropped")
    return seen


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class TestTokenBucket:
    def test_burst_then_retry_after(self) -> None:
        """A full bucket serves `burst` calls, then asks to wait ceil(1/rate) s."""
        clock = FakeClock()
        bucket = TokenBucket(0.4, 2, clock=clock)

        taken = [bucket.take_nowait() for _ in range(3)]

        assert taken == [0, 0, 3]

    def test_refill_and_minimum_wait(self) -> None:
        """Tokens come back with time; a wait under a second is reported as 1."""
        clock = FakeClock()
        bucket = TokenBucket(10.0, 1, clock=clock)
        bucket.take_nowait()

        waiting = bucket.take_nowait()
        clock.now += 0.2
        refilled = bucket.take_nowait()

        assert (waiting, refilled) == (1, 0)


class TestFaultDice:
    KNOBS = FaultKnobs(
        latency_ms=50, jitter_ms=20, fault_rate=0.3, drop_rate=0.2, ambiguous_rate=0.2
    )

    def test_same_seed_same_sequence(self) -> None:
        """Two dice with one seed roll identical decisions; another seed differs."""
        first, second, other = FaultDice(5), FaultDice(5), FaultDice(6)

        a = [first.roll(self.KNOBS) for _ in range(50)]
        b = [second.roll(self.KNOBS) for _ in range(50)]
        c = [other.roll(self.KNOBS) for _ in range(50)]

        assert a == b
        assert a != c

    def test_latency_stays_within_jitter(self) -> None:
        """Every delay lies in [latency - jitter, latency + jitter]."""
        dice = FaultDice(1)

        delays = [dice.roll(self.KNOBS).delay_s for _ in range(200)]

        assert min(delays) >= 0.030
        assert max(delays) <= 0.070
        assert len(set(delays)) > 100

    def test_shares_roughly_match_the_knobs(self) -> None:
        """Over many rolls, each fault appears at about its configured share."""
        dice = FaultDice(2)

        rolls = [dice.roll(self.KNOBS) for _ in range(4000)]
        errors = [r.server_error for r in rolls if r.server_error]

        assert 0.25 < len(errors) / 4000 < 0.35
        assert 0.15 < sum(r.drop for r in rolls) / 4000 < 0.25
        assert set(errors) == {502, 503, 504}


class TestRateLimit:
    async def test_429_with_retry_after_and_no_state_change(
        self, http: aiohttp.ClientSession, start_emulator: Any
    ) -> None:
        """Past the burst a create gets 429, integer Retry-After, and creates nothing."""
        server = await start_emulator(rate_limit=0.5, burst=1)
        await create(http, server, "000000000001")
        payload = {
            "mac": "000000000002",
            "model": "Cisco 8851",
            "workspaceId": WORKSPACE,
        }

        async with http.post(
            f"{server.base_url}/devices", json=payload, headers=AUTH
        ) as r:
            body = await r.json()
            status, retry_after = r.status, r.headers["Retry-After"]

        assert status == 429
        assert retry_after == "2"
        assert body["trackingId"]
        assert len(server.state.store.devices) == 1
        assert server.stats()["rate_limited_total"] == 1

    async def test_limit_can_change_at_run_time(
        self, http: aiohttp.ClientSession, emulator: RunningEmulator
    ) -> None:
        """set_faults turns a rate limit on for a running server."""
        before = await statuses(http, emulator, 3)
        emulator.set_faults(rate_limit=0.01, burst=1)
        after = await statuses(http, emulator, 3)

        assert before == [200, 200, 200]
        assert after == [200, 429, 429]


class TestServerErrorsAndDrops:
    async def test_fault_rate_answers_gateway_errors(
        self, http: aiohttp.ClientSession, start_emulator: Any
    ) -> None:
        """fault_rate=1 answers every call 502/503/504, some bodies non-JSON, no state."""
        server = await start_emulator(fault_rate=1.0, seed=3)
        kinds = set()
        for n in range(12):
            payload = {
                "mac": f"{n:012X}",
                "model": "Cisco 8851",
                "workspaceId": WORKSPACE,
            }
            async with http.post(
                f"{server.base_url}/devices", json=payload, headers=AUTH
            ) as r:
                kinds.add((r.status, r.content_type))

        assert {status for status, _ in kinds} <= {502, 503, 504}
        assert {ctype for _, ctype in kinds} == {"application/json", "text/html"}
        assert server.state.store.devices == {}

    async def test_same_seed_same_fault_sequence(
        self, http: aiohttp.ClientSession, start_emulator: Any
    ) -> None:
        """Two servers with one seed fail the same calls the same way."""
        knobs = {"fault_rate": 0.4, "drop_rate": 0.2}
        first = await start_emulator(seed=11, **knobs)
        second = await start_emulator(seed=11, **knobs)
        other = await start_emulator(seed=12, **knobs)

        a = await statuses(http, first, 25)
        b = await statuses(http, second, 25)
        c = await statuses(http, other, 25)

        assert a == b
        assert a != c
        assert {"dropped", 200} <= set(a)

    async def test_dropped_connection_is_quiet_and_changes_nothing(
        self,
        http: aiohttp.ClientSession,
        start_emulator: Any,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """A drop disconnects the client before any state change, with no server error log."""
        server = await start_emulator(drop_rate=1.0)
        caplog.set_level(logging.DEBUG)

        with pytest.raises(DISCONNECTED):
            await create(http, server)

        assert server.state.store.devices == {}
        assert server.stats()["dropped_total"] == 1
        assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []

    async def test_ambiguous_create_exists_but_gets_no_answer(
        self,
        http: aiohttp.ClientSession,
        start_emulator: Any,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """ambiguous_rate=1: POST /devices creates the device, then drops; GETs answer."""
        server = await start_emulator(ambiguous_rate=1.0)
        caplog.set_level(logging.DEBUG)

        with pytest.raises(DISCONNECTED):
            await create(http, server)
        listed = await statuses(http, server, 1)

        assert [r.wire["mac"] for r in server.state.store.devices.values()] == [
            "00AABB112233"
        ]
        assert listed == [200]
        assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []

    async def test_latency_knob_delays_without_changing_answers(
        self, http: aiohttp.ClientSession, start_emulator: Any
    ) -> None:
        """With latency and jitter configured, each answer waits at least latency minus
        jitter (from the request log's arrival and answer stamps) and is still right.

        Only the lower bound is checked: a sleep never ends early, while a busy machine
        may make it end late.
        """
        server = await start_emulator(latency_ms=30, jitter_ms=10)

        seen = await statuses(http, server, 3)

        waited = [e["answered"] - e["started"] for e in server.requests()]
        assert seen == [200, 200, 200]
        assert len(waited) == 3
        assert min(waited) >= 0.020


class TestAdminView:
    async def admin(
        self,
        http: aiohttp.ClientSession,
        server: RunningEmulator,
        method: str,
        path: str,
        body: Any = None,
    ) -> tuple[int, Any]:
        async with http.request(method, f"{server.admin_url}{path}", json=body) as r:
            raw = await r.read()
            return r.status, (json.loads(raw) if raw else None)

    async def test_devices_stats_and_reset(
        self, http: aiohttp.ClientSession, emulator: RunningEmulator
    ) -> None:
        """The admin view lists devices, counts by route template, and resets both."""
        await create(http, emulator)
        await create(http, emulator)
        async with http.get(f"{emulator.base_url}/devices/unknown", headers=AUTH):
            pass

        _, devices = await self.admin(http, emulator, "GET", "/devices")
        _, stats = await self.admin(http, emulator, "GET", "/stats")
        reset, _ = await self.admin(http, emulator, "POST", "/reset")
        _, after = await self.admin(http, emulator, "GET", "/devices")
        _, stats_after = await self.admin(http, emulator, "GET", "/stats")

        assert len(devices["items"]) == 1
        assert stats["by_route"] == {
            "POST /v1/devices": {"200": 1, "400": 1},
            "GET /v1/devices/{deviceId}": {"404": 1},
        }
        assert stats["requests_total"] == 3
        assert (reset, after["items"], stats_after["requests_total"]) == (204, [], 0)

    async def test_faults_change_at_run_time(
        self, http: aiohttp.ClientSession, emulator: RunningEmulator
    ) -> None:
        """PATCH /_emulator/faults changes the given knobs; bad ones are a 400."""
        status, knobs = await self.admin(
            http, emulator, "PATCH", "/faults", {"fault_rate": 1.0}
        )
        answered = await statuses(http, emulator, 2)
        bad, _ = await self.admin(http, emulator, "POST", "/faults", {"fault_rate": 3})
        unknown, _ = await self.admin(http, emulator, "POST", "/faults", {"speed": 3})

        assert (status, knobs["fault_rate"], knobs["drop_rate"]) == (200, 1.0, 0.0)
        assert set(answered) <= {502, 503, 504}
        assert (bad, unknown) == (400, 400)

    async def code_device(
        self, http: aiohttp.ClientSession, server: RunningEmulator, **body: str
    ) -> str:
        payload = {"workspaceId": WORKSPACE, **body}
        async with http.post(
            f"{server.base_url}/devices/activationCode", json=payload, headers=AUTH
        ) as r:
            return str((await r.json())["id"])

    async def test_activate_gives_mac_and_connects(
        self, http: aiohttp.ClientSession, emulator: RunningEmulator
    ) -> None:
        """Activation sets the MAC (phones plain, roomdesk with colons) and connects."""
        phone = await self.code_device(http, emulator, model="Cisco 8875")
        room = await self.code_device(http, emulator)

        _, phone_wire = await self.admin(
            http,
            emulator,
            "POST",
            f"/devices/{phone}/activate",
            {"mac": "aa:bb:cc:00:11:22"},
        )
        _, room_wire = await self.admin(
            http, emulator, "POST", f"/devices/{room}/activate"
        )
        again, _ = await self.admin(http, emulator, "POST", f"/devices/{room}/activate")

        assert (phone_wire["mac"], phone_wire["connectionStatus"]) == (
            "AABBCC001122",
            "connected",
        )
        assert re.fullmatch(r"([0-9A-F]{2}:){5}[0-9A-F]{2}", room_wire["mac"])
        assert room_wire["type"] == "roomdesk"
        assert again == 409
        assert emulator.state.store.is_mac_in_use("AABBCC001122")

    async def test_activate_with_a_mac_in_use_is_refused(
        self, http: aiohttp.ClientSession, emulator: RunningEmulator
    ) -> None:
        """A pending device cannot take a MAC another device has."""
        await create(http, emulator, "AABBCC001122")
        pending = await self.code_device(http, emulator, model="Cisco 8875")

        status, body = await self.admin(
            http,
            emulator,
            "POST",
            f"/devices/{pending}/activate",
            {"mac": "AABBCC001122"},
        )

        assert (status, body["errorCode"]) == (400, 5675)

    async def test_clock_expires_activation_codes(
        self, http: aiohttp.ClientSession, emulator: RunningEmulator
    ) -> None:
        """Past 30 days the pending device is offline_expired and cannot activate."""
        pending = await self.code_device(http, emulator, model="Cisco 8875")
        early, _ = await self.admin(
            http, emulator, "POST", "/clock", {"advance_seconds": 29 * 86400}
        )
        still = emulator.state.store.devices[pending].wire["connectionStatus"]

        await self.admin(
            http, emulator, "POST", "/clock", {"advance_seconds": 2 * 86400}
        )
        async with http.get(
            f"{emulator.base_url}/devices/{pending}", headers=AUTH
        ) as r:
            expired = (await r.json())["connectionStatus"]
        activate, _ = await self.admin(
            http, emulator, "POST", f"/devices/{pending}/activate"
        )

        assert (early, still) == (200, "activating")
        assert (expired, activate) == ("offline_expired", 410)

    async def test_clock_can_be_set(
        self, http: aiohttp.ClientSession, emulator: RunningEmulator
    ) -> None:
        """POST /_emulator/clock with now sets the time used for created; reset undoes it."""
        await self.admin(
            http, emulator, "POST", "/clock", {"now": "2030-01-02T03:04:05+00:00"}
        )
        payload = {
            "mac": "00AABB112233",
            "model": "Cisco 8851",
            "workspaceId": WORKSPACE,
        }
        async with http.post(
            f"{emulator.base_url}/devices", json=payload, headers=AUTH
        ) as r:
            created = (await r.json())["created"]
        bad, _ = await self.admin(http, emulator, "POST", "/clock", {"now": "soon"})

        await self.admin(http, emulator, "POST", "/reset")
        _, clock = await self.admin(http, emulator, "GET", "/clock")

        assert created.startswith("2030-01-02T03:04:0")
        assert bad == 400
        assert clock["offset_s"] == 0


class TestProcess:
    async def test_subprocess_prints_url_and_serves(self) -> None:
        """run_in_subprocess starts a real process on 127.0.0.1 and stops it on exit."""
        with run_in_subprocess(["--seed", "4"]) as (process, base_url):
            async with (
                aiohttp.ClientSession() as http,
                http.get(f"{base_url}/devices", headers=AUTH) as r,
            ):
                status = r.status

        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", base_url)
        assert status == 200
        assert process.poll() is not None

    async def test_reset_waits_for_a_request_its_client_gave_up_on(
        self, http: aiohttp.ClientSession
    ) -> None:
        """A create still being answered when its client gave up (a Ctrl-C, a kill)
        lands before a reset, not after it in the fresh devices and stats."""
        payload = {
            "mac": "00AABB112233",
            "model": "Cisco 8851",
            "workspaceId": WORKSPACE,
        }
        with run_in_subprocess(["--latency-ms", "300"]) as (_, base_url):
            admin = base_url.removesuffix("/v1") + "/_emulator"
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.05):
                    await http.post(f"{base_url}/devices", json=payload, headers=AUTH)
            async with http.post(f"{admin}/reset") as r:
                reset = r.status
            await asyncio.sleep(0.4)  # past the latency the abandoned create slept out
            async with http.get(f"{admin}/stats") as r:
                stats = await r.json()

        assert (reset, stats["requests_total"], stats["by_route"]) == (204, 0, {})

    def test_cli_help_is_the_emulator_help(self) -> None:
        """provisioner emulator --help shows the emulator's own flags."""
        result = CliRunner().invoke(cli_main, ["emulator", "--help"])

        assert result.exit_code == 0
        assert "--ambiguous-rate" in result.output
        assert "--token" in result.output
