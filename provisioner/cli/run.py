"""
The ``run`` and ``rerun`` commands: a manifest (or a report) in, a complete report out.

Both are translators: flags → Settings → ``provision()`` under a signal watcher →
``write_report`` → summary → exit code. Every decision about rows lives in the library.

Ctrl-C (SIGINT) or SIGTERM asks the engine to stop starting rows; rows in flight finish,
the journal keeps them, the report is written and the command exits 130. Running the
same command again continues from the journal. A second Ctrl-C abandons the rows in
flight at once: they are ``not_started`` in the report, which is still written (the
journal keeps every finished row, and each abandoned row's entry stays open). Only a
third stops without a report. Ctrl-C before the watcher (the startup; the
confirmation's question aside) or after it (the report) is the group's: exit 130.

``run`` and ``rerun`` share their signal watcher, their outputs and their messages,
which is why both live in this one (longer than usual) module.
"""

from __future__ import annotations

import os
import shlex
import signal
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import click
import structlog
from anyio.abc import TaskStatus
from click.core import ParameterSource

from provisioner.cli.common import (
    ConnectionOptions,
    build_settings,
    connection_options,
    fail,
)
from provisioner.cli.confirm import confirm_changes, yes_option
from provisioner.cli.exit_codes import EXIT_INTERRUPTED, EXIT_OK
from provisioner.cli.failures import command_errors
from provisioner.cli.finish import Finish, finish_run
from provisioner.cli.history import (
    Story,
    group_by_option,
    group_column,
    story_of_manifest,
    story_of_report,
)
from provisioner.cli.progress import ProgressDisplay
from provisioner.errors import ProvisionerError
from provisioner.intake.manifest import load_manifest
from provisioner.logs import configure_logging
from provisioner.models import (
    Changes,
    Manifest,
    Outcome,
    Row,
    RunKind,
    TagMode,
    Target,
)
from provisioner.redaction import add_secrets
from provisioner.report.files import (
    load_report,
    report_paths,
    rows_to_rerun,
)
from provisioner.report.safety import (
    looks_like_report,
    numbered_origin,
    numbered_path,
    prepare_folders,
    refuse_inputs,
    refuse_real_report,
    renewal_origin,
    renewals_of,
)
from provisioner.report.table import SUFFIXES
from provisioner.run.engine import RunResult, provision
from provisioner.run.journal import (
    Journal,
    hold_journals,
    journal_path_for,
    read_split,
    split_origin,
    split_origins,
)
from provisioner.run.renewals import Renewal
from provisioner.settings import DEFAULT_CONCURRENCY, Settings

__all__ = [
    "ROWS_BUSY",
    "renewals_for",
    "rerun",
    "rerun_report_path",
    "reruns_of",
    "rows_journals",
    "run",
    "watch_signals",
]

log = structlog.get_logger()


_DRY_RUN = "-dry-run"


@dataclass(frozen=True, slots=True, kw_only=True)
class _Job:
    """
    One call of ``provision`` and the report it ends in, decided before anything runs.
    """

    manifest: Manifest
    settings: Settings
    paths: tuple[Path, ...]
    journal_path: Path | None
    previous: Mapping[int, Outcome] | None = None
    only_rows: frozenset[int] | None = None
    quiet: bool = False
    #: ``--yes``: change a non-loopback org without asking.
    yes: bool = False
    #: ``--fresh``: forget the journal's rows (voiding their codes) and start over.
    fresh: bool = False
    #: Where a rerun's report was written, when its journal says.
    previous_target: Target | None = None
    #: The command as people type it, for the confirmation's words.
    command: str = "provisioner run"
    #: After a dry run: the command that makes its changes.
    real_command: str | None = None
    #: The rollout's commands so far, and what this one reads.
    story: Story | None = None
    #: What this command is, for its line of the run history.
    kind: RunKind = RunKind.RUN
    #: ``--group-by``: the manifest column the Summary counts rows by.
    group_by: str | None = None
    #: ``--split-by-org``: one report per org besides the combined one.
    split_by_org: bool = False
    #: The journals of the reruns of the journal's report, each with its report.
    reruns: Mapping[Path, Path] = field(default_factory=dict)
    #: The reports the renewals of the journal's report wrote (``renewals_for``).
    renewals: tuple[Renewal, ...] = ()

    @property
    def finish(self) -> Finish:
        return Finish(
            manifest=self.manifest,
            paths=self.paths,
            real_command=self.real_command,
            group_by=self.group_by,
            split_by_org=self.split_by_org,
            reruns=self.reruns,
        )


def rerun_report_path(report: Path) -> Path:
    """
    The default output of ``rerun REPORT``: next to it, named ``-rerun`` (then
    ``-rerun-2``, ``-rerun-3``, … for a rerun of a rerun), so the input stays as it was.
    """
    return numbered_path(report, "rerun")


#: Why a command working on a report's rows stops while a run of them is at work.
ROWS_BUSY = (
    "(of the report this command works from, or of one it came from): two at once "
    "would work its rows twice (an activation code issued twice). Wait for it to "
    "finish, then run this command again"
)


def _rerun_origin(report: Path) -> Path | None:
    """
    The report a ``rerun`` read to write ``report`` by default (``rerun_report_path``
    undone), or None when the name is not one it gives.
    """
    return numbered_origin(report, "rerun")


def _rehearsed(report: Path) -> Path | None:
    """
    The report of the run a dry run rehearsed (``_dry_run_paths`` undone), or None.
    """
    stem = report.stem.removesuffix(_DRY_RUN)
    if stem in ("", report.stem):
        return None
    return report.with_name(stem + report.suffix)


def rows_journals(report: Path, *, but: Path | None = None) -> tuple[Path, ...]:
    """
    The run journals of the commands that work on REPORT's rows: REPORT's own, and
    those of the reports it was rerun or renewed from, or whose run it rehearsed,
    by its name (``-rerun``, ``-renewed``, ``-dry-run``, …), back to the run's. A rerun of REPORT or a renewal of its codes
    holds them (``hold_journals``), so neither works while the run of one of them
    does: each would start the same rows (two activation codes for one row).

    ``but`` is the journal the command writes itself (and locks as it opens it).
    """
    found = []
    current: Path | None = report
    while current is not None:
        found.append(journal_path_for(current))
        current = (
            _rerun_origin(current) or renewal_origin(current) or _rehearsed(current)
        )
    skipped = None if but is None else but.resolve()
    return tuple(path for path in found if path.resolve() != skipped)


def reruns_of(report: Path) -> dict[Path, Path]:
    """
    The journals of the reruns of ``report`` beside it, each with the rerun's report:
    ``<report>-rerun``, then the rerun of that (``-rerun-2``), and so on while there
    is one; and those of the per-org reports the journal of each records as written
    from its rows (``--split-by-org``, ``read_split``: ``<report>-org-<org>-rerun``…).
    A row the report's run failed that one of them ended since is reported as it
    ended there (``provision``'s ``reruns``).
    """
    found: dict[Path, Path] = {}
    current = report
    while True:
        for name in sorted(read_split(journal_path_for(current))):
            found.update(reruns_of(current.with_name(name)))
        current = rerun_report_path(current)
        journal = journal_path_for(current)
        if not journal.is_file():
            return found
        found[journal] = _written_report(current)


def renewals_for(report: Path) -> tuple[Renewal, ...]:
    """
    The reports ``codes --renew`` wrote from ``report`` beside it, as CSV or XLSX
    (``-renewed``, then the renewal of that, ``-renewed-2``, …), read: a code row the
    report's run ended with a code one of them replaced since is reported as it
    left it (``provision``'s ``renewals``). One that cannot be read ends its chain:
    it says nothing.
    """
    found: list[Renewal] = []
    for suffix in SUFFIXES:
        for path in renewals_of(report.with_suffix(suffix)):
            try:
                manifest, outcomes = load_report(path)
            except ProvisionerError as error:
                log.warning("renewal_not_read", path=str(path), error=str(error))
                break
            found.append(Renewal(path=path, manifest=manifest, outcomes=outcomes))
    return tuple(found)


def _macs_elsewhere(report: Path, manifest: Manifest) -> dict[str, tuple[int, ...]]:
    """
    The MACs of the run's rows outside REPORT, with their row numbers, when REPORT is
    one org's report of a partner run (``--split-by-org``): its combined report's
    other rows (``Manifest.elsewhere``). The run found a MAC on two orgs' rows a
    duplicate on both; a rerun of one org's report must too, until a person fixes
    one of them. Only the MACs REPORT's rows have as well; empty when there are
    none, when REPORT is no such report, or when its combined report is gone.
    """
    own = {row.number for row in manifest.rows}
    macs = {row.mac for row in manifest.rows if row.mac is not None}
    found: dict[str, list[int]] = {}
    for row in _combined_rows(report, manifest):
        # Only a MAC REPORT's rows have too: the report is read again only then.
        if row.mac in macs and row.number not in own:
            found.setdefault(row.mac, []).append(row.number)
    return {mac: tuple(numbers) for mac, numbers in found.items()}


def _combined_rows(report: Path, manifest: Manifest) -> tuple[Row, ...]:
    """
    The rows of the combined report REPORT was split from: the one whose run's
    journal records REPORT (``split_origin``), else one its name points to that
    holds each of REPORT's rows in the same org (the journal gone, or REPORT a rerun
    of an org's report). Either format the run wrote.
    """
    verified = split_origin(report)
    origins = (verified,) if verified is not None else split_origins(report)
    for origin in origins:
        for path in (origin, _other_format(origin)):
            if not path.is_file():
                continue
            try:
                whole, _ = load_report(path)
            except ProvisionerError as error:
                log.warning(
                    "combined_report_unreadable", path=str(path), error=str(error)
                )
                continue
            orgs = {row.number: row.org_id for row in whole.rows}
            if verified is not None or all(
                row.number in orgs and orgs[row.number] == row.org_id
                for row in manifest.rows
            ):
                return whole.rows
    return ()


def _other_format(report: Path) -> Path:
    return report.with_suffix(".csv" if report.suffix == ".xlsx" else ".xlsx")


def _written_report(report: Path) -> Path:
    """
    ``report`` if it is there, else its other format: a rerun writes the format of
    the report it read, which may be the other file of a run that wrote both.
    """
    if report.exists():
        return report
    other = _other_format(report)
    return other if other.exists() else report


def _reissue_codes_option() -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option(
        "--reissue-codes",
        is_flag=True,
        help=(
            "When a code row's owner already has a pending device of its model from "
            "an earlier run, void that code (delete the pending device) and issue a "
            "new one, instead of reporting the row code_pending."
        ),
    )


def _real_command(
    manifest: Path,
    sheet: str | None,
    connection: ConnectionOptions,
    *,
    reissue_codes: bool = False,
    fresh: bool = False,
    split_by_org: bool = False,
    group_by: str | None = None,
) -> str:
    """
    The run a dry run rehearsed, as a command line: the same rows, target and what
    changes a row's outcome (``--reissue-codes``, and ``--fresh``: the dry run
    planned a start over, not a continuation of the journal), what shapes the run
    and its reports (``--split-by-org``, ``--group-by``, ``--max-rate``,
    ``--concurrency``), and the default report (the dry run's own --report names
    the rehearsal).
    """
    words = ["provisioner", "run", str(manifest)]
    if sheet:
        words += ["--sheet", sheet]
    if reissue_codes:
        words += ["--reissue-codes"]
    if fresh:
        words += ["--fresh"]
    if split_by_org:
        words += ["--split-by-org"]
    if group_by:
        words += ["--group-by", group_by]
    words += _rate_words(connection)
    if connection.base_url:
        words += ["--base-url", connection.base_url]
    if connection.cloud:
        words += ["--cloud", connection.cloud]
    if connection.org_id:
        words += ["--org-id", connection.org_id]
    if connection.tag_mode != TagMode.ADD.value:
        words += ["--tag-mode", connection.tag_mode]
    if connection.token_file is not None:
        words += ["--token-file", str(connection.token_file)]
    return shlex.join(words)


def _rate_words(connection: ConnectionOptions) -> list[str]:
    """
    ``--max-rate`` and ``--concurrency`` as given (the real run paces as told).
    """
    words = []
    limits = connection.max_rate
    if limits.every is not None:
        words += ["--max-rate", f"{limits.every:g}"]
    for org, rate in limits.by_org:
        words += ["--max-rate", f"{org}={rate:g}"]
    if connection.concurrency != DEFAULT_CONCURRENCY:
        words += ["--concurrency", str(connection.concurrency)]
    return words


def split_option() -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """
    Declare ``--split-by-org``: one report per org besides the combined one.
    """
    return click.option(
        "--split-by-org",
        is_flag=True,
        help=(
            "Also write one report per org the rows go to (partners), each "
            "complete for its rows and re-runnable with rerun: "
            "<report>-org-<name>-<id>.*"
        ),
    )


def _dry_run_paths(paths: tuple[Path, ...]) -> tuple[Path, ...]:
    # A rehearsal must not replace the report of a real run.
    return tuple(p.with_name(f"{p.stem}{_DRY_RUN}{p.suffix}") for p in paths)


@click.command()
@click.argument("manifest_path", metavar="MANIFEST", type=click.Path(path_type=Path))
@click.option(
    "--report",
    type=click.Path(path_type=Path),
    help=(
        "Write the report here: .xlsx or .csv for one file, no extension for both "
        "(default: both, as reports/<manifest name>-report.*)."
    ),
)
@click.option(
    "--sheet",
    metavar="NAME",
    help="The XLSX sheet to read (default: the first visible one).",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Check every row against the API without changing anything (reads only).",
)
@click.option(
    "--fresh",
    is_flag=True,
    help=(
        "Forget an earlier run into this report and start over; the activation codes "
        "it issued are voided as their rows get new ones."
    ),
)
@split_option()
@_reissue_codes_option()
@group_by_option()
@yes_option()
@connection_options
def run(
    manifest_path: Path,
    report: Path | None,
    sheet: str | None,
    dry_run: bool,
    fresh: bool,
    split_by_org: bool,
    reissue_codes: bool,
    group_by: str | None,
    yes: bool,
    connection: ConnectionOptions,
) -> None:
    """
    Provision every row of MANIFEST (CSV or XLSX) and write the report.

    Running the same command again after a crash or Ctrl-C continues where it
    stopped; rows already done are never redone. Exit codes: 0 every row ended well,
    1 some row failed or was invalid, 2 nothing could start, 130 interrupted.
    """
    with command_errors() as where:
        configure_logging(verbosity=connection.verbose, log_file=connection.log_file)
        manifest = load_manifest(manifest_path, sheet=sheet)
        add_secrets(*(row.password for row in manifest.rows))
        # After the manifest: --max-rate ORG=R must name an org its rows go to.
        settings = build_settings(
            connection, os.environ, dry_run=dry_run, manifest=manifest
        )
        settings = replace(settings, reissue_codes=reissue_codes)
        where.base_url = settings.base_url
        add_secrets(settings.token)
        if looks_like_report(manifest.columns):
            fail(
                f"{manifest_path} is a report written by provisioner, not a manifest; "
                "to run its failed, not-started or planned rows again, use: "
                f"provisioner rerun {manifest_path}"
            )
        paths = report_paths(manifest_path, report)
        journal = journal_path_for(paths[0])
        if dry_run:
            # A dry run writes nothing to the API, so it has nothing to journal (and
            # must not make a later real run believe its rows were done). It reads
            # a copy of the journal of the run it names (``_real_command``: the
            # default report; its own --report names the rehearsal), to plan what
            # that run would do now.
            journal = journal_path_for(report_paths(manifest_path, None)[0])
        if dry_run and report is None:
            paths = _dry_run_paths(paths)
        refuse_inputs(paths, [manifest_path], flag="--report")
        if dry_run:
            refuse_real_report(paths)
        story = story_of_manifest(manifest_path, journal)
        if dry_run:
            # The run's history is the dry run's story too; its own line is kept
            # in no journal.
            story = replace(story, journal=None)
        # The report whose journal this run continues (a dry run: the default's).
        continued = report_paths(manifest_path, None if dry_run else report)[0]
        job = _Job(
            manifest=manifest,
            settings=settings,
            paths=paths,
            journal_path=journal,
            reruns=reruns_of(continued),
            renewals=renewals_for(continued),
            quiet=connection.quiet,
            yes=yes,
            fresh=fresh,
            real_command=(
                _real_command(
                    manifest_path,
                    sheet,
                    connection,
                    reissue_codes=reissue_codes,
                    fresh=fresh,
                    split_by_org=split_by_org,
                    group_by=group_by,
                )
                if dry_run
                else None
            ),
            story=story,
            group_by=group_column(manifest, group_by),
            split_by_org=split_by_org,
        )
        _execute(job)


@click.command()
@click.argument("report_path", metavar="REPORT", type=click.Path(path_type=Path))
@click.option(
    "--report",
    "output",
    type=click.Path(path_type=Path),
    help=(
        "Write the new report here: .xlsx or .csv for one file, no extension for "
        "both (default: next to REPORT, named <REPORT>-rerun, same format)."
    ),
)
@click.option(
    "--fresh",
    is_flag=True,
    help=(
        "Forget an earlier interrupted rerun into the same report and start over; "
        "the activation codes it issued are voided as their rows get new ones."
    ),
)
@split_option()
@_reissue_codes_option()
@group_by_option()
@yes_option()
@connection_options
def rerun(
    report_path: Path,
    output: Path | None,
    fresh: bool,
    split_by_org: bool,
    reissue_codes: bool,
    group_by: str | None,
    yes: bool,
    connection: ConnectionOptions,
) -> None:
    """
    Run again the rows of REPORT that failed or were invalid, and write a new report.

    The input columns are read back from REPORT, so a value fixed in the report (a
    workspace id, a MAC) is what the rerun uses. Rows that ended well keep their
    outcome. The new report is complete: every row, once, in order.
    """
    with command_errors() as where:
        configure_logging(verbosity=connection.verbose, log_file=connection.log_file)
        manifest, previous = load_report(report_path)
        elsewhere = _macs_elsewhere(report_path, manifest)
        if elsewhere:
            # One org's report: a MAC on another org's row of the run is a duplicate.
            manifest, previous = load_report(report_path, elsewhere=elsewhere)
        add_secrets(*(row.password for row in manifest.rows))
        # After the report: --max-rate ORG=R must name an org its rows go to.
        settings = build_settings(connection, os.environ, manifest=manifest)
        settings = replace(settings, reissue_codes=reissue_codes)
        where.base_url = settings.base_url
        add_secrets(settings.token)
        only_rows = rows_to_rerun(previous)
        if not only_rows:
            click.echo(f"Nothing to re-run: every row of {report_path} ended well.")
            raise SystemExit(EXIT_OK)
        if output is None:
            paths: tuple[Path, ...] = (rerun_report_path(report_path),)
        else:
            paths = report_paths(report_path, output)
        refuse_inputs(paths, [report_path], flag="--report")
        journal = journal_path_for(paths[0])
        story = story_of_report(report_path, journal)
        # The rows run again where the run learned the API's limits: start there.
        settings = story.paced(settings)
        # Where the report was written: from the journal the run kept beside it,
        # else from the report's own history (an XLSX copied elsewhere, a dry run's).
        earlier = (
            Journal.target_of(journal_path_for(report_path)) or story.last_target()
        )
        if earlier is not None and _not_given("tag_mode"):
            # The rows are tagged as the run that wrote the report tagged them.
            settings = replace(settings, tag_mode=earlier.tag_mode)
        job = _Job(
            manifest=manifest,
            settings=settings,
            paths=paths,
            journal_path=journal,
            reruns=reruns_of(paths[0]),
            renewals=renewals_for(paths[0]),
            story=story,
            kind=RunKind.RERUN,
            group_by=group_column(manifest, group_by),
            previous=previous,
            only_rows=only_rows,
            quiet=connection.quiet,
            yes=yes,
            fresh=fresh,
            command="provisioner rerun",
            split_by_org=split_by_org,
            previous_target=earlier,
        )
        # The run of the report (or of one it came from) must not work its rows
        # meanwhile: held before any call, to the end.
        sources = rows_journals(report_path, but=journal)
        with hold_journals(sources, reason=ROWS_BUSY):
            click.echo(
                f"Re-running {len(only_rows)} of {len(manifest.rows)} rows "
                f"from {report_path}.",
                err=True,
            )
            _execute(job)


def _execute(job: _Job) -> None:
    """
    Run the job to its report and exit with the run's exit code.
    """
    # Where the report and its journal go must take files before the run starts.
    prepare_folders(job.paths, flag="--report")
    display = ProgressDisplay(mode="quiet" if job.quiet else None)
    with display:
        result, stopped = anyio.run(
            _provision_until_signalled, job, display, backend="asyncio"
        )
    if result is None:
        click.echo(
            "Aborted: rows in flight were abandoned and no report was written. "
            "Every finished row is in the journal; run the same command again to "
            "continue: it writes the report.",
            err=True,
        )
        raise SystemExit(EXIT_INTERRUPTED)
    if job.story is not None:
        result = replace(result, stats=job.story.told(result.stats, job.kind))
    raise SystemExit(finish_run(job.finish, result, stopped=stopped))


async def _provision_until_signalled(
    job: _Job, display: ProgressDisplay
) -> tuple[RunResult | None, bool]:
    """
    Call ``provision``; once its rows are about to start, confirm the changes, then
    let a watcher turn SIGINT/SIGTERM into its ``stop`` event.

    Until then nothing has been written, and Ctrl-C simply ends the command (the
    confirmation's question included). A second signal abandons the rows in flight
    (the run still returns, for its report); the result is None only when a third
    stopped even that. Returned beside it: whether a stop was asked ("Stopping"
    was said), which a run whose rows had all started when it came finishes whole.
    """
    stop = anyio.Event()
    abandon = anyio.Event()
    result: RunResult | None = None
    error: ProvisionerError | None = None
    async with anyio.create_task_group() as group:

        def before_rows(target: Target, changes: Changes) -> None:
            confirm_changes(target, changes, yes=job.yes, command=job.command)
            if threading.current_thread() is threading.main_thread():
                group.start_soon(
                    partial(watch_signals, abandon=abandon),
                    stop,
                    group.cancel_scope,
                )

        try:
            result = await provision(
                job.manifest,
                job.settings,
                journal_path=job.journal_path,
                previous=job.previous,
                only_rows=job.only_rows,
                # --quiet shows nothing: no snapshot is worth making per row.
                on_progress=None if display.mode == "quiet" else display,
                stop=stop,
                abandon=abandon,
                before_rows=before_rows,
                fresh=job.fresh,
                previous_target=job.previous_target,
                earlier=job.story.spans() if job.story is not None else (),
                reruns=tuple(job.reruns),
                renewals=job.renewals,
            )
        except ProvisionerError as exc:
            # Raised outside the group, so the caller sees the error itself rather
            # than an ExceptionGroup around it.
            error = exc
        finally:
            group.cancel_scope.cancel()
    if error is not None:
        raise error
    return result, stop.is_set()


async def watch_signals(
    stop: anyio.Event,
    scope: anyio.CancelScope,
    *,
    abandon: anyio.Event | None = None,
    task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """
    Turn the first SIGINT/SIGTERM into ``stop`` (rows in flight finish, the report is
    written). With ``abandon``, a second sets it (rows in flight are abandoned, the
    report is still written) and a third cancels ``scope``; without, the second
    cancels ``scope`` (rows in flight are abandoned, and no report is written).
    """
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        task_status.started()
        async for signum in signals:
            # Logged at info: the person is told in words just below, and a raw
            # log line on the console beside them would only say it twice.
            if not stop.is_set():
                log.info("stop_requested", signal=signal.Signals(signum).name)
                click.echo(
                    "\nStopping: no new rows start; rows in flight finish and the "
                    "report is written. Press Ctrl-C again to abandon them.",
                    err=True,
                )
                stop.set()
            elif abandon is not None and not abandon.is_set():
                log.info("rows_abandoned", signal=signal.Signals(signum).name)
                click.echo(
                    "\nAbandoning the rows in flight: they are not_started in the "
                    "report, which is being written. Press Ctrl-C again to stop "
                    "without it.",
                    err=True,
                )
                abandon.set()
            else:
                log.info("run_abandoned", signal=signal.Signals(signum).name)
                scope.cancel()
                return


def _not_given(option: str) -> bool:
    """
    True when the command line left ``option`` at its default.
    """
    source = click.get_current_context().get_parameter_source(option)
    return source in (None, ParameterSource.DEFAULT)
