"""
Export against the emulator: every filter, every page, the admin view device for device.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fakes import FakeDevicesApi
from inventory_support import ORG, PEOPLE, WORKSPACES, settings_for
from rate_spy import starts_by_limiter

from provisioner.emulator import RunningEmulator
from provisioner.errors import AuthError, ServerError
from provisioner.intake.manifest import load_manifest
from provisioner.inventory.export import export_devices
from provisioner.inventory.export_rules import (
    EXPORT_COLUMNS,
    ExportProgress,
    ExportQuery,
    ExportResult,
)
from provisioner.report.table import TableFile
from provisioner.settings import Settings
from provisioner.webex.client import ApiClient

Wire = dict[str, Any]


def mac_of(n: int) -> str:
    return f"00AABC{n:06X}"


async def seed(server: RunningEmulator, phones: int = 12) -> list[Wire]:
    """
    A varied org: phones of two models in workspaces and with people, tagged in three
    patterns, two pending activation codes and one activated room device.
    """
    async with ApiClient(settings_for(server)) as api:
        for n in range(phones):
            owner = (
                {"workspace_id": WORKSPACES[n]} if n % 3 else {"person_id": PEOPLE[n]}
            )
            model = "DMS Cisco 8851" if n % 2 else "DMS Cisco 8865"
            device = await api.create_device(mac=mac_of(n), model=model, **owner)
            tags = [["hq"], ["hq", "floor-1"], []][n % 3]
            if tags:
                await api.modify_tags(device.id, mode="replace", tags=tags)
        pending = await api.create_activation_code(
            model="DMS Cisco 8875", workspace_id=WORKSPACES[20]
        )
        await api.create_activation_code(model=None, workspace_id=WORKSPACES[21])
    room = await _room_code(server)
    server.state.store.activate(room, None, server.state.clock.now())
    assert pending.device_id is not None
    return admin_view(server)


async def _room_code(server: RunningEmulator) -> str:
    async with ApiClient(settings_for(server)) as api:
        code = await api.create_activation_code(model=None, workspace_id=WORKSPACES[22])
    assert code.device_id is not None
    return code.device_id


def admin_view(server: RunningEmulator) -> list[Wire]:
    return [dict(record.wire) for record in server.state.store.devices.values()]


async def export_to(
    server: RunningEmulator,
    path: Path,
    query: ExportQuery = ExportQuery(),  # noqa: B008 - a frozen value
    **options: Any,
) -> tuple[ExportResult, list[dict[str, str]]]:
    with TableFile(path, EXPORT_COLUMNS, sheet="Devices") as table:
        result = await export_devices(
            query, settings_for(server), table.append, **options
        )
    with path.open(newline="", encoding="utf-8") as file:
        return result, list(csv.DictReader(file))


def mac_key(value: Any) -> str:
    return str(value or "").replace(":", "").upper()


FILTERS: list[tuple[str, ExportQuery, Callable[[Wire], bool]]] = [
    ("one tag", ExportQuery(tags=("hq",)), lambda w: "hq" in w["tags"]),
    (
        "two tags, all must match",
        ExportQuery(tags=("hq", "floor-1")),
        lambda w: {"hq", "floor-1"} <= set(w["tags"]),
    ),
    (
        "workspace",
        ExportQuery(workspace_id=WORKSPACES[1]),
        lambda w: w.get("workspaceId") == WORKSPACES[1],
    ),
    (
        "person",
        ExportQuery(person_id=PEOPLE[3]),
        lambda w: w.get("personId") == PEOPLE[3],
    ),
    ("type", ExportQuery(type="roomdesk"), lambda w: w["type"] == "roomdesk"),
    (
        "connection status",
        ExportQuery(connection_status="activating"),
        lambda w: w["connectionStatus"] == "activating",
    ),
    (
        "mac, in another notation",
        ExportQuery(mac="00:aa:bc:00:00:04"),
        lambda w: mac_key(w.get("mac")) == mac_of(4),
    ),
    (
        "display name",
        ExportQuery(display_name=ORG["workspaces"][5]["displayName"]),
        lambda w: (
            ORG["workspaces"][5]["displayName"].casefold()
            in w["displayName"].casefold()
        ),
    ),
    (
        "product",
        ExportQuery(product="Cisco 8865"),
        lambda w: w["product"] == "Cisco 8865",
    ),
    (
        "two filters together",
        ExportQuery(tags=("hq",), product="Cisco 8851"),
        lambda w: "hq" in w["tags"] and w["product"] == "Cisco 8851",
    ),
]


class TestExport:
    async def test_matches_the_admin_view_device_for_device(
        self, emulator: RunningEmulator, tmp_path: Path
    ) -> None:
        """Every device is one line, with its id, MAC, owner and tags as the org has
        them."""
        expected = await seed(emulator)

        result, lines = await export_to(emulator, tmp_path / "all.csv")

        assert result.devices == len(expected) == len(lines)
        by_id = {line["deviceId"]: line for line in lines}
        assert len(by_id) == len(lines)
        for wire in expected:
            line = by_id[wire["id"]]
            assert line["mac"] == mac_key(wire.get("mac"))
            assert (line["workspaceId"] or line["personId"]) == (
                wire.get("workspaceId") or wire.get("personId")
            )
            assert (line["tags"].split(";") if line["tags"] else []) == wire["tags"]
            assert line["productName"] == wire["product"]
            assert line["connectionStatus"] == wire["connectionStatus"]

    async def test_one_controller_paces_every_call(
        self,
        emulator: RunningEmulator,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """The first call's quick-retry client shares the export's rate limiter, so
        one controller sees every call the API's bucket counts."""
        await seed(emulator)
        before = emulator.stats()["requests_total"]
        seen = starts_by_limiter(monkeypatch)

        await export_to(emulator, tmp_path / "all.csv")

        assert list(seen.values()) == [emulator.stats()["requests_total"] - before]

    @pytest.mark.parametrize(
        ("query", "wanted"),
        [(query, wanted) for _, query, wanted in FILTERS],
        ids=[name for name, _, _ in FILTERS],
    )
    async def test_filter_gives_exactly_the_matching_devices(
        self,
        emulator: RunningEmulator,
        tmp_path: Path,
        query: ExportQuery,
        wanted: Callable[[Wire], bool],
    ) -> None:
        """Each filter exports the devices the API's filter matches, and only them."""
        devices = await seed(emulator)
        expected = {wire["id"] for wire in devices if wanted(wire)}

        _, lines = await export_to(emulator, tmp_path / "some.csv", query)

        assert expected  # the seed has devices for every filter
        assert {line["deviceId"] for line in lines} == expected

    async def test_follows_next_links_to_the_last_page(
        self, emulator: RunningEmulator, tmp_path: Path
    ) -> None:
        """With a small page every page is fetched in turn, and progress counts them."""
        devices = await seed(emulator)
        seen: list[ExportProgress] = []

        result, lines = await export_to(
            emulator, tmp_path / "paged.csv", page_size=4, on_progress=seen.append
        )

        pages = -(-len(devices) // 4)
        assert result.pages == pages
        assert [p.pages for p in seen] == list(range(1, pages + 1))
        assert [p.devices for p in seen][-1] == len(devices) == len(lines)

    async def test_asks_for_the_largest_page(
        self, start_emulator: Any, tmp_path: Path
    ) -> None:
        """By default each page asks for 1000 devices (max=1000), whatever the API's
        default page size (here 5)."""
        server = await start_emulator(page_size=5)
        devices = await seed(server, phones=20)
        since = len(server.requests())

        result, lines = await export_to(server, tmp_path / "big.csv")

        lists = [
            entry
            for entry in server.requests(since=since)
            if entry["route"] == "GET /v1/devices"
        ]
        assert [entry["query"].get("max") for entry in lists] == ["1000"]
        assert (result.pages, len(lines)) == (1, len(devices))

    async def test_owner_names_are_workspace_names_and_emails(
        self, emulator: RunningEmulator, tmp_path: Path
    ) -> None:
        """--owner-names fills ownerName: a workspace's name, a person's email."""
        await seed(emulator)
        names = {w["id"]: w["displayName"] for w in ORG["workspaces"]}
        names.update({p["id"]: p["emails"][0] for p in ORG["people"]})

        result, lines = await export_to(
            emulator, tmp_path / "named.csv", owner_names=True
        )

        assert result.owners_unnamed == 0
        for line in lines:
            owner = line["workspaceId"] or line["personId"]
            assert line["ownerName"] == names[owner]

    async def test_mac_rows_validate_as_a_manifest(
        self, emulator: RunningEmulator, tmp_path: Path
    ) -> None:
        """The phones of an export load as a manifest without a problem."""
        await seed(emulator)
        path = tmp_path / "seed.csv"

        await export_to(emulator, path, ExportQuery(type="phone"))
        manifest = load_manifest(path)

        with_mac = [row for row in manifest.rows if row.mac]
        assert len(with_mac) == 12
        assert [row.problems for row in with_mac if row.problems] == []
        assert {row.model for row in with_mac} == {"DMS Cisco 8851", "DMS Cisco 8865"}

    @pytest.mark.parametrize(("marked", "named"), [(True, [1]), (False, [1, 2])])
    async def test_devices_whose_tags_would_not_read_back_are_counted(
        self, emulator: RunningEmulator, tmp_path: Path, marked: bool, named: list[int]
    ) -> None:
        """A tag holding a separator never reads back; one starting with = does in
        a file that marks it as text (a CSV), not in one that does not."""
        async with ApiClient(settings_for(emulator)) as api:
            for n, tags in enumerate([["hq"], ["a,b"], ["=1+1"]]):
                device = await api.create_device(
                    mac=mac_of(n), model="DMS Cisco 8851", workspace_id=WORKSPACES[n]
                )
                await api.modify_tags(device.id, mode="replace", tags=tags)

        result, _ = await export_to(
            emulator,
            tmp_path / "t.csv",
            ExportQuery(type="phone"),
            marks_formulas=marked,
        )

        assert result.tags_not_read_back == len(named)
        assert list(result.tags_not_read_back_shown) == [mac_of(n) for n in named]

    async def test_every_device_once_under_faults(
        self, start_emulator: Any, tmp_path: Path
    ) -> None:
        """429s, 5xx and dropped connections are retried: each device exactly once."""
        server = await start_emulator()
        devices = await seed(server, phones=30)
        server.set_faults(rate_limit=40.0, burst=2, fault_rate=0.2, drop_rate=0.1)

        result, lines = await export_to(server, tmp_path / "faulty.csv", page_size=3)

        assert sorted(line["deviceId"] for line in lines) == sorted(
            wire["id"] for wire in devices
        )
        assert result.retries > 0

    async def test_refused_token_raises_before_any_line(
        self, emulator: RunningEmulator, tmp_path: Path
    ) -> None:
        """A refused token is an AuthError, and nothing was written."""
        await seed(emulator)
        lines: list[list[str | None]] = []

        with pytest.raises(AuthError):
            await export_devices(
                ExportQuery(), settings_for(emulator, token="wrong"), lines.append
            )

        assert lines == []

    async def test_a_list_that_keeps_failing_raises_its_own_error(self) -> None:
        """A page that fails even after retries raises the API error itself (not a
        task group around it), so the command can say what happened."""
        api = FakeDevicesApi(workspaces={"WS1"})
        for n in range(3):
            api.add_device(mac=mac_of(n), workspace_id="WS1")
        api.fail_before("list_devices", ServerError("down", status=503))
        lines: list[list[str | None]] = []
        settings = Settings(token="t", base_url="http://127.0.0.1:9/v1")

        with pytest.raises(ServerError, match="down"):
            await export_devices(ExportQuery(), settings, lines.append, api=api)

        assert lines == []
