"""
Several orgs in one emulator: orgId, partner tokens, isolation, per-org limits.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from paths import EMULATOR_ORG

from provisioner.emulator import (
    ALL_SCOPES,
    DEFAULT_TOKEN,
    EmulatorConfig,
    OrgSpec,
    RunningEmulator,
    org_id_for,
    org_token,
    run_in_subprocess,
)
from provisioner.emulator.main import build_parser, config_from_args

ORG = json.loads(EMULATOR_ORG.read_text())
HOME = ORG["orgId"]
HOME_WORKSPACE = ORG["workspaces"][0]["id"]
ORG1, ORG2 = org_id_for("org1"), org_id_for("org2")
TOKEN1, TOKEN2 = org_token("org1"), org_token("org2")
PARTNER = "partner-token"
MAC = "00AABB112233"


@pytest.fixture(name="http")
async def _http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture(name="server")
async def _server(start_emulator: Any) -> RunningEmulator:
    """Two extra orgs; the partner token manages org1 only."""
    server: RunningEmulator = await start_emulator(
        orgs=(OrgSpec(key="org1"), OrgSpec(key="org2")),
        partners={PARTNER: ("org1",)},
    )
    return server


async def call(
    http: aiohttp.ClientSession,
    server: RunningEmulator,
    method: str,
    path: str,
    token: str = DEFAULT_TOKEN,
    **kwargs: Any,
) -> tuple[int, Any]:
    """Send one request; return the status and the decoded body (or None)."""
    headers = {"Authorization": f"Bearer {token}"}
    async with http.request(
        method, server.base_url + path, headers=headers, **kwargs
    ) as response:
        raw = await response.read()
        return response.status, (json.loads(raw) if raw else None)


async def first_workspace(
    http: aiohttp.ClientSession, server: RunningEmulator, token: str
) -> dict[str, Any]:
    _, body = await call(http, server, "GET", "/workspaces", token)
    workspace: dict[str, Any] = body["items"][0]
    return workspace


async def create(
    http: aiohttp.ClientSession,
    server: RunningEmulator,
    token: str,
    workspace_id: str,
    **params: str,
) -> tuple[int, Any]:
    body = {"mac": MAC, "model": "Cisco 8851", "workspaceId": workspace_id}
    return await call(http, server, "POST", "/devices", token, json=body, params=params)


class TestSeededOrgs:
    def test_org_ids_derive_from_the_key(self) -> None:
        """An extra org's id is fixed by its key, distinct from the seeded org's."""
        assert org_id_for("org1") == ORG1
        assert len({HOME, ORG1, ORG2}) == 3

    async def test_each_org_has_its_own_directory(
        self, http: aiohttp.ClientSession, server: RunningEmulator
    ) -> None:
        """An org's admin sees its own me, workspaces (with Lobby twice) and org."""
        _, me = await call(http, server, "GET", "/people/me", TOKEN1)
        _, lobbies = await call(
            http, server, "GET", "/workspaces?displayName=Lobby", TOKEN1
        )
        _, org = await call(http, server, "GET", f"/organizations/{ORG1}", TOKEN1)

        assert (me["orgId"], me["emails"]) == (ORG1, ["admin@org1.example.com"])
        exact = [w for w in lobbies["items"] if w["displayName"] == "Lobby"]
        assert len({w["locationId"] for w in exact}) == 2
        assert {w["orgId"] for w in lobbies["items"]} == {ORG1}
        assert (org["id"], org["displayName"]) == (ORG1, "Customer org1")

    async def test_default_config_holds_one_org(
        self, http: aiohttp.ClientSession, emulator: RunningEmulator
    ) -> None:
        """Without extra orgs there is one org; its own orgId is accepted."""
        _, orgs = await call(http, emulator, "GET", "/organizations")
        status, _ = await call(http, emulator, "GET", f"/devices?orgId={HOME}")

        assert [o["id"] for o in orgs["items"]] == [HOME]
        assert status == 200
        assert list(emulator.stats()["by_org"]) == [HOME]


class TestOrgId:
    async def test_omitted_org_id_is_the_callers_org(
        self, http: aiohttp.ClientSession, server: RunningEmulator
    ) -> None:
        """A device created with org1's token lands in org1; the seeded org has none."""
        workspace = await first_workspace(http, server, TOKEN1)

        status, device = await create(http, server, TOKEN1, workspace["id"])

        assert (status, device["orgId"]) == (200, ORG1)
        assert list(server.state.tenancy.orgs[ORG1].store.devices) == [device["id"]]
        assert server.state.store.devices == {}

    async def test_a_device_of_one_org_is_404_in_another(
        self, http: aiohttp.ClientSession, server: RunningEmulator
    ) -> None:
        """Get, patch and delete address the caller's org (or orgId's) only."""
        workspace = await first_workspace(http, server, TOKEN1)
        _, device = await create(http, server, TOKEN1, workspace["id"])
        path = f"/devices/{device['id']}"

        in_home, _ = await call(http, server, "GET", path)
        in_org2, _ = await call(http, server, "GET", path, TOKEN2)
        deleted_elsewhere, _ = await call(http, server, "DELETE", path, TOKEN2)
        via_partner, _ = await call(
            http, server, "GET", f"{path}?orgId={ORG1}", PARTNER
        )
        partner_home, _ = await call(http, server, "GET", path, PARTNER)

        assert (in_home, in_org2, deleted_elsewhere) == (404, 404, 404)
        assert (via_partner, partner_home) == (200, 404)

    async def test_owners_of_another_org_are_404(
        self, http: aiohttp.ClientSession, server: RunningEmulator
    ) -> None:
        """The seeded org's workspace cannot own a device in org1, nor be read there."""
        status, _ = await create(http, server, TOKEN1, HOME_WORKSPACE)
        read, _ = await call(
            http, server, "GET", f"/workspaces/{HOME_WORKSPACE}?orgId={ORG1}", PARTNER
        )
        person = ORG["people"][0]["id"]
        seen, _ = await call(http, server, "GET", f"/people/{person}", TOKEN1)

        assert (status, read, seen) == (404, 404, 404)

    @pytest.mark.parametrize(
        ("token", "org", "expected"),
        [
            (PARTNER, ORG1, 200),
            (PARTNER, ORG2, 403),
            (PARTNER, HOME, 200),
            (DEFAULT_TOKEN, ORG1, 403),
            (TOKEN1, HOME, 403),
            (TOKEN1, ORG1, 200),
            (PARTNER, "no-such-org", 404),
        ],
    )
    async def test_who_may_list_which_org(
        self,
        http: aiohttp.ClientSession,
        server: RunningEmulator,
        token: str,
        org: str,
        expected: int,
    ) -> None:
        """orgId on List works for orgs the token may act for, else 403 (404: none)."""
        status, body = await call(http, server, "GET", f"/devices?orgId={org}", token)

        assert status == expected
        if status >= 400:
            assert body["errors"][0]["description"]

    async def test_partner_creates_in_a_managed_org(
        self, http: aiohttp.ClientSession, server: RunningEmulator
    ) -> None:
        """A partner creates with orgId=org1 and lists it there, not at home."""
        workspace = await first_workspace(http, server, TOKEN1)

        status, device = await create(
            http, server, PARTNER, workspace["id"], orgId=ORG1
        )
        _, there = await call(http, server, "GET", f"/devices?orgId={ORG1}", PARTNER)
        _, home = await call(http, server, "GET", "/devices", PARTNER)
        code, _ = await call(
            http,
            server,
            "POST",
            f"/devices/activationCode?orgId={ORG2}",
            PARTNER,
            json={"workspaceId": workspace["id"]},
        )

        assert (status, device["orgId"]) == (200, ORG1)
        assert [d["id"] for d in there["items"]] == [device["id"]]
        assert (home["items"], code) == ([], 403)

    async def test_partner_lists_and_reads_its_orgs(
        self, http: aiohttp.ClientSession, server: RunningEmulator
    ) -> None:
        """GET /organizations lists home and managed orgs; another org is a 403."""
        _, listed = await call(http, server, "GET", "/organizations", PARTNER)
        managed, _ = await call(http, server, "GET", f"/organizations/{ORG1}", PARTNER)
        other, _ = await call(http, server, "GET", f"/organizations/{ORG2}", PARTNER)

        assert [o["id"] for o in listed["items"]] == [HOME, ORG1]
        assert (managed, other) == (200, 403)

    async def test_partner_finds_people_of_its_orgs_by_email(
        self, http: aiohttp.ClientSession, server: RunningEmulator
    ) -> None:
        """A partner's email lookup reaches its managed orgs; others see nothing."""
        query = "/people?email=ADMIN@org1.example.com"

        _, partner = await call(http, server, "GET", query, PARTNER)
        _, pinned = await call(http, server, "GET", f"{query}&orgId={HOME}", PARTNER)
        _, stranger = await call(http, server, "GET", query, TOKEN2)

        assert [p["orgId"] for p in partner["items"]] == [ORG1]
        assert (pinned["items"], stranger["items"]) == ([], [])

    async def test_a_mac_is_in_use_across_orgs(
        self, http: aiohttp.ClientSession, server: RunningEmulator
    ) -> None:
        """A MAC registered in the seeded org cannot be registered in org1 too."""
        await create(http, server, DEFAULT_TOKEN, HOME_WORKSPACE)
        workspace = await first_workspace(http, server, TOKEN1)

        status, body = await create(http, server, TOKEN1, workspace["id"])
        _, checked = await call(
            http,
            server,
            "POST",
            "/telephony/config/devices/actions/validateMacs/invoke",
            TOKEN1,
            json={"macs": [MAC]},
        )

        assert (status, body["errorCode"]) == (400, 5675)
        assert checked["macStatus"][0]["state"] == "UNAVAILABLE"


class TestPerOrgLimits:
    async def test_each_org_has_its_own_bucket(
        self, http: aiohttp.ClientSession, start_emulator: Any
    ) -> None:
        """org1's 429s leave the seeded org alone; stats count them per org."""
        server = await start_emulator(
            orgs=(OrgSpec(key="org1", rate_limit=0.01, burst=1),)
        )

        org1 = [(await call(http, server, "GET", "/devices", TOKEN1))[0] for _ in "ab"]
        home = [(await call(http, server, "GET", "/devices"))[0] for _ in "abc"]
        by_org = server.stats()["by_org"]

        assert (org1, home) == ([200, 429], [200, 200, 200])
        assert (by_org[ORG1]["requests"], by_org[ORG1]["rate_limited"]) == (2, 1)
        assert (by_org[HOME]["requests"], by_org[HOME]["rate_limited"]) == (3, 0)
        assert server.stats()["rate_limited_total"] == 1

    async def test_org_id_charges_the_named_orgs_bucket(
        self, http: aiohttp.ClientSession, start_emulator: Any
    ) -> None:
        """A partner's call with orgId=org1 spends org1's tokens, not its home's."""
        server = await start_emulator(
            orgs=(OrgSpec(key="org1", rate_limit=0.01, burst=1),),
            partners={PARTNER: ("org1",)},
        )

        first, _ = await call(http, server, "GET", f"/devices?orgId={ORG1}", PARTNER)
        second, _ = await call(http, server, "GET", f"/devices?orgId={ORG1}", PARTNER)
        home, _ = await call(http, server, "GET", "/devices", PARTNER)

        assert (first, second, home) == (200, 429, 200)

    async def test_limits_change_at_run_time(
        self, http: aiohttp.ClientSession, server: RunningEmulator
    ) -> None:
        """PATCH /_emulator/orgs/{orgId} gives org2 a bucket; bad values are a 400."""
        url = f"{server.admin_url}/orgs/{ORG2}"
        async with http.patch(url, json={"rate_limit": 0.01, "burst": 1}) as r:
            patched = (r.status, await r.json())
        async with http.patch(url, json={"burst": 0}) as r:
            bad = r.status
        async with http.patch(f"{server.admin_url}/orgs/nope", json={}) as r:
            unknown = r.status

        statuses = [
            (await call(http, server, "GET", "/devices", TOKEN2))[0] for _ in "ab"
        ]

        assert patched[0] == 200
        assert (patched[1]["rate_limit"], patched[1]["burst"]) == (0.01, 1)
        assert (bad, unknown) == (400, 404)
        assert statuses == [200, 429]

    async def test_home_limits_follow_the_fault_knobs(
        self, server: RunningEmulator
    ) -> None:
        """The seeded org's bucket is the global rate_limit knob, either way set."""
        server.set_faults(rate_limit=5.0, burst=2)
        via_knobs = server.stats()["by_org"][HOME]
        server.set_org_limits(HOME, rate_limit=7.0)

        assert (via_knobs["rate_limit"], via_knobs["burst"]) == (5.0, 2)
        assert server.state.knobs.rate_limit == 7.0

    async def test_org_latency_delays_only_that_org(
        self, http: aiohttp.ClientSession, start_emulator: Any
    ) -> None:
        """latency_ms of org1 delays org1's answers."""
        server = await start_emulator(orgs=(OrgSpec(key="org1", latency_ms=150),))

        began = time.monotonic()
        status, _ = await call(http, server, "GET", "/devices", TOKEN1)
        elapsed = time.monotonic() - began

        assert status == 200
        assert elapsed >= 0.15


class TestAdminView:
    async def test_orgs_show_tokens_limits_and_counts(
        self, http: aiohttp.ClientSession, server: RunningEmulator
    ) -> None:
        """GET /_emulator/orgs lists each org with its tokens, partners and devices."""
        workspace = await first_workspace(http, server, TOKEN1)
        await create(http, server, TOKEN1, workspace["id"])

        async with http.get(f"{server.admin_url}/orgs") as response:
            orgs = {o["key"]: o for o in (await response.json())["items"]}
        async with http.get(f"{server.admin_url}/devices?orgId={ORG1}") as response:
            devices = (await response.json())["items"]

        assert list(orgs) == ["home", "org1", "org2"]
        assert orgs["home"]["tokens"] == sorted([DEFAULT_TOKEN, PARTNER])
        assert (orgs["org1"]["tokens"], orgs["org1"]["partners"]) == (
            [TOKEN1],
            [PARTNER],
        )
        assert (orgs["org1"]["devices"], orgs["org2"]["devices"]) == (1, 0)
        assert [d["orgId"] for d in devices] == [ORG1]

    async def test_reset_clears_every_org(
        self, http: aiohttp.ClientSession, server: RunningEmulator
    ) -> None:
        """Reset forgets every org's devices and counters."""
        workspace = await first_workspace(http, server, TOKEN1)
        await create(http, server, TOKEN1, workspace["id"])

        server.reset()

        assert {o["devices"] for o in server.stats()["by_org"].values()} == {0}
        assert {o["requests"] for o in server.stats()["by_org"].values()} == {0}


class TestConfig:
    def test_flags_build_the_orgs(self) -> None:
        """--orgs, --org-rate-limit/-burst/-latency-ms and --partner map onto the config."""
        args = build_parser().parse_args(
            [
                "--orgs",
                "2",
                "--org-rate-limit",
                "org1=5",
                "--org-burst",
                "org1=2",
                "--org-latency-ms",
                "org2=30",
                "--partner",
                "p=org1,org2",
            ]
        )

        config = config_from_args(args)

        assert [o.key for o in config.orgs] == ["org1", "org2"]
        assert (config.orgs[0].rate_limit, config.orgs[0].burst) == (5.0, 2)
        assert (config.orgs[1].rate_limit, config.orgs[1].latency_ms) == (None, 30.0)
        assert config.partners == {"p": ("org1", "org2")}

    async def test_served_from_the_command_line(self) -> None:
        """python -m provisioner.emulator --orgs 1 --org-rate-limit serves org1 with
        its own bucket, beside the untouched seeded org."""
        flags = [
            "--orgs",
            "1",
            "--org-rate-limit",
            "org1=0.01",
            "--org-burst",
            "org1=1",
        ]
        with run_in_subprocess(flags) as (_, base_url):
            async with aiohttp.ClientSession() as http:
                seen = []
                for token in (TOKEN1, TOKEN1, DEFAULT_TOKEN):
                    headers = {"Authorization": f"Bearer {token}"}
                    async with http.get(f"{base_url}/people/me", headers=headers) as r:
                        seen.append((r.status, (await r.json()).get("orgId")))

        assert seen == [(200, ORG1), (429, None), (200, HOME)]

    @pytest.mark.parametrize(
        "flags",
        [
            ["--org-rate-limit", "org1=5"],
            ["--orgs", "1", "--org-burst", "org1"],
            ["--orgs", "1", "--partner", "p=org9"],
        ],
        ids=["no-such-org", "no-value", "partner-of-nothing"],
    )
    def test_bad_org_flags_are_refused(self, flags: list[str]) -> None:
        """A flag naming an org --orgs did not make, or lacking its value, is refused."""
        with pytest.raises(ValueError, match="org"):
            config_from_args(build_parser().parse_args(flags))

    def test_config_checks_orgs(self) -> None:
        """Org keys are unique and an org's admin token is not reused."""
        with pytest.raises(ValueError, match="unique"):
            EmulatorConfig(orgs=(OrgSpec(key="a"), OrgSpec(key="a")))
        with pytest.raises(ValueError, match="admin token"):
            EmulatorConfig(
                orgs=(OrgSpec(key="a"),), tokens={org_token("a"): ALL_SCOPES}
            )
        with pytest.raises(ValueError, match="key"):
            OrgSpec(key="no spaces")
