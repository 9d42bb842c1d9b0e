"""
The journal: durable per-row phases, a manifest fingerprint, a private file.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from provisioner.errors import ConfigError
from provisioner.journal import Journal, Phase, journal_path_for, manifest_fingerprint
from provisioner.models import Manifest, Outcome, Row, Status


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
