"""
repeats.py: activation-code rows for the same owner and model are found and named,
and the rows that differ in owner, model, org or MAC are not.
"""

from __future__ import annotations

from built_rows import rows_of

from provisioner.intake.repeats import repeated_code_rows, repeated_code_warnings
from provisioner.models import Row

WS = "Y2lzY29zcGFyazovL3VzL1BMQUNFLzhmYmQyYjA4LWYwYmEtNWVjMi1iNDlhLWY1NjUwNThlZjZhNA"
ORG = "Y2lzY29zcGFyazovL3VzL09SR0FOSVpBVElPTi8xMTExMTExMQ"
COLUMNS = ("mac", "model", "workspaceId", "workspace", "location", "personEmail")


def numbers(groups: list[tuple[Row, ...]]) -> list[tuple[int, ...]]:
    return [tuple(row.number for row in group) for group in groups]


def test_two_code_rows_for_one_owner_and_model_are_named_together() -> None:
    """The model as typed differs ("8851", "Cisco 8851"): it is still one model."""
    rows = rows_of(
        COLUMNS,
        ("", "8851", WS, "", "", ""),
        ("", "Cisco 8875", WS, "", "", ""),
        ("", "Cisco 8851", WS, "", "", ""),
    )

    assert numbers(repeated_code_rows(rows)) == [(2, 4)]
    assert repeated_code_warnings(rows) == [
        (
            f"rows 2 and 4 each ask for an activation code for the same owner "
            f"(workspace {WS}) and model (Cisco 8851): each row issues its own code. "
            "Right for identical devices side by side; if it is one device listed "
            "twice, delete the extra rows"
        )
    ]


def test_names_match_as_the_live_lookup_matches_them() -> None:
    """Emails ignore case; workspace names are exact, told apart by location."""
    rows = rows_of(
        COLUMNS,
        ("", "Cisco 8851", "", "", "", "ann@example.com"),
        ("", "Cisco 8851", "", "", "", "ANN@example.com"),
        ("", "Cisco 8851", "", "Lobby", "East", ""),
        ("", "Cisco 8851", "", "Lobby", "West", ""),
        ("", "Cisco 8851", "", "lobby", "East", ""),
        ("", "Cisco 8851", "", "Lobby", "east", ""),
        ("", "Cisco 8851", "", "Lobby", "East", ""),
    )

    assert numbers(repeated_code_rows(rows)) == [(2, 3), (4, 7, 8)]
    assert repeated_code_warnings(rows)[1].startswith(
        "rows 4, 7 and 8 each ask for an activation code for the same owner "
        '(workspace "Lobby", location "East") and model (Cisco 8851)'
    )


def test_rows_that_differ_or_issue_no_code_are_not_named() -> None:
    """A MAC, another org, another owner kind, or an invalid row: no repeat."""
    rows = rows_of(
        (*COLUMNS, "orgId"),
        ("", "Cisco 8851", WS, "", "", "", ""),
        ("0A0B0C0D0E01", "Cisco 8851", WS, "", "", "", ""),
        ("", "Cisco 8851", WS, "", "", "", ORG),
        ("", "Cisco 8851", "", "", "", "ann@example.com", ""),
        ("", "Toaster 3000", WS, "", "", "", ""),
        ("", "Cisco 8851", WS, "Lobby", "", "", ""),
    )

    assert repeated_code_rows(rows) == []
    assert repeated_code_warnings(rows) == []
