"""
validation.py on tables built in the test: the wording of its problems, the masked
password, cells past the header and MACs listed twice.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from built_rows import PATH, rows_of

from provisioner.errors import MissingColumnError
from provisioner.intake.catalogue import Catalogue, load_catalogue
from provisioner.intake.manifest import PASSWORD_MASK, RawTable, build_manifest
from provisioner.intake.validation import marked_columns
from provisioner.live.rules import with_catalogue
from provisioner.models import SupportedModel

WS = "Y2lzY29zcGFyazovL3VzL1BMQUNFLzhmYmQyYjA4LWYwYmEtNWVjMi1iNDlhLWY1NjUwNThlZjZhNA"
MAC_TEXT = "00:AA:BB:11:22:55"


class TestUnknownModel:
    def test_bundled_catalogue_suggests_and_points_at_the_live_check(self) -> None:
        """A typo gets the closest names, joined "A", "B" or "C", then the advice."""
        (row,) = rows_of(("mac", "model", "workspaceId"), ("", "Cisco 88511", WS))
        names = load_catalogue().suggest("Cisco 88511")
        quoted = [f'"{name}"' for name in names]
        options = ", ".join(quoted[:-1]) + " or " + quoted[-1]

        (problem,) = row.problems
        assert len(names) > 1
        assert problem.message == (
            f"not a model the bundled catalogue knows: did you mean {options}? "
            "Otherwise `provisioner validate --live` checks it against the org's own "
            "list of supported devices"
        )

    def test_bundled_catalogue_without_a_suggestion(self) -> None:
        """A name like no model at all points at the template's Models list."""
        (row,) = rows_of(("mac", "model", "workspaceId"), ("", "Toaster 3000", WS))

        (problem,) = row.problems
        assert problem.message == (
            "not a model the bundled catalogue knows: use a model name from the "
            'Models list of manifests/template.xlsx (for example "Cisco 8851"); '
            "`provisioner validate --live` checks it against the org's own list of "
            "supported devices"
        )

    def test_an_orgs_list_says_so(self) -> None:
        """Checked against the org's own list: the org lacks it; ask its admin."""
        org = Catalogue.from_supported(
            [SupportedModel(model="DMS Cisco 8851", display_name="Cisco 8851")]
        )
        (near, far) = rows_of(
            ("mac", "model", "workspaceId"),
            ("", "Cisco 8852", WS),
            ("", "Toaster 3000", WS),
            catalogue=org,
        )

        advice = "correct the model, or ask the org's admin which models it supports"
        head = "this org does not list this model among its supported devices"
        assert near.problems[0].message == (
            f'{head}: did you mean "Cisco 8851"? Otherwise {advice}'
        )
        assert far.problems[0].message == f"{head}: {advice}"

    def test_a_product_listed_as_another_is_named_not_mapped(self) -> None:
        """An 8851NR row is told what it is, with no model offered in its place."""
        (row,) = rows_of(("mac", "model", "workspaceId"), ("", "Cisco 8851NR", WS))

        (problem,) = row.problems
        assert problem.message == (
            "not a model the bundled catalogue knows: this is the Cisco IP Phone 8851 "
            "No Radio variant (CP-8851NR), a product of its own, not the Cisco 8851, "
            "and neither Cisco's list of Webex Calling phones nor its list of 8800 "
            "Series phones with Multiplatform Firmware names it, so no other model is "
            "offered in its place; `provisioner validate --live` checks it against the "
            "org's own list of supported devices"
        )


class TestCells:
    def test_the_password_is_masked_and_the_next_cell_kept(self) -> None:
        """The password cell shows the mask; the column after it keeps its text."""
        (row,) = rows_of(
            ("mac", "model", "workspaceId", "password", "notes"),
            ("00AABB112244", "Polycom VVX 411", WS, "Sip-pass-77", "lobby desk"),
        )

        assert row.problems == ()
        assert row.cells == (
            "00AABB112244",
            "Polycom VVX 411",
            WS,
            PASSWORD_MASK,
            "lobby desk",
        )
        assert row.password == "Sip-pass-77"

    def test_a_short_password_is_left_to_the_api(self) -> None:
        """The reference gives no length rule for the password: none is invented."""
        (row,) = rows_of(
            ("mac", "model", "workspaceId", "password"),
            ("00AABB112244", "Polycom VVX 411", WS, "abc"),
        )

        assert row.problems == ()
        assert row.password == "abc"

    @pytest.mark.parametrize(("width", "letter"), [(3, "D"), (26, "AA"), (27, "AB")])
    def test_a_cell_past_the_header_is_named_by_its_column_letter(
        self, width: int, letter: str
    ) -> None:
        """Column letters go past Z: AA after Z, then AB."""
        # Cells under an empty header are the ones a shifted row pushed out.
        columns = ("mac", "model", "workspaceId") + ("",) * (width - 2)
        cells = ("", "Cisco 8851", WS) + ("",) * (width - 3) + ("stray",)

        (row,) = rows_of(columns, cells)

        (problem,) = row.problems
        assert (problem.column, problem.value) == (
            f"column {letter} (no header)",
            "stray",
        )
        assert problem.message == (
            "this row has more cells than the header has columns; a value probably "
            "contains an unquoted comma: put double quotes around it"
        )


def test_every_copy_of_a_mac_is_flagged_naming_the_others() -> None:
    """Rows with one MAC each name the other rows; code rows between do not stop it."""
    rows = rows_of(
        ("MAC Address", "model", "workspaceId"),
        ("", "Cisco 8851", WS),
        ("00AABB112233", "Cisco 8851", WS),
        ("", "Cisco 8851", WS),
        ("00:aa:bb:11:22:33", "Cisco 8851", WS),
    )

    flagged = {
        r.number: [(p.column, p.value, p.message) for p in r.problems] for r in rows
    }
    message = (
        "MAC 00AABB112233 is also on row {}; a device can be listed once: delete the "
        "extra rows or correct the MAC"
    )
    assert flagged == {
        2: [],
        3: [("MAC Address", "00AABB112233", message.format(5))],
        4: [],
        5: [("MAC Address", "00:aa:bb:11:22:33", message.format(3))],
    }


def test_a_mac_on_a_row_elsewhere_in_the_run_is_flagged_and_stays_so() -> None:
    """A MAC the run's rows outside the table hold (one org's report: the combined
    report's other rows) is a duplicate, named as any other, and still one when the
    rows are checked again against an org's models; a row of the table's own
    number elsewhere is the same row, not another."""
    table = RawTable(
        path=PATH,
        sheet=None,
        columns=("mac", "model", "workspaceId"),
        records=[
            (5, ("00AABB000005", "Cisco 8851", WS)),
            (6, ("00AABB000006", "Cisco 8851", WS)),
        ],
    )
    elsewhere = {"00AABB000005": (2, 5), "00AABB000006": (6,)}

    manifest = build_manifest(table, elsewhere=elsewhere)
    models = [SupportedModel(model="DMS Cisco 8851", display_name="Cisco 8851")]
    again = with_catalogue(manifest, models)

    message = (
        "MAC 00AABB000005 is also on row 2; a device can be listed once: delete the "
        "extra rows or correct the MAC"
    )
    for rows in (manifest.rows, again.rows):
        duplicates = [
            [p.message for p in r.problems if "is also on row" in p.message]
            for r in rows
        ]
        assert duplicates == [[message], []]


@pytest.mark.parametrize(("below", "found"), [(10, True), (11, False)])
def test_a_header_below_the_top_is_found_within_ten_rows(
    below: int, found: bool
) -> None:
    """A real header in the first ten rows under the top row is named; further down,
    the plain missing-column message stands."""
    filler = [("title", "", "")] * (below - 1)
    table = RawTable(
        path=PATH,
        sheet=None,
        columns=("Device list", "", ""),
        records=[
            (n, cells)
            for n, cells in enumerate(
                [*filler, ("MAC", "Model", "Workspace ID")], start=2
            )
        ],
    )

    with pytest.raises(MissingColumnError) as caught:
        build_manifest(table)

    assert ("seems to be row" in str(caught.value)) is found


def org_of(**fields: object) -> Catalogue:
    """An org listing one model, "Phone X", with the given onboarding facts."""
    model = SupportedModel(model="DMS Phone X", display_name="Phone X", **fields)  # type: ignore[arg-type]
    return Catalogue.from_supported([model])


class TestModelFit:
    """What a model supports, checked against the row, in full words."""

    def problems(
        self, catalogue: Catalogue, columns: tuple[str, ...], cells: tuple[str, ...]
    ) -> list[tuple[str, str, str]]:
        (row,) = rows_of(columns, cells, catalogue=catalogue)
        return [(p.column, p.value, p.message) for p in row.problems]

    def test_a_mac_for_a_code_only_model(self) -> None:
        catalogue = org_of(onboarding_methods=("ACTIVATION_CODE",))

        assert self.problems(
            catalogue, ("MAC", "Model", "workspaceId"), (MAC_TEXT, "Phone X", WS)
        ) == [
            (
                "MAC",
                MAC_TEXT,
                (
                    "the Phone X cannot be added by MAC address; clear the MAC to get an "
                    "activation code for it instead"
                ),
            )
        ]

    @pytest.mark.parametrize(
        ("columns", "cells", "column", "value"),
        [
            (("MAC", "Model", "workspaceId"), ("", "Phone X", WS), "MAC", ""),
            (("Model", "workspaceId"), ("Phone X", WS), "Model", "Phone X"),
        ],
    )
    def test_no_mac_for_a_mac_only_model(
        self,
        columns: tuple[str, ...],
        cells: tuple[str, ...],
        column: str,
        value: str,
    ) -> None:
        """Named on the MAC column, or on the model's when the file has none."""
        catalogue = org_of(onboarding_methods=("MAC_ADDRESS",))

        assert self.problems(catalogue, columns, cells) == [
            (
                column,
                value,
                (
                    "the Phone X can only be added by MAC address (it takes no activation "
                    "code); fill in its MAC"
                ),
            )
        ]

    @pytest.mark.parametrize(
        ("owner_column", "owner"),
        [("workspaceId", WS), ("workspace", "Lobby")],
    )
    def test_a_person_only_model_on_a_workspace(
        self, owner_column: str, owner: str
    ) -> None:
        catalogue = org_of(
            onboarding_methods=("ACTIVATION_CODE",), supported_for=("PEOPLE",)
        )

        found = self.problems(
            catalogue, ("Device Model", owner_column), ("Phone X", owner)
        )

        assert found == [
            (
                "Device Model",
                "Phone X",
                (
                    "the Phone X can only belong to a person, not to a workspace; name a "
                    "person (personId or personEmail) instead, or pick another model"
                ),
            )
        ]

    @pytest.mark.parametrize(
        ("owner_column", "owner"),
        [("personId", "p-1"), ("personEmail", "ada@example.com")],
    )
    def test_a_workspace_only_model_on_a_person(
        self, owner_column: str, owner: str
    ) -> None:
        catalogue = org_of(
            onboarding_methods=("ACTIVATION_CODE",), supported_for=("PLACE",)
        )

        found = self.problems(
            catalogue, ("Device Model", owner_column), ("Phone X", owner)
        )

        assert found == [
            (
                "Device Model",
                "Phone X",
                (
                    "the Phone X can only belong to a workspace, not to a person; name a "
                    "workspace (workspaceId or workspace) instead, or pick another model"
                ),
            )
        ]

    @pytest.mark.parametrize(
        ("columns", "cells", "column", "value"),
        [
            (
                ("mac", "Model", "workspaceId", "SIP Password"),
                (MAC_TEXT, "Phone X", WS, ""),
                "SIP Password",
                "",
            ),
            (
                ("mac", "Model", "workspaceId"),
                (MAC_TEXT, "Phone X", WS),
                "Model",
                "Phone X",
            ),
        ],
    )
    def test_a_third_party_phone_without_its_password(
        self,
        columns: tuple[str, ...],
        cells: tuple[str, ...],
        column: str,
        value: str,
    ) -> None:
        """Named on the password column, or on the model's when there is none."""
        catalogue = org_of(onboarding_methods=("MAC_ADDRESS",), managed_by="CUSTOMER")

        assert self.problems(catalogue, columns, cells) == [
            (
                column,
                value,
                (
                    "the Phone X is a third-party device and needs a password (its SIP "
                    "password): add a password column and fill it in"
                ),
            )
        ]


def webex_id(kind: str) -> str:
    """A Webex id of ``kind`` (PEOPLE, PLACE, ORGANIZATION), as the API encodes it."""
    uri = f"ciscospark://us/{kind}/8fbd2b08-f0ba-5ec2-b49a-f565058ef6a4"
    return base64.urlsafe_b64encode(uri.encode()).decode().rstrip("=")


class TestRowChecks:
    """Row checks the mutation audit found unpinned (docs/mutation-survivors.md)."""

    @pytest.mark.parametrize(
        ("column", "cell", "message"),
        [
            (
                "workspaceId",
                webex_id("PEOPLE"),
                (
                    "this is the id of a people, not a workspaceId; move it to the "
                    "personId column"
                ),
            ),
            (
                "orgId",
                webex_id("PLACE"),
                (
                    "this is the id of a place, not a orgId; move it to the workspaceId "
                    "column"
                ),
            ),
        ],
    )
    def test_an_id_of_the_wrong_kind_is_named_on_its_column(
        self, column: str, cell: str, message: str
    ) -> None:
        """A person's id in the workspaceId column, a workspace's in orgId: the row
        names that column and where the id belongs."""
        owner = () if column == "workspaceId" else (WS,)
        columns = ("model", column) + (("workspaceId",) if owner else ())

        (row,) = rows_of(columns, ("Cisco 8851", cell, *owner))

        assert [(p.column, p.value, p.message) for p in row.problems] == [
            (column, cell, message)
        ]

    def test_a_password_may_start_with_an_equals_sign(self) -> None:
        """Only a password may start with "=": it is a password, not a formula."""
        catalogue = org_of(onboarding_methods=("MAC_ADDRESS",), managed_by="CUSTOMER")

        (row,) = rows_of(
            ("mac", "model", "workspaceId", "password"),
            (MAC_TEXT, "Phone X", WS, "=Sip-pass-77"),
            catalogue=catalogue,
        )

        assert row.problems == ()
        assert row.password == "=Sip-pass-77"

    def test_a_formula_in_the_mac_column_is_that_problem_and_a_missing_mac(
        self,
    ) -> None:
        """A formula MAC counts as no MAC: a MAC-only model then asks for one, with
        the emptied cell shown empty, and no "not a MAC" on top."""
        catalogue = org_of(onboarding_methods=("MAC_ADDRESS",))

        (row,) = rows_of(
            ("MAC", "Model", "workspaceId"), ("=A1", "Phone X", WS), catalogue=catalogue
        )

        assert [(p.column, p.value, p.message) for p in row.problems] == [
            (
                "MAC",
                "=A1",
                (
                    "this cell holds a formula that was never calculated, not a value; "
                    "replace it with its value (copy the column, then Paste Special → "
                    "Values)"
                ),
            ),
            (
                "MAC",
                "",
                (
                    "the Phone X can only be added by MAC address (it takes no activation "
                    "code); fill in its MAC"
                ),
            ),
        ]
        assert row.mac is None

    def test_a_mac_without_a_model_names_the_empty_model_cell(self) -> None:
        (row,) = rows_of(("mac", "model", "workspaceId"), (MAC_TEXT, "", WS))

        assert [(p.column, p.value, p.message) for p in row.problems] == [
            (
                "model",
                "",
                (
                    "a device added by MAC needs its model: fill it in (e.g. Cisco 8851), "
                    "or clear the MAC to get an activation code"
                ),
            )
        ]

    def test_a_sheet_without_a_tags_column_gives_no_tags(self) -> None:
        (row,) = rows_of(("mac", "model", "workspaceId"), (MAC_TEXT, "Cisco 8851", WS))

        assert (row.problems, row.tags) == ((), ())

    def test_a_workbook_column_without_a_header_is_no_shifted_row(self) -> None:
        """In a CSV a cell under no header means an unquoted comma; a workbook keeps
        its cells in their columns, so a note there is only a note."""
        table = RawTable(
            path=Path("m.xlsx"),
            sheet="Devices",
            columns=("mac", "model", "workspaceId", ""),
            records=[(2, (MAC_TEXT, "Cisco 8851", WS, "spare desk"))],
        )

        (row,) = build_manifest(table).rows

        assert row.problems == ()
        assert row.mac == "00AABB112255"

    def test_a_mac_listed_twice_after_a_single_one_is_flagged(self) -> None:
        """The check goes through every MAC: one listed once before does not end it."""
        rows = rows_of(
            ("mac", "model", "workspaceId"),
            ("00AABB000001", "Cisco 8851", WS),
            ("00AABB000002", "Cisco 8851", WS),
            ("00AABB000002", "Cisco 8851", WS),
        )

        assert [[p.message for p in r.problems] for r in rows] == [
            [],
            [
                (
                    "MAC 00AABB000002 is also on row 4; a device can be listed once: "
                    "delete the extra rows or correct the MAC"
                )
            ],
            [
                (
                    "MAC 00AABB000002 is also on row 3; a device can be listed once: "
                    "delete the extra rows or correct the MAC"
                )
            ],
        ]

    def test_each_row_s_id_is_checked_on_its_own(self) -> None:
        """A good workspaceId on one row does not vouch for another row's."""
        person = webex_id("PEOPLE")

        good, bad = rows_of(
            ("model", "workspaceId"), ("Cisco 8851", WS), ("Cisco 8851", person)
        )

        assert good.problems == ()
        assert [(p.column, p.value) for p in bad.problems] == [("workspaceId", person)]

    def test_a_header_without_an_owner_column_names_the_file(self) -> None:
        table = RawTable(
            path=Path("sites/denver.csv"),
            sheet=None,
            columns=("mac", "model"),
            records=[(2, (MAC_TEXT, "Cisco 8851"))],
        )

        with pytest.raises(MissingColumnError) as caught:
            build_manifest(table)

        assert str(caught.value).startswith(
            f"{Path('sites/denver.csv')}: no owner (workspaceId, personId, workspace "
            "or personEmail) column in the header row."
        )

    def test_a_title_above_the_header_is_quoted_in_full(self) -> None:
        """The message quotes every cell of the title row and says what to delete."""
        table = RawTable(
            path=PATH,
            sheet=None,
            columns=("Device list", "March 2026", ""),
            records=[(2, ("MAC", "Model", "Workspace ID"))],
        )

        with pytest.raises(MissingColumnError) as caught:
            build_manifest(table)

        assert str(caught.value) == (
            f"{PATH}: the header must be the first row, but it seems to be row 2; the "
            'row above it holds "Device list", "March 2026" (a title?). Delete the '
            "rows above the header and run again"
        )

    def test_a_workbook_with_numeric_macs_still_names_a_bad_text_mac(self) -> None:
        """A sheet holding one MAC as a number (checked as such) still says what is
        wrong with another row's MAC typed as text."""
        table = RawTable(
            path=Path("m.xlsx"),
            sheet="Devices",
            columns=("mac", "model", "workspaceId"),
            records=[
                (2, ("112233445566", "Cisco 8851", WS)),
                (3, ("AA:BB:CC:DD:EE:XX", "Cisco 8851", WS)),
            ],
            numbers={(2, 0): 112233445566.0},
        )

        good, bad = build_manifest(table).rows

        assert (good.mac, good.problems) == ("112233445566", ())
        assert [(p.column, p.value, p.message) for p in bad.problems] == [
            (
                "mac",
                "AA:BB:CC:DD:EE:XX",
                (
                    "not a MAC address: 'X' is not a hex digit; a MAC is 12 hex digits "
                    "(0-9, A-F), e.g. AA:BB:CC:DD:EE:FF"
                ),
            )
        ]

    def test_an_owner_id_on_many_rows_belongs_to_each(self) -> None:
        """The second row naming a person or workspace by id keeps that id too."""
        person = webex_id("PEOPLE")

        rows = rows_of(
            ("model", "workspaceId", "personId"),
            ("Cisco 8851", "", person),
            ("Cisco 8851", "", person),
            ("Cisco 8851", WS, ""),
            ("Cisco 8851", WS, ""),
        )

        assert [(r.person_id, r.workspace_id, r.problems) for r in rows] == [
            (person, None, ()),
            (person, None, ()),
            (None, WS, ()),
            (None, WS, ()),
        ]

    @pytest.mark.parametrize(
        ("column", "cell"),
        [
            ("tags", "#N/A"),
            ("mac", "#N/A"),
            ("model", "#REF!"),
            ("workspace", "#VALUE!"),
            ("orgId", "#n/a"),
        ],
    )
    def test_a_spreadsheet_error_in_a_used_column_is_that_problem(
        self, column: str, cell: str
    ) -> None:
        """A failed lookup (#N/A) is never a value: as a tag it would be applied to
        the device, as a workspace name looked up in the org."""
        values = {"mac": MAC_TEXT, "model": "Cisco 8851", "workspaceId": WS}
        if column == "workspace":
            del values["workspaceId"]
        values[column] = cell
        columns = tuple(values)

        (row,) = rows_of(columns, tuple(values.values()))

        assert [(p.column, p.value) for p in row.problems][:1] == [(column, cell)]
        assert row.problems[0].message.startswith(
            f"this cell holds the spreadsheet error {cell}: its formula failed"
        )
        assert row.tags == ()

    def test_a_tag_may_start_with_a_hash_and_other_columns_keep_errors(self) -> None:
        """Only a whole error value is one: "#floor-1" is a tag, and #N/A in a column
        the tool does not use is carried to the report as it is."""
        (row,) = rows_of(
            ("mac", "model", "workspaceId", "tags", "note"),
            (MAC_TEXT, "Cisco 8851", WS, "#floor-1", "#N/A"),
        )

        assert row.problems == ()
        assert row.tags == ("#floor-1",)
        assert row.cells[-1] == "#N/A"

    def test_a_csv_cell_marked_as_text_reads_as_its_value(self) -> None:
        """A CSV export writes a tag "=1+1" as '=1+1 (so a spreadsheet shows it, not
        runs it): the manifest reads the tag, not a formula nor the mark; a column
        the tool does not use keeps the cell as written."""
        (row,) = rows_of(
            ("mac", "model", "workspaceId", "tags", "displayName"),
            (MAC_TEXT, "Cisco 8851", WS, "'=1+1;hq", "'@Lobby"),
        )

        assert row.problems == ()
        assert row.tags == ("=1+1", "hq")
        assert row.cells[-1] == "'@Lobby"

    def test_the_marked_columns_are_every_fields_but_the_passwords(self) -> None:
        """The columns read without the text mark: those the tool uses, not the
        password (a password may start with '=), nor a column it carries."""
        fields = {"mac": 0, "model": 1, "tags": 3, "password": 4, "location": 6}

        assert marked_columns(fields) == frozenset({0, 1, 3, 6})

    def test_an_xlsx_cell_keeps_a_leading_quote(self) -> None:
        """An XLSX cell is text already: a ' typed before = is part of the value."""
        table = RawTable(
            path=Path("m.xlsx"),
            sheet="Sheet1",
            columns=("mac", "model", "workspaceId", "tags"),
            records=[(2, (MAC_TEXT, "Cisco 8851", WS, "'=1+1"))],
        )

        (row,) = build_manifest(table).rows

        assert row.tags == ("'=1+1",)

    def test_formulas_are_listed_in_the_sheets_column_order(self) -> None:
        """Problems read left to right, as the sheet shows the columns."""
        (row,) = rows_of(("workspaceId", "model", "mac"), ("=B2", "Cisco 8851", "=C2"))

        assert [(p.column, p.value) for p in row.problems][:2] == [
            ("workspaceId", "=B2"),
            ("mac", "=C2"),
        ]

    def test_a_row_without_a_known_model_is_no_roomos_row(self) -> None:
        """Without a model, or with one no catalogue knows, a row is not taken for
        a RoomOS device (whose code would name no model)."""
        no_model, unknown = rows_of(
            ("mac", "model", "workspaceId"),
            ("", "", WS),
            ("", "Toaster 3000", WS),
        )

        assert (no_model.model, no_model.roomos) == (None, False)
        assert (unknown.model, unknown.roomos) == (None, False)
