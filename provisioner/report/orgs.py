"""
Report a partner's run org by org: counts per org, and one report per org.

A row goes to its own ``orgId``, else to the run's org (the target's). Every row is
counted in exactly one org, so the per-org counts add up to the whole. The orgs are
shown as the run named them (``RunStats.orgs``); an org the run did not look up
(a rerun's rows left alone) as the run history last named it, else by its id.

``split_by_org`` cuts the manifest and its outcomes into one part per org, each
part a complete report of its rows (their row numbers kept, so each part can be
re-run with ``rerun`` on its own); ``org_report_paths`` names all the parts' files
together, beside the combined report's and distinct from it and from each other.
All of it is pure.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from provisioner.models import (
    Manifest,
    OrgInfo,
    Outcome,
    Row,
    RunKind,
    RunRecord,
    RunStats,
    Status,
)

__all__ = [
    "OrgCount",
    "OrgPart",
    "count_by_org",
    "is_multi_org",
    "org_report_paths",
    "split_by_org",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class OrgCount:
    """
    One org's rows, counted by status.
    """

    org: OrgInfo
    rows: int
    by_status: Mapping[Status, int]


@dataclass(frozen=True, slots=True, kw_only=True)
class OrgPart:
    """
    One org's share of a report: its rows as a manifest, and their outcomes.
    """

    org: OrgInfo
    manifest: Manifest
    outcomes: Mapping[int, Outcome]
    stats: RunStats


def _default_org(stats: RunStats) -> str | None:
    return stats.target.org_id if stats.target is not None else None


def _rows_by_org(manifest: Manifest, stats: RunStats) -> dict[str | None, list[Row]]:
    default = _default_org(stats)
    groups: dict[str | None, list[Row]] = {}
    for row in manifest.rows:
        groups.setdefault(row.org_id or default, []).append(row)
    return groups


def _info(key: str | None, stats: RunStats) -> OrgInfo:
    for info in stats.orgs:
        # The run keys the token's own org None; the report knows its id (target).
        if info.key == key or (key is not None and info.id == key):
            return info
    target = stats.target
    if target is not None and target.org_name and key in (None, target.org_id):
        # The run's own org, named by the target even when the run did not look it
        # up among the orgs (a rerun of another org's rows); its rows key to its id.
        return OrgInfo(key=key, id=target.org_id, name=target.org_name)
    if key is not None:
        # An org this command did not look up (a rerun's rows left alone): named as
        # the latest earlier command that looked it up named it.
        for record in reversed(stats.history):
            name = dict(record.org_names).get(key)
            if name:
                return OrgInfo(key=key, id=key, name=name)
    return OrgInfo(key=key, id=key)


def is_multi_org(manifest: Manifest, stats: RunStats) -> bool:
    """
    True when the rows go to another org than the run's own (a partner's run).
    """
    return bool(stats.orgs) or any(
        key != _default_org(stats) for key in _rows_by_org(manifest, stats)
    )


def count_by_org(
    manifest: Manifest, outcomes: Mapping[int, Outcome], stats: RunStats
) -> tuple[OrgCount, ...]:
    """
    Count every row's status in its own org, orgs in manifest order.

    ``outcomes`` holds an outcome for every row (``complete_outcomes``).
    """
    counts = []
    for key, rows in _rows_by_org(manifest, stats).items():
        by_status = Counter(outcomes[row.number].status for row in rows)
        counts.append(
            OrgCount(
                org=_info(key, stats),
                rows=len(rows),
                by_status={status: by_status[status] for status in Status},
            )
        )
    return tuple(counts)


def split_by_org(
    manifest: Manifest, outcomes: Mapping[int, Outcome], stats: RunStats
) -> list[OrgPart]:
    """
    Cut a report into one complete part per org, each row in exactly one part.
    """
    parts = []
    groups = _rows_by_org(manifest, stats)
    for key, rows in groups.items():
        info = _info(key, stats)
        numbers = {row.number for row in rows}
        own = {n: o for n, o in outcomes.items() if n in numbers}
        parts.append(
            OrgPart(
                org=info,
                manifest=replace(manifest, rows=tuple(rows)),
                outcomes=own,
                stats=replace(
                    stats,
                    orgs=(info,),
                    rows_worked=None,
                    part_of_orgs=len(groups),
                    # The org's own learned limit, where the whole run's has none.
                    learned_limit=stats.limit_of(info.key),
                    org_limits=(),
                    history=_org_history(stats, info, own),
                ),
            )
        )
    return parts


def _org_history(
    stats: RunStats, org: OrgInfo, outcomes: Mapping[int, Outcome]
) -> tuple[RunRecord, ...]:
    """
    The rollout's history as one org's report tells it: a partner forwards that
    report to that customer, so no record names another customer's org (names,
    limits) or counts its rows. A record's counts are the whole run's: kept for
    this org only where they are all its own (this command, a plain run of every
    row), else left out (the combined report has them).
    """
    ours = {org.id, org.key} - {None}
    plain = not stats.resumed and not stats.interrupted and not stats.dry_run
    history = []
    for index, record in enumerate(stats.history):
        last = index == len(stats.history) - 1
        counts: Mapping[Status, int] = {}
        if last and plain and record.kind is RunKind.RUN:
            counts = dict(Counter(outcome.status for outcome in outcomes.values()))
        history.append(
            replace(
                record,
                counts=counts,
                org_names=tuple(p for p in record.org_names if p[0] in ours),
                limits=tuple(p for p in record.limits if p[0] in ours),
            )
        )
    return tuple(history)


def org_report_paths(
    paths: Sequence[Path], orgs: Sequence[OrgInfo]
) -> list[tuple[Path, ...]]:
    """
    Name each org's report files beside the combined ones: ``<stem>-org-<slug>.<ext>``.

    ``orgs`` are all the orgs of one run (``split_by_org``'s parts); the result
    names each one's files, in the same order. The slug is the org's name made safe
    for a file name, then a short form of its id (the first block of the UUID inside
    a Webex id), so two orgs of one name never share a file; the token's own org,
    unnamed and without an id, is ``own``.

    The names are decided together because short ids can clash: an org whose
    files would be another org's (two ids whose UUIDs share a first block), or the
    combined report's, takes its whole id instead, and a number on top if even that
    clashes. Names are compared without case, as macOS and Windows do. Every other
    org keeps its short name, so an ordinary run's names stay as they were.
    """
    combined = {_folded(path) for path in paths}
    slugs = [_slug(org, whole=False) for org in orgs]
    clashing = _clashing(paths, slugs, combined)
    slugs = [
        _slug(org, whole=True) if index in clashing else slug
        for index, (org, slug) in enumerate(zip(orgs, slugs, strict=True))
    ]
    return [_named(paths, slug) for slug in _numbered(paths, slugs, combined)]


def _named(paths: Sequence[Path], slug: str) -> tuple[Path, ...]:
    return tuple(
        path.with_name(f"{path.stem}-org-{slug}{path.suffix}") for path in paths
    )


def _folded(path: Path) -> str:
    # Two names that differ only in case are one file on macOS and Windows.
    return str(path).casefold()


def _clashing(paths: Sequence[Path], slugs: Sequence[str], taken: set[str]) -> set[int]:
    """
    The indexes of the slugs whose files another slug's, or ``taken``, would be.
    """
    names = [{_folded(path) for path in _named(paths, slug)} for slug in slugs]
    counts = Counter(name for own in names for name in own)
    return {
        index
        for index, own in enumerate(names)
        if any(counts[name] > 1 or name in taken for name in own)
    }


def _numbered(
    paths: Sequence[Path], slugs: Sequence[str], combined: set[str]
) -> list[str]:
    """
    Number the slugs that still clash (``-2``, ``-3``, in order), the first of a
    kind keeping its own where it is free; a slug that clashes with none stays.
    """
    clashing = _clashing(paths, slugs, combined)
    # Reserve the names that are already distinct, so no number takes one of them.
    taken = set(combined)
    for index, slug in enumerate(slugs):
        if index not in clashing:
            taken |= {_folded(path) for path in _named(paths, slug)}
    numbered = []
    for index, slug in enumerate(slugs):
        candidate, number = slug, 1
        while index in clashing:
            names = {_folded(path) for path in _named(paths, candidate)}
            if not names & taken:
                taken |= names
                break
            number += 1
            candidate = f"{slug}-{number}"
        numbered.append(candidate)
    return numbered


def _slug(org: OrgInfo, *, whole: bool) -> str:
    parts = []
    if org.name:
        name = re.sub(r"[^a-z0-9]+", "-", org.name.lower()).strip("-")[:40]
        if name:
            parts.append(name)
    org_id = org.id or org.key
    if org_id:
        parts.append(_id_part(org_id, whole=whole))
    return "-".join(parts) or "own"


def _id_part(org_id: str, *, whole: bool) -> str:
    """
    The UUID a Webex id encodes (its first block unless ``whole``), else the id's
    last eight characters (all of them if ``whole``), safe for a file name.
    """
    try:
        decoded = base64.b64decode(org_id + "=" * (-len(org_id) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        decoded = ""
    tail = decoded.rsplit("/", 1)[-1]
    if re.fullmatch(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}", tail):
        return tail.lower() if whole else tail[:8].lower()
    safe = re.sub(r"[^A-Za-z0-9]+", "", org_id)
    return (safe if whole else safe[-8:]) or "org"
