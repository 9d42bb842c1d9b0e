"""
``provisioner codes REPORT``: where each issued activation code stands, and renewal.

Listing makes read calls only and never prints a code in full unless asked
(``--show-codes``). ``--renew`` issues fresh codes for the expired and expiring ones
whose devices never activated, applies tags that waited for activation, and writes a
new complete report (mode 0600: it holds codes). The decisions live in
``provisioner.codes``; this module is the translator.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import anyio
import click

from provisioner.cli.common import (
    ConnectionOptions,
    build_settings,
    connection_options,
)
from provisioner.cli.confirm import confirm_changes, yes_option
from provisioner.cli.exit_codes import EXIT_FAILED_ROWS, EXIT_OK
from provisioner.cli.failures import command_errors
from provisioner.cli.finish import set_aside_lines
from provisioner.live import code_rules
from provisioner.live import codes as lifecycle
from provisioner.live.code_rules import CodeEntry, CodeState
from provisioner.live.target import resolve_target
from provisioner.logs import configure_logging
from provisioner.models import Changes, Manifest, Outcome, RunStats, Status
from provisioner.report.files import load_report, report_paths, write_report
from provisioner.report.safety import refuse_inputs, set_aside
from provisioner.settings import Settings
from provisioner.webex.client import ApiClient

__all__ = ["codes_command", "renewal_changes", "renewed_report_path"]

_RENEWED_STEM = re.compile(r"^(?P<base>.*)-renewed(?:-(?P<n>\d+))?$")
_ID_TAIL = 6


def _within(_ctx: click.Context, _param: click.Parameter, value: str) -> timedelta:
    try:
        return code_rules.parse_within(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


@click.command(name="codes")
@click.argument("report", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--within",
    default="7d",
    show_default=True,
    metavar="WINDOW",
    callback=_within,
    help="A code expiring within this window (Nd or Nh) counts as expiring.",
)
@click.option(
    "--renew",
    is_flag=True,
    help=(
        "Issue fresh codes for expired and expiring codes of devices that never "
        "activated, apply deferred tags, and write a new report."
    ),
)
@click.option(
    "--report",
    "output",
    type=click.Path(path_type=Path),
    help="Where --renew writes the new report (default: next to REPORT, -renewed).",
)
@click.option(
    "--show-codes",
    is_flag=True,
    help="Print codes in full (they are secrets: by default only the last 4 digits).",
)
@yes_option()
@connection_options
def codes_command(
    report: Path,
    within: timedelta,
    renew: bool,
    output: Path | None,
    show_codes: bool,
    yes: bool,
    connection: ConnectionOptions,
) -> None:
    """
    List the activation codes in REPORT by state: activated, pending, expiring, expired.

    A code is activated once its device has a MAC or has been online. With --renew,
    expired and expiring codes of devices that never activated are replaced (the old
    pending device is deleted, so the old code stops working) and tags deferred until
    activation are applied; the new complete report goes next to REPORT with
    -renewed in its name, or to --report PATH.

    Exit status: 0 done, 1 some renewal or tag step failed, 2 nothing could start.
    """
    with command_errors() as where:
        paths = _output_paths(report, output) if renew else ()
        refuse_inputs(paths, [report], flag="--report")
        manifest, outcomes = load_report(report)
        settings = build_settings(connection, os.environ)
        where.base_url = settings.base_url
        configure_logging(
            verbosity=connection.verbose,
            log_file=connection.log_file,
            secrets=[settings.token, *(r.password for r in manifest.rows)],
        )
        if not code_rules.issued_rows(manifest, outcomes):
            click.echo(f"{report}: no activation codes in this report; nothing to do")
            raise SystemExit(EXIT_OK)
        now = lifecycle.now_utc()
        work = _Work(settings=settings, now=now, within=within, renew=renew, yes=yes)
        entries, updated, stats = anyio.run(
            work.run, manifest, outcomes, backend="asyncio"
        )
        listing = render_listing(
            report, entries, now, within, show_codes=show_codes, renewing=renew
        )
        for line in listing:
            click.echo(line)
        if not renew:
            raise SystemExit(EXIT_OK)
        merged = {**outcomes, **updated}
        moved = set_aside(paths, merged.values())
        write_report(manifest, merged, paths, stats)
        for line in set_aside_lines(moved):
            click.echo(line)
    for line in render_renewal(entries, updated, paths):
        click.echo(line)
    failed = any(o.status is Status.FAILED for o in updated.values())
    raise SystemExit(EXIT_FAILED_ROWS if failed else EXIT_OK)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Work:
    """
    What the command does against the API: inspect the codes, then (with ``renew``)
    confirm and renew.
    """

    settings: Settings
    now: datetime
    within: timedelta
    renew: bool
    yes: bool

    async def run(
        self, manifest: Manifest, outcomes: Mapping[int, Outcome]
    ) -> tuple[list[CodeEntry], dict[int, Outcome], RunStats]:
        settings = self.settings
        started = lifecycle.now_utc()
        updated: dict[int, Outcome] = {}
        async with ApiClient(settings) as api:
            # The first call: a wrong URL or a refused token stops here, not as a
            # code "not found" on every row.
            target = await resolve_target(api, settings)
            entries = await lifecycle.inspect_codes(
                manifest, outcomes, api, now=self.now, within=self.within
            )
            if self.renew:
                confirm_changes(
                    target,
                    renewal_changes(entries),
                    yes=self.yes,
                    command="provisioner codes --renew",
                )
                updated = await lifecycle.renew_codes(
                    entries, api, tag_mode=settings.tag_mode
                )
            figures = api.statistics()
        stats = RunStats(
            started_at=started,
            finished_at=lifecycle.now_utc(),
            api_calls=figures.calls,
            rate_limited=figures.rate_limited,
            retries=figures.retries,
            target=target,
        )
        return entries, updated, stats


def renewal_changes(entries: Sequence[CodeEntry]) -> Changes:
    """
    Count what ``--renew`` writes: a code per renewal (voiding the old code by
    deleting its pending device), tags on each activated device whose tags waited.
    """
    renewing = [entry for entry in entries if code_rules.wants_renewal(entry)]
    return Changes(
        codes=len(renewing),
        voided_codes=sum(1 for entry in renewing if entry.device is not None),
        tag_updates=sum(
            1
            for entry in entries
            if not code_rules.wants_renewal(entry)
            and entry.needs_tags
            and entry.device is not None
        ),
    )


def renewed_report_path(report: Path) -> Path:
    """
    The default output of ``codes --renew``: beside REPORT, ``-renewed`` (then
    ``-renewed-2``, … for a renewal of a renewal), so the input stays as it was.
    """
    match = _RENEWED_STEM.match(report.stem)
    if match is None:
        stem = f"{report.stem}-renewed"
    else:
        stem = f"{match['base']}-renewed-{int(match['n'] or 1) + 1}"
    return report.with_name(stem + report.suffix)


def _output_paths(report: Path, output: Path | None) -> tuple[Path, ...]:
    if output is None:
        return (renewed_report_path(report),)
    return report_paths(report, output)


def render_listing(
    report: Path,
    entries: Sequence[CodeEntry],
    now: datetime,
    within: timedelta,
    *,
    show_codes: bool = False,
    renewing: bool = False,
) -> list[str]:
    """
    Return the listing's lines: counts, then the rows of each state.
    """
    by_state = {state: [e for e in entries if e.state is state] for state in CodeState}
    counts = " · ".join(f"{state.value} {len(by_state[state])}" for state in CodeState)
    heading = (
        f"{report}: {len(entries)} activation codes as of {_when(now)} "
        f"(expiring = within {_span(within)})"
    )
    lines = [heading, f"  {counts}"]
    for state in CodeState:
        if by_state[state]:
            lines.append("")
            lines.append(f"{state.value}:")
            lines.extend(
                _entry_line(entry, now, show_codes=show_codes)
                for entry in by_state[state]
            )
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
    if renewable:
        window = (
            "" if within == code_rules.DEFAULT_WITHIN else f" --within {_flag(within)}"
        )
        lines.append(
            f"{len(renewable)} codes are expired or expiring; renew them with: "
            f"provisioner codes {report}{window} --renew"
        )
    return lines


def _entry_line(entry: CodeEntry, now: datetime, *, show_codes: bool) -> str:
    row = entry.row
    code = entry.outcome.activation_code or ""
    shown = code if show_codes else code_rules.mask_code(code)
    owner = "person" if row.person_id else "workspace"
    owner_id = row.owner_id or ""
    parts = [
        f"  row {row.number:<4}",
        f"{row.model or '?':<20}",
        f"{owner} …{owner_id[-_ID_TAIL:]:<{_ID_TAIL}}".ljust(len("workspace …") + 6),
        f"code {shown}",
    ]
    if entry.state is CodeState.ACTIVATED and entry.device is not None:
        status = entry.device.connection_status or "activated"
        mac = f", MAC {entry.device.mac}" if entry.device.mac else ""
        parts.append(f"device {status}{mac}")
    elif entry.expiry is not None:
        verb = "expired" if entry.expiry <= now else "expires"
        parts.append(f"{verb} {_when(entry.expiry)} ({_relative(entry.expiry, now)})")
    if entry.outcome.tags_deferred:
        parts.append("tags deferred")
    return "  ".join(parts)


def render_renewal(
    entries: Sequence[CodeEntry],
    updated: Mapping[int, Outcome],
    paths: Sequence[Path],
) -> list[str]:
    """
    Return what ``--renew`` did: codes renewed, tags applied, failures, the report.
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
    failed = sorted(n for n, o in updated.items() if o.status is Status.FAILED)
    lines = [""]
    lines.append(f"renewed {len(renewed)} codes" + _rows(renewed))
    lines.append(f"applied deferred tags on {len(tagged)} rows" + _rows(tagged))
    for number in failed:
        outcome = updated[number]
        details = [f"HTTP {outcome.http_status}"] if outcome.http_status else []
        if outcome.tracking_id:
            details.append(f"tracking id {outcome.tracking_id}")
        extra = f" ({', '.join(details)})" if details else ""
        lines.append(f"row {number} failed: {outcome.error}{extra}")
    for path in paths:
        lines.append(f"new report: {path}")
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
