"""
The owner cells of a row, checked offline: ids of the right kind, emails, one owner.

A row names its owner in exactly one of four columns: ``workspaceId`` or ``personId``
(a Webex id), ``workspace`` (the workspace's display name) or ``personEmail``. Names
and emails are resolved against the org later (``live.owners``); here only what can be
told without the API is checked. Every function is pure and returns messages.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping

from provisioner.intake.header import OWNER_FIELDS

__all__ = ["email_problem", "id_problem", "owner_count_problem", "visible_text"]

_ID_KINDS = {"workspaceId": "PLACE", "personId": "PEOPLE", "orgId": "ORGANIZATION"}
_ID_FIELD_BY_KIND = {kind: name for name, kind in _ID_KINDS.items()}
# Deliberately loose: the org is the judge of an address; this catches a name or a
# phone number typed into the email column, and the separators a pasted list or a
# mail client leaves behind (``a@b.com;``, ``mailto:a@b.com``, ``<a@b.com>``).
_EMAIL = re.compile(r'^[^@\s;,:<>()\[\]"]+@[^@\s;,:<>()\[\]"]+\.[^@\s;,:<>()\[\]"]+$')
#: Spaces that read as one, and characters that read as nothing.
_INVISIBLE: dict[int, str | None] = {
    0x00A0: " ",
    0x2007: " ",
    0x202F: " ",
    0x200B: None,
    0x200C: None,
    0x200D: None,
    0x2060: None,
    0xFEFF: None,
}
_OWNER_WORDS = {
    "workspaceId": "a workspaceId",
    "personId": "a personId",
    "workspace": "a workspace name",
    "personEmail": "a personEmail",
}


def id_problem(name: str, text: str) -> str | None:
    """
    Return what is wrong with a Webex id, or None when it looks usable.

    Webex ids are base64 of ``ciscospark://<region>/<KIND>/<uuid>``; an id of the
    wrong kind (a person's id in the workspace column) is caught here, offline. Ids
    that do not decode are left to the API, which knows every form.
    """
    if any(ch.isspace() for ch in text):
        return "an id has no spaces; copy it again from Control Hub or the API"
    if "@" in text:
        return (
            f"this is an email address, not a {name}; put it in a personEmail column "
            "instead (the person is looked up by email)"
        )
    kind = _id_kind(text)
    expected = _ID_KINDS[name]
    if kind is None or kind == expected:
        return None
    other = _ID_FIELD_BY_KIND.get(kind)
    where = f"; move it to the {other} column" if other else ""
    return f"this is the id of a {kind.lower()}, not a {name}{where}"


def visible_text(text: str) -> str:
    """
    The text as it reads: no-break spaces as spaces, zero-width characters gone.
    """
    return text.translate(_INVISIBLE).strip()


def email_problem(text: str) -> str | None:
    """
    Return what is wrong with an email cell, or None when it looks like an address.
    """
    if _EMAIL.match(text):
        return None
    return (
        "this is not an email address; the personEmail column takes the person's "
        "Webex email (name@example.com)"
    )


def owner_count_problem(
    values: Mapping[str, str], fields: Mapping[str, int]
) -> tuple[str, str, str] | None:
    """
    Check that exactly one owner column is filled; return (field, value, message).
    """
    filled = [name for name in OWNER_FIELDS if values.get(name)]
    if len(filled) == 1:
        return None
    if not filled:
        present = [name for name in OWNER_FIELDS if name in fields]
        choices = " or ".join(_OWNER_WORDS[name] for name in present)
        return (
            present[0],
            "",
            (
                f"no owner: fill in {choices} for the workspace or person the device "
                "belongs to"
            ),
        )
    words = [_OWNER_WORDS[name] for name in filled]
    last = filled[-1]
    if len(words) == 2:
        message = (
            f"the row has both {words[0]} and {words[1]}; a device belongs to one "
            "owner: clear one of them"
        )
    else:
        message = (
            f"the row has {', '.join(words[:-1])} and {words[-1]}; a device belongs "
            "to one owner: keep one of them and clear the others"
        )
    return (last, values[last], message)


def _id_kind(text: str) -> str | None:
    try:
        decoded = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    parts = decoded.decode("ascii", "replace").split("/")
    if len(parts) >= 5 and parts[0] == "ciscospark:":
        return parts[3]
    return None
