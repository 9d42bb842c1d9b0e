"""
Report a partner's run org by org: counts per org, and one report per org.

A row goes to its own ``orgId``, else to the run's org (the target's). Every row is
counted in exactly one org, so the per-org counts add up to the whole. The orgs are
shown as the run named them (``RunStats.orgs``); an org the run did not look up
(a rerun's rows left alone) is shown by its id.

``split_by_org`` cuts the manifest and its outcomes into one part per org, each
part a complete report of its rows (their row numbers kept, so each part can be
re-run with ``rerun`` on its own); ``org_report_paths`` names a part's files
beside the combined report's. All of it is pure.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from provisioner.models import Manifest, OrgInfo, Outcome, Row, RunStats, Status

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
        parts.append(
            OrgPart(
                org=info,
                manifest=replace(manifest, rows=tuple(rows)),
                outcomes={n: o for n, o in outcomes.items() if n in numbers},
                stats=replace(
                    stats,
                    orgs=(info,),
                    rows_worked=None,
                    part_of_orgs=len(groups),
                    # The org's own learned limit, where the whole run's has none.
                    learned_limit=stats.limit_of(info.key),
                    org_limits=(),
                ),
            )
        )
    return parts


def org_report_paths(paths: Sequence[Path], org: OrgInfo) -> tuple[Path, ...]:
    """
    Name an org's report files beside the combined ones: ``<stem>-org-<slug>.<ext>``.

    The slug is the org's name made safe for a file name, then a short form of its
    id (the first block of the UUID inside a Webex id), so two orgs of one name
    never share a file; the token's own org, unnamed and without an id, is ``own``.
    """
    slug = _slug(org)
    return tuple(
        path.with_name(f"{path.stem}-org-{slug}{path.suffix}") for path in paths
    )


def _slug(org: OrgInfo) -> str:
    parts = []
    if org.name:
        name = re.sub(r"[^a-z0-9]+", "-", org.name.lower()).strip("-")[:40]
        if name:
            parts.append(name)
    org_id = org.id or org.key
    if org_id:
        parts.append(_short_id(org_id))
    return "-".join(parts) or "own"


def _short_id(org_id: str) -> str:
    """
    The first block of the UUID a Webex id encodes, else the id's last characters.
    """
    try:
        decoded = base64.b64decode(org_id + "=" * (-len(org_id) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        decoded = ""
    tail = decoded.rsplit("/", 1)[-1]
    if re.fullmatch(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}", tail):
        return tail[:8].lower()
    return re.sub(r"[^A-Za-z0-9]+", "", org_id)[-8:] or "org"
