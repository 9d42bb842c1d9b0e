"""
After a run: write its report safely, print the summary and the way forward, and
choose the exit code.

The report replaces an earlier one only when nothing is lost: a report holding
activation codes the new one would drop is moved aside first (``report.safety``),
and the summary says where it went (and, when a rollback deleted the devices it
names, that it is the record of them: the run's journal says which). A device the
journal this run continued records as adopted is no reason to keep it: the report's
``created`` for it was edited by hand; and the journal notes what this run moved
aside, and the per-org reports it wrote (``--split-by-org``), so a rollback of the
moved file, or of one org's report, takes its word. The hints
name the command that does the next step: after a dry run, the real run; after
failures, ``rerun``; after an interruption or a refused token, the same command
again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import click
import structlog

from provisioner.cli.common import exit_code_for, fail, format_summary
from provisioner.cli.exit_codes import (
    EXIT_FAILED_ROWS,
    EXIT_INTERRUPTED,
    EXIT_UNUSABLE,
)
from provisioner.errors import ConfigError, ProvisionerError
from provisioner.models import Manifest, Outcome, Status
from provisioner.report.files import complete_outcomes, write_report
from provisioner.report.orgs import org_report_paths, split_by_org
from provisioner.report.safety import SetAside, set_aside
from provisioner.run.engine import RunResult
from provisioner.run.journal import (
    journal_path_for,
    read_adopted,
    read_rolled_back,
    record_set_aside,
    record_split,
)
from provisioner.run.plan import UNANSWERED_ROWS
from provisioner.words import count_of, verb_for

__all__ = ["Finish", "finish_run", "renewal_lines", "rerun_lines", "set_aside_lines"]

log = structlog.get_logger()


@dataclass(frozen=True, slots=True, kw_only=True)
class Finish:
    """
    What the end of a run needs besides its result: where the report goes and the
    command that does the real work after a dry run.
    """

    manifest: Manifest
    paths: tuple[Path, ...]
    #: The command without ``--dry-run`` (None unless this was a dry run).
    real_command: str | None = None
    #: ``--group-by``: the manifest column the Summary counts rows by.
    group_by: str | None = None
    #: ``--split-by-org``: one report per org besides the combined one.
    split_by_org: bool = False
    #: The journals of the reruns of the report continued, each with its report.
    reruns: Mapping[Path, Path] = field(default_factory=dict)


def set_aside_lines(moved: Sequence[SetAside]) -> list[str]:
    """
    Say where each replaced report went, and why it was kept.
    """
    return [
        f"  kept the earlier report {item.original} as {item.moved_to} ({item.reason})"
        for item in moved
    ]


def rerun_lines(
    reruns: Mapping[Path, Path], since: Mapping[Path, frozenset[int]]
) -> list[str]:
    """
    Say which rows are reported as a rerun of the report ended them, naming the
    rerun's report: the run's own journal had failed them or not finished them
    (``not_started``), and this run did not work them again.
    """
    return [
        f"  {len(rows)} rows as the rerun {reruns.get(journal, journal)} ended "
        "them: the run of this report had failed them or not finished them, and that "
        "rerun ran them since"
        for journal, rows in since.items()
        if rows
    ]


def renewal_lines(since: Mapping[Path, frozenset[int]]) -> list[str]:
    """
    Say which code rows are reported as a renewal of the report issued them, naming
    the renewal's report: the codes the run's journal held for them were voided by
    that renewal (their devices deleted), and this run sent nothing for them.
    """
    return [
        f"  {len(rows)} code rows as the renewal {path} issued them: it voided the "
        "codes the run of this report had issued them, and holds their new codes"
        for path, rows in since.items()
        if rows
    ]


def finish_run(finish: Finish, result: RunResult, *, stopped: bool = False) -> int:
    """
    Write the report (moving aside what it must not replace), print the summary and
    the way forward; return the exit code.

    ``stopped``: a stop was asked (Ctrl-C, "Stopping" said). The command then exits
    130 as Ctrl-C always does, even when every row had started and so finished: a
    script must not take it for a run that ended on its own.
    """
    complete = complete_outcomes(finish.manifest, result.outcomes)
    split: list[tuple[str, tuple[Path, ...]]] = []
    journal = journal_path_for(finish.paths[0])
    # A journal this run continued wrote the report it replaces: a device it records
    # as adopted is not the rollout's, whatever that report's status cell says
    # (edited by hand). After --fresh (nothing continued) its word is this run's
    # only, and the old report may be the one record of what the rollout created.
    adopted = read_adopted(journal) if result.stats.resumed else frozenset()
    aside = partial(
        set_aside,
        rolled_back=read_rolled_back(journal),
        adopted=adopted,
        voided=result.voided_codes,
    )
    try:
        moved = aside(finish.paths, complete.values())
        if result.stats.resumed:
            _note_set_aside(journal, moved)
        write_report(
            finish.manifest,
            result.outcomes,
            finish.paths,
            result.stats,
            group_by=finish.group_by,
        )
        if finish.split_by_org:
            moved += _write_org_reports(finish, complete, result, split, aside)
            if finish.real_command is None:
                _note_split(journal, [path for _, paths in split for path in paths])
    except ProvisionerError as exc:
        # Exit 1, not 2: rows did run, so "nothing could start" would mislead.
        fail(
            f"The run finished but the report could not be written: {exc}. Every "
            "row is in the journal: fix the cause (space, permissions) and run the "
            "same command again; it redoes nothing and writes the report.",
            EXIT_FAILED_ROWS,
        )
    click.echo(
        format_summary(finish.manifest, result.outcomes, result.stats, finish.paths)
    )
    for line in rerun_lines(finish.reruns, result.since_reruns):
        click.echo(line)
    for line in renewal_lines(result.since_renewals):
        click.echo(line)
    for label, paths in split:
        click.echo("\n".join(f"  report for {label}: {path}" for path in paths))
    for line in set_aside_lines(moved):
        click.echo(line)
    if result.token_refused:
        click.echo(
            "Error: the token was refused mid-run; the run is saved — set a fresh "
            "token and run the same command to continue.",
            err=True,
        )
        return EXIT_UNUSABLE
    if result.api_unanswered:
        saved = (
            "the dry run stopped there. Run it again"
            if finish.real_command is not None
            else "the run is saved. Run the same command"
        )
        click.echo(
            f"Error: the API stopped answering: {UNANSWERED_ROWS} rows in a row got "
            "no answer after every try (the network, or the API, is down); no more "
            f"rows were started and {saved} once the API answers again: it does "
            "those rows again and goes on.",
            err=True,
        )
        return EXIT_UNUSABLE
    code = exit_code_for(result.outcomes.values(), interrupted=result.interrupted)
    if finish.real_command is not None:
        _dry_run_hint(finish, complete.values())
    elif code == EXIT_FAILED_ROWS:
        click.echo(
            "Some rows failed or were invalid: fix their values in the report if "
            f"needed, then run: provisioner rerun {finish.paths[0]}",
            err=True,
        )
    if result.interrupted:
        click.echo(
            "Interrupted: the rows never begun are not_started in the report; run "
            "the same command again to continue.",
            err=True,
        )
    elif stopped:
        click.echo(
            "Stopped: every row had started when Ctrl-C came, and every one "
            "finished; the report is complete.",
            err=True,
        )
        code = EXIT_INTERRUPTED
    if result.abandoned:
        click.echo(
            f"{count_of(len(result.abandoned), 'row')} abandoned in flight "
            f"{verb_for(len(result.abandoned), 'is', 'are')} not_started too; "
            "their device or code may exist: the same command checks for them "
            "before anything else.",
            err=True,
        )
    return code


def _note_set_aside(journal: Path, moved: Sequence[SetAside]) -> None:
    """
    Tell the journal this run continued which of its reports the run moved aside:
    they were written from its rows, so a rollback of one takes its word over their
    status cells (``read_set_aside``). The record only sharpens a later rollback: a
    journal that cannot take it never stops the report being written.
    """
    names = [item.moved_to.name for item in moved]
    if not names:
        return
    try:
        record_set_aside(journal, names)
    except ConfigError as error:
        log.warning("set_aside_not_recorded", path=str(journal), error=str(error))


def _note_split(journal: Path, paths: Sequence[Path]) -> None:
    """
    Tell the journal of this run which per-org reports it wrote from its rows: a
    rollback or rerun of one finds this journal by that record
    (``run.journal.split_origin``), so a rollback of one org's report makes it forget
    that org's deleted rows. As with ``_note_set_aside``, a journal that cannot take
    the record never stops the reports being written.
    """
    try:
        record_split(journal, [path.name for path in paths])
    except ConfigError as error:
        log.warning("split_not_recorded", path=str(journal), error=str(error))


def _write_org_reports(
    finish: Finish,
    complete: Mapping[int, Outcome],
    result: RunResult,
    written: list[tuple[str, tuple[Path, ...]]],
    aside: Callable[[Sequence[Path], Iterable[Outcome]], list[SetAside]],
) -> list[SetAside]:
    """
    Write one report per org beside the combined one; note each in ``written``.

    Each is complete for its org's rows (their row numbers kept), so ``rerun``
    takes it on its own; the same safety rules apply as to the combined report.
    """
    moved: list[SetAside] = []
    parts = split_by_org(finish.manifest, complete, result.stats)
    # Named together: each org's files are distinct from every other org's.
    names = org_report_paths(finish.paths, [part.org for part in parts])
    for part, paths in zip(parts, names, strict=True):
        moved += aside(paths, part.outcomes.values())
        write_report(
            part.manifest, part.outcomes, paths, part.stats, group_by=finish.group_by
        )
        written.append((part.org.label(), paths))
    return moved


def _dry_run_hint(finish: Finish, outcomes: Iterable[Outcome]) -> None:
    invalid = sum(1 for outcome in outcomes if outcome.status is Status.INVALID)
    if invalid:
        click.echo(
            f"{count_of(invalid, 'row')} {verb_for(invalid, 'is', 'are')} invalid: "
            "the report's error column says how to fix "
            f"each; fix them in {finish.manifest.path} (a run skips invalid rows).",
            err=True,
        )
    click.echo(
        "Dry run: nothing was changed. To make these changes, run the same command "
        f"without --dry-run: {finish.real_command}",
        err=True,
    )
