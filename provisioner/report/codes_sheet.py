"""
The Activation codes sheet: what a site tech carries from room to room.

One line per issued code: the row, the owner as people know it, the model, the code
grouped ``1234-5678-9012-3456`` and when it expires; with ``--group-by`` the group
(site, building, floor) comes first so a printed list reads by place. A partner's
report whose codes are in several orgs names each line's org (a room called "Board
Room" is in every customer's). Deciding the lines is pure; ``sheets.py`` writes them.
"""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from provisioner.intake.catalogue import load_catalogue
from provisioner.models import Manifest, Outcome, Row, utc_moment
from provisioner.report.cells import format_code
from provisioner.report.summary import natural_key

__all__ = [
    "CODES_SHEET",
    "CodeLine",
    "code_header",
    "code_lines",
    "owner_label",
    "spans_orgs",
]

CODES_SHEET = "Activation codes"


@dataclass(frozen=True, slots=True, kw_only=True)
class CodeLine:
    """
    One activation code on the sheet; ``code`` is grouped and a secret.
    """

    row: int
    owner: str
    model: str
    code: str
    expiry: datetime | str | None
    group: str | None = None
    #: The code's org, when the sheet's codes are in more than one.
    org: str | None = None


def code_header(group_by: str | None, *, orgs: bool = False) -> tuple[str, ...]:
    """
    The sheet's header row (with an ``org`` column when its codes span orgs).
    """
    columns: tuple[str, ...] = (
        "row",
        "owner",
        "model",
        "activation code",
        "expires (UTC)",
    )
    if orgs:
        columns = ("org", *columns)
    return (group_by, *columns) if group_by else columns


def spans_orgs(lines: Sequence[CodeLine]) -> bool:
    """
    Whether the lines name their org (their codes are in more than one).
    """
    return any(line.org is not None for line in lines)


def code_lines(
    manifest: Manifest,
    outcomes: Mapping[int, Outcome],
    *,
    only: Container[int] | None = None,
    group_by: str | None = None,
    org_names: Mapping[str | None, str] | None = None,
) -> list[CodeLine]:
    """
    One line per row holding an activation code, in manifest order (by group first
    when ``group_by`` names a column).

    Args:
        only: the row numbers to list (``codes --sheet`` lists the pending ones).
        org_names: the orgs' names by the key rows give (their ``orgId``; None for
            the token's own org). When the listed codes are in more than one org,
            each line names its org: by name where known, else by id.
    """
    group_at = manifest.columns.index(group_by) if group_by else None
    catalogue = load_catalogue()
    lines = []
    for row in manifest.rows:
        outcome = outcomes.get(row.number)
        if outcome is None or not outcome.activation_code:
            continue
        if only is not None and row.number not in only:
            continue
        entry = catalogue.resolve(row.model) if row.model else None
        expiry = utc_moment(outcome.activation_expiry)
        lines.append(
            CodeLine(
                row=row.number,
                owner=owner_label(row),
                model=entry.display_name if entry else (row.model or ""),
                code=format_code(outcome.activation_code) or "",
                expiry=expiry or outcome.activation_expiry,
                group=_cell(row, group_at) if group_at is not None else None,
            )
        )
    org_of = {row.number: row.org_id for row in manifest.rows}
    if len({org_of[line.row] for line in lines}) > 1:
        names = org_names or {}
        lines = [
            replace(line, org=_org_label(org_of[line.row], names)) for line in lines
        ]
    if group_at is not None:
        # Stable: within a group, manifest order stays.
        lines.sort(key=lambda line: natural_key(line.group or ""))
    return lines


def _org_label(key: str | None, names: Mapping[str | None, str]) -> str:
    """
    An org as a site tech reads it: its name where known, else its id.
    """
    return names.get(key) or key or "the token's org"


def owner_label(row: Row) -> str:
    """
    The row's owner as people know it: the workspace name (with its location when
    the row gave one) or the email the row named, else the owner's id.
    """
    name = row.owner_name
    if not name:
        return row.owner_id or ""
    if row.workspace_name and row.location:
        return f"{name}, {row.location}"
    return name


def _cell(row: Row, index: int) -> str:
    return row.cells[index].strip() if index < len(row.cells) else ""
