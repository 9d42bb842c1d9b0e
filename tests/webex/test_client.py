"""
ApiClient at the HTTP seam: request shapes, error mapping, retries, pagination.

The client's ``HttpPool`` is swapped for ``fake_http.FakeHttp`` (canned answers by
method and URL); ``tests/webex/test_http.py`` tests the pool itself on a socket.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from fake_http import FakeHttp
from structlog.testing import capture_logs
from yarl import URL

from provisioner.errors import (
    ApiError,
    ApiTimeoutError,
    AuthError,
    ConfigError,
    ConnectError,
    ForbiddenError,
    InvalidRequestError,
    MacInUseError,
    NetworkError,
    NotFoundError,
    OutcomeUnknownError,
    RateLimitedError,
    ServerError,
)
from provisioner.models import TagMode
from provisioner.settings import RateControl, RetryPolicy, Settings
from provisioner.webex.client import ApiClient, ClientStatistics, new_tracking_id
from provisioner.webex.http import AnswerTimeout, ConnectFailed, ConnectionDropped
from provisioner.webex.retry import FIRST_CALL_ATTEMPTS

BASE = "https://api.example.test/v1"
TOKEN = "secret-token-abc123"
DEVICE = {
    "id": "DEV1",
    "mac": "00AABB112233",
    "product": "Cisco 8851",
    "type": "phone",
    "displayName": "Lobby",
    "workspaceId": "WS1",
    "orgId": "ORG1",
    "tags": ["a"],
    "connectionStatus": "activating",
    "created": "2026-05-10T09:15:02.417Z",
}
TRACKING = re.compile(
    r"PROVISIONER_[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}"
)
FAST_RETRY = RetryPolicy(
    max_attempts=4, base_delay=0.0, max_delay=0.0, retry_after_cap=0.0
)


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "token": TOKEN,
        "base_url": BASE,
        "retry": FAST_RETRY,
        "rate": RateControl(initial_rate=10_000.0),
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(name="mock")
def _mock(monkeypatch: pytest.MonkeyPatch) -> FakeHttp:
    """
    Every ApiClient made while the test runs sends through one FakeHttp.
    """
    fake = FakeHttp()
    monkeypatch.setattr("provisioner.webex.client.HttpPool", lambda *_, **__: fake)
    return fake


@pytest.fixture(name="api")
async def _api(mock: FakeHttp) -> AsyncIterator[ApiClient]:
    # Made after ``mock``: a client made before it would have a real pool.
    async with ApiClient(make_settings()) as client:
        yield client


def sent(mock: Any, method: str, url: str, index: int = 0) -> Any:
    """Return the recorded keyword arguments of one request."""
    return mock.requests[(method, URL(url))][index].kwargs


def error_body(message: str, code: int | None = None) -> dict[str, Any]:
    detail: dict[str, Any] = {"description": message}
    if code is not None:
        detail["errorCode"] = code
    return {"message": message, "errors": [detail], "trackingId": "ROUTER_1"}


class TestRequestShape:
    async def test_create_sends_exact_request(self, api: ApiClient, mock: Any) -> None:
        """A create by MAC posts the normalised MAC, model and owner with auth and a tracking id."""
        mock.post(f"{BASE}/devices?orgId=ORG9", payload=DEVICE)

        device = await api.create_device(
            mac="00:aa:bb:11:22:33",
            model="DMS Cisco 8851",
            workspace_id="WS1",
            org_id="ORG9",
        )

        kwargs = sent(mock, "POST", f"{BASE}/devices?orgId=ORG9")
        assert json.loads(kwargs["data"]) == {
            "mac": "00AABB112233",
            "model": "DMS Cisco 8851",
            "workspaceId": "WS1",
        }
        assert f"Bearer {TOKEN}" == kwargs["headers"]["Authorization"]
        assert kwargs["headers"]["Content-Type"] == "application/json"
        assert TRACKING.fullmatch(kwargs["headers"]["TrackingID"])
        assert device.id == "DEV1"
        assert device.tags == ("a",)
        assert device.owner_id == "WS1"

    def test_tracking_ids_are_distinct_version_4_uuids(self) -> None:
        """Each request's TrackingID is PROVISIONER_ and a fresh random (v4) UUID."""
        ids = [new_tracking_id() for _ in range(2000)]

        assert len(set(ids)) == len(ids)
        for text in ids:
            assert TRACKING.fullmatch(text)
            parsed = uuid.UUID(text.removeprefix("PROVISIONER_"))
            assert (parsed.version, parsed.variant) == (4, uuid.RFC_4122)

    async def test_org_id_from_settings(self, mock: Any) -> None:
        """Settings.org_id is sent as the orgId query parameter when the call names none."""
        mock.get(f"{BASE}/devices/DEV1?orgId=ORGS", payload=DEVICE)

        async with ApiClient(make_settings(org_id="ORGS")) as api:
            device = await api.get_device("DEV1")

        assert device.id == "DEV1"

    async def test_every_attempt_has_a_fresh_tracking_id(
        self, api: ApiClient, mock: Any
    ) -> None:
        """Each attempt, retries included, carries its own unique TrackingID."""
        url = f"{BASE}/devices/DEV1"
        mock.get(url, status=503)
        mock.get(url, payload=DEVICE)

        await api.get_device("DEV1")

        ids = {sent(mock, "GET", url, i)["headers"]["TrackingID"] for i in range(2)}
        assert len(ids) == 2

    async def test_patch_tags_is_single_object_json_patch(
        self, api: ApiClient, mock: Any
    ) -> None:
        """Tags go as one JSON Patch object with the json-patch content type."""
        url = f"{BASE}/devices/DEV1"
        mock.patch(url, payload={**DEVICE, "tags": ["x", "y"]})

        device = await api.modify_tags("DEV1", mode=TagMode.REPLACE, tags=["x", "y"])

        kwargs = sent(mock, "PATCH", url)
        assert kwargs["headers"]["Content-Type"] == "application/json-patch+json"
        assert json.loads(kwargs["data"]) == {
            "op": "replace",
            "path": "tags",
            "value": ["x", "y"],
        }
        assert device.tags == ("x", "y")

    async def test_remove_tags_sends_no_value(self, api: ApiClient, mock: Any) -> None:
        """The remove op clears all tags and carries no value."""
        url = f"{BASE}/devices/DEV1"
        mock.patch(url, payload={**DEVICE, "tags": []})

        await api.modify_tags("DEV1", mode="remove", tags=[])

        assert json.loads(sent(mock, "PATCH", url)["data"]) == {
            "op": "remove",
            "path": "tags",
        }

    async def test_activation_code(self, api: ApiClient, mock: Any) -> None:
        """An activation code request names the owner and model; the code stays out of repr."""
        url = f"{BASE}/devices/activationCode"
        mock.post(
            url,
            payload={
                "code": "5414011256173816",
                "expiryTime": "2026-06-09T10:00:00.000Z",
            },
        )

        code = await api.create_activation_code(model="DMS Cisco 8851", person_id="P1")

        assert json.loads(sent(mock, "POST", url)["data"]) == {
            "personId": "P1",
            "model": "DMS Cisco 8851",
        }
        assert code.code == "5414011256173816"
        assert "5414011256173816" not in repr(code)

    async def test_delete(self, api: ApiClient, mock: Any) -> None:
        """A delete answered 204 returns quietly."""
        url = f"{BASE}/devices/DEV1"
        mock.delete(url, status=204)

        await api.delete_device("DEV1")

        assert len(mock.requests[("DELETE", URL(url))]) == 1

    async def test_supported_devices_are_snake_case(
        self, api: ApiClient, mock: Any
    ) -> None:
        """The supportedDevices answer becomes SupportedModel values."""
        mock.get(
            f"{BASE}/telephony/config/supportedDevices",
            payload={
                "devices": [
                    {
                        "model": "DMS Cisco 8851",
                        "displayName": "Cisco 8851",
                        "type": "MPP",
                        "manufacturer": "CISCO",
                        "managedBy": "CISCO",
                        "supportedFor": ["PEOPLE", "PLACE"],
                        "onboardingMethod": ["MAC_ADDRESS", "ACTIVATION_CODE"],
                    }
                ]
            },
        )

        (model,) = await api.supported_devices()

        assert model.display_name == "Cisco 8851"
        assert model.onboarding_methods == ("MAC_ADDRESS", "ACTIVATION_CODE")
        assert model.supported_for == ("PEOPLE", "PLACE")

    async def test_validate_macs(self, api: ApiClient, mock: Any) -> None:
        """validateMacs posts normalised MACs and reads each MAC's state."""
        url = f"{BASE}/telephony/config/devices/actions/validateMacs/invoke"
        mock.post(
            url,
            payload={
                "status": "ERRORS",
                "macStatus": [
                    {
                        "mac": "00AABB112233",
                        "state": "UNAVAILABLE",
                        "errorCode": 5675,
                        "message": "[Error 5675] MAC Address is in use.",
                    },
                ],
            },
        )

        (state,) = await api.validate_macs(["00-aa-bb-11-22-33"])

        assert json.loads(sent(mock, "POST", url)["data"]) == {"macs": ["00AABB112233"]}
        assert (state.state, state.error_code) == ("UNAVAILABLE", 5675)

    async def test_workspace_and_person(self, api: ApiClient, mock: Any) -> None:
        """Workspaces and people become Owner values with snake_case extras; a person's
        first email is extra["email"]."""
        mock.get(
            f"{BASE}/workspaces/WS1",
            payload={"id": "WS1", "displayName": "Lobby", "locationId": "L1"},
        )
        mock.get(
            f"{BASE}/people/P1",
            payload={"id": "P1", "displayName": "Ann", "emails": ["ann@x.example"]},
        )

        workspace = await api.get_workspace("WS1")
        person = await api.get_person("P1")

        assert (
            workspace.display_name,
            workspace.extra,
        ) == ("Lobby", {"location_id": "L1"})
        assert (person.display_name, person.extra) == (
            "Ann",
            {"email": "ann@x.example"},
        )

    async def test_colon_mac_from_api_is_normalised(
        self, api: ApiClient, mock: Any
    ) -> None:
        """A roomdesk's colon-separated MAC is read as 12 upper-case hex digits."""
        mock.get(f"{BASE}/devices/DEV1", payload={**DEVICE, "mac": "11:22:33:44:aa:ff"})

        device = await api.get_device("DEV1")

        assert device.mac == "11223344AAFF"

    async def test_bad_mac_is_refused_before_sending(
        self, api: ApiClient, mock: Any
    ) -> None:
        """A malformed MAC raises InvalidRequestError and sends nothing."""
        with pytest.raises(InvalidRequestError, match="not a MAC"):
            await api.create_device(mac="00AABB1122", model="m", workspace_id="WS1")

        assert mock.requests == {}


class TestTrackingAndTally:
    async def test_tally_counts_calls_and_keeps_response_tracking_id(
        self, api: ApiClient, mock: Any
    ) -> None:
        """The tally counts every attempt and keeps the response's tracking id."""
        url = f"{BASE}/devices/DEV1"
        mock.get(
            url,
            status=429,
            headers={"Retry-After": "0"},
            payload=error_body("slow down"),
        )
        mock.get(url, payload=DEVICE, headers={"trackingid": "ROUTER_X, ROUTER_X"})

        with api.tally() as tally:
            await api.get_device("DEV1")

        assert (
            tally.calls,
            tally.rate_limited,
            tally.last_tracking_id,
        ) == (2, 1, "ROUTER_X")

    async def test_tally_is_per_task_context(self, api: ApiClient, mock: Any) -> None:
        """Calls outside a tally block are not counted in it."""
        mock.get(f"{BASE}/devices/DEV1", payload=DEVICE, repeat=True)

        with api.tally() as tally:
            await api.get_device("DEV1")
        await api.get_device("DEV1")

        assert tally.calls == 1

    async def test_tallies_of_concurrent_tasks_stay_apart(
        self, api: ApiClient, mock: Any
    ) -> None:
        """Two tasks running at once each count only their own calls."""
        mock.get(f"{BASE}/devices/DEV1", payload=DEVICE, repeat=True)
        counts: dict[int, int] = {}

        async def row(number: int, calls: int) -> None:
            with api.tally() as tally:
                for _ in range(calls):
                    await api.get_device("DEV1")
                    await anyio.lowlevel.checkpoint()
            counts[number] = tally.calls

        async with anyio.create_task_group() as group:
            group.start_soon(row, 1, 3)
            group.start_soon(row, 2, 5)

        assert counts == {1: 3, 2: 5}

    async def test_body_tracking_id_on_errors(self, api: ApiClient, mock: Any) -> None:
        """Without a trackingid header, the error carries the body's trackingId."""
        mock.get(
            f"{BASE}/devices/NOPE",
            status=404,
            payload=error_body("The requested resource could not be found."),
        )

        with pytest.raises(NotFoundError) as caught:
            await api.get_device("NOPE")

        assert (
            caught.value.tracking_id,
            caught.value.status,
            caught.value.method,
        ) == ("ROUTER_1", 404, "GET")
        assert caught.value.message == "The requested resource could not be found."

    async def test_statistics_snapshot(self, api: ApiClient, mock: Any) -> None:
        """statistics() reports calls, 429s and retries as a frozen snapshot."""
        url = f"{BASE}/devices/DEV1"
        mock.get(url, status=429, headers={"Retry-After": "0"})
        mock.get(url, payload=DEVICE)

        await api.get_device("DEV1")
        stats = api.statistics()

        assert isinstance(stats, ClientStatistics)
        assert (
            stats.calls,
            stats.rate_limited,
            stats.retries,
            stats.in_flight,
        ) == (2, 1, 1, 0)
        with pytest.raises(AttributeError):
            stats.calls = 5  # type: ignore[misc]


STATUS_ERRORS = [
    (400, InvalidRequestError),
    (401, AuthError),
    (403, ForbiddenError),
    (404, NotFoundError),
    (405, InvalidRequestError),
    (409, InvalidRequestError),
    (410, InvalidRequestError),
    (415, InvalidRequestError),
    (423, RateLimitedError),
    (428, InvalidRequestError),
    (429, RateLimitedError),
    (500, ServerError),
    (502, ServerError),
    (503, ServerError),
    (504, ServerError),
]


class TestErrorMapping:
    @pytest.mark.parametrize(("status", "expected"), STATUS_ERRORS)
    async def test_every_reference_status(
        self, status: int, expected: type[ApiError], mock: Any
    ) -> None:
        """Each status of reference §6.1 maps to its error class, with the API's message."""
        mock.get(
            f"{BASE}/devices/DEV1",
            status=status,
            payload=error_body(f"said {status}"),
            headers={"Retry-After": "7"},
        )

        async with ApiClient(make_settings(retry=RetryPolicy(max_attempts=1))) as api:
            with pytest.raises(ApiError) as caught:
                await api.get_device("DEV1")

        assert expected is type(caught.value)
        assert (f"said {status}", status) == (caught.value.message, caught.value.status)
        if expected is RateLimitedError:
            assert caught.value.retry_after == 7.0  # type: ignore[attr-defined]

    @pytest.mark.parametrize("status", [400, 409])
    async def test_mac_in_use_by_error_code(
        self, status: int, api: ApiClient, mock: Any
    ) -> None:
        """A create refused with errorCode 5675 raises MacInUseError."""
        mock.post(
            f"{BASE}/devices",
            status=status,
            payload=error_body("[Error 5675] MAC Address is in use.", 5675),
        )

        with pytest.raises(MacInUseError):
            await api.create_device(mac="00AABB112233", model="m", workspace_id="WS1")

    async def test_mac_in_use_by_text(self, api: ApiClient, mock: Any) -> None:
        """A create refused with the MAC-in-use description but no code is still MacInUseError."""
        mock.post(
            f"{BASE}/devices",
            status=400,
            payload={"errors": [{"description": "MAC Address is in use."}]},
        )

        with pytest.raises(MacInUseError, match="in use"):
            await api.create_device(mac="00AABB112233", model="m", workspace_id="WS1")

    async def test_non_json_body_is_tolerated(self, mock: Any) -> None:
        """A gateway's HTML body gives a status-and-reason message, not a parse error."""
        mock.get(
            f"{BASE}/devices/DEV1",
            status=502,
            body="<html><h1>502 Bad Gateway</h1></html>",
            reason="Bad Gateway",
        )

        async with ApiClient(make_settings(retry=RetryPolicy(max_attempts=1))) as api:
            with pytest.raises(ServerError, match="502 Bad Gateway"):
                await api.get_device("DEV1")

    @pytest.mark.parametrize(
        ("raised", "expected"),
        [
            (ConnectFailed("cannot connect to h:1: refused"), ConnectError),
            (AnswerTimeout("no whole answer within 1 s"), ApiTimeoutError),
            (TimeoutError(), ApiTimeoutError),
            (ConnectionDropped("closed before a whole answer"), NetworkError),
            (ConnectionResetError(104, "reset"), NetworkError),
        ],
    )
    async def test_transport_errors(
        self, mock: Any, raised: Exception, expected: type[ApiError]
    ) -> None:
        """Connection failures map to the most specific ApiError, chained to the original."""
        mock.get(f"{BASE}/devices/DEV1", exception=raised)

        async with ApiClient(make_settings(retry=RetryPolicy(max_attempts=1))) as api:
            with pytest.raises(ApiError) as caught:
                await api.get_device("DEV1")

        assert expected is type(caught.value)
        assert caught.value.__cause__ is raised
        assert (caught.value.method, caught.value.path) == ("GET", "/v1/devices/DEV1")
        assert TRACKING.fullmatch(caught.value.tracking_id or "")


class TestRetries:
    async def test_429_waits_then_succeeds(self, mock: Any) -> None:
        """A 429 is retried after its Retry-After (capped) and the call then succeeds."""
        url = f"{BASE}/devices/DEV1"
        mock.get(url, status=429, headers={"Retry-After": "1"}, repeat=2)
        mock.get(url, payload=DEVICE)
        policy = RetryPolicy(base_delay=0.0, retry_after_cap=0.02)

        async with ApiClient(make_settings(retry=policy)) as api:
            with capture_logs() as logs:
                device = await api.get_device("DEV1")

        assert device.id == "DEV1"
        events = [entry["event"] for entry in logs]
        assert events.count("rate_limited") == 2
        assert events.count("api_call_finished") == 3
        delays = [e["delay_s"] for e in logs if e["event"] == "retry_scheduled"]
        assert delays == [0.02, 0.02]
        paused = [e["retry_after_s"] for e in logs if e["event"] == "rate_limited"]
        assert paused == [0.02, 0.02]

    async def test_transient_get_gives_up_after_max_attempts(
        self, api: ApiClient, mock: Any
    ) -> None:
        """A GET failing with 503 every time is tried max_attempts times, then raises."""
        mock.get(f"{BASE}/devices/DEV1", status=503, repeat=True)

        with api.tally() as tally, pytest.raises(ServerError):
            await api.get_device("DEV1")

        assert FAST_RETRY.max_attempts == tally.calls

    async def test_permanent_error_is_not_retried(
        self, api: ApiClient, mock: Any
    ) -> None:
        """A 400 is raised after a single call."""
        mock.get(
            f"{BASE}/devices/DEV1", status=400, payload=error_body("bad"), repeat=True
        )

        with api.tally() as tally, pytest.raises(InvalidRequestError):
            await api.get_device("DEV1")

        assert tally.calls == 1

    @pytest.mark.parametrize(
        "failure",
        [
            {"status": 500},
            {"status": 504},
            {"exception": ConnectionDropped("closed before a whole answer")},
            {"exception": TimeoutError()},
        ],
    )
    async def test_ambiguous_create_is_never_replayed(
        self, failure: dict[str, Any], api: ApiClient, mock: Any
    ) -> None:
        """A create that fails ambiguously raises OutcomeUnknownError after one call."""
        mock.post(f"{BASE}/devices", repeat=True, **failure)

        with api.tally() as tally, pytest.raises(OutcomeUnknownError) as caught:
            await api.create_device(mac="00AABB112233", model="m", workspace_id="WS1")

        assert tally.calls == 1
        assert isinstance(
            caught.value.cause, ServerError | NetworkError | ApiTimeoutError
        )

    async def test_ambiguous_activation_code_is_never_replayed(
        self, api: ApiClient, mock: Any
    ) -> None:
        """A code request that fails ambiguously is not sent again: each code makes a
        pending device, so a replay could leave a second one behind."""
        mock.post(f"{BASE}/devices/activationCode", repeat=True, status=503)

        with api.tally() as tally, pytest.raises(OutcomeUnknownError):
            await api.create_activation_code(model="m", workspace_id="WS1")

        assert tally.calls == 1

    async def test_activation_code_retried_after_429(
        self, api: ApiClient, mock: Any
    ) -> None:
        """A code request answered 429 was not processed, so it is sent again."""
        url = f"{BASE}/devices/activationCode"
        mock.post(url, status=429, headers={"Retry-After": "0"})
        mock.post(url, payload={"code": "1234567890123456", "expiryTime": "2026-12-26"})

        with api.tally() as tally:
            code = await api.create_activation_code(model="m", workspace_id="WS1")

        assert (code.code, tally.calls) == ("1234567890123456", 2)

    async def test_create_retried_after_429(self, api: ApiClient, mock: Any) -> None:
        """A create answered 429 was not processed, so it is sent again."""
        mock.post(f"{BASE}/devices", status=429, headers={"Retry-After": "0"})
        mock.post(f"{BASE}/devices", payload=DEVICE)

        with api.tally() as tally:
            device = await api.create_device(
                mac="00AABB112233", model="m", workspace_id="WS1"
            )

        assert (device.id, tally.calls) == ("DEV1", 2)

    async def test_create_retried_after_refused_connection(
        self, api: ApiClient, mock: Any
    ) -> None:
        """A create whose connection was refused never left, so it is sent again."""
        mock.post(
            f"{BASE}/devices",
            exception=ConnectFailed("cannot connect to h:1: timed out"),
        )
        mock.post(f"{BASE}/devices", payload=DEVICE)

        device = await api.create_device(
            mac="00AABB112233", model="m", workspace_id="WS1"
        )

        assert device.id == "DEV1"

    async def test_refused_connections_get_few_tries_until_the_api_answers(
        self, mock: Any
    ) -> None:
        """Before anything has answered, a refused connection means a wrong URL: a
        few quick tries only. Once the API has answered, the run's policy applies."""
        patient = RetryPolicy(max_attempts=6, base_delay=0.0, max_delay=0.0)
        url = f"{BASE}/devices/DEV1"
        async with ApiClient(make_settings(retry=patient)) as api:
            for _ in range(FIRST_CALL_ATTEMPTS):
                mock.get(
                    url, exception=ConnectFailed("cannot connect to h:1: timed out")
                )
            with api.tally() as before, pytest.raises(ConnectError):
                await api.get_device("DEV1")
            mock.get(url, payload=DEVICE)
            await api.get_device("DEV1")
            for _ in range(5):
                mock.get(
                    url, exception=ConnectFailed("cannot connect to h:1: timed out")
                )
            mock.get(url, payload=DEVICE)
            with api.tally() as after:
                await api.get_device("DEV1")

        assert (before.calls, after.calls) == (FIRST_CALL_ATTEMPTS, 6)

    async def test_ambiguous_tag_add_reads_then_replaces(
        self, api: ApiClient, mock: Any
    ) -> None:
        """A tag add that fails ambiguously is finished with a replace of the union."""
        url = f"{BASE}/devices/DEV1"
        mock.patch(url, exception=ConnectionDropped("closed before a whole answer"))
        mock.get(url, payload={**DEVICE, "tags": ["a"]})
        mock.patch(url, payload={**DEVICE, "tags": ["a", "b"]})

        device = await api.modify_tags("DEV1", mode=TagMode.ADD, tags=["b", "a"])

        second = json.loads(sent(mock, "PATCH", url, 1)["data"])
        assert second == {"op": "replace", "path": "tags", "value": ["a", "b"]}
        assert device.tags == ("a", "b")

    async def test_ambiguous_tag_add_that_landed_is_not_repeated(
        self, api: ApiClient, mock: Any
    ) -> None:
        """When the read shows the add landed, no second PATCH is sent."""
        url = f"{BASE}/devices/DEV1"
        mock.patch(url, status=502)
        mock.get(url, payload={**DEVICE, "tags": ["a", "b"]})

        device = await api.modify_tags("DEV1", mode="add", tags=["b"])

        assert len(mock.requests[("PATCH", URL(url))]) == 1
        assert device.tags == ("a", "b")

    async def test_delete_gone_after_ambiguous_retry(
        self, api: ApiClient, mock: Any
    ) -> None:
        """A delete retried after a drop that then finds the device gone counts as done."""
        url = f"{BASE}/devices/DEV1"
        mock.delete(url, exception=ConnectionDropped("closed before a whole answer"))
        mock.delete(url, status=404, payload=error_body("gone"))

        await api.delete_device("DEV1")

        assert len(mock.requests[("DELETE", URL(url))]) == 2

    async def test_delete_missing_at_first_raises(
        self, api: ApiClient, mock: Any
    ) -> None:
        """A first delete answered 404 raises NotFoundError."""
        mock.delete(f"{BASE}/devices/DEV1", status=404, payload=error_body("gone"))

        with pytest.raises(NotFoundError):
            await api.delete_device("DEV1")


class TestPagination:
    async def test_follows_link_next_verbatim(self, mock: Any) -> None:
        """The next page is fetched from the Link URL as given, without re-sent params."""
        second = f"{BASE}/devices?workspaceId=WS1&tag=a%2Cb&start=1&max=1"
        mock.get(
            f"{BASE}/devices?workspaceId=WS1&tag=a,b&max=1&orgId=ORG1",
            payload={"items": [DEVICE]},
            headers={"Link": f'<{second}>; rel="next"'},
        )
        mock.get(second, payload={"items": [{**DEVICE, "id": "DEV2"}]})

        async with ApiClient(make_settings(org_id="ORGS")) as api:
            pages = api.list_devices(
                workspace_id="WS1", tag="a,b", page_size=1, org_id="ORG1"
            )
            ids = [d.id async for d in pages]

        assert ids == ["DEV1", "DEV2"]
        (follow,) = [key for key in mock.requests if "start" in str(key[1])]
        # Verbatim: the API's own encoding (%2C), and no orgId added to it.
        assert str(sent(mock, "GET", str(follow[1]))["url"]) == second

    async def test_device_pages_yields_one_list_per_page(self, mock: Any) -> None:
        """device_pages hands over each page as it came, with serial, software and ip."""
        second = f"{BASE}/devices?start=2&max=2"
        device = {
            **DEVICE,
            "serial": "FCH1",
            "software": "sip88xx.14",
            "ip": "10.0.0.9",
        }
        mock.get(
            f"{BASE}/devices?max=2",
            payload={"items": [device, {**DEVICE, "id": "DEV2"}]},
            headers={"Link": f'<{second}>; rel="next"'},
        )
        mock.get(second, payload={"items": [{**DEVICE, "id": "DEV3"}]})

        async with ApiClient(make_settings()) as api:
            pages = [page async for page in api.device_pages(page_size=2)]

        assert [[d.id for d in page] for page in pages] == [["DEV1", "DEV2"], ["DEV3"]]
        first = pages[0][0]
        assert (first.serial, first.software, first.ip) == (
            "FCH1",
            "sip88xx.14",
            "10.0.0.9",
        )

    async def test_next_link_to_another_host_is_refused(
        self, api: ApiClient, mock: Any
    ) -> None:
        """A next link to a foreign host raises instead of sending the token there."""
        mock.get(
            f"{BASE}/devices",
            payload={"items": [DEVICE]},
            headers={"Link": '<https://evil.test/v1/devices?start=1>; rel="next"'},
        )

        with pytest.raises(InvalidRequestError, match="another host"):
            [d async for d in api.list_devices()]

    async def test_empty_body_create_is_resolved_by_mac(
        self, api: ApiClient, mock: Any
    ) -> None:
        """A 98xx create answered 200 with no body is found by listing devices by MAC."""
        mock.post(f"{BASE}/devices", status=200, body=b"")
        mock.get(
            f"{BASE}/devices?mac=00AABB112233",
            payload={"items": [{**DEVICE, "mac": "00:aa:bb:11:22:33"}]},
        )

        device = await api.create_device(
            mac="00AABB112233", model="Cisco 9861", person_id="P1"
        )

        assert (device.id, device.mac) == ("DEV1", "00AABB112233")

    async def test_empty_body_create_not_found_is_outcome_unknown(
        self, api: ApiClient, mock: Any
    ) -> None:
        """An empty-body create whose device cannot be found is OutcomeUnknownError."""
        mock.post(f"{BASE}/devices", status=204)
        mock.get(f"{BASE}/devices?mac=00AABB112233", payload={"items": []})

        with pytest.raises(OutcomeUnknownError):
            await api.create_device(
                mac="00AABB112233", model="Cisco 9861", person_id="P1"
            )


class TestSecrets:
    async def test_token_never_in_repr_logs_or_errors(
        self, api: ApiClient, mock: Any
    ) -> None:
        """The token stays out of reprs, log events and error messages, even when echoed."""
        mock.get(
            f"{BASE}/devices/DEV1", status=401, payload=error_body(f"bad token {TOKEN}")
        )

        with capture_logs() as logs, pytest.raises(AuthError) as caught:
            await api.get_device("DEV1")

        assert TOKEN not in repr(api)
        assert TOKEN not in repr(make_settings())
        assert TOKEN not in str(caught.value) + repr(caught.value)
        assert TOKEN not in repr(logs)

    async def test_password_echoed_by_a_refused_create_is_cut(
        self, api: ApiClient, mock: Any
    ) -> None:
        """A 4xx quoting the create's body (password and all) makes a clean error."""
        password = 'Sip"Pass-5f3a'  # a quote: JSON escapes it in the echo
        echo = json.dumps({"mac": "00AABB112233", "password": password})
        mock.post(
            f"{BASE}/devices",
            status=400,
            payload=error_body(f"Invalid workspaceId in request {echo}"),
        )

        with pytest.raises(InvalidRequestError) as caught:
            await api.create_device(
                mac="00AABB112233",
                model="Polycom VVX 411",
                workspace_id="WS-GONE",
                password=password,
            )

        shown = caught.value.message + str(caught.value) + repr(caught.value)
        assert json.dumps(password)[1:-1] not in shown
        assert "Sip" not in shown
        assert "Invalid workspaceId in request" in shown

    @pytest.mark.parametrize("token", ["", "abc\ndef", " padded"])
    def test_unusable_token_is_refused_without_echo(self, token: str) -> None:
        """A token no header can carry is refused with a message that does not quote it."""
        with pytest.raises(ConfigError) as caught:
            ApiClient(make_settings(token=token))

        assert "abc" not in str(caught.value)

    def test_plain_http_only_to_loopback(self) -> None:
        """Plain http is refused for a non-loopback host and accepted for 127.0.0.1."""
        with pytest.raises(ConfigError, match="https"):
            ApiClient(make_settings(base_url="http://api.example.test/v1"))

        assert "127.0.0.1" in repr(
            ApiClient(make_settings(base_url="http://127.0.0.1:8080/v1"))
        )
