"""
Decide what the orgs a manifest names mean for its rows: pure, no I/O.

A partner's manifest gives each row an ``orgId``; a row without one goes to the
run's org (``--org-id``, else the token's own). The pre-flight reads each org once
(``preflight.read_orgs``): its supportedDevices answer, which doubles as the check
that the token may act for the org, and its name (``preflight.name_orgs``). These
functions turn what was read into values:

- ``org_keys``: each org the rows go to, once, in manifest order;
  ``own_org_as_default`` and ``org_key``: a row that spells out the token's own
  org goes where rows without ``orgId`` go, so the home org is one org, not two;
- ``OrgAccess`` and ``refusal``: what reading one org answered, and a refused read
  in one sentence a person can act on;
- ``with_catalogues``: every row judged against its own org's supported models;
- ``acted_for`` and ``merge_rows``: a refused org's rows set aside from the
  lookups that follow (owners by name, MACs), and the rest put back in place;
- ``org_problem``: a refused org's row as a live problem (``validate --live``, and a
  dry run); ``refused_outcome``: as a failed outcome (a run).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from provisioner.errors import ApiError, AuthError, NotFoundError
from provisioner.live.rules import cell_text, header, row_org, with_catalogue
from provisioner.models import (
    Manifest,
    OrgInfo,
    Outcome,
    Problem,
    Row,
    Status,
    SupportedModel,
)

__all__ = [
    "OrgAccess",
    "acted_for",
    "merge_rows",
    "org_id_refusal",
    "org_key",
    "org_keys",
    "org_problem",
    "own_org_as_default",
    "refusal",
    "refused_outcome",
    "with_catalogues",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class OrgAccess:
    """
    What reading one org answered: its supported models, or the refusal.

    ``supported`` is empty when the list could not be read for another reason (the
    rows are then judged by the bundled catalogue); ``error`` is the 401, 403 or
    404 that refused the org, whose rows then fail with ``info.refused``.
    """

    info: OrgInfo
    supported: tuple[SupportedModel, ...] = ()
    error: ApiError | None = None

    @property
    def is_refused(self) -> bool:
        """
        True when the token may not act for the org (or no such org exists).
        """
        return self.error is not None


def org_keys(rows: Iterable[Row], default_org: str | None) -> list[str | None]:
    """
    Return each org the rows go to, once, in order of first appearance.
    """
    return list(dict.fromkeys(row_org(row, default_org) for row in rows))


def org_key(
    org_id: str | None, default_org: str | None, own_org: str | None
) -> str | None:
    """
    The org a row's ``orgId`` (``org_id``) goes to, as the rows without one are keyed.

    Rows without ``orgId`` go to ``default_org`` (``--org-id``; None: the token's own
    org). When there is no ``--org-id``, a row that spells out ``own_org`` (the
    token's own org's id) goes there too: one org, counted and confirmed once.
    """
    key = org_id or default_org
    if default_org is None and own_org is not None and key == own_org:
        return None
    return key


def own_org_as_default(manifest: Manifest, own_org_id: str) -> Manifest:
    """
    Let rows whose ``orgId`` names the token's own org go where rows without one go.

    A command without ``--org-id`` keys the token's org None (its calls name no org);
    a row that spells that org's id out is the same org, not a partner's other one:
    kept apart it would get a rate controller of its own (twice the org's rate), a
    confirmation line of its own, and be counted as one more org. Only the rows
    change: a report keeps the cell as it was typed.
    """
    if not any(row.org_id == own_org_id for row in manifest.rows):
        return manifest
    rows = tuple(
        replace(row, org_id=None) if row.org_id == own_org_id else row
        for row in manifest.rows
    )
    return replace(manifest, rows=rows)


#: What a person does once a token that may act for the org is at hand, after a run.
RERUN_ROWS = "rerun its rows"


def refusal(error: ApiError, *, then: str = RERUN_ROWS) -> str:
    """
    Say in one sentence why an org's rows cannot run, and what to do about it.

    The sentence names no org: it stands beside the org's id (the rows' ``orgId``,
    the confirmation's org line). ``then`` is what to do with the right token (a
    run's rows are rerun; a rollback's rows are rolled back).
    """
    reason = error.message.rstrip(".")
    if isinstance(error, NotFoundError):
        return (
            f"no such org (HTTP 404: {reason}); check the rows' orgId (copy it from "
            "Control Hub or the partner hub)"
        )
    verb = (
        "refused the token for" if isinstance(error, AuthError) else "may not act for"
    )
    subject = "the API" if isinstance(error, AuthError) else "the token"
    return (
        f"{subject} {verb} this org (HTTP {error.status}: {reason}); use a token of "
        f"that org, or a partner admin's that manages it, then {then}"
    )


#: What a run reads first in the org ``--org-id`` names, and the scope it needs.
READ_SUPPORTED = ("read its supported devices", "spark-admin:telephony_config_read")
#: What ``export`` and ``rollback`` read there first, and the scope it needs.
LIST_DEVICES = ("list its devices", "spark-admin:devices_read")


def org_id_refusal(
    org_id: str, error: ApiError, *, read: tuple[str, str] = READ_SUPPORTED
) -> str:
    """
    Say why a command cannot start in the org ``--org-id`` names: it is unknown
    (404), or the token may not act for it or make ``read`` there (403). ``read`` is
    what the command read first there, and the scope that read needs.
    """
    what, scope = read
    reason = error.message.rstrip(".")
    if isinstance(error, NotFoundError):
        return (
            f"--org-id {org_id}: no such org (HTTP 404: {reason}); check the id (copy "
            "it from Control Hub or the partner hub)"
        )
    return (
        f"--org-id {org_id}: the token may not act for this org, or may not {what} "
        f"(HTTP {error.status}: {reason}); check the id, and use a token of that "
        f"org or a partner admin's that manages it (with {scope})"
    )


def with_catalogues(
    manifest: Manifest,
    supported: Mapping[str | None, tuple[SupportedModel, ...]],
    default_org: str | None,
) -> Manifest:
    """
    Judge each row against its own org's supported models (pure).

    Orgs often share one list, so the rows are judged once per distinct list (by
    ``rules.with_catalogue``, which keeps the checks across rows, such as a MAC on
    two rows); a row whose org has no list keeps the bundled catalogue's verdict.
    """
    orgs_by_list: dict[tuple[SupportedModel, ...], set[str | None]] = {}
    for key, models in supported.items():
        if models:
            orgs_by_list.setdefault(tuple(models), set()).add(key)
    rows = list(manifest.rows)
    for models, keys in orgs_by_list.items():
        judged = with_catalogue(manifest, models).rows
        for index, row in enumerate(manifest.rows):
            if row_org(row, default_org) in keys:
                rows[index] = judged[index]
    return replace(manifest, rows=tuple(rows))


def acted_for(
    manifest: Manifest, orgs: Mapping[str | None, OrgAccess], default_org: str | None
) -> Manifest:
    """
    The manifest without the rows nothing more is asked about: those of refused
    orgs, and those whose ``orgId`` cell is itself wrong (their org is unknown: a
    lookup in the token's own org would only add a second, misleading problem).
    """
    refused = {key for key, access in orgs.items() if access.is_refused}
    column = header(manifest, "orgId")
    rows = tuple(
        row
        for row in manifest.rows
        if row_org(row, default_org) not in refused
        and not any(problem.column == column for problem in row.problems)
    )
    if len(rows) == len(manifest.rows):
        return manifest
    return replace(manifest, rows=rows)


def merge_rows(manifest: Manifest, part: Manifest) -> Manifest:
    """
    Put the rows of ``part`` (a subset, rebuilt) back in place, by row number.
    """
    rebuilt = {row.number: row for row in part.rows}
    rows = tuple(rebuilt.get(row.number, row) for row in manifest.rows)
    return replace(manifest, rows=rows)


def org_problem(manifest: Manifest, row: Row, access: OrgAccess) -> Problem:
    """
    Name a refused org's row as a problem in its ``orgId`` column.
    """
    value = cell_text(manifest, row, "orgId") or (row.org_id or "")
    return Problem(header(manifest, "orgId"), value, access.info.refused or "")


def refused_outcome(row: Row, access: OrgAccess) -> Outcome:
    """
    A refused org's row: failed with the org's one reason, no call made for it.
    """
    error = access.error
    return Outcome(
        row=row.number,
        status=Status.FAILED,
        error=f"check org: {access.info.refused}",
        http_status=None if error is None else error.status,
        tracking_id=None if error is None else error.tracking_id,
    )
