"""
The engine against the dict-backed fake: outcomes, faults, locks, resume, dry run.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import subprocess
import sys
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
import structlog
from fakes import FakeDevicesApi, unknown_outcome
from rate_spy import starts_by_limiter

import provisioner
from provisioner.emulator import RunningEmulator
from provisioner.emulator.faults import FaultDecision
from provisioner.errors import (
    AuthError,
    ConfigError,
    ConnectError,
    JournalBusyError,
    MacInUseError,
    NetworkError,
    NotFoundError,
    ServerError,
)
from provisioner.intake.manifest import load_manifest
from provisioner.inventory.rollback import roll_back
from provisioner.models import Manifest, Outcome, Problem, Row, Status, TagMode
from provisioner.report.files import load_report, rows_to_rerun, write_report
from provisioner.run import plan
from provisioner.run.engine import (
    FIRST_CALL_ATTEMPTS,
    Progress,
    RunResult,
    first_call_policy,
    provision,
)
from provisioner.run.journal import Journal, Phase
from provisioner.run.plan import MAX_CREATES, UNTOLD_CODE_DEVICE, made_by_run
from provisioner.settings import RateControl, RetryPolicy, Settings

WORKSPACES = [f"ws-{n}" for n in range(1, 9)]
PEOPLE = ["person-1", "person-2"]


def mac_of(n: int) -> str:
    return f"00AABB{n:06X}"


def mac_row(number: int, owner: str, tags: tuple[str, ...] = ("lobby",)) -> Row:
    return Row(
        number=number,
        cells=(mac_of(number), "DMS Cisco 8851", owner),
        mac=mac_of(number),
        model="DMS Cisco 8851",
        workspace_id=None if owner.startswith("person-") else owner,
        person_id=owner if owner.startswith("person-") else None,
        tags=tags,
    )


def code_row(number: int, owner: str, tags: tuple[str, ...] = ()) -> Row:
    return Row(
        number=number,
        cells=("", "DMS Cisco 8851", owner),
        model="DMS Cisco 8851",
        workspace_id=None if owner.startswith("person-") else owner,
        person_id=owner if owner.startswith("person-") else None,
        tags=tags,
    )


MANIFEST_COLUMNS = ("mac", "model", "workspaceId", "personId", "tags")


def manifest_of(rows: list[Row], path: Path = Path("manifest.csv")) -> Manifest:
    # Cells as a real file would hold them: a dry run's live check rebuilds rows
    # from their cells against the org's catalogue.
    columns = MANIFEST_COLUMNS
    if any(row.password for row in rows):
        columns += ("password",)
    faithful = [
        replace(
            row,
            cells=(
                row.mac or "",
                row.model or "",
                row.workspace_id or "",
                row.person_id or "",
                ";".join(row.tags),
                *([row.password or ""] if len(columns) > len(MANIFEST_COLUMNS) else []),
            ),
        )
        for row in rows
    ]
    return Manifest(
        path=path,
        sheet=None,
        columns=columns,
        field_columns={column: column for column in columns},
        rows=tuple(faithful),
    )


def many_rows(count: int, owners: list[str] = WORKSPACES) -> list[Row]:
    return [mac_row(n, owners[n % len(owners)]) for n in range(2, count + 2)]


def read_folder(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in folder.iterdir())


def settings(**changes: object) -> Settings:
    return replace(
        Settings(token="secret-token", base_url="http://127.0.0.1:1/v1"), **changes
    )  # type: ignore[arg-type]


def reopen(path: Path, manifest: Manifest) -> Journal:
    """Open a run's journal again, for the target it was written for."""
    target = Journal.target_of(path)
    assert target is not None
    return Journal.open(path, target, manifest.rows)


def fake() -> FakeDevicesApi:
    return FakeDevicesApi(workspaces=set(WORKSPACES), people=set(PEOPLE))


class TestCleanRun:
    async def test_every_row_gets_its_outcome(self) -> None:
        """MAC rows are created and tagged, code rows get codes, invalid rows make no call."""
        api = fake()
        invalid = Row(
            number=5,
            cells=("zz", "", ""),
            problems=(Problem("mac", "zz", "not a MAC address"),),
        )
        rows = [
            mac_row(2, "ws-1"),
            mac_row(3, "person-1", ()),
            code_row(4, "ws-2"),
            invalid,
        ]

        result = await provision(manifest_of(rows), settings(), api=api)

        statuses = {n: o.status for n, o in result.outcomes.items()}
        assert statuses == {
            2: Status.CREATED,
            3: Status.CREATED,
            4: Status.CODE_ISSUED,
            5: Status.INVALID,
        }
        assert api.devices[result.outcomes[2].device_id or ""].tags == ("lobby",)
        assert result.outcomes[5].error == "mac: not a MAC address"
        assert result.outcomes[5].attempts == 0
        assert result.outcomes[4].activation_code
        assert result.interrupted is False

    async def test_attempts_count_the_calls_of_each_row(self) -> None:
        """A tagged MAC row costs a create and a PATCH; an untagged one only the create."""
        api = fake()

        result = await provision(
            manifest_of([mac_row(2, "ws-1"), mac_row(3, "ws-2", ())]),
            settings(),
            api=api,
        )

        assert result.outcomes[2].attempts == 2
        assert result.outcomes[3].attempts == 1
        assert api.count("modify_tags") == 1
        # The first calls (who the token is, its org, the catalogue), then the rows.
        assert result.stats.api_calls == 3 + 3

    async def test_rows_worked_leave_out_carried_outcomes(self) -> None:
        """A rerun's figures count only the rows it worked on, not those it carried."""
        rows = [mac_row(2, "ws-1"), mac_row(3, "ws-2"), mac_row(4, "ws-3")]
        first = await provision(manifest_of(rows), settings(), api=fake())

        again = await provision(
            manifest_of(rows),
            settings(),
            api=fake(),
            previous=first.outcomes,
            only_rows=frozenset({3}),
        )

        assert (first.stats.rows_worked, again.stats.rows_worked) == (3, 1)

    async def test_worked_counts_what_this_run_decided(self, tmp_path: Path) -> None:
        """The run history's counts are this run's rows by status, invalid included;
        a resume of a finished journal decides nothing and says it resumed."""
        bad = replace(
            mac_row(4, "ws-3"), problems=(Problem("mac", "zz", "not a MAC address"),)
        )
        manifest = manifest_of([mac_row(2, "ws-1"), code_row(3, "ws-2"), bad])
        journal = tmp_path / "r.journal.sqlite"

        first = await provision(manifest, settings(), api=fake(), journal_path=journal)
        again = await provision(manifest, settings(), api=fake(), journal_path=journal)

        assert (first.stats.resumed, first.stats.worked) == (
            False,
            {Status.CREATED: 1, Status.CODE_ISSUED: 1, Status.INVALID: 1},
        )
        assert (again.stats.resumed, again.stats.worked) == (True, {})

    async def test_progress_is_reported_as_rows_finish(self) -> None:
        """on_progress sees every row finish and ends with all rows done."""
        api = fake()
        seen: list[Progress] = []

        await provision(
            manifest_of(many_rows(5)), settings(), api=api, on_progress=seen.append
        )

        assert 5 == seen[-1].done == seen[-1].total
        assert dict(seen[-1].counts) == {Status.CREATED: 5}
        assert [p.done for p in seen] == sorted(p.done for p in seen)

    async def test_refused_token_raises_before_any_row(self) -> None:
        """A 401 on the first call raises AuthError and no row call is made: nothing
        but the first reads (supportedDevices goes out beside GET /people/me)."""
        api = fake()
        api.fail_before("get_me", AuthError("token refused", status=401))

        with pytest.raises(AuthError):
            await provision(manifest_of(many_rows(3)), settings(), api=api)

        ops = [op for _, op in api.calls]
        assert ops[0] == "get_me"
        assert set(ops) <= {"get_me", "supported_devices"}

    async def test_org_name_and_catalogue_are_read_side_by_side(self) -> None:
        """
        After GET /people/me the org's name and supportedDevices are both in flight
        before either answers: each waits for the other to start (a sequential
        engine would hang until the guard).
        """
        started = {
            "get_organization": anyio.Event(),
            "supported_devices": anyio.Event(),
        }

        class Meeting(FakeDevicesApi):
            async def get_organization(self, org_id: str) -> Any:
                started["get_organization"].set()
                await started["supported_devices"].wait()
                return await super().get_organization(org_id)

            async def supported_devices(self, *, org_id: str | None = None) -> Any:
                started["supported_devices"].set()
                await started["get_organization"].wait()
                return await super().supported_devices(org_id=org_id)

        api = Meeting(workspaces=set(WORKSPACES), people=set(PEOPLE))

        with anyio.fail_after(5):
            result = await provision(manifest_of(many_rows(3)), settings(), api=api)

        assert api.calls[0][1] == "get_me"
        assert {op for _, op in api.calls[1:3]} == {
            "get_organization",
            "supported_devices",
        }
        assert {o.status for o in result.outcomes.values()} == {Status.CREATED}

    async def test_unreachable_api_raises_before_any_row(self) -> None:
        """A network failure on the first read (after retries) stops the run."""
        api = fake()
        api.fail_before("supported_devices", NetworkError("connection refused"))

        with pytest.raises(NetworkError):
            await provision(manifest_of(many_rows(3)), settings(), api=api)

        assert api.count("create_device") == 0

    async def test_refused_connection_gives_up_after_a_few_attempts(self) -> None:
        """Nothing listening at the base URL: the first call stops after a few attempts,
        not the run's usual eight."""
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        quick = RetryPolicy(base_delay=0.01, max_delay=0.01)
        closed = settings(base_url=f"http://127.0.0.1:{port}/v1", retry=quick)

        with structlog.testing.capture_logs() as logs, pytest.raises(ConnectError):
            await provision(manifest_of(many_rows(3)), closed)

        # Each first read (GET /people/me, and supportedDevices beside it) gives up
        # after the quick attempts; the refusal raised is people/me's.
        attempts = Counter(e["path"] for e in logs if e["event"] == "api_call_finished")
        assert attempts["/v1/people/me"] == FIRST_CALL_ATTEMPTS < quick.max_attempts
        assert max(attempts.values()) == FIRST_CALL_ATTEMPTS

    def test_first_call_policy_is_never_looser(self) -> None:
        """The first call's policy caps the run's policy and keeps tighter bounds."""
        default = first_call_policy(RetryPolicy())
        tight = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.02)

        assert default.max_attempts == FIRST_CALL_ATTEMPTS
        assert default.max_total <= 5.0
        assert first_call_policy(tight) == replace(tight, max_total=default.max_total)

    async def test_missing_catalogue_does_not_stop_a_run(self) -> None:
        """A 404 on supportedDevices only skips the model check; rows still run."""
        api = fake()
        api.fail_before("supported_devices", NotFoundError("no such path", status=404))

        result = await provision(manifest_of(many_rows(3)), settings(), api=api)

        assert {o.status for o in result.outcomes.values()} == {Status.CREATED}

    async def test_logs_name_rows_but_never_codes(self) -> None:
        """row_started/row_finished carry the row and status; no activation code is logged."""
        api = fake()
        with structlog.testing.capture_logs(
            processors=[structlog.contextvars.merge_contextvars]
        ) as logs:
            result = await provision(
                manifest_of([code_row(2, "ws-1")]), settings(), api=api
            )

        finished = [e for e in logs if e["event"] == "row_finished"]
        assert [(e["row"], e["status"]) for e in finished] == [(2, "code_issued")]
        code = result.outcomes[2].activation_code or "?"
        assert all(code not in repr(e) for e in logs)

    async def test_each_rows_events_name_that_row_only(self) -> None:
        """One worker, rows one after another: each row's events carry its own row
        and MAC (a code row's, none), never those of the row before it."""
        api = fake()
        rows = [mac_row(2, "ws-1"), code_row(3, "ws-2"), mac_row(4, "ws-3")]
        with structlog.testing.capture_logs(
            processors=[structlog.contextvars.merge_contextvars]
        ) as logs:
            await provision(manifest_of(rows), settings(concurrency=1), api=api)

        named = [
            (e["event"], e.get("row"), e.get("mac"))
            for e in logs
            if e["event"] in ("row_started", "row_finished", "run_finished")
        ]
        assert named == [
            ("row_started", 2, mac_of(2)),
            ("row_finished", 2, mac_of(2)),
            ("row_started", 3, None),
            ("row_finished", 3, None),
            ("row_started", 4, mac_of(4)),
            ("row_finished", 4, mac_of(4)),
            ("run_finished", None, None),
        ]


class TestConcurrency:
    async def test_one_create_per_owner_at_a_time(self) -> None:
        """Creates and codes for one owner never overlap, while owners run in parallel."""
        api = fake()
        api.yields = 3
        rows = many_rows(40, WORKSPACES[:3]) + [
            code_row(n, "ws-1") for n in range(50, 56)
        ]

        result = await provision(manifest_of(rows), settings(concurrency=8), api=api)

        assert all(o.status.is_ok for o in result.outcomes.values())
        assert api.max_owner_writes == 1
        assert api.max_in_flight > 1

    async def test_concurrency_cap_is_honoured(self) -> None:
        """No more rows are in flight than Settings.concurrency."""
        api = fake()
        api.yields = 3

        await provision(manifest_of(many_rows(40)), settings(concurrency=3), api=api)

        assert api.max_in_flight == 3


class TestUnknownOutcomes:
    async def test_create_that_happened_is_not_repeated(self) -> None:
        """A create whose answer was lost is found by MAC and reported created, once."""
        api = fake()
        api.fail_after("create_device", unknown_outcome(), when=mac_of(2))

        result = await provision(manifest_of([mac_row(2, "ws-1")]), settings(), api=api)

        assert result.outcomes[2].status == Status.CREATED
        assert api.count("create_device") == 1
        assert len(api.devices) == 1
        assert next(iter(api.devices.values())).tags == ("lobby",)

    async def test_lost_answer_for_a_device_there_before_is_adopted(self) -> None:
        """A create of a MAC registered before the run, whose answer was lost, finds
        the old device: adopted, not created, so a rollback never deletes it."""
        api = fake()
        earlier = "2020-01-01T00:00:00.000Z"
        old = api.add_device(mac=mac_of(2), workspace_id="ws-1", created=earlier)
        api.fail_before("create_device", unknown_outcome(), when=mac_of(2))

        result = await provision(manifest_of([mac_row(2, "ws-1")]), settings(), api=api)

        assert result.outcomes[2].status == Status.ADOPTED
        assert result.outcomes[2].device_id == old.id
        assert list(api.devices) == [old.id]

    async def test_create_that_did_not_happen_is_sent_again(self) -> None:
        """A create that failed before taking effect is looked up, then sent again."""
        api = fake()
        api.fail_before("create_device", unknown_outcome(), when=mac_of(2))

        result = await provision(manifest_of([mac_row(2, "ws-1")]), settings(), api=api)

        assert result.outcomes[2].status == Status.CREATED
        assert api.count("create_device") == 2
        assert api.count("find_device_by_mac") == 1
        assert len(api.devices) == 1

    async def test_creates_are_bounded(self) -> None:
        """A create that never gets an answer fails the row after MAX_CREATES tries."""
        api = fake()
        for _ in range(MAX_CREATES + 2):
            api.fail_before("create_device", unknown_outcome("gateway timeout"))

        result = await provision(manifest_of([mac_row(2, "ws-1")]), settings(), api=api)

        outcome = result.outcomes[2]
        assert outcome.status == Status.FAILED
        assert api.count("create_device") == MAX_CREATES
        assert (outcome.error or "").startswith("create device: gateway timeout")
        assert (outcome.http_status, outcome.tracking_id) == (502, "FAKE_502")


class TestRerunOfALostCreate:
    """A row whose every create lost its answer may have a device: its rerun looks
    the MAC up first, and a device made while the earlier run ran is the rollout's
    own (created: a rollback deletes it), one made outside it someone else's."""

    async def first_run(self, api: FakeDevicesApi) -> tuple[Outcome, datetime]:
        """The earlier run, an hour ago: the row failed, its device was made."""
        for _ in range(MAX_CREATES - 1):
            api.fail_before("create_device", unknown_outcome("gateway timeout"))
        # The last try takes effect, and its answer is lost too.
        api.fail_after("create_device", unknown_outcome("connection dropped"))
        first = await provision(manifest_of([mac_row(2, "ws-1")]), settings(), api=api)
        outcome = first.outcomes[2]
        assert outcome.status == Status.FAILED
        ((device_id, device),) = api.devices.items()
        made = datetime.now(UTC) - timedelta(hours=1)
        stamp = made.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        api.devices[device_id] = replace(device, created=stamp)
        return outcome, made

    async def rerun(
        self, api: FakeDevicesApi, failed: Outcome, earlier: tuple[Any, ...]
    ) -> Outcome:
        again = await provision(
            manifest_of([mac_row(2, "ws-1")]),
            settings(),
            api=api,
            previous={2: failed},
            only_rows=frozenset({2}),
            earlier=earlier,
        )
        return again.outcomes[2]

    async def test_a_device_made_while_the_earlier_run_ran_is_created(self) -> None:
        api = fake()
        failed, made = await self.first_run(api)
        creates = api.count("create_device")
        span = (made - timedelta(minutes=1), made + timedelta(minutes=1))

        outcome = await self.rerun(api, failed, (span,))

        assert outcome.status == Status.CREATED
        assert api.count("create_device") == creates  # looked up, never re-sent
        assert len(api.devices) == 1

    @pytest.mark.parametrize("known", [False, True], ids=["no history", "other span"])
    async def test_a_device_made_outside_the_earlier_runs_is_adopted(
        self, known: bool
    ) -> None:
        """Made at no time a command of the rollout ran (or with no history to say
        when they ran), the device may be someone else's: not claimed, so a rollback
        keeps it."""
        api = fake()
        failed, made = await self.first_run(api)
        span = (made - timedelta(hours=3), made - timedelta(hours=2))

        outcome = await self.rerun(api, failed, (span,) if known else ())

        assert outcome.status == Status.ADOPTED
        assert api.count("find_device_by_mac") >= 1


class TestRerunOfARowInvalidNow:
    """A rerun cannot run a row that is invalid now (a third-party row: the report
    masks its password), but the rerun's report must still say the rollout created
    its device, or a rollback of that report leaves the device behind."""

    async def reports(self, api: FakeDevicesApi, tmp_path: Path) -> tuple[Path, Path]:
        """The first run's report (the row created its device, then its tags
        failed) and its rerun's, both written and read back as files."""
        row = replace(
            mac_row(2, "ws-1"), model="Polycom VVX 411", password="Sup3rSecret!"
        )
        api.fail_before("modify_tags", ServerError("bad gateway", status=502))
        first = await provision(manifest_of([row]), settings(), api=api)
        assert made_by_run(first.outcomes[2])
        report = tmp_path / "site-report.csv"
        write_report(manifest_of([row]), first.outcomes, [report], first.stats)
        manifest, previous = load_report(report)
        assert not manifest.rows[0].is_valid  # the password came back masked
        again = await provision(
            manifest,
            settings(),
            api=api,
            previous=previous,
            only_rows=rows_to_rerun(previous),
        )
        rerun = tmp_path / "site-report-rerun.csv"
        write_report(manifest, again.outcomes, [rerun], again.stats)
        return report, rerun

    async def test_the_rerun_keeps_the_device_the_run_created(
        self, tmp_path: Path
    ) -> None:
        """The previous failed outcome stands, with the row's problem added: the
        same report can be fixed and rerun, and still names the device."""
        api = fake()
        report, rerun = await self.reports(api, tmp_path)

        _, before = load_report(report)
        _, after = load_report(rerun)

        outcome = after[2]
        assert outcome.status is Status.FAILED
        assert outcome.device_id == before[2].device_id
        assert outcome.device_id in api.devices
        assert made_by_run(outcome)
        assert "password was masked" in (outcome.error or "")
        assert rows_to_rerun(after) == {2}
        manifest, _ = load_report(rerun)
        third = await provision(
            manifest, settings(), api=api, previous=after, only_rows=frozenset({2})
        )
        assert third.outcomes[2] == outcome  # its problem said once, not twice

    async def test_a_code_the_row_holds_stays_in_the_rerun_report(self) -> None:
        """A code row the rerun takes again (its tags waited for activation) whose
        cells are invalid now keeps its code in the report: a code dropped from the
        report is lost, its pending device left to no row."""
        api = fake()
        issued = Outcome(
            row=2,
            status=Status.CODE_ISSUED,
            activation_code="1234567812345678",
            activation_expiry="2026-12-29T09:00:00Z",
            tags_deferred=True,
        )
        broken = replace(code_row(2, "ws-1", tags=("lobby",)), model=None)
        broken = replace(
            broken,
            problems=(Problem(column="model", value="Toaster", message="unknown"),),
        )

        again = await provision(
            manifest_of([broken]),
            settings(),
            api=api,
            previous={2: issued},
            only_rows=frozenset({2}),
        )

        outcome = again.outcomes[2]
        assert outcome.activation_code == issued.activation_code
        assert outcome.status is Status.CODE_ISSUED
        assert "not rerun, the row is invalid now" in (outcome.error or "")
        assert api.count("create_activation_code") == 0

    async def test_a_rollback_of_the_rerun_report_deletes_it(
        self, tmp_path: Path
    ) -> None:
        """Before: the row turned invalid without its device id, and the rollback
        skipped it ("the run made nothing"), leaving the device in the org."""
        api = fake()
        _, rerun = await self.reports(api, tmp_path)
        manifest, outcomes = load_report(rerun)

        rolled = await roll_back(manifest, outcomes, settings(), api=api)

        assert rolled.results[2].status.value == "deleted"
        assert api.devices == {}


class TestMacInUse:
    async def test_same_owner_is_adopted(self) -> None:
        """A MAC already registered to the row's owner is adopted and tagged (add = union)."""
        api = fake()
        existing = api.add_device(mac=mac_of(2), workspace_id="ws-1", tags=("old",))

        result = await provision(manifest_of([mac_row(2, "ws-1")]), settings(), api=api)

        assert result.outcomes[2].status == Status.ADOPTED
        assert existing.id == result.outcomes[2].device_id
        assert api.devices[existing.id].tags == ("old", "lobby")

    async def test_replace_mode_sets_exactly_the_rows_tags(self) -> None:
        """With tag_mode replace, an adopted device ends with exactly the row's tags."""
        api = fake()
        existing = api.add_device(mac=mac_of(2), workspace_id="ws-1", tags=("old",))

        await provision(
            manifest_of([mac_row(2, "ws-1")]),
            settings(tag_mode=TagMode.REPLACE),
            api=api,
        )

        assert api.devices[existing.id].tags == ("lobby",)

    async def test_other_owner_fails_naming_the_owner(self) -> None:
        """A MAC registered to another workspace fails the row and says whose it is."""
        api = fake()
        api.add_device(mac=mac_of(2), workspace_id="ws-7")

        result = await provision(manifest_of([mac_row(2, "ws-1")]), settings(), api=api)

        outcome = result.outcomes[2]
        assert outcome.status == Status.FAILED
        assert "workspace ws-7" in (outcome.error or "")
        assert api.count("modify_tags") == 0

    async def test_mac_in_use_elsewhere_fails_with_a_hint(self) -> None:
        """A MAC in use but invisible (another org) fails with the API's status."""
        api = fake()
        api.fail_before(
            "create_device", MacInUseError("MAC in use", status=400, tracking_id="T1")
        )

        result = await provision(manifest_of([mac_row(2, "ws-1")]), settings(), api=api)

        outcome = result.outcomes[2]
        assert (
            outcome.status,
            outcome.http_status,
            outcome.tracking_id,
        ) == (Status.FAILED, 400, "T1")
        assert "another organisation" in (outcome.error or "")


class TestFailures:
    async def test_failed_tags_keep_the_device(self) -> None:
        """A row failing at tags is failed, names the step, and keeps its device id."""
        api = fake()
        api.fail_before(
            "modify_tags", ServerError("bad gateway", status=502, tracking_id="T9")
        )

        result = await provision(manifest_of([mac_row(2, "ws-1")]), settings(), api=api)

        outcome = result.outcomes[2]
        assert outcome.status == Status.FAILED
        # The error says the run made the device: a rollback of the report removes it.
        assert (outcome.error or "").startswith(
            "apply tags to the device this run created: bad gateway"
        )
        assert (outcome.http_status, outcome.tracking_id) == (502, "T9")
        assert outcome.device_id in api.devices

    async def test_failed_tags_on_a_found_device_do_not_claim_it(self) -> None:
        """A device that was there before keeps the plain step: not the run's own."""
        api = fake()
        api.add_device(mac=mac_of(2), workspace_id="ws-1", product="DMS Cisco 8851")
        api.fail_before("modify_tags", ServerError("bad gateway", status=502))

        result = await provision(manifest_of([mac_row(2, "ws-1")]), settings(), api=api)

        outcome = result.outcomes[2]
        assert outcome.status == Status.FAILED
        assert (outcome.error or "").startswith("apply tags: bad gateway")

    async def test_rerun_of_failed_tags_sends_no_create(self) -> None:
        """Rerunning a row that failed at tags finds its device and only tags it."""
        api = fake()
        api.fail_before("modify_tags", ServerError("bad gateway", status=502))
        manifest = manifest_of([mac_row(2, "ws-1")])
        first = await provision(manifest, settings(), api=api)

        second = await provision(
            manifest,
            settings(),
            api=api,
            previous=first.outcomes,
            only_rows=frozenset({2}),
        )

        # The device is still the one the first run created, not a found one.
        assert second.outcomes[2].status == Status.CREATED
        assert first.outcomes[2].device_id == second.outcomes[2].device_id
        assert api.count("create_device") == 1
        assert api.devices[second.outcomes[2].device_id or ""].tags == ("lobby",)

    async def test_unknown_owner_fails_the_create(self) -> None:
        """A 404 on create is a failed row with a hint to check the owner column."""
        api = fake()

        result = await provision(
            manifest_of([mac_row(2, "ws-99")]), settings(), api=api
        )

        assert "check the row's workspaceId or personId" in (
            result.outcomes[2].error or ""
        )


class TestActivationCodes:
    async def test_tags_go_on_the_pending_device(self) -> None:
        """A code row's tags are applied to the pending device the code made."""
        api = fake()

        result = await provision(
            manifest_of([code_row(2, "ws-1", ("desk",))]), settings(), api=api
        )

        outcome = result.outcomes[2]
        assert (outcome.status, outcome.tags_deferred) == (Status.CODE_ISSUED, False)
        assert api.devices[outcome.device_id or ""].tags == ("desk",)

    async def test_unfindable_device_defers_tags_until_a_rerun(self) -> None:
        """A code whose device the API cannot show yet (404 by its id) leaves the tags
        waiting with the device id kept; the rerun after activation, fed the first
        run's own outcomes, tags that device and issues no other code."""
        api = fake()
        api.fail_before("get_device", NotFoundError("device not found", status=404))
        manifest = manifest_of([code_row(2, "ws-1", ("desk",))])

        first = await provision(manifest, settings(), api=api)
        outcome = first.outcomes[2]
        activated = api.activate(outcome.device_id or "", "00AABBCCDDEE")
        second = await provision(
            manifest,
            settings(),
            api=api,
            previous=first.outcomes,
            only_rows=frozenset({2}),
        )

        again = second.outcomes[2]
        assert (outcome.status, outcome.tags_deferred) == (Status.CODE_ISSUED, True)
        assert outcome.device_id == activated.id
        assert outcome.error is None
        assert api.count("create_activation_code") == 1
        assert (again.status, again.tags_deferred) == (Status.CODE_ISSUED, False)
        assert (again.device_id, again.activation_code) == (
            activated.id,
            outcome.activation_code,
        )
        assert api.devices[activated.id].tags == ("desk",)

    @pytest.mark.parametrize(
        "ahead",
        [timedelta(), -timedelta(minutes=10), timedelta(days=32)],
        ids=["clocks agree", "the API's clock behind", "the API's clock ahead"],
    )
    async def test_lost_code_is_issued_again(self, ahead: timedelta) -> None:
        """A code whose answer was lost is issued again; the row gets the new one,
        and the lost code's device is found (by its stamp since the row started)
        and deleted, whichever way this machine's clock is off the API's."""
        api = fake()
        api.clock_ahead = ahead
        api.fail_after("create_activation_code", unknown_outcome())

        result = await provision(
            manifest_of([code_row(2, "ws-1")]), settings(), api=api
        )

        outcome = result.outcomes[2]
        assert outcome.status == Status.CODE_ISSUED
        assert api.count("create_activation_code") == 2
        assert outcome.device_id == "dev-2"
        assert list(api.devices) == ["dev-2"]  # the lost code's device is gone


def pending_ids(api: FakeDevicesApi, owner: str) -> set[str]:
    return {
        d.id
        for d in api.devices.values()
        if d.owner_id == owner and not d.mac and d.connection_status == "activating"
    }


async def crash_at_code(
    api: FakeDevicesApi, manifest: Manifest, journal_path: Path, nth: int
) -> None:
    """
    Run until the ``nth`` activation code took effect, then stop dead (as a SIGKILL
    would, before the journal records the code).
    """

    def crash(op: str, key: str | None) -> None:
        if op == "create_activation_code" and api.count(op) == nth:
            scope.cancel()

    api.on_effect = crash
    with anyio.CancelScope() as scope:
        await provision(
            manifest, settings(concurrency=1), api=api, journal_path=journal_path
        )
    api.on_effect = None


class TestLostCodes:
    async def test_resumed_code_row_replaces_its_lost_device(
        self, tmp_path: Path
    ) -> None:
        """A code row caught mid-flight gets a fresh code on resume, and the device of the
        code nobody saw is deleted; its owner's other code rows keep theirs."""
        api = fake()
        rows = [code_row(n, "ws-1") for n in (2, 3, 4)] + [code_row(5, "ws-2")]
        manifest = manifest_of(rows)
        journal_path = tmp_path / "r.journal.sqlite"
        # Longest first with one worker: ws-1's rows 2, 3, 4, then ws-2's row 5; the
        # third code is row 4's.
        await crash_at_code(api, manifest, journal_path, nth=3)
        lost = "dev-3"
        with reopen(journal_path, manifest) as journal:
            caught = journal.entries()[4].phase

        result = await provision(
            manifest, settings(), api=api, journal_path=journal_path
        )

        outcomes = result.outcomes
        assert caught == Phase.STARTED
        assert {o.status for o in outcomes.values()} == {Status.CODE_ISSUED}
        assert lost not in api.devices
        assert outcomes[2].device_id == "dev-1"
        assert pending_ids(api, "ws-1") == {outcomes[n].device_id for n in (2, 3, 4)}
        assert len(api.devices) == 4
        assert api.count("delete_device") == 1

    async def test_resume_without_device_ids_still_removes_the_lost_device(
        self, tmp_path: Path
    ) -> None:
        """An API that answers a code without its device id: the lost device goes too."""
        api = fake()
        api.code_has_device_id = False
        manifest = manifest_of([code_row(2, "ws-1")])
        journal_path = tmp_path / "r.journal.sqlite"
        await crash_at_code(api, manifest, journal_path, nth=1)

        result = await provision(
            manifest, settings(), api=api, journal_path=journal_path
        )

        assert result.outcomes[2].status == Status.CODE_ISSUED
        assert "dev-1" not in api.devices
        assert len(pending_ids(api, "ws-1")) == 1

    async def test_a_sibling_without_device_id_is_never_deleted(
        self, tmp_path: Path
    ) -> None:
        """When the owner's other code row holds a code but no device id, nothing is
        deleted: its device cannot be told from the lost one."""
        api = fake()
        api.code_has_device_id = False
        # Made by someone else at the same moment (another model, so not an earlier
        # code of these rows): row 2's device cannot be told from it, so row 2 keeps
        # its code without a device id.
        foreign = api.add_device(
            workspace_id="ws-1", connection_status="activating", product="Cisco 8865"
        )
        manifest = manifest_of([code_row(2, "ws-1"), code_row(3, "ws-1")])
        journal_path = tmp_path / "r.journal.sqlite"
        await crash_at_code(api, manifest, journal_path, nth=2)

        result = await provision(
            manifest, settings(), api=api, journal_path=journal_path
        )

        assert {o.status for o in result.outcomes.values()} == {Status.CODE_ISSUED}
        assert result.outcomes[2].device_id is None
        assert api.count("delete_device") == 0
        assert {foreign.id, "dev-2", "dev-3"} <= set(api.devices)

    async def test_a_sibling_whose_device_was_told_keeps_it(
        self, tmp_path: Path
    ) -> None:
        """Codes answered without a device id: each is matched to its own pending
        device when issued, so a resumed sibling's lost device is told apart and
        deleted while row 2's stays."""
        api = fake()
        api.code_has_device_id = False
        manifest = manifest_of([code_row(2, "ws-1"), code_row(3, "ws-1")])
        journal_path = tmp_path / "r.journal.sqlite"
        await crash_at_code(api, manifest, journal_path, nth=2)

        result = await provision(
            manifest, settings(), api=api, journal_path=journal_path
        )

        ids = {n: o.device_id for n, o in result.outcomes.items()}
        assert ids[2] == "dev-1"
        assert ids[3] not in (None, "dev-1", "dev-2")
        assert "dev-2" not in api.devices  # the lost code's device
        assert pending_ids(api, "ws-1") == {"dev-1", ids[3]}

    async def test_lost_answers_for_one_owner_leave_one_device_per_row(self) -> None:
        """Two code rows of one owner in parallel, one answer lost: each row claims its
        own device and only the lost one is deleted."""
        api = fake()
        api.fail_after("create_activation_code", unknown_outcome(), when="ws-1")
        rows = [code_row(2, "ws-1"), code_row(3, "ws-1"), code_row(4, "ws-2")]

        result = await provision(manifest_of(rows), settings(concurrency=3), api=api)

        ids = {n: o.device_id for n, o in result.outcomes.items()}
        assert pending_ids(api, "ws-1") == {ids[2], ids[3]}
        assert len({ids[2], ids[3]}) == 2
        assert api.count("delete_device") == 1
        assert api.max_owner_writes == 1

    async def test_devices_older_than_the_row_are_kept(self) -> None:
        """A pending device made before the row started is someone else's: kept."""
        api = fake()
        older = api.add_device(
            workspace_id="ws-1",
            product="Cisco 8865",  # another model: not an earlier code of this row
            connection_status="activating",
            created="2020-01-01T00:00:00.000Z",
        )
        api.fail_after("create_activation_code", unknown_outcome())

        result = await provision(
            manifest_of([code_row(2, "ws-1")]), settings(), api=api
        )

        assert result.outcomes[2].status == Status.CODE_ISSUED
        assert pending_ids(api, "ws-1") == {older.id, result.outcomes[2].device_id}

    async def test_failure_that_may_have_issued_a_code_leaves_no_device(self) -> None:
        """A code call that failed after taking effect fails the row and leaves nothing."""
        api = fake()
        api.fail_after("create_activation_code", ServerError("bad gateway", status=502))

        result = await provision(
            manifest_of([code_row(2, "ws-1")]), settings(), api=api
        )

        outcome = result.outcomes[2]
        assert outcome.status == Status.FAILED
        assert (outcome.error or "").startswith("issue activation code:")
        assert api.devices == {}

    async def test_dry_run_deletes_nothing(self) -> None:
        """A dry run of a code row never looks for lost devices, let alone deletes one."""
        api = fake()
        api.add_device(workspace_id="ws-1", connection_status="activating")

        result = await provision(
            manifest_of([code_row(2, "ws-1")]), settings(dry_run=True), api=api
        )

        assert result.outcomes[2].status == Status.PLANNED
        assert api.writes == []
        assert len(api.devices) == 1


class TestCodesAcrossRuns:
    """A code row never gets a second code behind a person's back, and a replaced
    code never stays valid: one pending device per code row, whatever is run twice."""

    ROWS = (2, 3, 4)

    def manifest(self) -> Manifest:
        # Two rows for one owner, one for another; the first row has tags.
        return manifest_of(
            [code_row(2, "ws-1", ("lobby",)), code_row(3, "ws-1"), code_row(4, "ws-2")]
        )

    def pending(self, api: FakeDevicesApi) -> set[str]:
        return pending_ids(api, "ws-1") | pending_ids(api, "ws-2")

    @pytest.mark.parametrize(
        "ahead",
        [timedelta(), timedelta(days=32), -timedelta(hours=1)],
        ids=["clocks agree", "the API's clock ahead", "the API's clock behind"],
    )
    async def test_the_same_sheet_with_a_new_report_issues_no_second_code(
        self, tmp_path: Path, ahead: timedelta
    ) -> None:
        """Run twice into two journals: the second run's code rows are code_pending,
        each naming its own earlier device; the org still holds one per row. The
        devices' stamps are the API's clock, and so are the run's own times: a
        skewed clock here (or the emulator's moved one) changes nothing."""
        api = fake()
        api.clock_ahead = ahead
        first = await provision(
            self.manifest(), settings(), api=api, journal_path=tmp_path / "a.sqlite"
        )
        first_devices = {first.outcomes[n].device_id for n in self.ROWS}

        second = await provision(
            self.manifest(), settings(), api=api, journal_path=tmp_path / "b.sqlite"
        )

        outcomes = [second.outcomes[n] for n in self.ROWS]
        assert {o.status for o in outcomes} == {Status.CODE_PENDING}
        assert {o.device_id for o in outcomes} == first_devices
        assert "--reissue-codes" in (outcomes[0].error or "")
        assert api.count("create_activation_code") == 3
        assert self.pending(api) == first_devices

    async def test_reissue_codes_voids_the_earlier_ones(self, tmp_path: Path) -> None:
        """--reissue-codes gives each row a new code and deletes the earlier pending
        device: still one per row, and the summary counts the voided codes."""
        api = fake()
        first = await provision(
            self.manifest(), settings(), api=api, journal_path=tmp_path / "a.sqlite"
        )

        second = await provision(
            self.manifest(),
            settings(reissue_codes=True),
            api=api,
            journal_path=tmp_path / "b.sqlite",
        )

        new = {second.outcomes[n].device_id for n in self.ROWS}
        old = {first.outcomes[n].device_id for n in self.ROWS}
        assert {second.outcomes[n].status for n in self.ROWS} == {Status.CODE_ISSUED}
        assert new.isdisjoint(old)
        assert self.pending(api) == new
        assert second.stats.codes_voided == 3

    async def test_fresh_voids_the_codes_it_replaces(self, tmp_path: Path) -> None:
        """run, then run --fresh into the same journal: new codes, the replaced
        pending devices deleted, one pending device per code row."""
        api = fake()
        journal = tmp_path / "r.sqlite"
        first = await provision(
            self.manifest(), settings(), api=api, journal_path=journal
        )

        second = await provision(
            self.manifest(), settings(), api=api, journal_path=journal, fresh=True
        )

        new = {second.outcomes[n].device_id for n in self.ROWS}
        assert new.isdisjoint(first.outcomes[n].device_id for n in self.ROWS)
        assert self.pending(api) == new
        assert second.stats.codes_voided == 3

    async def test_fresh_keeps_a_replaced_code_that_was_used(
        self, tmp_path: Path
    ) -> None:
        """A code typed into its device before --fresh voids it: that device stays
        and the row is adopted, with no new code."""
        api = fake()
        journal = tmp_path / "r.sqlite"
        first = await provision(
            self.manifest(), settings(), api=api, journal_path=journal
        )
        used = first.outcomes[3].device_id or ""
        api.activate(used, "00AABBCCDD03")

        second = await provision(
            self.manifest(), settings(), api=api, journal_path=journal, fresh=True
        )

        assert (second.outcomes[3].status, second.outcomes[3].device_id) == (
            Status.ADOPTED,
            used,
        )
        assert used in api.devices
        assert second.stats.codes_voided == 2
        assert api.count("create_activation_code") == 3 + 2

    async def test_more_rows_than_earlier_codes_get_codes(self, tmp_path: Path) -> None:
        """An owner with one earlier code and two rows: one row points at it, the
        other gets a code."""
        api = fake()
        await provision(
            manifest_of([code_row(2, "ws-1")]),
            settings(),
            api=api,
            journal_path=tmp_path / "a.sqlite",
        )

        second = await provision(
            manifest_of([code_row(2, "ws-1"), code_row(3, "ws-1")]),
            settings(),
            api=api,
            journal_path=tmp_path / "b.sqlite",
        )

        assert sorted(o.status for o in second.outcomes.values()) == sorted(
            [Status.CODE_PENDING, Status.CODE_ISSUED]
        )
        assert len(pending_ids(api, "ws-1")) == 2

    async def test_a_dry_run_says_which_rows_would_be_code_pending(
        self, tmp_path: Path
    ) -> None:
        """The dry run tells the owner's earlier code apart, one row per device."""
        api = fake()
        await provision(
            manifest_of([code_row(2, "ws-1")]),
            settings(),
            api=api,
            journal_path=tmp_path / "a.sqlite",
        )

        planned = await provision(
            manifest_of([code_row(2, "ws-1"), code_row(3, "ws-1")]),
            settings(dry_run=True),
            api=api,
        )

        texts = sorted(o.plan or "" for o in planned.outcomes.values())
        assert "would issue an activation code" in texts[0]
        assert "code_pending" in texts[1]


class TestDryRun:
    async def test_dry_run_makes_no_write_call(self) -> None:
        """A dry run reads only, plans every row, and marks the rows the live checks
        flag (a MAC held by another owner, a missing owner) invalid."""
        api = fake()
        api.add_device(mac=mac_of(3), workspace_id="ws-7")
        api.add_device(mac=mac_of(4), workspace_id="ws-1")
        rows = [
            mac_row(2, "ws-1"),
            mac_row(3, "ws-1"),
            mac_row(4, "ws-1"),
            code_row(5, "ws-1"),
            mac_row(6, "ws-99"),
        ]

        result = await provision(manifest_of(rows), settings(dry_run=True), api=api)

        statuses = [result.outcomes[n].status for n in range(2, 7)]
        assert api.writes == []
        assert statuses == [
            Status.PLANNED,
            Status.INVALID,
            Status.PLANNED,
            Status.PLANNED,
            Status.INVALID,
        ]
        assert "would create" in (result.outcomes[2].plan or "")
        assert "would adopt" in (result.outcomes[4].plan or "")
        assert (result.outcomes[2].error, result.outcomes[4].error) == (None, None)
        assert "ws-7" in (result.outcomes[3].error or "")
        # Each distinct owner once: ws-1 and ws-99 of the rows, ws-7 holding row 3's MAC.
        assert api.count("get_workspace") == 3
        assert result.stats.dry_run is True


class TestResume:
    async def test_stop_then_run_again_finishes_once(self, tmp_path: Path) -> None:
        """Stopping mid-run returns interrupted; the same command again finishes the rest."""
        api = fake()
        manifest = manifest_of(many_rows(30))
        journal = tmp_path / "r.journal.sqlite"
        stop = anyio.Event()

        def stop_after_ten(progress: Progress) -> None:
            if progress.done >= 10:
                stop.set()

        first = await provision(
            manifest,
            settings(concurrency=4),
            api=api,
            journal_path=journal,
            on_progress=stop_after_ten,
            stop=stop,
        )
        second = await provision(manifest, settings(), api=api, journal_path=journal)

        assert first.interrupted is True
        assert 10 <= len(first.outcomes) < 30
        assert second.interrupted is False
        assert {Status.CREATED} == {o.status for o in second.outcomes.values()}
        assert (
            30 == len(second.outcomes) == len(api.devices) == api.count("create_device")
        )

    async def test_crash_mid_flight_is_reconciled(self, tmp_path: Path) -> None:
        """A run cancelled right after a create took effect continues without a duplicate."""
        api = fake()
        manifest = manifest_of(many_rows(30))
        journal_path = tmp_path / "r.journal.sqlite"
        result: RunResult | None = None
        crashed: list[str] = []

        def crash_after_twelfth_create(op: str, mac: str | None) -> None:
            if op == "create_device" and api.count(op) == 12 and mac is not None:
                crashed.append(mac)
                scope.cancel()

        api.on_effect = crash_after_twelfth_create
        with anyio.CancelScope() as scope:
            result = await provision(
                manifest, settings(concurrency=4), api=api, journal_path=journal_path
            )
        api.on_effect = None
        with reopen(journal_path, manifest) as journal:
            caught = {n: e.phase for n, e in journal.entries().items()}
        row_caught = int(crashed[0], 16) - 0x00AABB000000
        second = await provision(
            manifest, settings(), api=api, journal_path=journal_path
        )

        assert result is None
        assert caught[row_caught] == Phase.STARTED
        assert second.outcomes[row_caught].status == Status.CREATED
        assert 30 == len(second.outcomes) == len(api.devices)
        assert all(o.status is Status.CREATED for o in second.outcomes.values())
        macs = [d.mac for d in api.devices.values()]
        assert len(macs) == len(set(macs))
        assert all(d.tags == ("lobby",) for d in api.devices.values())

    async def test_abandon_returns_every_row_and_leaves_flight_open(
        self, tmp_path: Path
    ) -> None:
        """A second Ctrl-C (``abandon``) cancels the rows in flight yet still returns
        the run, so its report is written: those rows are not_started, their journal
        entries still open; the same command again makes each device once."""
        api = fake()
        manifest = manifest_of(many_rows(30))
        journal_path = tmp_path / "r.journal.sqlite"
        stop, abandon = anyio.Event(), anyio.Event()
        caught: list[str] = []

        def abandon_after_twelfth_create(op: str, mac: str | None) -> None:
            if op == "create_device" and api.count(op) == 12 and mac is not None:
                caught.append(mac)
                stop.set()
                abandon.set()

        api.on_effect = abandon_after_twelfth_create
        first = await provision(
            manifest,
            settings(concurrency=4),
            api=api,
            journal_path=journal_path,
            stop=stop,
            abandon=abandon,
        )
        api.on_effect = None
        with reopen(journal_path, manifest) as journal:
            phases = {n: e.phase for n, e in journal.entries().items()}
        row_caught = int(caught[0], 16) - 0x00AABB000000
        second = await provision(
            manifest, settings(), api=api, journal_path=journal_path
        )

        assert first.interrupted is True
        assert row_caught in first.abandoned
        assert first.outcomes[row_caught].status is Status.NOT_STARTED
        assert "abandoned in flight" in (first.outcomes[row_caught].error or "")
        assert all(
            first.outcomes[n].status is Status.NOT_STARTED for n in first.abandoned
        )
        assert all(phases[n] is Phase.STARTED for n in first.abandoned)
        assert second.outcomes[row_caught].status == Status.CREATED
        assert 30 == len(second.outcomes) == len(api.devices)
        assert all(o.status is Status.CREATED for o in second.outcomes.values())
        macs = [d.mac for d in api.devices.values()]
        assert len(macs) == len(set(macs))

    async def test_marks_a_kill_loses_are_made_again_without_a_duplicate(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A kill drops the journal marks still waiting for a commit (only starts and
        codes are committed at once): the rows they belonged to are resumed from
        their last committed phase, once each, tags exact."""
        api = fake()
        manifest = manifest_of(many_rows(30))
        journal_path = tmp_path / "r.journal.sqlite"

        def kill_after_twentieth_create(op: str, mac: str | None) -> None:
            if op == "create_device" and api.count(op) == 20:
                scope.cancel()

        def killed(journal: Journal) -> None:
            # A SIGKILL closes nothing: the waiting marks are gone, not committed;
            # the journal's lock goes with the process, its file stays.
            journal._db.close()
            if journal._lock is not None:
                os.close(journal._lock)

        monkeypatch.setattr(Journal, "close", killed)
        api.on_effect = kill_after_twentieth_create
        with anyio.CancelScope() as scope:
            await provision(
                manifest, settings(concurrency=4), api=api, journal_path=journal_path
            )
        api.on_effect = None
        monkeypatch.undo()
        with reopen(journal_path, manifest) as journal:
            kept = {n: e.phase for n, e in journal.entries().items()}
        second = await provision(
            manifest, settings(), api=api, journal_path=journal_path
        )

        assert any(phase is not Phase.DONE for phase in kept.values())
        assert 30 == len(second.outcomes) == len(api.devices)
        assert all(o.status is Status.CREATED for o in second.outcomes.values())
        macs = [d.mac for d in api.devices.values()]
        assert len(macs) == len(set(macs))
        assert all(d.tags == ("lobby",) for d in api.devices.values())

    async def test_token_refused_mid_run_stops_and_the_same_run_continues(
        self, tmp_path: Path
    ) -> None:
        """A token refused (401) after rows ran stops new rows instead of failing
        them all; with the token back, the same run does the rest, once each."""
        api = fake()
        manifest = manifest_of(many_rows(30))
        journal = tmp_path / "r.journal.sqlite"

        def revoke_after_eight_creates(op: str, _key: str | None) -> None:
            if op != "supported_devices" and api.count("create_device") >= 8:
                raise AuthError("The token has expired.", status=401, tracking_id="T")

        api.on_call = revoke_after_eight_creates
        first = await provision(
            manifest, settings(concurrency=4), api=api, journal_path=journal
        )
        refused = {n for n, o in first.outcomes.items() if o.status is Status.FAILED}
        with reopen(journal, manifest) as opened:
            done = {n for n, e in opened.entries().items() if e.phase is Phase.DONE}
        api.on_call = None
        second = await provision(manifest, settings(), api=api, journal_path=journal)

        assert (first.token_refused, first.interrupted) == (True, True)
        assert 1 <= len(refused) <= 4  # only rows in flight met the refusal
        assert len(first.outcomes) < 30  # the rest never started
        assert done.isdisjoint(refused)
        assert {o.status for o in second.outcomes.values()} == {Status.CREATED}
        assert 30 == len(second.outcomes) == len(api.devices)
        assert second.token_refused is False

    async def test_an_api_that_stops_answering_stops_the_run_and_the_same_run_goes_on(
        self, tmp_path: Path
    ) -> None:
        """Once rows in a row get no answer at all (the API stopped, the network
        dropped), no more rows start, instead of every row failing after all its
        retries; none of those rows is journalled done, so the same run, the API
        back, does every row once."""
        api = fake()
        manifest = manifest_of(many_rows(40))
        journal = tmp_path / "r.journal.sqlite"

        def gone_after_eight_creates(op: str, _key: str | None) -> None:
            if op != "supported_devices" and api.count("create_device") >= 8:
                raise ConnectError("could not connect to the API")

        api.on_call = gone_after_eight_creates
        first = await provision(
            manifest, settings(concurrency=2), api=api, journal_path=journal
        )
        unanswered = {n for n, o in first.outcomes.items() if o.status is Status.FAILED}
        with reopen(journal, manifest) as opened:
            done = {n for n, e in opened.entries().items() if e.phase is Phase.DONE}
        api.on_call = None
        second = await provision(manifest, settings(), api=api, journal_path=journal)

        assert (first.api_unanswered, first.interrupted) == (True, True)
        assert plan.UNANSWERED_ROWS <= len(unanswered) <= plan.UNANSWERED_ROWS + 1
        assert len(first.outcomes) < 40  # the rest never started
        assert done.isdisjoint(unanswered)
        assert {o.status for o in second.outcomes.values()} == {Status.CREATED}
        assert 40 == len(second.outcomes) == len(api.devices)
        assert second.api_unanswered is False

    async def test_a_dry_run_stops_too_when_the_api_stops_answering(
        self, tmp_path: Path
    ) -> None:
        """A dry run's reads that get no answer stop it as they stop a run, rather
        than its every row failing after all its retries."""
        api = fake()
        manifest = manifest_of(many_rows(40))

        def gone_after_the_first_reads(op: str, _key: str | None) -> None:
            if op not in ("supported_devices", "get_me") and len(api.calls) > 12:
                raise ConnectError("could not connect to the API")

        api.on_call = gone_after_the_first_reads
        result = await provision(
            manifest, settings(concurrency=2, dry_run=True), api=api
        )

        assert (result.api_unanswered, result.interrupted) == (True, True)
        assert len(result.outcomes) < 40

    async def test_a_row_the_api_answers_breaks_the_streak(
        self, tmp_path: Path
    ) -> None:
        """Rows that got no answer, each followed by one the API answered, never
        stop the run: a flaky network is not a gone API."""
        api = fake()
        manifest = manifest_of(many_rows(12))
        failing = {row.mac for row in manifest.rows[::2]}

        def every_other_row_unanswered(op: str, key: str | None) -> None:
            if op == "create_device" and key in failing:
                raise ConnectError("could not connect to the API")

        api.on_call = every_other_row_unanswered
        result = await provision(manifest, settings(concurrency=1), api=api)

        assert result.api_unanswered is False
        assert len(result.outcomes) == 12
        statuses = [result.outcomes[row.number].status for row in manifest.rows]
        assert statuses == [Status.FAILED, Status.CREATED] * 6

    async def test_finished_rows_are_not_redone(self, tmp_path: Path) -> None:
        """A second run over a finished journal makes no row call at all."""
        api = fake()
        manifest = manifest_of(many_rows(5))
        journal = tmp_path / "r.journal.sqlite"
        first = await provision(manifest, settings(), api=api, journal_path=journal)
        calls = len(api.calls)

        second = await provision(manifest, settings(), api=api, journal_path=journal)

        assert first.outcomes == second.outcomes
        assert calls + 3 == len(api.calls)  # only the first calls

    async def test_journal_holds_no_password(
        self, start_emulator: Any, tmp_path: Path
    ) -> None:
        """A row's device password never reaches the journal file, even when the
        API's refusal quotes the request body that carried it."""
        server = await start_emulator(echo_request_body=True)
        row = replace(
            mac_row(2, "ws-missing"), model="Polycom VVX 411", password="Sup3rSecret!"
        )
        journal = tmp_path / "r.journal.sqlite"

        result = await provision(
            manifest_of([row]), emulator_settings(server), journal_path=journal
        )

        files = read_folder(tmp_path)
        # The create carried the password, and the refusal quoted it back.
        assert '"password": "[redacted]"' in (result.outcomes[2].error or "")
        assert b"Request body:" in files  # the refusal was journalled...
        assert b"Sup3rSecret!" not in files  # ...without the password
        assert server.token.encode() not in files

    @pytest.mark.parametrize(
        "other",
        [
            {"org_id": "org-other"},
            {"tag_mode": TagMode.REPLACE},
            {"base_url": "http://127.0.0.1:2/v1"},
        ],
    )
    async def test_journal_of_another_target_is_refused(
        self, tmp_path: Path, other: dict[str, Any]
    ) -> None:
        """A journal written for another org, tag mode or API is never continued: a
        ConfigError names both targets and the ways forward, and no row call is made."""
        api = fake()
        journal = tmp_path / "r.journal.sqlite"
        manifest = manifest_of(many_rows(2))
        await provision(manifest, settings(), api=api, journal_path=journal)
        writes = len(api.writes)

        with pytest.raises(ConfigError) as refused:
            await provision(manifest, settings(**other), api=api, journal_path=journal)

        text = str(refused.value)
        assert "--fresh" in text
        assert "another --report" in text
        assert "org-fake" in text  # the journal's own target is named
        assert len(api.writes) == writes

    async def test_an_edited_manifest_continues_the_run(self, tmp_path: Path) -> None:
        """Rows are matched by what they are: rows added, re-ordered or re-numbered
        continue the run; done rows are not redone, a changed row is looked at again."""
        api = fake()
        journal = tmp_path / "r.journal.sqlite"
        first_rows = [mac_row(n, WORKSPACES[n % 8]) for n in range(2, 6)] + [
            code_row(6, "ws-1"),
            code_row(7, "ws-1"),
        ]
        first = await provision(
            manifest_of(first_rows), settings(), api=api, journal_path=journal
        )
        codes = {first.outcomes[n].activation_code for n in (6, 7)}
        # Edited: a new row on top (every number moves), rows reversed, one MAC row's
        # tags changed, and one row more at the end.
        moved = [replace(row, number=row.number + 1) for row in reversed(first_rows)]
        moved[-1] = replace(moved[-1], tags=("lobby", "floor-2"))
        edited = [mac_row(30, "ws-8"), *moved, mac_row(40, "ws-7")]
        edited = [replace(row, number=n) for n, row in enumerate(edited, start=2)]
        creates_before = api.count("create_device")

        second = await provision(
            manifest_of(edited), settings(), api=api, journal_path=journal
        )

        code_outcomes = [o for o in second.outcomes.values() if o.activation_code]
        assert api.count("create_device") == creates_before + 2  # the two new rows
        assert api.count("create_activation_code") == 2  # no second code
        assert {o.activation_code for o in code_outcomes} == codes
        assert {o.status for o in second.outcomes.values()} <= {
            Status.CREATED,
            Status.CODE_ISSUED,
        }
        assert api.devices[second.outcomes[8].device_id or ""].tags == (
            "lobby",
            "floor-2",
        )

    async def test_rerun_keeps_rows_outside_only_rows(self) -> None:
        """Rows not selected for a rerun keep their previous outcome and make no call."""
        api = fake()
        kept = Outcome(row=2, status=Status.CREATED, device_id="dev-old", attempts=1)
        previous = {2: kept, 3: Outcome(row=3, status=Status.FAILED, error="x")}

        result = await provision(
            manifest_of(many_rows(2)),
            settings(),
            api=api,
            previous=previous,
            only_rows=frozenset({3}),
        )

        assert kept == result.outcomes[2]
        assert result.outcomes[3].status == Status.CREATED
        assert api.count("create_device") == 1


# -- against the emulator ------------------------------------------------------------

ORG = json.loads(
    (Path(provisioner.__file__).parent / "emulator" / "data" / "org.json").read_text()
)
ORG_WORKSPACES = [w["id"] for w in ORG["workspaces"]]
ORG_PEOPLE = [p["id"] for p in ORG["people"]]
FAST_RETRY = RetryPolicy(
    max_attempts=12,
    base_delay=0.005,
    max_delay=0.05,
    max_total=60.0,
    retry_after_cap=0.05,
    retry_after_default=0.05,
)


def org_rows(count: int, *, tags_of: int = 3, start: int = 2) -> list[Row]:
    """
    MAC rows over the seeded org's workspaces and people, each with its own tags.
    """
    rows = []
    owners = ORG_WORKSPACES + ORG_PEOPLE
    for number in range(start, start + count):
        owner = owners[number % len(owners)]
        is_workspace = owner in ORG_WORKSPACES
        rows.append(
            Row(
                number=number,
                cells=(mac_of(number), "DMS Cisco 8851", owner),
                mac=mac_of(number),
                model="DMS Cisco 8851",
                workspace_id=owner if is_workspace else None,
                person_id=None if is_workspace else owner,
                tags=tuple(f"t{number}-{k}" for k in range(number % tags_of)),
            )
        )
    return rows


def org_code_rows(count: int, *, owners: int = 5, start: int = 2) -> list[Row]:
    """
    Activation-code rows over a few of the seeded org's workspaces, several per owner.
    """
    return [
        code_row(number, ORG_WORKSPACES[number % owners])
        for number in range(start, start + count)
    ]


def emulator_settings(server: RunningEmulator, **changes: object) -> Settings:
    return replace(
        Settings(
            token=server.token,
            base_url=server.base_url,
            concurrency=8,
            request_timeout=5.0,
            retry=FAST_RETRY,
            rate=RateControl(initial_rate=200.0),
        ),
        **changes,  # type: ignore[arg-type]
    )


CREATE_ROUTE = "POST /v1/devices"
LIST_ROUTE = "GET /v1/devices"


def assert_no_blind_create(server: RunningEmulator) -> None:
    """
    What the emulator received: per MAC, a create is sent again only after a lookup
    answered that no device has the MAC, or after a 429 (which the API never
    processed). Counting devices cannot show this: the API itself refuses a second
    device with a MAC, and the engine then adopts the first.
    """
    story: dict[str, list[dict[str, Any]]] = {}
    for entry in server.requests():
        if entry["mac"] and entry["route"] in (CREATE_ROUTE, LIST_ROUTE):
            story.setdefault(entry["mac"], []).append(entry)
    assert story, "no create or lookup by MAC was received: nothing was checked"
    for mac, entries in story.items():
        may_create = True  # nothing was sent for this MAC yet
        for entry in entries:
            if entry["route"] == CREATE_ROUTE:
                assert may_create, (
                    f"{mac}: create #{entry['seq']} was sent again without a lookup "
                    "showing no device"
                )
                may_create = entry["status"] in (423, 429)
            elif entry["status"] == 200 and entry["items"] == 0:
                may_create = True


def assert_emulator_holds_exactly(server: RunningEmulator, rows: list[Row]) -> None:
    """
    The admin view: one device per MAC row, with its owner and exactly its tags; and
    no create was ever replayed blind.
    """
    assert_no_blind_create(server)
    devices = [r for r in server.state.store.devices.values() if r.mac]
    by_mac = {r.mac: r for r in devices}
    assert len(by_mac) == len(devices)  # no MAC twice
    assert set(by_mac) == {row.mac for row in rows}
    for row in rows:
        record = by_mac[row.mac]
        assert record.owner_id == row.owner_id
        assert tuple(record.wire.get("tags", [])) == row.tags


KILLED_CHILD = """
import sys
from pathlib import Path

import anyio
import structlog

structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(50))
sys.path.insert(0, sys.argv[1])
sys.path.insert(0, str(Path(sys.argv[1]).parent))  # fakes, paths
from test_engine import (
    FAST_RETRY, RateControl, Settings, manifest_of, org_code_rows, org_rows,
)
from provisioner.run.engine import provision


def show(progress):
    print(f"done={progress.done}", flush=True)


settings = Settings(
    token=sys.argv[3], base_url=sys.argv[2], concurrency=4, retry=FAST_RETRY,
    rate=RateControl(initial_rate=200.0),
)
rows = org_rows(40) if sys.argv[5] == "mac" else org_code_rows(20)
anyio.run(
    lambda: provision(
        manifest_of(rows), settings, journal_path=Path(sys.argv[4]),
        on_progress=show,
    )
)
"""


class TestAgainstEmulator:
    async def test_clean_run(self, emulator: RunningEmulator) -> None:
        """Every MAC row is created with its tags; code rows get codes and tags."""
        rows = org_rows(30)
        codes = [code_row(n, ORG_WORKSPACES[n], ("desk",)) for n in range(40, 43)]

        result = await provision(manifest_of(rows + codes), emulator_settings(emulator))

        statuses = {o.status for n, o in result.outcomes.items() if n < 40}
        assert statuses == {Status.CREATED}
        for n in range(40, 43):
            outcome = result.outcomes[n]
            assert (outcome.status, outcome.tags_deferred) == (
                Status.CODE_ISSUED,
                False,
            )
            record = emulator.state.store.devices[outcome.device_id or ""]
            assert record.wire["tags"] == ["desk"]
        assert_emulator_holds_exactly(emulator, rows)
        assert result.stats.api_calls >= len(rows)

    async def test_faults_end_in_exactly_one_device_per_row(
        self, start_emulator: Any
    ) -> None:
        """Under 429s, 5xx, drops and ambiguous creates every row ends once, tagged."""
        server = await start_emulator(
            seed=11,
            rate_limit=300.0,
            burst=20,
            fault_rate=0.10,
            drop_rate=0.05,
            ambiguous_rate=0.03,
        )
        rows = org_rows(150)

        result = await provision(manifest_of(rows), emulator_settings(server))

        failed = {n: o.error for n, o in result.outcomes.items() if not o.status.is_ok}
        assert failed == {}
        assert {o.status for o in result.outcomes.values()} <= {
            Status.CREATED,
            Status.ADOPTED,
        }
        assert_emulator_holds_exactly(server, rows)
        stats = server.stats()
        assert stats["dropped_total"] + stats["server_errors_injected"] > 0

    async def test_stop_and_run_again(
        self, emulator: RunningEmulator, tmp_path: Path
    ) -> None:
        """A run stopped mid-way and run again ends as one clean run would."""
        rows = org_rows(40)
        manifest = manifest_of(rows)
        journal = tmp_path / "x.journal.sqlite"
        stop = anyio.Event()

        def stop_at_fifteen(progress: Progress) -> None:
            if progress.done >= 15:
                stop.set()

        first = await provision(
            manifest,
            emulator_settings(emulator),
            journal_path=journal,
            on_progress=stop_at_fifteen,
            stop=stop,
        )
        second = await provision(
            manifest, emulator_settings(emulator), journal_path=journal
        )

        assert first.interrupted
        assert len(first.outcomes) < len(rows)
        assert {o.status for o in second.outcomes.values()} == {Status.CREATED}
        assert_emulator_holds_exactly(emulator, rows)

    async def test_crash_and_run_again(
        self, start_emulator: Any, tmp_path: Path
    ) -> None:
        """A run cancelled mid-flight (a crash) and run again leaves no duplicate."""
        server = await start_emulator(latency_ms=5.0, ambiguous_rate=0.05, seed=3)
        rows = org_rows(40)
        manifest = manifest_of(rows)
        journal = tmp_path / "x.journal.sqlite"

        with anyio.CancelScope() as scope:

            def crash_at_twelve(progress: Progress) -> None:
                if progress.done >= 12:
                    scope.cancel()

            await provision(
                manifest,
                emulator_settings(server),
                journal_path=journal,
                on_progress=crash_at_twelve,
            )
        second = await provision(
            manifest, emulator_settings(server), journal_path=journal
        )

        assert {o.status for o in second.outcomes.values()} <= {
            Status.CREATED,
            Status.ADOPTED,
        }
        assert_emulator_holds_exactly(server, rows)

    async def test_killed_process_and_run_again(
        self, start_emulator: Any, tmp_path: Path
    ) -> None:
        """A run whose process is SIGKILLed mid-way continues from its journal, once."""
        server = await start_emulator(latency_ms=10.0)
        journal = tmp_path / "x.journal.sqlite"
        script = tmp_path / "child.py"
        script.write_text(KILLED_CHILD)
        tests_dir = str(Path(__file__).parent)
        args = [sys.executable, str(script), tests_dir, server.base_url, server.token]
        args += [str(journal), "mac"]
        done = 0
        async with await anyio.open_process(args, stderr=subprocess.DEVNULL) as child:
            assert child.stdout is not None
            async for chunk in child.stdout:
                done = max(
                    [done, *(int(w[5:]) for w in chunk.split() if w[:5] == b"done=")]
                )
                if done >= 10:
                    child.kill()
                    break
            await child.wait()
        rows = org_rows(40)

        second = await provision(
            manifest_of(rows), emulator_settings(server), journal_path=journal
        )

        assert 10 <= done < 40
        assert {o.status for o in second.outcomes.values()} <= {
            Status.CREATED,
            Status.ADOPTED,
        }
        assert_emulator_holds_exactly(server, rows)

    async def test_killed_mid_code_leaves_one_pending_device_per_code_row(
        self, start_emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A run SIGKILLed the moment the API has issued a code (its answer never
        arrives) continues from its journal: afterwards every code row holds one
        pending device, and the lost code's device is gone."""
        server = await start_emulator(latency_ms=5.0)
        store = server.state.store
        issue = store.create_activation_code
        journal = tmp_path / "x.journal.sqlite"
        script = tmp_path / "child.py"
        script.write_text(KILLED_CHILD)
        tests_dir = str(Path(__file__).parent)
        args = [sys.executable, str(script), tests_dir, server.base_url, server.token]
        args += [str(journal), "code"]
        lost: list[str] = []
        async with await anyio.open_process(args, stderr=subprocess.DEVNULL) as child:

            def issue_then_kill(*given: Any) -> Any:
                record = issue(*given)
                if len(store.devices) == 7:
                    # The API has made the code and its device: the answer is lost.
                    child.kill()
                    lost.append(record.id)
                return record

            monkeypatch.setattr(store, "create_activation_code", issue_then_kill)
            await child.wait()
        monkeypatch.undo()
        rows = org_code_rows(20)

        second = await provision(
            manifest_of(rows), emulator_settings(server), journal_path=journal
        )

        ids = [o.device_id for o in second.outcomes.values()]
        codes = {o.activation_code for o in second.outcomes.values()}
        pending = {
            i
            for i, r in store.devices.items()
            if r.wire["connectionStatus"] == "activating"
        }
        assert len(lost) == 1
        assert {o.status for o in second.outcomes.values()} == {Status.CODE_ISSUED}
        assert len(second.outcomes) == 20
        assert lost[0] not in store.devices
        assert len(set(ids)) == len(codes) == 20
        assert set(ids) == pending == set(store.devices)
        for row in rows:
            record = store.devices[second.outcomes[row.number].device_id or ""]
            assert record.owner_id == row.workspace_id

    async def test_codes_without_device_ids_are_matched_to_their_devices(
        self, start_emulator: Any
    ) -> None:
        """An API that answers codes as documented (no device id): each code row is
        matched to the pending device its code made, under its owner's lock, and
        tagged there in the same run; no tags wait."""
        server = await start_emulator(activation_code_id=False)
        rows = [
            code_row(2, ORG_WORKSPACES[0], ("desk",)),
            code_row(3, ORG_WORKSPACES[0], ("pilot",)),
            code_row(4, ORG_WORKSPACES[1]),
        ]

        result = await provision(manifest_of(rows), emulator_settings(server))

        store = server.state.store
        by_code = {r.code: i for i, r in store.devices.items() if r.code}
        outcomes = [result.outcomes[n] for n in (2, 3, 4)]
        assert {(o.status, o.tags_deferred) for o in outcomes} == {
            (Status.CODE_ISSUED, False)
        }
        # Each row holds the device its own code made.
        assert [o.device_id for o in outcomes] == [
            by_code[o.activation_code or ""] for o in outcomes
        ]
        assert [store.devices[o.device_id or ""].wire["tags"] for o in outcomes] == [
            ["desk"],
            ["pilot"],
            [],
        ]

    async def test_deferred_tags_never_land_on_another_device(
        self, start_emulator: Any
    ) -> None:
        """A code answered without a device id while someone else's pending device
        appeared at the same moment: the tags wait, for real; after the row's device
        activates, a rerun keeps its code and tags neither device by guessing."""
        server = await start_emulator(activation_code_id=False)
        store = server.state.store
        owner = ORG_WORKSPACES[0]
        # Another model than the row's, so it is not an earlier code of the row.
        foreign = store.create_activation_code(
            {"workspaceId": owner, "model": "DMS Cisco 8865"},
            server.state.clock.now(),
            30,
        )
        manifest = manifest_of([code_row(2, owner, ("desk", "pilot"))])

        first = await provision(manifest, emulator_settings(server))
        issued = first.outcomes[2]
        (mine,) = (
            i for i, r in store.devices.items() if r.code == issued.activation_code
        )
        store.activate(mine, None, server.state.clock.now())
        second = await provision(
            manifest,
            emulator_settings(server),
            previous=first.outcomes,
            only_rows=frozenset({2}),
        )

        again = second.outcomes[2]
        posts = server.stats()["by_route"]["POST /v1/devices/activationCode"]
        assert (issued.status, issued.tags_deferred) == (Status.CODE_ISSUED, True)
        assert issued.device_id is None
        assert issued.error == UNTOLD_CODE_DEVICE
        assert (again.status, again.tags_deferred) == (Status.CODE_ISSUED, True)
        assert again.activation_code == issued.activation_code
        assert sum(posts.values()) == 1
        assert store.devices[mine].wire["connectionStatus"] == "connected"
        assert store.devices[mine].wire["tags"] == []
        assert store.devices[foreign.id].wire["tags"] == []

    async def test_dry_run_writes_nothing(self, emulator: RunningEmulator) -> None:
        """A dry run against the emulator makes no write call (validateMacs only reads)."""
        rows = org_rows(10)

        result = await provision(
            manifest_of(rows), emulator_settings(emulator, dry_run=True)
        )

        writes = [
            route
            for route in emulator.stats()["by_route"]
            if route.split()[0] in ("POST", "PATCH", "DELETE")
            and not route.endswith("/validateMacs/invoke")
        ]
        assert writes == []
        assert {o.status for o in result.outcomes.values()} == {Status.PLANNED}
        assert emulator.state.store.devices == {}

    async def test_resumed_code_row_leaves_one_device_per_row(
        self, emulator: RunningEmulator, tmp_path: Path
    ) -> None:
        """A code row killed after the API issued its code ends, on resume, with one
        pending device per code row: the lost code's device is deleted."""
        owner = ORG_WORKSPACES[0]
        rows = [code_row(n, owner) for n in (2, 3, 4)] + [
            code_row(5, ORG_WORKSPACES[1])
        ]
        manifest = manifest_of(rows)
        journal = tmp_path / "x.journal.sqlite"
        stop = anyio.Event()

        def stop_after_two(progress: Progress) -> None:
            if progress.done >= 2:
                stop.set()

        await provision(
            manifest,
            emulator_settings(emulator, concurrency=1),
            journal_path=journal,
            on_progress=stop_after_two,
            stop=stop,
        )
        # The kill: row 3 journalled as started, its code issued, the answer lost.
        with reopen(journal, manifest) as opened:
            opened.mark_started(3)
        store = emulator.state.store
        lost = store.create_activation_code(
            {"workspaceId": owner, "model": "DMS Cisco 8851"},
            emulator.state.clock.now(),
            30,
        )

        result = await provision(
            manifest, emulator_settings(emulator), journal_path=journal
        )

        ids = {n: o.device_id for n, o in result.outcomes.items()}
        assert {o.status for o in result.outcomes.values()} == {Status.CODE_ISSUED}
        assert lost.id not in store.devices
        assert set(store.devices) == set(ids.values())
        assert len(set(ids.values())) == 4
        assert all(
            store.devices[i or ""].wire["connectionStatus"] == "activating"
            for i in ids.values()
        )

    async def test_server_errors_on_the_first_call_get_the_usual_retries(
        self, emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """5xx answers to the first call outlast the quick attempts and the run goes on."""
        failing = FIRST_CALL_ATTEMPTS + 2
        rolls = itertools.count()
        roll = emulator.state.dice.roll

        def gateway_errors_first(knobs: Any) -> FaultDecision:
            return (
                FaultDecision(server_error=503)
                if next(rolls) < failing
                else roll(knobs)
            )

        monkeypatch.setattr(emulator.state.dice, "roll", gateway_errors_first)

        result = await provision(manifest_of(org_rows(2)), emulator_settings(emulator))

        stats = emulator.stats()
        assert {o.status for o in result.outcomes.values()} == {Status.CREATED}
        assert stats["server_errors_injected"] == failing
        assert result.stats.api_calls == stats["requests_total"]

    async def test_one_controller_paces_every_call_the_api_counts(
        self, emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """
        The first call's quick-retry client and the run's client share one rate
        limiter: the API's bucket counts the pre-flight calls too, and a controller
        that missed them learned a limit too low (about 3% under, measured).
        """
        seen = starts_by_limiter(monkeypatch)

        await provision(manifest_of(org_rows(3)), emulator_settings(emulator))

        assert list(seen.values()) == [emulator.stats()["requests_total"]]

    async def test_unknown_token_stops_the_run(self, emulator: RunningEmulator) -> None:
        """A token the API refuses raises AuthError before any row is sent."""
        settings_ = emulator_settings(emulator, token="not-a-real-token")

        with pytest.raises(AuthError):
            await provision(manifest_of(org_rows(3)), settings_)

        assert emulator.state.store.devices == {}


# -- a dry run reads the journal of the run it rehearses -------------------------------

CSV_HEADER = "mac,model,workspaceId,tags"
#: A dry run's words for what a real run would do, and the status that run reports.
PLANNED_AS = (
    ("would create the device", Status.CREATED),
    ("would adopt device", Status.ADOPTED),
    ("would issue an activation code", Status.CODE_ISSUED),
    ("and issue a new code", Status.CODE_ISSUED),
)


def write_csv(path: Path, *lines: str) -> Manifest:
    """A manifest file of ``lines`` under ``CSV_HEADER``, loaded as a run loads it."""
    path.write_text("\n".join([CSV_HEADER, *lines]) + "\n", encoding="utf-8")
    return load_manifest(path)


def journal_files(folder: Path) -> dict[str, bytes]:
    """The journal's files in ``folder`` (the journal, its -wal, -shm or lock)."""
    return {p.name: p.read_bytes() for p in folder.iterdir() if "journal" in p.name}


def predicted(outcome: Outcome) -> Status:
    """
    The status a dry run's outcome says a real run would report for the row.
    """
    if outcome.status is not Status.PLANNED:
        return outcome.status
    text = outcome.plan or ""
    for status in Status:
        if f"({status})" in text or f"ended it {status}" in text:
            return status
    for words, status in PLANNED_AS:
        if words in text:
            return status
    raise AssertionError(f"no status in the plan {text!r}")


class TestTheDryRunReadsTheRunsJournal:
    async def test_a_dry_run_after_a_run_predicts_the_next_run(
        self, emulator: RunningEmulator, tmp_path: Path
    ) -> None:
        """After a run, a dry run with its journal plans what the same run reports
        now: the rows it finished as they ended (not "would adopt", not
        code_pending), new rows as they would go; a second run then reports that."""
        ws = ORG_WORKSPACES
        journal = tmp_path / "site-report.journal.sqlite"
        first = [
            f"00AABB000002,Cisco 8851,{ws[0]},lobby",
            f"00AABB000003,Cisco 8851,{ws[1]},",
            f",Cisco 8865,{ws[2]},desk",
            f",Cisco 8865,{ws[3]},",
        ]
        await provision(
            write_csv(tmp_path / "site.csv", *first),
            emulator_settings(emulator),
            journal_path=journal,
        )
        written = journal_files(tmp_path)
        # The sheet grows: a new phone, and a second code row for an owner that
        # holds this run's code already.
        manifest = write_csv(
            tmp_path / "site.csv",
            *first,
            f"00AABB000006,Cisco 8851,{ws[4]},",
            f",Cisco 8865,{ws[2]},",
        )

        dry = await provision(
            manifest, emulator_settings(emulator, dry_run=True), journal_path=journal
        )
        read = journal_files(tmp_path)
        again = await provision(
            manifest, emulator_settings(emulator), journal_path=journal
        )

        assert {n: predicted(o) for n, o in dry.outcomes.items()} == {
            n: o.status for n, o in again.outcomes.items()
        }
        assert [again.outcomes[n].status for n in range(2, 8)] == [
            Status.CREATED,
            Status.CREATED,
            Status.CODE_ISSUED,
            Status.CODE_ISSUED,
            Status.CREATED,
            Status.CODE_ISSUED,
        ]
        # A dry run's report holds plans only: no device or code a rollback or a
        # later dry run could take for the run's.
        assert {o.status for o in dry.outcomes.values()} == {Status.PLANNED}
        assert {o.device_id for o in dry.outcomes.values()} == {None}
        assert {o.activation_code for o in dry.outcomes.values()} == {None}
        # Read only: the same file, byte for byte, and nothing beside it (no lock,
        # no -wal or -shm).
        assert read == written
        assert list(written) == [journal.name]

    async def test_a_dry_run_continues_rows_an_interrupted_run_left(
        self, tmp_path: Path
    ) -> None:
        """Rows a killed run left mid-way are planned as its resume reports them: a
        device its create made is the run's (created), a code it issued is kept
        (code_issued), not taken for an earlier run's (code_pending)."""
        api = FakeDevicesApi(workspaces={"ws-1", "ws-2", "ws-3"})
        journal = tmp_path / "r.journal.sqlite"
        lines = (
            "00AABB000002,Cisco 8851,ws-1,a",
            "00AABB000003,Cisco 8851,ws-2,b",
            ",Cisco 8865,ws-3,",
        )
        manifest = write_csv(tmp_path / "site.csv", *lines)
        await provision(
            write_csv(tmp_path / "first.csv", lines[1]),
            settings(),
            api=api,
            journal_path=journal,
        )
        # Killed after row 2's create and row 4's code went out; row 4's code was
        # journalled, row 2's device was not.
        with reopen(journal, manifest) as held:
            held.mark_started(2)
            held.mark_started(4)
            api.add_device(
                mac="00AABB000002", workspace_id="ws-1", product="Cisco 8851"
            )
            pending = api.add_device(
                workspace_id="ws-3",
                product="Cisco 8865",
                connection_status="activating",
            )
            held.mark_created(
                Outcome(
                    row=4,
                    status=Status.CODE_ISSUED,
                    device_id=pending.id,
                    activation_code="1234567890123456",
                    activation_expiry="2099-01-01T00:00:00.000Z",
                )
            )

        dry = await provision(
            manifest, settings(dry_run=True), api=api, journal_path=journal
        )
        resumed = await provision(manifest, settings(), api=api, journal_path=journal)

        assert {n: predicted(o) for n, o in dry.outcomes.items()} == {
            n: o.status for n, o in resumed.outcomes.items()
        }
        assert [resumed.outcomes[n].status for n in (2, 3, 4)] == [
            Status.CREATED,
            Status.CREATED,
            Status.CODE_ISSUED,
        ]
        assert "would take device" in (dry.outcomes[2].plan or "")
        assert "would keep the code" in (dry.outcomes[4].plan or "")
        assert api.count("create_activation_code") == 0

    async def test_a_dry_run_works_beside_a_run_that_holds_the_journal(
        self, tmp_path: Path
    ) -> None:
        """A dry run started while a run holds the journal reads what that run has
        committed and leaves the run's lock alone: the journal stays busy for any
        other run, and the holder goes on writing."""
        api = FakeDevicesApi(workspaces={"ws-1", "ws-2"})
        journal = tmp_path / "r.journal.sqlite"
        manifest = write_csv(
            tmp_path / "site.csv",
            "00AABB000002,Cisco 8851,ws-1,",
            "00AABB000003,Cisco 8851,ws-2,",
        )
        first = await provision(
            write_csv(tmp_path / "first.csv", "00AABB000002,Cisco 8851,ws-1,"),
            settings(),
            api=api,
            journal_path=journal,
        )
        target = Journal.target_of(journal)
        assert target is not None

        with Journal.open(journal, target, manifest.rows) as held:
            dry = await provision(
                manifest, settings(dry_run=True), api=api, journal_path=journal
            )
            with pytest.raises(JournalBusyError):
                Journal.open(journal, target, manifest.rows)
            held.mark_started(3)

        assert first.outcomes[2].status == Status.CREATED
        assert "ended it created" in (dry.outcomes[2].plan or "")
        assert "would create the device" in (dry.outcomes[3].plan or "")
        assert not (tmp_path / "r.journal.sqlite-lock").exists()

    async def test_a_journal_of_another_target_stops_the_dry_run_too(
        self, tmp_path: Path
    ) -> None:
        """A dry run says, as the run it rehearses would, that the journal belongs to
        another target; with --fresh it plans the start over."""
        api = FakeDevicesApi(workspaces={"ws-1"})
        journal = tmp_path / "r.journal.sqlite"
        manifest = write_csv(tmp_path / "site.csv", "00AABB000002,Cisco 8851,ws-1,")
        await provision(manifest, settings(), api=api, journal_path=journal)
        target = Journal.target_of(journal)
        writes = list(api.writes)
        replace_tags = settings(dry_run=True, tag_mode=TagMode.REPLACE)

        with pytest.raises(ConfigError, match="belongs to a run against"):
            await provision(manifest, replace_tags, api=api, journal_path=journal)
        fresh = await provision(
            manifest, replace_tags, api=api, journal_path=journal, fresh=True
        )

        assert "would adopt device" in (fresh.outcomes[2].plan or "")
        # The journal is still the run's: a dry run starts nothing over.
        assert Journal.target_of(journal) == target
        assert api.writes == writes

    async def test_a_row_the_run_failed_is_planned_as_it_ended_not_invalid(
        self, tmp_path: Path
    ) -> None:
        """Rows the run failed for what the dry run's live checks flag (a MAC another
        workspace holds, a workspace that does not exist) are planned as the run
        reports them again, failed: the run does not check a row it finished."""
        api = FakeDevicesApi(workspaces={"ws-1", "ws-7"})
        api.add_device(mac="00AABB000002", workspace_id="ws-7")
        journal = tmp_path / "r.journal.sqlite"
        manifest = write_csv(
            tmp_path / "site.csv",
            "00AABB000002,Cisco 8851,ws-1,",
            "00AABB000003,Cisco 8851,ws-99,",
        )
        await provision(manifest, settings(), api=api, journal_path=journal)

        dry = await provision(
            manifest, settings(dry_run=True), api=api, journal_path=journal
        )
        again = await provision(manifest, settings(), api=api, journal_path=journal)

        assert [again.outcomes[n].status for n in (2, 3)] == [Status.FAILED] * 2
        assert {n: predicted(o) for n, o in dry.outcomes.items()} == {
            n: o.status for n, o in again.outcomes.items()
        }
        assert "ended it failed; rerun that report" in (dry.outcomes[2].plan or "")
        assert api.count("create_device") == 2
