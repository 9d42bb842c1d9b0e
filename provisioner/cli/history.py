"""
The rollout's story across commands: what came before, and this command's line.

Each command that writes a report (``run``, its resumes, ``rerun``, ``codes
--renew``, a dry run) adds one ``RunRecord`` to the run history the report shows.
The earlier lines come from where the rollout left them: the journal beside the
report being continued or read (``run.journal.read_history``), and an XLSX report's
own hidden history sheet (``report.history.load_history``), so a rerun of a report
still tells what the first run did. This command's line is kept in its own journal
at once, so a resume of it keeps it too. The lines keep the API limits each command
learned, where the rollout's next command starts (``Story.known_limits``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import structlog

from provisioner.errors import ConfigError
from provisioner.models import (
    Manifest,
    RunKind,
    RunRecord,
    RunStats,
    Status,
    TagMode,
    Target,
    merge_history,
)
from provisioner.report.history import file_fingerprint, load_history
from provisioner.run.journal import journal_path_for, read_history, record_history
from provisioner.settings import Settings

__all__ = [
    "LIMITS_KEPT",
    "Story",
    "group_by_option",
    "group_column",
    "story_of_manifest",
    "story_of_report",
]

log = structlog.get_logger()

#: How long a limit the rollout learned is where its next command starts: a
#: rollout's reruns, codes and rollback fall within weeks, and an API that changed
#: its limit since is learned again by the controller.
LIMITS_KEPT = timedelta(days=30)


@dataclass(frozen=True, slots=True, kw_only=True)
class Story:
    """
    The commands of a rollout before this one, and the file this one reads.

    ``journal`` is where this command's own line is kept (None: nowhere, as for a
    dry run, which must leave no journal).
    """

    earlier: tuple[RunRecord, ...]
    source: Path
    source_sha256: str | None
    journal: Path | None

    def last_target(self) -> Target | None:
        """
        Where the latest earlier command that says so wrote (API and org): what a
        report's history tells when no journal is beside it.
        """
        for record in reversed(self.earlier):
            if record.base_url:
                return Target(
                    base_url=record.base_url,
                    org_id=record.org_id,
                    tag_mode=record.tag_mode or TagMode.ADD,
                )
        return None

    def org_names(self) -> dict[str | None, str]:
        """
        The orgs' names the rollout's commands looked up, by org id (the latest
        first to win); the token's own org's under None too, where a command said
        which org that was.
        """
        names: dict[str | None, str] = {}
        for record in self.earlier:
            names.update(dict(record.org_names))
            if record.org_id is None:
                continue
            if record.org_id in names:
                names.setdefault(None, names[record.org_id])
        return names

    def known_limits(
        self, base_url: str, now: datetime
    ) -> tuple[tuple[str, float], ...]:
        """
        The API limits the rollout's latest command at ``base_url`` learned (org id,
        requests/s), if it ended within ``LIMITS_KEPT``: where this command starts.

        Only what the rollout's own commands learned: a limit belongs to an org and
        an app, and a command that goes on with a rollout (a rerun, its codes, its
        rollback) meets the API the rollout met. A run of a new manifest, or
        ``--fresh``, starts from nothing: it may meet another API set up alike (an
        emulator started again with other limits), where an old limit held too low
        would slow it for good.
        """
        wanted = base_url.rstrip("/")
        for record in reversed(self.earlier):
            if record.base_url == wanted and record.limits:
                if now - record.finished_at > LIMITS_KEPT:
                    return ()
                return record.limits
        return ()

    def paced(self, settings: Settings) -> Settings:
        """
        ``settings`` with each org starting at the limit the rollout learned there.
        """
        now = datetime.now(UTC)
        return replace(settings, known_limits=self.known_limits(settings.base_url, now))

    def spans(self) -> tuple[tuple[datetime, datetime], ...]:
        """
        When each earlier command ran, start to end: the devices a lost create of
        theirs can have made were made then.
        """
        return tuple((record.started_at, record.finished_at) for record in self.earlier)

    def told(self, stats: RunStats, kind: RunKind) -> RunStats:
        """
        Add this command's line to the story, keep it in the journal, and return the
        stats with the whole history for the report.

        ``kind`` is what the command is (run, rerun, renewal); a run that continued
        its journal is a resume, a dry run is a dry run.
        """
        if stats.dry_run:
            kind = RunKind.DRY_RUN
        elif stats.resumed and kind in (RunKind.RUN, RunKind.RERUN):
            kind = RunKind.RESUME
        record = RunRecord(
            kind=kind,
            started_at=stats.started_at,
            finished_at=stats.finished_at,
            source=self.source.name,
            source_sha256=self.source_sha256,
            caller=stats.target.caller if stats.target else None,
            counts=_counts(stats),
            interrupted=stats.interrupted,
            base_url=stats.target.identity()["base_url"] if stats.target else None,
            org_id=stats.target.org_id if stats.target else None,
            tag_mode=stats.target.tag_mode if stats.target else None,
            org_names=tuple(
                (org.id or org.key or "", org.name)
                for org in stats.orgs
                if org.name and (org.id or org.key)
            ),
            limits=stats.limits_by_org_id(),
        )
        history = merge_history(self.earlier, (record,))
        if self.journal is not None and self.journal.is_file():
            try:
                record_history(self.journal, history)
            except ConfigError as error:
                # The history is for people: a journal that cannot take it never
                # stops the report being written.
                log.warning(
                    "history_not_kept", path=str(self.journal), error=str(error)
                )
        return replace(stats, history=history)


def story_of_manifest(manifest_path: Path, journal: Path | None) -> Story:
    """
    The story of ``run MANIFEST``: the lines its journal kept (an interrupted run
    before this one, an earlier run into the same report).
    """
    return Story(
        earlier=read_history(journal) if journal is not None else (),
        source=manifest_path,
        source_sha256=file_fingerprint(manifest_path),
        journal=journal,
    )


def story_of_report(report_path: Path, journal: Path | None) -> Story:
    """
    The story of a command that reads REPORT (``rerun``, ``codes --renew``): the
    report's own history, its journal's, and this command's journal's (a resumed
    rerun), joined.
    """
    parts = [load_history(report_path), read_history(journal_path_for(report_path))]
    if journal is not None:
        parts.append(read_history(journal))
    return Story(
        earlier=merge_history(*parts),
        source=report_path,
        source_sha256=file_fingerprint(report_path),
        journal=journal,
    )


def group_by_option() -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """
    Declare ``--group-by COLUMN``: count the rows per value of a manifest column on
    the report's Summary (and order the Activation codes sheet by it).
    """
    return click.option(
        "--group-by",
        metavar="COLUMN",
        help=(
            "Count the rows per value of this manifest column (a site, building or "
            "floor) on the report's Summary, and list the activation codes by it."
        ),
    )


def group_column(manifest: Manifest, column: str | None) -> str | None:
    """
    Find the manifest column ``--group-by`` names: exactly, else ignoring case.

    Raises:
        ConfigError: no column (or more than one, ignoring case) has that name.
    """
    if column is None or column in manifest.columns:
        return column
    matches = [
        name for name in manifest.columns if name.casefold() == column.casefold()
    ]
    if len(matches) == 1:
        return matches[0]
    names = ", ".join(f'"{name}"' for name in manifest.columns if name)
    raise ConfigError(
        f'--group-by "{column}": {manifest.path.name} has no such column; its columns '
        f"are {names}"
    )


def _counts(stats: RunStats) -> dict[Status, int]:
    if stats.worked is not None:
        return dict(stats.worked)
    return {}
