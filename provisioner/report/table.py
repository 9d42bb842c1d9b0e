"""
Write one table (a header, then records) to a ``.csv`` or ``.xlsx`` file, atomically,
as its records come.

``TableFile`` is what every written table goes through — a run's report, a rollback's
report, an export of the org's devices — so they share one CSV dialect, one workbook
look (``xlsx.py``), one atomic replace and one rule for secrets: a table holding
activation codes is created with mode 0600 from its first byte. Records are written as
they are appended and never held (beyond the few an XLSX fits its column widths to), so
an export of any size runs in constant memory.

The CSV is plain UTF-8 without a BOM, ``\\n`` line ends. Every table is for people to
open (an export, a report forwarded to whoever leads the rollout), so each CSV cell a
spreadsheet would run as a formula, the header's too, is marked as text
(``intake/formulas.py``); the manifest reader, and ``load_report``, take the mark off
again. An XLSX needs no mark: every text cell is written as text.

The temporary file a table is written to is named for its process and locked while
written, so one a writer killed outright left behind (SIGKILL, a power cut: nothing
could remove it) is told from a live writer's and removed by the next write of the same
path (``remove_stale_temporaries``).
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import os
import re
import secrets
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, BinaryIO, Self

import structlog

from provisioner.intake.formulas import mark_as_text
from provisioner.report.cells import Cell

if TYPE_CHECKING:
    from provisioner.report.summary import Line
    from provisioner.report.xlsx import ColumnKinds, SheetWriter, XlsxTable

__all__ = [
    "DEFAULT_MODE",
    "SECRET_MODE",
    "SUFFIXES",
    "TableFile",
    "atomic_file",
    "remove_stale_temporaries",
]

log = structlog.get_logger()

SUFFIXES = (".xlsx", ".csv")
# Modes for os.open: a table with activation codes is a secret from its first byte;
# any other table gets the usual mode the umask allows.
SECRET_MODE = 0o600
DEFAULT_MODE = 0o666


class TableFile:
    """
    One table file being written; use it as a context manager.

    Leaving the block normally puts the finished file in place (one rename); leaving it
    with an exception removes the half-written file and leaves any earlier one as it
    was.

    Args:
        path: where the file goes; ``.csv`` or ``.xlsx`` decides the format.
        header: the column names.
        secret: the table holds activation codes: create it with mode 0600.
        status_column: the 0-based index of the cell an XLSX colours by status.
        sheet: the XLSX table sheet's name.
        kinds: which columns an XLSX shows as ids (Text), date-times or long text.

    Raises:
        ValueError: the path is neither ``.csv`` nor ``.xlsx``.
        OSError: the file cannot be created or written (on entering, appending or
            leaving the block).
    """

    def __init__(
        self,
        path: Path,
        header: Sequence[str],
        *,
        secret: bool = False,
        status_column: int | None = None,
        sheet: str = "Report",
        kinds: ColumnKinds | None = None,
    ) -> None:
        suffix = path.suffix.lower()
        if suffix not in SUFFIXES:
            raise ValueError(f'"{path}" is neither .csv nor .xlsx')
        self.path = path
        self.rows = 0
        #: An XLSX's Summary sheet (a CSV has none): lines, or label/value pairs; set
        #: it any time before the block ends.
        self.summary: Sequence[tuple[str, Cell]] | Sequence[Line] | None = None
        #: Further XLSX sheets, written after the Summary.
        self.sheets: list[SheetWriter] = []
        self._kinds = kinds
        self._header = tuple(header)
        self._mode = SECRET_MODE if secret else DEFAULT_MODE
        self._is_csv = suffix == ".csv"
        self._status_column = status_column
        self._sheet = sheet
        self._stack = contextlib.ExitStack()
        self._file: BinaryIO | None = None
        self._text: io.TextIOWrapper | None = None
        self._csv: Any = None
        self._xlsx: XlsxTable | None = None

    def __enter__(self) -> Self:
        with contextlib.ExitStack() as stack:
            self._file = stack.enter_context(atomic_file(self.path, self._mode))
            if self._is_csv:
                self._text = io.TextIOWrapper(self._file, encoding="utf-8", newline="")
                self._csv = csv.writer(self._text, lineterminator="\n")
                # A CSV cell a spreadsheet would run as a formula (=1+1, @SUM(…))
                # is written after the text mark, so opening the file runs none.
                self._csv.writerow([mark_as_text(name) for name in self._header])
            else:
                # Imported here: openpyxl is for writing, and validate never writes.
                from provisioner.report.xlsx import XlsxTable

                self._xlsx = XlsxTable(
                    self._header,
                    status_column=self._status_column,
                    sheet=self._sheet,
                    kinds=self._kinds,
                    title=self.path.name,
                )
            self._stack = stack.pop_all()
        return self

    def append(self, record: Sequence[Cell]) -> None:
        """
        Write one record below the others.
        """
        self.rows += 1
        if self._csv is not None:
            self._csv.writerow(
                [
                    mark_as_text(cell)
                    if isinstance(cell, str)
                    else ("" if cell is None else cell)
                    for cell in record
                ]
            )
        elif self._xlsx is not None:
            self._xlsx.append(record)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            try:
                self._finish()
            except BaseException as error:
                self._stack.__exit__(type(error), error, error.__traceback__)
                raise
            self._stack.close()
            return
        if self._text is not None:
            # The wrapper must not close the file the atomic writer removes.
            with contextlib.suppress(ValueError, OSError):
                self._text.detach()
        # The atomic writer sees the exception: it removes the half-written file.
        self._stack.__exit__(exc_type, exc, tb)

    def _finish(self) -> None:
        if self._text is not None:
            # Detach so closing the wrapper does not close the file being synced.
            self._text.flush()
            self._text.detach()
        elif self._xlsx is not None:
            assert self._file is not None
            self._xlsx.save(self._file, self.summary, self.sheets)


@contextlib.contextmanager
def atomic_file(path: Path, mode: int) -> Iterator[BinaryIO]:
    """
    Open a temporary file beside ``path`` with ``mode``; rename it over ``path`` on
    success, remove it on failure.

    The temporary file, ``.<name>.<pid>.<random>.tmp``, is locked from its creation
    to its rename; first, the ones earlier writers of ``path`` killed outright left
    behind are removed (``remove_stale_temporaries``).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    # O_EXCL: never reuse a file someone else created, whatever its mode.
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    _lock(descriptor)
    try:
        with os.fdopen(descriptor, "wb") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
            # Renamed while open, so while locked: no one ever finds it unlocked.
            os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)


def remove_stale_temporaries(path: Path) -> list[Path]:
    """
    Remove the temporary files that writers of ``path`` killed outright left beside
    it; return the ones removed.

    One is stale when the process its name gives is gone and nobody holds its lock. A
    live writer's is never touched: its process runs, and it holds the lock until the
    file is renamed (the lock also covers a writer whose process this machine cannot
    see, in another container writing to the same folder). One left by a process
    whose number was given to another since, or named before temporary files carried
    their process (no number), is left alone: nothing tells it from a live one.
    """
    stale = re.compile(rf"\.{re.escape(path.name)}\.([0-9]{{1,9}})\.[0-9a-f]{{8}}\.tmp")
    try:
        names = os.listdir(path.parent)
    except OSError:
        return []
    removed: list[Path] = []
    for name in names:
        found = stale.fullmatch(name)
        if found is None or _is_running(int(found.group(1))):
            continue
        candidate = path.with_name(name)
        if _remove_if_unlocked(candidate):
            log.info("stale_temporary_removed", path=str(candidate))
            removed.append(candidate)
    return removed


def _lock(descriptor: int) -> None:
    # Where the file system has no locks, nobody can take this one either, so a
    # stale file there is kept: safe, if untidy.
    with contextlib.suppress(OSError):
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _is_running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        # Signal 0 sends nothing: it only asks whether the process exists.
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # another user's process: it exists
    return True


def _remove_if_unlocked(candidate: Path) -> bool:
    try:
        descriptor = os.open(candidate, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # The name may have moved on meanwhile (a file renamed into place, another
        # created): remove it only if it is still the file this lock holds.
        if (
            os.stat(candidate, follow_symlinks=False).st_ino
            != os.fstat(descriptor).st_ino
        ):
            return False
        candidate.unlink()
    except OSError:
        return False
    finally:
        os.close(descriptor)
    return True


def _sync_folder(folder: Path) -> None:
    # The rename survives a power cut only once the folder's entry is on disk too;
    # where folders cannot be opened or synced, the rename alone has to do.
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
