"""
Record a rollback's deletes durably, so a killed rollback continues where it stopped.

A small SQLite file next to the rollback's report (``<report>.journal.sqlite``, opened
like a run's journal: ``run.journal.connect``). It is keyed by device id, not by row:
what it remembers is which devices were being deleted and which are gone, and that
stays true whatever report names them. Each change is one short transaction:

- ``deleting`` just before a DELETE is sent: after a kill, the device may be gone by
  our hand, so a 404 on the next look means ``deleted``, not ``already_gone``;
- ``done`` with the row's result once it is known.

A resumed rollback takes a result from the journal only when the device is gone for
sure (``deleted``, ``already_gone``); a row that was kept, skipped or failed is decided
again (its device is read again), so running the same command again retries failures
and follows what changed since. A journal is bound to its target (API base URL and
org): another target never resumes it.

Schema::

    meta(key TEXT PRIMARY KEY, value TEXT)       -- target, schema version
    devices(device_id TEXT PRIMARY KEY, row INTEGER,
            phase TEXT,                          -- deleting | done
            status TEXT, reason TEXT, http_status INTEGER, tracking_id TEXT,
            attempts INTEGER, updated_at TEXT)
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Self

from provisioner.errors import ConfigError
from provisioner.inventory.rollback_rules import RollbackResult, RollbackStatus
from provisioner.models import Target
from provisioner.run.journal import open_held, release_journal

__all__ = ["SCHEMA_VERSION", "RollbackEntry", "RollbackJournal"]

SCHEMA_VERSION = "rollback-1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS devices (
    device_id TEXT PRIMARY KEY,
    row INTEGER NOT NULL,
    phase TEXT NOT NULL CHECK (phase IN ('deleting', 'done')),
    status TEXT,
    reason TEXT,
    http_status INTEGER,
    tracking_id TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class RollbackEntry:
    """
    One device's last recorded state; ``result`` only once its row is done.
    """

    device_id: str
    delete_sent: bool
    result: RollbackResult | None
    #: The report row it was recorded for.
    row: int | None = None


class RollbackJournal:
    """
    One rollback's journal; open it with ``RollbackJournal.open`` as a context manager.
    """

    def __init__(self, connection: sqlite3.Connection, path: Path | None) -> None:
        self._db = connection
        self.path = path
        #: The journal's lock (``hold_journal``), released by ``close``.
        self._lock: int | None = None

    @classmethod
    def open(cls, path: Path | None, target: Target) -> Self:
        """
        Open or create the journal at ``path`` (None: in memory, no resume).

        Raises:
            ConfigError: the journal was written for another API or org, or it is not
                a rollback journal, or it cannot be read.
        """

        journal, lock = open_held(
            path, lambda db: cls._claimed(db, path, target), _unreadable
        )
        journal._lock = lock
        return journal

    @classmethod
    def _claimed(
        cls, connection: sqlite3.Connection, path: Path | None, target: Target
    ) -> Self:
        connection.executescript(_SCHEMA)
        journal = cls(connection, path)
        journal._claim(json.dumps(target.identity(), sort_keys=True))
        return journal

    def _claim(self, target: str) -> None:
        found = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        if not found:
            with self._db:
                self._db.executemany(
                    "INSERT INTO meta (key, value) VALUES (?, ?)",
                    [("target", target), ("schema", SCHEMA_VERSION)],
                )
            return
        if found.get("schema") != SCHEMA_VERSION:
            raise ConfigError(
                f"{self.path} is not a rollback's journal; choose another --report "
                "path for the rollback"
            )
        if found.get("target") != target:
            raise ConfigError(
                f"the journal {self.path} belongs to a rollback against another API "
                "or org; choose another --report path, or check --base-url/--cloud "
                "and --org-id"
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
        release_journal(self.path, self._lock)
        self._lock = None

    def entries(self) -> dict[str, RollbackEntry]:
        """
        Every recorded device's last state, by device id.
        """
        found: dict[str, RollbackEntry] = {}
        rows = self._db.execute(
            "SELECT device_id, row, phase, status, reason, http_status, tracking_id, "
            "attempts FROM devices"
        )
        for device_id, row, phase, status, reason, http, tracking, attempts in rows:
            result = None
            if phase == "done" and status:
                result = RollbackResult(
                    row=row,
                    status=RollbackStatus(status),
                    reason=reason or "",
                    device_id=device_id,
                    http_status=http,
                    tracking_id=tracking,
                    attempts=attempts,
                )
            found[device_id] = RollbackEntry(
                device_id, delete_sent=phase == "deleting", result=result, row=row
            )
        return found

    def mark_deleting(self, row: int, device_id: str) -> None:
        """
        Record that the device's DELETE is about to be sent.
        """
        self._write(device_id, row, "deleting", None)

    def mark_done(self, result: RollbackResult) -> None:
        """
        Record a row's result (for the device it names).
        """
        if result.device_id is None:
            return
        self._write(result.device_id, result.row, "done", result)

    def _write(
        self, device_id: str, row: int, phase: str, result: RollbackResult | None
    ) -> None:
        now = datetime.now(UTC).isoformat()
        values = (
            (result.status.value, result.reason, result.http_status)
            if result is not None
            else (None, None, None)
        )
        tracking = result.tracking_id if result is not None else None
        attempts = result.attempts if result is not None else 0
        with self._db:
            self._db.execute(
                "INSERT INTO devices (device_id, row, phase, status, reason, "
                "http_status, tracking_id, attempts, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (device_id) DO UPDATE "
                "SET row = excluded.row, phase = excluded.phase, "
                "status = excluded.status, reason = excluded.reason, "
                "http_status = excluded.http_status, "
                "tracking_id = excluded.tracking_id, attempts = excluded.attempts, "
                "updated_at = excluded.updated_at",
                (device_id, row, phase, *values, tracking, attempts, now),
            )


def _unreadable(path: Path | None, error: sqlite3.DatabaseError) -> ConfigError:
    return ConfigError(
        f"the rollback journal {path} cannot be read ({error}); move it away (or "
        "choose another --report path) and run the rollback again"
    )
