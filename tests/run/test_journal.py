"""
The journal: durable per-row phases, a manifest fingerprint, a private file.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import stat
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import pytest

from provisioner.errors import ConfigError
from provisioner.models import Manifest, Outcome, Row, RunKind, RunRecord, Status
from provisioner.run.journal import (
    Journal,
    Phase,
    _outcome_to_json,
    journal_path_for,
    manifest_fingerprint,
    read_history,
    record_history,
)


def manifest(
    *macs: str, path: Path = Path("m.csv"), password: str | None = None
) -> Manifest:
    rows = tuple(
        Row(
            number=n,
            cells=(mac,),
            mac=mac,
            model="DMS Cisco 8851",
            workspace_id="ws-1",
            password=password,
        )
        for n, mac in enumerate(macs, start=2)
    )
    return Manifest(
        path=path, sheet=None, columns=("mac",), field_columns={}, rows=rows
    )


class TestFingerprint:
    def test_same_rows_same_fingerprint(self) -> None:
        """Two loads of the same manifest share a fingerprint."""

        assert manifest_fingerprint(manifest("AA")) == manifest_fingerprint(
            manifest("AA")
        )

    def test_changed_row_or_path_changes_it(self) -> None:
        """A changed cell, or another file, gives another fingerprint."""
        base = manifest_fingerprint(manifest("AA"))

        assert base != manifest_fingerprint(manifest("AB"))
        assert base != manifest_fingerprint(manifest("AA", path=Path("other.csv")))

    def test_passwords_do_not_enter_the_hash(self) -> None:
        """Only whether a password is present counts, never its text."""

        one = manifest_fingerprint(manifest("AA", password="hunter2"))
        two = manifest_fingerprint(manifest("AA", password="letmein"))

        assert one == two


class TestJournal:
    def test_phases_survive_reopening(self, tmp_path: Path) -> None:
        """started, created and done are read back after the file is reopened."""
        path = tmp_path / "r.journal.sqlite"
        done = Outcome(
            row=3,
            status=Status.CODE_ISSUED,
            activation_code="1234567812345678",
            activation_expiry="2099-01-01T00:00:00Z",
            tags_deferred=True,
            attempts=2,
        )
        with Journal.open(path, "fp") as journal:
            journal.mark_started(2)
            journal.mark_started(3)
            journal.mark_created(
                Outcome(row=3, status=Status.CODE_ISSUED, device_id="d3")
            )
            journal.mark_done(done)
            journal.mark_started(4)
            journal.mark_created(Outcome(row=4, status=Status.CREATED, device_id="d4"))

        with Journal.open(path, "fp") as journal:
            entries = journal.entries()
            finished = dict(journal.done_outcomes())

        assert entries[2].phase == Phase.STARTED
        assert (Phase.DONE, done) == (entries[3].phase, entries[3].outcome)
        assert (entries[4].phase, entries[4].device_id) == (Phase.CREATED, "d4")
        assert finished == {3: done}

    def test_another_manifest_is_refused(self, tmp_path: Path) -> None:
        """A journal opened with another fingerprint raises ConfigError naming --fresh."""
        path = tmp_path / "r.journal.sqlite"
        Journal.open(path, "one").close()

        with pytest.raises(ConfigError, match="--fresh"):
            Journal.open(path, "two")

    def test_unreadable_file_is_a_config_error(self, tmp_path: Path) -> None:
        """A file that is not SQLite gives a clear ConfigError, not a traceback."""
        path = tmp_path / "r.journal.sqlite"
        path.write_bytes(b"this is not a database, just text" * 100)

        with pytest.raises(ConfigError, match="cannot be read"):
            Journal.open(path, "fp")

    def test_files_are_private(self, tmp_path: Path) -> None:
        """The journal and its WAL are mode 0600: they hold activation codes."""
        path = tmp_path / "r.journal.sqlite"
        with Journal.open(path, "fp") as journal:
            journal.mark_done(
                Outcome(row=2, status=Status.CODE_ISSUED, activation_code="1")
            )
            modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}

        assert {0o600} == set(modes.values())
        assert path.name + "-wal" in modes

    def test_in_memory_journal_works_without_a_file(self, tmp_path: Path) -> None:
        """path=None keeps the journal in memory and writes no file."""
        with Journal.open(None, "fp") as journal:
            journal.mark_started(2)

            assert journal.entries()[2].phase == Phase.STARTED
        assert list(tmp_path.iterdir()) == []

    def test_path_sits_next_to_the_report(self) -> None:
        """The journal of reports/x-report.xlsx is reports/x-report.journal.sqlite."""

        assert Path("reports/x-report.journal.sqlite") == journal_path_for(
            Path("reports/x-report.xlsx")
        )


class TestStartedAt:
    def test_first_start_is_kept_across_resumes(self, tmp_path: Path) -> None:
        """A second start, a create or a done never move a row's first start time."""
        path = tmp_path / "r.journal.sqlite"
        with Journal.open(path, "fp") as journal:
            journal.mark_started(2)
            first = journal.started_at(2)
            journal.mark_created(Outcome(row=2, status=Status.CODE_ISSUED))
        with Journal.open(path, "fp") as journal:
            journal.mark_started(2)
            journal.mark_done(Outcome(row=2, status=Status.CODE_ISSUED))

            assert first is not None
            assert journal.started_at(2) == first
            assert journal.started_at(3) is None

    def test_older_journal_gains_the_column(self, tmp_path: Path) -> None:
        """A journal without started_at is upgraded; a started row's updated_at is its start."""
        path = tmp_path / "r.journal.sqlite"
        Journal.open(path, "fp").close()
        with contextlib.closing(sqlite3.connect(path)) as db, db:
            db.execute("DROP TABLE rows")
            db.execute(
                "CREATE TABLE rows (row INTEGER PRIMARY KEY, phase TEXT NOT NULL, "
                "device_id TEXT, outcome TEXT, updated_at TEXT NOT NULL)"
            )
            db.execute(
                "INSERT INTO rows VALUES (2, 'started', NULL, NULL, "
                "'2026-11-26T01:00:00+00:00')"
            )

        with Journal.open(path, "fp") as journal:
            started = journal.started_at(2)

        assert started == datetime(2026, 11, 26, 1, tzinfo=UTC)

    def test_entries_for_reads_only_the_rows_asked(self, tmp_path: Path) -> None:
        """entries_for returns the named rows that the journal holds, nothing else."""
        with Journal.open(None, "fp") as journal:
            for number in (2, 3, 4):
                journal.mark_created(
                    Outcome(
                        row=number, status=Status.CODE_ISSUED, device_id=f"d{number}"
                    )
                )

            found = journal.entries_for([2, 4, 9])
            nothing = journal.entries_for([])

        assert {n: e.device_id for n, e in found.items()} == {2: "d2", 4: "d4"}
        assert nothing == {}


def record(kind: RunKind, hour: int) -> RunRecord:
    return RunRecord(
        kind=kind,
        started_at=datetime(2026, 11, 26, hour, tzinfo=UTC),
        finished_at=datetime(2026, 11, 26, hour, 5, tzinfo=UTC),
        source="m.csv",
        counts={Status.CREATED: hour},
    )


class TestHistory:
    def test_records_survive_and_are_kept_once(self, tmp_path: Path) -> None:
        """A run's records are kept beside its rows, each command once, oldest
        first, whoever writes them again."""

        path = tmp_path / "r.journal.sqlite"
        with Journal.open(path, "f") as journal:
            journal.mark_started(2)
        first, resume = record(RunKind.RUN, 9), record(RunKind.RESUME, 11)

        record_history(path, [resume, first])
        record_history(path, [first])

        assert read_history(path) == (first, resume)
        with Journal.open(path, "f") as journal:
            assert set(journal.entries()) == {2}

    def test_no_journal_no_history(self, tmp_path: Path) -> None:
        """A report without a journal beside it has no history there."""

        assert read_history(tmp_path / "none.journal.sqlite") == ()

    def test_older_journal_without_runs_table(self, tmp_path: Path) -> None:
        """A journal from before the history reads as none, and takes records."""

        path = tmp_path / "old.journal.sqlite"
        with contextlib.closing(sqlite3.connect(path)) as db:
            db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
            db.commit()

        assert read_history(path) == ()
        record_history(path, [record(RunKind.RUN, 9)])
        assert read_history(path) == (record(RunKind.RUN, 9),)


class TestOutcomeJson:
    def test_same_text_as_a_deep_copy(self) -> None:
        """The shallow dict writes exactly what dataclasses.asdict wrote before."""
        outcome = Outcome(
            row=7,
            status=Status.FAILED,
            device_id="d7",
            activation_code="1234123412341234",
            activation_expiry="2099-01-01T00:00:00Z",
            error="apply tags: boom",
            http_status=502,
            tracking_id="T",
            attempts=3,
            tags_deferred=True,
        )

        assert _outcome_to_json(outcome) == json.dumps(asdict(outcome))
