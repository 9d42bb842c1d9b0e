"""
``provisioner rollback REPORT``: delete what a run made, and nothing else.

A translator: flags → Settings → ``roll_back`` under the run's signal watcher (with the
confirmation before the first delete) → the rollback's own report → summary → exit code.
The decisions (what to delete, keep or skip, and why) are ``inventory.rollback_rules``.

The rollback's report is the input report, every row once and as it was, with the
columns ``rollback``, ``rollbackReason``, ``rollbackHttpStatus`` and
``rollbackTrackingId`` on the right. It goes next to REPORT as ``<REPORT>-rollback``
(same format) unless ``--report`` says otherwise; its journal sits beside it, so the
same command continues a killed or interrupted rollback.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import click

from provisioner.cli.common import (
    ConnectionOptions,
    api_options,
    build_settings,
    fail,
)
from provisioner.cli.confirm import confirm_changes, yes_option
from provisioner.cli.exit_codes import (
    EXIT_FAILED_ROWS,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_UNUSABLE,
)
from provisioner.cli.failures import command_errors
from provisioner.cli.finish import set_aside_lines
from provisioner.cli.history import story_of_report
from provisioner.cli.progress import ProgressDisplay
from provisioner.cli.run import reruns_of, watch_signals
from provisioner.errors import ProvisionerError
from provisioner.inventory.export_rules import model_as_typed
from provisioner.inventory.rollback import RollbackRun, roll_back
from provisioner.inventory.rollback_rules import (
    ROLLBACK_COLUMNS,
    RollbackResult,
    RollbackStatus,
    count_by_status,
    renewed_away,
    renewed_into,
    rollback_cells,
    summary_items,
)
from provisioner.inventory.run_journals import RunJournalChange, run_journals
from provisioner.logs import configure_logging
from provisioner.models import Changes, Manifest, Outcome, Row, Target
from provisioner.redaction import add_secrets
from provisioner.report.files import (
    RESULT_COLUMNS,
    load_report,
    report_column_kinds,
    report_records,
)
from provisioner.report.history import load_history
from provisioner.report.safety import (
    aside_origin,
    numbered_path,
    prepare_folders,
    refuse_inputs,
    renewal_origin,
    renewals_of,
    set_aside,
)
from provisioner.report.table import SUFFIXES, TableFile
from provisioner.run.journal import journal_path_for, split_origins
from provisioner.settings import Settings
from provisioner.words import count_of, verb_for

if TYPE_CHECKING:
    from provisioner.report.xlsx import ColumnKinds

__all__ = ["format_rollback", "rollback_command", "rollback_report_path"]

# Rows listed by name on the terminal; the report lists them all.
_LISTED = 200
# The end of a device id shown in a listing: enough to find it in the report.
_ID_TAIL = 8
# The width of the wrapped rollbackReason column (characters).
_REASON_WIDTH = 60


@dataclass(frozen=True, slots=True, kw_only=True)
class _Job:
    """
    One rollback, decided before any call.
    """

    report: Path
    manifest: Manifest
    outcomes: Mapping[int, Outcome]
    settings: Settings
    paths: tuple[Path, ...]
    include_activated: bool
    dry_run: bool
    yes: bool
    quiet: bool
    #: When the rollout's commands ran (the report's history): a device a lost
    #: create's row finds by MAC is the rollout's only if the API made it then.
    earlier: tuple[tuple[datetime, datetime], ...] = ()


def rollback_report_path(report: Path, *, dry_run: bool = False) -> Path:
    """
    The default output of ``rollback REPORT``: beside it, ``-rollback`` (``-rollback-2``
    for a rollback of a rollback's report; ``-rollback-dry-run`` for a dry run), so
    the input stays as it was and the same command finds its journal again.
    """
    if dry_run:
        return report.with_name(f"{report.stem}-rollback-dry-run{report.suffix}")
    return numbered_path(report, "rollback")


@click.command(name="rollback")
@click.argument(
    "report_path", metavar="REPORT", type=click.Path(path_type=Path, dir_okay=False)
)
@click.option(
    "--report",
    "output",
    type=click.Path(path_type=Path),
    help=(
        "Write the rollback's report here: .xlsx or .csv for one file, no extension "
        "for both (default: next to REPORT, named <REPORT>-rollback, same format)."
    ),
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Read every device and list what would be deleted; delete nothing.",
)
@click.option(
    "--include-activated",
    is_flag=True,
    help=(
        "Also delete the devices of activation codes that were used (by default "
        "they are kept: someone set them up)."
    ),
)
@yes_option()
@api_options(
    tag_mode=False,
    org_purpose="roll back in this org (partner admins); a row's own orgId wins",
)
def rollback_command(
    report_path: Path,
    output: Path | None,
    dry_run: bool,
    include_activated: bool,
    yes: bool,
    connection: ConnectionOptions,
) -> None:
    """
    Delete what the run that wrote REPORT created, and nothing else.

    Deleted: the devices of created rows and the pending devices of code_issued
    rows. Never an adopted device, never one the report does not name, nor one
    the run's journal records as adopted whatever REPORT says. Each device
    is read first and kept if it no longer matches its row (another MAC or owner)
    or, for a code, if it was activated (unless --include-activated); the
    confirmation counts the devices those reads found to delete, as --dry-run
    plans them, and a code is read again just before its delete. The rollback
    writes its own report (every row once, with its rollback status and reason),
    and makes the run's journal forget the rows whose devices are gone, so the
    same run command provisions them again (with no run journal beside REPORT, a
    copy say, it warns and says what to do). Running the same command again continues an interrupted rollback; once done, it
    changes nothing. Exit codes: 0 every row ended well, 1 some delete failed, 2
    nothing could start, 130 interrupted.
    """
    with command_errors() as where:
        configure_logging(verbosity=connection.verbose, log_file=connection.log_file)
        manifest, outcomes = load_report(report_path)
        add_secrets(*(row.password for row in manifest.rows))
        # After the report: --max-rate ORG=R must name an org its rows go to.
        story = story_of_report(report_path, None)
        # At the pace the rollout's commands learned the API allows.
        settings = story.paced(
            build_settings(connection, os.environ, dry_run=dry_run, manifest=manifest)
        )
        where.base_url = settings.base_url
        add_secrets(settings.token)
        paths = _output_paths(report_path, output, dry_run=dry_run)
        job = _Job(
            report=report_path,
            manifest=manifest,
            outcomes=outcomes,
            settings=settings,
            paths=paths,
            include_activated=include_activated,
            dry_run=dry_run,
            yes=yes,
            quiet=connection.quiet,
            earlier=story.spans(),
        )
        raise SystemExit(_execute(job))


def _output_paths(
    report: Path, output: Path | None, *, dry_run: bool
) -> tuple[Path, ...]:
    default = rollback_report_path(report, dry_run=dry_run)
    if output is None:
        paths: tuple[Path, ...] = (default,)
    elif output.is_dir():
        paths = (output / default.name,)
    elif output.suffix.lower() in SUFFIXES:
        paths = (output,)
    elif output.suffix:
        fail(
            f'--report "{output}": a report is .xlsx or .csv, not "{output.suffix}"; '
            "give one of those extensions, or none to write both."
        )
    else:
        paths = tuple(Path(f"{output}{suffix}") for suffix in SUFFIXES)
    refuse_inputs(paths, [report], flag="--report")
    if dry_run and output is not None:
        for path in paths:
            if path.exists():
                fail(
                    f"{path} exists; a dry run never replaces a file: leave out "
                    "--report (a dry run writes …-rollback-dry-run.*) or choose "
                    "another path."
                )
    prepare_folders(paths, flag="--report")
    return paths


def _execute(job: _Job) -> int:
    """
    Roll back, write the report, print the summary; return the exit code.
    """
    display = ProgressDisplay(mode="quiet" if job.quiet else None)
    with display:
        run, stopped = anyio.run(
            _roll_back_until_signalled, job, display, backend="asyncio"
        )
    if run is None:
        click.echo(
            "Aborted: rows in flight were abandoned and no report was written. Every "
            "delete is in the journal; run the same command again to continue.",
            err=True,
        )
        return EXIT_INTERRUPTED
    # Rows whose codes a renewal replaced: their working codes are elsewhere.
    renewed = renewed_away(run.results, _renewals(job.report))
    noted = {n: renewed_into(run.results[n], name) for n, name in renewed.items()}
    run = replace(run, results={**run.results, **noted})
    try:
        moved = set_aside(job.paths, job.outcomes.values())
        _write_report(job, run)
    except (ProvisionerError, OSError) as error:
        fail(
            f"The rollback finished but its report could not be written: {error}. "
            "Every delete is in the journal: fix the cause (space, permissions) and "
            "run the same command again; it deletes nothing twice.",
            EXIT_FAILED_ROWS,
        )
    for line in format_rollback(run, job.manifest, job.paths):
        click.echo(line)
    for line in set_aside_lines(moved):
        click.echo(line)
    if run.unforgotten:
        click.echo(_no_run_journal_warning(job.report, run), err=True)
    for line in _renewed_warnings(job.report, renewed):
        click.echo(line, err=True)
    return _exit_code(job, run, stopped=stopped)


def _renewals(report: Path) -> list[tuple[str, Mapping[int, Outcome]]]:
    """
    The reports ``codes --renew`` wrote from REPORT beside it (as CSV or XLSX, and
    the renewals of those), nearest first, each by name with its outcomes: where
    the codes of REPORT's rows may have gone. One that cannot be read ends its
    chain: it says nothing.
    """
    found: list[tuple[str, Mapping[int, Outcome]]] = []
    for suffix in SUFFIXES:
        for path in renewals_of(report.with_suffix(suffix)):
            try:
                _manifest, outcomes = load_report(path)
            except ProvisionerError:
                break
            found.append((path.name, outcomes))
    return found


def _renewed_warnings(report: Path, renewed: Mapping[int, str]) -> list[str]:
    """
    Name the renewal reports that hold the working codes of rows this rollback
    found gone (``renewed_away``: row → report name), and what to do: roll those
    back too.
    """
    rows: dict[str, list[int]] = {}
    for number, name in sorted(renewed.items()):
        rows.setdefault(name, []).append(number)
    lines = []
    for name, numbers in rows.items():
        path = report.with_name(name)
        listed = ", ".join(str(number) for number in numbers)
        lines.append(
            f"Warning: the codes of rows {listed} were renewed (codes --renew) into "
            f"{path}: this rollback does not delete the pending devices of those "
            "codes, which keep working until that report is rolled back. Roll it "
            f"back too: provisioner rollback {path}"
        )
    return lines


def _no_run_journal_warning(report: Path, run: RollbackRun) -> str:
    """
    Say that no run journal was found to forget the rows whose devices are gone, and
    what to do: the report may be a copy, and the journal of the run that wrote it
    (in the folder it wrote it to) would still take those rows for done, so running
    that command again would change nothing.
    """
    rows = f"{run.unforgotten} row" + ("" if run.unforgotten == 1 else "s")
    journal = journal_path_for(report).name
    combined = split_origins(report)
    if combined:
        return _no_split_journal_warning(report, combined[-1], rows, run)
    if run.stats.dry_run:
        return (
            f"Warning: no run journal beside {report} ({journal}): if this report is "
            f"a copy, the run that wrote it would still take the {rows} whose devices "
            "this rollback deletes for done, and running it again would change "
            "nothing. Roll back the report it was copied from, in its own folder, "
            "instead (that run's journal then forgets them), or give that run "
            "command --fresh afterwards."
        )
    return (
        f"Warning: no run journal beside {report} ({journal}): if this report is a "
        f"copy, the run that wrote it still takes the {rows} whose devices are gone "
        "for done, and running it again changes nothing. Roll back the report it was "
        "copied from, in its own folder, too (it deletes nothing more, and that "
        "run's journal forgets them), or give that run command --fresh."
    )


def _no_split_journal_warning(
    report: Path, combined: Path, rows: str, run: RollbackRun
) -> str:
    """
    The warning of ``_no_run_journal_warning`` for one org's report of a partner run
    (``--split-by-org``): its run's journal is the combined report's, which is not
    beside it. Rolling back the combined report would delete every org's devices,
    so the way out is this org's report in the folder the run wrote it to.
    """
    journal = journal_path_for(combined).name
    takes = "would still take" if run.stats.dry_run else "still takes"
    gone = "this rollback deletes" if run.stats.dry_run else "are gone"
    return (
        f"Warning: {report.name} is named as one org's report of a partner run "
        f"(--split-by-org), and the journal of that run ({journal}, beside the "
        f"combined report {combined.name}) is not beside it: if this report is a "
        f"copy, that run {takes} the {rows} whose devices {gone} for done. Roll "
        f"back {report.name} in the folder the run wrote it to, too (it deletes "
        "nothing more, and the run's journal forgets those rows); not the combined "
        f"report {combined.name}, which would delete every org's devices."
    )


def _exit_code(job: _Job, run: RollbackRun, *, stopped: bool) -> int:
    if run.token_refused:
        click.echo(
            "Error: the token was refused mid-rollback; what was deleted is saved — "
            "set a fresh token and run the same command to continue.",
            err=True,
        )
        return EXIT_UNUSABLE
    if run.interrupted:
        click.echo(
            "Interrupted: the rows never begun are not_started in the report; run "
            "the same command again to continue.",
            err=True,
        )
        return EXIT_INTERRUPTED
    if job.dry_run:
        click.echo(
            "Dry run: nothing was deleted. To delete the planned devices, run the "
            "same command without --dry-run.",
            err=True,
        )
    failed = [r for r in run.results.values() if r.status is RollbackStatus.FAILED]
    if failed:
        click.echo(_failed_advice(failed), err=True)
    if stopped:
        # "Stopping" was said: Ctrl-C exits 130 (as ``run`` does), even when every
        # row had started and so finished.
        click.echo(
            "Stopped: every row had started when Ctrl-C came, and every one "
            "finished; the report is complete.",
            err=True,
        )
        return EXIT_INTERRUPTED
    return EXIT_FAILED_ROWS if failed else EXIT_OK


def _failed_advice(failed: Sequence[RollbackResult]) -> str:
    """
    What to do about the failed rows: retry them, unless the token may not act for
    their org (the same command cannot delete those; a token that may can).
    """
    refused = sum(1 for result in failed if result.org_refused)
    retry = "run the same command again to retry them (what was deleted stays deleted)"
    if not refused:
        return f"Some rows failed: their reason says why; {retry}."
    orgs = (
        f"{refused} of them are in an org the token may not act for: a retry with "
        "this token cannot delete them; their reason says which token can"
    )
    if refused == len(failed):
        return f"Some rows failed: {orgs}."
    return f"Some rows failed: their reason says why; {orgs}. For the others, {retry}."


async def _roll_back_until_signalled(
    job: _Job, display: ProgressDisplay
) -> tuple[RollbackRun | None, bool]:
    """
    Call ``roll_back``; once its deletes are about to start, confirm them, then let a
    watcher turn SIGINT/SIGTERM into its ``stop`` event.

    The run is None when a second signal abandoned the rollback; beside it, whether
    a stop was asked ("Stopping" was said).
    """
    stop = anyio.Event()
    run: RollbackRun | None = None
    error: ProvisionerError | None = None
    # Read by a dry run too (what the run made); only a real rollback makes them
    # forget rows.
    journals = run_journals(
        job.report,
        load_history(job.report),
        moved_from=aside_origin(job.report),
        renewed_from=_renewal_chain(job.report),
        reruns=tuple(reruns_of(job.report)),
    )
    async with anyio.create_task_group() as group:

        def before_deletes(target: Target, changes: Changes) -> None:
            confirm_changes(
                target, changes, yes=job.yes, command="provisioner rollback"
            )
            if threading.current_thread() is threading.main_thread():
                group.start_soon(watch_signals, stop, group.cancel_scope)

        try:
            run = await roll_back(
                job.manifest,
                job.outcomes,
                job.settings,
                journal_path=None if job.dry_run else journal_path_for(job.paths[0]),
                run_journals=journals.trusted,
                forget_only=journals.forget_only,
                renewal=journals.renewal,
                include_activated=job.include_activated,
                dry_run=job.dry_run,
                on_progress=display,
                stop=stop,
                before_deletes=before_deletes,
                earlier=job.earlier,
            )
        except ProvisionerError as exc:
            # Raised outside the group, so the caller sees the error itself.
            error = exc
        finally:
            group.cancel_scope.cancel()
    if error is not None:
        raise error
    return run, stop.is_set()


def _renewal_chain(report: Path) -> tuple[Path, ...]:
    """
    The reports the ``codes --renew`` that wrote REPORT read, nearest first, by
    their names (``report.safety.renewal_origin``): ``x-renewed-2`` was renewed
    from ``x-renewed``, and that from ``x``, the run's. Empty when REPORT's name is
    not a renewal's.
    """
    chain: list[Path] = []
    origin = renewal_origin(report)
    while origin is not None:
        chain.append(origin)
        origin = renewal_origin(origin)
    return tuple(chain)


def _write_report(job: _Job, run: RollbackRun) -> None:
    """
    Write the input report's rows as they were, each with its rollback columns.
    """
    header = (*job.manifest.columns, *RESULT_COLUMNS, *ROLLBACK_COLUMNS)
    secret = any(outcome.activation_code for outcome in job.outcomes.values())
    status_column = header.index("rollback")
    kinds = rollback_column_kinds(job.manifest, header)
    for path in job.paths:
        with TableFile(
            path, header, secret=secret, status_column=status_column, kinds=kinds
        ) as table:
            for row, record in zip(
                job.manifest.rows,
                report_records(job.manifest, job.outcomes),
                strict=True,
            ):
                table.append([*record, *rollback_cells(run.results[row.number])])
            table.summary = summary_items(
                list(run.results.values()),
                run.stats,
                report=str(job.report),
                base_url=run.target.base_url,
                org=run.target.org_label(),
            )


def rollback_column_kinds(manifest: Manifest, header: Sequence[str]) -> ColumnKinds:
    """
    The input report's look (ids as Text, the expiry as a date-time, errors wrapped),
    and the rollback's reason wrapped and its tracking id as Text.
    """
    from provisioner.report.xlsx import ColumnKinds

    report = report_column_kinds(manifest)
    return ColumnKinds(
        text=report.text | {header.index("rollbackTrackingId")},
        dates=report.dates,
        wrapped={**report.wrapped, header.index("rollbackReason"): _REASON_WIDTH},
    )


def format_rollback(
    run: RollbackRun, manifest: Manifest, paths: Sequence[Path]
) -> list[str]:
    """
    The end-of-rollback lines: counts, figures, the rows a person should look at
    (planned ones on a dry run), the report.
    """
    stats = run.stats
    counts = count_by_status(run.results.values())
    shown = " · ".join(f"{s.value} {n}" for s, n in counts.items() if n) or "no rows"
    heading = "Dry run of the rollback" if stats.dry_run else "Rollback"
    if stats.interrupted:
        heading += " interrupted"
    lines = [
        f"{heading}: {len(run.results)} rows · {shown}",
        (
            f"  took {stats.duration:.1f}s · {stats.api_calls} API calls"
            f" · {stats.rate_limited} rate-limited (429) · {stats.retries} retries"
        ),
    ]
    wanted = (RollbackStatus.PLANNED, RollbackStatus.KEPT, RollbackStatus.FAILED)
    listed = [r for r in run.results.values() if r.status in wanted]
    rows = {row.number: row for row in manifest.rows}
    lines.extend(_row_line(result, rows[result.row]) for result in listed[:_LISTED])
    if len(listed) > _LISTED:
        lines.append(f"  … and {len(listed) - _LISTED} more rows (see the report)")
    lines.extend(_journal_line(change) for change in run.journals)
    lines.extend(f"  report: {path}" for path in paths)
    return lines


def _journal_line(change: RunJournalChange) -> str:
    """
    What the rollback did to a run journal: forgot the rows whose devices are gone
    (the same run command does them again), or left it as it was, and why.
    """
    if change.left is None:
        return (
            f"  run journal {change.path}: forgot {count_of(change.forgotten, 'row')} "
            f"whose {verb_for(change.forgotten, 'device is', 'devices are')} gone; "
            "the same run command provisions "
            f"{verb_for(change.forgotten, 'it', 'them')} again"
        )
    return (
        f"  run journal {change.path} left as it was ({change.left}): it still takes "
        "the rolled-back rows for done; once it is free, run this rollback again (it "
        "deletes nothing twice), or give the same run command --fresh"
    )


def _row_line(result: RollbackResult, row: Row) -> str:
    what = row.mac or f"{model_as_typed(row.model) or 'device'} (activation code)"
    device = f" device …{result.device_id[-_ID_TAIL:]}" if result.device_id else ""
    return f"  row {result.row} {result.status.value}: {what}{device}: {result.reason}"
