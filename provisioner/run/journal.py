"""
Record every row's progress durably, so a run stopped at any point can continue.

The journal is a small SQLite file next to the report (``<report>.journal.sqlite``),
mode 0600 because it holds activation codes (never passwords, never the token). A row
passes through ``started`` before its first write call, ``created`` once its device
(or code) exists, and ``done`` with the row's full Outcome (see "What a crash can
lose" below for when each is committed).
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

A rollback that deletes a row's device (or finds it gone) makes the journal forget
that row (``forget_devices``, from ``inventory/rollback.py``), so the same run command
provisions it again instead of taking it for done. The device's id goes to the
``rolled_back`` table: the report that named it, replaced by the next run, is then
kept as the record of a rolled-back run, not as the way to delete it
(``read_rolled_back``). Nor is it kept as naming a device the rollout created
when this journal, continued by the run that replaces it, records that device as
adopted (``read_adopted``): its ``created`` cell was edited by hand. A rollback
also reads what the run recorded for each report row (``read_entries``), without
taking the journal, so a report's status cell edited by hand never makes it delete
a device the run adopted. A report a run moved aside (``<name>-replaced-<time>``)
has no journal of its own: when the run that moved it continued this journal, the
file's name goes to ``set_aside`` (``record_set_aside``), and a rollback of it reads
this journal's word on its rows while the journal has not started over since
(``read_set_aside``: ``--fresh`` renews ``created_at``, and the rows are then
another run's). The per-org reports a partner run writes beside its report
(``--split-by-org``: ``<report>-org-<org>``) have no journal of their own either:
the run notes their names in ``split_reports`` (``record_split``), and a rollback
or rerun of one finds this journal by that record (``split_origin``), on the same
terms as a report set aside. A dry run plans from a copy of the journal in memory
(``Journal.snapshot``): it never writes the file nor takes its lock.

The module is longer than most because it is the one owner of the journal's file
format: its SQL, the binding to a target, and ``--fresh``'s voiding live together so
they cannot drift apart.

WAL mode with ``synchronous=NORMAL``: a commit survives the process being killed (the
WAL is in the OS's hands), and costs tens of microseconds, so the calls stay on the
event loop thread rather than hopping to a worker thread.

What a crash can lose. Commits were about a tenth of a no-fault run's CPU when every mark
had its own, so marks are batched (each batch one transaction: all of it or none of it is
committed), and only where losing one is harmless:

- ``started`` is committed before the write call it announces is sent, together
  with any marks waiting (``start`` lets the rows starting at the same moment share
  one commit): a crash never loses a start, so a create or code that took effect is
  always reconciled on resume (looked up by MAC, or its pending device found and
  voided), never repeated blind.
- ``created`` of an activation-code row is committed at once too: it holds the code.
  So are the void records, which account for pending devices.
- ``created`` of a MAC row and every ``done`` wait for the next commit: the next
  start, a code, a void record, a read, ``close``, or ``MAX_WAIT`` seconds (checked
  whenever a mark is made). A kill (SIGKILL) loses at most the marks made since the
  last commit: those rows are resumed from their last committed phase, so a MAC row
  whose ``created`` was lost is looked up by MAC and reported ``created`` (no second
  device), and a row whose ``done`` was lost applies its tags again (idempotent). No
  device, code or tag is lost or doubled; only those few rows' calls are made again.

With ``synchronous=NORMAL`` an OS crash or power loss can also lose the last commits
(SQLite's WAL guarantee); the same resume reasoning holds for them.

Schema (version 2)::

    meta(key TEXT PRIMARY KEY, value TEXT)     -- schema, target, created_at
    rows(key TEXT PRIMARY KEY,                 -- the row's identity (row_keys)
         row INTEGER,                          -- its number when last written
         phase TEXT,                           -- started | created | done
         device_id TEXT, outcome TEXT,         -- Outcome as JSON (partial before done)
         digest TEXT,                          -- what the row asked for (row_digest)
         updated_at TEXT, started_at TEXT)     -- started_at: the first start, kept
    void(device_id TEXT PRIMARY KEY, key TEXT) -- replaced codes' pending devices
    rolled_back(device_id TEXT PRIMARY KEY)    -- the devices of rows a rollback forgot
    set_aside(name TEXT PRIMARY KEY,           -- reports a run continuing it moved aside
              journal_created_at TEXT)         -- meta's created_at then
    split_reports(name TEXT PRIMARY KEY,       -- per-org reports written from its rows
                  journal_created_at TEXT)     -- meta's created_at then
    runs(kind TEXT, started_at TEXT,           -- the rollout's commands so far
         record TEXT,                          -- RunRecord as JSON
         PRIMARY KEY (kind, started_at))

``codes --renew`` keeps a journal of the same format beside its new report while it
works: each code it replaces goes to ``void`` before the new code is asked for, the
new code is a row's ``created``, and the journal is removed (``discard``) once the
report holding the new codes is written. A renewal killed at any point and run again
continues from it as a run does (``code_rows.renew_code_row``).

Commands that work on a report's rows from another journal (a rerun of the report,
``codes --renew``, a rollback while it deletes) hold the report's run journal too
(``hold_journals``), so the run of that report and they never work at once.

``runs`` is the report's run history (``record_history``/``read_history``): every
command that wrote this journal, and the commands of the report a rerun took, so a
resumed rerun still tells the whole story.
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import json
import operator
import os
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self, TypeVar

import anyio.lowlevel
import structlog

from provisioner.errors import ConfigError, JournalBusyError
from provisioner.models import Outcome, Row, RunRecord, Status, TagMode, Target
from provisioner.run.identity import describe_target, row_digest, row_keys

__all__ = [
    "SCHEMA_VERSION",
    "Journal",
    "JournalEntry",
    "Phase",
    "connect",
    "hold_journal",
    "hold_journals",
    "journal_path_for",
    "open_held",
    "read_adopted",
    "read_entries",
    "read_history",
    "read_rolled_back",
    "read_set_aside",
    "read_split",
    "record_history",
    "record_set_aside",
    "record_split",
    "release_journal",
    "split_origin",
    "split_origins",
]

log = structlog.get_logger()

SCHEMA_VERSION = "2"
_J = TypeVar("_J")
#: The tables of report names a journal keeps (``_record_names``): SQL names, so
#: only these two, never a value from outside.
_NameTable = Literal["set_aside", "split_reports"]
#: Seconds a batched mark may wait for the next commit (see the module docstring).
MAX_WAIT = 0.2

_UPSERT = (
    "INSERT INTO rows (key, row, phase, device_id, outcome, digest, updated_at, "
    "started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET "
    "row = excluded.row, phase = excluded.phase, device_id = excluded.device_id, "
    "outcome = excluded.outcome, digest = COALESCE(excluded.digest, rows.digest), "
    "updated_at = excluded.updated_at, "
    "started_at = COALESCE(rows.started_at, excluded.started_at)"
)

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
CREATE TABLE IF NOT EXISTS rolled_back (device_id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS set_aside (
    name TEXT PRIMARY KEY,
    journal_created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS split_reports (
    name TEXT PRIMARY KEY,
    journal_created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    kind TEXT NOT NULL,
    started_at TEXT NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (kind, started_at)
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

    ``digest`` is what the row asked for when it was written (``row_digest``), and
    ``updated_at`` when (by the journal's clock: the API's), so the entries of two
    journals of a rollout tell which command ended the row last.
    """

    row: int
    phase: Phase
    device_id: str | None
    outcome: Outcome | None
    digest: str | None = None
    updated_at: datetime | None = None


#: One row's upsert: key, row, phase, device id, outcome, digest, updated, started.
_Mark = tuple[str, int, str, str | None, str | None, str | None, str, str | None]
#: What reading a row gives: key, row, phase, device id, outcome, digest, updated.
_Stored = tuple[str, int, str, str | None, str | None, str | None, str]
_STORED = "key, row, phase, device_id, outcome, digest, updated_at"


def _utc_now() -> datetime:
    return datetime.now(UTC)


def journal_path_for(report_path: Path) -> Path:
    """
    The journal's place: next to the (first) report, ``<stem>.journal.sqlite``.
    """
    return report_path.with_suffix(".journal.sqlite")


_OUTCOME_FIELDS = tuple(f.name for f in fields(Outcome))
_outcome_values = operator.attrgetter(*_OUTCOME_FIELDS)


def _outcome_to_json(outcome: Outcome, row: int) -> str:
    # A shallow dict: every field is a plain value, and asdict's deep copy was ~7% of
    # a large run's CPU; one attrgetter reads them all, and ``row`` is put in the
    # dict rather than by ``dataclasses.replace`` (a new Outcome per mark).
    data = dict(zip(_OUTCOME_FIELDS, _outcome_values(outcome), strict=True))
    data["row"] = row
    return json.dumps(data)


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
        ConfigError: the file cannot be created (a folder that cannot be written).
        sqlite3.DatabaseError: the file is not a database (the caller words it).
    """
    if path is None:
        connection = sqlite3.connect(":memory:", isolation_level=None)
    else:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Create the file 0600 before SQLite does: it will hold activation codes,
            # and SQLite gives the -wal and -shm files the database file's mode.
            os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
            os.chmod(path, 0o600)
        except OSError as error:
            raise _cannot_create(path, error) from error
        connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
    except BaseException:
        connection.close()
        raise
    return connection


#: Why a command that would write a busy journal stops, and what to do.
_SAME_REPORT = (
    "(the same report): two at once would start every row twice. Wait for it to "
    "finish, or give this command another --report"
)


def hold_journal(path: Path | None, *, reason: str = _SAME_REPORT) -> int | None:
    """
    Take a journal for this process alone: a lock on ``<journal>-lock`` beside it,
    held until ``release_journal`` (or the end of the process, however it ends).
    None for an in-memory journal.

    Two commands on one journal would each start the same rows: every activation
    code issued twice, every create raced. ``reason`` follows the journal's name in
    the refusal: which report it is, why two at once must not be, what to do.

    Raises:
        JournalBusyError: another process holds the journal.
        ConfigError: the lock cannot be created (a folder that cannot be written).
    """
    if path is None:
        return None
    lock = _lock_path(path)
    while True:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(lock, os.O_CREAT | os.O_RDWR, 0o600)
        except OSError as error:
            raise _cannot_create(path, error) from error
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            raise JournalBusyError(
                f"another provisioner command is working with the journal {path} "
                f"{reason}"
            ) from None
        # The holder before us removes the file as it lets go: a lock taken on
        # the file it removed guards nothing, so take the one now at the path.
        with contextlib.suppress(FileNotFoundError):
            if os.stat(lock).st_ino == os.fstat(descriptor).st_ino:
                return descriptor
        os.close(descriptor)


@contextlib.contextmanager
def hold_journals(paths: Iterable[Path], *, reason: str) -> Iterator[None]:
    """
    Hold the locks of the run journals at ``paths`` that exist, for the block.

    A command that works on the rows of a report other commands journal (a rerun
    of it, ``codes --renew``, a rollback's deletes) holds their journals too, so
    that the run of that report and this command never work on its rows at once:
    the one that comes second stops before any write. A journal not there has no
    run to exclude. Each journal is taken once (by where it really is); when one is
    busy, those already taken are let go and nothing is held.

    Raises:
        JournalBusyError: another command holds one of them (``reason`` says
            which report it is and what to do).
        ConfigError: a lock cannot be created.
    """
    unique = {path.resolve(): path for path in paths if path.is_file()}
    with contextlib.ExitStack() as stack:
        for path in unique.values():
            lock = hold_journal(path, reason=reason)
            stack.callback(release_journal, path, lock)
        yield


def open_held(
    path: Path | None,
    build: Callable[[sqlite3.Connection], _J],
    unreadable: Callable[[Path | None, sqlite3.DatabaseError], ConfigError],
    *,
    before: Callable[[], None] = lambda: None,
) -> tuple[_J, int | None]:
    """
    Take a journal's lock, then connect and ``build`` the journal on the connection
    (a run's or a rollback's); return it with its lock, which its ``close`` lets go.

    ``before`` runs once the lock is held, before the file is opened (``--fresh``
    removes an unreadable one). On any failure the connection is closed and the
    lock let go; a file SQLite cannot read is worded by ``unreadable``.

    Raises:
        ConfigError: the lock is held by another command, or the file cannot be
            read (``unreadable``), or whatever ``build`` raises.
    """
    lock = hold_journal(path)
    try:
        before()
        try:
            connection = connect(path)
        except sqlite3.DatabaseError as error:
            raise unreadable(path, error) from error
        try:
            return build(connection), lock
        except sqlite3.DatabaseError as error:
            connection.close()
            raise unreadable(path, error) from error
        except BaseException:
            connection.close()
            raise
    except BaseException:
        release_journal(path, lock)
        raise


def release_journal(path: Path | None, descriptor: int | None) -> None:
    """
    Let go of a journal ``hold_journal`` took, removing its lock file.
    """
    if path is None or descriptor is None:
        return
    with contextlib.suppress(FileNotFoundError):
        os.unlink(_lock_path(path))
    os.close(descriptor)


def _cannot_create(path: Path, error: OSError) -> ConfigError:
    return ConfigError(
        f"cannot create the journal {path}: {error.strerror or error}; check that its "
        "folder is writable, or choose another path with --report"
    )


def _lock_path(path: Path) -> Path:
    return path.with_name(f"{path.name}-lock")


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
        self,
        connection: sqlite3.Connection,
        path: Path | None,
        keys: Mapping[int, str],
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._db = connection
        self.path = path
        self._keys = dict(keys)
        self._numbers = {key: number for number, key in self._keys.items()}
        #: "Now" for every time the journal keeps: the API's clock (``server_now``),
        #: since those times are compared with the API's stamps on devices.
        self._clock = clock
        #: When the run this journal records began (its first opening), UTC.
        self.created_at = clock()
        #: Marks waiting for the next commit, in the order they were made.
        self._waiting: list[_Mark] = []
        self._waiting_since = 0.0
        #: The journal's lock (``hold_journal``), released by ``close``.
        self._lock: int | None = None
        #: A dry run's copy in memory (``snapshot``): ``path`` names the file it
        #: was read from, which ``discard`` must never remove.
        self._copied = False

    @classmethod
    def open(
        cls,
        path: Path | None,
        target: Target,
        rows: Sequence[Row] = (),
        *,
        fresh: bool = False,
        clock: Callable[[], datetime] | None = None,
    ) -> Self:
        """
        Open or create the journal at ``path`` for ``target``.

        With ``fresh``, an earlier journal's rows are forgotten; the devices of the
        activation codes it holds (for the same target) are kept in ``void``.

        Raises:
            ConfigError: the journal belongs to another target, was written by an
                older version, or is unreadable (each message says what to do).
        """

        def before() -> None:
            if path is not None and fresh:
                _remove_unreadable(path)

        journal, lock = open_held(
            path,
            lambda db: cls._claimed(db, path, row_keys(rows), clock, target, fresh),
            _unreadable,
            before=before,
        )
        journal._lock = lock
        return journal

    @classmethod
    def snapshot(
        cls,
        path: Path | None,
        target: Target,
        rows: Sequence[Row] = (),
        *,
        fresh: bool = False,
        clock: Callable[[], datetime] | None = None,
    ) -> Self:
        """
        A copy in memory of the journal at ``path``, for a dry run: what a run into
        the same report would continue from now.

        The file is read once, in one SQLite read transaction, and nothing is
        written to it (``_copy_journal``); its lock is not taken, so a dry run
        works beside a run that holds it (it sees the rows that run has committed
        so far) and never makes a command that starts meanwhile find the journal
        busy. No file is created when there is none. The copy is then judged as
        ``open`` judges the file (its target, its version; ``fresh`` forgets its
        rows), and writes go to memory only.

        Raises:
            ConfigError: as ``open``: the journal belongs to another target, was
                written by an older version, or is unreadable (without ``fresh``).
        """
        connection = sqlite3.connect(":memory:", isolation_level=None)
        try:
            _copy_journal(path, connection, fresh=fresh)
            journal = cls._claimed(
                connection, path, row_keys(rows), clock, target, fresh, rehearsal=True
            )
        except sqlite3.DatabaseError as error:
            connection.close()
            raise _unreadable(path, error) from error
        except BaseException:
            connection.close()
            raise
        # The real file's name, for the messages; the lock stays None, so closing
        # the copy lets go of nothing.
        journal._copied = True
        return journal

    @classmethod
    def _claimed(
        cls,
        connection: sqlite3.Connection,
        path: Path | None,
        keys: Mapping[int, str],
        clock: Callable[[], datetime] | None,
        target: Target,
        fresh: bool,
        *,
        rehearsal: bool = False,
    ) -> Self:
        journal = cls(connection, path, keys, clock or _utc_now)
        journal._claim(target, fresh=fresh, rehearsal=rehearsal)
        return journal

    @staticmethod
    def target_of(path: Path, *, current: bool = False) -> Target | None:
        """
        The target a journal file was written for (None: no readable journal there).

        With ``current``, only a run's journal of this version counts (not a
        rollback's, nor one an older version wrote): one ``open`` can continue.
        """
        found = dict(
            _read(path, "SELECT key, value FROM meta WHERE key IN ('target', 'schema')")
            or ()
        )
        if "target" not in found:
            return None
        if current and found.get("schema") != SCHEMA_VERSION:
            return None
        identity = json.loads(found["target"])
        return Target(
            base_url=identity["base_url"],
            org_id=identity["org_id"] or None,
            tag_mode=TagMode(identity["tag_mode"]),
        )

    def _claim(self, target: Target, *, fresh: bool, rehearsal: bool = False) -> None:
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
                    _another_target(self.path, recorded, wanted, rehearsal=rehearsal)
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
                        ("created_at", self._clock().isoformat()),
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
        Commit the marks still waiting and close the connection.
        """
        try:
            self.commit()
        finally:
            self._db.close()
            release_journal(self.path, self._lock)
            self._lock = None

    def discard(self) -> None:
        """
        Close the journal and remove its file: what it kept is now kept elsewhere.

        ``codes --renew`` calls it once its report, which holds every new code, is
        written; the file goes before the lock is let go, so no other command
        takes it up half removed.
        """
        try:
            self.commit()
        finally:
            self._db.close()
            try:
                if self.path is not None and not self._copied:
                    for companion in ("-wal", "-shm", "-journal", ""):
                        Path(f"{self.path}{companion}").unlink(missing_ok=True)
            finally:
                release_journal(self.path, self._lock)
                self._lock = None

    def commit(self) -> None:
        """
        Commit the marks waiting for the next commit, if any.
        """
        if self._waiting:
            # One transaction for the whole batch. The connection is in autocommit
            # mode (isolation_level=None), where ``with connection:`` begins none:
            # executemany then committed every mark on its own, a WAL commit each.
            self._db.execute("BEGIN")
            try:
                self._db.executemany(_UPSERT, self._waiting)
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
            self._waiting.clear()

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

    def _entries(self, found: Iterable[_Stored]) -> dict[int, JournalEntry]:
        entries = {}
        for key, stored, phase, device_id, outcome, digest, updated_at in found:
            number = self._number(key, stored)
            if number is None:
                continue
            entries[number] = JournalEntry(
                number,
                Phase(phase),
                device_id,
                _outcome_from_json(outcome, number) if outcome else None,
                digest,
                datetime.fromisoformat(updated_at),
            )
        return entries

    def entries(self) -> dict[int, JournalEntry]:
        """
        Every recorded row of the current rows, by row number.
        """
        self.commit()
        return self._entries(self._db.execute(f"SELECT {_STORED} FROM rows"))

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
        self.commit()
        marks = ", ".join("?" * len(keys))
        return self._entries(
            self._db.execute(
                f"SELECT {_STORED} FROM rows WHERE key IN ({marks})",
                keys,
            )
        )

    def claimed_devices(self) -> frozenset[str]:
        """
        Every device a journalled row names (this run's), and every device to void.
        """
        self.commit()
        found = self._db.execute(
            "SELECT device_id FROM rows WHERE device_id IS NOT NULL "
            "UNION SELECT device_id FROM void"
        )
        return frozenset(device_id for (device_id,) in found)

    def started_at(self, row: int) -> datetime | None:
        """
        When the row was first started (across resumes), or None if it never was.
        """
        self.commit()
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
        self.commit()
        found = self._db.execute(
            "SELECT device_id FROM void WHERE key = ?", (self._key(row),)
        ).fetchone()
        return None if found is None else str(found[0])

    def voids_left(self) -> int:
        """
        How many replaced codes still wait to be voided.
        """
        self.commit()
        return int(self._db.execute("SELECT COUNT(*) FROM void").fetchone()[0])

    # -- writing --------------------------------------------------------------------

    def mark_started(self, row: int) -> None:
        """
        Record that a row's write call is about to be sent (its first start is kept).

        Committed before this returns, with the marks waiting.
        """
        self._write(row, Phase.STARTED, None, None, at_once=True)

    async def start(self, row: int) -> None:
        """
        ``mark_started``, sharing one commit with the rows that start at the same
        moment: committed before this returns.

        The start waits one turn of the event loop, in which the other rows that
        became ready start too; the first of them to resume commits them all.
        """
        self._write(row, Phase.STARTED, None, None)
        await anyio.lowlevel.checkpoint()
        self.commit()

    def mark_created(self, outcome: Outcome) -> None:
        """
        Record that a row's device or code exists (``outcome`` is the partial result).

        Committed at once when it holds an activation code; otherwise it waits for
        the next commit.
        """
        self._write(
            outcome.row,
            Phase.CREATED,
            outcome.device_id,
            outcome,
            at_once=outcome.activation_code is not None,
        )

    def mark_done(self, outcome: Outcome, digest: str | None = None) -> None:
        """
        Record a row's final outcome, and (``digest``) what the row asked for; it
        waits for the next commit.
        """
        self._write(outcome.row, Phase.DONE, outcome.device_id, outcome, digest)

    def add_void(self, device_id: str, row: int) -> None:
        """
        Record that this row's next code replaces (voids) the code of ``device_id``.
        """
        self.commit()
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO void (device_id, key) VALUES (?, ?)",
                (device_id, self._key(row)),
            )

    def forget_devices(self, device_ids: Iterable[str]) -> int:
        """
        Forget every row that names one of these devices, and any void record of
        them: a rollback deleted them (or found them gone), so the same run command
        does those rows again. The forgotten rows' devices are kept as rolled back
        (``read_rolled_back``). Returns how many rows were forgotten.

        One transaction; the rows are matched in Python (``device_id`` has no index,
        and a rollback can name every device of a large run).
        """
        wanted = frozenset(device_ids)
        self.commit()
        if not wanted:
            return 0
        forgotten = [
            (key, device_id)
            for key, device_id in self._db.execute(
                "SELECT key, device_id FROM rows WHERE device_id IS NOT NULL"
            )
            if device_id in wanted
        ]
        keys = [(key,) for key, _ in forgotten]
        voids = [
            (device_id,)
            for (device_id,) in self._db.execute("SELECT device_id FROM void")
            if device_id in wanted
        ]
        if not keys and not voids:
            return 0
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany("DELETE FROM rows WHERE key = ?", keys)
            self._db.executemany("DELETE FROM void WHERE device_id = ?", voids)
            self._db.executemany(
                "INSERT OR IGNORE INTO rolled_back (device_id) VALUES (?)",
                [(device_id,) for _, device_id in forgotten],
            )
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        log.info("journal_devices_forgotten", rows=len(keys), voids=len(voids))
        return len(keys)

    def forget_void(self, device_id: str) -> None:
        """
        Record that a replaced code's device was voided (or needs no voiding).
        """
        self.commit()
        with self._db:
            self._db.execute("DELETE FROM void WHERE device_id = ?", (device_id,))

    def _write(
        self,
        row: int,
        phase: Phase,
        device_id: str | None,
        outcome: Outcome | None,
        digest: str | None = None,
        *,
        at_once: bool = False,
    ) -> None:
        moment = self._clock()
        now = moment.isoformat()
        seconds = moment.timestamp()
        text = _outcome_to_json(outcome, row) if outcome is not None else None
        # Only a start sets started_at, and only the first one: the earliest start
        # bounds when a lost activation code's device can have been made.
        started = now if phase is Phase.STARTED else None
        if not self._waiting:
            self._waiting_since = seconds
        self._waiting.append(
            (self._key(row), row, phase.value, device_id, text, digest, now, started)
        )
        if at_once or seconds - self._waiting_since >= MAX_WAIT:
            self.commit()


def _another_target(
    path: Path | None,
    recorded: Mapping[str, str],
    wanted: Mapping[str, str],
    *,
    rehearsal: bool,
) -> str:
    """
    Say why the journal at ``path`` cannot be continued by a run against ``wanted``,
    and what does: the tag mode it was written with, a start over, another report.

    A dry run (``rehearsal``) plans the run into the default report whatever its
    own ``--report`` (that names the rehearsal), so another path is no way out.
    """
    same_place = all(
        recorded.get(key) == wanted.get(key) for key in ("base_url", "org_id")
    )
    if same_place and recorded.get("tag_mode") != wanted.get("tag_mode"):
        told = recorded.get("tag_mode", "")
        place = describe_target(recorded).rsplit(" (tag mode", 1)[0]
        why = (
            f"the journal {path} belongs to a run against {place} that tags with "
            f"--tag-mode {told}, not {wanted.get('tag_mode', '')}: a run is never "
            f"continued with another tag mode. Give --tag-mode {told} to continue it,"
        )
    else:
        why = (
            f"the journal {path} belongs to a run against "
            f"{describe_target(recorded)}, not {describe_target(wanted)}: a run is "
            "never continued against another target. For this target,"
        )
    if rehearsal:
        return f"{why} rehearse a start over here with --fresh"
    return f"{why} choose another --report path, or start over here with --fresh"


def _copy_journal(path: Path | None, into: sqlite3.Connection, *, fresh: bool) -> None:
    """
    Copy the journal file at ``path`` (if there is one) into ``into``, reading only.

    Read-write, though it only reads, as ``_read`` does: a read-only connection to a
    WAL journal leaves -wal and -shm files behind (and, as any last reader's close,
    this one may fold into the file the WAL a killed run left: what it holds stays
    the same). SQLite's own read lock keeps the copy whole while a run writes; it
    blocks neither that run nor this copy. With ``fresh`` an unreadable file is left
    out, as ``--fresh`` removes it.

    Raises:
        sqlite3.DatabaseError: the file is not a database (without ``fresh``).
    """
    if path is None or not path.is_file():
        return
    try:
        with contextlib.closing(sqlite3.connect(path)) as source:
            source.backup(into)
    except sqlite3.DatabaseError:
        if not fresh:
            raise


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


def record_history(path: Path, records: Iterable[RunRecord]) -> None:
    """
    Add run records to the journal at ``path`` (a record it holds already is kept).

    Raises:
        ConfigError: the journal cannot be written.
    """
    try:
        connection = sqlite3.connect(path, isolation_level=None)
    except sqlite3.Error as error:
        raise ConfigError(f"the journal {path} cannot be opened ({error})") from error
    try:
        connection.executescript(_SCHEMA)
        with connection:
            connection.executemany(
                "INSERT OR IGNORE INTO runs (kind, started_at, record) VALUES (?, ?, ?)",
                [(*record.key, record.to_json()) for record in records],
            )
    except sqlite3.Error as error:
        raise ConfigError(f"the journal {path} cannot be written ({error})") from error
    finally:
        connection.close()


def read_history(path: Path) -> tuple[RunRecord, ...]:
    """
    The run records of the journal at ``path``, oldest first; none when there is no
    journal (or it is not readable: the history is for people, never a reason to stop).
    """
    found = _read(path, "SELECT record FROM runs")
    if found is None:
        return ()
    records = []
    for (text,) in found:
        try:
            records.append(RunRecord.from_json(text))
        except ValueError:
            continue
    return tuple(sorted(records, key=lambda record: record.started_at))


def read_entries(
    path: Path, rows: Sequence[Row], *, target: Target | None = None
) -> dict[int, JournalEntry]:
    """
    What the run journal at ``path`` recorded for ``rows``, by row number, read
    without taking the journal: a rollback reads what the run did even while another
    command holds it (and a run, what a rerun of its report did since). Empty when
    there is no readable journal of this version there, or (given ``target``) when it
    was written for another API or tag mode. Written from another org (a partner's
    org report rerun with that org's own token), it speaks for the rows that name
    their ``orgId`` alone: those went to the org they name whichever token's org the
    command acted from, the others to that token's org.
    """
    written_for = Journal.target_of(path, current=True)
    if written_for is None:
        return {}
    if target is not None and not written_for.same_as(target):
        theirs, ours = written_for.identity(), target.identity()
        if (theirs["base_url"], theirs["tag_mode"]) != (
            ours["base_url"],
            ours["tag_mode"],
        ):
            return {}
        return _from_another_org(path, [row for row in rows if row.org_id], written_for)
    try:
        with contextlib.closing(sqlite3.connect(path)) as connection:
            return Journal(connection, path, row_keys(rows)).entries()
    except sqlite3.Error:
        return {}


def _from_another_org(
    path: Path, rows: Sequence[Row], written_for: Target
) -> dict[int, JournalEntry]:
    """
    What a journal written from another org's token recorded for ``rows`` (each
    naming its org), as this command would have recorded it: that command took the
    rows naming its own org for rows naming none (``own_org_as_default``), so they
    are looked up that way, and their digests put back in this command's terms.
    """
    own = written_for.org_id
    theirs = {
        row.number: replace(row, org_id=None) if own and row.org_id == own else row
        for row in rows
    }
    try:
        with contextlib.closing(sqlite3.connect(path)) as connection:
            found = Journal(connection, path, row_keys(theirs.values())).entries()
    except sqlite3.Error:
        return {}
    ours = {row.number: row for row in rows}
    for number, entry in found.items():
        row = theirs[number]
        if row is not ours[number] and entry.digest == row_digest(row):
            found[number] = replace(entry, digest=row_digest(ours[number]))
    return found


def read_adopted(path: Path) -> frozenset[str]:
    """
    The devices the run journal at ``path`` records as adopted: registered before the
    run, so never the rollout's, whatever a report's status cell says. None when
    there is no readable journal of this version there.
    """
    if Journal.target_of(path, current=True) is None:
        return frozenset()
    found = _read(
        path,
        "SELECT device_id, outcome FROM rows "
        "WHERE device_id IS NOT NULL AND outcome IS NOT NULL",
    )
    return frozenset(
        device_id
        for device_id, outcome in found or ()
        if json.loads(outcome).get("status") == Status.ADOPTED.value
    )


def read_rolled_back(path: Path) -> frozenset[str]:
    """
    The devices of the rows a rollback made the journal at ``path`` forget (it
    deleted them or found them gone); none when there is no readable journal there,
    or one from before this record was kept.
    """
    found = _read(path, "SELECT device_id FROM rolled_back")
    return frozenset(device_id for (device_id,) in found or ())


def record_set_aside(path: Path, names: Iterable[str]) -> None:
    """
    Record that the reports ``names`` (files beside the journal at ``path``) were
    moved aside by a run that continued this journal: its rows are the ones those
    reports were written from, until it starts over (``read_set_aside``). Nothing
    when there is no journal at ``path``.

    Raises:
        ConfigError: the journal cannot be written.
    """
    _record_names(path, "set_aside", names)


def read_set_aside(path: Path) -> frozenset[str]:
    """
    The names of the reports a run continuing the journal at ``path`` moved aside
    since the journal last started over (``--fresh`` renews its ``created_at``): the
    journal's rows are still the ones those reports were written from. None when
    there is no readable journal there, or one from before this record was kept.
    """
    return _read_names(path, "set_aside")


def record_split(path: Path, names: Iterable[str]) -> None:
    """
    Record that the run writing the journal at ``path`` wrote the per-org reports
    ``names`` (``--split-by-org``, files beside it) from its rows, which stay the
    ones those reports were written from until the journal starts over
    (``read_split``). Nothing when there is no journal at ``path``.

    Raises:
        ConfigError: the journal cannot be written.
    """
    _record_names(path, "split_reports", names)


def read_split(path: Path) -> frozenset[str]:
    """
    The names of the per-org reports written from the rows of the journal at
    ``path`` since it last started over (``record_split``). None when there is no
    readable journal there, or one from before this record was kept.
    """
    return _read_names(path, "split_reports")


def split_origins(report: Path) -> tuple[Path, ...]:
    """
    The reports REPORT's name says it may be one org's part of, by name alone: a
    partner run's per-org report is ``<report>-org-<org>`` beside the combined
    ``<report>`` (``report.orgs.org_report_paths``). Each ``-org-`` in the name
    gives one (an org's name or the report's may hold one too), nearest first; the
    combined report's journal says which is (``split_origin``).
    """
    stem = report.stem
    starts = [match.start() for match in re.finditer("-org-", stem)]
    return tuple(
        report.with_name(stem[:start] + report.suffix)
        for start in reversed(starts)
        if start > 0
    )


def split_origin(report: Path) -> Path | None:
    """
    The combined report of a partner run whose journal records REPORT as one of
    the per-org reports it wrote (``record_split``), still holding the rows REPORT
    was written from; None when REPORT is no such report, or that journal is gone
    or has started over since.
    """
    for origin in split_origins(report):
        if report.name in read_split(journal_path_for(origin)):
            return origin
    return None


def _record_names(path: Path, table: _NameTable, names: Iterable[str]) -> None:
    """
    Add report names to ``table`` of the journal at ``path``, stamped with its
    ``created_at`` (a start over renews it, and the names no longer count).

    Raises:
        ConfigError: the journal cannot be written.
    """
    if not path.is_file():
        return
    try:
        with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
            db.executescript(_SCHEMA)
            db.executemany(
                f"INSERT OR REPLACE INTO {table} (name, journal_created_at) "
                "SELECT ?, value FROM meta WHERE key = 'created_at'",
                [(name,) for name in names],
            )
    except sqlite3.Error as error:
        raise ConfigError(f"the journal {path} cannot be written ({error})") from error


def _read_names(path: Path, table: _NameTable) -> frozenset[str]:
    """
    The names in ``table`` of the journal at ``path`` stamped with its current
    ``created_at``.
    """
    found = _read(
        path,
        f"SELECT {table}.name FROM {table} JOIN meta "
        f"ON meta.key = 'created_at' AND meta.value = {table}.journal_created_at",
    )
    return frozenset(name for (name,) in found or ())


def _read(path: Path, query: str) -> list[Any] | None:
    """
    The rows ``query`` finds in the journal at ``path``; None when there is no
    readable journal there.
    """
    if not path.is_file():
        return None
    try:
        # Read-write, though it only reads: a read-only connection to a WAL journal
        # leaves -wal and -shm files behind, which the last writer's close removes.
        with contextlib.closing(sqlite3.connect(path)) as connection:
            return connection.execute(query).fetchall()
    except sqlite3.Error:
        return None
