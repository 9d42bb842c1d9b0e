"""
A rollout's run history as a report carries it, and the fingerprint of an input file.

An XLSX report keeps its run history on a hidden "history" sheet (``sheets.py``), so
a rerun, a renewal or a resume of that report extends the story instead of starting a
new one. A CSV report has no room for it: the journal beside it keeps the same
records (``run.journal.read_history``), and the command joins both.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import structlog

from provisioner.errors import ManifestReadError
from provisioner.intake.sheet import XLSX_SUFFIXES, read_table
from provisioner.models import RunRecord

__all__ = ["HISTORY_NOTE", "HISTORY_SHEET", "file_fingerprint", "load_history"]

HISTORY_SHEET = "history"
HISTORY_NOTE = (
    "The run history as provisioner rerun reads it back (one command a row). "
    "The Summary sheet shows it for people."
)

log = structlog.get_logger()

_CHUNK = 1 << 20


def file_fingerprint(path: Path) -> str | None:
    """
    The SHA-256 of a file's bytes (what ``sha256sum`` prints); None if unreadable.
    """
    digest = hashlib.sha256()
    try:
        with Path(path).open("rb") as file:
            while chunk := file.read(_CHUNK):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def load_history(path: Path) -> tuple[RunRecord, ...]:
    """
    The run history an XLSX report holds, oldest first; none for a CSV, a workbook
    without it (an older report) or one that cannot be read. The history is for
    people: a damaged one never stops a command, it is left out.
    """
    path = Path(path)
    if path.suffix.lower() not in XLSX_SUFFIXES:
        return ()
    try:
        table = read_table(path, sheet=HISTORY_SHEET)
    except ManifestReadError as error:
        # No history sheet (an older report), or a damaged file that load_report
        # names already.
        log.info("history_not_read", path=str(path), reason=str(error))
        return ()
    records = []
    for _, cells in table.records:
        try:
            records.append(RunRecord.from_json(cells[0]))
        except ValueError:
            log.info("history_record_skipped", path=str(path))
    return tuple(sorted(records, key=lambda record: record.started_at))
