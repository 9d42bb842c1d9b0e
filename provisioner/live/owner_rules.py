"""
Owners named by name: which lookups to make, and what their answers mean (pure).

A row may name its owner by workspace display name (``workspace``, with an optional
``location``) or by person email (``personEmail``) instead of by id. ``live.owners``
asks the org (``GET /workspaces?displayName=``, ``GET /people?email=``, and
``GET /locations/{id}`` for the candidates' locations) and gathers the answers;
everything here turns answers into values:

- ``name_key`` / ``distinct_names``: each distinct owner name once per org;
- ``exact_matches``: the API's filters answer more than the exact name (the
  ``displayName`` filter is not an equality match), so only an exact display name, or
  an email equal but for case, counts;
- ``locations_needed``: the candidates whose location must be named (same-named
  workspaces, or rows that give a ``location``);
- ``resolve_rows``: the rows with their owner ids filled in, or with a problem that
  says what was looked for and what to do (none found; several, listed with id and
  location; a lookup the token may not make);
- ``resolved_owner_id``: the id a report's ``owner`` cell says a row's name resolved
  to in its run (``Row.owner_label`` writes it), for the commands that take a report
  up again (``codes --renew``, ``rollback``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from provisioner.live.rules import header, merge_problems
from provisioner.models import Manifest, OwnerKind, Problem, Row
from provisioner.webex.protocol import Owner

__all__ = [
    "LocationKey",
    "NameKey",
    "NameLookup",
    "distinct_names",
    "exact_matches",
    "locations_needed",
    "name_key",
    "resolve_rows",
    "resolved_owner_id",
]

#: Near misses named in a "not found" message, at most.
MAX_NEAR_NAMES = 3

# The end of a report's owner cell for a row named by name: "Lobby (id Y2lz…)".
_RESOLVED_ID = re.compile(r"\(id ([^()\s]+)\)$")

#: (org, location id): a location is looked up once per org.
LocationKey = tuple[str | None, str]

_SCOPES = {
    OwnerKind.WORKSPACE: "spark-admin:workspaces_read",
    OwnerKind.PERSON: "spark-admin:people_read",
}


@dataclass(frozen=True, slots=True)
class NameKey:
    """
    One owner name to look up: a workspace's display name as written, or an email in
    lower case (emails match ignoring case), in an org (None: the token's).
    """

    kind: OwnerKind
    name: str
    org_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class NameLookup:
    """
    What looking a name up answered: every owner the API returned for the filter, or
    why there is no answer (``refused``: the API's words for a 400; ``forbidden``: the
    token may not list people or workspaces).
    """

    found: tuple[Owner, ...] = ()
    refused: str | None = None
    forbidden: bool = False


def name_key(row: Row, default_org: str | None) -> NameKey | None:
    """
    Return the owner name a row gives, or None when it names its owner by id (or
    the name was already resolved to one).
    """
    if row.workspace_id or row.person_id:
        return None
    org = row.org_id or default_org
    if row.person_email:
        return NameKey(OwnerKind.PERSON, row.person_email.strip().casefold(), org)
    if row.workspace_name:
        return NameKey(OwnerKind.WORKSPACE, row.workspace_name.strip(), org)
    return None


def distinct_names(rows: Iterable[Row], default_org: str | None) -> list[NameKey]:
    """
    Return each owner name the rows give once, in order of first appearance.
    """
    keys = (name_key(row, default_org) for row in rows)
    return list(dict.fromkeys(key for key in keys if key is not None))


def exact_matches(key: NameKey, found: Iterable[Owner]) -> tuple[Owner, ...]:
    """
    Keep the owners whose name is exactly the one looked for.

    A person matches when one of their emails equals the key ignoring case; a
    workspace when its display name is the key exactly (case included: "Lobby" and
    "lobby" are two names a person could give two rooms).
    """
    if key.kind is OwnerKind.PERSON:
        return tuple(
            owner
            for owner in found
            if any(email.strip().casefold() == key.name for email in owner.emails)
        )
    return tuple(
        owner for owner in found if (owner.display_name or "").strip() == key.name
    )


def locations_needed(
    rows: Iterable[Row],
    lookups: Mapping[NameKey, NameLookup],
    default_org: str | None,
) -> list[LocationKey]:
    """
    Return the locations to name: those of same-named workspaces, and of every
    candidate of a row that tells its workspace apart by ``location``.
    """
    needed: dict[LocationKey, None] = {}
    for row in rows:
        key = name_key(row, default_org)
        if key is None or key.kind is not OwnerKind.WORKSPACE or key not in lookups:
            continue
        candidates = exact_matches(key, lookups[key].found)
        if len(candidates) > 1 or (row.location and candidates):
            for owner in candidates:
                if owner.location_id:
                    needed[(key.org_id, owner.location_id)] = None
    return list(needed)


def resolve_rows(
    manifest: Manifest,
    lookups: Mapping[NameKey, NameLookup],
    locations: Mapping[LocationKey, str | None],
    default_org: str | None,
) -> tuple[Manifest, dict[int, tuple[Problem, ...]]]:
    """
    Fill in the owner id of every row whose name matched one owner; give the others
    a problem. Return the manifest and the problems, by row number.

    A row whose name was not looked up is left as it is (it stays without an id, so
    it never runs).
    """
    problems: dict[int, tuple[Problem, ...]] = {}
    rows = []
    for row in manifest.rows:
        key = name_key(row, default_org)
        lookup = None if key is None else lookups.get(key)
        if key is None or lookup is None:
            rows.append(row)
            continue
        owner, problem = _resolve(manifest, row, key, lookup, locations)
        if owner is not None:
            if key.kind is OwnerKind.WORKSPACE:
                row = dataclasses.replace(row, workspace_id=owner.id)
            else:
                row = dataclasses.replace(row, person_id=owner.id)
        if problem is not None:
            problems[row.number] = (problem,)
        rows.append(row)
    resolved = dataclasses.replace(manifest, rows=tuple(rows))
    return merge_problems(resolved, problems), problems


def resolved_owner_id(owner_cell: str | None) -> str | None:
    """
    The id a report's ``owner`` cell says a name resolved to (``Lobby (id X)``), or
    None when it names none.
    """
    if not owner_cell:
        return None
    match = _RESOLVED_ID.search(owner_cell)
    return match.group(1) if match else None


def _resolve(
    manifest: Manifest,
    row: Row,
    key: NameKey,
    lookup: NameLookup,
    locations: Mapping[LocationKey, str | None],
) -> tuple[Owner | None, Problem | None]:
    is_person = key.kind is OwnerKind.PERSON
    field = "personEmail" if is_person else "workspace"
    cell = (row.person_email if is_person else row.workspace_name) or ""

    def problem(message: str, on: str = field, value: str = cell) -> Problem:
        return Problem(header(manifest, on), value, message)

    noun = "person" if is_person else "workspace"
    if lookup.forbidden:
        return None, problem(
            f'could not look up the {noun} "{cell}": the token may not list '
            f"{noun}s (it needs {_SCOPES[key.kind]}); give the {noun}'s id instead "
            f"({'personId' if is_person else 'workspaceId'})"
        )
    if lookup.refused is not None:
        return None, problem(
            f'the API refused to look up "{cell}" ({lookup.refused}); check the cell'
        )
    where = f" in org {key.org_id}" if row.org_id else " in the org"
    candidates = exact_matches(key, lookup.found)
    if is_person:
        if not candidates:
            return None, problem(
                f'no person with the email "{cell}"{where}; check the address (their '
                "Webex sign-in email), or give their personId"
            )
        if len(candidates) > 1:
            listed = ", ".join(owner.id for owner in candidates)
            return None, problem(
                f'{len(candidates)} people have the email "{cell}": {listed}; give the '
                "personId of the one you mean"
            )
        return candidates[0], None
    if not candidates:
        return None, problem(_no_workspace(cell, where, lookup.found))
    if row.location:
        at = [
            owner
            for owner in candidates
            if _is_at(owner, row.location, locations, key.org_id)
        ]
        if not at:
            return None, problem(
                f'no workspace named "{cell}" is at location "{row.location}"; the '
                f"workspaces named so: {_listed(candidates, locations, key.org_id)}; "
                "correct the location, or give the workspaceId",
                on="location",
                value=row.location,
            )
        candidates = tuple(at)
    if len(candidates) > 1:
        fix = (
            "fill in its location"
            if "location" in manifest.field_columns
            else "add a location column naming its location"
        )
        return None, problem(
            f'{len(candidates)} workspaces are named "{cell}": '
            f"{_listed(candidates, locations, key.org_id)}; give the workspaceId of "
            f"the one you mean (workspaceId column), or {fix}"
        )
    return candidates[0], None


def _no_workspace(cell: str, where: str, answered: Iterable[Owner]) -> str:
    near = list(
        dict.fromkeys(owner.display_name for owner in answered if owner.display_name)
    )[:MAX_NEAR_NAMES]
    quoted = ", ".join(f'"{name}"' for name in near)
    hint = f"; names that come close: {quoted}" if near else ""
    return (
        f'no workspace is named exactly "{cell}"{where}{hint}; check the name '
        "(Control Hub, Workspaces), or give its workspaceId"
    )


def _is_at(
    owner: Owner,
    location: str,
    locations: Mapping[LocationKey, str | None],
    org: str | None,
) -> bool:
    if owner.location_id is None:
        return False
    if owner.location_id == location.strip():
        return True
    name = locations.get((org, owner.location_id))
    return name is not None and name.strip().casefold() == location.strip().casefold()


def _listed(
    owners: Iterable[Owner],
    locations: Mapping[LocationKey, str | None],
    org: str | None,
) -> str:
    parts = []
    for owner in owners:
        if owner.location_id is None:
            parts.append(f"{owner.id} (no location)")
            continue
        name = locations.get((org, owner.location_id))
        place = f'"{name}"' if name else owner.location_id
        parts.append(f"{owner.id} (location {place})")
    return ", ".join(parts)
