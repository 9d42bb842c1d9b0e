"""
Which run journals speak for a report's rows, and making them forget what a
rollback took out.

A report's ``status`` cell is a spreadsheet cell; the run journals of the rollout
know what the run did (``rollback_trust`` weighs their word). ``run_journals`` finds
them: the one beside the report, those of the reports its reruns read, the one of
the report a run moved it aside from (``-replaced-<time>``), those of the reports
a renewal read (``-renewed``), and the combined report's, for one org's report of a
partner run (``--split-by-org``). Once a rollback has deleted devices, ``forget_gone``
makes each of them forget the rows whose devices are gone, under its lock, so the
same run command provisions those rows again instead of taking them for done.

Only a journal of this version written against the same API speaks (device ids are
the API's): ``speaking``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from provisioner.errors import ConfigError, JournalBusyError
from provisioner.inventory.rollback_rules import RollbackResult, RollbackStatus
from provisioner.inventory.rollback_trust import JournalRecord
from provisioner.models import Row, RunKind, RunRecord, Target, merge_history
from provisioner.run.journal import (
    Journal,
    journal_path_for,
    read_entries,
    read_history,
    read_set_aside,
    split_origin,
    split_origins,
)

__all__ = [
    "RunJournalChange",
    "RunJournals",
    "forget_gone",
    "journal_records",
    "run_journals",
    "speaking",
    "undone_rows",
]

log = structlog.get_logger()


@dataclass(frozen=True, slots=True, kw_only=True)
class RunJournalChange:
    """
    What a rollback did to a run journal that recorded its rows.

    ``forgotten`` rows (their devices gone) will be provisioned again by the same
    run command; ``left`` says why the journal could not be changed (another
    command holds it): it still takes those rows for done.
    """

    path: Path
    forgotten: int = 0
    left: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RunJournals:
    """
    The run journals of a report's rows (``run_journals``): those whose word on a
    row beats the report's status cell, and those only made to forget the rows
    whose devices are gone.
    """

    trusted: tuple[Path, ...] = ()
    #: The journal of the report a replaced report was moved from, when it is not
    #: known to hold the rows that report was written from (it started over since,
    #: ``--fresh``, say): its rows may be another run's, so its word on the report's
    #: rows is not taken, but a row of it naming a device now gone is forgotten all
    #: the same (the device is gone, whoever's it was). Likewise the journal of the
    #: combined report a per-org report's name says it was split from, when that
    #: journal does not record it (``split_origin``).
    forget_only: tuple[Path, ...] = ()
    #: REPORT is a renewal's (``codes --renew``): its code rows name the renewed
    #: codes' devices, while the journals still name the devices of the codes
    #: those replaced.
    renewal: bool = False


def run_journals(
    report: Path,
    history: Iterable[RunRecord] = (),
    *,
    moved_from: Path | None = None,
    renewed_from: Sequence[Path] = (),
    reruns: Sequence[Path] = (),
) -> RunJournals:
    """
    The run journals that recorded REPORT's rows, those present: the one beside it,
    and (REPORT a rerun's) those of the reports its reruns read, beside REPORT.

    The run history names the file each command read (``RunRecord.source``): the
    history in REPORT's journal, and ``history`` (an XLSX report's own sheet).

    A report a run moved aside (``moved_from``: the report path it was moved from)
    has no journal of its own; the one beside ``moved_from`` recorded its rows when
    the run that moved it continued that journal and it has not started over since
    (``read_set_aside`` names the file): then it is trusted like REPORT's own.
    Otherwise it is only made to forget (``RunJournals.forget_only``).

    A report ``codes --renew`` wrote has none of its own either: ``renewed_from``
    are the reports the renewals read, nearest first, and their journals (the
    run's) speak for its rows (``RunJournals.renewal``).

    A partner run's per-org report (``--split-by-org``) has none of its own
    either: the journal of the combined report it was split from speaks for its
    rows when it records REPORT's name (``split_origin``); so does it for a rerun
    of that per-org report (through the history's source). One its name alone
    points to is only made to forget.

    ``reruns`` are the journals of REPORT's reruns (``<report>-rerun``, …): the
    same run command after a rerun reports the rows the rerun ended as it ended
    them (``run.plan.ended_since``), so REPORT may name devices only a rerun's
    journal records as made.
    """
    own = journal_path_for(report)
    histories = [tuple(history), read_history(own)]
    found = [own, *(journal_path_for(origin) for origin in renewed_from), *reruns]
    origin = None if moved_from is None else journal_path_for(moved_from)
    speaks = origin is not None and report.name in read_set_aside(origin)
    if speaks and origin is not None:
        found.append(origin)
        histories.append(read_history(origin))
    combined = split_origin(report)
    if combined is not None:
        found.append(journal_path_for(combined))
        histories.append(read_history(journal_path_for(combined)))
    for record in merge_history(*histories):
        if record.kind in (RunKind.RERUN, RunKind.RESUME) and record.source:
            source = report.parent / Path(record.source).name
            found.append(journal_path_for(source))
            # A rerun of one org's report (``--split-by-org``): the rows it read
            # were the combined report's run's.
            split_from = split_origin(source)
            if split_from is not None:
                found.append(journal_path_for(split_from))
    trusted = _present(found)
    forget = [] if origin is None or speaks else [origin]
    if combined is None:
        # Named as one org's report, but no journal records it so (one written
        # before the record was kept, or since started over): only made to forget.
        forget += [journal_path_for(name) for name in split_origins(report)]
    forget_only = _present(forget, trusted)
    return RunJournals(
        trusted=trusted, forget_only=forget_only, renewal=bool(renewed_from)
    )


def _present(paths: Iterable[Path], but: Iterable[Path] = ()) -> tuple[Path, ...]:
    """
    The files among ``paths``, each once (by where it really is), none of ``but``.
    """
    skipped = {path.resolve() for path in but}
    unique: dict[Path, Path] = {}
    for path in paths:
        key = path.resolve()
        if path.is_file() and key not in skipped:
            unique.setdefault(key, path)
    return tuple(unique.values())


def journal_records(
    paths: Sequence[Path], target: Target, rows: Sequence[Row]
) -> dict[int, list[JournalRecord]]:
    """
    What each run journal recorded for the report's rows, by row number.

    Only a journal written against the same API speaks for these devices (device
    ids are the API's), as ``forget_gone`` holds too.
    """
    records: dict[int, list[JournalRecord]] = {}
    for path, _ in speaking(paths, target):
        for number, entry in read_entries(path, rows).items():
            record = JournalRecord(path.name, entry.outcome)
            records.setdefault(number, []).append(record)
    return records


def speaking(paths: Sequence[Path], target: Target) -> list[tuple[Path, Target]]:
    """
    The run journals (each with the target it was written for) that speak for the
    report's devices: of this version, written against the same API (device ids are
    the API's).
    """
    api = target.identity()["base_url"]
    found = []
    for path in paths:
        recorded = Journal.target_of(path, current=True)
        if recorded is not None and recorded.identity()["base_url"] == api:
            found.append((path, recorded))
    return found


def undone_rows(results: Mapping[int, RollbackResult]) -> int:
    """
    How many rows' devices this rollback deleted or found gone (a dry run: would
    delete): the rows a run journal must forget for its run to do them again.
    """
    return sum(
        1
        for result in results.values()
        if result.device_id is not None
        and (result.status.is_gone or result.status is RollbackStatus.PLANNED)
    )


def forget_gone(
    paths: Sequence[Path],
    target: Target,
    results: Mapping[int, RollbackResult],
    *,
    renewed: Sequence[Row] = (),
) -> tuple[RunJournalChange, ...]:
    """
    Make each run journal forget the rows whose devices this rollback deleted or
    found gone (a kept or failed row stays as it is), each under its lock. With
    ``renewed`` (the rows of a renewal's report), a code row whose device is gone
    is forgotten by the device of the code the renewal replaced too.

    Only a run journal of this version written against the same API is changed:
    device ids are the API's.
    """
    gone = frozenset(
        result.device_id
        for result in results.values()
        if result.device_id is not None and result.status.is_gone
    )
    if not gone:
        return ()
    changes: list[RunJournalChange] = []
    for path, recorded in speaking(paths, target):
        devices = gone | _replaced_codes(path, renewed, results)
        try:
            with Journal.open(path, recorded) as journal:
                forgotten = journal.forget_devices(devices)
        except JournalBusyError:
            log.warning("run_journal_busy", path=str(path))
            left = "another provisioner command is working with it"
            changes.append(RunJournalChange(path=path, left=left))
            continue
        except (ConfigError, sqlite3.Error) as error:
            log.warning("run_journal_not_changed", path=str(path), error=str(error))
            changes.append(RunJournalChange(path=path, left=str(error)))
            continue
        if forgotten:
            changes.append(RunJournalChange(path=path, forgotten=forgotten))
    return tuple(changes)


def _replaced_codes(
    path: Path, renewed: Sequence[Row], results: Mapping[int, RollbackResult]
) -> frozenset[str]:
    """
    The devices the run journal at ``path`` names for the code rows of a renewal's
    report (``renewed``) whose renewed device is gone: the devices of the codes the
    renewal replaced. It voided them (they are gone too), and the journal, which
    the renewal never writes, still takes those rows for done by them.

    Only a row the journal holds a code for, on another device than the report's:
    the one the journal names is then the replaced code's, never a device of a row
    the renewal left as it was.
    """
    if not renewed:
        return frozenset()
    replaced = set()
    for number, entry in read_entries(path, renewed).items():
        result = results.get(number)
        code = entry.outcome is not None and entry.outcome.activation_code
        if (
            result is not None
            and result.status.is_gone
            and code
            and entry.device_id is not None
            and entry.device_id != result.device_id
        ):
            replaced.add(entry.device_id)
    return frozenset(replaced)
