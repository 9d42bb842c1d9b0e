"""
Owners named by workspace name or email: resolved against the org, each name once.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fakes import FakeDevicesApi
from paths import EMULATOR_ORG

from provisioner.emulator import RunningEmulator
from provisioner.errors import ForbiddenError, InvalidRequestError
from provisioner.intake.manifest import load_manifest
from provisioner.live.owners import resolve_owners
from provisioner.live.preflight import preflight
from provisioner.models import Manifest
from provisioner.settings import Settings
from provisioner.webex.client import ApiClient

HQ, DENVER = "loc-hq", "loc-denver"
LOBBY_HQ, LOBBY_DENVER, LOBBY_2, BOARDROOM = (
    "ws-lobby-hq",
    "ws-lobby-den",
    "ws-l2",
    "ws-b",
)
ALEX = "person-alex"


def directory() -> FakeDevicesApi:
    return FakeDevicesApi(
        workspace_names={
            LOBBY_HQ: ("Lobby", HQ),
            LOBBY_DENVER: ("Lobby", DENVER),
            LOBBY_2: ("Lobby 2", HQ),
            BOARDROOM: ("Boardroom", DENVER),
        },
        person_emails={ALEX: "Alex.Morgan@agency.example.gov"},
        locations={HQ: "Washington DC HQ", DENVER: "Denver Field Office"},
    )


def manifest(folder: Path, header: str, *lines: str) -> Manifest:
    path = folder / "m.csv"
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return load_manifest(path)


async def test_email_resolves_ignoring_case(tmp_path: Path) -> None:
    """An email matches the person's address whatever its case; the id is filled in."""
    loaded = manifest(
        tmp_path, "model,Email", "Cisco 8851,alex.morgan@AGENCY.example.gov"
    )

    resolution = await resolve_owners(loaded, directory())

    (row,) = resolution.manifest.rows
    assert (row.person_id, row.problems) == (ALEX, ())
    assert row.owner_label == f"alex.morgan@AGENCY.example.gov (id {ALEX})"


async def test_unknown_email_is_invalid_naming_it(tmp_path: Path) -> None:
    """No person with the email: the row is invalid and the message names the address."""
    loaded = manifest(
        tmp_path, "model,personEmail", "Cisco 8851,nobody@agency.example.gov"
    )

    resolution = await resolve_owners(loaded, directory())

    (row,) = resolution.manifest.rows
    (problem,) = row.problems
    assert (problem.column, problem.value) == (
        "personEmail",
        "nobody@agency.example.gov",
    )
    assert problem.message.startswith(
        'no person with the email "nobody@agency.example.gov" in the org'
    )
    assert row.person_id is None
    assert resolution.problems == {2: (problem,)}


async def test_two_people_with_one_email_are_listed(tmp_path: Path) -> None:
    """Should two people answer to one email, the row lists both ids and asks for one."""
    api = directory()
    api.person_emails["person-alex-2"] = "alex.morgan@agency.example.gov"
    api.people.add("person-alex-2")
    loaded = manifest(
        tmp_path, "model,email", "Cisco 8851,alex.morgan@agency.example.gov"
    )

    resolution = await resolve_owners(loaded, api)

    (problem,) = resolution.manifest.rows[0].problems
    assert problem.message == (
        '2 people have the email "alex.morgan@agency.example.gov": person-alex, '
        "person-alex-2; give the personId of the one you mean"
    )


async def test_exact_workspace_name_wins_over_the_filters_extra_answers(
    tmp_path: Path,
) -> None:
    """The API's filter answers "Boardroom" and more; only the exact name counts."""
    api = directory()
    api.workspace_names["ws-b2"] = ("Boardroom East", HQ)
    api.workspaces.add("ws-b2")
    loaded = manifest(tmp_path, "model,Workspace Name", "Cisco 8851,Boardroom")

    resolution = await resolve_owners(loaded, api)

    (row,) = resolution.manifest.rows
    assert (row.workspace_id, row.problems) == (BOARDROOM, ())
    assert row.owner_label == f"Boardroom (id {BOARDROOM})"
    assert api.count("get_location") == 0


async def test_a_name_matching_nothing_exactly_lists_near_names(tmp_path: Path) -> None:
    """ "lobby" is no workspace's exact name: invalid, naming the near misses."""
    loaded = manifest(tmp_path, "model,Room", "Cisco 8851,lobby")

    resolution = await resolve_owners(loaded, directory())

    (problem,) = resolution.manifest.rows[0].problems
    assert problem.column == "Room"
    assert problem.message.startswith(
        'no workspace is named exactly "lobby" in the org; names that come close: '
        '"Lobby", "Lobby 2"'
    )
    assert "give its workspaceId" in problem.message


async def test_same_named_workspaces_are_invalid_with_their_candidates(
    tmp_path: Path,
) -> None:
    """Two workspaces named "Lobby": invalid, listing each id with its location."""
    loaded = manifest(tmp_path, "model,workspace", "Cisco 8851,Lobby")

    resolution = await resolve_owners(loaded, directory())

    (problem,) = resolution.manifest.rows[0].problems
    assert problem.message == (
        f'2 workspaces are named "Lobby": {LOBBY_HQ} (location "Washington DC HQ"), '
        f'{LOBBY_DENVER} (location "Denver Field Office"); give the workspaceId of '
        "the one you mean (workspaceId column), or add a location column naming its "
        "location"
    )
    assert resolution.manifest.rows[0].workspace_id is None


@pytest.mark.parametrize(
    "location", ["Denver Field Office", "denver field office", DENVER]
)
async def test_location_tells_same_named_workspaces_apart(
    tmp_path: Path, location: str
) -> None:
    """A location column, by name (any case) or id, picks one of the same-named."""
    loaded = manifest(
        tmp_path, "model,workspace,location", f"Cisco 8851,Lobby,{location}"
    )

    resolution = await resolve_owners(loaded, directory())

    (row,) = resolution.manifest.rows
    assert (row.workspace_id, row.problems) == (LOBBY_DENVER, ())
    assert row.owner_label == f"Lobby, {location} (id {LOBBY_DENVER})"


async def test_a_location_with_no_such_workspace_is_invalid(tmp_path: Path) -> None:
    """A location none of the same-named workspaces is at: invalid on that column."""
    loaded = manifest(tmp_path, "model,workspace,location", "Cisco 8851,Lobby,Austin")

    resolution = await resolve_owners(loaded, directory())

    (problem,) = resolution.manifest.rows[0].problems
    assert (problem.column, problem.value) == ("location", "Austin")
    assert problem.message.startswith(
        'no workspace named "Lobby" is at location "Austin"'
    )
    assert f'{LOBBY_HQ} (location "Washington DC HQ")' in problem.message


async def test_same_named_workspaces_with_an_empty_location_cell(
    tmp_path: Path,
) -> None:
    """With a location column present but empty, the fix says to fill it in."""
    loaded = manifest(tmp_path, "model,workspace,location", "Cisco 8851,Lobby,")

    resolution = await resolve_owners(loaded, directory())

    (problem,) = resolution.manifest.rows[0].problems
    assert problem.message.endswith("or fill in its location")


async def test_each_name_and_location_is_looked_up_once(tmp_path: Path) -> None:
    """Many rows, few names: one lookup per distinct name, one per location."""
    api = directory()
    lines = [
        *("Cisco 8851,Boardroom,," for _ in range(5)),
        *("Cisco 8851,Lobby,Denver Field Office," for _ in range(5)),
        *("Cisco 8851,Lobby,Washington DC HQ," for _ in range(5)),
        *("Cisco 8851,,,ALEX.MORGAN@agency.example.gov" for _ in range(3)),
        *("Cisco 8851,,,alex.morgan@agency.example.gov" for _ in range(3)),
    ]
    loaded = manifest(tmp_path, "model,workspace,location,personEmail", *lines)

    resolution = await resolve_owners(loaded, api)

    assert all(row.is_valid for row in resolution.manifest.rows)
    assert api.count("find_workspaces") == 2
    assert api.count("find_people") == 1
    assert api.count("get_location") == 2
    assert {row.workspace_id for row in resolution.manifest.rows[5:15]} == {
        LOBBY_DENVER,
        LOBBY_HQ,
    }


async def test_rows_with_ids_are_left_alone(tmp_path: Path) -> None:
    """Rows naming their owner by id make no lookup and get no owner label."""
    api = directory()
    loaded = manifest(tmp_path, "model,workspaceId", f"Cisco 8851,{BOARDROOM}")

    resolution = await resolve_owners(loaded, api)

    assert resolution.manifest == loaded
    assert api.calls == []
    assert loaded.rows[0].owner_label is None


async def test_a_token_that_may_not_list_people_makes_the_rows_invalid(
    tmp_path: Path,
) -> None:
    """A 403 on the lookup: the row cannot run; the message names the scope and the fix."""
    api = directory()
    api.fail_before("find_people", ForbiddenError("no", status=403))
    loaded = manifest(
        tmp_path, "model,personEmail", "Cisco 8851,alex.morgan@agency.example.gov"
    )

    resolution = await resolve_owners(loaded, api)

    (problem,) = resolution.manifest.rows[0].problems
    assert "spark-admin:people_read" in problem.message
    assert "give the person's id instead (personId)" in problem.message
    assert resolution.warnings


async def test_a_refused_lookup_names_the_apis_words(tmp_path: Path) -> None:
    """A 400 on the lookup: the row is invalid with what the API said."""
    api = directory()
    api.fail_before("find_workspaces", InvalidRequestError("bad filter", status=400))
    loaded = manifest(tmp_path, "model,workspace", "Cisco 8851,Boardroom")

    resolution = await resolve_owners(loaded, api)

    (problem,) = resolution.manifest.rows[0].problems
    assert "(bad filter)" in problem.message


async def test_preflight_resolves_names_against_the_emulator(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    """validate --live's checks: names resolve, same-named and unknown ones are invalid."""
    org = json.loads(EMULATOR_ORG.read_text(encoding="utf-8"))
    locations = {location["name"]: location["id"] for location in org["locations"]}
    lobby_denver = next(
        w["id"]
        for w in org["workspaces"]
        if w["displayName"] == "Lobby"
        and w["locationId"] == locations["Denver Field Office"]
    )
    loaded = manifest(
        tmp_path,
        "mac,model,Workspace Name,Location,Email",
        "00AABB000002,Cisco 8851,Lobby,Denver Field Office,",
        "00AABB000003,Cisco 8851,Lobby,,",
        ",Room Kit,Nowhere Hall,,",
        ",Desk Pro,,,morgan.reyes@agency.example.gov",
        ",Cisco 8875,,,ghost@agency.example.gov",
    )
    settings = Settings(token=emulator.token, base_url=emulator.base_url)

    async with ApiClient(settings) as api:
        checked = await preflight(loaded, api)

    rows = {row.number: row for row in checked.manifest.rows}
    assert (rows[2].workspace_id, rows[2].problems) == (lobby_denver, ())
    assert rows[3].problems[0].message.startswith('3 workspaces are named "Lobby": ')
    assert '(location "San Diego Annex")' in rows[3].problems[0].message
    assert "no workspace is named exactly" in rows[4].problems[0].message
    assert rows[5].problems == ()
    assert rows[5].person_id is not None
    assert "ghost@agency.example.gov" in rows[6].problems[0].message
    assert sorted(checked.live_problems) == [3, 4, 6]
    assert checked.names_looked_up == 4
    routes = emulator.stats()["by_route"]
    assert sum(routes["GET /v1/workspaces"].values()) == 2
    assert "GET /v1/workspaces/{workspaceId}" not in routes
