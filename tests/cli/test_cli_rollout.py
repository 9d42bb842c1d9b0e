"""
A rollout-shaped manifest end to end: 300 rows, every kind of device and owner, faults.

MPP phones (the 8875 by MAC and by code), 98xx, RoomOS devices by activation code,
owners by id, by workspace name (with a location where names repeat) and by email,
and names that match nothing or several workspaces, run against the emulator in a
subprocess under a rate limit, 5xx answers, dropped connections and creates whose
answer is lost. Every valid row must end with exactly one device, on the right owner,
with exactly its tags; the bad names must be ``invalid`` with their candidates.
"""

from __future__ import annotations

import csv
import json
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from paths import EMULATOR_ORG

from provisioner.cli import main
from provisioner.emulator.config import DEFAULT_TOKEN
from provisioner.emulator.harness import run_in_subprocess
from provisioner.intake.mac import normalise_mac

ORG = json.loads(EMULATOR_ORG.read_text(encoding="utf-8"))
LOCATIONS = {location["id"]: location["name"] for location in ORG["locations"]}
NAME_COUNTS = Counter(workspace["displayName"] for workspace in ORG["workspaces"])
UNIQUE_WORKSPACES = [w for w in ORG["workspaces"] if NAME_COUNTS[w["displayName"]] == 1]
LOBBIES = [w for w in ORG["workspaces"] if w["displayName"] == "Lobby"]
PEOPLE = [p for p in ORG["people"] if p["emails"]]
COLUMNS = [
    "mac",
    "model",
    "workspaceId",
    "personId",
    "workspace",
    "location",
    "email",
    "tags",
]
ROOMOS_WORKSPACE_MODELS = (
    "Cisco Room Kit",
    "Room Bar Pro",
    "Board Pro 75",
    "Room Kit Mini",
)
ROOMOS_PERSON_MODELS = ("Desk Pro", "Desk Mini", "Cisco Desk")
MPP_MODELS = ("Cisco 8851", "Cisco 8865", "Cisco 6871", "Cisco 7841", "Cisco 8875")
DESK_PHONES = ("Cisco 9841", "Cisco 9851", "Cisco 9861", "Cisco 9871")
ROOM_PRODUCT = "Cisco Room Device"  # what the emulator calls a code's model-less device


def admin(base_url: str, method: str, path: str, body: Any = None) -> Any:
    request = urllib.request.Request(
        base_url.removesuffix("/v1") + "/_emulator" + path,
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        raw = response.read()
    return json.loads(raw) if raw else None


@pytest.fixture(name="base_url")
def _base_url() -> Iterator[str]:
    with run_in_subprocess() as (_process, url):
        yield url


def rollout_rows() -> tuple[list[dict[str, str]], dict[int, str], dict[int, str]]:
    """
    The 300 rows, the owner id each valid row must end on (by row number), and a
    fragment each invalid row's error must hold.
    """
    rows: list[dict[str, str]] = []
    owners: dict[int, str] = {}
    invalid: dict[int, str] = {}
    serial = iter(range(1, 10_000))

    def add(owner: str | None, bad: str | None = None, **cells: str) -> None:
        number = len(rows) + 2
        cells.setdefault("tags", f"wave-3;row-{number}")
        rows.append(cells)
        if owner is not None:
            owners[number] = owner
        if bad is not None:
            invalid[number] = bad

    def new_mac() -> str:
        n = next(serial)
        return f"00:1B:D5:{n >> 16 & 0xFF:02X}:{n >> 8 & 0xFF:02X}:{n & 0xFF:02X}"

    # 90 Cisco MPP phones by MAC on workspaces by id (the 8875 among them).
    for i in range(90):
        workspace = ORG["workspaces"][i % len(ORG["workspaces"])]
        add(
            workspace["id"],
            mac=new_mac(),
            model=MPP_MODELS[i % len(MPP_MODELS)],
            workspaceId=workspace["id"],
        )
    # 40 phones by MAC on workspaces by name.
    for i in range(40):
        workspace = UNIQUE_WORKSPACES[i % len(UNIQUE_WORKSPACES)]
        add(
            workspace["id"],
            mac=new_mac(),
            model=MPP_MODELS[i % len(MPP_MODELS)],
            workspace=workspace["displayName"],
        )
    # 40 98xx desk phones by MAC, for people by email (in any case).
    for i in range(40):
        person = PEOPLE[i % len(PEOPLE)]
        email = person["emails"][0]
        add(
            person["id"],
            mac=new_mac(),
            model=DESK_PHONES[i % len(DESK_PHONES)],
            email=email.upper() if i % 3 == 0 else email,
        )
    # 40 RoomOS devices by code on workspaces by name, one per workspace.
    for i in range(40):
        workspace = UNIQUE_WORKSPACES[i]
        add(
            workspace["id"],
            model=ROOMOS_WORKSPACE_MODELS[i % len(ROOMOS_WORKSPACE_MODELS)],
            workspace=workspace["displayName"],
        )
    # The three same-named "Lobby" workspaces, told apart by location.
    for lobby in LOBBIES:
        add(
            lobby["id"],
            model="Room Bar",
            workspace="Lobby",
            location=LOCATIONS[lobby["locationId"]],
        )
    # 30 Desk devices by code for people by email, one per person.
    for i in range(30):
        person = PEOPLE[i]
        add(
            person["id"],
            model=ROOMOS_PERSON_MODELS[i % len(ROOMOS_PERSON_MODELS)],
            email=person["emails"][0],
        )
    # 12 8875 activation codes on workspaces by id, one per workspace.
    for workspace in ORG["workspaces"][:12]:
        add(workspace["id"], model="Cisco 8875", workspaceId=workspace["id"])
    # 30 more phones by MAC for people by email.
    for i in range(30):
        person = PEOPLE[-1 - i % 20]
        add(
            person["id"],
            mac=new_mac(),
            model=MPP_MODELS[i % 4],
            email=person["emails"][-1],
        )
    # Names that cannot run: same-named workspaces without a location, names and
    # emails nobody has, a location no Lobby is at.
    for _ in range(5):
        add(
            None,
            'workspaces are named "Lobby"',
            mac=new_mac(),
            model="Cisco 8851",
            workspace="Lobby",
        )
    for _ in range(3):
        add(
            None,
            'named "Main Conference Room"',
            model="Room Kit",
            workspace="Main Conference Room",
        )
    for _ in range(3):
        add(
            None,
            'no workspace is named exactly "Atrium 9"',
            mac=new_mac(),
            model="Cisco 8865",
            workspace="Atrium 9",
        )
    for _ in range(3):
        add(
            None,
            'no person with the email "ghost@agency.example.gov"',
            model="Desk Pro",
            email="ghost@agency.example.gov",
        )
    add(
        None,
        'no workspace named "Lobby" is at location "Austin"',
        model="Room Kit",
        workspace="Lobby",
        location="Austin",
    )
    while len(rows) < 300:
        workspace = ORG["workspaces"][len(rows) % len(ORG["workspaces"])]
        add(
            workspace["id"],
            mac=new_mac(),
            model="Cisco 8851",
            workspaceId=workspace["id"],
        )
    return rows, owners, invalid


def test_a_300_row_rollout_under_faults(base_url: str, tmp_path: Path) -> None:
    """Every valid row once, on its owner, with its tags; bad names invalid with candidates."""
    rows, owners, invalid = rollout_rows()
    assert len(rows) == 300
    manifest = tmp_path / "rollout.csv"
    with manifest.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    admin(
        base_url,
        "POST",
        "/faults",
        {
            "rate_limit": 100,
            "burst": 20,
            "fault_rate": 0.08,
            "drop_rate": 0.04,
            "ambiguous_rate": 0.03,
            "seed": 12,
        },
    )

    result = CliRunner().invoke(
        main,
        ["run", str(manifest), "--report", str(tmp_path / "r.csv"), "--quiet"]
        + ["--base-url", base_url],
        env={"WEBEX_ACCESS_TOKEN": DEFAULT_TOKEN},
        catch_exceptions=False,
    )

    with (tmp_path / "r.csv").open(newline="", encoding="utf-8-sig") as file:
        report = {int(line["row"]): line for line in csv.DictReader(file)}
    devices = {
        device["id"]: device for device in admin(base_url, "GET", "/devices")["items"]
    }
    assert result.exit_code == 1, result.output
    assert sorted(report) == list(range(2, 302))
    # The bad names are invalid, with what was looked for and the candidates.
    assert {n for n, line in report.items() if line["status"] == "invalid"} == set(
        invalid
    )
    for number, fragment in invalid.items():
        assert fragment in report[number]["error"], (number, report[number]["error"])
    lobby_error = next(
        report[n]["error"]
        for n in invalid
        if "Lobby" in invalid[n] and "are named" in invalid[n]
    )
    for lobby in LOBBIES:
        assert (
            f'{lobby["id"]} (location "{LOCATIONS[lobby["locationId"]]}")'
            in lobby_error
        )
    # Every valid row once: one device each, no device left over (a lost code's
    # pending device included), on the owner it named, with exactly its tags.
    valid = {n: line for n, line in report.items() if n not in invalid}
    assert {line["status"] for line in valid.values()} <= {
        "created",
        "adopted",
        "code_issued",
    }
    assert sorted(line["deviceId"] for line in valid.values()) == sorted(devices)
    for number, line in valid.items():
        device = devices[line["deviceId"]]
        cells = rows[number - 2]
        assert (device.get("workspaceId") or device.get("personId")) == owners[
            number
        ], number
        assert sorted(device["tags"]) == sorted(cells["tags"].split(";")), number
        if cells.get("mac"):
            assert device["mac"] == normalise_mac(cells["mac"])
        elif cells["model"] != "Cisco 8875":
            # A RoomOS code is requested without a model (an 8875's names its model).
            assert (device["product"], device["type"]) == (ROOM_PRODUCT, "roomdesk"), (
                number
            )
        else:
            assert device["product"] == "Cisco 8875"
        if cells.get("workspace") or cells.get("email"):
            assert line["owner"].endswith(f"(id {owners[number]})"), line["owner"]
    answered = Counter(
        status
        for counts in admin(base_url, "GET", "/stats")["by_route"].values()
        for status, n in counts.items()
        for _ in range(n)
    )
    assert answered["dropped"] > 0  # the faults did happen
    assert sum(n for status, n in answered.items() if status.startswith("5")) > 0
