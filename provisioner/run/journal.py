"""
Record every row's progress durably, so a run stopped at any point can continue.

The journal is a small SQLite file next to the report (``<report>.journal.sqlite``),
mode 0600 because it holds activation codes (never passwords, never the token). Each
state change is one short transaction: ``started`` before a row's first write call,
``created`` once its device (or code) exists, ``done`` with the row's full Outcome.
A row's first start time is kept across resumes (``started_at``): an activation code
whose answer was lost made a pending device at or after it, which is how a resumed
row finds that device (see ``steps.py``).
WAL mode with ``synchronous=NORMAL``: a commit survives the process being killed (the
WAL is in the OS's hands), and costs tens of microseconds, so the calls stay on the
event loop thread rather than hopping to a worker thread.

Schema::

    meta(key TEXT PRIMARY KEY, value TEXT)        -- fingerprint, schema version
    rows(row INTEGER PRIMARY KEY, phase TEXT,     -- started | created | done
         device_id TEXT, outcome TEXT,            -- Outcome as JSON (partial before done)
         updated_at TEXT,
         started_at TEXT)                         -- the row's first start, kept
"""

from __future__ import annotations

import enum
import hashlib
import json
import os
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from provisioner.errors import ConfigError
from provisioner.models import Manifest, Outcome, Status

__all__ = [
    "SCHEMA_VERSION",
    "Journal",
    "JournalEntry",
    "Phase",
    "connect",
    "journal_path_for",
    "manifest_fingerprint",
]

SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rows (
    row INTEGER PRIMARY KEY,
    phase TEXT NOT NULL CHECK (phase IN ('started', 'created', 'done')),
    device_id TEXT,
    outcome TEXT,
    updated_at TEXT NOT NULL,
    started_at TEXT
);
"""


class Phase(enum.StrEnum):
    """
    How far a row got: before its write call, after it, or finished.
    """

    STARTED = "started"
    CREATED = "created"
    DONE = "done"


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """
    One row's last recorded state; ``outcome`` is partial unless the phase is done.
    """

    row: int
    phase: Phase
    device_id: str | None
    outcome: Outcome | None


def connect(path: Path | None) -> sqlite3.Connection:
    """
    Open (or create) a journal database: mode 0600 from its first byte, WAL,
    ``synchronous=NORMAL``, autocommit outside ``with connection:`` blocks.

    ``path=None`` opens one in memory. A rollback's journal opens the same way
    (``inventory/rollback_journal.py``).

    Raises:
        sqlite3.DatabaseError: the file is not a database (the caller words it).
    """
    if path is None:
        connection = sqlite3.connect(":memory:", isolation_level=None)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Create the file 0600 before SQLite does: it will hold activation codes,
        # and SQLite gives the -wal and -shm files the database file's mode.
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
        os.chmod(path, 0o600)
        connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
    except BaseException:
        connection.close()
        raise
    return connection


def journal_path_for(report_path: Path) -> Path:
    """
    The journal's place: next to the (first) report, ``<stem>.journal.sqlite``.
    """
    return report_path.with_suffix(".journal.sqlite")


def manifest_fingerprint(manifest: Manifest) -> str:
    """
    Hash the manifest's path and its rows' normalised content (never a password).

    Two runs share a journal only when this matches: the same file, the same rows.
    """
    digest = hashlib.sha256()
    digest.update(str(manifest.path.resolve()).encode())
    for row in manifest.rows:
        fields = [
            row.number,
            row.mac,
            row.model,
            row.workspace_id,
            row.person_id,
            list(row.tags),
            row.org_id,
            row.password is not None,
            row.is_valid,
        ]
        digest.update(json.dumps(fields).encode())
    return digest.hexdigest()


_OUTCOME_FIELDS = tuple(f.name for f in fields(Outcome))


def _outcome_to_json(outcome: Outcome) -> str:
    # A shallow dict: every field is a plain value, and asdict's deep copy was ~7% of
    # a large run's CPU.
    return json.dumps({name: getattr(outcome, name) for name in _OUTCOME_FIELDS})


def _outcome_from_json(text: str) -> Outcome:
    data: dict[str, Any] = json.loads(text)
    data["status"] = Status(data["status"])
    return Outcome(**data)


def _entries(
    found: Iterable[tuple[int, str, str | None, str | None]],
) -> dict[int, JournalEntry]:
    return {
        number: JournalEntry(
            number,
            Phase(phase),
            device_id,
            _outcome_from_json(outcome) if outcome else None,
        )
        for number, phase, device_id, outcome in found
    }


def _add_started_at(connection: sqlite3.Connection) -> None:
    """
    Give a journal written before ``started_at`` existed that column.

    A row still in phase ``started`` was last written by its start, so its
    ``updated_at`` is its start time.
    """
    columns = {row[1] for row in connection.execute("PRAGMA table_info(rows)")}
    if "started_at" in columns:
        return
    with connection:
        connection.execute("ALTER TABLE rows ADD COLUMN started_at TEXT")
        connection.execute(
            "UPDATE rows SET started_at = updated_at WHERE phase = 'started'"
        )


def _unreadable(path: Path | None, error: sqlite3.DatabaseError) -> ConfigError:
    return ConfigError(
        f"the journal {path} cannot be read ({error}); run again with --fresh to "
        "start over"
    )


class Journal:
    """
    One run's journal: an open SQLite connection used from the event loop thread.

    Open it with ``Journal.open(path, fingerprint)`` (or ``path=None`` for an
    in-memory journal that only lives as long as the run), as a context manager.
    """

    def __init__(self, connection: sqlite3.Connection, path: Path | None) -> None:
        self._db = connection
        self.path = path

    @classmethod
    def open(cls, path: Path | None, fingerprint: str) -> Self:
        """
        Open or create the journal at ``path``; refuse one written for another manifest.

        Raises:
            ConfigError: the journal belongs to a different manifest, or is unreadable.
        """
        try:
            connection = connect(path)
        except sqlite3.DatabaseError as error:
            raise _unreadable(path, error) from error
        try:
            connection.executescript(_SCHEMA)
            _add_started_at(connection)
            journal = cls(connection, path)
            journal._claim(fingerprint)
        except sqlite3.DatabaseError as error:
            connection.close()
            raise _unreadable(path, error) from error
        except BaseException:
            connection.close()
            raise
        return journal

    def _claim(self, fingerprint: str) -> None:
        found = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        if not found:
            with self._db:
                self._db.executemany(
                    "INSERT INTO meta (key, value) VALUES (?, ?)",
                    [("fingerprint", fingerprint), ("schema", SCHEMA_VERSION)],
                )
            return
        if (
            found.get("schema") != SCHEMA_VERSION
            or found.get("fingerprint") != fingerprint
        ):
            raise ConfigError(
                f"the journal {self.path} was written for a different manifest (or the "
                "manifest changed since); run again with --fresh to start over, or "
                "choose another --report path"
            )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """
        Close the connection; every recorded change is already committed.
        """
        self._db.close()

    def entries(self) -> dict[int, JournalEntry]:
        """
        Every recorded row's last state, by row number.
        """
        return _entries(
            self._db.execute("SELECT row, phase, device_id, outcome FROM rows")
        )

    def done_outcomes(self) -> Mapping[int, Outcome]:
        """
        The outcomes of the rows that finished, by row number.
        """
        return {
            n: e.outcome
            for n, e in self.entries().items()
            if e.phase is Phase.DONE and e.outcome is not None
        }

    def entries_for(self, rows: Iterable[int]) -> dict[int, JournalEntry]:
        """
        The last state of the given rows that the journal holds, by row number.
        """
        numbers = sorted(set(rows))
        if not numbers:
            return {}
        marks = ", ".join("?" * len(numbers))
        return _entries(
            self._db.execute(
                "SELECT row, phase, device_id, outcome FROM rows "
                f"WHERE row IN ({marks})",
                numbers,
            )
        )

    def started_at(self, row: int) -> datetime | None:
        """
        When the row was first started (across resumes), or None if it never was.
        """
        found = self._db.execute(
            "SELECT started_at FROM rows WHERE row = ?", (row,)
        ).fetchone()
        if found is None or found[0] is None:
            return None
        return datetime.fromisoformat(found[0])

    def mark_started(self, row: int) -> None:
        """
        Record that a row's write call is about to be sent (its first start is kept).
        """
        self._write(row, Phase.STARTED, None, None)

    def mark_created(self, outcome: Outcome) -> None:
        """
        Record that a row's device or code exists (``outcome`` is the partial result).
        """
        self._write(outcome.row, Phase.CREATED, outcome.device_id, outcome)

    def mark_done(self, outcome: Outcome) -> None:
        """
        Record a row's final outcome.
        """
        self._write(outcome.row, Phase.DONE, outcome.device_id, outcome)

    def _write(
        self, row: int, phase: Phase, device_id: str | None, outcome: Outcome | None
    ) -> None:
        now = datetime.now(UTC).isoformat()
        text = _outcome_to_json(outcome) if outcome is not None else None
        # Only a start sets started_at, and only the first one: the earliest start
        # bounds when a lost activation code's device can have been made.
        started = now if phase is Phase.STARTED else None
        with self._db:
            self._db.execute(
                "INSERT INTO rows (row, phase, device_id, outcome, updated_at, "
                "started_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (row) DO UPDATE "
                "SET phase = excluded.phase, device_id = excluded.device_id, "
                "outcome = excluded.outcome, updated_at = excluded.updated_at, "
                "started_at = COALESCE(rows.started_at, excluded.started_at)",
                (row, phase.value, device_id, text, now, started),
            )
