"""
What ``provisioner codes`` prints: the codes by state, and what ``--renew`` did.

Codes are secrets: the listing shows only their last four digits unless asked
(``--show-codes``), and then grouped as people read them off. Rows of an org that
refused the token are listed apart, as not checked, each org's reason said once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path

from provisioner.live import code_rules
from provisioner.live.code_rules import CodeEntry, CodeState
from provisioner.models import Outcome, OwnerKind, Row, Status
from provisioner.report.cells import format_code
from provisioner.report.safety import renewals_of
from provisioner.report.table import SUFFIXES
from provisioner.words import count_of, verb_for

__all__ = ["render_listing", "render_renewal"]

_ID_TAIL = 6
# Room for a workspace name or an email before the code column; longer ones are cut.
_NAME_WIDTH = 24
# States the counts line shows only when some code is in them.
_COUNTED_WHEN_SEEN = frozenset({CodeState.GONE, CodeState.UNCHECKED})


def render_listing(
    report: Path,
    entries: Sequence[CodeEntry],
    now: datetime,
    within: timedelta,
    *,
    show_codes: bool = False,
    renewing: bool = False,
    stopped_renewal: Path | None = None,
) -> list[str]:
    """
    Return the listing's lines: counts, then the rows of each state.

    ``stopped_renewal`` is the journal a ``--renew`` of this report left when it
    was stopped: the listing says so, and how to finish it.
    """
    by_state = {state: [e for e in entries if e.state is state] for state in CodeState}
    counts = " · ".join(
        f"{state.value} {len(by_state[state])}"
        for state in CodeState
        # Only a code whose device was deleted is gone, and only a partner's report
        # with a refused org has unchecked rows: counted when there are some.
        if state not in _COUNTED_WHEN_SEEN or by_state[state]
    )
    heading = (
        f"{report}: {count_of(len(entries), 'activation code')} as of {_when(now)} "
        f"(expiring = within {_span(within)})"
    )
    lines = [heading, f"  {counts}"]
    # A partner's report: a room named alike in two customers' orgs is told apart.
    orgs = len({entry.row.org_id for entry in entries}) > 1
    for state in CodeState:
        if by_state[state]:
            lines.append("")
            lines.append(f"{state.value}:")
            lines.extend(
                _entry_line(entry, now, show_codes=show_codes, orgs=orgs)
                for entry in by_state[state]
            )
    lines.extend(_refused_org_lines(by_state[CodeState.UNCHECKED]))
    deferred = [e for e in entries if e.outcome.tags_deferred]
    due = [e for e in deferred if e.needs_tags]
    renewable = [] if renewing else [e for e in entries if code_rules.wants_renewal(e)]
    if deferred or renewable:
        lines.append("")
    if deferred:
        lines.append(
            f"tags deferred on {len(deferred)} rows; {len(due)} of their devices "
            "have activated (--renew applies their tags)"
        )
    window = "" if within == code_rules.DEFAULT_WITHIN else f" --within {_flag(within)}"
    if renewable:
        lines.append(
            f"{len(renewable)} codes are expired or expiring; renew them with: "
            f"provisioner codes {report}{window} --renew"
        )
    lines.extend(_gone_lines(report, by_state[CodeState.GONE]))
    if stopped_renewal is not None:
        lines.append("")
        lines.append(
            f"a codes --renew of this report has not finished (it was stopped, or "
            f"is running now; its journal is {stopped_renewal}): the new codes it "
            "issued are kept there, and the old codes it voided are listed gone; "
            f"finish it with: provisioner codes {report}{window} --renew"
        )
    return lines


def _gone_lines(report: Path, gone: Sequence[CodeEntry]) -> list[str]:
    """
    Say what a gone code means, and where its replacement may be: a renewal of this
    report voids the codes it replaces, and writes the new ones to its own report.
    """
    if not gone:
        return []
    renewals = sorted(
        {
            path.name
            for suffix in SUFFIXES
            for path in renewals_of(report.with_suffix(suffix))
        }
    )
    where = (
        f"a renewal of this report wrote {', '.join(renewals)}: its codes replace "
        "these; list that report instead"
        if renewals
        else "a renewal, a rollback, or a person in Control Hub deleted them"
    )
    said = (
        f"{count_of(len(gone), 'code')} {verb_for(len(gone), 'is', 'are')} gone: "
        f"{verb_for(len(gone), 'its device was', 'their devices were')} deleted "
        f"({where}). --renew "
        "issues no new code for them: one would be a second code for a device, or "
        "bring back what a rollback took out"
    )
    return ["", said]


def _entry_line(
    entry: CodeEntry, now: datetime, *, show_codes: bool, orgs: bool = False
) -> str:
    row = entry.row
    code = entry.outcome.activation_code or ""
    shown = (format_code(code) or "") if show_codes else code_rules.mask_code(code)
    parts = [
        f"  row {row.number:<4}",
        *([_org_cell(row)] if orgs else []),
        f"{row.model or '?':<20}",
        _owner_cell(row),
        f"code {shown}",
    ]
    if entry.state is CodeState.ACTIVATED and entry.device is not None:
        status = entry.device.connection_status or "activated"
        mac = f", MAC {entry.device.mac}" if entry.device.mac else ""
        parts.append(f"device {status}{mac}")
    elif entry.state is CodeState.GONE:
        parts.append("device deleted: this code no longer works")
    elif entry.state is CodeState.EXPIRED and (
        entry.expiry is None or entry.expiry > now
    ):
        # The API's device says expired before this machine's clock does (another
        # clock: the emulator's, moved forward, or a skewed one): its word stands.
        said = "expired, the API says"
        if entry.expiry is not None:
            said += f" (its expiry by this machine's clock: {_when(entry.expiry)})"
        parts.append(said)
    elif entry.expiry is not None:
        verb = "expired" if entry.expiry <= now else "expires"
        parts.append(f"{verb} {_when(entry.expiry)} ({_relative(entry.expiry, now)})")
    if entry.outcome.tags_deferred:
        parts.append("tags deferred")
    return "  ".join(parts)


def _refused_org_lines(unchecked: Sequence[CodeEntry]) -> list[str]:
    """
    Each refused org once, after its rows: which rows, and why none was read.
    """
    rows: dict[str, list[int]] = {}
    reasons: dict[str, str] = {}
    for entry in unchecked:
        assert entry.refused_org is not None  # unchecked rows have one
        org = entry.refused_org.info
        rows.setdefault(org.label(), []).append(entry.row.number)
        reasons[org.label()] = org.refused or ""
    return [
        f"  {label}, row{'s' if len(numbers) > 1 else ''} "
        f"{', '.join(map(str, numbers))}: {reasons[label]}"
        for label, numbers in rows.items()
    ]


def _org_cell(row: Row) -> str:
    """
    The row's org, by the tail of its id (the token's own org when it names none).
    """
    if not row.org_id:
        return "org (the token's)".ljust(len("org …") + _ID_TAIL)
    return f"org …{row.org_id[-_ID_TAIL:]}"


def _owner_cell(row: Row) -> str:
    """
    The owner as the row named it: its name or email, else the tail of its id.
    """
    kind = "person" if row.owner_kind is OwnerKind.PERSON else "workspace"
    if row.owner_name:
        name = row.owner_name
        if len(name) > _NAME_WIDTH:
            name = name[: _NAME_WIDTH - 1] + "…"
        who = name
    else:
        who = f"…{(row.owner_id or '')[-_ID_TAIL:]}"
    return f"{kind} {who}".ljust(len("workspace ") + _NAME_WIDTH)


def render_renewal(
    entries: Sequence[CodeEntry],
    updated: Mapping[int, Outcome],
    paths: Sequence[Path],
) -> list[str]:
    """
    Return what ``--renew`` did: codes renewed, tags applied, failed rows whose
    code stands cleared, failures, the report.
    """
    old = {entry.row.number: entry.outcome for entry in entries}
    renewed = sorted(
        n
        for n, o in updated.items()
        if o.status is Status.CODE_ISSUED
        and o.activation_code != old[n].activation_code
    )
    tagged = sorted(
        n
        for n, o in updated.items()
        if old[n].tags_deferred
        and not o.tags_deferred
        and o.activation_code == old[n].activation_code
    )
    # Rows an earlier step left failed whose code checks out: code_issued again.
    cleared = sorted(
        n
        for n, o in updated.items()
        if old[n].status is Status.FAILED
        and o.status is not Status.FAILED
        and o.activation_code == old[n].activation_code
    )
    lines = [""]
    lines.append(f"renewed {len(renewed)} codes" + _rows(renewed))
    lines.append(f"applied deferred tags on {len(tagged)} rows" + _rows(tagged))
    if cleared:
        lines.append(
            f"cleared the failure of {len(cleared)} rows whose code stands "
            "(activated, or pending and not due)" + _rows(cleared)
        )
    lines.extend(_failure_lines(updated))
    for path in paths:
        lines.append(f"new report: {path}")
    return lines


def _failure_lines(updated: Mapping[int, Outcome]) -> list[str]:
    """
    One line per failure, rows that failed alike (a refused org's) on one line.
    """
    alike: dict[tuple[str | None, int | None, str | None], list[int]] = {}
    for number in sorted(updated):
        outcome = updated[number]
        if outcome.status is Status.FAILED:
            why = (outcome.error, outcome.http_status, outcome.tracking_id)
            alike.setdefault(why, []).append(number)
    lines = []
    for (error, http_status, tracking_id), numbers in alike.items():
        details = [f"HTTP {http_status}"] if http_status else []
        if tracking_id:
            details.append(f"tracking id {tracking_id}")
        extra = f" ({', '.join(details)})" if details else ""
        which = f"row{'s' if len(numbers) > 1 else ''} {', '.join(map(str, numbers))}"
        lines.append(f"{which} failed: {error}{extra}")
    return lines


def _rows(numbers: Sequence[int]) -> str:
    return f" (rows {', '.join(map(str, numbers))})" if numbers else ""


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _flag(delta: timedelta) -> str:
    hours = int(delta.total_seconds() // 3600)
    return f"{hours // 24}d" if hours % 24 == 0 else f"{hours}h"


def _span(delta: timedelta) -> str:
    hours = int(delta.total_seconds() // 3600)
    if hours % 24 == 0:
        return f"{hours // 24} days"
    return f"{hours} hours"


def _relative(moment: datetime, now: datetime) -> str:
    seconds = (moment - now).total_seconds()
    hours = abs(seconds) / 3600
    amount = f"{hours / 24:.0f} days" if hours >= 48 else f"{hours:.0f} hours"
    return f"in {amount}" if seconds > 0 else f"{amount} ago"
