"""
Activation-code lifecycle: states with a moved clock, renewal and deferred tags.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

from provisioner.errors import ForbiddenError, NotFoundError, ServerError
from provisioner.live.code_rules import (
    CodeEntry,
    CodeState,
    code_state,
    is_activated,
    mask_code,
    match_devices,
    parse_within,
    refused_renewal,
    unchecked_entry,
    with_report_owners,
)
from provisioner.live.codes import inspect_codes, renew_codes
from provisioner.live.orgs import OrgAccess
from provisioner.models import (
    ActivationCode,
    Device,
    Manifest,
    OrgInfo,
    Outcome,
    Row,
    Status,
    TagMode,
    Target,
    utc_moment,
)
from provisioner.run.code_rows import code_renewer
from provisioner.run.journal import Journal
from provisioner.settings import Settings
from provisioner.webex.protocol import CallTally, MacState, Owner, SupportedModel

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
WS = "WS-1"


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def code_outcome(
    number: int,
    *,
    expires_in: timedelta,
    device_id: str | None = "DEV-1",
    tags_deferred: bool = False,
) -> Outcome:
    return Outcome(
        row=number,
        status=Status.CODE_ISSUED,
        device_id=device_id,
        activation_code="1234567812345678",
        activation_expiry=iso(NOW + expires_in),
        attempts=1,
        tags_deferred=tags_deferred,
    )


def pending_device(device_id: str = "DEV-1", **changes: object) -> Device:
    fields: dict[str, object] = {
        "id": device_id,
        "workspace_id": WS,
        "product": "Cisco 8875",
        "connection_status": "activating",
        "created": "2026-11-01T00:00:00.000Z",
    }
    fields.update(changes)
    return Device(**fields)  # type: ignore[arg-type]


class TestCodeState:
    """The pure state function, judged with a moved clock."""

    def test_pending_far_from_expiry(self) -> None:
        """A code with 20 days left and an unused device is pending."""
        outcome = code_outcome(2, expires_in=timedelta(days=20))

        assert code_state(outcome, pending_device(), NOW) == CodeState.PENDING

    def test_expiring_within_window(self) -> None:
        """A code with 3 days left is expiring under the default 7-day window."""
        outcome = code_outcome(2, expires_in=timedelta(days=3))

        assert code_state(outcome, pending_device(), NOW) == CodeState.EXPIRING

    def test_same_code_moves_with_the_clock(self) -> None:
        """One outcome is pending, then expiring, then expired as the clock moves."""
        outcome = code_outcome(2, expires_in=timedelta(days=20))
        device = pending_device()

        states = [
            code_state(outcome, device, NOW + timedelta(days=days))
            for days in (0, 14, 19, 20, 25)
        ]

        assert states == [
            CodeState.PENDING,
            CodeState.EXPIRING,
            CodeState.EXPIRING,
            CodeState.EXPIRED,
            CodeState.EXPIRED,
        ]

    def test_window_is_configurable(self) -> None:
        """With a 1-day window a code with 3 days left is still pending."""
        outcome = code_outcome(2, expires_in=timedelta(days=3))

        state = code_state(outcome, pending_device(), NOW, timedelta(days=1))

        assert state == CodeState.PENDING

    def test_activated_device_wins_over_expiry(self) -> None:
        """A device that has a MAC is activated, even after the code's expiry."""
        outcome = code_outcome(2, expires_in=-timedelta(days=5))
        device = pending_device(mac="AABBCCDDEEFF", connection_status="connected")

        assert code_state(outcome, device, NOW) == CodeState.ACTIVATED

    def test_connected_without_mac_is_activated(self) -> None:
        """A connected device counts as activated even when it reports no MAC."""
        device = pending_device(connection_status="connected")

        assert is_activated(device)

    def test_server_says_expired(self) -> None:
        """A device the server marks offline_expired is expired whatever our clock."""
        outcome = code_outcome(2, expires_in=timedelta(days=20))
        device = pending_device(connection_status="offline_expired")

        assert code_state(outcome, device, NOW) == CodeState.EXPIRED

    def test_missing_device_judged_by_expiry(self) -> None:
        """With no device found, the expiry alone decides."""
        outcome = code_outcome(2, expires_in=-timedelta(hours=1))

        assert code_state(outcome, None, NOW) == CodeState.EXPIRED

    @pytest.mark.parametrize("days", [-1, 3, 20])
    def test_a_deleted_device_is_gone_whatever_the_expiry(self, days: int) -> None:
        """A code whose device answered 404 no longer works: gone, not pending."""
        outcome = code_outcome(2, expires_in=timedelta(days=days))

        assert code_state(outcome, None, NOW, deleted=True) == CodeState.GONE


REFUSED = OrgAccess(
    info=OrgInfo(key="ORG2", id="ORG2", refused="the token may not act for this org"),
    error=ForbiddenError("not allowed", status=403, tracking_id="T-403"),
)


class TestRefusedRenewal:
    """A row of an org that refused the token: what --renew makes of it."""

    def entry(self, expires_in: timedelta) -> CodeEntry:
        outcome = code_outcome(2, expires_in=expires_in, device_id="OLD")
        return unchecked_entry(Row(number=2, cells=()), outcome, REFUSED)

    @pytest.mark.parametrize("days", [-1, 2])
    def test_a_code_due_fails_with_its_orgs_reason_and_keeps_its_code(
        self, days: int
    ) -> None:
        entry = self.entry(timedelta(days=days))

        failed = refused_renewal(entry, NOW)

        assert failed == replace(
            entry.outcome,
            status=Status.FAILED,
            error="check org: the token may not act for this org",
            http_status=403,
            tracking_id="T-403",
        )

    def test_a_code_the_report_gives_time_is_left_as_it_is(self) -> None:
        assert refused_renewal(self.entry(timedelta(days=20)), NOW) is None

    def test_a_row_of_an_org_that_may_be_acted_for_is_not_refused(self) -> None:
        outcome = code_outcome(2, expires_in=-timedelta(days=1))
        entry = CodeEntry(
            row=Row(number=2, cells=()),
            outcome=outcome,
            device=None,
            state=CodeState.EXPIRED,
            expiry=None,
        )

        assert refused_renewal(entry, NOW) is None


class TestParsing:
    """Windows, expiries and masking."""

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("7d", timedelta(days=7)),
            ("12h", timedelta(hours=12)),
            ("3", timedelta(days=3)),
            (" 2D ", timedelta(days=2)),
        ],
    )
    def test_parse_within(self, text: str, expected: timedelta) -> None:
        """Nd and Nh (and a bare number of days) are accepted."""
        assert expected == parse_within(text)

    @pytest.mark.parametrize("text", ["", "7w", "-1d", "soon"])
    def test_parse_within_rejects(self, text: str) -> None:
        """Anything else is refused with a message that shows the accepted form."""
        with pytest.raises(ValueError, match="e.g. 7d or 12h"):
            parse_within(text)

    def test_parse_expiry(self) -> None:
        """The API's ISO 8601 with milliseconds and Z reads as an aware time."""
        assert datetime(2026, 12, 26, 10, tzinfo=UTC) == utc_moment(
            "2026-12-26T10:00:00.000Z"
        )

    def test_parse_expiry_odd(self) -> None:
        """An unreadable expiry is None, not an exception."""
        assert utc_moment("next week") is None

    def test_mask_code(self) -> None:
        """Only the last four digits stay visible."""
        masked = mask_code("1234567812345678")

        assert masked == "••••••••••••5678"
        assert "1234" not in masked


class TestMatchDevices:
    """Pairing code rows that carry no device id with the owner's devices."""

    def test_pairs_by_model_oldest_first_skipping_claimed(self) -> None:
        """Each row takes the oldest free device of its model; claimed ones are skipped."""
        rows = [
            Row(number=2, cells=(), model="DMS Cisco 8875", workspace_id=WS),
            Row(number=3, cells=(), model="DMS Cisco 8851", workspace_id=WS),
        ]
        devices = [
            pending_device("NEW-8875", created="2026-11-03T00:00:00.000Z"),
            pending_device("OLD-8875", created="2026-11-01T00:00:00.000Z"),
            pending_device("CLAIMED", created="2026-10-01T00:00:00.000Z"),
            pending_device("A-8851", product="Cisco 8851"),
        ]

        paired = match_devices(rows, devices, frozenset({"CLAIMED"}))

        assert {n: d.id for n, d in paired.items()} == {2: "OLD-8875", 3: "A-8851"}

    def test_roomos_rows_pair_with_room_devices_only(self) -> None:
        """A RoomOS row's code names no model: it takes a roomdesk device, never a phone."""
        rows = [
            Row(
                number=2, cells=(), model="Cisco Room Kit", roomos=True, workspace_id=WS
            ),
            Row(number=3, cells=(), model="DMS Cisco 8875", workspace_id=WS),
        ]
        devices = [
            pending_device("PHONE", created="2026-10-01T00:00:00.000Z"),
            pending_device("ROOM", product="Cisco Room Device", type="roomdesk"),
        ]

        paired = match_devices(rows, devices, frozenset())

        assert {n: d.id for n, d in paired.items()} == {2: "ROOM", 3: "PHONE"}


class FakeApi:
    """A dict-backed stand-in for the few calls the codes lifecycle makes."""

    def __init__(self, devices: Sequence[Device] = ()) -> None:
        self.devices = {d.id: d for d in devices}
        self.calls: list[str] = []
        self.models: list[str | None] = []
        self.issued = 0
        self.fail_codes = False
        self.in_flight: dict[str, int] = {}
        self.max_in_flight: dict[str, int] = {}
        self.owners: list[Owner] = []

    @contextlib.contextmanager
    def tally(self) -> Iterator[CallTally]:
        """This fake counts calls in ``calls``, not per task."""
        yield CallTally()

    async def get_device(self, device_id: str, *, org_id: str | None = None) -> Device:
        self.calls.append(f"GET {device_id}")
        if device_id not in self.devices:
            raise NotFoundError("no such device", status=404)
        return self.devices[device_id]

    async def _listing(self, owner: str | None) -> AsyncIterator[Device]:
        for device in list(self.devices.values()):
            if owner in (device.workspace_id, device.person_id):
                yield device

    def list_devices(
        self, *, org_id: str | None = None, page_size: int | None = None, **f: str
    ) -> AsyncIterator[Device]:
        self.calls.append("LIST")
        return self._listing(f.get("workspace_id") or f.get("person_id"))

    async def create_activation_code(
        self,
        *,
        model: str | None,
        workspace_id: str | None = None,
        person_id: str | None = None,
        org_id: str | None = None,
    ) -> ActivationCode:
        self.calls.append("CODE")
        self.models.append(model)
        owner = workspace_id or person_id or ""
        self.in_flight[owner] = self.in_flight.get(owner, 0) + 1
        self.max_in_flight[owner] = max(
            self.max_in_flight.get(owner, 0), self.in_flight[owner]
        )
        await anyio.lowlevel.checkpoint()
        self.in_flight[owner] -= 1
        if self.fail_codes:
            raise ServerError("try later", status=503, tracking_id="T-503")
        self.issued += 1
        device_id = f"NEW-{self.issued}"
        self.devices[device_id] = pending_device(
            device_id, workspace_id=workspace_id, person_id=person_id
        )
        return ActivationCode(
            code=f"99999999000000{self.issued:02d}",
            expiry_time=iso(NOW + timedelta(days=30)),
            device_id=device_id,
        )

    async def modify_tags(
        self,
        device_id: str,
        *,
        mode: TagMode | str,
        tags: Sequence[str],
        org_id: str | None = None,
    ) -> Device:
        self.calls.append(f"PATCH {device_id} {mode} {','.join(tags)}")
        device = self.devices[device_id]
        self.devices[device_id] = Device(
            id=device.id,
            mac=device.mac,
            workspace_id=device.workspace_id,
            connection_status=device.connection_status,
            tags=tuple(tags),
        )
        return self.devices[device_id]

    async def delete_device(self, device_id: str, *, org_id: str | None = None) -> None:
        self.calls.append(f"DELETE {device_id}")
        del self.devices[device_id]

    async def create_device(self, **kwargs: object) -> Device:
        raise AssertionError("codes never creates by MAC")

    async def find_device_by_mac(
        self, mac: str, *, org_id: str | None = None
    ) -> Device | None:
        raise AssertionError("not used")

    async def supported_devices(
        self, *, org_id: str | None = None
    ) -> list[SupportedModel]:
        raise AssertionError("not used")

    async def validate_macs(
        self, macs: Sequence[str], *, org_id: str | None = None
    ) -> list[MacState]:
        raise AssertionError("not used")

    async def get_workspace(
        self, workspace_id: str, *, org_id: str | None = None
    ) -> Owner:
        raise AssertionError("not used")

    async def get_person(self, person_id: str, *, org_id: str | None = None) -> Owner:
        raise AssertionError("not used")

    async def find_people(
        self, email: str, *, org_id: str | None = None
    ) -> list[Owner]:
        self.calls.append(f"PEOPLE {email}")
        return [o for o in self.owners if email in o.emails]

    async def find_workspaces(
        self, display_name: str, *, org_id: str | None = None
    ) -> list[Owner]:
        self.calls.append(f"WORKSPACES {display_name}")
        return [o for o in self.owners if display_name in (o.display_name or "")]


async def renew(
    entries: Sequence[CodeEntry], api: FakeApi, journal: Journal | None = None
) -> dict[int, Outcome]:
    """Renew as ``codes --renew`` does: each code journalled (in memory here)."""
    settings = Settings(token="t", base_url="http://127.0.0.1:1/v1")
    with contextlib.ExitStack() as stack:
        if journal is None:
            rows = [entry.row for entry in entries]
            journal = stack.enter_context(
                Journal.open(None, Target(base_url=settings.base_url), rows)
            )
        renew_row = code_renewer(api, settings, journal, entries)
        return await renew_codes(entries, api, renew_row=renew_row)


def code_rows(count: int, tags: tuple[str, ...] = ()) -> Manifest:
    rows = tuple(
        Row(
            number=n,
            cells=("", "DMS Cisco 8875", WS),
            model="DMS Cisco 8875",
            workspace_id=WS,
            tags=tags,
        )
        for n in range(2, 2 + count)
    )
    return Manifest(
        path=Path("m.csv"),
        sheet=None,
        columns=("mac", "model", "workspaceId"),
        field_columns={"mac": "mac", "model": "model", "workspaceId": "workspaceId"},
        rows=rows,
    )


async def test_inspect_finds_devices_by_id_and_by_owner() -> None:
    """A code with a device id is looked up directly; one without is matched by owner."""
    manifest = code_rows(3)
    outcomes = {
        2: code_outcome(2, expires_in=timedelta(days=20), device_id="D2"),
        3: code_outcome(3, expires_in=timedelta(days=20), device_id=None),
        4: Outcome(row=4, status=Status.FAILED, error="issue activation code: boom"),
    }
    api = FakeApi(
        [
            pending_device("D2", mac="AABBCCDDEEFF", connection_status="connected"),
            pending_device("D3"),
        ]
    )

    entries = await inspect_codes(manifest, outcomes, api, now=NOW)

    assert [
        (e.row.number, e.state, e.device.id if e.device else None) for e in entries
    ] == [(2, CodeState.ACTIVATED, "D2"), (3, CodeState.PENDING, "D3")]


async def test_a_refused_orgs_rows_are_neither_read_nor_renewed() -> None:
    """Rows of an org that refused the token are unchecked, in report order, and
    no call is made for them, when inspected or renewed."""
    manifest = code_rows(3)
    outcomes = {
        n: code_outcome(n, expires_in=-timedelta(days=1), device_id=f"D{n}")
        for n in (2, 3, 4)
    }
    api = FakeApi([pending_device("D2"), pending_device("D3"), pending_device("D4")])

    entries = await inspect_codes(
        manifest, outcomes, api, now=NOW, refused={3: REFUSED}
    )
    updated = await renew(entries, api)

    assert [(e.row.number, e.state) for e in entries] == [
        (2, CodeState.EXPIRED),
        (3, CodeState.UNCHECKED),
        (4, CodeState.EXPIRED),
    ]
    assert entries[1].refused_org == REFUSED
    assert sorted(updated) == [2, 4]
    assert "D3" in api.devices
    assert not [call for call in api.calls if "D3" in call]
    assert api.issued == 2


async def test_a_code_whose_device_was_deleted_is_gone_and_not_renewed() -> None:
    """A code with time left whose device (by its id) answers 404 is gone, and
    --renew issues it no new code (a renewal that voided it holds its replacement;
    a rollback took it out); a code found by owner is judged as before."""
    manifest = code_rows(2)
    outcomes = {
        2: code_outcome(2, expires_in=timedelta(days=20), device_id="DELETED"),
        3: code_outcome(3, expires_in=timedelta(days=20), device_id=None),
    }
    api = FakeApi([pending_device("D3")])
    entries = await inspect_codes(manifest, outcomes, api, now=NOW)

    updated = await renew(entries, api)

    assert [(e.row.number, e.state) for e in entries] == [
        (2, CodeState.GONE),
        (3, CodeState.PENDING),
    ]
    assert 2 not in updated
    assert api.issued == 0
    assert "DELETE DELETED" not in api.calls


async def test_a_device_made_after_the_reports_commands_holds_none_of_its_codes() -> (
    None
):
    """A row matched by owner takes no device made after the report's last command
    (a renewal of the report made it, with the code that replaced this one): with
    none of its own left, its code is gone, and --renew issues it none."""
    manifest = code_rows(2)
    outcomes = {
        2: code_outcome(2, expires_in=timedelta(days=-1), device_id=None),
        3: code_outcome(3, expires_in=timedelta(days=-1), device_id=None),
    }
    ran = datetime(2026, 11, 1, 0, 5, tzinfo=UTC)
    own = pending_device("OWN", created="2026-11-01T00:00:00.000Z")
    later = pending_device("LATER", created="2026-11-20T00:00:00.000Z")
    api = FakeApi([own, later])

    entries = await inspect_codes(manifest, outcomes, api, now=NOW, made_by=ran)
    updated = await renew(entries, api)

    assert [(e.row.number, e.state, e.device) for e in entries] == [
        (2, CodeState.EXPIRED, own),
        (3, CodeState.GONE, None),
    ]
    assert sorted(updated) == [2]
    assert "LATER" in api.devices


async def test_a_failed_row_whose_code_stands_is_code_issued_again() -> None:
    """Rows an earlier step left failed (a refused org, tags that failed) whose code
    checks out, activated or pending and not due, get code_issued back with the
    error cleared and keep their code; tags their device lacks go on an activated
    device now and wait on a pending one."""
    manifest = code_rows(3, tags=("floor-3",))
    refused = {
        "status": Status.FAILED,
        "error": "check org: the token may not act for this org (HTTP 403: no)",
        "http_status": 403,
        "tracking_id": "T-403",
    }
    outcomes = {
        2: replace(
            code_outcome(2, expires_in=-timedelta(days=1), device_id="A"), **refused
        ),
        3: replace(
            code_outcome(3, expires_in=timedelta(days=20), device_id="P"), **refused
        ),
        4: replace(
            code_outcome(4, expires_in=timedelta(days=20), device_id="T"), **refused
        ),
    }
    api = FakeApi(
        [
            pending_device("A", mac="AABBCCDDEEFF", connection_status="connected"),
            pending_device("P"),
            pending_device("T", tags=("floor-3",)),
        ]
    )
    entries = await inspect_codes(manifest, outcomes, api, now=NOW)

    updated = await renew(entries, api)

    assert api.issued == 0
    cleared = (Status.CODE_ISSUED, None, None, None)
    assert {
        n: (o.status, o.error, o.http_status, o.tracking_id) for n, o in updated.items()
    } == dict.fromkeys((2, 3, 4), cleared)
    assert all(
        updated[n].activation_code == outcomes[n].activation_code for n in updated
    )
    assert api.devices["A"].tags == ("floor-3",)
    assert [updated[n].tags_deferred for n in (2, 3, 4)] == [False, True, False]
    assert set(api.devices) == {"A", "P", "T"}


async def test_renew_replaces_exactly_expired_and_expiring_pending_codes() -> None:
    """Only expired/expiring codes of unused devices get new codes; old devices go."""
    manifest = code_rows(4)
    outcomes = {
        2: code_outcome(2, expires_in=-timedelta(days=1), device_id="EXPIRED"),
        3: code_outcome(3, expires_in=timedelta(days=2), device_id="EXPIRING"),
        4: code_outcome(4, expires_in=timedelta(days=25), device_id="PENDING"),
        5: code_outcome(5, expires_in=-timedelta(days=1), device_id="USED"),
    }
    api = FakeApi(
        [
            pending_device("EXPIRED"),
            pending_device("EXPIRING"),
            pending_device("PENDING"),
            pending_device("USED", mac="001122334455", connection_status="connected"),
        ]
    )
    entries = await inspect_codes(manifest, outcomes, api, now=NOW)

    updated = await renew(entries, api)

    assert {2, 3} == set(updated)
    assert {"EXPIRING", "EXPIRED"}.isdisjoint(api.devices)
    assert {"PENDING", "USED"} <= set(api.devices)
    for number in (2, 3):
        new = updated[number]
        assert new.status == Status.CODE_ISSUED
        assert new.activation_code != outcomes[number].activation_code
        assert iso(NOW + timedelta(days=30)) == new.activation_expiry
        assert new.device_id is not None
        assert new.device_id.startswith("NEW-")


async def test_renewed_roomos_codes_name_no_model() -> None:
    """Renewing a RoomOS row's code asks for a code without a model, like the run."""
    room = Row(
        number=2,
        cells=("", "Cisco Room Kit", WS),
        model="Cisco Room Kit",
        roomos=True,
        workspace_id=WS,
    )
    manifest = replace(code_rows(2), rows=(room, code_rows(2).rows[1]))
    outcomes = {
        2: code_outcome(2, expires_in=-timedelta(days=1), device_id="ROOM"),
        3: code_outcome(3, expires_in=-timedelta(days=1), device_id="PHONE"),
    }
    api = FakeApi([pending_device("ROOM", type="roomdesk"), pending_device("PHONE")])
    entries = await inspect_codes(manifest, outcomes, api, now=NOW)

    await renew(entries, api)

    assert sorted(api.models, key=str) == ["DMS Cisco 8875", None]


async def test_deferred_tags_applied_after_activation() -> None:
    """A row whose tags waited gets them once its device has activated, no longer deferred."""
    manifest = code_rows(2, tags=("floor-3", "lobby"))
    outcomes = {
        2: code_outcome(2, expires_in=timedelta(days=20), tags_deferred=True),
        3: code_outcome(
            3, expires_in=timedelta(days=20), device_id="D3", tags_deferred=True
        ),
    }
    api = FakeApi(
        [
            pending_device(
                "DEV-1",
                mac="AABBCCDDEEFF",
                connection_status="connected",
                tags=("existing",),
            ),
            pending_device("D3"),
        ]
    )
    entries = await inspect_codes(manifest, outcomes, api, now=NOW)

    updated = await renew(entries, api)

    assert {2} == set(updated)
    assert not updated[2].tags_deferred
    assert api.devices["DEV-1"].tags == ("existing", "floor-3", "lobby")
    assert outcomes[2].activation_code == updated[2].activation_code
    assert api.devices["D3"].tags == ()


async def test_failed_renewal_keeps_the_old_device_and_names_the_step() -> None:
    """When the new code cannot be issued the row fails and the old device stays."""
    manifest = code_rows(1)
    outcomes = {2: code_outcome(2, expires_in=-timedelta(days=1), device_id="OLD")}
    api = FakeApi([pending_device("OLD")])
    api.fail_codes = True
    entries = await inspect_codes(manifest, outcomes, api, now=NOW)

    updated = await renew(entries, api)

    assert updated[2].status == Status.FAILED
    assert (updated[2].error or "").startswith("renew activation code: try later")
    assert updated[2].http_status == 503
    assert "OLD" in api.devices


async def test_renew_skips_device_that_activated_meanwhile() -> None:
    """If the old device activates between the look and the renewal it is not deleted."""
    manifest = code_rows(1)
    outcomes = {2: code_outcome(2, expires_in=-timedelta(days=1), device_id="OLD")}
    api = FakeApi([pending_device("OLD")])
    entries = await inspect_codes(manifest, outcomes, api, now=NOW)
    api.devices["OLD"] = pending_device("OLD", mac="AABBCCDDEEFF")

    await renew(entries, api)

    assert "OLD" in api.devices


def test_entry_needs_tags_only_when_activated() -> None:
    """Deferred tags are due only for an activated device."""
    row = Row(number=2, cells=(), tags=("a",))
    outcome = code_outcome(2, expires_in=timedelta(days=9), tags_deferred=True)

    due = [
        CodeEntry(
            row=row, outcome=outcome, device=None, state=s, expiry=None
        ).needs_tags
        for s in CodeState
    ]

    assert due == [True, False, False, False, False, False]


async def test_codes_for_one_owner_are_never_issued_at_once() -> None:
    """Renewals for the same owner run one after another, as Webex asks."""
    manifest = code_rows(4)
    outcomes = {
        n: code_outcome(n, expires_in=-timedelta(days=1), device_id=f"OLD-{n}")
        for n in range(2, 6)
    }
    api = FakeApi([pending_device(f"OLD-{n}") for n in range(2, 6)])
    entries = await inspect_codes(manifest, outcomes, api, now=NOW)

    updated = await renew(entries, api)

    assert len(updated) == 4
    assert api.issued == 4
    assert api.max_in_flight == {WS: 1}


def named_rows() -> Manifest:
    """Row 2 names its workspace by name, row 3 its person by email."""
    rows = (
        Row(
            number=2,
            cells=("", "DMS Cisco 8875", "Lobby", ""),
            model="DMS Cisco 8875",
            workspace_name="Lobby",
        ),
        Row(
            number=3,
            cells=("", "DMS Cisco 8875", "", "ann@x.example"),
            model="DMS Cisco 8875",
            person_email="ann@x.example",
        ),
    )
    return Manifest(
        path=Path("m.csv"),
        sheet=None,
        columns=("mac", "model", "workspace", "personEmail"),
        field_columns={
            "mac": "mac",
            "model": "model",
            "workspace": "workspace",
            "personEmail": "personEmail",
        },
        rows=rows,
    )


def test_report_owners_fill_in_the_id_the_run_resolved() -> None:
    """A row named by name takes the id its report's owner cell names, if any."""
    outcomes = {
        2: replace(code_outcome(2, expires_in=timedelta(1)), owner="Lobby (id WS-9)"),
        3: replace(code_outcome(3, expires_in=timedelta(1)), owner="ann@x.example"),
    }

    rows = with_report_owners(named_rows(), outcomes).rows

    assert [(r.workspace_id, r.person_id) for r in rows] == [
        ("WS-9", None),
        (None, None),
    ]


async def test_renew_rows_named_by_name() -> None:
    """A row named by name renews for the id its run resolved (no lookup), or else
    for the id its name resolves to now; both old devices go."""
    outcomes = {
        2: replace(
            code_outcome(2, expires_in=-timedelta(days=1), device_id="OLD-2"),
            owner="Lobby (id WS-9)",
        ),
        3: code_outcome(3, expires_in=-timedelta(days=1), device_id="OLD-3"),
    }
    api = FakeApi(
        [
            pending_device("OLD-2", workspace_id="WS-9"),
            pending_device("OLD-3", workspace_id=None, person_id="P-1"),
        ]
    )
    api.owners = [Owner(id="P-1", emails=("ann@x.example",))]
    entries = await inspect_codes(named_rows(), outcomes, api, now=NOW)

    updated = await renew(entries, api)

    assert [o.status for o in updated.values()] == [Status.CODE_ISSUED] * 2
    new = {n: api.devices[o.device_id or ""] for n, o in updated.items()}
    assert (new[2].workspace_id, new[3].person_id) == ("WS-9", "P-1")
    assert {"OLD-2", "OLD-3"}.isdisjoint(api.devices)
    assert [c for c in api.calls if c.split()[0] in ("PEOPLE", "WORKSPACES")] == [
        "PEOPLE ann@x.example"
    ]


async def test_a_name_that_no_longer_resolves_fails_its_row() -> None:
    """A name with no id in the report and no owner in the org fails its own row,
    saying why; no code is asked for and the old device stays."""
    outcomes = {
        3: code_outcome(3, expires_in=-timedelta(days=1), device_id="OLD-3"),
    }
    api = FakeApi([pending_device("OLD-3", workspace_id=None, person_id="P-1")])
    entries = await inspect_codes(named_rows(), outcomes, api, now=NOW)

    updated = await renew(entries, api)

    assert updated[3].status is Status.FAILED
    assert (updated[3].error or "").startswith(
        'renew activation code: no person with the email "ann@x.example" in the org'
    )
    assert updated[3].activation_code == outcomes[3].activation_code
    assert "CODE" not in api.calls
    assert "OLD-3" in api.devices
