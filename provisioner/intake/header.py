"""
Header matching: which column supplies which field, whatever the sheet calls it.

Headers are compared by ``header_key`` (case, spaces, underscores, hyphens and a
"(required)" mark do not count) against ``FIELD_ALIASES``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from provisioner.errors import ManifestError, MissingColumnError

__all__ = [
    "FIELD_ALIASES",
    "OWNER_FIELDS",
    "header_key",
    "looks_like_header",
    "match_headers",
]

FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "mac": ("mac", "macaddress", "macaddr", "devicemac", "devicemacaddress"),
    "model": ("model", "devicemodel", "modelname", "product", "phonemodel"),
    "workspaceId": ("workspaceid", "placeid"),
    "personId": ("personid", "peopleid"),
    "workspace": ("workspace", "workspacename", "room", "roomname", "placename"),
    "personEmail": (
        "personemail",
        "email",
        "emailaddress",
        "username",
        "user",
        "useremail",
        "owneremail",
        "personemailaddress",
    ),
    "location": ("location", "locationname", "workspacelocation"),
    "tags": ("tags", "tag", "devicetags", "labels"),
    "orgId": ("orgid", "organizationid", "organisationid", "customerorgid"),
    "password": ("password", "devicepassword", "sippassword", "passwd", "pwd"),
}
"""Canonical field → the header keys (see ``header_key``) that supply it."""

OWNER_FIELDS = ("workspaceId", "personId", "workspace", "personEmail")
"""The columns that can name a row's owner: by id, by workspace name, by email."""

_FIELD_BY_KEY = {key: name for name, keys in FIELD_ALIASES.items() for key in keys}
_HEADER_NOISE = re.compile(r"[\s_\-]+")
_HEADER_NOTE = re.compile(
    r"\s*(\((required|optional|mandatory)\)|\*)\s*$", re.IGNORECASE
)


def header_key(text: str) -> str:
    """
    Return the comparison key of a header: lower case, without spaces, underscores,
    hyphens or a trailing "(required)" / "*" mark.
    """
    return _HEADER_NOISE.sub("", _HEADER_NOTE.sub("", text).casefold())


def looks_like_header(cells: Iterable[str]) -> bool:
    """
    Tell whether a row names a model column and an owner column: a header row.
    """
    names = {_FIELD_BY_KEY.get(header_key(cell)) for cell in cells}
    return "model" in names and bool(names & set(OWNER_FIELDS))


def match_headers(path: Path, columns: Sequence[str]) -> dict[str, int]:
    """
    Map each canonical field to the index of the column that supplies it.

    Raises:
        ManifestError: two columns supply the same field.
        MissingColumnError: no model column, or neither owner column.
    """
    found: dict[str, int] = {}
    for index, column in enumerate(columns):
        name = _FIELD_BY_KEY.get(header_key(column))
        if name is None:
            continue
        if name in found:
            first = columns[found[name]]
            raise ManifestError(
                f'{path}: columns "{first}" and "{column}" both give the {name}; '
                "keep one of them (rename or delete the other) and run again"
            )
        found[name] = index
    missing = []
    if "model" not in found:
        missing.append("model")
    if not any(name in found for name in OWNER_FIELDS):
        missing.append("owner (workspaceId, personId, workspace or personEmail)")
    if missing:
        raise MissingColumnError(_missing_message(path, columns, missing))
    return found


def _missing_message(path: Path, columns: Sequence[str], missing: list[str]) -> str:
    shown = ", ".join(f'"{column}"' for column in columns if column) or "none"
    return (
        f"{path}: no {' and no '.join(missing)} column in the header row. Columns "
        f'found: {shown}. Expected: model (or "Device Model") and an owner column: '
        'workspaceId (or "Workspace ID"), personId (or "Person ID"), workspace (the '
        'workspace\'s name, or "Room") or personEmail (or "Email"); optional: mac '
        '(or "MAC Address"), tags, location, orgId, password. Fix the header row and '
        "run again"
    )
