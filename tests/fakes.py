"""
A dict-backed fake of ``provisioner.webex.protocol.DevicesApi`` with fault hooks.

It keeps devices in a dict, counts every call the way ``ApiClient`` does (one
``CallTally`` per ``tally()`` block, current in the calling task), records the largest
number of creates / activation codes in flight per owner and in total, and lets a test
script faults: raise an error before a call takes effect (``fail_before``), or after it
took effect (``fail_after``: the "created, then the connection dropped" case).
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import anyio
import anyio.lowlevel

from provisioner.errors import (
    MacInUseError,
    NotFoundError,
    OutcomeUnknownError,
    ServerError,
)
from provisioner.models import ActivationCode, Device, TagMode
from provisioner.webex.protocol import (
    Caller,
    CallTally,
    ClientStatistics,
    Location,
    MacState,
    Organization,
    Owner,
    SupportedModel,
)

__all__ = ["FakeDevicesApi", "Fault", "unknown_outcome"]

_METHODS = {
    "create_device": "POST",
    "create_activation_code": "POST",
    "validate_macs": "POST",
    "modify_tags": "PATCH",
    "delete_device": "DELETE",
}

_current_tally: contextvars.ContextVar[CallTally | None] = contextvars.ContextVar(
    "fake_tally", default=None
)


@dataclass(frozen=True, slots=True)
class Fault:
    """
    One scripted failure: ``error`` is raised by the call named ``op``.

    ``when`` picks which calls: a MAC (create/lookup), an owner id (create/code), a
    device id (tags), or None for the next call of that kind.
    """

    op: str
    error: BaseException
    when: str | None = None


def _stamp(moment: datetime) -> str:
    """
    Stamp a device's ``created`` the way Webex does: UTC, milliseconds, ``Z``.
    """
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def unknown_outcome(message: str = "connection dropped") -> OutcomeUnknownError:
    """
    Build the error a create raises when it may or may not have happened.
    """
    cause = ServerError(message, status=502, tracking_id="FAKE_502")
    return OutcomeUnknownError(message, cause=cause, status=502, tracking_id="FAKE_502")


@dataclass
class FakeDevicesApi:
    """
    An in-memory Devices API; every method is a coroutine, like ``ApiClient``'s.
    """

    workspaces: set[str] = field(default_factory=set)
    people: set[str] = field(default_factory=set)
    #: The directory the name lookups search: workspace id → (display name,
    #: location id), person id → email; the ids are added to the sets above.
    workspace_names: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    person_emails: dict[str, str] = field(default_factory=dict)
    locations: dict[str, str] = field(default_factory=dict)
    #: The org of the token's person (``get_me``).
    org_id: str = "org-fake"
    #: How far the API's clock is ahead of this machine's: devices are stamped by
    #: it (``_now``), and ``server_now`` tells it.
    clock_ahead: timedelta = timedelta()
    supported: list[SupportedModel] = field(default_factory=list)
    devices: dict[str, Device] = field(default_factory=dict)
    #: Checkpoints inside each call (anyio.sleep(0)): lets tasks interleave.
    yields: int = 1
    #: The activation code answer carries the pending device's id.
    code_has_device_id: bool = True
    #: Called with (op, key) at the start of every call; may raise or cancel.
    on_call: Callable[[str, str | None], None] | None = None
    #: Called with (op, key) right after a call took effect, before it answers.
    on_effect: Callable[[str, str | None], None] | None = None
    calls: list[tuple[str, str]] = field(default_factory=list)
    #: The ``model`` of every activation-code request, in order (None: no model).
    code_models: list[str | None] = field(default_factory=list)
    faults_before: list[Fault] = field(default_factory=list)
    faults_after: list[Fault] = field(default_factory=list)
    max_in_flight: int = 0
    max_owner_writes: int = 0
    _in_flight: int = 0
    _owner_writes: Counter[str] = field(default_factory=Counter)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.workspaces |= set(self.workspace_names)
        self.people |= set(self.person_emails)

    # -- test helpers ------------------------------------------------------------

    def fail_before(
        self, op: str, error: BaseException, when: str | None = None
    ) -> None:
        """
        Make the next matching ``op`` call raise ``error`` without taking effect.
        """
        self.faults_before.append(Fault(op, error, when))

    def fail_after(
        self, op: str, error: BaseException, when: str | None = None
    ) -> None:
        """
        Make the next matching ``op`` call take effect, then raise ``error``.
        """
        self.faults_after.append(Fault(op, error, when))

    def add_device(self, **fields: object) -> Device:
        """
        Register a device directly, as if someone else had made it.
        """
        fields.setdefault("created", _stamp(self.server_now()))
        device = Device(id=f"dev-{next(self._ids)}", **fields)  # type: ignore[arg-type]
        self.devices[device.id] = device
        return device

    def activate(self, device_id: str, mac: str) -> Device:
        """
        Simulate a person typing the code into the device: it gets a MAC and connects.
        """
        device = replace(
            self.devices[device_id], mac=mac, connection_status="connected"
        )
        self.devices[device_id] = device
        return device

    @property
    def writes(self) -> list[tuple[str, str]]:
        """
        Every call that changes state, as (method, op).

        validateMacs is a POST that only reads (a pre-flight check), so it is no write.
        """
        return [c for c in self.calls if c[0] != "GET" and c[1] != "validate_macs"]

    def count(self, op: str) -> int:
        """
        How many calls of ``op`` were made.
        """
        return sum(1 for _, name in self.calls if name == op)

    @contextlib.contextmanager
    def tally(self) -> Iterator[CallTally]:
        """
        Count the calls made by the current task inside the block.
        """
        tally = CallTally()
        token = _current_tally.set(tally)
        try:
            yield tally
        finally:
            _current_tally.reset(token)

    def server_now(self) -> datetime:
        """
        The fake's clock is this machine's, moved by ``clock_ahead`` (a skewed API).
        """
        return datetime.now(UTC) + self.clock_ahead

    def statistics(self) -> ClientStatistics:
        """
        Every call counts as one attempt; the fake neither retries nor rate-limits.
        """
        return ClientStatistics(
            calls=len(self.calls),
            rate_limited=0,
            retries=0,
            in_flight=self._in_flight,
            rate=None,
            ceiling=None,
            phase="none",
        )

    # -- internals -----------------------------------------------------------------

    def _take(self, faults: list[Fault], op: str, keys: Sequence[str | None]) -> None:
        for fault in faults:
            if fault.op == op and (fault.when is None or fault.when in keys):
                faults.remove(fault)
                raise fault.error

    @contextlib.asynccontextmanager
    async def _call(
        self, op: str, *keys: str | None, owner: str | None = None
    ) -> AsyncIterator[None]:
        self.calls.append((_METHODS.get(op, "GET"), op))
        tally = _current_tally.get()
        if tally is not None:
            tally.calls += 1
            tally.last_tracking_id = f"FAKE_{len(self.calls)}"
        if self.on_call is not None:
            self.on_call(op, keys[0] if keys else None)
        self._in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self._in_flight)
        if owner is not None:
            self._owner_writes[owner] += 1
            self.max_owner_writes = max(
                self.max_owner_writes, self._owner_writes[owner]
            )
        try:
            for _ in range(self.yields):
                await anyio.lowlevel.checkpoint()
            self._take(self.faults_before, op, keys)
            yield
            if self.on_effect is not None:
                self.on_effect(op, keys[0] if keys else None)
            for _ in range(self.yields):
                await anyio.lowlevel.checkpoint()
            self._take(self.faults_after, op, keys)
        finally:
            self._in_flight -= 1
            if owner is not None:
                self._owner_writes[owner] -= 1

    def _check_owner(self, workspace_id: str | None, person_id: str | None) -> None:
        if workspace_id and workspace_id not in self.workspaces:
            raise NotFoundError(
                "workspace not found", status=404, tracking_id="FAKE_404"
            )
        if person_id and person_id not in self.people:
            raise NotFoundError("person not found", status=404, tracking_id="FAKE_404")

    # -- DevicesApi ------------------------------------------------------------------

    async def create_device(
        self,
        *,
        mac: str,
        model: str,
        workspace_id: str | None = None,
        person_id: str | None = None,
        password: str | None = None,
        org_id: str | None = None,
    ) -> Device:
        owner = workspace_id or person_id
        async with self._call("create_device", mac, owner, owner=owner):
            self._check_owner(workspace_id, person_id)
            if any(d.mac == mac for d in self.devices.values()):
                raise MacInUseError(
                    "[Error 5675] MAC Address is in use.",
                    status=400,
                    tracking_id="FAKE_400",
                )
            device = self.add_device(
                mac=mac,
                product=model.removeprefix("DMS "),
                type="phone",
                workspace_id=workspace_id,
                person_id=person_id,
                org_id=org_id,
                connection_status="activating",
            )
        return device

    async def find_device_by_mac(
        self, mac: str, *, org_id: str | None = None
    ) -> Device | None:
        async with self._call("find_device_by_mac", mac):
            found = [d for d in self.devices.values() if d.mac == mac]
        return found[0] if found else None

    async def list_devices(
        self,
        *,
        org_id: str | None = None,
        page_size: int | None = None,
        **filters: str,
    ) -> AsyncIterator[Device]:
        async with self._call("list_devices", *filters.values()):
            found = [
                d
                for d in self.devices.values()
                if all(getattr(d, name) == value for name, value in filters.items())
            ]
        for device in found:
            yield device

    async def device_pages(
        self,
        *,
        org_id: str | None = None,
        page_size: int | None = None,
        **filters: str,
    ) -> AsyncIterator[list[Device]]:
        page: list[Device] = []
        async for device in self.list_devices(org_id=org_id, **filters):
            page.append(device)
            if len(page) == (page_size or 100):
                yield page
                page = []
        if page:
            yield page

    async def get_device(self, device_id: str, *, org_id: str | None = None) -> Device:
        async with self._call("get_device", device_id):
            if device_id not in self.devices:
                raise NotFoundError("device not found", status=404)
            device = self.devices[device_id]
        return device

    async def create_activation_code(
        self,
        *,
        model: str | None,
        workspace_id: str | None = None,
        person_id: str | None = None,
        org_id: str | None = None,
    ) -> ActivationCode:
        owner = workspace_id or person_id
        self.code_models.append(model)
        async with self._call("create_activation_code", owner, owner=owner):
            self._check_owner(workspace_id, person_id)
            # A code without a model makes a RoomOS (roomdesk) device, as the API's.
            device = self.add_device(
                product=model.removeprefix("DMS ") if model else "Cisco Room Device",
                type=None if model else "roomdesk",
                workspace_id=workspace_id,
                person_id=person_id,
                org_id=org_id,
                connection_status="activating",
            )
            number = int(device.id.removeprefix("dev-"))
        return ActivationCode(
            code=f"{number:016d}",
            expiry_time="2099-01-01T00:00:00.000Z",
            device_id=device.id if self.code_has_device_id else None,
        )

    async def modify_tags(
        self,
        device_id: str,
        *,
        mode: TagMode | str,
        tags: Sequence[str],
        org_id: str | None = None,
    ) -> Device:
        async with self._call("modify_tags", device_id):
            if device_id not in self.devices:
                raise NotFoundError("device not found", status=404)
            device = self.devices[device_id]
            if str(mode) == "add":
                new = (*device.tags, *tags)
            elif str(mode) == "replace":
                new = tuple(tags)
            else:
                new = ()
            device = replace(device, tags=new)
            self.devices[device_id] = device
        return device

    async def delete_device(self, device_id: str, *, org_id: str | None = None) -> None:
        async with self._call("delete_device", device_id):
            if self.devices.pop(device_id, None) is None:
                raise NotFoundError("device not found", status=404)

    async def supported_devices(
        self, *, org_id: str | None = None
    ) -> list[SupportedModel]:
        async with self._call("supported_devices"):
            return list(self.supported)

    async def validate_macs(
        self, macs: Sequence[str], *, org_id: str | None = None
    ) -> list[MacState]:
        async with self._call("validate_macs"):
            used = {d.mac for d in self.devices.values()}
            return [
                MacState(mac=m, state="UNAVAILABLE" if m in used else "AVAILABLE")
                for m in macs
            ]

    async def get_workspace(
        self, workspace_id: str, *, org_id: str | None = None
    ) -> Owner:
        async with self._call("get_workspace", workspace_id):
            self._check_owner(workspace_id, None)
        return Owner(id=workspace_id, display_name=f"Workspace {workspace_id}")

    async def get_person(self, person_id: str, *, org_id: str | None = None) -> Owner:
        async with self._call("get_person", person_id):
            self._check_owner(None, person_id)
        return Owner(id=person_id, display_name=f"Person {person_id}")

    async def find_people(
        self, email: str, *, org_id: str | None = None
    ) -> list[Owner]:
        # Like the API: the email filter ignores case.
        async with self._call("find_people", email):
            return [
                Owner(id=person, display_name=address, emails=(address,))
                for person, address in self.person_emails.items()
                if address.casefold() == email.casefold()
            ]

    async def find_workspaces(
        self, display_name: str, *, org_id: str | None = None
    ) -> list[Owner]:
        # Like the API: the displayName filter is a case-insensitive "contains".
        async with self._call("find_workspaces", display_name):
            return [
                Owner(id=workspace, display_name=name, location_id=location)
                for workspace, (name, location) in self.workspace_names.items()
                if display_name.casefold() in name.casefold()
            ]

    async def get_location(
        self, location_id: str, *, org_id: str | None = None
    ) -> Location:
        async with self._call("get_location", location_id):
            if location_id not in self.locations:
                raise NotFoundError("location not found", status=404)
            return Location(id=location_id, name=self.locations[location_id])

    async def get_me(self) -> Caller:
        async with self._call("get_me", None):
            pass
        return Caller(id="person-admin", org_id=self.org_id, email="admin@example.test")

    async def get_organization(self, org_id: str) -> Organization:
        async with self._call("get_organization", org_id):
            pass
        return Organization(id=org_id, display_name=f"Org {org_id}")
