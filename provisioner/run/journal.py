"""
Record every row's progress durably, so a run stopped at any point can continue.

The journal is a small SQLite file next to the report (``<report>.journal.sqlite``),
mode 0600 because it holds activation codes (never passwords, never the token). Each
state change is one short transaction: ``started`` before a row's first write call,
``created`` once its device (or code) exists, ``done`` with the row's full Outcome.
A row's first start time is kept across resumes (``started_at``): an activation code
whose answer was lost made a pending device at or after it, which is how a resumed
row finds that device (see ``steps.py``).

Two things make a journal safe to continue from:

- **Its target.** A journal is bound to the API, the org and the tag mode it was
  written for (``models.Target.identity``); opening it for another target raises, so
  a run against another org never takes this one's rows for done.
- **Row identity, not position.** A row is journalled under what it is
  (``identity.row_keys``): its MAC, or for an activation-code row its org, owner and model
  (numbered when one owner has several such rows). Adding rows, fixing one, sorting
  or re-saving the file continues the run. Each entry keeps a digest of what the row
  asks for (``identity.row_digest``), so a row whose owner, model or tags changed is looked at
  again rather than taken for done.

``--fresh`` (``fresh=True``) forgets the rows but not their activation codes: the
device of each code the old journal holds goes to the ``void`` table, and the run
deletes it (if still unactivated) when it issues that row's new code, so no pending
device is left that no row accounts for.

The module is longer than most because it is the one owner of the journal's file
format: its SQL, the binding to a target, and ``--fresh``'s voiding live together so
they cannot drift apart.

WAL mode with ``synchronous=NORMAL``: a commit survives the process being killed (the
WAL is in the OS's hands), and costs tens of microseconds, so the calls stay on the
event loop thread rather than hopping to a worker thread.

Schema (version 2)::

    meta(key TEXT PRIMARY KEY, value TEXT)     -- schema, target, created_at
    rows(key TEXT PRIMARY KEY,                 -- the row's identity (row_keys)
         row INTEGER,                          -- its number when last written
         phase TEXT,                           -- started | created | done
         device_id TEXT, outcome TEXT,         -- Outcome as JSON (partial before done)
         digest TEXT,                          -- what the row asked for (row_digest)
         updated_at TEXT, started_at TEXT)     -- started_at: the first start, kept
    void(device_id TEXT PRIMARY KEY, key TEXT) -- replaced codes' pending devices
"""

from __future__ import annotations

import contextlib
import enum
import json
import os
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import structlog

from provisioner.errors import ConfigError
from provisioner.models import Outcome, Row, Status, TagMode, Target
from provisioner.run.identity import describe_target, row_keys

__all__ = [
    "SCHEMA_VERSION",
    "Journal",
    "JournalEntry",
    "Phase",
    "connect",
    "journal_path_for",
]

log = structlog.get_logger()

SCHEMA_VERSION = "2"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rows (
    key TEXT PRIMARY KEY,
    row INTEGER NOT NULL,
    phase TEXT NOT NULL CHECK (phase IN ('started', 'created', 'done')),
    device_id TEXT,
    outcome TEXT,
    digest TEXT,
    updated_at TEXT NOT NULL,
    started_at TEXT
);
CREATE TABLE IF NOT EXISTS void (device_id TEXT PRIMARY KEY, key TEXT NOT NULL);
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

    ``digest`` is what the row asked for when it was written (``row_digest``).
    """

    row: int
    phase: Phase
    device_id: str | None
    outcome: Outcome | None
    digest: str | None = None


def journal_path_for(report_path: Path) -> Path:
    """
    The journal's place: next to the (first) report, ``<stem>.journal.sqlite``.
    """
    return report_path.with_suffix(".journal.sqlite")


_OUTCOME_FIELDS = tuple(f.name for f in fields(Outcome))


def _outcome_to_json(outcome: Outcome) -> str:
    # A shallow dict: every field is a plain value, and asdict's deep copy was ~7% of
    # a large run's CPU.
    return json.dumps({name: getattr(outcome, name) for name in _OUTCOME_FIELDS})


def _outcome_from_json(text: str, row: int) -> Outcome:
    data: dict[str, Any] = json.loads(text)
    data["status"] = Status(data["status"])
    data["row"] = row
    return Outcome(**data)


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


def _unreadable(path: Path | None, error: sqlite3.DatabaseError) -> ConfigError:
    return ConfigError(
        f"the journal {path} cannot be read ({error}); run again with --fresh to "
        "start over"
    )


class Journal:
    """
    One run's journal: an open SQLite connection used from the event loop thread.

    Open it with ``Journal.open(path, target, rows)`` (or ``path=None`` for an
    in-memory journal that only lives as long as the run), as a context manager. Rows
    are named by number in every method; the journal keeps them under their identity
    (``row_keys``), and a row outside ``rows`` under its number alone.
    """

    def __init__(
        self, connection: sqlite3.Connection, path: Path | None, keys: Mapping[int, str]
    ) -> None:
        self._db = connection
        self.path = path
        self._keys = dict(keys)
        self._numbers = {key: number for number, key in self._keys.items()}
        #: When the run this journal records began (its first opening), UTC.
        self.created_at = datetime.now(UTC)

    @classmethod
    def open(
        cls,
        path: Path | None,
        target: Target,
        rows: Sequence[Row] = (),
        *,
        fresh: bool = False,
    ) -> Self:
        """
        Open or create the journal at ``path`` for ``target``.

        With ``fresh``, an earlier journal's rows are forgotten; the devices of the
        activation codes it holds (for the same target) are kept in ``void``.

        Raises:
            ConfigError: the journal belongs to another target, was written by an
                older version, or is unreadable (each message says what to do).
        """
        if path is not None and fresh:
            _remove_unreadable(path)
        try:
            connection = connect(path)
        except sqlite3.DatabaseError as error:
            raise _unreadable(path, error) from error
        try:
            journal = cls(connection, path, row_keys(rows))
            journal._claim(target, fresh=fresh)
        except sqlite3.DatabaseError as error:
            connection.close()
            raise _unreadable(path, error) from error
        except BaseException:
            connection.close()
            raise
        return journal

    @staticmethod
    def target_of(path: Path) -> Target | None:
        """
        The target a journal file was written for (None: no readable journal there).
        """
        if not path.is_file():
            return None
        try:
            with contextlib.closing(
                sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            ) as db:
                found = db.execute(
                    "SELECT value FROM meta WHERE key = 'target'"
                ).fetchone()
        except sqlite3.DatabaseError:
            return None
        if found is None:
            return None
        identity = json.loads(found[0])
        return Target(
            base_url=identity["base_url"],
            org_id=identity["org_id"] or None,
            tag_mode=TagMode(identity["tag_mode"]),
        )

    def _claim(self, target: Target, *, fresh: bool) -> None:
        tables = {
            name
            for (name,) in self._db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
            )
        }
        found: dict[str, str] = {}
        if "meta" in tables:
            found = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        wanted = target.identity()
        if found and not fresh:
            if found.get("schema") != SCHEMA_VERSION:
                raise ConfigError(
                    f"the journal {self.path} was written by an older version of "
                    "provisioner and cannot be continued; run again with --fresh to "
                    "start over, or choose another --report path"
                )
            recorded = json.loads(found.get("target", "{}"))
            if recorded != wanted:
                raise ConfigError(
                    f"the journal {self.path} belongs to a run against "
                    f"{describe_target(recorded)}, not {describe_target(wanted)}: a "
                    "run is never continued against another target. For this target "
                    "choose another --report path, or start over here with --fresh"
                )
        voids: list[tuple[str, str]] = []
        if found and fresh:
            voids = self._codes_to_void(found, wanted, tables)
        # One transaction: a crash never leaves the old rows gone and their codes
        # not yet recorded for voiding.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            if fresh:
                for table in ("meta", "rows", "void"):
                    self._db.execute(f"DROP TABLE IF EXISTS {table}")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            if fresh or not found:
                self._db.executemany(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                    [
                        ("schema", SCHEMA_VERSION),
                        ("target", json.dumps(wanted, sort_keys=True)),
                        ("created_at", datetime.now(UTC).isoformat()),
                    ],
                )
                self._db.executemany(
                    "INSERT OR IGNORE INTO void (device_id, key) VALUES (?, ?)", voids
                )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        created = self._db.execute(
            "SELECT value FROM meta WHERE key = 'created_at'"
        ).fetchone()
        if created is not None:
            self.created_at = datetime.fromisoformat(created[0])
        if voids:
            log.info("journal_fresh", codes_to_void=len(voids))

    def _codes_to_void(
        self, found: Mapping[str, str], wanted: Mapping[str, str], tables: set[str]
    ) -> list[tuple[str, str]]:
        """
        The pending devices of the codes an earlier journal holds, to void when their
        rows get new codes; none when it was for another target (its devices are
        not this org's to delete) or written by an older version.
        """
        if found.get("schema") != SCHEMA_VERSION or "rows" not in tables:
            return []
        if json.loads(found.get("target", "{}")) != dict(wanted):
            log.warning("journal_fresh_other_target", path=str(self.path))
            return []
        voids = [
            (device_id, key)
            for key, device_id, outcome in self._db.execute(
                "SELECT key, device_id, outcome FROM rows WHERE device_id IS NOT NULL"
            )
            if outcome and json.loads(outcome).get("activation_code")
        ]
        if "void" in tables:
            voids += list(self._db.execute("SELECT device_id, key FROM void"))
        return voids

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

    # -- reading --------------------------------------------------------------------

    def _key(self, row: int) -> str:
        return self._keys.get(row, f"row:{row}")

    def _number(self, key: str, stored: int) -> int | None:
        """
        The row number a stored key has now: its row's, or (for a key of no current
        manifest row) the stored number when no current row claims it.
        """
        if key in self._numbers:
            return self._numbers[key]
        if key.startswith("row:") and stored not in self._keys:
            return stored
        return None

    def _entries(
        self, found: Iterable[tuple[str, int, str, str | None, str | None, str | None]]
    ) -> dict[int, JournalEntry]:
        entries = {}
        for key, stored, phase, device_id, outcome, digest in found:
            number = self._number(key, stored)
            if number is None:
                continue
            entries[number] = JournalEntry(
                number,
                Phase(phase),
                device_id,
                _outcome_from_json(outcome, number) if outcome else None,
                digest,
            )
        return entries

    def entries(self) -> dict[int, JournalEntry]:
        """
        Every recorded row of the current rows, by row number.
        """
        return self._entries(
            self._db.execute(
                "SELECT key, row, phase, device_id, outcome, digest FROM rows"
            )
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
        keys = sorted({self._key(number) for number in rows})
        if not keys:
            return {}
        marks = ", ".join("?" * len(keys))
        return self._entries(
            self._db.execute(
                "SELECT key, row, phase, device_id, outcome, digest FROM rows "
                f"WHERE key IN ({marks})",
                keys,
            )
        )

    def claimed_devices(self) -> frozenset[str]:
        """
        Every device a journalled row names (this run's), and every device to void.
        """
        found = self._db.execute(
            "SELECT device_id FROM rows WHERE device_id IS NOT NULL "
            "UNION SELECT device_id FROM void"
        )
        return frozenset(device_id for (device_id,) in found)

    def started_at(self, row: int) -> datetime | None:
        """
        When the row was first started (across resumes), or None if it never was.
        """
        found = self._db.execute(
            "SELECT started_at FROM rows WHERE key = ?", (self._key(row),)
        ).fetchone()
        if found is None or found[0] is None:
            return None
        return datetime.fromisoformat(found[0])

    def void_for(self, row: int) -> str | None:
        """
        The device of an earlier code of this row that its new code replaces, if any.
        """
        found = self._db.execute(
            "SELECT device_id FROM void WHERE key = ?", (self._key(row),)
        ).fetchone()
        return None if found is None else str(found[0])

    def voids_left(self) -> int:
        """
        How many replaced codes still wait to be voided.
        """
        return int(self._db.execute("SELECT COUNT(*) FROM void").fetchone()[0])

    # -- writing --------------------------------------------------------------------

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

    def mark_done(self, outcome: Outcome, digest: str | None = None) -> None:
        """
        Record a row's final outcome, and (``digest``) what the row asked for.
        """
        self._write(outcome.row, Phase.DONE, outcome.device_id, outcome, digest)

    def add_void(self, device_id: str, row: int) -> None:
        """
        Record that this row's next code replaces (voids) the code of ``device_id``.
        """
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO void (device_id, key) VALUES (?, ?)",
                (device_id, self._key(row)),
            )

    def forget_void(self, device_id: str) -> None:
        """
        Record that a replaced code's device was voided (or needs no voiding).
        """
        with self._db:
            self._db.execute("DELETE FROM void WHERE device_id = ?", (device_id,))

    def _write(
        self,
        row: int,
        phase: Phase,
        device_id: str | None,
        outcome: Outcome | None,
        digest: str | None = None,
    ) -> None:
        now = datetime.now(UTC).isoformat()
        text = (
            _outcome_to_json(replace(outcome, row=row)) if outcome is not None else None
        )
        # Only a start sets started_at, and only the first one: the earliest start
        # bounds when a lost activation code's device can have been made.
        started = now if phase is Phase.STARTED else None
        with self._db:
            self._db.execute(
                "INSERT INTO rows (key, row, phase, device_id, outcome, digest, "
                "updated_at, started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET row = excluded.row, "
                "phase = excluded.phase, device_id = excluded.device_id, "
                "outcome = excluded.outcome, "
                "digest = COALESCE(excluded.digest, rows.digest), "
                "updated_at = excluded.updated_at, "
                "started_at = COALESCE(rows.started_at, excluded.started_at)",
                (
                    self._key(row),
                    row,
                    phase.value,
                    device_id,
                    text,
                    digest,
                    now,
                    started,
                ),
            )


def _remove_unreadable(path: Path) -> None:
    """
    Before starting over, remove a journal file SQLite cannot read (and its WAL).
    """
    if not path.exists():
        return
    try:
        with sqlite3.connect(path) as probe:
            probe.execute("SELECT name FROM sqlite_master").fetchall()
        probe.close()
    except sqlite3.DatabaseError:
        for companion in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{companion}").unlink(missing_ok=True)
