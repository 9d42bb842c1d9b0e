"""
Live pre-flight: pure decisions on the API's answers, and the checks against the emulator.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from provisioner.intake.manifest import RawTable, build_manifest
from provisioner.live.preflight import (
    MacHolder,
    OwnerKey,
    OwnerLookup,
    distinct_owners,
    mac_batches,
    mac_problems,
    merge_problems,
    owner_problems,
    with_catalogue,
)
from provisioner.models import Manifest, OwnerKind, Problem
from provisioner.webex.protocol import MacState, SupportedModel

ORG = json.loads(
    resources.files("provisioner.emulator")
    .joinpath("data", "org.json")
    .read_text(encoding="utf-8")
)
WS = [w["id"] for w in ORG["workspaces"]]
PEOPLE = [p["id"] for p in ORG["people"]]
MISSING_WS = (
    "Y2lzY29zcGFyazovL3VzL1BMQUNFLzAwMDAwMDAwLTAwMDAtNDAwMC04MDAwLTAwMDAwMDAwMDAwMA"
)
HEADER = ("MAC Address", "Model", "Workspace ID", "Person ID", "Tags", "Password")


def manifest_of(*rows: tuple[str, ...], path: Path = Path("m.csv")) -> Manifest:
    """Build a manifest from cell rows as a file would give them (header = row 1)."""
    records = [(n, cells) for n, cells in enumerate(rows, start=2)]
    return build_manifest(
        RawTable(path=path, sheet=None, columns=HEADER, records=records)
    )


def supported(**changes: Any) -> SupportedModel:
    fields: dict[str, Any] = {
        "model": "DMS Cisco 8851",
        "display_name": "Cisco 8851",
        "managed_by": "CISCO",
        "supported_for": ("PEOPLE", "PLACE"),
        "onboarding_methods": ("MAC_ADDRESS", "ACTIVATION_CODE"),
    }
    fields.update(changes)
    return SupportedModel(**fields)


class TestGrouping:
    """Batches of MACs and the distinct owners to look up."""

    def test_mac_batches_are_distinct_and_bounded(self) -> None:
        """Each MAC goes once, in manifest order, at most `size` per call."""
        macs = [f"0011223344{n:02X}" for n in range(5)]
        manifest = manifest_of(
            *[(mac, "Cisco 8851", WS[0], "", "", "") for mac in macs],
        )

        batches = mac_batches(manifest.rows, None, size=2)

        assert batches == [
            (None, (macs[0], macs[1])),
            (None, (macs[2], macs[3])),
            (None, (macs[4],)),
        ]

    def test_mac_batches_group_by_org(self) -> None:
        """Rows of another org are validated in that org."""
        manifest = manifest_of(("001122334455", "Cisco 8851", WS[0], "", "", ""))
        row = manifest.rows[0]
        other = type(row)(number=3, cells=row.cells, mac="AABBCCDDEEFF", org_id="ORG-B")

        batches = mac_batches([row, other], "ORG-A")

        assert batches == [("ORG-A", ("001122334455",)), ("ORG-B", ("AABBCCDDEEFF",))]

    def test_each_owner_once(self) -> None:
        """Ten rows on two owners make two lookups, in order of first appearance."""
        rows = [("", "Cisco 8851", WS[n % 2], "", "", "") for n in range(10)]
        rows.append(("", "Cisco 8851", "", PEOPLE[0], "", ""))
        manifest = manifest_of(*rows)

        owners = distinct_owners(manifest.rows, None)

        assert owners == [
            OwnerKey(OwnerKind.WORKSPACE, WS[0]),
            OwnerKey(OwnerKind.WORKSPACE, WS[1]),
            OwnerKey(OwnerKind.PERSON, PEOPLE[0]),
        ]


class TestMacProblems:
    """validateMacs answers become problems on the MAC column."""

    def row(self) -> tuple[Manifest, Any]:
        manifest = manifest_of(("00:11:22:33:44:55", "Cisco 8851", WS[0], "", "", ""))
        return manifest, manifest.rows[0]

    def test_available_is_fine(self) -> None:
        """An AVAILABLE MAC makes no problem."""
        manifest, row = self.row()

        found = mac_problems(
            manifest, row, MacState(mac="001122334455", state="AVAILABLE"), None
        )

        assert found == ()

    def test_in_use_names_the_holder(self) -> None:
        """A MAC registered to another owner names that owner and says what to do."""
        manifest, row = self.row()
        holder = MacHolder(
            device_id="DEV-9",
            owner_kind=OwnerKind.WORKSPACE,
            owner_id=WS[5],
            owner_name="Denver Lobby 2",
        )
        state = MacState(mac="001122334455", state="UNAVAILABLE", error_code=5675)

        (problem,) = mac_problems(manifest, row, state, holder)

        assert problem.column == "MAC Address"
        assert problem.value == "00:11:22:33:44:55"
        assert 'workspace "Denver Lobby 2"' in problem.message
        assert "DEV-9" in problem.message
        assert "correct the MAC" in problem.message

    def test_in_use_by_own_owner_is_adoptable(self) -> None:
        """A MAC already registered to the row's own owner is no problem."""
        manifest, row = self.row()
        holder = MacHolder(
            device_id="DEV-1", owner_kind=OwnerKind.WORKSPACE, owner_id=WS[0]
        )
        state = MacState(mac="001122334455", state="UNAVAILABLE")

        assert mac_problems(manifest, row, state, holder) == ()

    def test_in_use_invisible_holder(self) -> None:
        """A MAC in use by a device the token cannot see says so."""
        manifest, row = self.row()
        state = MacState(mac="001122334455", state="UNAVAILABLE")

        (problem,) = mac_problems(manifest, row, state, None)

        assert "cannot see" in problem.message

    @pytest.mark.parametrize(
        ("state", "words"),
        [("INVALID", "refuses this MAC as invalid"), ("DUPLICATE_IN_LIST", "own row")],
    )
    def test_invalid_and_duplicate(self, state: str, words: str) -> None:
        """INVALID and DUPLICATE_IN_LIST each get a message that says what to do."""
        manifest, row = self.row()

        (problem,) = mac_problems(
            manifest, row, MacState(mac="001122334455", state=state), None
        )

        assert words in problem.message


class TestOwnerProblems:
    """Owner lookups become problems on the owner's column."""

    def test_missing_workspace(self) -> None:
        """A 404 names the workspace column and says to check the id."""
        manifest = manifest_of(("", "Cisco 8851", MISSING_WS, "", "", ""))

        (problem,) = owner_problems(
            manifest, manifest.rows[0], OwnerLookup(missing=True)
        )

        assert problem == Problem(
            "Workspace ID",
            MISSING_WS,
            "no workspace with this id exists in the org; check the id (copy it "
            "from Control Hub or the API), and that it is in the right column",
        )

    def test_refused_person_id(self) -> None:
        """A 400 on a person id passes the API's words on, on the person column."""
        manifest = manifest_of(("", "Cisco 8851", "", PEOPLE[0], "", ""))

        (problem,) = owner_problems(
            manifest, manifest.rows[0], OwnerLookup(refused="Invalid id")
        )

        assert problem.column == "Person ID"
        assert "Invalid id" in problem.message

    def test_found_owner_is_fine(self) -> None:
        """An owner that was found makes no problem."""
        manifest = manifest_of(("", "Cisco 8851", WS[0], "", "", ""))
        from provisioner.webex.protocol import Owner

        found = owner_problems(
            manifest, manifest.rows[0], OwnerLookup(owner=Owner(id=WS[0]))
        )

        assert found == ()


class TestCatalogueRefresh:
    """The offline model checks run again against the org's own list."""

    def test_model_the_org_lacks_is_flagged(self) -> None:
        """A model the bundled catalogue knows but the org does not is invalid live."""
        manifest = manifest_of(("", "Cisco 8851", WS[0], "", "", ""))
        assert manifest.rows[0].is_valid

        refreshed = with_catalogue(
            manifest, [supported(model="DMS Cisco 8865", display_name="Cisco 8865")]
        )

        (problem,) = refreshed.rows[0].problems
        assert problem.column == "Model"
        assert problem.message.startswith(
            "this org does not list this model among its supported devices: "
            'did you mean "Cisco 8865"?'
        )

    def test_model_only_the_org_knows_goes_through(self) -> None:
        """A model the bundled catalogue lacks but the org lists becomes valid."""
        manifest = manifest_of(("001122334455", "Cisco 9999", WS[0], "", "", ""))
        assert not manifest.rows[0].is_valid
        assert "validate --live" in manifest.rows[0].problems[0].message

        refreshed = with_catalogue(
            manifest, [supported(model="DMS Cisco 9999", display_name="Cisco 9999")]
        )

        assert refreshed.rows[0].problems == ()
        assert refreshed.rows[0].model == "DMS Cisco 9999"

    def test_roomos_rows_need_no_place_in_the_org_list(self) -> None:
        """A Room Kit stays valid against an org list of phones: its code names no model."""
        manifest = manifest_of(("", "Cisco Room Kit", WS[0], "", "", ""))

        refreshed = with_catalogue(manifest, [supported()])

        (row,) = refreshed.rows
        assert (row.problems, row.roomos, row.api_model) == ((), True, None)

    def test_a_mac_the_sheet_stored_as_a_number_stays_invalid(self) -> None:
        """The rebuild sees the cells the file held as numbers: a rounded number in
        the MAC column, invalid offline, must not become a valid MAC live (a device
        would be made with the wrong MAC)."""
        records = [(2, ("112233000000", "Cisco 8851", WS[0], "", "", ""))]
        manifest = build_manifest(
            RawTable(
                path=Path("m.xlsx"),
                sheet="Sheet",
                columns=HEADER,
                records=records,
                numbers={(2, 0): 112233000000.0},
            )
        )
        assert not manifest.rows[0].is_valid

        refreshed = with_catalogue(manifest, [supported()])

        (problem,) = refreshed.rows[0].problems
        assert "holds the number 112233000000" in problem.message
        assert refreshed.rows[0].mac is None

    def test_org_rules_replace_bundled_rules(self) -> None:
        """When the org says a model is activation-code only, a MAC row is flagged."""
        manifest = manifest_of(("001122334455", "Cisco 8851", WS[0], "", "", ""))

        refreshed = with_catalogue(
            manifest, [supported(onboarding_methods=("ACTIVATION_CODE",))]
        )

        (problem,) = refreshed.rows[0].problems
        assert problem.column == "MAC Address"
        assert "cannot be added by MAC address" in problem.message

    def test_passwords_survive_the_rebuild(self) -> None:
        """A third-party row with its password stays valid after the refresh."""
        third_party = supported(
            model="DMS Polycom VVX 411",
            display_name="Polycom VVX 411",
            managed_by="CUSTOMER",
            onboarding_methods=("MAC_ADDRESS",),
        )
        manifest = manifest_of(
            ("001122334455", "DMS Polycom VVX 411", WS[0], "", "", "s3cret-Pass")
        )

        refreshed = with_catalogue(manifest, [third_party])

        assert refreshed.rows[0].problems == ()
        assert refreshed.rows[0].password == "s3cret-Pass"
        assert "s3cret-Pass" not in refreshed.rows[0].cells

    def test_the_rebuild_keeps_the_sheet_and_every_cell_in_its_column(self) -> None:
        """A workbook's sheet, and the cells after a password column, come back as
        the file had them: the report is written from them."""
        third_party = supported(
            model="DMS Polycom VVX 411",
            display_name="Polycom VVX 411",
            managed_by="CUSTOMER",
            onboarding_methods=("MAC_ADDRESS",),
        )
        columns = ("MAC Address", "Model", "Workspace ID", "Password", "Tags", "Notes")
        cells = ("001122334455", "Polycom VVX 411", WS[0], "s3cret-Pass", "lobby", "2F")
        manifest = build_manifest(
            RawTable(
                path=Path("m.xlsx"),
                sheet="Devices",
                columns=columns,
                records=[(2, cells)],
            )
        )

        refreshed = with_catalogue(manifest, [third_party])

        (row,) = refreshed.rows
        assert refreshed.sheet == "Devices"
        assert row.problems == ()
        assert row.cells == manifest.rows[0].cells
        assert (row.password, row.tags) == ("s3cret-Pass", ("lobby",))


def test_merge_keeps_offline_problems_and_adds_live_ones() -> None:
    """Live problems are appended to a row's own; an identical one is not repeated."""
    manifest = manifest_of(("", "Cisco 88", WS[0], "", "", ""))
    offline = manifest.rows[0].problems[0]
    live = Problem("Workspace ID", WS[0], "no workspace")

    merged = merge_problems(manifest, {2: (offline, live)})

    assert merged.rows[0].problems == (offline, live)


# ---------------------------------------------------------------------------
# Against the emulator: every check with its row, and no write call made

READ_ONLY_ROUTES = {
    "POST /v1/telephony/config/devices/actions/validateMacs/invoke",
}
WORKSPACE_ROUTE = "GET /v1/workspaces/{workspaceId}"
PERSON_ROUTE = "GET /v1/people/{personId}"

IN_USE_ELSEWHERE = "0A0B0C0D0E01"
IN_USE_OWN = "0A0B0C0D0E02"


def seed_devices(server: Any) -> None:
    """Register two MACs straight in the emulator's store (no API call counted)."""
    store, now = server.state.store, server.state.clock.now()
    store.create_by_mac(
        {"mac": IN_USE_ELSEWHERE, "model": "DMS Cisco 8851", "workspaceId": WS[1]},
        now,
        400,
    )
    store.create_by_mac(
        {"mac": IN_USE_OWN, "model": "DMS Cisco 8851", "workspaceId": WS[0]}, now, 400
    )


def write_live_manifest(folder: Path) -> Path:
    """A manifest with one row per live problem, plus valid rows sharing owners."""
    rows = [
        ",".join(HEADER),
        f"{IN_USE_ELSEWHERE},Cisco 8851,{WS[0]},,,",  # 2: MAC held by WS[1]
        f"{IN_USE_OWN},Cisco 8851,{WS[0]},,,",  # 3: held by its own owner
        f"0A0B0C0D0E03,Cisco Room Kit,{WS[2]},,,",  # 4: a RoomOS device by MAC
        f"0A0B0C0D0E04,DMS Cisco 840,{WS[2]},,,",  # 5: the org: people only
        f"0A0B0C0D0E05,Cisco 8851,{MISSING_WS},,,",  # 6: owner does not exist
        f"0A0B0C0D0E06,DMS Polycom VVX 411,{WS[3]},,,",  # 7: third party, no password
        f"0A0B0C0D0E07,Cisco 8851,{WS[0]},,lobby,",  # 8: valid
        f"0A0B0C0D0E08,Cisco 8851,,{PEOPLE[0]},,",  # 9: valid
        f",Cisco 8865,,{PEOPLE[0]},,",  # 10: valid activation-code row
        f",Cisco 8865,{WS[2]},,,",  # 11: valid activation-code row
    ]
    path = folder / "live.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def writes_in(stats: dict[str, Any]) -> dict[str, dict[str, int]]:
    """The routes of every write call in the emulator's stats."""
    return {
        route: counts
        for route, counts in stats["by_route"].items()
        if not route.startswith("GET ") and route not in READ_ONLY_ROUTES
    }


def problems_by_row(manifest: Manifest) -> dict[int, list[Problem]]:
    return {row.number: list(row.problems) for row in manifest.rows if row.problems}


async def test_live_checks_against_the_emulator(emulator: Any, tmp_path: Path) -> None:
    """Each live problem lands on its row with what to do; no write call is made."""
    from provisioner.intake.manifest import load_manifest
    from provisioner.live.preflight import preflight
    from provisioner.settings import Settings
    from provisioner.webex.client import ApiClient

    seed_devices(emulator)
    manifest = load_manifest(write_live_manifest(tmp_path))
    settings = Settings(token=emulator.token, base_url=emulator.base_url)

    async with ApiClient(settings) as api:
        checked = await preflight(manifest, api)

    found = problems_by_row(checked.manifest)
    assert sorted(found) == [2, 4, 5, 6, 7]
    (held,) = found[2]
    assert held.column == "MAC Address"
    assert 'workspace "Denver Reception 1"' in held.message
    assert "correct the MAC" in held.message
    assert "RoomOS devices onboard with an activation code" in found[4][0].message
    # The bundled catalogue allows the 840 on a workspace; the org's list does not.
    assert manifest.rows[3].is_valid
    assert "only belong to a person" in found[5][0].message
    (missing,) = found[6]
    assert (missing.column, missing.value) == ("Workspace ID", MISSING_WS)
    assert "check the id" in missing.message
    assert "needs a password" in found[7][0].message
    assert checked.adoptable == frozenset({3})
    assert checked.in_use == frozenset({2})
    assert writes_in(emulator.stats()) == {}


async def test_each_owner_is_looked_up_once(emulator: Any, tmp_path: Path) -> None:
    """Distinct owners are read once each, however many rows name them."""
    from provisioner.intake.manifest import load_manifest
    from provisioner.live.preflight import preflight
    from provisioner.settings import Settings
    from provisioner.webex.client import ApiClient

    seed_devices(emulator)
    manifest = load_manifest(write_live_manifest(tmp_path))
    settings = Settings(token=emulator.token, base_url=emulator.base_url)

    async with ApiClient(settings) as api:
        await preflight(manifest, api)

    routes = emulator.stats()["by_route"]
    # WS[0], WS[1] (who holds row 2's MAC), WS[2], WS[3] and the missing one.
    assert sum(routes[WORKSPACE_ROUTE].values()) == 5
    assert sum(routes[PERSON_ROUTE].values()) == 1
    assert routes["GET /v1/telephony/config/supportedDevices"] == {"200": 1}
    assert routes[next(iter(READ_ONLY_ROUTES))] == {"200": 1}


async def test_catalogue_is_refreshed_from_the_org(
    emulator: Any, tmp_path: Path
) -> None:
    """A model the bundled catalogue knows but the org does not list is flagged."""
    import dataclasses

    from provisioner.intake.manifest import load_manifest
    from provisioner.live.preflight import preflight
    from provisioner.settings import Settings
    from provisioner.webex.client import ApiClient

    catalog = emulator.state.catalog
    listed = dict(catalog.supported_devices)
    listed["devices"] = [d for d in listed["devices"] if d["model"] != "DMS Cisco 8865"]
    emulator.state.catalog = dataclasses.replace(catalog, supported_devices=listed)
    manifest = load_manifest(write_live_manifest(tmp_path))
    assert manifest.rows[8].is_valid  # row 10: Cisco 8865, fine offline

    settings = Settings(token=emulator.token, base_url=emulator.base_url)
    async with ApiClient(settings) as api:
        checked = await preflight(manifest, api)

    found = problems_by_row(checked.manifest)
    assert [p.column for p in found[10]] == ["Model"]
    assert found[10][0].message.startswith(
        "this org does not list this model among its supported devices"
    )


async def test_refused_token_stops_before_anything_else(
    emulator: Any, tmp_path: Path
) -> None:
    """A 401 on the first call raises AuthError, and nothing else is called."""
    from provisioner.errors import AuthError
    from provisioner.intake.manifest import load_manifest
    from provisioner.live.preflight import preflight
    from provisioner.settings import Settings
    from provisioner.webex.client import ApiClient

    manifest = load_manifest(write_live_manifest(tmp_path))
    settings = Settings(token="not-the-token", base_url=emulator.base_url)

    async with ApiClient(settings) as api:
        with pytest.raises(AuthError):
            await preflight(manifest, api)

    assert emulator.stats()["requests_total"] == 1


async def test_token_without_telephony_write_scope_warns(
    start_emulator: Any, tmp_path: Path
) -> None:
    """Without the validateMacs scope the MAC check is skipped with a warning."""
    from provisioner.emulator import ALL_SCOPES
    from provisioner.intake.manifest import load_manifest
    from provisioner.live.preflight import preflight
    from provisioner.settings import Settings
    from provisioner.webex.client import ApiClient

    scopes = ALL_SCOPES - {"spark-admin:telephony_config_write"}
    server = await start_emulator(tokens={"read-only": scopes})
    manifest = load_manifest(write_live_manifest(tmp_path))
    settings = Settings(token="read-only", base_url=server.base_url)

    async with ApiClient(settings) as api:
        checked = await preflight(manifest, api)

    assert any("validateMacs" in w for w in checked.warnings)
    assert 6 in problems_by_row(checked.manifest)


async def test_supported_answer_can_be_handed_in(emulator: Any, tmp_path: Path) -> None:
    """A caller that already read supportedDevices (the dry run) saves that call."""
    from provisioner.intake.manifest import load_manifest
    from provisioner.live.preflight import preflight
    from provisioner.settings import Settings
    from provisioner.webex.client import ApiClient

    manifest = load_manifest(write_live_manifest(tmp_path))
    settings = Settings(token=emulator.token, base_url=emulator.base_url)

    async with ApiClient(settings) as api:
        models = await api.supported_devices()
        before = emulator.stats()["by_route"]
        checked = await preflight(manifest, api, supported=models)

    after = emulator.stats()["by_route"]
    route = "GET /v1/telephony/config/supportedDevices"
    assert after[route] == before[route]
    assert sorted(problems_by_row(checked.manifest)) == [4, 5, 6, 7]


# ---------------------------------------------------------------------------
# Through the CLI: provisioner validate MANIFEST --live


def _http(method: str, url: str, body: object | None = None, token: str = "") -> Any:
    import urllib.request

    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        raw = response.read()
    return json.loads(raw) if raw else None


@pytest.fixture(name="process_emulator", scope="module")
def _process_emulator() -> Any:
    """An emulator in its own process (the CLI runs its own event loop)."""
    from provisioner.emulator import run_in_subprocess

    with run_in_subprocess() as (_process, base_url):
        yield base_url


def _write_count(admin: str) -> int:
    routes = _http("GET", f"{admin}/stats")["by_route"]
    return sum(
        sum(counts.values())
        for route, counts in routes.items()
        if not route.startswith("GET ") and route not in READ_ONLY_ROUTES
    )


def test_validate_live_cli(process_emulator: str, tmp_path: Path) -> None:
    """validate --live prints each live problem with row and column, exits 1, writes nothing."""
    from click.testing import CliRunner

    from provisioner.cli import main
    from provisioner.emulator import DEFAULT_TOKEN

    admin = process_emulator.removesuffix("/v1") + "/_emulator"
    _http("POST", f"{admin}/reset")
    for mac, owner in ((IN_USE_ELSEWHERE, WS[1]), (IN_USE_OWN, WS[0])):
        body = {"mac": mac, "model": "DMS Cisco 8851", "workspaceId": owner}
        _http("POST", f"{process_emulator}/devices", body, DEFAULT_TOKEN)
    writes = _write_count(admin)
    path = write_live_manifest(tmp_path)

    result = CliRunner().invoke(
        main,
        ["validate", str(path), "--live", "--base-url", process_emulator],
        env={"WEBEX_ACCESS_TOKEN": DEFAULT_TOKEN},
    )

    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert any(
        line.startswith(f'row 2, column "MAC Address", value "{IN_USE_ELSEWHERE}"')
        and "Denver Reception 1" in line
        for line in lines
    )
    assert any(line.startswith('row 4, column "MAC Address"') for line in lines)
    assert any(line.startswith('row 5, column "Model"') for line in lines)
    assert any(
        line.startswith(f'row 6, column "Workspace ID", value "{MISSING_WS[:20]}')
        and "check the id" in line
        for line in lines
    )
    assert any(line.startswith('row 7, column "Password"') for line in lines)
    assert "10 rows, 5 valid, 5 invalid" in result.output
    assert f"live checks at {process_emulator}:" in result.output
    assert "a run takes that device as it is (created, if this rollout made it" in (
        result.output
    )
    assert _write_count(admin) == writes


def test_validate_live_refused_token(process_emulator: str, tmp_path: Path) -> None:
    """A refused token ends validate --live with exit 2, saying to check the token."""
    from click.testing import CliRunner

    from provisioner.cli import main

    token = "wrong-token-4f1d2c"
    result = CliRunner().invoke(
        main,
        [
            "validate",
            str(write_live_manifest(tmp_path)),
            "--live",
            "--base-url",
            process_emulator,
        ],
        env={"WEBEX_ACCESS_TOKEN": token},
    )

    assert result.exit_code == 2
    assert "check the token" in result.output
    assert token not in result.output


def test_validate_live_clean_manifest(process_emulator: str, tmp_path: Path) -> None:
    """A manifest the org accepts passes --live with exit 0."""
    from click.testing import CliRunner

    from provisioner.cli import main
    from provisioner.emulator import DEFAULT_TOKEN

    path = tmp_path / "ok.csv"
    path.write_text(
        "mac,model,workspaceId,personId\n"
        f"0C0C0C0C0C01,Cisco 8851,{WS[20]},\n"
        f",Cisco 8865,,{PEOPLE[20]}\n",
        encoding="utf-8",
    )

    result = CliRunner().invoke(
        main,
        ["validate", str(path), "--live", "--base-url", process_emulator],
        env={"WEBEX_ACCESS_TOKEN": DEFAULT_TOKEN},
    )

    assert result.exit_code == 0, result.output
    assert "2 rows, 2 valid, 0 invalid" in result.output
    assert "owners: 2 looked up, 0 not found" in result.output


async def test_a_device_of_another_model_is_adoptable_with_a_warning(
    emulator: Any, tmp_path: Path
) -> None:
    """The org holds the row's MAC for the row's owner as a Cisco 8865; the row says
    8851: the row stays valid and adoptable, and a warning names row, MAC and both."""
    from provisioner.intake.manifest import load_manifest
    from provisioner.live.preflight import preflight
    from provisioner.settings import Settings
    from provisioner.webex.client import ApiClient

    store, now = emulator.state.store, emulator.state.clock.now()
    store.create_by_mac(
        {"mac": IN_USE_OWN, "model": "DMS Cisco 8865", "workspaceId": WS[0]}, now, 400
    )
    store.create_by_mac(
        {"mac": IN_USE_ELSEWHERE, "model": "DMS Cisco 8851", "workspaceId": WS[0]},
        now,
        400,
    )
    path = tmp_path / "m.csv"
    path.write_text(
        "mac,model,workspaceId\n"
        f"{IN_USE_OWN},8851,{WS[0]}\n"
        f"{IN_USE_ELSEWHERE},Cisco 8851,{WS[0]}\n",
        encoding="utf-8",
    )
    settings = Settings(token=emulator.token, base_url=emulator.base_url)

    async with ApiClient(settings) as api:
        checked = await preflight(load_manifest(path), api)

    assert checked.adoptable == frozenset({2, 3})
    assert problems_by_row(checked.manifest) == {}
    assert list(checked.other_models) == [2]
    assert checked.other_models[2].startswith(
        f"row 2: MAC {IN_USE_OWN} is already registered to the row's owner as a "
        "Cisco 8865, but the row says 8851;"
    )
    assert writes_in(emulator.stats()) == {}


def test_validate_live_warns_of_another_model(
    process_emulator: str, tmp_path: Path
) -> None:
    """validate --live: exit 0 (the row is valid), with the model warning printed."""
    from click.testing import CliRunner

    from provisioner.cli import main
    from provisioner.emulator import DEFAULT_TOKEN

    admin = process_emulator.removesuffix("/v1") + "/_emulator"
    _http("POST", f"{admin}/reset")
    body = {"mac": IN_USE_OWN, "model": "DMS Cisco 8865", "workspaceId": WS[0]}
    _http("POST", f"{process_emulator}/devices", body, DEFAULT_TOKEN)
    path = tmp_path / "m.csv"
    path.write_text(f"mac,model,workspaceId\n{IN_USE_OWN},Cisco 8851,{WS[0]}\n")

    result = CliRunner().invoke(
        main,
        ["validate", str(path), "--live", "--base-url", process_emulator],
        env={"WEBEX_ACCESS_TOKEN": DEFAULT_TOKEN},
    )

    assert result.exit_code == 0, result.output
    assert (
        f"  warning: row 2: MAC {IN_USE_OWN} is already registered to the row's owner "
        "as a Cisco 8865, but the row says Cisco 8851; a run adopts that device as it "
        "is (its model is not changed)"
    ) in result.output
