"""
What the renewals of a run's report did to its code rows (pure: no I/O).

``codes --renew REPORT`` issues new codes for REPORT's expired and expiring ones,
deletes the old codes' pending devices (so those codes stop working), and writes the
new codes to a report of its own (``<report>-renewed``, then ``-renewed-2`` for a
renewal of that, …). It never writes the run's journal, which still holds the old
codes. Without this, the same run command again would report those rows from its
journal, every old code dead, and print them on the Activation codes sheet.

``renewed_outcomes`` lines a renewal's rows up with the run's by what they are
(``identity.row_keys``); ``renewed_since`` decides whether a renewal replaced the
code the journal holds: the renewal holds another code for the row, issued later.
The CLI reads the renewals' reports and hands them in (the run never imports the
report).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from provisioner.live.code_rules import with_report_owners
from provisioner.live.orgs import own_org_as_default
from provisioner.models import Manifest, Outcome, utc_moment
from provisioner.run.identity import row_keys

__all__ = ["Renewal", "renewed_outcomes", "renewed_since"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Renewal:
    """
    A report ``codes --renew`` wrote from the run's report: its rows and outcomes.
    """

    path: Path
    manifest: Manifest
    outcomes: Mapping[int, Outcome]


def renewed_outcomes(renewal: Renewal, own_org: str | None) -> dict[str, Outcome]:
    """
    The renewal's outcomes that hold a code on a device, by the row's identity
    (``row_keys``), as the run keys its own rows.

    Rows that named their owner by name get the id their run resolved it to (the
    report's ``owner`` cell), and rows that spell out ``own_org`` (the token's, when
    the run names no ``--org-id``) are keyed as rows that name no org: the run keys
    its rows so.
    """
    manifest = with_report_owners(renewal.manifest, renewal.outcomes)
    if own_org is not None:
        manifest = own_org_as_default(manifest, own_org)
    found: dict[str, Outcome] = {}
    for number, key in row_keys(manifest.rows).items():
        outcome = renewal.outcomes.get(number)
        if outcome is not None and outcome.activation_code and outcome.device_id:
            found[key] = outcome
    return found


def renewed_since(
    done: Outcome, renewed: Iterable[tuple[Path, Outcome]]
) -> tuple[Path, Outcome] | None:
    """
    The renewal whose code replaced the one a row's journal ended it with (``done``),
    with the row's outcome as that renewal left it (numbered as ``done``, the run's
    row); None when none did, and the journal's word stands.

    A renewal replaced it when it holds another code for the row that the API
    issued later: its expiry is later (both are the API's stamps, so no clock of
    this machine enters). Of several, the latest code wins: a renewal of a renewal,
    or the renewals of the report's CSV and XLSX. A code the run issued after a
    renewal (a ``--fresh`` start over, or a row a rollback made the journal forget)
    is the later one, and stands. A code without an expiry, on either side, is not
    compared: the journal's word stands.
    """
    if not done.activation_code:
        return None
    issued = utc_moment(done.activation_expiry)
    if issued is None:
        return None
    latest: tuple[Path, Outcome] | None = None
    for path, outcome in renewed:
        expiry = utc_moment(outcome.activation_expiry)
        if (
            outcome.activation_code == done.activation_code
            or expiry is None
            or expiry <= issued
        ):
            continue
        if latest is None or expiry >= (
            utc_moment(latest[1].activation_expiry) or expiry
        ):
            latest = (path, outcome)
    if latest is None:
        return None
    path, outcome = latest
    return path, replace(outcome, row=done.row, owner=outcome.owner or done.owner)
