"""
The rollback shell: reads, deletes, failures, the journal and stopping (a fake API),
then against the emulator.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from fakes import FakeDevicesApi, unknown_outcome
from inventory_support import WORKSPACES, settings_for

from provisioner.emulator import RunningEmulator
from provisioner.errors import (
    AuthError,
    ConfigError,
    NotConfirmedError,
    NotFoundError,
    ServerError,
)
from provisioner.inventory.rollback import RollbackProgress, RollbackRun, roll_back
from provisioner.inventory.rollback_journal import RollbackJournal
from provisioner.inventory.rollback_rules import RollbackStatus
from provisioner.inventory.run_journals import RunJournals, run_journals
from provisioner.models import (
    Changes,
    Manifest,
    Outcome,
    Row,
    RunKind,
    RunRecord,
    Status,
    Target,
)
from provisioner.run.engine import provision
from provisioner.run.journal import (
    Journal,
    record_history,
    record_set_aside,
    record_split,
)
from provisioner.run.plan import MAX_CREATES, UNCONFIRMED
from provisioner.settings import Settings
from provisioner.webex.client import ApiClient

SETTINGS = Settings(token="t", base_url="http://127.0.0.1:9/v1", concurrency=4)
WS = "WS1"


def mac_of(n: int) -> str:
    return f"00AABE{n:06X}"


class Org:
    """
    A fake org and a report of a run against it: rows 2.. created, adopted, code.
    """

    def __init__(self) -> None:
        self.api = FakeDevicesApi(workspaces={WS})
        self.rows: list[Row] = []
        self.outcomes: dict[int, Outcome] = {}

    def created(self, n: int) -> str:
        device = self.api.add_device(mac=mac_of(n), workspace_id=WS)
        self._row(
            n, mac_of(n), Outcome(row=n, status=Status.CREATED, device_id=device.id)
        )
        return device.id

    def adopted(self, n: int) -> str:
        device = self.api.add_device(mac=mac_of(n), workspace_id=WS)
        self._row(
            n, mac_of(n), Outcome(row=n, status=Status.ADOPTED, device_id=device.id)
        )
        return device.id

    def code(self, n: int) -> str:
        device = self.api.add_device(workspace_id=WS, connection_status="activating")
        outcome = Outcome(
            row=n,
            status=Status.CODE_ISSUED,
            device_id=device.id,
            activation_code="1111",
        )
        self._row(n, None, outcome)
        return device.id

    def _row(self, n: int, mac: str | None, outcome: Outcome) -> None:
        self.rows.append(
            Row(number=n, cells=(), mac=mac, model="DMS Cisco 8851", workspace_id=WS)
        )
        self.outcomes[n] = outcome

    @property
    def manifest(self) -> Manifest:
        return Manifest(
            path=Path("r.csv"),
            sheet=None,
            columns=(),
            field_columns={},
            rows=tuple(self.rows),
        )

    async def roll_back(self, **options: Any) -> RollbackRun:
        return await roll_back(
            self.manifest, self.outcomes, SETTINGS, api=self.api, **options
        )


def statuses(run: RollbackRun) -> dict[int, str]:
    return {n: r.status.value for n, r in run.results.items()}


class TestWithAFakeApi:
    async def test_deletes_what_the_run_made_and_nothing_else(self) -> None:
        """Created and code devices go; the adopted one and any other stay."""
        org = Org()
        made = [org.created(2), org.code(3)]
        kept = [org.adopted(4), org.api.add_device(mac="00FFFF000001").id]

        run = await org.roll_back()

        assert statuses(run) == {2: "deleted", 3: "deleted", 4: "skipped"}
        assert set(org.api.devices) == set(kept)
        assert [op for _, op in org.api.writes] == ["delete_device"] * len(made)
        # A read and the delete; a code's device is read again just before it.
        assert (run.results[2].attempts, run.results[3].attempts) == (2, 3)

    async def test_a_device_gone_before_the_read_is_already_gone(self) -> None:
        """404 on the read: already_gone, and no delete is sent."""
        org = Org()
        device = org.created(2)
        del org.api.devices[device]

        run = await org.roll_back()

        assert statuses(run) == {2: "already_gone"}
        assert org.api.count("delete_device") == 0

    async def test_404_on_the_delete_is_already_gone(self) -> None:
        """A device gone between the read and the delete is already_gone, not failed."""
        org = Org()
        org.created(2)
        org.api.fail_before("delete_device", NotFoundError("gone", status=404))

        run = await org.roll_back()

        assert statuses(run) == {2: "already_gone"}
        assert "the delete found no such device" in run.results[2].reason

    async def test_failures_are_rows_not_crashes(self) -> None:
        """A read or delete failing after retries fails its row, with status and
        tracking id; the other rows go on and the exit is decided by the CLI."""
        org = Org()
        read, delete = org.created(2), org.created(3)
        org.created(4)
        org.api.fail_before(
            "get_device", ServerError("down", status=503, tracking_id="T1"), read
        )
        org.api.fail_before(
            "delete_device", ServerError("down", status=502, tracking_id="T2"), delete
        )

        run = await org.roll_back()

        assert statuses(run) == {2: "failed", 3: "failed", 4: "deleted"}
        assert run.results[2].reason.startswith("read device: down")
        assert (run.results[3].http_status, run.results[3].tracking_id) == (502, "T2")
        assert {read, delete} <= set(org.api.devices)

    async def test_a_refused_token_stops_starting_rows(self) -> None:
        """A 401 mid-rollback fails that row and starts no other."""
        org = Org()
        first = org.created(2)
        for n in range(3, 8):
            org.created(n)
        org.api.fail_before("get_device", AuthError("expired", status=401), first)

        run = await roll_back(
            org.manifest,
            org.outcomes,
            Settings(token="t", base_url=SETTINGS.base_url, concurrency=1),
            api=org.api,
        )

        assert run.token_refused
        assert statuses(run)[2] == "failed"
        assert set(statuses(run).values()) == {"failed", "not_started"}
        assert org.api.count("delete_device") == 0

    async def test_stop_leaves_the_rest_not_started(self) -> None:
        """Once stop is set no row starts: they are not_started, and it says so."""
        org = Org()
        for n in range(2, 6):
            org.created(n)
        stop = anyio.Event()
        stop.set()

        run = await org.roll_back(stop=stop)

        assert set(statuses(run).values()) == {"not_started"}
        assert run.interrupted
        assert org.api.writes == []

    async def test_dry_run_reads_and_plans_only(self) -> None:
        """A dry run reads each device and deletes nothing: planned, kept, skipped."""
        org = Org()
        org.created(2)
        code = org.code(3)
        org.api.activate(code, "00AABBCCDDEE")
        org.adopted(4)

        run = await org.roll_back(dry_run=True)

        assert statuses(run) == {2: "planned", 3: "kept", 4: "skipped"}
        assert org.api.writes == []

    async def test_include_activated_deletes_a_used_code(self) -> None:
        """--include-activated deletes a code's device even when it was activated."""
        org = Org()
        code = org.code(2)
        org.api.activate(code, "00AABBCCDDEE")

        kept = await org.roll_back()
        deleted = await org.roll_back(include_activated=True)

        assert (statuses(kept), statuses(deleted)) == ({2: "kept"}, {2: "deleted"})

    async def test_refusal_before_deletes_deletes_nothing(self) -> None:
        """The confirmation is asked once, with the count, after the reads and
        before any delete; a refusal leaves every device in place."""
        org = Org()
        org.created(2)
        org.code(3)
        org.adopted(4)
        asked: list[Changes] = []

        def refuse(target: Target, changes: Changes) -> None:
            asked.append(changes)
            raise NotConfirmedError("no")

        with pytest.raises(NotConfirmedError):
            await org.roll_back(before_deletes=refuse)

        assert [c.deletions for c in asked] == [2]
        assert org.api.writes == []
        assert org.api.count("get_device") == 2

    async def test_the_confirmation_counts_what_the_dry_run_plans(self) -> None:
        """Devices gone already or no longer their rows' (a used code) are not
        counted: the confirmation asks about the dry run's planned devices, and
        says what the reads found of the others."""
        org = Org()
        for n in range(2, 6):
            org.created(n)
        del org.api.devices[org.created(6)]
        used = org.code(7)
        org.api.activate(used, "00AABBCCDDEE")
        org.code(8)
        asked: list[Changes] = []

        dry = await org.roll_back(dry_run=True)
        run = await org.roll_back(before_deletes=lambda _t, c: asked.append(c))

        planned = [n for n, r in dry.results.items() if r.status.value == "planned"]
        assert [c.deletions for c in asked] == [len(planned)] == [5]
        assert asked[0].notes[0] == (
            "read 7 devices first, as its dry run does: 5 to delete · "
            "already_gone 1 · kept 1 (the rollback's report says why)"
        )
        assert sorted(n for n, s in statuses(run).items() if s == "deleted") == planned

    async def test_a_code_used_while_the_confirmation_waits_is_kept(self) -> None:
        """A code's pending device is read again just before its delete: one
        activated while the person answered is kept, not deleted."""
        org = Org()
        org.created(2)
        code = org.code(3)

        def answer(target: Target, changes: Changes) -> None:
            org.api.activate(code, "00AABBCCDDEE")

        run = await org.roll_back(before_deletes=answer)

        assert statuses(run) == {2: "deleted", 3: "kept"}
        assert code in org.api.devices
        assert run.results[3].reason.startswith("activated")

    async def test_progress_counts_rows_by_rollback_status(self) -> None:
        """Progress snapshots count every row, settled ones first."""
        org = Org()
        org.created(2)
        org.adopted(3)
        seen: list[RollbackProgress] = []

        await org.roll_back(on_progress=seen.append)

        assert seen[-1].total == seen[-1].done == 2
        assert dict(seen[-1].counts) == {
            RollbackStatus.DELETED: 1,
            RollbackStatus.SKIPPED: 1,
        }


Span = tuple[datetime, datetime]


class TestALostCreate:
    """A MAC row whose every create lost its answer (the last one took effect): the
    rollback finds the device by MAC and deletes it when the API made it while the
    run ran, as the row's rerun would have called it created."""

    async def lost_create(self, org: Org, n: int = 2) -> Span:
        """A real run of row ``n`` through the engine: failed, no device id, while
        the org now holds the device its last create made."""
        for _ in range(MAX_CREATES - 1):
            org.api.fail_before("create_device", unknown_outcome("gateway timeout"))
        org.api.fail_after("create_device", unknown_outcome("connection dropped"))
        row = Row(number=n, cells=(), mac=mac_of(n), model="DMS Cisco 8851")
        row = replace(row, workspace_id=WS)
        manifest = Manifest(
            path=Path("r.csv"), sheet=None, columns=(), field_columns={}, rows=(row,)
        )
        ran = await provision(manifest, SETTINGS, api=org.api)
        outcome = ran.outcomes[n]
        assert outcome.status is Status.FAILED
        assert outcome.device_id is None
        assert UNCONFIRMED in (outcome.error or "")
        assert [d.mac for d in org.api.devices.values()] == [mac_of(n)]
        org.rows.append(row)
        org.outcomes[n] = outcome
        return ran.stats.started_at, ran.stats.finished_at

    async def test_the_device_the_run_made_is_deleted(self) -> None:
        """Before: skipped as "the run made nothing", the device left in the org."""
        org = Org()
        span = await self.lost_create(org)
        adopted = org.adopted(3)

        run = await org.roll_back(earlier=(span,))

        assert statuses(run) == {2: "deleted", 3: "skipped"}
        assert set(org.api.devices) == {adopted}

    async def test_a_dry_run_predicts_the_delete(self) -> None:
        """The dry run looks the MAC up too, and deletes nothing."""
        org = Org()
        span = await self.lost_create(org)
        devices = dict(org.api.devices)

        run = await org.roll_back(earlier=(span,), dry_run=True)

        assert statuses(run) == {2: "planned"}
        assert run.results[2].device_id in devices
        assert org.api.devices == devices

    @pytest.mark.parametrize("history", ["none", "another time"])
    async def test_a_device_made_outside_the_rollout_is_kept(
        self, history: str
    ) -> None:
        """Made at no time the report's history says the rollout ran (or with no
        history to say when): kept, saying why."""
        org = Org()
        span = await self.lost_create(org)
        devices = dict(org.api.devices)
        hour = timedelta(hours=1)
        earlier = () if history == "none" else ((span[0] - hour, span[1] - hour),)

        run = await org.roll_back(earlier=earlier)

        assert statuses(run) == {2: "kept"}
        assert "may have made" in run.results[2].reason
        assert org.api.devices == devices

    async def test_a_device_of_another_owner_is_kept(self) -> None:
        """The MAC is someone else's now: kept, naming the owner."""
        org = Org()
        span = await self.lost_create(org)
        ((device_id, device),) = org.api.devices.items()
        org.api.devices[device_id] = replace(device, workspace_id="WS9")

        run = await org.roll_back(earlier=(span,))

        assert statuses(run) == {2: "kept"}
        assert "belongs to workspace WS9" in run.results[2].reason
        assert device_id in org.api.devices

    async def test_no_device_found_is_skipped(self) -> None:
        """The MAC is free: nothing to delete, said so."""
        org = Org()
        span = await self.lost_create(org)
        org.api.devices.clear()

        run = await org.roll_back(earlier=(span,))

        assert statuses(run) == {2: "skipped"}
        assert "no device has its MAC" in run.results[2].reason

    async def test_a_killed_rollback_continues_by_the_journal(
        self, tmp_path: Path
    ) -> None:
        """Killed after its delete was sent: the same command says deleted (the
        device the journal names), not that it finds none; once done, it makes
        no call for the row."""
        org = Org()
        span = await self.lost_create(org)
        ((device_id, _),) = org.api.devices.items()
        journal = tmp_path / "x.journal.sqlite"
        target = Target(base_url=SETTINGS.base_url, org_id=org.api.org_id)
        with RollbackJournal.open(journal, target) as open_journal:
            open_journal.mark_deleting(2, device_id)
        del org.api.devices[device_id]  # the delete took effect; its answer was lost

        resumed = await org.roll_back(earlier=(span,), journal_path=journal)
        lookups = org.api.count("find_device_by_mac")
        again = await org.roll_back(earlier=(span,), journal_path=journal)

        assert statuses(resumed) == statuses(again) == {2: "deleted"}
        assert resumed.results[2].device_id == device_id
        assert org.api.count("find_device_by_mac") == lookups


class TestTheRunJournals:
    """The run's journal says what the run did with each row: a row it records as
    nothing the run made is kept, whatever the report's status cell says."""

    def journal(self, path: Path, org: Org, outcome: Outcome, api: str) -> Path:
        target = Target(base_url=api, org_id=org.api.org_id)
        with Journal.open(path, target, org.rows) as journal:
            journal.mark_done(outcome)
        return path

    async def test_a_row_recorded_code_pending_is_kept_and_never_read(
        self, tmp_path: Path
    ) -> None:
        """The report calls row 3 code_issued; the run recorded it code_pending (the
        pending device was an earlier run's): kept, no call made for it."""
        org = Org()
        org.created(2)
        earlier = org.code(3)
        pending = Outcome(row=3, status=Status.CODE_PENDING, device_id=earlier)
        journal = self.journal(
            tmp_path / "r.journal.sqlite", org, pending, SETTINGS.base_url
        )

        dry = await org.roll_back(run_journals=(journal,), dry_run=True)
        run = await org.roll_back(run_journals=(journal,))

        assert statuses(dry) == {2: "planned", 3: "kept"}
        assert statuses(run) == {2: "deleted", 3: "kept"}
        assert "records this row as code_pending" in run.results[3].reason
        assert list(org.api.devices) == [earlier]
        assert org.api.count("get_device") == 2  # row 2's, by each rollback

    async def test_a_journal_of_another_api_is_not_heard(self, tmp_path: Path) -> None:
        """Device ids are the API's: a journal written against another API says
        nothing of this org's devices."""
        org = Org()
        device = org.created(2)
        adopted = Outcome(row=2, status=Status.ADOPTED, device_id=device)
        journal = self.journal(
            tmp_path / "r.journal.sqlite", org, adopted, "https://webexapis.com/v1"
        )

        run = await org.roll_back(run_journals=(journal,))

        assert statuses(run) == {2: "deleted"}

    async def test_rows_gone_with_no_run_journal_to_forget_them_are_counted(
        self, tmp_path: Path
    ) -> None:
        """No run journal of this API (the report a copy, say): the rows whose
        devices go are counted, a dry run's too, so the CLI can say their run still
        takes them for done; a journal that forgets them leaves none counted."""
        org = Org()
        device = org.created(2)
        org.code(3)
        org.adopted(4)
        other = self.journal(
            tmp_path / "other.journal.sqlite",
            org,
            Outcome(row=2, status=Status.CREATED, device_id=device),
            "https://webexapis.com/v1",
        )

        dry = await org.roll_back(run_journals=(other,), dry_run=True)
        run = await org.roll_back(run_journals=(other,))

        assert (dry.unforgotten, run.unforgotten) == (2, 2)
        assert statuses(run) == {2: "deleted", 3: "deleted", 4: "skipped"}

    async def test_a_journal_that_forgets_the_rows_leaves_none_unforgotten(
        self, tmp_path: Path
    ) -> None:
        """The run's journal beside the report forgets the deleted row: nothing is
        left for the CLI to warn about."""
        org = Org()
        device = org.created(2)
        made = Outcome(row=2, status=Status.CREATED, device_id=device)
        journal = self.journal(
            tmp_path / "r.journal.sqlite", org, made, SETTINGS.base_url
        )

        run = await org.roll_back(run_journals=(journal,))

        assert run.unforgotten == 0
        assert [change.forgotten for change in run.journals] == [1]


class TestAMovedReportsJournal:
    """A report a run moved aside has no journal beside it: the one of the report
    it was moved from speaks for it while that journal holds the rows it was
    written from, and is only made to forget once it started over."""

    REPORT = "r-replaced-20261129T100000Z.csv"

    def test_the_journal_that_wrote_it_is_trusted(self, tmp_path: Path) -> None:
        """The run that moved it continued the journal: trusted like its own."""
        origin = tmp_path / "r.journal.sqlite"
        Journal.open(origin, Target(base_url=SETTINGS.base_url)).close()
        record_set_aside(origin, [self.REPORT])

        found = run_journals(tmp_path / self.REPORT, moved_from=tmp_path / "r.csv")

        assert found == RunJournals(trusted=(origin,))

    def test_a_journal_started_over_only_forgets(self, tmp_path: Path) -> None:
        """--fresh since (or no record of the file): its rows are another run's."""
        origin = tmp_path / "r.journal.sqlite"
        target = Target(base_url=SETTINGS.base_url)
        Journal.open(origin, target).close()
        record_set_aside(origin, [self.REPORT])
        Journal.open(origin, target, fresh=True).close()

        found = run_journals(tmp_path / self.REPORT, moved_from=tmp_path / "r.csv")
        unknown = run_journals(
            tmp_path / "r-replaced-20261129T110000Z.csv",
            moved_from=tmp_path / "r.csv",
        )

        assert found == unknown == RunJournals(forget_only=(origin,))


class TestAnOrgsReportsJournal:
    """One org's report of a partner run (--split-by-org) has no journal beside it:
    the combined report's speaks for it (and for a rerun of it) when it records the
    org report's name, and is only made to forget when it does not."""

    SPLIT = "c-org-customer-org2-e91173ba.xlsx"

    def _combined(self, tmp_path: Path, *names: str) -> Path:
        journal = tmp_path / "c.journal.sqlite"
        Journal.open(journal, Target(base_url=SETTINGS.base_url)).close()
        record_split(journal, names)
        return journal

    def test_the_combined_reports_journal_is_trusted(self, tmp_path: Path) -> None:
        """The journal records the org report's name: trusted like its own."""
        combined = self._combined(tmp_path, self.SPLIT)

        found = run_journals(tmp_path / self.SPLIT)

        assert found == RunJournals(trusted=(combined,))

    def test_a_rerun_of_the_org_report_reaches_the_combined_journal(
        self, tmp_path: Path
    ) -> None:
        """The rerun's history names the org report it read: the combined report's
        journal speaks for the rows it read, beside the rerun's own."""
        combined = self._combined(tmp_path, self.SPLIT)
        rerun = tmp_path / "c-org-customer-org2-e91173ba-rerun.xlsx"
        own = rerun.with_suffix(".journal.sqlite")
        Journal.open(own, Target(base_url=SETTINGS.base_url)).close()
        moment = datetime(2026, 11, 29, 10, tzinfo=UTC)
        record = RunRecord(
            kind=RunKind.RERUN, started_at=moment, finished_at=moment, source=self.SPLIT
        )
        record_history(own, [record])

        found = run_journals(rerun)

        assert found == RunJournals(trusted=(own, combined))

    def test_a_journal_that_does_not_record_it_only_forgets(
        self, tmp_path: Path
    ) -> None:
        """Named as an org's report, but the journal beside the combined report does
        not record it (written before the record was kept, or started over since):
        its word is not taken; it is only made to forget."""
        combined = self._combined(tmp_path, "c-org-customer-org1-ac2f6585.xlsx")

        found = run_journals(tmp_path / self.SPLIT)

        assert found == RunJournals(forget_only=(combined,))


def test_a_renewed_reports_rows_are_spoken_for_by_the_runs_journal(
    tmp_path: Path,
) -> None:
    """A renewal's report has no journal beside it: the run journals of the
    reports the renewals read speak for it, and it is marked a renewal's."""
    run = tmp_path / "r.journal.sqlite"
    Journal.open(run, Target(base_url=SETTINGS.base_url)).close()

    found = run_journals(
        tmp_path / "r-renewed-2.csv",
        renewed_from=(tmp_path / "r-renewed.csv", tmp_path / "r.csv"),
    )

    assert found == RunJournals(trusted=(run,), renewal=True)


class TestJournal:
    async def test_done_rollback_is_a_no_op(self, tmp_path: Path) -> None:
        """Run again, a finished rollback makes no call and reports the same."""
        org = Org()
        org.created(2)
        org.code(3)
        journal = tmp_path / "x.journal.sqlite"
        first = await org.roll_back(journal_path=journal)
        calls = org.api.count("get_device") + org.api.count("delete_device")

        again = await org.roll_back(journal_path=journal)

        assert statuses(again) == statuses(first) == {2: "deleted", 3: "deleted"}
        assert org.api.count("get_device") + org.api.count("delete_device") == calls

    async def test_a_delete_in_doubt_is_deleted_on_resume(self, tmp_path: Path) -> None:
        """A delete sent just before a kill: the device found gone is ``deleted``."""
        org = Org()
        device = org.created(2)
        journal = tmp_path / "x.journal.sqlite"
        target = Target(base_url=SETTINGS.base_url, org_id=org.api.org_id)
        with RollbackJournal.open(journal, target) as open_journal:
            open_journal.mark_deleting(2, device)
        del org.api.devices[device]  # the delete took effect; its answer was lost

        run = await org.roll_back(journal_path=journal)

        assert statuses(run) == {2: "deleted"}
        assert "interrupted" in run.results[2].reason

    async def test_failed_rows_are_retried(self, tmp_path: Path) -> None:
        """A row that failed is tried again by the same command; a deleted one is not."""
        org = Org()
        flaky, fine = org.created(2), org.created(3)
        org.api.fail_before("delete_device", ServerError("down", status=503), flaky)
        journal = tmp_path / "x.journal.sqlite"
        first = await org.roll_back(journal_path=journal)

        second = await org.roll_back(journal_path=journal)

        assert statuses(first) == {2: "failed", 3: "deleted"}
        assert statuses(second) == {2: "deleted", 3: "deleted"}
        assert org.api.devices == {}
        assert fine not in org.api.devices

    async def test_journal_of_another_target_is_refused(self, tmp_path: Path) -> None:
        """A journal is bound to its API and org: another target never resumes it."""
        journal = tmp_path / "x.journal.sqlite"
        RollbackJournal.open(journal, Target(base_url="http://a/v1")).close()

        with pytest.raises(ConfigError, match="another API or org"):
            RollbackJournal.open(journal, Target(base_url="http://b/v1"))


class TestAgainstTheEmulator:
    async def test_run_then_rollback_under_faults(
        self, start_emulator: Any, tmp_path: Path
    ) -> None:
        """Deletes go through the client's retries: every created device is gone,
        the devices that were there before stay."""
        server: RunningEmulator = await start_emulator()
        settings = settings_for(server)
        org = Org()
        async with ApiClient(settings) as api:
            before = await api.create_device(
                mac=mac_of(99), model="DMS Cisco 8851", workspace_id=_workspace(0)
            )
            for n in range(2, 32):
                device = await api.create_device(
                    mac=mac_of(n), model="DMS Cisco 8851", workspace_id=_workspace(n)
                )
                org.rows.append(
                    Row(
                        number=n,
                        cells=(),
                        mac=mac_of(n),
                        model="DMS Cisco 8851",
                        workspace_id=_workspace(n),
                    )
                )
                org.outcomes[n] = Outcome(
                    row=n, status=Status.CREATED, device_id=device.id
                )
        server.set_faults(fault_rate=0.2, drop_rate=0.1, rate_limit=60.0, burst=3)

        run = await roll_back(
            org.manifest, org.outcomes, settings, journal_path=tmp_path / "j.sqlite"
        )

        assert set(statuses(run).values()) == {"deleted"}
        assert list(server.state.store.devices) == [before.id]
        assert run.stats.retries > 0


def _workspace(n: int) -> str:
    return WORKSPACES[n % len(WORKSPACES)]


def test_a_rollback_journal_in_use_is_refused(tmp_path: Path) -> None:
    """Two rollbacks of one report at once would each delete, then each report:
    the second is refused while the first holds the journal."""
    journal = tmp_path / "r.journal.sqlite"
    target = Target(base_url="http://a/v1")
    with (
        RollbackJournal.open(journal, target),
        pytest.raises(ConfigError, match="another provisioner command"),
    ):
        RollbackJournal.open(journal, target)
    RollbackJournal.open(journal, target).close()
