"""
The emulator's behaviour: auth, error body, tracking ids, routes and device rules.
"""

from __future__ import annotations

import ast
import json
import re
import sys
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import provisioner.emulator
from provisioner.emulator import (
    ALL_SCOPES,
    DEFAULT_TOKEN,
    STATE_KEY,
    EmulatorConfig,
    RunningEmulator,
    create_app,
    parse_token,
)
from provisioner.emulator.main import build_parser, config_from_args

EMULATOR_DIR = Path(provisioner.emulator.__file__).parent
ORG = json.loads((EMULATOR_DIR / "data" / "org.json").read_text())
WORKSPACE = ORG["workspaces"][0]["id"]
WORKSPACE_2 = ORG["workspaces"][1]["id"]
PERSON = ORG["people"][0]["id"]
MAC = "00AABB112233"


@pytest.fixture(name="http")
async def _http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def auth(token: str = DEFAULT_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def call(
    http: aiohttp.ClientSession,
    server: RunningEmulator,
    method: str,
    path: str,
    *,
    token: str | None = DEFAULT_TOKEN,
    **kwargs: Any,
) -> tuple[int, Any, aiohttp.ClientResponse]:
    """Send one request and return status, decoded body (or None) and response."""
    headers = dict(kwargs.pop("headers", {}))
    if token is not None:
        headers.update(auth(token))
    async with http.request(
        method, server.base_url + path, headers=headers, **kwargs
    ) as response:
        raw = await response.read()
        body = json.loads(raw) if raw else None
        return response.status, body, response


async def create(
    http: aiohttp.ClientSession,
    server: RunningEmulator,
    mac: str = MAC,
    model: str = "DMS Cisco 8851",
    **owner: str,
) -> tuple[int, Any]:
    payload = {"mac": mac, "model": model, **(owner or {"workspaceId": WORKSPACE})}
    status, body, _ = await call(http, server, "POST", "/devices", json=payload)
    return status, body


class TestIndependence:
    def test_emulator_imports_only_aiohttp_and_stdlib(self) -> None:
        """No emulator module imports the rest of provisioner or a third-party lib."""
        allowed_third_party = {"aiohttp", "multidict", "yarl"}
        offenders = []
        for path in EMULATOR_DIR.glob("*.py"):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                names: list[str] = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                for name in names:
                    top = name.split(".")[0]
                    if name.startswith("provisioner.emulator") or name == "__future__":
                        continue
                    if top == "provisioner" or (
                        top not in allowed_third_party
                        and top not in sys.stdlib_module_names
                    ):
                        offenders.append(f"{path.name}: {name}")

        assert offenders == []


class TestConfig:
    def test_token_without_scopes_gets_all(self) -> None:
        """A bare token carries every scope; a listed one only its own."""
        assert parse_token("abc") == ("abc", ALL_SCOPES)
        assert parse_token("abc:x, y") == ("abc", frozenset({"x", "y"}))

    def test_bad_rates_are_refused(self) -> None:
        """A fault share outside [0, 1] is a configuration error."""
        with pytest.raises(ValueError, match="drop_rate"):
            EmulatorConfig(drop_rate=1.5)

    def test_flags_build_the_config(self) -> None:
        """Command-line flags map onto EmulatorConfig, tokens with their scopes."""
        args = build_parser().parse_args(
            [
                "--rate-limit",
                "5",
                "--burst",
                "2",
                "--drop-rate",
                "0.1",
                "--token",
                "ro:spark-admin:devices_read",
                "--token",
                "all",
            ]
        )

        config = config_from_args(args)

        assert (config.rate_limit, config.burst, config.drop_rate) == (5.0, 2, 0.1)
        assert config.tokens == {
            "ro": frozenset({"spark-admin:devices_read"}),
            "all": ALL_SCOPES,
        }

    def test_default_token_has_every_scope(self) -> None:
        """Without --token the emulator accepts DEFAULT_TOKEN with all scopes."""
        config = config_from_args(build_parser().parse_args([]))

        assert config.tokens == {DEFAULT_TOKEN: ALL_SCOPES}

    def test_state_is_reachable_from_the_app(self) -> None:
        """Tests can reach the state object with app[STATE_KEY]."""
        app = create_app(EmulatorConfig(seed=3))

        assert app[STATE_KEY].config.seed == 3


class TestAuth:
    async def test_missing_token_is_401(
        self, http: aiohttp.ClientSession, emulator: RunningEmulator
    ) -> None:
        """No Authorization header gives 401 with the error body."""
        status, body, _ = await call(http, emulator, "GET", "/devices", token=None)

        assert status == 401
        assert set(body) == {"message", "errors", "trackingId"}
        assert body["errors"][0]["description"]

    async def test_unknown_token_is_401(
        self, http: aiohttp.ClientSession, emulator: RunningEmulator
    ) -> None:
        """A bearer token the emulator does not know gives 401."""
        status, _, _ = await call(http, emulator, "GET", "/devices", token="nope")

        assert status == 401

    async def test_missing_scope_is_403(
        self, http: aiohttp.ClientSession, start_emulator: Any
    ) -> None:
        """A read-only token may list devices but not create them."""
        server = await start_emulator(
            tokens={"ro": frozenset({"spark-admin:devices_read"})}
        )

        listed, _, _ = await call(http, server, "GET", "/devices", token="ro")
        created, body, _ = await call(
            http,
            server,
            "POST",
            "/devices",
            token="ro",
            json={"mac": MAC, "model": "Cisco 8851", "workspaceId": WORKSPACE},
        )

        assert (listed, created) == (200, 403)
        assert "spark-admin:devices_write" in body["message"]
        assert server.state.store.devices == {}

    async def test_activation_code_for_person_needs_one_time_password_scope(
        self, http: aiohttp.ClientSession, start_emulator: Any
    ) -> None:
        """placeonetimepassword_create covers workspaces, not persons."""
        scopes = frozenset(
            {"spark-admin:devices_write", "identity:placeonetimepassword_create"}
        )
        server = await start_emulator(tokens={"t": scopes})
        path = "/devices/activationCode"

        ws, _, _ = await call(
            http, server, "POST", path, token="t", json={"workspaceId": WORKSPACE}
        )
        person, _, _ = await call(
            http, server, "POST", path, token="t", json={"personId": PERSON}
        )

        assert (ws, person) == (200, 403)


class TestGateway:
    async def test_tracking_id_is_echoed(
        self, http: aiohttp.ClientSession, emulator: RunningEmulator
    ) -> None:
        """A client TrackingID comes back in the trackingid header and error body."""
        status, body, response = await call(
            http, emulator, "GET", "/devices/nope", headers={"TrackingID": "SIMPLE_1"}
        )

        assert status == 404
        assert response.headers["trackingid"] == "SIMPLE_1"
        assert body["trackingId"] == "SIMPLE_1"

    async def test_tracking_id_is_generated(
        self, http: aiohttp.ClientSession, emulator: RunningEmulator
    ) -> None:
        """Without a TrackingID the server makes one: ROUTER_<uuid>."""
        _, _, response = await call(http, emulator, "GET", "/devices")

        assert re.fullmatch(r"ROUTER_[0-9a-f-]{36}", response.headers["trackingid"])

    async def test_unknown_method_is_405(
        self, http: aiohttp.ClientSession, emulator: RunningEmulator
    ) -> None:
        """A known path with an unknown method gives 405 in the error-body shape."""
        status, body, _ = await call(http, emulator, "PUT", "/devices")

        assert status == 405
        assert body["trackingId"]

    async def test_unknown_path_is_404(
        self, http: aiohttp.ClientSession, emulator: RunningEmulator
    ) -> None:
        """An unknown path gives 404 in the error-body shape."""
        status, body, _ = await call(http, emulator, "GET", "/nowhere")

        assert status == 404
        assert body["message"]


class TestCreateByMac:
    async def test_create_returns_the_device(
        self, http: aiohttp.ClientSession, emulator: RunningEmulator
    ) -> None:
        """A phone created by MAC has the upper-case MAC, the display name as product."""
        status, body = await create(
            http, emulator, mac="00:aa:bb:11:22:33", model="Cisco 8851"
        )

        assert status == 200
        assert (body["mac"], body["product"], body["type"]) == (
            MAC,
            "Cisco 8851",
            "phone",
        )
        assert body["workspaceId"] == WORKSPACE
        assert body["orgId"] == ORG["orgId"]

    async def test_mac_in_use_is_400_with_5675(
        self, http: aiohttp.ClientSession, emulator: RunningEmulator
    ) -> None:
        """A second create with the same MAC, in any notation, is refused with 5675."""
        await create(http, emulator)
        status, body = await create(http, emulator, mac="00-aa-bb-11-22-33")

        assert status == 400
        assert body["errors"][0]["description"] == "[Error 5675] MAC Address is in use."
        assert body["errors"][0]["errorCode"] == 5675
        assert len(emulator.state.store.devices) == 1

    async def test_mac_in_use_status_is_configurable(
        self, http: aiohttp.ClientSession, start_emulator: Any
    ) -> None:
        """mac_in_use_status=409 answers a duplicate MAC with 409."""
        server = await start_emulator(mac_in_use_status=409)
        await create(http, server)

        status, _ = await create(http, server)

        assert status == 409

    @pytest.mark.parametrize(
        ("payload", "expected"),
        [
            ({"model": "Cisco 8851", "workspaceId": WORKSPACE}, 400),
            ({"mac": MAC, "workspaceId": WORKSPACE}, 400),
            ({"mac": MAC, "model": "Cisco 8851"}, 400),
            (
                {
                    "mac": MAC,
                    "model": "Cisco 8851",
                    "workspaceId": WORKSPACE,
                    "personId": PERSON,
                },
                400,
            ),
            ({"mac": "00AABB11", "model": "Cisco 8851", "workspaceId": WORKSPACE}, 400),
            ({"mac": MAC, "model": "Nokia 3310", "workspaceId": WORKSPACE}, 400),
            ({"mac": MAC, "model": "Cisco 840", "workspaceId": WORKSPACE}, 400),
            ({"mac": MAC, "model": "Cisco 8851", "workspaceId": "missing"}, 404),
            ({"mac": MAC, "model": "Cisco 8851", "personId": "missing"}, 404),
        ],
        ids=[
            "no-mac",
            "no-model",
            "no-owner",
            "two-owners",
            "short-mac",
            "unknown-model",
            "people-only-model",
            "unknown-workspace",
            "unknown-person",
        ],
    )
    async def test_invalid_create_is_refused_without_state_change(
        self,
        http: aiohttp.ClientSession,
        emulator: RunningEmulator,
        payload: dict[str, str],
        expected: int,
    ) -> None:
        """Every create rule refuses with the right status and creates nothing."""
        status, body, _ = await call(http, emulator, "POST", "/devices", json=payload)

        assert status == expected
        assert body["message"]
        assert emulator.state.store.devices == {}

    async def test_api_model_string_is_accepted(
        self, http: aiohttp.ClientSession, emulator: RunningEmulator
    ) -> None:
        """The API model string works as well as the display name."""
        status, body = await create(
            http, emulator, model="DMS Cisco 8865", personId=PERSON
        )

        assert status == 200
        assert body["product"] == "Cisco 8865"
        assert body["personId"] == PERSON

    async def test_desk_phone_create_has_an_empty_body(
        self, http: aiohttp.ClientSession, emulator: RunningEmulator
    ) -> None:
        """A Cisco 98xx create answers 200 with no body, yet the device exists."""
        status, body = await create(http, emulator, model="Cisco 9861")
        found, listed, _ = await call(http, emulator, "GET", f"/devices?mac={MAC}")

        assert (status, body) == (200, None)
        assert found == 200
        assert [d["product"] for d in listed["items"]] == ["Cisco 9861"]

    async def test_password_is_never_returned_or_in_repr(
        self, http: aiohttp.ClientSession, emulator: RunningEmulator
    ) -> None:
        """A third-party device's password is stored but not echoed or shown in repr."""
        payload = {
            "mac": MAC,
            "model": "Polycom EE400",
            "workspaceId": WORKSPACE,
            "password": "S3cret-pass!",
        }
        _, body, _ = await call(http, emulator, "POST", "/devices", json=payload)
        record = emulator.state.store.devices[body["id"]]

        assert "S3cret-pass!" not in json.dumps(body)
        assert "S3cret-pass!" not in repr(record)
        assert record.password == "S3cret-pass!"


class TestReadAndDelete:
    async def test_get_and_delete(
        self, http: aiohttp.ClientSession, emulator: RunningEmulator
    ) -> None:
        """GET by id returns the device; DELETE answers 204 once, then 404."""
        _, device = await create(http, emulator)
        path = f"/devices/{device['id']}"

        got, body, _ = await call(http, emulator, "GET", path)
        first, empty, _ = await call(http, emulator, "DELETE", path)
        second, _, _ = await call(http, emulator, "DELETE", path)
        after, _, _ = await call(http, emulator, "GET", path)

        assert (got, body["id"]) == (200, device["id"])
        assert (first, empty, second, after) == (204, None, 404, 404)
        assert emulator.state.store.by_mac == {}

    async def test_deleted_mac_can_be_registered_again(
        self, http: aiohttp.ClientSession, emulator: RunningEmulator
    ) -> None:
        """Deleting a device frees its MAC."""
        _, device = await create(http, emulator)
        await call(http, emulator, "DELETE", f"/devices/{device['id']}")

        status, _ = await create(http, emulator)

        assert status == 200


class TestListFilters:
    @pytest.fixture(name="seeded")
    async def _seeded(
        self, http: aiohttp.ClientSession, emulator: RunningEmulator
    ) -> RunningEmulator:
        """Three phones: two in workspace 1 (one tagged a+b), one for a person."""
        _, first = await create(http, emulator, mac="000000000001")
        await create(http, emulator, mac="000000000002")
        await create(http, emulator, mac="000000000003", personId=PERSON)
        await call(
            http,
            emulator,
            "PATCH",
            f"/devices/{first['id']}",
            data=json.dumps({"op": "add", "path": "tags", "value": ["a", "b"]}),
            headers={"Content-Type": "application/json-patch+json"},
        )
        return emulator

    async def macs(
        self, http: aiohttp.ClientSession, server: RunningEmulator, query: str
    ) -> list[str]:
        status, body, _ = await call(http, server, "GET", f"/devices?{query}")
        assert status == 200
        return [d["mac"] for d in body["items"]]

    @pytest.mark.parametrize(
        ("query", "expected"),
        [
            ("mac=00:00:00:00:00:02", ["000000000002"]),
            ("mac=00-00-00-00-00-0a", []),
            (f"workspaceId={WORKSPACE}", ["000000000001", "000000000002"]),
            (f"personId={PERSON}", ["000000000003"]),
            ("tag=a,b", ["000000000001"]),
            ("tag=a&tag=b", ["000000000001"]),
            ("tag=a&tag=c", []),
            ("type=phone", ["000000000001", "000000000002", "000000000003"]),
            ("type=roomdesk", []),
            ("connectionStatus=disconnected&personId=" + PERSON, ["000000000003"]),
            ("displayName=avery", ["000000000003"]),
        ],
    )
    async def test_filters(
        self,
        http: aiohttp.ClientSession,
        seeded: RunningEmulator,
        query: str,
        expected: list[str],
    ) -> None:
        """Each List filter selects exactly the matching devices (tags AND)."""
        assert await self.macs(http, seeded, query) == expected

    async def test_pagination_follows_link_with_filters(
        self, http: aiohttp.ClientSession, seeded: RunningEmulator
    ) -> None:
        """Link rel="next" carries start, max and the filters, and ends on the last page."""
        url = f"{seeded.base_url}/devices?type=phone&max=2"
        pages = []
        while url:
            async with http.get(url, headers=auth()) as response:
                pages.append([d["mac"] for d in (await response.json())["items"]])
                link = response.headers.get("Link", "")
            match = re.fullmatch(r'<([^>]+)>; rel="next"', link)
            url = match.group(1) if match else ""
            if url:
                assert "type=phone" in url

        assert pages == [["000000000001", "000000000002"], ["000000000003"]]

    async def test_bad_paging_is_400(
        self, http: aiohttp.ClientSession, emulator: RunningEmulator
    ) -> None:
        """A non-numeric max is a 400, not a crash."""
        status, _, _ = await call(http, emulator, "GET", "/devices?max=lots")

        assert status == 400

    async def test_default_page_size_is_configurable(
        self, http: aiohttp.ClientSession, start_emulator: Any
    ) -> None:
        """page_size sets the page length when max is absent."""
        server = await start_emulator(page_size=1)
        await create(http, server, mac="000000000001")
        await create(http, server, mac="000000000002")

        _, body, response = await call(http, server, "GET", "/devices")

        assert len(body["items"]) == 1
        assert "start=1" in response.headers["Link"]


class TestTags:
    async def patch(
        self,
        http: aiohttp.ClientSession,
        server: RunningEmulator,
        device_id: str,
        body: Any,
        content_type: str = "application/json-patch+json",
    ) -> tuple[int, Any]:
        status, answer, _ = await call(
            http,
            server,
            "PATCH",
            f"/devices/{device_id}",
            data=json.dumps(body),
            headers={"Content-Type": content_type},
        )
        return status, answer

    async def test_add_replace_remove(
        self, http: aiohttp.ClientSession, emulator: RunningEmulator
    ) -> None:
        """add appends, replace sets, remove clears; an array of one op works too."""
        _, device = await create(http, emulator)
        device_id = device["id"]

        _, added = await self.patch(
            http,
            emulator,
            device_id,
            {"op": "add", "path": "tags", "value": ["x", "y"]},
        )
        _, again = await self.patch(
            http,
            emulator,
            device_id,
            [{"op": "add", "path": "tags", "value": ["y", "z"]}],
        )
        _, replaced = await self.patch(
            http, emulator, device_id, {"op": "replace", "path": "tags", "value": ["q"]}
        )
        _, removed = await self.patch(
            http, emulator, device_id, {"op": "remove", "path": "tags"}
        )

        assert added["tags"] == ["x", "y"]
        assert again["tags"] == ["x", "y", "z"]
        assert replaced["tags"] == ["q"]
        assert removed["tags"] == []

    async def test_other_content_type_is_415(
        self, http: aiohttp.ClientSession, emulator: RunningEmulator
    ) -> None:
        """PATCH with application/json is refused with 415 and changes nothing."""
        _, device = await create(http, emulator)

        status, _ = await self.patch(
            http,
            emulator,
            device["id"],
            {"op": "add", "path": "tags", "value": ["x"]},
            "application/json",
        )

        assert status == 415
        assert emulator.state.store.devices[device["id"]].wire["tags"] == []

    @pytest.mark.parametrize(
        "body",
        [
            {"op": "add", "path": "displayName", "value": ["x"]},
            {"op": "move", "path": "tags", "value": ["x"]},
            {"op": "add", "path": "tags", "value": "x"},
            [{"op": "add", "path": "tags", "value": ["x"]}] * 2,
        ],
        ids=["other-path", "bad-op", "value-not-list", "two-ops"],
    )
    async def test_bad_patch_is_400(
        self, http: aiohttp.ClientSession, emulator: RunningEmulator, body: Any
    ) -> None:
        """Only one add/remove/replace op on tags with a list value is accepted."""
        _, device = await create(http, emulator)

        status, _ = await self.patch(http, emulator, device["id"], body)

        assert status == 400

    async def test_patch_unknown_device_is_404(
        self, http: aiohttp.ClientSession, emulator: RunningEmulator
    ) -> None:
        """PATCH of an unknown id is 404."""
        status, _ = await self.patch(
            http, emulator, "nope", {"op": "remove", "path": "tags"}
        )

        assert status == 404


class TestActivationCodes:
    async def test_code_and_pending_device(
        self, http: aiohttp.ClientSession, emulator: RunningEmulator
    ) -> None:
        """The code has 16 digits, expires in 30 days; its device is activating, no MAC."""
        status, body, _ = await call(
            http,
            emulator,
            "POST",
            "/devices/activationCode",
            json={"workspaceId": WORKSPACE, "model": "DMS Cisco 8875"},
        )
        pending = emulator.state.store.devices[body["id"]].wire
        expiry = datetime.fromisoformat(body["expiryTime"])
        days = (expiry - emulator.state.clock.now()) / timedelta(days=1)

        assert status == 200
        assert re.fullmatch(r"\d{16}", body["code"])
        assert 29.99 < days <= 30
        assert pending["connectionStatus"] == "activating"
        assert "mac" not in pending
        assert body["code"] not in repr(emulator.state.store.devices[body["id"]])

    @pytest.mark.parametrize(
        ("payload", "expected"),
        [
            ({}, 400),
            ({"workspaceId": WORKSPACE, "personId": PERSON}, 400),
            ({"workspaceId": WORKSPACE, "model": "Cisco 191"}, 400),
            ({"workspaceId": "missing"}, 404),
        ],
        ids=["no-owner", "two-owners", "mac-only-model", "unknown-owner"],
    )
    async def test_invalid_request_is_refused(
        self,
        http: aiohttp.ClientSession,
        emulator: RunningEmulator,
        payload: dict[str, str],
        expected: int,
    ) -> None:
        """Owner and model rules apply to activation codes too."""
        status, _, _ = await call(
            http, emulator, "POST", "/devices/activationCode", json=payload
        )

        assert status == expected
        assert emulator.state.store.devices == {}


class TestTelephonyAndOrg:
    async def test_supported_devices_is_the_catalogue(
        self, http: aiohttp.ClientSession, emulator: RunningEmulator
    ) -> None:
        """supportedDevices serves the data file; type=not:MPP excludes MPP."""
        _, everything, _ = await call(
            http, emulator, "GET", "/telephony/config/supportedDevices"
        )
        _, not_mpp, _ = await call(
            http, emulator, "GET", "/telephony/config/supportedDevices?type=not:MPP"
        )
        expected = json.loads(
            (EMULATOR_DIR / "data" / "supported_devices.json").read_text()
        )

        assert everything == expected
        assert not_mpp["devices"]
        assert all(d["type"] != "MPP" for d in not_mpp["devices"])

    async def test_validate_macs_states(
        self, http: aiohttp.ClientSession, emulator: RunningEmulator
    ) -> None:
        """validateMacs reports AVAILABLE, UNAVAILABLE (5675), DUPLICATE_IN_LIST, INVALID."""
        await create(http, emulator)
        macs = ["00:AA:BB:11:22:33", "001122334455", "001122334455", "zz"]

        status, body, _ = await call(
            http,
            emulator,
            "POST",
            "/telephony/config/devices/actions/validateMacs/invoke",
            json={"macs": macs},
        )

        assert status == 200
        assert body["status"] == "ERRORS"
        assert [s["state"] for s in body["macStatus"]] == [
            "UNAVAILABLE",
            "AVAILABLE",
            "DUPLICATE_IN_LIST",
            "INVALID",
        ]
        assert body["macStatus"][0]["errorCode"] == 5675

    async def test_workspaces_and_people(
        self, http: aiohttp.ClientSession, emulator: RunningEmulator
    ) -> None:
        """Seeded workspaces list and filter by name; people and workspaces resolve by id."""
        _, listed, _ = await call(http, emulator, "GET", "/workspaces?max=500")
        _, lobby, _ = await call(
            http, emulator, "GET", "/workspaces?displayName=washington%20lobby%201"
        )
        ws, workspace, _ = await call(http, emulator, "GET", f"/workspaces/{WORKSPACE}")
        pp, person, _ = await call(http, emulator, "GET", f"/people/{PERSON}")
        missing, _, _ = await call(http, emulator, "GET", "/people/nobody")

        assert len(listed["items"]) == len(ORG["workspaces"])
        assert [w["id"] for w in lobby["items"]] == [WORKSPACE]
        assert (ws, workspace["displayName"]) == (
            200,
            ORG["workspaces"][0]["displayName"],
        )
        assert (pp, person["id"], missing) == (200, PERSON, 404)
