"""
ApiClient against the bundled emulator: the contract end to end, and rate learning.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest
from paths import EMULATOR_ORG
from structlog.testing import capture_logs
from structlog.typing import EventDict, WrappedLogger

from provisioner.emulator import RunningEmulator
from provisioner.errors import (
    AuthError,
    MacInUseError,
    NotFoundError,
    OutcomeUnknownError,
    ServerError,
)
from provisioner.models import TagMode
from provisioner.settings import RateControl, RetryPolicy, Settings
from provisioner.webex.client import ApiClient

ORG = json.loads((EMULATOR_ORG).read_text())
WORKSPACE = ORG["workspaces"][0]["id"]
PERSON = ORG["people"][0]["id"]
QUICK_RETRY = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02)


def settings_for(server: RunningEmulator, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "token": server.token,
        "base_url": server.base_url,
        "retry": QUICK_RETRY,
    }
    values.update(overrides)
    return Settings(**values)


class TestContract:
    async def test_device_lifecycle(self, emulator: RunningEmulator) -> None:
        """Create, read, tag, list, find by MAC and delete a phone on the emulator."""
        async with ApiClient(settings_for(emulator)) as api:
            created = await api.create_device(
                mac="00:aa:bb:11:22:33", model="DMS Cisco 8851", workspace_id=WORKSPACE
            )
            await api.modify_tags(created.id, mode=TagMode.ADD, tags=["floor-3"])
            tagged = await api.modify_tags(created.id, mode=TagMode.ADD, tags=["pilot"])
            listed = [d.id async for d in api.list_devices(workspace_id=WORKSPACE)]
            found = await api.find_device_by_mac("00AABB112233")
            await api.delete_device(created.id)
            with pytest.raises(NotFoundError):
                await api.get_device(created.id)

        assert created.mac == "00AABB112233"
        assert created.workspace_id == WORKSPACE
        assert tagged.tags == ("floor-3", "pilot")
        assert listed == [created.id]
        assert found is not None
        assert found.id == created.id

    async def test_desk_phone_empty_body_is_resolved(
        self, emulator: RunningEmulator
    ) -> None:
        """A 98xx create (empty 200 body) comes back as the device found by MAC."""
        async with ApiClient(settings_for(emulator)) as api:
            device = await api.create_device(
                mac="00AABB445566", model="Cisco 9841", person_id=PERSON
            )

        assert device.id
        assert (device.mac, device.person_id) == ("00AABB445566", PERSON)

    async def test_mac_in_use_and_validate(self, emulator: RunningEmulator) -> None:
        """A second create of a MAC is MacInUseError, and validateMacs reports it."""
        async with ApiClient(settings_for(emulator)) as api:
            await api.create_device(
                mac="00AABB778899", model="DMS Cisco 8851", workspace_id=WORKSPACE
            )
            with pytest.raises(MacInUseError):
                await api.create_device(
                    mac="00AABB778899", model="DMS Cisco 8851", workspace_id=WORKSPACE
                )
            states = await api.validate_macs(["00AABB778899", "00AABB000001"])

        assert [s.state for s in states] == ["UNAVAILABLE", "AVAILABLE"]

    async def test_catalogue_owners_and_codes(self, emulator: RunningEmulator) -> None:
        """Supported devices, owners and activation codes read back as domain values."""
        async with ApiClient(settings_for(emulator)) as api:
            models = await api.supported_devices()
            workspace = await api.get_workspace(WORKSPACE)
            person = await api.get_person(PERSON)
            code = await api.create_activation_code(
                model="DMS Cisco 8851", workspace_id=WORKSPACE
            )

        assert "DMS Cisco 8851" in {m.model for m in models}
        assert (workspace.id, person.id) == (WORKSPACE, PERSON)
        assert len(code.code) == 16
        assert code.expiry_time

    async def test_wrong_token_is_auth_error(self, emulator: RunningEmulator) -> None:
        """An unknown token is refused with AuthError after one call."""
        async with ApiClient(settings_for(emulator, token="not-the-token")) as api:
            with api.tally() as tally, pytest.raises(AuthError) as caught:
                await api.get_workspace(WORKSPACE)

        assert tally.calls == 1
        assert caught.value.tracking_id == tally.last_tracking_id

    async def test_ambiguous_create_then_lookup(self, start_emulator: Any) -> None:
        """A create whose connection drops after the device exists is OutcomeUnknownError, and the device is then found by MAC."""
        server = await start_emulator(ambiguous_rate=1.0)

        async with ApiClient(settings_for(server)) as api:
            with api.tally() as tally, pytest.raises(OutcomeUnknownError):
                await api.create_device(
                    mac="00AABBCCDD01", model="DMS Cisco 8851", workspace_id=WORKSPACE
                )
            found = await api.find_device_by_mac("00AABBCCDD01")

        (made,) = server.state.store.devices.values()
        assert tally.calls == 1
        assert found is not None
        assert (found.id, found.mac, found.workspace_id) == (
            made.wire["id"],
            "00AABBCCDD01",
            WORKSPACE,
        )

    async def test_server_errors_retried_then_raised(self, start_emulator: Any) -> None:
        """A GET answered 5xx every time is tried max_attempts times, then raised."""
        server = await start_emulator(fault_rate=1.0)

        async with ApiClient(settings_for(server)) as api:
            with api.tally() as tally, pytest.raises(ServerError):
                await api.get_workspace(WORKSPACE)

        assert tally.calls == QUICK_RETRY.max_attempts
        assert server.stats()["server_errors_injected"] == QUICK_RETRY.max_attempts


class TestRateLearning:
    async def test_a_429_pauses_the_whole_pool(self, start_emulator: Any) -> None:
        """Against a 40/s limit it was not told, every 429 pauses every worker for its
        Retry-After: once the client has heard a 429, the emulator sees no more
        requests arrive before its Retry-After ends than were already on their way
        (at most one per other worker).

        Proven from the emulator's request log and the moment the client logged each
        429, both on this process's monotonic clock, not from how fast the run went
        (``make bench``'s business). The pool is ``workers`` tasks, as the engine
        runs it, so "already on their way" has a hard bound whatever the load. The
        window opens when the client heard the 429, not when the emulator sent it:
        until then the client cannot pause, and a busy machine stretches that gap
        without bound.
        """
        limit, calls, workers = 40.0, 300, 8
        server = await start_emulator(rate_limit=limit, burst=5)
        settings = settings_for(
            server,
            concurrency=workers,
            rate=RateControl(initial_rate=20.0),
            # Enough attempts that a stalled machine's extra 429s cannot end a call:
            # how many there are is not what this test is about.
            retry=RetryPolicy(max_attempts=1000, base_delay=0.05),
        )
        workspaces = [w["id"] for w in ORG["workspaces"]]
        todo = iter(range(calls))

        def heard_at(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
            event["heard"] = time.monotonic()
            return event

        async def worker(api: ApiClient) -> None:
            for index in todo:
                await api.get_workspace(workspaces[index % len(workspaces)])

        with capture_logs(processors=[heard_at]) as events:
            async with ApiClient(settings) as api:
                async with anyio.create_task_group() as group:
                    for _ in range(workers):
                        group.start_soon(worker, api)
                stats = api.statistics()

        log = server.requests()
        refusals = [e for e in log if e["status"] == 429]
        heard = {
            e["tracking_id"]: e["heard"] for e in events if e["event"] == "rate_limited"
        }
        # The window runs from the moment the client heard the 429 to the end of the
        # Retry-After the emulator counts from its answer: both inside the pause.
        inside_pauses = [
            sum(
                1
                for other in log
                if heard[refused["trackingId"]]
                < other["started"]
                < refused["answered"] + refused["retryAfter"]
            )
            for refused in refusals
        ]
        assert len(log) == calls + len(refusals)
        assert {e["status"] for e in log} == {200, 429}
        assert refusals, "the limit was never reached: nothing was tested"
        assert heard.keys() == {e["trackingId"] for e in refusals}
        assert all(e["retryAfter"] >= 1 for e in refusals)
        assert max(inside_pauses) < workers
        assert stats.ceiling is None or stats.ceiling < limit * 1.1


class TestTheApisClock:
    @pytest.mark.parametrize("days", [0, 32, -1])
    async def test_the_client_reads_the_apis_clock_from_its_date(
        self, emulator: RunningEmulator, days: int
    ) -> None:
        """The emulator's clock (moved by its admin view) stamps its devices and
        its Date header; the client's server_now follows it, so the run's times
        compare with those stamps whatever this machine's clock says."""
        emulator.state.clock.advance(days * 86400)
        async with ApiClient(settings_for(emulator)) as api:
            await api.get_me()
            told = api.server_now()
            created = await api.create_device(
                mac="00:aa:bb:11:22:44", model="DMS Cisco 8851", workspace_id=WORKSPACE
            )

        expected = datetime.now(UTC) + timedelta(days=days)
        assert abs(told - expected) < timedelta(seconds=3)
        assert created.created is not None
        stamp = datetime.fromisoformat(created.created)
        assert abs(stamp - told) < timedelta(seconds=3)
