"""
The orgs of a partner's report, for ``provisioner codes``: each checked once before
any of its codes is read, and what ``--renew`` will change there, org by org.

A report whose code rows go to other orgs (their ``orgId``) than the command's own
is checked as ``rollback`` checks one: each org's device list is asked for one
device, which proves the token may act for it, and each org is named. The org
``--org-id`` names is the command's own: when it is refused nothing starts, naming
the flag. Any other refused org only leaves its own rows unread (``unchecked``),
with its one reason; the other orgs go on. The confirmation lists every org with
its codes and voided codes, and a refused org with the rows that will fail there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from provisioner.errors import ConfigError
from provisioner.live import code_rules
from provisioner.live.code_rules import CodeEntry
from provisioner.live.orgs import LIST_DEVICES, OrgAccess, org_id_refusal, org_key
from provisioner.live.preflight import first_device_refused, survey_orgs
from provisioner.models import Changes, OrgChanges, OrgInfo, Outcome, Row, Target
from provisioner.run.orgs import is_multi_org
from provisioner.webex.protocol import DevicesApi

__all__ = [
    "LIST_CODES",
    "RENEW_CODES",
    "check_orgs",
    "refuse_unfinished",
    "refused_rows",
    "renewal_changes",
    "renewal_changes_by_org",
    "renewals_by_org",
]

#: What to do with a refused org's rows once a token that may act for it is at hand.
LIST_CODES = "list its codes"
RENEW_CODES = "renew its codes"


async def check_orgs(
    api: DevicesApi,
    rows: Sequence[Row],
    *,
    default_org: str | None,
    home: Target,
    then: str,
    concurrency: int,
) -> dict[str | None, OrgAccess]:
    """
    Check the orgs the code ``rows`` are in, once each, before any code is read.

    Returns each org's access by key (``live.orgs.org_key``), or nothing when the
    rows are all in the command's own org (``home``, which its first call proved).

    Raises:
        ConfigError: the token may not act for the org ``--org-id`` names (or no
            such org exists), whether or not a row goes there, as ``run`` stops.
    """
    own = home.org_id
    keys = list(dict.fromkeys(org_key(r.org_id, default_org, own) for r in rows))
    if default_org is not None:
        # Checked even when every row names its own org: the command acts in the
        # org --org-id names (its first calls did), and one it may not act for
        # stops it before any read, as it stops a run.
        error = await first_device_refused(api, default_org)
        if error is not None:
            raise ConfigError(org_id_refusal(default_org, error, read=LIST_DEVICES))
    if not is_multi_org(keys, default_org):
        return {}
    info = OrgInfo(key=default_org, id=own, name=home.org_name)
    others = [key for key in keys if key != default_org]
    access = {default_org: OrgAccess(info=info)}
    access.update(await survey_orgs(api, others, concurrency=concurrency, then=then))
    return {key: access[key] for key in keys}


def refused_rows(
    rows: Sequence[Row],
    orgs: Mapping[str | None, OrgAccess],
    default_org: str | None,
    own_org: str | None,
) -> dict[int, OrgAccess]:
    """
    The rows of refused orgs, by number, each with its org: none of them is read.
    """
    refused = {}
    for row in rows:
        access = orgs.get(org_key(row.org_id, default_org, own_org))
        if access is not None and access.is_refused:
            refused[row.number] = access
    return refused


def refuse_unfinished(
    unfinished: frozenset[int], refused: Mapping[int, OrgAccess]
) -> None:
    """
    Stop before any write when a stopped renewal began rows of an org this token
    may not act for: only a token that may act there can keep their new codes
    and void the old ones (the journal keeps them until then).

    Raises:
        ConfigError: naming the rows, their org and why.
    """
    began = sorted(number for number in unfinished if number in refused)
    if not began:
        return
    # One org named is enough to act on; another's rows stop the next try.
    org = refused[began[0]]
    rows = ", ".join(str(n) for n in began if refused[n] is org)
    raise ConfigError(
        f"an earlier codes --renew stopped while renewing rows {rows} in org "
        f"{org.info.label()}, which this token may not act for: nothing was changed; "
        "run the same command with a token that may act for that org (a partner "
        "admin's that manages it), so their new codes are kept and the old ones voided"
    )


def renewal_changes(
    entries: Sequence[CodeEntry], unfinished: frozenset[int] = frozenset()
) -> Changes:
    """
    Count what ``--renew`` writes: a code per renewal (voiding the old code by
    deleting its pending device), tags on each activated device whose tags waited
    (or whose failed row's tags it may lack).
    ``unfinished`` rows are renewals a stopped renewal began: they are carried on.
    """
    renewing = [
        entry
        for entry in entries
        if code_rules.wants_renewal(entry) or entry.row.number in unfinished
    ]
    return Changes(
        codes=len(renewing),
        voided_codes=sum(1 for entry in renewing if entry.device is not None),
        tag_updates=sum(
            1
            for entry in entries
            if entry not in renewing and code_rules.may_tag(entry)
        ),
    )


def renewals_by_org(
    entries: Sequence[CodeEntry],
    default_org: str | None,
    own_org: str | None,
    unfinished: frozenset[int] = frozenset(),
    failing: Mapping[int, Outcome] | None = None,
) -> dict[str | None, list[CodeEntry]]:
    """
    Group the rows ``--renew`` changes (a code renewed, or tags applied) or fails
    (``failing``: their org refused the token) by the org they are in, orgs in
    report order; rows that spell out the token's own org go with the rows that
    name none (``live.orgs.org_key``).
    """
    failing = failing or {}
    groups: dict[str | None, list[CodeEntry]] = {}
    for entry in entries:
        changes = (
            code_rules.wants_renewal(entry)
            or entry.row.number in unfinished
            or entry.row.number in failing
            or code_rules.may_tag(entry)
        )
        if changes:
            key = org_key(entry.row.org_id, default_org, own_org)
            groups.setdefault(key, []).append(entry)
    return groups


def renewal_changes_by_org(
    entries: Sequence[CodeEntry],
    orgs: Mapping[str | None, OrgAccess],
    *,
    default_org: str | None,
    own_org: str | None,
    unfinished: frozenset[int] = frozenset(),
    failing: Mapping[int, Outcome] | None = None,
) -> Changes:
    """
    What ``--renew`` writes, and, when that is in other orgs than the command's own
    (a partner's report, its ``orgs`` checked and named by ``check_orgs``), org by
    org with each org's name and id, as a run confirms. A refused org is listed
    with its rows that will fail (``failing``), and changes nothing.
    """
    changes = renewal_changes(entries, unfinished)
    groups = renewals_by_org(entries, default_org, own_org, unfinished, failing)
    if not is_multi_org(list(groups), default_org):
        return changes
    by_org = tuple(
        OrgChanges(
            org=orgs[key].info,
            rows=len(group),
            changes=(
                Changes()
                if orgs[key].is_refused
                else renewal_changes(group, unfinished)
            ),
        )
        for key, group in groups.items()
    )
    return replace(changes, orgs=by_org)
