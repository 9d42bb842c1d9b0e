"""
Owner columns offline: by id, by workspace name or by email, exactly one per row.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioner.errors import MissingColumnError
from provisioner.intake.manifest import load_manifest
from provisioner.models import Manifest, OwnerKind

WS = "Y2lzY29zcGFyazovL3VzL1BMQUNFLzhmYmQyYjA4LWYwYmEtNWVjMi1iNDlhLWY1NjUwNThlZjZhNA"


def manifest(folder: Path, header: str, *lines: str) -> Manifest:
    path = folder / "m.csv"
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return load_manifest(path)


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("personEmail", "personEmail"),
        ("Email", "personEmail"),
        ("E-mail Address", "personEmail"),
        ("Username", "personEmail"),
        ("User", "personEmail"),
        ("Person Email", "personEmail"),
        ("workspace", "workspace"),
        ("Workspace Name", "workspace"),
        ("Room", "workspace"),
    ],
)
def test_owner_name_columns_have_aliases(
    tmp_path: Path, header: str, field: str
) -> None:
    """The email and workspace-name columns answer to the names sheets give them."""
    value = "pat@agency.example.gov" if field == "personEmail" else "Boardroom"

    loaded = manifest(tmp_path, f"Model,{header},Location", f"Cisco 8851,{value},HQ")

    assert loaded.field_columns[field] == header
    assert loaded.field_columns["location"] == "Location"
    (row,) = loaded.rows
    assert row.problems == ()
    assert row.owner_name == value
    assert row.owner_id is None


def test_a_row_by_email_belongs_to_a_person(tmp_path: Path) -> None:
    """An email row is a person's; a name row a workspace's; location kept."""
    loaded = manifest(
        tmp_path,
        "model,workspace,location,email",
        "Cisco 8851,,,pat@agency.example.gov",
        "Cisco 8851,Lobby,Denver,",
    )

    by_email, by_name = loaded.rows
    assert (by_email.owner_kind, by_email.person_email) == (
        OwnerKind.PERSON,
        "pat@agency.example.gov",
    )
    assert (by_name.owner_kind, by_name.workspace_name, by_name.location) == (
        OwnerKind.WORKSPACE,
        "Lobby",
        "Denver",
    )


def test_a_name_and_an_id_are_two_owners(tmp_path: Path) -> None:
    """A row naming a workspace and giving an email is invalid: one owner per row."""
    loaded = manifest(
        tmp_path,
        "model,workspaceId,workspace,email",
        "Cisco 8851,,Lobby,pat@agency.example.gov",
        f"Cisco 8851,{WS},Lobby,pat@agency.example.gov",
    )

    (two,) = loaded.rows[0].problems
    assert two.message == (
        "the row has both a workspace name and a personEmail; a device belongs to "
        "one owner: clear one of them"
    )
    (three,) = loaded.rows[1].problems
    assert three.message.startswith(
        "the row has a workspaceId, a workspace name and a personEmail"
    )


def test_no_owner_names_every_owner_column_the_sheet_has(tmp_path: Path) -> None:
    """An empty owner: the message offers the owner columns the sheet has."""
    loaded = manifest(tmp_path, "model,workspace,email,tags", "Cisco 8851,,,lobby")

    (problem,) = loaded.rows[0].problems
    assert problem.message == (
        "no owner: fill in a workspace name or a personEmail for the workspace or "
        "person the device belongs to"
    )


def test_an_email_column_needs_an_address(tmp_path: Path) -> None:
    """A name typed into the email column is caught offline."""
    loaded = manifest(tmp_path, "model,email", "Cisco 8851,Pat Admin")

    (problem,) = loaded.rows[0].problems
    assert (problem.column, problem.value) == ("email", "Pat Admin")
    assert "not an email address" in problem.message


def test_an_email_in_the_person_id_column_says_where_it_goes(tmp_path: Path) -> None:
    """An email in personId points to the personEmail column."""
    loaded = manifest(tmp_path, "model,personId", "Cisco 8851,pat@agency.example.gov")

    (problem,) = loaded.rows[0].problems
    assert "put it in a personEmail column" in problem.message


def test_a_sheet_with_only_a_name_owner_column_is_a_manifest(tmp_path: Path) -> None:
    """A workspace-name column alone is enough of an owner column."""
    loaded = manifest(tmp_path, "mac,model,Room", "00AABB000001,Cisco 8851,Boardroom")

    assert loaded.rows[0].is_valid


def test_a_sheet_without_any_owner_column_says_which_it_takes(tmp_path: Path) -> None:
    """No owner column at all: the message lists the four kinds."""
    with pytest.raises(MissingColumnError, match="workspace .the workspace's name"):
        manifest(tmp_path, "mac,model", "00AABB000001,Cisco 8851")


def test_names_read_as_they_look_though_pasted_with_invisible_characters(
    tmp_path: Path,
) -> None:
    """A no-break space inside a workspace name, or a zero-width space before an
    email (both pasted from web pages), read as the name and address they show: the
    API's exact match would otherwise find nothing that reads the same."""
    loaded = manifest(
        tmp_path,
        "model,workspace,location,email",
        "Cisco 8851,Denver\u00a0Reception 1,San\u00a0Diego,",
        "Cisco 8851,,,\u200bsam.lee@agency.example.gov",
    )

    by_name, by_email = loaded.rows
    assert (by_name.workspace_name, by_name.location) == (
        "Denver Reception 1",
        "San Diego",
    )
    assert by_email.person_email == "sam.lee@agency.example.gov"
    assert by_name.problems == by_email.problems == ()


@pytest.mark.parametrize(
    "typed",
    ["mailto:sam.lee@agency.example.gov", "sam.lee@agency.example.gov;", "<a@b.gov>"],
)
def test_what_a_mail_client_leaves_around_an_address_is_caught(
    tmp_path: Path, typed: str
) -> None:
    """A "mailto:" prefix, a list's separator or angle brackets are caught offline,
    not first by the org's lookup."""
    loaded = manifest(tmp_path, "model,email", f'Cisco 8851,"{typed}"')

    (problem,) = loaded.rows[0].problems
    assert "not an email address" in problem.message
