"""
header.py: which column gives which field, and what is said when one is missing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioner.errors import ManifestError, MissingColumnError
from provisioner.intake.header import header_key, looks_like_header, match_headers

PATH = Path("sites/m.csv")
EXPECTED = (
    'Expected: model (or "Device Model") and an owner column: workspaceId (or '
    '"Workspace ID"), personId (or "Person ID"), workspace (the workspace\'s name, '
    'or "Room") or personEmail (or "Email"); optional: mac (or "MAC Address"), '
    "tags, location, orgId, password. Fix the header row and run again"
)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("Device-Model (Required)", "devicemodel"),
        ("  Person_ID * ", "personid"),
        ("MAC address (optional)", "macaddress"),
        ("Tags (mandatory)", "tags"),
        ("Notes (required) later", "notes(required)later"),
    ],
)
def test_header_key(text: str, key: str) -> None:
    """Case, spaces, _ and -, and a trailing (required)/(optional)/* do not count."""
    assert header_key(text) == key


@pytest.mark.parametrize(
    ("cells", "expected"),
    [
        (["Model", "Workspace ID"], True),
        (["Device Model", "Email"], True),
        (["model (required)", "personId *"], True),
        (["Room", "Product"], True),
        (["Model"], False),
        (["Workspace ID", "MAC"], False),
        (["mac", "tags", "notes"], False),
        ([], False),
    ],
)
def test_a_header_row_names_a_model_and_an_owner(
    cells: list[str], expected: bool
) -> None:
    """A row is a header when it names a model column and an owner column."""
    assert looks_like_header(cells) is expected


def test_columns_map_to_fields_by_position() -> None:
    """Each field maps to its column's index; other columns are ignored."""
    columns = ["Notes", "MAC Address", "Device Model", "Person ID", "Labels", "PWD"]

    assert match_headers(PATH, columns) == {
        "mac": 1,
        "model": 2,
        "personId": 3,
        "tags": 4,
        "password": 5,
    }


def test_two_columns_for_one_field_are_refused() -> None:
    """Two columns giving one field: the message names both and the fix."""
    with pytest.raises(ManifestError) as caught:
        match_headers(PATH, ["Model", "MAC", "Workspace ID", "Device MAC"])

    assert str(caught.value) == (
        f'{PATH}: columns "MAC" and "Device MAC" both give the mac; keep one of '
        "them (rename or delete the other) and run again"
    )


@pytest.mark.parametrize(
    ("columns", "missing", "shown"),
    [
        (
            ["MAC", "Notes"],
            "model and no owner (workspaceId, personId, workspace or personEmail)",
            '"MAC", "Notes"',
        ),
        (
            ["Model", ""],
            "owner (workspaceId, personId, workspace or personEmail)",
            '"Model"',
        ),
        (["Workspace ID"], "model", '"Workspace ID"'),
        (
            ["", ""],
            "model and no owner (workspaceId, personId, workspace or personEmail)",
            "none",
        ),
    ],
)
def test_a_missing_column_is_named_with_what_was_found_and_expected(
    columns: list[str], missing: str, shown: str
) -> None:
    """The message names the missing columns, the columns found and the fix."""
    with pytest.raises(MissingColumnError) as caught:
        match_headers(PATH, columns)

    assert str(caught.value) == (
        f"{PATH}: no {missing} column in the header row. Columns found: {shown}. "
        + EXPECTED
    )
