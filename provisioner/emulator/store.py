"""
Hold the emulated devices and apply the API's rules to them: pure, synchronous.

Every rule violation raises ``Problem``; the routes turn it into the Webex error body.
Devices are kept in wire format (camelCase dicts) so a read costs one ``json.dumps``.
"""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from provisioner.emulator.catalog import Catalog, Model
from provisioner.emulator.directory import webex_id

__all__ = [
    "MAC_IN_USE_CODE",
    "MAC_IN_USE_MESSAGE",
    "DeviceRecord",
    "DeviceStore",
    "Problem",
    "iso",
    "normalize_mac",
]

MAC_IN_USE_CODE = 5675
MAC_IN_USE_MESSAGE = "[Error 5675] MAC Address is in use."
ROOM_PRODUCT = "Cisco Room Device"
_HEX12 = re.compile(r"[0-9A-F]{12}")
_SEPARATORS = str.maketrans("", "", ":-. ")


class Problem(Exception):
    """
    A request the API refuses: HTTP status, message and optional Webex error code.
    """

    def __init__(self, status: int, message: str, error_code: int | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_code = error_code


def normalize_mac(text: str) -> str | None:
    """
    Return the MAC as 12 upper-case hex digits, whatever the notation, or None.
    """
    mac = text.translate(_SEPARATORS).upper()
    return mac if _HEX12.fullmatch(mac) else None


def iso(moment: datetime) -> str:
    """
    Format a UTC moment the way Webex does: ``2026-05-10T09:15:02.417Z``.
    """
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _colon_mac(mac: str) -> str:
    return ":".join(mac[i : i + 2] for i in range(0, 12, 2))


@dataclass(slots=True)
class DeviceRecord:
    """
    One device: its wire JSON plus what the API never returns.
    """

    wire: dict[str, Any]
    owner_id: str
    mac: str | None = None  # normalised, the MAC index key
    code: str | None = field(default=None, repr=False)
    expires: datetime | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def id(self) -> str:
        """
        The device id.
        """
        return str(self.wire["id"])


def _owner(body: dict[str, Any]) -> tuple[str, str]:
    workspace_id = body.get("workspaceId")
    person_id = body.get("personId")
    if workspace_id and person_id:
        raise Problem(400, "Specify either workspaceId or personId, not both.")
    owner_id = workspace_id or person_id
    if not owner_id or not isinstance(owner_id, str):
        raise Problem(400, "One of workspaceId or personId is required.")
    return ("workspaceId" if workspace_id else "personId"), owner_id


class DeviceStore:
    """
    One org's device table with its MAC and owner indexes.

    ``mac_taken`` answers whether a MAC is registered anywhere (every org): Webex
    registers a MAC once, whichever org holds it (reference §6.4, "MAC already in
    use (this or another org)"). Without it only this store counts.
    """

    def __init__(
        self,
        catalog: Catalog,
        *,
        seed: int | str,
        unknown_owner_status: int,
        mac_taken: Callable[[str], bool] | None = None,
    ):
        self.catalog = catalog
        self.unknown_owner_status = unknown_owner_status
        self._mac_taken = mac_taken
        self.devices: dict[str, DeviceRecord] = {}
        self.by_mac: dict[str, str] = {}
        self.by_owner: dict[str, dict[str, None]] = {}
        self.pending: dict[str, datetime] = {}
        self._seed = seed
        self._random = random.Random(seed)

    def clear(self) -> None:
        """
        Forget every device and restart id generation from the seed.
        """
        self.devices.clear()
        self.by_mac.clear()
        self.by_owner.clear()
        self.pending.clear()
        self._random.seed(self._seed)

    def _uuid(self) -> uuid.UUID:
        return uuid.UUID(int=self._random.getrandbits(128), version=4)

    def _find_owner(self, key: str, owner_id: str) -> dict[str, Any]:
        table = self.catalog.workspaces if key == "workspaceId" else self.catalog.people
        owner = table.get(owner_id)
        if owner is None:
            kind = "workspace" if key == "workspaceId" else "person"
            raise Problem(self.unknown_owner_status, f"The {kind} was not found.")
        return owner

    def _find_model(self, name: object, method: str, owner_key: str) -> Model:
        if not isinstance(name, str) or not name.strip():
            raise Problem(400, "model is required.")
        model = self.catalog.find_model(name)
        if model is None:
            raise Problem(400, "The device model is not supported.")
        if method not in model.onboarding:
            raise Problem(400, f"The device model does not support {method}.")
        wanted = "PLACE" if owner_key == "workspaceId" else "PEOPLE"
        if wanted not in model.supported_for:
            raise Problem(400, f"The device model is not supported for {wanted}.")
        return model

    def _new_record(
        self, owner_key: str, owner: dict[str, Any], product: str, kind: str, now: str
    ) -> DeviceRecord:
        value = self._uuid()
        wire: dict[str, Any] = {
            "id": webex_id("DEVICE", value),
            "callingDeviceId": webex_id("CALLING_DEVICE", value),
            "webexDeviceId": webex_id("DEVICE", value),
            "displayName": owner.get("displayName", ""),
            owner_key: owner["id"],
            "orgId": self.catalog.org_id,
            "capabilities": [],
            "permissions": [],
            "connectionStatus": "disconnected",
            "product": product,
            "type": kind,
            "tags": [],
            "serial": "",
            "primarySipUrl": "",
            "sipUrls": [],
            "errorCodes": [],
            "created": now,
            "locationId": owner.get("locationId", ""),
            "managedBy": "CISCO",
            "devicePlatform": "cisco",
            "plannedMaintenance": "off",
        }
        if owner_key == "workspaceId":
            wire["placeId"] = owner["id"]
        return DeviceRecord(wire=wire, owner_id=owner["id"])

    def _index(self, record: DeviceRecord) -> None:
        self.devices[record.id] = record
        self.by_owner.setdefault(record.owner_id, {})[record.id] = None
        if record.mac is not None:
            self.by_mac[record.mac] = record.id

    def is_mac_in_use(self, mac: str) -> bool:
        """
        Whether a device with this (normalised) MAC is registered, in any org.
        """
        return mac in self.by_mac or (
            self._mac_taken is not None and self._mac_taken(mac)
        )

    def create_by_mac(
        self, body: object, now: datetime, in_use_status: int
    ) -> DeviceRecord:
        """
        Register a device by MAC for a workspace or person (POST /devices).
        """
        if not isinstance(body, dict):
            raise Problem(400, "The request body must be a JSON object.")
        raw_mac = body.get("mac")
        if not isinstance(raw_mac, str) or not raw_mac:
            raise Problem(400, "mac is required.")
        mac = normalize_mac(raw_mac)
        if mac is None:
            raise Problem(400, "Invalid MAC address: use 12 hexadecimal digits.")
        owner_key, owner_id = _owner(body)
        model = self._find_model(body.get("model"), "MAC_ADDRESS", owner_key)
        owner = self._find_owner(owner_key, owner_id)
        if self.is_mac_in_use(mac):
            raise Problem(in_use_status, MAC_IN_USE_MESSAGE, MAC_IN_USE_CODE)
        password = body.get("password")
        record = self._new_record(
            owner_key, owner, model.display_name, model.device_type, iso(now)
        )
        record.wire["mac"] = mac
        record.wire["managedBy"] = model.managed_by
        record.mac = mac
        record.password = password if isinstance(password, str) else None
        self._index(record)
        return record

    def create_activation_code(
        self, body: object, now: datetime, valid_days: int
    ) -> DeviceRecord:
        """
        Issue a 16-digit activation code and its pending device.
        """
        if not isinstance(body, dict):
            raise Problem(400, "The request body must be a JSON object.")
        owner_key, owner_id = _owner(body)
        model: Model | None = None
        if body.get("model") is not None:
            model = self._find_model(body.get("model"), "ACTIVATION_CODE", owner_key)
        owner = self._find_owner(owner_key, owner_id)
        if model is None:
            # Without a model the code only works on RoomOS devices (reference §4.5).
            record = self._new_record(
                owner_key, owner, ROOM_PRODUCT, "roomdesk", iso(now)
            )
        else:
            record = self._new_record(
                owner_key, owner, model.display_name, model.device_type, iso(now)
            )
            record.wire["managedBy"] = model.managed_by
        record.wire["connectionStatus"] = "activating"
        record.code = "".join(str(self._random.randrange(10)) for _ in range(16))
        record.expires = now + timedelta(days=valid_days)
        self.pending[record.id] = record.expires
        self._index(record)
        return record

    def expire_due(self, now: datetime) -> None:
        """
        Mark pending devices whose activation code has expired ``offline_expired``.
        """
        due = [device_id for device_id, ends in self.pending.items() if ends <= now]
        for device_id in due:
            del self.pending[device_id]
            record = self.devices[device_id]
            record.wire["connectionStatus"] = "offline_expired"
            record.code = None

    def activate(self, device_id: str, raw_mac: object, now: datetime) -> DeviceRecord:
        """
        Simulate the device entering its code: it gets a MAC and connects.
        """
        record = self.get(device_id)
        status = record.wire["connectionStatus"]
        if status == "offline_expired":
            raise Problem(410, "The activation code has expired.")
        if status != "activating":
            raise Problem(409, "The device is not waiting for activation.")
        if raw_mac is None:
            mac: str | None = self._unused_mac()
        else:
            mac = normalize_mac(raw_mac) if isinstance(raw_mac, str) else None
        if mac is None:
            raise Problem(400, "Invalid MAC address: use 12 hexadecimal digits.")
        if self.is_mac_in_use(mac):
            raise Problem(400, MAC_IN_USE_MESSAGE, MAC_IN_USE_CODE)
        record.mac = mac
        record.code = None
        record.wire["mac"] = (
            _colon_mac(mac) if record.wire["type"] == "roomdesk" else mac
        )
        record.wire["connectionStatus"] = "connected"
        record.wire["firstSeen"] = record.wire["lastSeen"] = iso(now)
        self.pending.pop(device_id, None)
        self.by_mac[mac] = device_id
        return record

    def _unused_mac(self) -> str:
        while True:
            mac = f"{self._random.getrandbits(48):012X}"
            if not self.is_mac_in_use(mac):
                return mac

    def get(self, device_id: str) -> DeviceRecord:
        """
        Return the device, or raise a 404 ``Problem``.
        """
        record = self.devices.get(device_id)
        if record is None:
            raise Problem(404, "The requested resource could not be found.")
        return record

    def delete(self, device_id: str) -> None:
        """
        Remove the device and its index entries.
        """
        record = self.get(device_id)
        del self.devices[device_id]
        self.by_owner.get(record.owner_id, {}).pop(device_id, None)
        self.pending.pop(device_id, None)
        if record.mac is not None and self.by_mac.get(record.mac) == device_id:
            del self.by_mac[record.mac]

    def patch_tags(self, device_id: str, body: object) -> DeviceRecord:
        """
        Apply one JSON Patch operation on ``tags``: add appends, remove clears,
        replace sets. A one-element array is accepted like the bare object.
        """
        record = self.get(device_id)
        if isinstance(body, list) and len(body) == 1:
            body = body[0]
        if not isinstance(body, dict):
            raise Problem(400, "The body must be one JSON Patch operation.")
        op, path, value = body.get("op"), body.get("path"), body.get("value")
        if path not in ("tags", "/tags"):
            raise Problem(400, "Only the tags path can be modified.")
        if op not in ("add", "remove", "replace"):
            raise Problem(400, "op must be one of add, remove, replace.")
        if op != "remove" and (
            not isinstance(value, list) or not all(isinstance(t, str) for t in value)
        ):
            raise Problem(400, "value must be an array of strings.")
        tags: list[str] = record.wire["tags"]
        given: list[str] = list(dict.fromkeys(value or ()))
        if op == "remove":
            tags.clear()
        elif op == "replace":
            tags[:] = given
        else:
            tags.extend(t for t in given if t not in tags)
        return record
