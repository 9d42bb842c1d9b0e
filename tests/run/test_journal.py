"""
The journal: durable per-row phases under each row's identity, bound to its target,
a private file.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import stat
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from provisioner.errors import ConfigError, JournalBusyError
from provisioner.inventory.rollback_journal import RollbackJournal
from provisioner.models import (
    Manifest,
    Outcome,
    Row,
    RunKind,
    RunRecord,
    Status,
    TagMode,
    Target,
)
from provisioner.run.identity import row_digest, row_keys
from provisioner.run.journal import (
    Journal,
    Phase,
    _outcome_to_json,
    hold_journals,
    journal_path_for,
    read_adopted,
    read_entries,
    read_history,
    read_rolled_back,
    read_set_aside,
    read_split,
    record_history,
    record_set_aside,
    record_split,
    split_origin,
    split_origins,
)

TARGET = Target(base_url="https://webexapis.com/v1", org_id="ORG-A")


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


def code(number: int, owner: str = "ws-1", model: str = "DMS Cisco 8865") -> Row:
    return Row(number=number, cells=("",), model=model, workspace_id=owner)


class TestRowIdentity:
    def test_a_mac_row_is_its_mac(self) -> None:
        """A MAC row keeps its key wherever it sits in the manifest."""
        rows = manifest("AA", "BB").rows
        moved = [Row(number=9, cells=(), mac="AA", model="m", workspace_id="w")]

        assert row_keys(rows)[2] == row_keys(moved)[9] == "mac:AA"

    def test_code_rows_of_one_owner_and_model_are_numbered(self) -> None:
        """Code rows are their org, owner and model, told apart by their order."""

        keys = row_keys([code(2), code(5), code(6, owner="ws-2"), code(8)])

        assert [keys[n].rsplit("#", 1)[1] for n in (2, 5, 6, 8)] == ["1", "2", "1", "3"]
        assert keys[2].rsplit("#", 1)[0] == keys[5].rsplit("#", 1)[0]

    def test_invalid_rows_have_no_key(self) -> None:
        """An invalid row is never journalled, so it is not named."""
        from provisioner.models import Problem

        bad = Row(number=2, cells=("x",), problems=(Problem("mac", "x", "bad"),))

        assert row_keys([bad]) == {}

    def test_digest_follows_what_the_row_asks_for(self) -> None:
        """Owner, model and tags change the digest; tag order and the password's
        text do not (only whether there is one)."""
        base = manifest("AA").rows[0]

        assert row_digest(base) != row_digest(
            Row(number=2, cells=(), mac="AA", model="other", workspace_id="ws-1")
        )
        assert row_digest(
            Row(number=2, cells=(), mac="AA", tags=("a", "b"))
        ) == row_digest(Row(number=7, cells=(), mac="AA", tags=("b", "a")))
        assert row_digest(manifest("AA", password="x").rows[0]) == row_digest(
            manifest("AA", password="y").rows[0]
        )


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
        with Journal.open(path, TARGET) as journal:
            journal.mark_started(2)
            journal.mark_started(3)
            journal.mark_created(
                Outcome(row=3, status=Status.CODE_ISSUED, device_id="d3")
            )
            journal.mark_done(done)
            journal.mark_started(4)
            journal.mark_created(Outcome(row=4, status=Status.CREATED, device_id="d4"))

        with Journal.open(path, TARGET) as journal:
            entries = journal.entries()
            finished = dict(journal.done_outcomes())

        assert entries[2].phase == Phase.STARTED
        assert (Phase.DONE, done) == (entries[3].phase, entries[3].outcome)
        assert (entries[4].phase, entries[4].device_id) == (Phase.CREATED, "d4")
        assert finished == {3: done}

    def test_another_target_is_refused(self, tmp_path: Path) -> None:
        """A journal opened for another org raises ConfigError naming both orgs,
        another --report and --fresh."""
        path = tmp_path / "r.journal.sqlite"
        Journal.open(path, TARGET).close()
        other = Target(base_url=TARGET.base_url, org_id="ORG-B")

        with pytest.raises(ConfigError) as refused:
            Journal.open(path, other)

        text = str(refused.value)
        assert all(word in text for word in ("ORG-A", "ORG-B", "--report", "--fresh"))

    def test_the_target_is_read_back(self, tmp_path: Path) -> None:
        """target_of names the API, org and tag mode a journal file was written for."""
        path = tmp_path / "r.journal.sqlite"
        target = Target(
            base_url="https://webexapis.com/v1",
            org_id="ORG-A",
            org_name="Acme",
            tag_mode=TagMode.REPLACE,
        )
        Journal.open(path, target).close()

        found = Journal.target_of(path)

        assert found is not None
        assert found.same_as(target)
        assert Journal.target_of(tmp_path / "none.sqlite") is None
        # Reading it leaves no -wal or -shm file beside it (a rerun reads the
        # journal of the report it takes up; the reports folder stays tidy).
        assert sorted(p.name for p in tmp_path.iterdir()) == ["r.journal.sqlite"]

    def test_rows_are_found_under_their_new_numbers(self, tmp_path: Path) -> None:
        """A row journalled as row 2 is found as row 5 once the manifest moved it."""
        path = tmp_path / "r.journal.sqlite"
        with Journal.open(path, TARGET, manifest("AA", "BB").rows) as journal:
            journal.mark_done(Outcome(row=3, status=Status.CREATED, device_id="d"))
        moved = manifest("CC", "DD", "EE", "BB").rows

        with Journal.open(path, TARGET, moved) as journal:
            found = journal.entries()

        assert list(found) == [5]
        assert (found[5].outcome or Outcome(row=0, status=Status.FAILED)).row == 5

    def test_fresh_keeps_the_codes_to_void(self, tmp_path: Path) -> None:
        """--fresh forgets the rows but records each issued code's device, under its
        row, for voiding; a done row without a code leaves nothing to void."""
        path = tmp_path / "r.journal.sqlite"
        rows = [code(2), code(3)]
        with Journal.open(path, TARGET, rows) as journal:
            journal.mark_done(
                Outcome(
                    row=2,
                    status=Status.CODE_ISSUED,
                    device_id="d2",
                    activation_code="1",
                )
            )
            journal.mark_done(Outcome(row=3, status=Status.FAILED))

        with Journal.open(path, TARGET, rows, fresh=True) as journal:
            left = (journal.entries(), journal.void_for(2), journal.void_for(3))
            journal.forget_void("d2")
            after = journal.voids_left()

        assert left == ({}, "d2", None)
        assert after == 0

    def test_forget_devices_forgets_only_the_rows_naming_them(
        self, tmp_path: Path
    ) -> None:
        """A rollback deleted d2 (a MAC row's device) and d4 (a code's pending
        device): their rows (and a void record of d4) are forgotten, for good; the
        row whose device stays (d3), and a row without one, stay as they were."""
        path = tmp_path / "r.journal.sqlite"
        rows = [*manifest("AA", "BB").rows, code(4), code(5, owner="ws-2")]
        with Journal.open(path, TARGET, rows) as journal:
            journal.mark_done(Outcome(row=2, status=Status.CREATED, device_id="d2"))
            journal.mark_done(Outcome(row=3, status=Status.ADOPTED, device_id="d3"))
            journal.mark_created(
                Outcome(
                    row=4,
                    status=Status.CODE_ISSUED,
                    device_id="d4",
                    activation_code="1",
                )
            )
            journal.mark_started(5)
            journal.add_void("d4", 4)

        with Journal.open(path, TARGET) as journal:
            forgotten = journal.forget_devices(["d2", "d4", "d9"])
            again = journal.forget_devices(["d2", "d4"])
            nothing = journal.forget_devices([])
        with Journal.open(path, TARGET, rows) as journal:
            entries = journal.entries()
            voids = journal.voids_left()

        assert (forgotten, again, nothing) == (2, 0, 0)
        assert sorted(entries) == [3, 5]
        assert entries[3].device_id == "d3"
        assert entries[5].phase is Phase.STARTED
        assert voids == 0

    def test_forgotten_rows_devices_are_kept_as_rolled_back(
        self, tmp_path: Path
    ) -> None:
        """The devices of the rows a rollback made the journal forget are read back
        as rolled back (the next run's replaced report says so), --fresh or not; a
        device no row named is not, and a journal without the record has none."""
        path = tmp_path / "r.journal.sqlite"
        rows = [*manifest("AA", "BB").rows, code(4)]
        with Journal.open(path, TARGET, rows) as journal:
            journal.mark_done(Outcome(row=2, status=Status.CREATED, device_id="d2"))
            journal.mark_done(Outcome(row=3, status=Status.CREATED, device_id="d3"))
            journal.mark_done(
                Outcome(
                    row=4,
                    status=Status.CODE_ISSUED,
                    device_id="d4",
                    activation_code="1",
                )
            )
            before = read_rolled_back(path)
            journal.forget_devices(["d2", "d4", "d9"])
        with Journal.open(path, TARGET, rows, fresh=True):
            pass
        older = tmp_path / "older.journal.sqlite"
        with contextlib.closing(sqlite3.connect(older)) as db:
            db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")

        assert before == frozenset()
        assert read_rolled_back(path) == {"d2", "d4"}
        assert read_rolled_back(older) == frozenset()
        assert read_rolled_back(tmp_path / "none.journal.sqlite") == frozenset()

    def test_read_adopted_names_the_devices_the_run_found_there(
        self, tmp_path: Path
    ) -> None:
        """The devices of rows recorded adopted, done or caught after the look-up;
        not those the run created, nor any of a journal of another schema."""
        path = tmp_path / "r.journal.sqlite"
        rows = manifest("AA", "BB", "CC").rows
        with Journal.open(path, TARGET, rows) as journal:
            journal.mark_done(Outcome(row=2, status=Status.ADOPTED, device_id="d2"))
            journal.mark_created(Outcome(row=3, status=Status.ADOPTED, device_id="d3"))
            journal.mark_done(Outcome(row=4, status=Status.CREATED, device_id="d4"))
        rollback = tmp_path / "r-rollback.journal.sqlite"
        RollbackJournal.open(rollback, TARGET).close()

        assert read_adopted(path) == {"d2", "d3"}
        assert read_adopted(rollback) == frozenset()
        assert read_adopted(tmp_path / "none.journal.sqlite") == frozenset()

    def test_set_aside_reports_are_read_back_until_the_journal_starts_over(
        self, tmp_path: Path
    ) -> None:
        """The names a run continuing the journal recorded are read back; --fresh
        (another created_at) leaves none; no journal takes nor gives any."""
        path = tmp_path / "r.journal.sqlite"
        Journal.open(path, TARGET).close()
        names = ["r-replaced-20261129T100000Z.csv", "r-replaced-20261129T100000Z.xlsx"]

        record_set_aside(path, names)
        recorded = read_set_aside(path)
        with Journal.open(path, TARGET, fresh=True):
            pass
        none = tmp_path / "none.journal.sqlite"
        record_set_aside(none, names)

        assert recorded == set(names)
        assert read_set_aside(path) == frozenset()
        assert not none.exists()
        assert read_set_aside(none) == frozenset()

    def test_split_reports_are_found_by_the_journal_that_wrote_them(
        self, tmp_path: Path
    ) -> None:
        """An org's report names the combined report its journal is beside (each
        -org- in its name a guess, nearest first); the one whose journal records
        the name is its origin, until that journal starts over."""
        path = tmp_path / "my-org-c.journal.sqlite"
        Journal.open(path, TARGET).close()
        split = tmp_path / "my-org-c-org-customer-org-x-e91173ba.csv"

        record_split(path, [split.name])
        recorded = read_split(path)
        found = split_origin(split)
        with Journal.open(path, TARGET, fresh=True):
            pass

        assert split_origins(split) == (
            tmp_path / "my-org-c-org-customer.csv",
            tmp_path / "my-org-c.csv",
            tmp_path / "my.csv",
        )
        assert recorded == {split.name}
        assert found == tmp_path / "my-org-c.csv"
        assert split_origin(split) is None
        assert split_origins(tmp_path / "c.csv") == ()
        assert split_origins(tmp_path / "-org-x.csv") == ()

    def test_read_entries_reads_while_another_command_holds_it(
        self, tmp_path: Path
    ) -> None:
        """A rollback reads what the run recorded for the report's rows, by their
        numbers now, while the run still holds its journal; no journal (or a
        rollback's) records nothing."""
        path = tmp_path / "r.journal.sqlite"
        rows = manifest("AA", "BB").rows
        adopted = Outcome(row=3, status=Status.ADOPTED, device_id="d3")
        with Journal.open(path, TARGET, rows) as journal:
            journal.mark_done(adopted)
            journal.commit()
            moved = [replace(row, number=row.number + 5) for row in rows]
            found = read_entries(path, moved)
        rollback = tmp_path / "r-rollback.journal.sqlite"
        RollbackJournal.open(rollback, TARGET).close()

        assert list(found) == [8]
        assert found[8].outcome == replace(adopted, row=8)
        assert read_entries(tmp_path / "none.journal.sqlite", rows) == {}
        assert read_entries(rollback, rows) == {}

    def test_read_entries_for_a_target_reads_only_a_journal_written_for_it(
        self, tmp_path: Path
    ) -> None:
        """Given the target, a journal of another org or tag mode records nothing;
        each entry read says when the row was last written."""
        path = tmp_path / "r.journal.sqlite"
        rows = manifest("AA").rows
        moment = datetime(2026, 11, 29, 10, tzinfo=UTC)
        created = Outcome(row=2, status=Status.CREATED, device_id="d2")
        with Journal.open(path, TARGET, rows, clock=lambda: moment) as journal:
            journal.mark_done(created)

        found = read_entries(path, rows, target=TARGET)

        assert found[2].outcome == created
        assert found[2].updated_at == moment
        assert read_entries(path, rows, target=replace(TARGET, org_id="ORG-B")) == {}
        assert (
            read_entries(path, rows, target=replace(TARGET, tag_mode=TagMode.REPLACE))
            == {}
        )

    def test_only_a_current_run_journal_has_a_current_target(
        self, tmp_path: Path
    ) -> None:
        """target_of(current=True) is a run journal of this version's target; a
        rollback's journal (same target row, other schema) has none."""
        run = tmp_path / "r.journal.sqlite"
        Journal.open(run, TARGET).close()
        rollback = tmp_path / "r-rollback.journal.sqlite"
        RollbackJournal.open(rollback, TARGET).close()

        found = Journal.target_of(run, current=True)

        assert found is not None
        assert found.same_as(TARGET)
        assert Journal.target_of(rollback) is not None
        assert Journal.target_of(rollback, current=True) is None

    def test_fresh_for_another_target_voids_nothing_there(self, tmp_path: Path) -> None:
        """Starting over against another org cannot void the first org's codes."""
        path = tmp_path / "r.journal.sqlite"
        with Journal.open(path, TARGET, [code(2)]) as journal:
            journal.mark_done(
                Outcome(
                    row=2,
                    status=Status.CODE_ISSUED,
                    device_id="d2",
                    activation_code="1",
                )
            )
        other = Target(base_url=TARGET.base_url, org_id="ORG-B")

        with Journal.open(path, other, [code(2)], fresh=True) as journal:
            assert journal.voids_left() == 0

    def test_an_older_journal_asks_for_fresh(self, tmp_path: Path) -> None:
        """A journal of the first schema is refused with --fresh as the way on."""
        path = tmp_path / "r.journal.sqlite"
        with contextlib.closing(sqlite3.connect(path)) as db, db:
            db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
            db.execute("INSERT INTO meta VALUES ('schema', '1')")

        with pytest.raises(ConfigError, match="--fresh"):
            Journal.open(path, TARGET)
        with Journal.open(path, TARGET, fresh=True) as journal:
            assert journal.entries() == {}

    def test_unreadable_file_is_a_config_error(self, tmp_path: Path) -> None:
        """A file that is not SQLite gives a clear ConfigError, not a traceback."""
        path = tmp_path / "r.journal.sqlite"
        path.write_bytes(b"this is not a database, just text" * 100)

        with pytest.raises(ConfigError, match="cannot be read"):
            Journal.open(path, TARGET)

    @pytest.mark.parametrize("kind", ["run", "rollback"])
    def test_a_folder_that_takes_no_file_is_a_config_error(
        self, unwritable: Path, kind: str
    ) -> None:
        """A journal whose folder cannot be written gives a ConfigError naming it,
        not the OSError (a run's journal and a rollback's alike)."""
        path = unwritable / "r.journal.sqlite"
        opener = Journal if kind == "run" else RollbackJournal

        with pytest.raises(
            ConfigError, match=r"cannot create the journal .*r\.journal"
        ):
            opener.open(path, TARGET)

    def test_files_are_private(self, tmp_path: Path) -> None:
        """The journal and its WAL are mode 0600: they hold activation codes."""
        path = tmp_path / "r.journal.sqlite"
        with Journal.open(path, TARGET) as journal:
            journal.mark_done(
                Outcome(row=2, status=Status.CODE_ISSUED, activation_code="1")
            )
            modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}

        assert {0o600} == set(modes.values())
        assert path.name + "-wal" in modes

    def test_in_memory_journal_works_without_a_file(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """path=None keeps the journal in memory and writes no file."""
        # Where a relative file name would land: the check below then can fail.
        monkeypatch.chdir(tmp_path)
        with Journal.open(None, TARGET) as journal:
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
        with Journal.open(path, TARGET) as journal:
            journal.mark_started(2)
            first = journal.started_at(2)
            journal.mark_created(Outcome(row=2, status=Status.CODE_ISSUED))
        with Journal.open(path, TARGET) as journal:
            journal.mark_started(2)
            journal.mark_done(Outcome(row=2, status=Status.CODE_ISSUED))

            assert first is not None
            assert journal.started_at(2) == first
            assert journal.started_at(3) is None

    def test_entries_for_reads_only_the_rows_asked(self, tmp_path: Path) -> None:
        """entries_for returns the named rows that the journal holds, nothing else."""
        with Journal.open(None, TARGET) as journal:
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
        rows = manifest("00AABB000001").rows
        with Journal.open(path, TARGET, rows) as journal:
            journal.mark_started(2)
        first, resume = record(RunKind.RUN, 9), record(RunKind.RESUME, 11)

        record_history(path, [resume, first])
        record_history(path, [first])

        assert read_history(path) == (first, resume)
        with Journal.open(path, TARGET, rows) as journal:
            assert set(journal.entries()) == {2}

    def test_fresh_start_keeps_the_story(self, tmp_path: Path) -> None:
        """--fresh forgets the rows, not the commands that ran: they happened."""

        path = tmp_path / "r.journal.sqlite"
        rows = manifest("00AABB000001").rows
        Journal.open(path, TARGET, rows).close()
        record_history(path, [record(RunKind.RUN, 9)])

        with Journal.open(path, TARGET, rows, fresh=True) as journal:
            assert journal.entries() == {}

        assert read_history(path) == (record(RunKind.RUN, 9),)

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

        assert _outcome_to_json(outcome, 7) == json.dumps(asdict(outcome))

    def test_row_number_is_the_one_given(self) -> None:
        """The text names the row it is written for, whatever the outcome says."""
        outcome = Outcome(row=7, status=Status.CREATED, device_id="d7")

        written = json.loads(_outcome_to_json(outcome, 9))

        assert written == {**json.loads(json.dumps(asdict(outcome))), "row": 9}


def committed(path: Path) -> dict[int, str]:
    """
    What another connection reads: the phases committed so far, as a kill leaves them.
    """
    with contextlib.closing(sqlite3.connect(path)) as other:
        return dict(other.execute("SELECT row, phase FROM rows").fetchall())


class TestWhatAKillCanLose:
    def test_a_start_is_committed_at_once_with_the_marks_waiting(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "r.journal.sqlite"
        with Journal.open(path, TARGET) as journal:
            journal.mark_started(2)
            journal.mark_created(Outcome(row=2, status=Status.CREATED, device_id="d2"))
            journal.mark_done(Outcome(row=2, status=Status.CREATED, device_id="d2"))
            before = committed(path)
            journal.mark_started(3)
            after = committed(path)

        assert before == {2: "started"}
        assert after == {2: "done", 3: "started"}

    def test_the_marks_waiting_are_one_transaction(self, tmp_path: Path) -> None:
        """A start commits the marks waiting with it in one transaction (one WAL
        commit), not one each: all of them or none survive a kill."""
        path = tmp_path / "r.journal.sqlite"
        with Journal.open(path, TARGET) as journal:
            journal.mark_started(2)
            journal.mark_created(Outcome(row=2, status=Status.CREATED, device_id="d2"))
            journal.mark_done(Outcome(row=2, status=Status.CREATED, device_id="d2"))
            statements: list[str] = []
            journal._db.set_trace_callback(statements.append)
            journal.mark_started(3)
            journal._db.set_trace_callback(None)

            assert committed(path) == {2: "done", 3: "started"}
        words = [text.split()[0].upper() for text in statements]
        assert words == ["BEGIN", "INSERT", "INSERT", "INSERT", "COMMIT"]

    def test_a_code_is_committed_at_once(self, tmp_path: Path) -> None:
        path = tmp_path / "r.journal.sqlite"
        with Journal.open(path, TARGET) as journal:
            journal.mark_started(2)
            journal.mark_created(
                Outcome(
                    row=2,
                    status=Status.CODE_ISSUED,
                    device_id="d2",
                    activation_code="1234567812345678",
                )
            )

            assert committed(path) == {2: "created"}

    def test_waiting_marks_are_committed_after_max_wait(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        path = tmp_path / "r.journal.sqlite"
        monkeypatch.setattr("provisioner.run.journal.MAX_WAIT", 0.0)
        with Journal.open(path, TARGET) as journal:
            journal.mark_started(2)
            journal.mark_done(Outcome(row=2, status=Status.CREATED, device_id="d2"))

            assert committed(path) == {2: "done"}

    def test_reads_and_close_commit_what_waits(self, tmp_path: Path) -> None:
        path = tmp_path / "r.journal.sqlite"
        with Journal.open(path, TARGET) as journal:
            journal.mark_started(2)
            journal.mark_done(Outcome(row=2, status=Status.CREATED, device_id="d2"))

            assert journal.entries()[2].phase == Phase.DONE
            journal.mark_started(3)
            journal.mark_done(Outcome(row=3, status=Status.CREATED, device_id="d3"))

        assert committed(path) == {2: "done", 3: "done"}


class TestOneCommandAtATime:
    """Two commands on one journal would start every row twice (every code issued
    twice): the second is refused until the first has closed it."""

    def test_a_second_opening_is_refused_until_the_first_closes(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "r.journal.sqlite"
        rows = manifest("AABBCCDDEEFF").rows
        first = Journal.open(path, TARGET, rows)

        with pytest.raises(
            JournalBusyError, match="another provisioner command"
        ) as caught:
            Journal.open(path, TARGET, rows, fresh=True)
        assert "another --report" in str(caught.value)
        first.mark_started(2)

        first.close()
        with Journal.open(path, TARGET, rows) as again:
            assert again.entries()[2].phase is Phase.STARTED

    def test_a_refused_opening_leaves_the_journal_as_it_was(
        self, tmp_path: Path
    ) -> None:
        """The refused --fresh opening must not forget the first command's rows."""
        path = tmp_path / "r.journal.sqlite"
        rows = manifest("AABBCCDDEEFF").rows
        with Journal.open(path, TARGET, rows) as first:
            first.mark_started(2)
            with pytest.raises(ConfigError):
                Journal.open(path, TARGET, rows, fresh=True)
            first.mark_done(Outcome(row=2, status=Status.CREATED, device_id="d"))

        with Journal.open(path, TARGET, rows) as after:
            assert after.entries()[2].phase is Phase.DONE

    def test_the_lock_goes_with_the_command_and_a_killed_ones_blocks_nothing(
        self, tmp_path: Path
    ) -> None:
        """Closed, the journal leaves no lock file beside the report; one a killed
        command left (its lock went with its process) does not stop the next."""
        path = tmp_path / "r.journal.sqlite"
        rows = manifest("AABBCCDDEEFF").rows
        Journal.open(path, TARGET, rows).close()
        assert sorted(p.name for p in tmp_path.iterdir()) == ["r.journal.sqlite"]

        (tmp_path / "r.journal.sqlite-lock").write_bytes(b"")
        with Journal.open(path, TARGET, rows) as journal:
            journal.mark_started(2)


class TestHoldJournals:
    """A command working on the rows other journals record holds those journals
    while it works: a run of them is refused meanwhile."""

    def test_the_journals_there_are_held_for_the_block(self, tmp_path: Path) -> None:
        """Each journal there is held (one named twice, once); one not there is
        not made."""
        there = tmp_path / "r.journal.sqlite"
        Journal.open(there, TARGET).close()
        missing = tmp_path / "r-rerun.journal.sqlite"
        rows = manifest("AA").rows

        with hold_journals([there, missing, there], reason="(why)"):
            with pytest.raises(JournalBusyError, match="another provisioner command"):
                Journal.open(there, TARGET, rows)
            with Journal.open(missing, TARGET, rows):
                pass

        with Journal.open(there, TARGET, rows):
            pass

    def test_one_busy_journal_leaves_none_held(self, tmp_path: Path) -> None:
        """When one journal is busy, the refusal names it with the reason given,
        the block never runs and the others are let go."""
        first, second = tmp_path / "a.journal.sqlite", tmp_path / "b.journal.sqlite"
        for path in (first, second):
            Journal.open(path, TARGET).close()
        ran = []

        with (
            Journal.open(second, TARGET),
            pytest.raises(JournalBusyError, match=r"b\.journal\.sqlite \(why\)$"),
            hold_journals([first, second], reason="(why)"),
        ):
            ran.append(True)

        with Journal.open(first, TARGET):
            pass
        assert ran == []


class TestSnapshot:
    """A dry run reads a copy of the journal: no lock, no write, no file made."""

    def test_the_copy_holds_what_the_file_holds(self, tmp_path: Path) -> None:
        """Rows, the run's start and the codes to void are read as ``open`` reads."""
        path = tmp_path / "r.journal.sqlite"
        rows = manifest("AA", "BB").rows
        with Journal.open(path, TARGET, rows) as journal:
            journal.mark_started(2)
            journal.mark_done(Outcome(row=3, status=Status.CREATED, device_id="d3"))
            started = journal.created_at

        with Journal.snapshot(path, TARGET, rows) as copy:
            entries = copy.entries()
            made = (copy.created_at, copy.claimed_devices())

        assert (entries[2].phase, entries[3].phase) == (Phase.STARTED, Phase.DONE)
        assert made == (started, frozenset({"d3"}))

    def test_writes_to_the_copy_stay_in_memory(self, tmp_path: Path) -> None:
        """Marks made on the copy, and discarding it, leave the file as it was."""
        path = tmp_path / "r.journal.sqlite"
        rows = manifest("AA").rows
        Journal.open(path, TARGET, rows).close()
        before = path.read_bytes()

        copy = Journal.snapshot(path, TARGET, rows, fresh=True)
        copy.mark_started(2)
        copy.discard()

        assert path.read_bytes() == before
        assert sorted(p.name for p in tmp_path.iterdir()) == ["r.journal.sqlite"]
        with Journal.open(path, TARGET, rows) as journal:
            assert journal.entries() == {}

    def test_no_file_is_made_where_there_is_none(self, tmp_path: Path) -> None:
        """Without a journal the copy is empty, and no file, folder or lock appears."""
        path = tmp_path / "reports" / "r.journal.sqlite"

        with Journal.snapshot(path, TARGET, manifest("AA").rows) as copy:
            assert copy.entries() == {}

        assert list(tmp_path.iterdir()) == []

    def test_a_journal_another_command_holds_is_read(self, tmp_path: Path) -> None:
        """A copy taken while a run holds the journal sees its committed rows, and
        takes nothing from it: the journal stays busy, the holder keeps writing."""
        path = tmp_path / "r.journal.sqlite"
        rows = manifest("AA", "BB").rows
        with Journal.open(path, TARGET, rows) as holder:
            holder.mark_started(2)
            with Journal.snapshot(path, TARGET, rows) as copy:
                seen = copy.entries()
            with pytest.raises(JournalBusyError):
                Journal.open(path, TARGET, rows)
            holder.mark_started(3)

        with Journal.open(path, TARGET, rows) as journal:
            assert set(journal.entries()) == {2, 3}
        assert set(seen) == {2}

    def test_another_tag_mode_is_named_with_the_ways_a_dry_run_has(
        self, tmp_path: Path
    ) -> None:
        """A journal written with --tag-mode add, continued with replace: the run is
        told the flag that continues it or another report; the dry run, whose own
        --report names only its rehearsal, is not sent to another report."""
        path = tmp_path / "r.journal.sqlite"
        Journal.open(path, TARGET).close()
        replacing = replace(TARGET, tag_mode=TagMode.REPLACE)

        with pytest.raises(ConfigError) as run_refused:
            Journal.open(path, replacing)
        with pytest.raises(ConfigError) as dry_refused:
            Journal.snapshot(path, replacing)

        told = (
            f"a run against org ORG-A at {TARGET.base_url} that tags with "
            "--tag-mode add, not replace"
        )
        assert told in str(run_refused.value)
        assert "Give --tag-mode add to continue it" in str(run_refused.value)
        assert "choose another --report path" in str(run_refused.value)
        assert told in str(dry_refused.value)
        assert "--report" not in str(dry_refused.value)
        assert "Give --tag-mode add to continue it, rehearse a start over here" in (
            str(dry_refused.value)
        )
        other = Target(base_url=TARGET.base_url, org_id="ORG-B")
        with pytest.raises(ConfigError) as dry_elsewhere:
            Journal.snapshot(path, other)
        assert "For this target, rehearse a start over here with --fresh" in str(
            dry_elsewhere.value
        )

    def test_it_is_judged_as_open_judges_the_file(self, tmp_path: Path) -> None:
        """Another target or an unreadable file is refused in ``open``'s words; with
        fresh, the copy starts over."""
        path = tmp_path / "r.journal.sqlite"
        Journal.open(path, TARGET).close()
        other = Target(base_url=TARGET.base_url, org_id="ORG-B")
        garbage = tmp_path / "g.journal.sqlite"
        garbage.write_bytes(b"this is not a database, just text" * 100)

        with pytest.raises(ConfigError, match="belongs to a run against"):
            Journal.snapshot(path, other)
        with pytest.raises(ConfigError, match="cannot be read"):
            Journal.snapshot(garbage, TARGET)
        with Journal.snapshot(garbage, TARGET, fresh=True) as copy:
            assert copy.entries() == {}
        assert Journal.target_of(path) == TARGET
