"""
validation.py on tables built in the test: the wording of its problems, the masked
password, cells past the header and MACs listed twice.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioner.errors import MissingColumnError
from provisioner.intake.catalogue import Catalogue, load_catalogue
from provisioner.intake.manifest import PASSWORD_MASK, RawTable, build_manifest
from provisioner.models import Row, SupportedModel

WS = "Y2lzY29zcGFyazovL3VzL1BMQUNFLzhmYmQyYjA4LWYwYmEtNWVjMi1iNDlhLWY1NjUwNThlZjZhNA"
PATH = Path("m.csv")
MAC_TEXT = "00:AA:BB:11:22:55"


def rows_of(
    columns: tuple[str, ...],
    *records: tuple[str, ...],
    catalogue: Catalogue | None = None,
) -> list[Row]:
    table = RawTable(
        path=PATH,
        sheet=None,
        columns=columns,
        records=[(n, cells) for n, cells in enumerate(records, start=2)],
    )
    return list(build_manifest(table, catalogue=catalogue).rows)


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
                    "password, at least 8 characters): add a password column and fill it in"
                ),
            )
        ]
