"""
``provisioner codes REPORT``: where each issued activation code stands, and renewal.

Listing makes read calls only and never prints a code in full unless asked
(``--show-codes``); a code whose device was deleted is ``gone`` (never on the
printable sheet), and a renewal of the report that has not finished is named, with
the command that finishes it. ``--renew`` issues fresh codes for the expired and
expiring ones whose devices never activated (never for a gone one: its device was
deleted, by a renewal that replaced it, say), applies tags that waited for
activation, gives a row an earlier step left ``failed`` whose code stands its true
status back, and writes a new complete report (mode 0600: it holds codes). While it
works it keeps a journal beside that report, as a run does (each new code is kept
there before the old device is deleted), so the same command after a kill or a
Ctrl-C carries on where it stopped; the journal goes once the report is written. The
rows of an org the token may not act for (a partner's report) are not read
(``codes_orgs``): they are listed as not checked, and those whose code ``--renew``
would renew fail with their org's reason, keeping their code; the other orgs go on.
The decisions live in ``provisioner.live.code_rules``; this module is the
translator.
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

import anyio
import click

from provisioner.cli.codes_listing import render_listing, render_renewal
from provisioner.cli.codes_orgs import (
    LIST_CODES,
    RENEW_CODES,
    check_orgs,
    refuse_unfinished,
    refused_rows,
    renewal_changes_by_org,
)
from provisioner.cli.common import (
    ConnectionOptions,
    build_settings,
    connection_options,
)
from provisioner.cli.confirm import confirm_changes, yes_option
from provisioner.cli.exit_codes import EXIT_FAILED_ROWS, EXIT_OK
from provisioner.cli.failures import command_errors
from provisioner.cli.finish import set_aside_lines
from provisioner.cli.history import group_by_option, group_column, story_of_report
from provisioner.cli.run import ROWS_BUSY, rows_journals
from provisioner.live import code_rules
from provisioner.live import codes as lifecycle
from provisioner.live.code_rules import CodeEntry, CodeState
from provisioner.live.target import resolve_target
from provisioner.logs import configure_logging
from provisioner.models import (
    Manifest,
    Outcome,
    RunKind,
    RunStats,
    Status,
)
from provisioner.report.files import (
    load_report,
    report_paths,
    write_codes_sheet,
    write_report,
)
from provisioner.report.safety import (
    prepare_folders,
    refuse_inputs,
    renewed_path,
    set_aside,
)
from provisioner.run.code_rows import code_renewer
from provisioner.run.journal import Journal, Phase, hold_journals, journal_path_for
from provisioner.settings import Settings
from provisioner.webex.client import ApiClient

__all__ = ["codes_command", "renewed_report_path"]


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
@click.option(
    "--sheet",
    "sheet",
    is_flag=False,
    flag_value="",
    default=None,
    metavar="[PATH]",
    help=(
        "Write the codes still pending (after --renew: with the new ones) as a "
        "printable Activation codes sheet, to PATH (.xlsx; default: next to REPORT, "
        "named <REPORT>-codes.xlsx). It holds the codes: mode 0600."
    ),
)
@group_by_option()
@yes_option()
@connection_options
def codes_command(
    report: Path,
    within: timedelta,
    renew: bool,
    output: Path | None,
    show_codes: bool,
    sheet: str | None,
    group_by: str | None,
    yes: bool,
    connection: ConnectionOptions,
) -> None:
    """
    List the activation codes in REPORT by state: activated, pending, expiring, expired.

    A code is activated once its device has a MAC or has been online, and gone
    once its device was deleted (the code no longer works; its replacement, if a
    renewal made one, is in that renewal's report). With --renew, expired and
    expiring codes of devices that never activated are replaced (the old pending
    device is deleted, so the old code stops working; a gone code gets no new one),
    tags deferred until
    activation are applied, and a failed row whose code stands is code_issued
    again; the new complete report goes next to REPORT with -renewed in its name,
    or to --report PATH.

    With --sheet, the codes still pending (not activated, not expired; after
    --renew, with the renewed ones) are also written as a printable sheet, one line
    per code with owner, model, the code and its expiry.

    The rows of an org the token may not act for (a partner's report) are not
    read: they are listed as not checked, with the org's reason, and with --renew
    those whose code is expired or expiring by the report fail, keeping their code.

    Exit status: 0 done, 1 some renewal or tag step failed or an org refused the
    token, 2 nothing could start.
    """
    with command_errors() as where, contextlib.ExitStack() as holding:
        paths = _output_paths(report, output) if renew else ()
        refuse_inputs(paths, [report], flag="--report")
        prepare_folders(paths, flag="--report")
        sheet_path = _sheet_path(report, sheet)
        if sheet_path is not None:
            refuse_inputs([sheet_path], [report, *paths], flag="--sheet")
            prepare_folders([sheet_path], flag="--sheet")
        manifest, outcomes = load_report(report)
        group = group_column(manifest, group_by)
        story = story_of_report(report, None)
        # At the pace the rollout's commands learned the API allows.
        settings = story.paced(
            build_settings(connection, os.environ, manifest=manifest)
        )
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
        work = _Work(
            settings=settings,
            now=now,
            within=within,
            renew=renew,
            yes=yes,
            journal_path=journal_path_for(paths[0]) if renew else None,
            made_by=max((end for _, end in story.spans()), default=None),
        )
        if renew:
            # A renewal works on the report's code rows: the run of the report (or
            # of one it came from) must not work them meanwhile. Held from before
            # any call to the end.
            sources = rows_journals(report, but=work.journal_path)
            holding.enter_context(hold_journals(sources, reason=ROWS_BUSY))
        entries, updated, stats, journal = anyio.run(
            work.run, manifest, outcomes, backend="asyncio"
        )
        try:
            listing = render_listing(
                report,
                entries,
                work.now,
                within,
                show_codes=show_codes,
                renewing=renew,
                stopped_renewal=None if renew else _stopped_renewal(report),
            )
            for line in listing:
                click.echo(line)
            merged = {**outcomes, **updated}
            if renew:
                # The report first: it is where the new codes are kept, whatever
                # happens to the sheet. Its line of the history goes into the
                # report (and the XLSX carries it on): the renewal's journal goes
                # once the report holds what it kept.
                stats = story.told(stats, RunKind.RENEWAL)
                moved = set_aside(paths, merged.values())
                write_report(manifest, merged, paths, stats, group_by=group)
                if journal is not None:
                    kept, journal = journal, None
                    kept.discard()
                for line in set_aside_lines(moved):
                    click.echo(line)
        finally:
            if journal is not None:
                journal.close()
        if sheet_path is not None:
            count = write_codes_sheet(
                manifest,
                merged,
                sheet_path,
                only=still_pending(entries, updated),
                group_by=group,
                org_names=story.org_names(),
            )
            click.echo(f"{count} pending activation codes written to {sheet_path}")
        # Rows an org did not let the command read: partly done, as a run with
        # a refused org is.
        unchecked = any(e.state is CodeState.UNCHECKED for e in entries)
        if not renew:
            raise SystemExit(EXIT_FAILED_ROWS if unchecked else EXIT_OK)
    # Against the report's codes: a row a stopped renewal already renewed counts.
    before = [replace(e, outcome=outcomes[e.row.number]) for e in entries]
    for line in render_renewal(before, updated, paths):
        click.echo(line)
    # Every code row as the new report has it, not only those this renewal changed:
    # exit 0 says each of them ended well.
    failed = any(merged[e.row.number].status is Status.FAILED for e in entries)
    raise SystemExit(EXIT_FAILED_ROWS if failed or unchecked else EXIT_OK)


@dataclass(slots=True, kw_only=True)
class _Work:
    """
    What the command does against the API: check the report's orgs, inspect the
    codes, then (with ``renew``) confirm and renew, journalled at ``journal_path``.
    ``now`` becomes the API's once its first answer has read that clock.
    """

    settings: Settings
    now: datetime
    within: timedelta
    renew: bool
    yes: bool
    journal_path: Path | None = None
    #: When the report's last command ended (its history): a device made after it
    #: holds no code of this report (``inspect_codes``); None when not known.
    made_by: datetime | None = None

    async def run(
        self, manifest: Manifest, outcomes: Mapping[int, Outcome]
    ) -> tuple[list[CodeEntry], dict[int, Outcome], RunStats, Journal | None]:
        """
        Inspect (and renew); with ``renew``, the renewal's journal is returned open
        (its lock held) until the report holding the new codes is written.
        """
        settings = self.settings
        started = lifecycle.now_utc()
        updated: dict[int, Outcome] = {}
        journal: Journal | None = None
        async with ApiClient(settings) as api:
            # The first call: a wrong URL or a refused token stops here, not as a
            # code "not found" on every row.
            target = await resolve_target(api, settings)
            # Expiry is the API's: judged by its clock, which that answer read.
            self.now = api.server_now()
            # A partner's report: an org that refuses the token leaves its own
            # rows unread, not the command stopped at their first read.
            code_rows = [row for row, _ in code_rules.issued_rows(manifest, outcomes)]
            orgs = await check_orgs(
                api,
                code_rows,
                default_org=settings.org_id,
                home=target,
                then=RENEW_CODES if self.renew else LIST_CODES,
                concurrency=settings.concurrency,
            )
            refused = refused_rows(code_rows, orgs, settings.org_id, target.org_id)
            try:
                done: dict[int, Outcome] = {}
                unfinished: frozenset[int] = frozenset()
                if self.renew:
                    # Taken before any write; a renewal stopped before (a kill
                    # included) left what it did there.
                    rows = code_rules.with_report_owners(manifest, outcomes).rows
                    journal = Journal.open(
                        self.journal_path, target, rows, clock=api.server_now
                    )
                    done, unfinished = _carried_over(journal)
                    refuse_unfinished(unfinished, refused)
                entries = await lifecycle.inspect_codes(
                    manifest,
                    {**outcomes, **done},
                    api,
                    now=self.now,
                    within=self.within,
                    org_id=settings.org_id,
                    refused=refused,
                    made_by=self.made_by,
                )
                if journal is not None:
                    failing = self._refused_renewals(entries)
                    confirm_changes(
                        target,
                        renewal_changes_by_org(
                            entries,
                            orgs,
                            default_org=settings.org_id,
                            own_org=target.org_id,
                            unfinished=unfinished,
                            failing=failing,
                        ),
                        yes=self.yes,
                        command="provisioner codes --renew",
                    )
                    renewed = await lifecycle.renew_codes(
                        entries,
                        api,
                        renew_row=code_renewer(api, settings, journal, entries),
                        tag_mode=settings.tag_mode,
                        unfinished=unfinished,
                    )
                    updated = {**done, **failing, **renewed}
            except BaseException:
                if journal is not None:
                    _let_go(journal)
                raise
            figures = api.statistics()
        stats = RunStats(
            started_at=started,
            finished_at=lifecycle.now_utc(),
            api_calls=figures.calls,
            rate_limited=figures.rate_limited,
            retries=figures.retries,
            target=target,
            worked=Counter(outcome.status for outcome in updated.values()),
        )
        return entries, updated, stats, journal

    def _refused_renewals(self, entries: Sequence[CodeEntry]) -> dict[int, Outcome]:
        """
        The rows of refused orgs whose code is due for renewal by the report: each
        fails with its org's reason and keeps its code.
        """
        failing = {}
        for entry in entries:
            outcome = code_rules.refused_renewal(entry, self.now, self.within)
            if outcome is not None:
                failing[entry.row.number] = outcome
        return failing


def _carried_over(journal: Journal) -> tuple[dict[int, Outcome], frozenset[int]]:
    """
    What a stopped renewal left in its journal: the rows it renewed (their new
    outcomes, which stand in for the report's), and the rows it began (carried on
    whatever their code's state now).
    """
    done: dict[int, Outcome] = {}
    unfinished = set()
    for number, entry in journal.entries().items():
        if entry.phase is not Phase.DONE:
            unfinished.add(number)
        elif entry.outcome is not None and entry.outcome.status is not Status.FAILED:
            done[number] = entry.outcome
    return done, frozenset(unfinished)


def _let_go(journal: Journal) -> None:
    """
    Close a renewal's journal as the command stops; one that recorded nothing (the
    renewal was not confirmed, or stopped before its first write) is removed.
    """
    try:
        empty = not journal.entries() and not journal.voids_left()
    except BaseException:
        journal.close()
        raise
    if empty:
        journal.discard()
    else:
        journal.close()


def renewed_report_path(report: Path) -> Path:
    """
    The default output of ``codes --renew``: beside REPORT, ``-renewed`` (then
    ``-renewed-2``, … for a renewal of a renewal), so the input stays as it was.
    The naming lives with ``report.safety.renewal_origin``, which undoes it for a
    rollback of that report.
    """
    return renewed_path(report)


def still_pending(
    entries: Sequence[CodeEntry], updated: Mapping[int, Outcome]
) -> frozenset[int]:
    """
    The rows whose code a person may still enter: pending or expiring, or renewed
    just now.
    """
    rows = set()
    for entry in entries:
        number = entry.row.number
        new = updated.get(number)
        if new is not None and new.activation_code != entry.outcome.activation_code:
            if new.activation_code:
                rows.add(number)
        elif entry.state in (CodeState.PENDING, CodeState.EXPIRING):
            rows.add(number)
    return frozenset(rows)


def _stopped_renewal(report: Path) -> Path | None:
    """
    The journal a ``--renew`` of REPORT left beside it when it was stopped (a kill,
    a Ctrl-C), or None: a renewal that finished removed its journal.
    """
    journal = journal_path_for(renewed_report_path(report))
    return journal if journal.is_file() else None


def _sheet_path(report: Path, sheet: str | None) -> Path | None:
    """
    Where ``--sheet`` writes: the path given, or ``<REPORT>-codes.xlsx`` beside REPORT.
    """
    if sheet is None:
        return None
    if sheet:
        return Path(sheet)
    return report.with_name(f"{report.stem}-codes.xlsx")


def _output_paths(report: Path, output: Path | None) -> tuple[Path, ...]:
    if output is None:
        return (renewed_report_path(report),)
    return report_paths(report, output)
