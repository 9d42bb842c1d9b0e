"""
rules.py, the live checks' pure decisions: their words in full, and the org and owner
arithmetic behind "is this device already the row's own".
"""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioner.intake.manifest import RawTable, build_manifest
from provisioner.live.rules import (
    Answers,
    MacHolder,
    OwnerKey,
    OwnerLookup,
    Preflight,
    cell_text,
    decide,
    describe_owner,
    distinct_owners,
    header,
    holder_of,
    is_own_device,
    mac_batches,
    mac_message,
    owner_problems,
)
from provisioner.models import Device, Manifest, OwnerKind, Row, SupportedModel
from provisioner.webex.protocol import MacState

WS = "Y2lzY29zcGFyazovL3VzL1BMQUNFLzhmYmQyYjA4LWYwYmEtNWVjMi1iNDlhLWY1NjUwNThlZjZhNA"
MAC = "00AABB112233"


def manifest_of(columns: tuple[str, ...], *records: tuple[str, ...]) -> Manifest:
    table = RawTable(
        path=Path("m.csv"),
        sheet=None,
        columns=columns,
        records=[(n, cells) for n, cells in enumerate(records, start=2)],
    )
    return build_manifest(table)


class TestCells:
    def test_header_is_the_files_own_else_the_canonical_name(self) -> None:
        """A field's header is the one the file used, else a default, else itself."""
        manifest = manifest_of(("MAC Address", "Model", "Workspace ID"))

        assert header(manifest, "mac") == "MAC Address"
        assert header(manifest, "personId") == "personId"
        assert header(manifest, "tags") == "tags"

    def test_cell_text_of_a_field(self) -> None:
        """The stripped cell under the field's column; '' when there is none."""
        manifest = manifest_of(
            ("MAC Address", "Model", "Workspace ID"), (f" {MAC} ", "Cisco 8851", WS)
        )
        (row,) = manifest.rows
        short = Row(number=3, cells=(MAC,))

        assert cell_text(manifest, row, "mac") == MAC
        assert cell_text(manifest, row, "personId") == ""
        assert cell_text(manifest, short, "workspaceId") == ""


class TestOwnerWords:
    @pytest.mark.parametrize(
        ("kind", "name", "said"),
        [
            (OwnerKind.PERSON, "Ada", 'person "Ada" (id p-1)'),
            (OwnerKind.WORKSPACE, None, "workspace p-1"),
            (None, None, "owner p-1"),
            (None, "Lobby", 'owner "Lobby" (id p-1)'),
        ],
    )
    def test_describe_owner(
        self, kind: OwnerKind | None, name: str | None, said: str
    ) -> None:
        """Kind (or just "owner"), display name when known, and id."""
        assert describe_owner(kind, "p-1", name) == said

    def test_holder_of_a_device(self) -> None:
        """A device's holder: its id, owner kind and id, its org else the asked one."""
        on_person = Device(id="d1", person_id="p-1", org_id="org-a")
        on_place = Device(id="d2", workspace_id="w-1")
        on_none = Device(id="d3")

        assert holder_of(on_person, "org-b") == MacHolder(
            device_id="d1",
            owner_kind=OwnerKind.PERSON,
            owner_id="p-1",
            org_id="org-a",
        )
        assert holder_of(on_place, "org-b") == MacHolder(
            device_id="d2",
            owner_kind=OwnerKind.WORKSPACE,
            owner_id="w-1",
            org_id="org-b",
        )
        assert holder_of(on_none, None).owner_kind is None
        assert holder_of(Device(id="d4", product="Cisco 8865"), None).product == (
            "Cisco 8865"
        )


class TestOwnDevice:
    ROW = Row(number=2, cells=(), mac=MAC, workspace_id="w-1")

    @pytest.mark.parametrize(
        ("holder_org", "row_org", "default", "own"),
        [
            (None, None, None, True),
            ("org-a", None, None, True),
            ("org-a", "org-a", None, True),
            ("org-a", "org-b", None, False),
            ("org-a", None, "org-a", True),
            ("org-a", None, "org-b", False),
            (None, "org-b", None, True),
        ],
    )
    def test_same_owner_in_the_same_org(
        self,
        holder_org: str | None,
        row_org: str | None,
        default: str | None,
        own: bool,
    ) -> None:
        """The row's owner holds it, in the row's org (its own, else the default)."""
        row = Row(number=2, cells=(), mac=MAC, workspace_id="w-1", org_id=row_org)
        holder = MacHolder(device_id="d", owner_id="w-1", org_id=holder_org)

        assert is_own_device(row, holder, default) is own

    def test_another_owner_or_none_is_not_own(self) -> None:
        """Another owner id, or none known, is not the row's."""
        assert not is_own_device(
            self.ROW, MacHolder(device_id="d", owner_id="w-2"), None
        )
        assert not is_own_device(self.ROW, MacHolder(device_id="d"), None)


class TestMacMessage:
    @pytest.mark.parametrize(
        ("state", "holder", "message"),
        [
            (
                MacState(mac=MAC, state="UNAVAILABLE"),
                None,
                (
                    "this MAC is already registered, to a device this token cannot see "
                    "(another org, perhaps); release it there first, or correct the MAC"
                ),
            ),
            (
                MacState(mac=MAC, state="UNAVAILABLE"),
                MacHolder(
                    device_id="d9",
                    owner_kind=OwnerKind.PERSON,
                    owner_id="p-1",
                    owner_name="Ada",
                ),
                (
                    'this MAC is already registered to person "Ada" (id p-1) as device '
                    "d9; delete that device first (Control Hub, Devices) if it is to "
                    "move, or correct the MAC"
                ),
            ),
            (
                MacState(mac=MAC, state="INVALID", message="bad OUI"),
                None,
                (
                    "the API refuses this MAC as invalid (bad OUI); check it against the "
                    "label on the device"
                ),
            ),
            (
                MacState(mac=MAC, state="INVALID"),
                None,
                (
                    "the API refuses this MAC as invalid; check it against the label on "
                    "the device"
                ),
            ),
            (
                MacState(mac=MAC, state="DUPLICATE_IN_LIST"),
                None,
                (
                    "this MAC is listed more than once; each device needs its own row with "
                    "its own MAC"
                ),
            ),
            (
                MacState(mac=MAC, state="RESERVED", message="held"),
                None,
                "the API answered RESERVED for this MAC (held); check the MAC",
            ),
            (
                MacState(mac=MAC, state="INVALID"),
                MacHolder(device_id="d9"),
                (
                    "the API refuses this MAC as invalid; check it against the label on "
                    "the device"
                ),
            ),
        ],
    )
    def test_each_state_in_full(
        self, state: MacState, holder: MacHolder | None, message: str
    ) -> None:
        """Each validateMacs state says what it means and what to do."""
        assert mac_message(state, holder) == message


class TestOwnerProblems:
    COLUMNS = ("mac", "model", "Workspace ID", "Person ID", "orgId")

    def test_a_missing_person_in_a_named_org(self) -> None:
        """A 404 names the kind, the org the row names, and the fix."""
        manifest = manifest_of(self.COLUMNS, ("", "Cisco 8865", "", "p-1", "org-9"))
        (row,) = manifest.rows

        (problem,) = owner_problems(manifest, row, OwnerLookup(missing=True))

        assert (problem.column, problem.value, problem.message) == (
            "Person ID",
            "p-1",
            (
                "no person with this id exists in org org-9; check the id (copy it from "
                "Control Hub or the API), and that it is in the right column"
            ),
        )

    def test_a_refused_workspace_id(self) -> None:
        """A 400 quotes the API's words for the id."""
        manifest = manifest_of(self.COLUMNS, ("", "Cisco 8851", "w-1", "", ""))
        (row,) = manifest.rows

        (problem,) = owner_problems(manifest, row, OwnerLookup(refused="bad id"))

        assert (problem.column, problem.message) == (
            "Workspace ID",
            (
                "the API refuses this workspace id (bad id); check the id (copy it from "
                "Control Hub or the API)"
            ),
        )

    def test_a_missing_workspace_in_the_tokens_org(self) -> None:
        """Without an orgId the org is the token's: "in the org"."""
        manifest = manifest_of(self.COLUMNS, ("", "Cisco 8851", "w-1", "", ""))
        (row,) = manifest.rows

        (problem,) = owner_problems(manifest, row, OwnerLookup(missing=True))

        assert problem.message.startswith(
            "no workspace with this id exists in the org;"
        )


def test_decide_looks_the_mac_up_in_the_default_org() -> None:
    """A row without orgId is checked with the states found under the run's org."""
    manifest = manifest_of(("mac", "model", "workspaceId"), (MAC, "Cisco 8851", WS))
    answers = Answers(
        states={("org-run", MAC): MacState(mac=MAC, state="DUPLICATE_IN_LIST")}
    )

    checked = decide(manifest, answers, "org-run")

    assert [p.message for p in checked.live_problems[2]] == [
        (
            "this MAC is listed more than once; each device needs its own row with its "
            "own MAC"
        )
    ]


class TestDecideInTheRunsOrg:
    """A row without orgId is judged in the run's org (--org-id), for owner and MAC."""

    MANIFEST = manifest_of(("mac", "model", "workspaceId"), (MAC, "Cisco 8851", WS))

    def test_the_owner_is_looked_up_in_the_runs_org(self) -> None:
        answers = Answers(
            owners={
                OwnerKey(OwnerKind.WORKSPACE, WS, "org-run"): OwnerLookup(missing=True)
            }
        )

        checked = decide(self.MANIFEST, answers, "org-run")

        assert [(p.column, p.value, p.message) for p in checked.live_problems[2]] == [
            (
                "workspaceId",
                WS,
                (
                    "no workspace with this id exists in the org; check the id (copy it "
                    "from Control Hub or the API), and that it is in the right column"
                ),
            )
        ]

    def test_a_device_of_the_same_owner_id_in_another_org_is_not_the_rows(
        self,
    ) -> None:
        """Only a device in the run's org can be adopted: one the API places in
        another org is in use, whatever owner id it carries."""
        holder = MacHolder(
            device_id="d-9",
            owner_kind=OwnerKind.WORKSPACE,
            owner_id=WS,
            org_id="org-other",
        )
        answers = Answers(
            states={("org-run", MAC): MacState(mac=MAC, state="UNAVAILABLE")},
            holders={("org-run", MAC): holder},
        )

        checked = decide(self.MANIFEST, answers, "org-run")

        assert (checked.in_use, checked.adoptable) == (frozenset({2}), frozenset())

    def test_the_orgs_supported_models_are_handed_on(self) -> None:
        """The supportedDevices answer the checks read goes on to the run."""
        models = (SupportedModel(model="DMS Cisco 8851", display_name="Cisco 8851"),)

        checked = decide(self.MANIFEST, Answers(supported=models), "org-run")

        assert checked.supported == models
        assert checked.live_problems == {}


class TestMacBatches:
    ROWS = tuple(
        Row(number=n, cells=(), mac=f"00AABB00000{n}", workspace_id="w-1")
        for n in (2, 3, 4)
    )

    def test_a_batch_of_one_sends_each_mac_alone(self) -> None:
        assert mac_batches(self.ROWS, "org-run", size=1) == [
            ("org-run", ("00AABB000002",)),
            ("org-run", ("00AABB000003",)),
            ("org-run", ("00AABB000004",)),
        ]

    def test_a_batch_size_below_one_is_refused(self) -> None:
        with pytest.raises(ValueError, match="^batch size must be at least 1$"):
            mac_batches(self.ROWS, None, size=0)


def test_each_owner_is_looked_up_once_in_its_rows_org() -> None:
    """Owners of rows without orgId are looked up in the run's org, each once."""
    rows = [
        Row(number=2, cells=(), workspace_id="w-1"),
        Row(number=3, cells=(), workspace_id="w-1"),
        Row(number=4, cells=(), person_id="p-1", org_id="org-9"),
    ]

    assert distinct_owners(rows, "org-run") == [
        OwnerKey(OwnerKind.WORKSPACE, "w-1", "org-run"),
        OwnerKey(OwnerKind.PERSON, "p-1", "org-9"),
    ]


class TestAdoptedAsAnotherModel:
    """A device of the row's own owner is adoptable whatever its model; another model
    than the row says is a warning naming row, MAC and both models, not a problem."""

    MANIFEST = manifest_of(("mac", "model", "workspaceId"), (MAC, "8851", WS))

    def checked(self, product: str, owner: str = WS) -> Preflight:
        holder = MacHolder(
            device_id="d-1",
            owner_kind=OwnerKind.WORKSPACE,
            owner_id=owner,
            product=product,
        )
        answers = Answers(
            states={(None, MAC): MacState(mac=MAC, state="UNAVAILABLE")},
            holders={(None, MAC): holder},
        )
        return decide(self.MANIFEST, answers, None)

    def test_another_model_is_warned_of(self) -> None:
        checked = self.checked("Cisco 8865")

        assert (checked.adoptable, checked.live_problems) == (frozenset({2}), {})
        assert checked.other_models == {
            2: (
                f"row 2: MAC {MAC} is already registered to the row's owner as a "
                "Cisco 8865, but the row says 8851; a run adopts that device as it is "
                "(its model is not changed): correct the row's model, or delete that "
                "device first (Control Hub, Devices) if it is to be replaced"
            )
        }

    def test_the_same_model_is_not(self) -> None:
        assert self.checked("Cisco 8851").other_models == {}

    def test_a_device_held_elsewhere_is_a_problem_not_this_warning(self) -> None:
        checked = self.checked("Cisco 8865", owner="another-workspace")

        assert (checked.in_use, checked.other_models) == (frozenset({2}), {})
