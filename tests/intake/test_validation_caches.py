"""
The per-value caches and fast paths of validation.py: each answer is for the value
(and the row facts) it was made for, never a stale one for another row.

A 100,000-row sheet repeats its models, owners and tags, so the row checker answers
each distinct value once; these tests put the same value on rows that must be judged
differently, and different values on rows that follow one another.
"""

from __future__ import annotations

import dataclasses

import pytest
from built_rows import rows_of

from provisioner.intake import validation
from provisioner.intake.catalogue import Catalogue, load_catalogue
from provisioner.intake.header import FIELD_ALIASES
from provisioner.intake.manifest import PASSWORD_MASK
from provisioner.intake.rows import ROW_FIELDS, make_row
from provisioner.models import Problem, Row, SupportedModel

WS = "Y2lzY29zcGFyazovL3VzL1BMQUNFLzhmYmQyYjA4LWYwYmEtNWVjMi1iNDlhLWY1NjUwNThlZjZhNA"
PERSON = (
    "Y2lzY29zcGFyazovL3VzL1BFT1BMRS8wZDA2MTJjMy1jMzM0LTUyMzYtYjJlNi0zMTAzMGQ1MmJiODM"
)

PEOPLE_ONLY = SupportedModel(
    model="DMS Desk 1",
    display_name="Desk 1",
    type="MPP",
    managed_by="CISCO",
    supported_for=("PEOPLE",),
    onboarding_methods=("MAC_ADDRESS", "ACTIVATION_CODE"),
)
THIRD_PARTY = SupportedModel(
    model="Generic SIP 1",
    display_name="Generic SIP 1",
    type="GENERIC_SIP",
    managed_by="CUSTOMER",
    onboarding_methods=("MAC_ADDRESS",),
)
PLACE_ONLY = SupportedModel(
    model="DMS Room 1",
    display_name="Room 1",
    type="MPP",
    managed_by="CISCO",
    supported_for=("PLACE",),
    onboarding_methods=("MAC_ADDRESS", "ACTIVATION_CODE"),
)
CATALOGUE = Catalogue([PEOPLE_ONLY, PLACE_ONLY, THIRD_PARTY])


def messages(row: Row) -> list[str]:
    return [problem.message for problem in row.problems]


class TestModelFit:
    def test_same_model_is_judged_by_each_rows_owner(self) -> None:
        """A people-only model: fine for a person, refused for a workspace, fine again."""
        rows = rows_of(
            ("mac", "model", "workspaceId", "personId"),
            ("AABBCCDDEE01", "Desk 1", "", PERSON),
            ("AABBCCDDEE02", "Desk 1", WS, ""),
            ("AABBCCDDEE03", "Desk 1", "", PERSON),
            ("AABBCCDDEE04", "Desk 1", WS, ""),
            catalogue=CATALOGUE,
        )
        assert [row.is_valid for row in rows] == [True, False, True, False]
        assert messages(rows[1]) == messages(rows[3])
        assert "can only belong to a person" in messages(rows[1])[0]

    def test_a_second_owner_kind_is_judged_too(self) -> None:
        """Rows that differ only in having a second owner of the other kind."""
        rows = rows_of(
            ("mac", "model", "workspaceId", "personId"),
            ("", "Desk 1", "", PERSON),
            ("", "Desk 1", WS, PERSON),
            ("", "Room 1", WS, ""),
            ("", "Room 1", WS, PERSON),
            catalogue=CATALOGUE,
        )
        assert rows[0].is_valid
        assert rows[2].is_valid
        assert any("only belong to a person" in text for text in messages(rows[1]))
        assert any("only belong to a workspace" in text for text in messages(rows[3]))

    def test_a_mac_that_is_no_mac_is_not_judged_against_the_model(self) -> None:
        """A RoomOS model: a broken MAC gets its own problem only; a good one is
        refused for the model, whichever row came first."""
        rows = rows_of(
            ("mac", "model", "workspaceId"),
            ("zz", "Cisco Room Bar", WS),
            ("AABBCCDDEE01", "Cisco Room Bar", WS),
        )
        assert len(rows[0].problems) == 1
        assert "hex digit" in messages(rows[0])[0]
        assert messages(rows[1]) == [
            (
                "the Cisco Room Bar is a RoomOS device: clear the MAC, RoomOS devices "
                "onboard with an activation code"
            )
        ]

    def test_same_model_is_judged_by_each_rows_mac(self) -> None:
        """A MAC-only model: a code row is refused, a MAC row is not, in any order."""
        rows = rows_of(
            ("mac", "model", "workspaceId"),
            ("", "Cisco 191", WS),
            ("AABBCCDDEE01", "Cisco 191", WS),
            ("", "Cisco 191", WS),
        )
        assert [row.is_valid for row in rows] == [False, True, False]
        assert "can only be added by MAC address" in messages(rows[0])[0]

    def test_a_broken_mac_is_not_an_empty_one(self) -> None:
        """A MAC-only model: a broken MAC is refused as a MAC, an empty one for the
        model, whichever row came first."""
        rows = rows_of(
            ("mac", "model", "workspaceId"),
            ("zz", "Cisco 191", WS),
            ("", "Cisco 191", WS),
        )
        assert len(rows[0].problems) == 1
        assert "hex digit" in messages(rows[0])[0]
        assert "can only be added by MAC address" in messages(rows[1])[0]

    def test_each_refused_row_quotes_its_own_cell(self) -> None:
        """A cached "does not fit" still names each row's own MAC."""
        rows = rows_of(
            ("mac", "model", "workspaceId"),
            ("AABBCCDDEE01", "Cisco Room Bar", WS),
            ("AABBCCDDEE02", "Cisco Room Bar", WS),
        )
        assert [row.problems[0].value for row in rows] == [
            "AABBCCDDEE01",
            "AABBCCDDEE02",
        ]

    def test_password_is_kept_only_for_the_model_that_needs_it(self) -> None:
        """The same password cell: kept for a third-party model, dropped for a Cisco."""
        rows = rows_of(
            ("mac", "model", "workspaceId", "password"),
            ("AABBCCDDEE01", "Generic SIP 1", WS, "secret-one"),
            ("AABBCCDDEE02", "Desk 1", "", "secret-two"),
            ("AABBCCDDEE03", "Generic SIP 1", WS, "secret-three"),
            ("AABBCCDDEE04", "Generic SIP 1", WS, ""),
            ("AABBCCDDEE05", "Generic SIP 1", WS, PASSWORD_MASK),
            catalogue=CATALOGUE,
        )
        assert [row.password for row in rows] == [
            "secret-one",
            None,
            "secret-three",
            None,
            None,
        ]
        assert rows[0].is_valid
        assert rows[2].is_valid
        assert "needs a password" in messages(rows[3])[0]
        assert "masked in the report" in messages(rows[4])[0]
        # Desk 1 is people-only, and row 3 names no owner: its own problems only.
        assert all("password" not in message for message in messages(rows[1]))


class TestOwnerCaches:
    def test_a_bad_id_is_refused_on_every_row_and_a_good_one_never(self) -> None:
        rows = rows_of(
            ("mac", "model", "workspaceId"),
            ("", "Cisco 8875", PERSON),
            ("", "Cisco 8875", WS),
            ("", "Cisco 8875", PERSON),
            ("", "Cisco 8875", WS),
        )
        assert [row.workspace_id for row in rows] == [None, WS, None, WS]
        assert [row.is_valid for row in rows] == [False, True, False, True]
        assert messages(rows[0]) == messages(rows[2])
        assert "id of a people" in messages(rows[0])[0]

    def test_the_same_id_in_another_column_is_judged_for_that_column(self) -> None:
        """A person's id is right under personId and wrong under workspaceId."""
        rows = rows_of(
            ("mac", "model", "workspaceId", "personId"),
            ("", "Cisco 8875", "", PERSON),
            ("", "Cisco 8875", PERSON, ""),
        )
        assert rows[0].person_id == PERSON
        assert rows[0].is_valid
        assert rows[1].workspace_id is None
        assert not rows[1].is_valid

    def test_emails_are_judged_each_by_its_own_text(self) -> None:
        rows = rows_of(
            ("mac", "model", "personEmail"),
            ("", "Cisco 8875", "ann@example.com"),
            ("", "Cisco 8875", "bob"),
            ("", "Cisco 8875", "ann@example.com"),
            ("", "Cisco 8875", "bob"),
        )
        assert [row.person_email for row in rows] == [
            "ann@example.com",
            None,
            "ann@example.com",
            None,
        ]
        assert [row.is_valid for row in rows] == [True, False, True, False]

    def test_owner_count_is_checked_on_every_row(self) -> None:
        """None, one, two and one again: only the rows without one owner are refused."""
        rows = rows_of(
            ("mac", "model", "workspaceId", "workspace", "personId", "personEmail"),
            ("", "Cisco 8875", "", "", "", ""),
            ("", "Cisco 8875", WS, "", "", ""),
            ("", "Cisco 8875", WS, "Lobby", "", ""),
            ("", "Cisco 8875", "", "", PERSON, "ann@example.com"),
            ("", "Cisco 8875", "", "Lobby", PERSON, ""),
            ("", "Cisco 8875", "", "", "", "ann@example.com"),
        )
        assert [row.is_valid for row in rows] == [
            False,
            True,
            False,
            False,
            False,
            True,
        ]
        assert "no owner" in messages(rows[0])[0]
        assert "both a workspaceId and a workspace name" in messages(rows[2])[0]
        assert "both a personId and a personEmail" in messages(rows[3])[0]
        assert "both a personId and a workspace name" in messages(rows[4])[0]


class TestTagsAndModels:
    def test_tags_follow_each_rows_cell(self) -> None:
        rows = rows_of(
            ("mac", "model", "workspaceId", "tags"),
            ("", "Cisco 8875", WS, "a;b"),
            ("", "Cisco 8875", WS, "c"),
            ("", "Cisco 8875", WS, "a;b"),
            ("", "Cisco 8875", WS, ""),
        )
        assert [row.tags for row in rows] == [("a", "b"), ("c",), ("a", "b"), ()]

    def test_models_follow_each_rows_cell(self) -> None:
        rows = rows_of(
            ("mac", "model", "workspaceId"),
            ("", "Cisco 8875", WS),
            ("", "Cisco Room Bar", WS),
            ("", "Cisco 88755", WS),
            ("", "Cisco 8875", WS),
        )
        room_bar = load_catalogue().resolve("Cisco Room Bar")
        assert room_bar is not None
        assert [row.model for row in rows] == [
            "DMS Cisco 8875",
            room_bar.model,
            None,
            "DMS Cisco 8875",
        ]
        assert [row.roomos for row in rows] == [False, True, False, False]
        assert [row.is_valid for row in rows] == [True, True, False, True]


class TestFormulaFilter:
    def test_a_nul_or_an_equals_sign_inside_a_cell_is_no_formula(self) -> None:
        """Only a cell that starts with "=" is a formula; the quick filter may be
        fooled into the exact check, never into a problem."""
        rows = rows_of(
            ("mac", "model", "workspace", "tags", "password"),
            ("", "Cisco 8875", "Lobby\x00=1", "a=b", "=secret-pw"),
            ("", "Cisco 8875", "=A1", "x", ""),
        )
        assert rows[0].is_valid
        assert rows[0].workspace_name == "Lobby\x00=1"
        assert rows[0].tags == ("a=b",)
        # The formula is refused, and read as empty: the row then has no owner.
        assert [problem.column for problem in rows[1].problems] == [
            "workspace",
            "workspace",
        ]
        assert "formula" in messages(rows[1])[0]
        assert "no owner" in messages(rows[1])[1]


class TestMakeRow:
    def test_makes_the_same_row_as_its_constructor(self) -> None:
        """Every field set, each to its own value: equal to Row(...), field by field."""
        values = {
            "number": 7,
            "cells": ("a", "b"),
            "mac": "AABBCCDDEE01",
            "model": "DMS Cisco 8851",
            "roomos": True,
            "workspace_id": "ws",
            "person_id": "person",
            "workspace_name": "Lobby",
            "person_email": "ann@example.com",
            "location": "HQ",
            "tags": ("t",),
            "org_id": "org",
            "password": "secret-pw",
            "problems": (Problem("mac", "x", "y"),),
        }
        assert tuple(values) == ROW_FIELDS
        made = make_row(*values.values())
        expected = Row(**values)  # type: ignore[arg-type]
        assert type(made) is Row
        for name, value in values.items():
            assert getattr(made, name) == value == getattr(expected, name)
        assert made == expected
        assert hash(made) == hash(expected)

    def test_names_every_field_of_row_and_row_needs_no_post_init(self) -> None:
        """What make_row relies on: a field added to Row must be added there too."""
        assert sorted(ROW_FIELDS) == sorted(
            field.name for field in dataclasses.fields(Row)
        )
        assert len(set(ROW_FIELDS)) == len(ROW_FIELDS)
        assert not hasattr(Row, "__post_init__")
        assert "__slots__" in Row.__dict__

    def test_the_row_stays_frozen(self) -> None:
        row = make_row(2, ("x",), None, None, False, *[None] * 5, (), None, None, ())
        with pytest.raises(dataclasses.FrozenInstanceError):
            row.mac = "AABBCCDDEE01"  # type: ignore[misc]

    def test_validation_rows_equal_constructed_rows(self) -> None:
        """The rows build_manifest makes compare equal to rows made by Row(...)."""
        (row,) = rows_of(
            ("mac", "model", "workspaceId", "tags"),
            ("aa:bb:cc:dd:ee:01", "Cisco 8851", WS, "x;y"),
            catalogue=load_catalogue(),
        )
        rebuilt = Row(
            **{
                field.name: getattr(row, field.name)
                for field in dataclasses.fields(Row)
            }
        )
        assert row == rebuilt
        assert row.mac == "AABBCCDDEE01"
        assert row.tags == ("x", "y")


def test_the_checker_unpacks_every_field_a_header_can_name() -> None:
    """check() unpacks the fields by position: the list must be the header's."""
    assert sorted(validation._FIELDS) == sorted(FIELD_ALIASES)
    assert len(set(validation._FIELDS)) == len(validation._FIELDS)


def test_every_field_reaches_its_own_place_in_the_row() -> None:
    """Each field in its own column, in an unusual order: each lands where it should."""
    (row,) = rows_of(
        (
            "password",
            "tags",
            "location",
            "workspace",
            "orgId",
            "model",
            "mac",
        ),
        (
            "secret-pw",
            "t1;t2",
            "HQ",
            "Lobby",
            "Y2lzY29zcGFyazovL3VzL09SR0FOSVpBVElPTi8xMjM0",
            "Generic SIP 1",
            "aa-bb-cc-dd-ee-01",
        ),
        catalogue=CATALOGUE,
    )
    assert row.is_valid
    assert row.password == "secret-pw"
    assert row.cells[0] == PASSWORD_MASK
    assert row.tags == ("t1", "t2")
    assert row.location == "HQ"
    assert row.workspace_name == "Lobby"
    assert row.org_id == "Y2lzY29zcGFyazovL3VzL09SR0FOSVpBVElPTi8xMjM0"
    assert row.model == "Generic SIP 1"
    assert row.mac == "AABBCCDDEE01"
