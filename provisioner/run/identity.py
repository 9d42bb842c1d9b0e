"""
Name a row by what it is and a run by where it writes, so a journal continues only
what it recorded (pure functions; ``journal.py`` stores what they name).

- ``row_keys``: a row's identity across edits of the manifest: its MAC, or for an
  activation-code row its org, owner and model, numbered among that owner's rows of
  that model. Adding, sorting or re-numbering rows keeps every key.
- ``row_digest``: what a row asks for (owner, model, tags, org), so a row whose
  request changed is looked at again rather than taken for done.
- ``describe_target``: a journal's recorded target in words, for the refusal that
  names both targets.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping

from provisioner.models import Row

__all__ = ["describe_target", "row_digest", "row_keys"]


def row_keys(rows: Iterable[Row]) -> dict[int, str]:
    """
    Name each valid row by what it is, so a moved or re-saved row is still itself.

    A MAC row is its MAC. An activation-code row is its org, owner and model, with
    its place among the rows of that owner and model (``#1``, ``#2``…): the codes of
    one owner are told apart by order, whatever else moves around them.
    """
    keys: dict[int, str] = {}
    seen: Counter[str] = Counter()
    for row in rows:
        if not row.is_valid:
            continue
        if row.mac is not None:
            keys[row.number] = f"mac:{row.mac}"
            continue
        group = f"code:{row.org_id or ''}:{row.owner_kind}:{row.owner_id}:{row.model}"
        seen[group] += 1
        keys[row.number] = f"{group}#{seen[group]}"
    return keys


def row_digest(row: Row) -> str:
    """
    Hash what a row asks for: owner, model, tags, org, whether it has a password.

    Never the password itself. Tags count as a set: their order changes nothing.
    """
    fields_ = [
        row.model,
        row.workspace_id,
        row.person_id,
        sorted(set(row.tags)),
        row.org_id,
        row.password is not None,
    ]
    return hashlib.sha256(json.dumps(fields_).encode()).hexdigest()[:16]


def describe_target(identity: Mapping[str, str]) -> str:
    """
    Put a target's identity into words: org, API and tag mode.
    """
    org = identity.get("org_id") or "the token's org"
    return (
        f"org {org} at {identity.get('base_url', '?')} "
        f"(tag mode {identity.get('tag_mode', '?')})"
    )
