"""
The emulator's directory: people (me, email, name), workspaces by name, locations, orgs.
"""

from __future__ import annotations

import csv
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from paths import EMULATOR_ORG, MANIFESTS

from provisioner.emulator import DEFAULT_TOKEN, RunningEmulator

ORG = json.loads(EMULATOR_ORG.read_text())
ORG_ID = ORG["orgId"]
PEOPLE = {p["displayName"]: p for p in ORG["people"]}
LOCATIONS = {loc["name"]: loc["id"] for loc in ORG["locations"]}
WASHINGTON = LOCATIONS["Washington DC HQ"]
NON_ADMIN = "user-token"
NO_PEOPLE = "devices-only"


@pytest.fixture(name="http")
async def _http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def get(
    http: aiohttp.ClientSession,
    server: RunningEmulator,
    path: str,
    token: str = DEFAULT_TOKEN,
    **params: str,
) -> tuple[int, Any]:
    """GET one API path; return the status and the decoded body."""
    async with http.get(
        server.base_url + path,
        params=params,
        headers={"Authorization": f"Bearer {token}"},
    ) as response:
        return response.status, await response.json()


def names(body: dict[str, Any]) -> list[str]:
    return sorted(item["displayName"] for item in body["items"])


class TestMe:
    async def test_me_is_the_tokens_admin(
        self, http: aiohttp.ClientSession, emulator: RunningEmulator
    ) -> None:
        """GET /people/me answers the person behind the token, with emails and orgId."""
        status, me = await get(http, emulator, "/people/me")
        _, same = await get(http, emulator, f"/people/{me['id']}")

        assert status == 200
        assert me["id"] == ORG["adminPersonId"]
        assert me["emails"] == ["admin@agency.example.gov"]
        assert (me["displayName"], me["orgId"]) == ("Pat Admin", ORG_ID)
        assert same == me

    async def test_me_ignores_org_id(
        self, http: aiohttp.ClientSession, emulator: RunningEmulator
    ) -> None:
        """/people/me takes no orgId: one naming no org still answers the caller."""
        status, me = await get(http, emulator, "/people/me", orgId="no-such-org")

        assert (status, me["id"]) == (200, ORG["adminPersonId"])


class TestPeople:
    @pytest.mark.parametrize(
        ("email", "expected"),
        [
            ("morgan.reyes@agency.example.gov", ["Morgan Reyes"]),
            ("MORGAN.REYES@AGENCY.EXAMPLE.GOV", ["Morgan Reyes"]),
            ("jpark@agency.example.gov", ["Jamie Park"]),
            ("avery.adams0@agency.example.gov", ["Avery Adams"]),
            ("morgan.reyes", []),
            ("nobody@agency.example.gov", []),
        ],
        ids=[
            "stored-mixed-case",
            "asked-upper-case",
            "second-email",
            "seed",
            "part",
            "none",
        ],
    )
    async def test_email_is_exact_ignoring_case(
        self,
        http: aiohttp.ClientSession,
        emulator: RunningEmulator,
        email: str,
        expected: list[str],
    ) -> None:
        """?email= matches any of a person's emails exactly, ignoring case; no match
        is 200 with an empty list."""
        status, body = await get(http, emulator, "/people", email=email)

        assert status == 200
        assert names(body) == expected

    @pytest.mark.parametrize(
        ("prefix", "expected"),
        [
            ("Sam Lee", ["Sam Lee", "Sam Leeds"]),
            ("sam leeds", ["Sam Leeds"]),
            ("Leeds", []),
            ("Alex Morgan", ["Alex Morgan", "Alex Morgan"]),
        ],
    )
    async def test_display_name_is_a_prefix(
        self,
        http: aiohttp.ClientSession,
        emulator: RunningEmulator,
        prefix: str,
        expected: list[str],
    ) -> None:
        """?displayName= lists people whose name starts with it, ignoring case."""
        status, body = await get(http, emulator, "/people", displayName=prefix)

        assert (status, names(body)) == (200, expected)

    async def test_namesakes_differ_by_email(
        self, http: aiohttp.ClientSession, emulator: RunningEmulator
    ) -> None:
        """Two people share a display name; only their emails and ids tell them apart."""
        _, body = await get(http, emulator, "/people", displayName="Alex Morgan")

        emails = sorted(e for p in body["items"] for e in p["emails"])
        assert emails == [
            "alex.morgan2@agency.example.gov",
            "alex.morgan@agency.example.gov",
        ]
        assert len({p["id"] for p in body["items"]}) == 2

    async def test_admin_lists_everyone(
        self, http: aiohttp.ClientSession, emulator: RunningEmulator
    ) -> None:
        """An admin token may list people without a filter: the whole org, each with orgId."""
        status, body = await get(http, emulator, "/people", max="500")

        assert status == 200
        assert len(body["items"]) == len(ORG["people"])
        assert {p["orgId"] for p in body["items"]} == {ORG_ID}

    async def test_non_admin_needs_email_or_name(
        self, http: aiohttp.ClientSession, start_emulator: Any
    ) -> None:
        """Without spark-admin:people_read a bare list is a 400; with email it works;
        without any people scope it is a 403."""
        server = await start_emulator(
            tokens={
                NON_ADMIN: frozenset({"spark:people_read"}),
                NO_PEOPLE: frozenset({"spark-admin:devices_read"}),
            }
        )

        bare, error = await get(http, server, "/people", NON_ADMIN)
        by_email, found = await get(
            http, server, "/people", NON_ADMIN, email="sam.lee@agency.example.gov"
        )
        by_name, _ = await get(http, server, "/people", NON_ADMIN, displayName="Sam")
        unscoped, _ = await get(http, server, "/people/me", NO_PEOPLE)

        assert (bare, by_email, by_name, unscoped) == (400, 200, 200, 403)
        assert "email" in error["message"]
        assert names(found) == ["Sam Lee"]

    async def test_id_list_and_its_limit(
        self, http: aiohttp.ClientSession, emulator: RunningEmulator
    ) -> None:
        """?id= takes a comma list of up to 85 ids."""
        wanted = [PEOPLE["Sam Lee"]["id"], PEOPLE["Jamie Park"]["id"]]

        status, body = await get(http, emulator, "/people", id=",".join(wanted))
        too_many, _ = await get(
            http, emulator, "/people", id=",".join(f"id{n}" for n in range(86))
        )

        assert (status, names(body)) == (200, ["Jamie Park", "Sam Lee"])
        assert too_many == 400

    async def test_person_by_id(
        self, http: aiohttp.ClientSession, emulator: RunningEmulator
    ) -> None:
        """GET /people/{id} answers the person with emails and orgId; unknown is 404."""
        person = ORG["people"][0]

        status, body = await get(http, emulator, f"/people/{person['id']}")
        missing, _ = await get(http, emulator, "/people/nobody")

        assert (status, missing) == (200, 404)
        assert body == {**person, "orgId": ORG_ID}


class TestWorkspaces:
    async def test_display_name_is_not_an_equality_match(
        self, http: aiohttp.ClientSession, emulator: RunningEmulator
    ) -> None:
        """?displayName=Lobby answers every name containing it, in any case."""
        _, exact = await get(http, emulator, "/workspaces", displayName="Lobby")
        _, lower = await get(http, emulator, "/workspaces", displayName="lobby")

        assert names(exact) == [
            "Denver Lobby 2",
            "Lobby",
            "Lobby",
            "Lobby",
            "Lobby 2",
            "San Lobby 3",
            "Washington Lobby 1",
        ]
        assert lower == exact

    async def test_namesakes_differ_by_location(
        self, http: aiohttp.ClientSession, emulator: RunningEmulator
    ) -> None:
        """The three workspaces named exactly "Lobby" sit in three locations."""
        _, body = await get(http, emulator, "/workspaces", displayName="Lobby")

        lobbies = [w for w in body["items"] if w["displayName"] == "Lobby"]
        assert sorted(w["locationId"] for w in lobbies) == sorted(LOCATIONS.values())
        assert len({w["id"] for w in lobbies}) == 3

    async def test_location_narrows_the_name(
        self, http: aiohttp.ClientSession, emulator: RunningEmulator
    ) -> None:
        """displayName and locationId together leave one location's candidates."""
        _, body = await get(
            http, emulator, "/workspaces", displayName="lobby", locationId=WASHINGTON
        )

        assert names(body) == ["Lobby", "Lobby 2", "Washington Lobby 1"]

    async def test_type_and_calling_filters(
        self, http: aiohttp.ClientSession, emulator: RunningEmulator
    ) -> None:
        """type and calling compare with the workspace's type and calling type."""
        _, other = await get(http, emulator, "/workspaces", type="other", max="500")
        _, desks = await get(http, emulator, "/workspaces", type="desk")
        _, free = await get(http, emulator, "/workspaces", calling="freeCalling")

        assert len(other["items"]) == len(ORG["workspaces"])
        assert (desks["items"], free["items"]) == ([], [])

    async def test_manifest_workspace_ids_still_resolve(
        self, http: aiohttp.ClientSession, emulator: RunningEmulator
    ) -> None:
        """Every workspace id of the example manifest is still a seeded workspace."""
        with (MANIFESTS / "example.csv").open(newline="", encoding="utf-8") as handle:
            ids = {row["workspaceId"] for row in csv.DictReader(handle)} - {""}

        statuses = {(await get(http, emulator, f"/workspaces/{i}"))[0] for i in ids}

        assert ids
        assert statuses == {200}


class TestLocations:
    async def test_list_filters_and_details(
        self, http: aiohttp.ClientSession, emulator: RunningEmulator
    ) -> None:
        """/locations lists the org's locations; name is a case-insensitive contains."""
        _, everything = await get(http, emulator, "/locations")
        _, denver = await get(http, emulator, "/locations", name="DENVER")
        _, by_id = await get(http, emulator, "/locations", id=WASHINGTON)
        status, one = await get(http, emulator, f"/locations/{WASHINGTON}")
        missing, _ = await get(http, emulator, "/locations/nowhere")

        assert sorted(loc["name"] for loc in everything["items"]) == sorted(LOCATIONS)
        assert [loc["name"] for loc in denver["items"]] == ["Denver Field Office"]
        assert [loc["id"] for loc in by_id["items"]] == [WASHINGTON]
        assert (status, one["name"], one["orgId"]) == (200, "Washington DC HQ", ORG_ID)
        assert one["address"]["city"] == "Washington"
        assert missing == 404


class TestOrganizations:
    async def test_own_org_details_and_list(
        self, http: aiohttp.ClientSession, emulator: RunningEmulator
    ) -> None:
        """GET /organizations/{orgId} answers id, displayName, created; the list has it."""
        status, org = await get(http, emulator, f"/organizations/{ORG_ID}")
        _, listed = await get(http, emulator, "/organizations")

        assert status == 200
        assert org == {
            "id": ORG_ID,
            "displayName": ORG["orgName"],
            "created": ORG["created"],
        }
        assert listed == {"items": [org]}

    async def test_unknown_org_is_404(
        self, http: aiohttp.ClientSession, emulator: RunningEmulator
    ) -> None:
        """An org id the emulator does not hold is a 404 with the error body."""
        status, body = await get(http, emulator, "/organizations/no-such-org")

        assert status == 404
        assert body["errors"][0]["description"]

    async def test_needs_the_organizations_scope(
        self, http: aiohttp.ClientSession, start_emulator: Any
    ) -> None:
        """Reading an org needs spark-admin:organizations_read."""
        server = await start_emulator(
            tokens={NO_PEOPLE: frozenset({"spark-admin:devices_read"})}
        )

        status, body = await get(http, server, f"/organizations/{ORG_ID}", NO_PEOPLE)

        assert status == 403
        assert "spark-admin:organizations_read" in body["message"]
