"""
Activation-code rows that repeat one another: same owner, same model, no MAC.

Each such row issues a code of its own, so two of them make two pending devices.
That is right for two identical phones in one room, and wrong for a row pasted
twice; the sheet cannot tell which, so ``validate`` warns and the rows stay valid.
A MAC row repeated is another matter: one device cannot be registered twice, and
``validation`` makes those rows invalid.

Pure: rows in, warning sentences out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from provisioner.intake.catalogue import load_catalogue
from provisioner.models import Row

__all__ = ["repeated_code_rows", "repeated_code_warnings"]

# (org, owner kind, owner as named, location, model): rows alike in all of them ask
# for the same thing. The owner is its id where the row has one (a name resolved by
# ``validate --live`` has it too), else its name: a workspace's as written (names
# match exactly), an email in lower case (emails match ignoring case).
_CodeKey = tuple[str | None, str, str, str | None, str]


def repeated_code_rows(rows: Iterable[Row]) -> list[tuple[Row, ...]]:
    """
    Return each group of two or more valid activation-code rows asking for a code for
    the same owner and model, in manifest order (by each group's first row).

    Invalid rows are left out: they issue no code, and their problems say enough.
    """
    groups: dict[_CodeKey, list[Row]] = {}
    for row in rows:
        key = _code_key(row)
        if key is not None:
            groups.setdefault(key, []).append(row)
    return [tuple(group) for group in groups.values() if len(group) > 1]


def repeated_code_warnings(rows: Iterable[Row]) -> list[str]:
    """
    Say, once per group, which rows each issue a code for the same owner and model.
    """
    return [_warning(group) for group in repeated_code_rows(rows)]


def _code_key(row: Row) -> _CodeKey | None:
    if row.problems or row.mac is not None or row.model is None:
        return None
    if row.workspace_id or row.workspace_name:
        owner = row.workspace_id or row.workspace_name or ""
        # A location only tells same-named workspaces apart; an id needs none.
        location = None if row.workspace_id else _folded(row.location)
        return (row.org_id, "workspace", owner, location, row.model)
    if row.person_id or row.person_email:
        owner = row.person_id or _folded(row.person_email) or ""
        return (row.org_id, "person", owner, None, row.model)
    return None


def _folded(text: str | None) -> str | None:
    return text.strip().casefold() if text else None


def _warning(group: Sequence[Row]) -> str:
    first = group[0]
    return (
        f"{_row_list(row.number for row in group)} each ask for an activation code "
        f"for the same owner ({_owner(first)}) and model ({_model(first)}): each "
        "row issues its own code. Right for identical devices side by side; if it "
        "is one device listed twice, delete the extra rows"
    )


def _row_list(numbers: Iterable[int]) -> str:
    shown = [str(number) for number in numbers]
    return "rows " + ", ".join(shown[:-1]) + " and " + shown[-1]


def _owner(row: Row) -> str:
    if row.workspace_name:
        where = f', location "{row.location}"' if row.location else ""
        return f'workspace "{row.workspace_name}"{where}'
    if row.person_email:
        return f"person {row.person_email}"
    if row.workspace_id:
        return f"workspace {row.workspace_id}"
    return f"person {row.person_id}"


def _model(row: Row) -> str:
    model = row.model or ""
    entry = load_catalogue().resolve(model)
    return entry.display_name if entry is not None else model
