"""
Answer the emulated Webex Devices and telephony routes under ``/v1``.

Handlers parse, call the pure store of the org the request acts for, and format;
auth, the org check, faults, tracking ids and stats are the middleware's job
(``app.py``). People, workspaces, locations and orgs are in ``directory_routes``.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from provisioner.emulator.directory_routes import DIRECTORY_SCOPES, directory_routes
from provisioner.emulator.query import filter_devices, split_tags
from provisioner.emulator.state import STATE_KEY
from provisioner.emulator.store import (
    MAC_IN_USE_CODE,
    MAC_IN_USE_MESSAGE,
    Problem,
    iso,
    normalize_mac,
)
from provisioner.emulator.wire import json_response, paged

__all__ = ["REQUIRED_SCOPES", "api_routes"]

READ = frozenset({"spark-admin:devices_read"})
WRITE = frozenset({"spark-admin:devices_write"})
WORKSPACE_OTP = frozenset(
    {"identity:placeonetimepassword_create", "identity:one_time_password"}
)
PERSON_OTP = frozenset({"identity:one_time_password"})
PATCH_TYPE = "application/json-patch+json"

#: Per route template: every group must share at least one scope with the token.
REQUIRED_SCOPES: dict[str, tuple[frozenset[str], ...]] = {
    "GET /v1/devices": (READ,),
    "POST /v1/devices": (WRITE,),
    "GET /v1/devices/{deviceId}": (READ,),
    "PATCH /v1/devices/{deviceId}": (WRITE,),
    "DELETE /v1/devices/{deviceId}": (WRITE,),
    "POST /v1/devices/activationCode": (WRITE,),
    "GET /v1/telephony/config/supportedDevices": (
        frozenset({"spark-admin:telephony_config_read"}),
    ),
    "POST /v1/telephony/config/devices/actions/validateMacs/invoke": (
        frozenset({"spark-admin:telephony_config_write"}),
    ),
    **DIRECTORY_SCOPES,
}


async def _read_json(request: web.Request) -> Any:
    raw = await request.read()
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        raise Problem(400, "The request body is not valid JSON.") from None


async def list_devices(request: web.Request) -> web.Response:
    """
    GET /devices: filter, then page with ``Link rel="next"``.
    """
    state = request.app[STATE_KEY]
    _, org = state.caller(request)
    tags = split_tags(request.query.getall("tag", ()))
    items = filter_devices(org.store, request.query, tags)
    return paged(request, items, state.config.page_size)


async def create_device(request: web.Request) -> web.Response:
    """
    POST /devices: create by MAC; 98xx desk phones get an empty 200 body.
    """
    state = request.app[STATE_KEY]
    _, org = state.caller(request)
    body = await _read_json(request)
    record = org.store.create_by_mac(
        body, state.clock.now(), state.config.mac_in_use_status
    )
    model = state.catalog.find_model(str(body.get("model")))
    if model is not None and model.is_desk_phone:
        return web.Response(status=200)
    return json_response(record.wire)


async def get_device(request: web.Request) -> web.Response:
    """
    GET /devices/{deviceId}.
    """
    _, org = request.app[STATE_KEY].caller(request)
    return json_response(org.store.get(request.match_info["deviceId"]).wire)


async def patch_device(request: web.Request) -> web.Response:
    """
    PATCH /devices/{deviceId}: JSON Patch on tags; other content types get 415.
    """
    store = request.app[STATE_KEY].caller(request)[1].store
    device_id = request.match_info["deviceId"]
    store.get(device_id)
    if request.content_type != PATCH_TYPE:
        raise Problem(415, f"Unsupported media type: use {PATCH_TYPE}.")
    body = await _read_json(request)
    return json_response(store.patch_tags(device_id, body).wire)


async def delete_device(request: web.Request) -> web.Response:
    """
    DELETE /devices/{deviceId}: 204, empty body.
    """
    _, org = request.app[STATE_KEY].caller(request)
    org.store.delete(request.match_info["deviceId"])
    return web.Response(status=204)


async def create_activation_code(request: web.Request) -> web.Response:
    """
    POST /devices/activationCode: a 16-digit code valid for 30 days, and the
    pending device's id (unless the ``activation_code_id`` knob is off).
    """
    state = request.app[STATE_KEY]
    identity, org = state.caller(request)
    body = await _read_json(request)
    if isinstance(body, dict):
        needed = PERSON_OTP if body.get("personId") else WORKSPACE_OTP
        if not needed & identity.scopes:
            raise Problem(403, "The token lacks the one-time-password scope needed.")
    record = org.store.create_activation_code(
        body, state.clock.now(), state.config.activation_code_days
    )
    expires = record.expires or state.clock.now()
    answer = {"code": record.code, "expiryTime": iso(expires)}
    if state.knobs.activation_code_id:
        answer["id"] = record.id
    return json_response(answer)


async def supported_devices(request: web.Request) -> web.Response:
    """
    GET /telephony/config/supportedDevices, with the ``type`` (and ``not:``) filter.
    """
    data = request.app[STATE_KEY].catalog.supported_devices
    wanted = request.query.get("type")
    if wanted is None:
        return json_response(data)
    negate = wanted.startswith("not:")
    kind = wanted.removeprefix("not:")
    devices = [d for d in data["devices"] if (d.get("type") == kind) != negate]
    return json_response({**data, "devices": devices})


async def validate_macs(request: web.Request) -> web.Response:
    """
    POST .../validateMacs/invoke: AVAILABLE, UNAVAILABLE, DUPLICATE_IN_LIST, INVALID.
    """
    store = request.app[STATE_KEY].caller(request)[1].store
    body = await _read_json(request)
    macs = body.get("macs") if isinstance(body, dict) else None
    if not isinstance(macs, list) or not all(isinstance(m, str) for m in macs):
        raise Problem(400, "macs is required: an array of MAC address strings.")
    seen: set[str] = set()
    statuses: list[dict[str, Any]] = []
    for text in macs:
        mac = normalize_mac(text)
        entry: dict[str, Any] = {"mac": text}
        if mac is None:
            entry["state"] = "INVALID"
        elif mac in seen:
            entry["state"] = "DUPLICATE_IN_LIST"
        elif store.is_mac_in_use(mac):
            entry.update(
                state="UNAVAILABLE",
                errorCode=MAC_IN_USE_CODE,
                message=MAC_IN_USE_MESSAGE,
            )
        else:
            entry["state"] = "AVAILABLE"
        if mac is not None:
            seen.add(mac)
        statuses.append(entry)
    is_ok = all(s["state"] == "AVAILABLE" for s in statuses)
    return json_response({"status": "OK" if is_ok else "ERRORS", "macStatus": statuses})


def api_routes() -> list[web.RouteDef]:
    """
    Return the ``/v1`` route table (activationCode before ``{deviceId}``).
    """
    return [
        *directory_routes(),
        web.get("/v1/devices", list_devices, allow_head=False),
        web.post("/v1/devices", create_device),
        web.post("/v1/devices/activationCode", create_activation_code),
        web.get("/v1/devices/{deviceId}", get_device, allow_head=False),
        web.patch("/v1/devices/{deviceId}", patch_device),
        web.delete("/v1/devices/{deviceId}", delete_device),
        web.get(
            "/v1/telephony/config/supportedDevices", supported_devices, allow_head=False
        ),
        web.post(
            "/v1/telephony/config/devices/actions/validateMacs/invoke", validate_macs
        ),
    ]
