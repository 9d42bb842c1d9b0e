"""
Decide, without I/O, what a run across several orgs does with each org.

A partner's run gives each org its own pre-flight (``live.preflight.read_orgs``):
its supported models, or why the token may not act for it. This module turns that
into the run's decisions: which rows a refused org fails (with its one reason,
no call made), and what the run may change in each org, for the confirmation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from provisioner.live.orgs import OrgAccess, own_org_as_default
from provisioner.models import Changes, OrgChanges, Outcome, Row
from provisioner.run.journal import JournalEntry
from provisioner.run.plan import planned_changes, row_org, rows_by_org

__all__ = ["is_multi_org", "org_changes", "own_org_as_default", "refused_access"]


def is_multi_org(keys: Sequence[str | None], default_org: str | None) -> bool:
    """
    True when the rows go to another org than the run's own (a partner's run).
    """
    return any(key != default_org for key in keys)


def refused_access(
    row: Row, orgs: Mapping[str | None, OrgAccess], default_org: str | None
) -> OrgAccess | None:
    """
    Return the refused org a row goes to, or None when its org may be acted for.
    """
    access = orgs.get(row_org(row, default_org))
    return access if access is not None and access.is_refused else None


def org_changes(
    keys: Sequence[str | None],
    orgs: Mapping[str | None, OrgAccess],
    todo: Iterable[Row],
    refused: Iterable[Row],
    entries: Mapping[int, JournalEntry],
    previous: Mapping[int, Outcome],
    default_org: str | None,
) -> tuple[OrgChanges, ...]:
    """
    Count, org by org, the rows a run works on and what it may change there.

    ``todo`` are the rows left to work on, ``refused`` the rows of refused orgs
    (they count as the org's rows, with nothing to change).
    """
    working = rows_by_org(todo, default_org)
    failing = rows_by_org(refused, default_org)
    return tuple(
        OrgChanges(
            org=orgs[key].info,
            rows=len(working.get(key, ())) + len(failing.get(key, ())),
            changes=(
                planned_changes(working[key], entries, previous, note_orgs=False)
                if key in working
                else Changes()
            ),
        )
        for key in keys
    )
