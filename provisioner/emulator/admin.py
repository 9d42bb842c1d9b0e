"""
Serve the admin view under ``/_emulator/``: no auth, no faults, not counted.

It lets tests and benchmarks look inside (devices, stats per route and per org, the
request log), reset, change fault knobs and org limits at run time, activate
pending devices, and move the clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import datetime
from typing import Any

from aiohttp import web

from provisioner.emulator.orgs import Org
from provisioner.emulator.state import STATE_KEY
from provisioner.emulator.store import Problem, iso
from provisioner.emulator.wire import json_response

__all__ = ["ADMIN_PREFIX", "admin_routes"]

ADMIN_PREFIX = "/_emulator"
#: The longest a reset waits for requests already being answered.
DRAIN_TIMEOUT_S = 10.0


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        raise Problem(400, "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise Problem(400, "The request body must be a JSON object.")
    return body


def _org(request: web.Request, org_id: str | None) -> Org:
    tenancy = request.app[STATE_KEY].tenancy
    if not org_id:
        return tenancy.home
    org = tenancy.orgs.get(org_id)
    if org is None:
        raise Problem(404, "The organization was not found.")
    return org


async def list_all_devices(request: web.Request) -> web.Response:
    """
    GET /_emulator/devices[?orgId=]: every device of the org (default: the seeded
    one), raw wire JSON, in creation order.
    """
    store = _org(request, request.query.get("orgId")).store
    return json_response({"items": [r.wire for r in store.devices.values()]})


async def get_stats(request: web.Request) -> web.Response:
    """
    GET /_emulator/stats: counts by route template and status, 429s, totals, and
    ``by_org``: each org's requests, 429s, devices and limits.
    """
    return json_response(request.app[STATE_KEY].stats_snapshot())


async def list_orgs(request: web.Request) -> web.Response:
    """
    GET /_emulator/orgs: every org (seeded first) with its key, admin tokens,
    limits and counters.
    """
    tenancy = request.app[STATE_KEY].tenancy
    items = []
    for org in tenancy:
        tokens = sorted(t for t, i in tenancy.identities.items() if i.home_id == org.id)
        partners = sorted(
            t
            for t, i in tenancy.identities.items()
            if org.id in i.org_ids and i.home_id != org.id
        )
        items.append({**org.snapshot(), "tokens": tokens, "partners": partners})
    return json_response({"items": items})


async def patch_org(request: web.Request) -> web.Response:
    """
    PATCH /_emulator/orgs/{orgId}: change ``rate_limit``, ``burst``, ``latency_ms``.
    """
    state = request.app[STATE_KEY]
    org_id = _org(request, request.match_info["orgId"]).id
    try:
        state.set_org_limits(org_id, **await _body(request))
    except (TypeError, ValueError) as exc:
        raise Problem(400, f"Invalid org limits: {exc}") from None
    return json_response(state.tenancy.orgs[org_id].snapshot())


async def revoke_token(request: web.Request) -> web.Response:
    """
    POST /_emulator/tokens/revoke ``{"token": T}``: T stops working from now on,
    as an expired or revoked Webex token does (every call answers 401). The token is
    taken from the body, never the path, so it stays out of access logs.
    """
    token = (await _body(request)).get("token")
    if not isinstance(token, str) or not token:
        raise Problem(400, 'Give the token to revoke as {"token": "..."}.')
    if not request.app[STATE_KEY].tenancy.revoke(token):
        raise Problem(404, "No such token.")
    return web.Response(status=204)


async def list_requests(request: web.Request) -> web.Response:
    """
    GET /_emulator/requests[?mac=&since=&orgId=]: the request log, oldest first.

    ``mac`` keeps the requests about that MAC (any notation), ``since`` those after
    that sequence number, ``orgId`` those charged to that org.
    """
    log = request.app[STATE_KEY].requests
    query = request.query
    try:
        since = int(query.get("since", "0"))
    except ValueError:
        raise Problem(400, "since must be a sequence number.") from None
    entries = log.select(mac=query.get("mac"), since=since, org=query.get("orgId"))
    return json_response(log.snapshot(entries))


async def reset(request: web.Request) -> web.Response:
    """
    POST /_emulator/reset: clear devices and stats; restart the seeded sequences.

    Requests still being answered finish first (up to ``DRAIN_TIMEOUT_S``), so
    nothing sent before the reset lands after it.
    """
    state = request.app[STATE_KEY]
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(DRAIN_TIMEOUT_S):
            await state.drain()
    state.reset()
    return web.Response(status=204)


async def get_faults(request: web.Request) -> web.Response:
    """
    GET /_emulator/faults: the current fault knobs.
    """
    return json_response(request.app[STATE_KEY].faults_snapshot())


async def set_faults(request: web.Request) -> web.Response:
    """
    POST or PATCH /_emulator/faults: change the given knobs, keep the others.
    """
    state = request.app[STATE_KEY]
    try:
        state.set_faults(**await _body(request))
    except (TypeError, ValueError) as exc:
        raise Problem(400, f"Invalid fault settings: {exc}") from None
    return json_response(state.faults_snapshot())


async def activate(request: web.Request) -> web.Response:
    """
    POST /_emulator/devices/{deviceId}/activate: the device enters its code.

    Body (optional): ``{"mac": "..."}``; without it a free MAC is generated.
    """
    state = request.app[STATE_KEY]
    body = await _body(request)
    device_id = request.match_info["deviceId"]
    store = state.tenancy.holder(device_id).store
    record = store.activate(device_id, body.get("mac"), state.clock.now())
    return json_response(record.wire)


async def get_clock(request: web.Request) -> web.Response:
    """
    GET /_emulator/clock: the emulated "now".
    """
    clock = request.app[STATE_KEY].clock
    return json_response(
        {"now": iso(clock.now()), "offset_s": clock.offset.total_seconds()}
    )


async def move_clock(request: web.Request) -> web.Response:
    """
    POST /_emulator/clock: ``{"advance_seconds": n}`` or ``{"now": ISO-8601}``.

    Activation codes whose expiry has passed turn their device ``offline_expired``.
    """
    state = request.app[STATE_KEY]
    body = await _body(request)
    if "now" in body:
        try:
            state.clock.set(datetime.fromisoformat(str(body["now"])))
        except ValueError:
            raise Problem(400, "now must be an ISO 8601 date and time.") from None
    elif isinstance(body.get("advance_seconds"), int | float):
        state.clock.advance(float(body["advance_seconds"]))
    else:
        raise Problem(400, "Give advance_seconds (a number) or now (ISO 8601).")
    for org in state.tenancy:
        org.store.expire_due(state.clock.now())
    return await get_clock(request)


def admin_routes() -> list[web.RouteDef]:
    """
    Return the admin route table, all under ``/_emulator``.
    """
    p = ADMIN_PREFIX
    return [
        web.get(f"{p}/devices", list_all_devices, allow_head=False),
        web.post(f"{p}/devices/{{deviceId}}/activate", activate),
        web.get(f"{p}/stats", get_stats, allow_head=False),
        web.post(f"{p}/reset", reset),
        web.get(f"{p}/faults", get_faults, allow_head=False),
        web.post(f"{p}/faults", set_faults),
        web.patch(f"{p}/faults", set_faults),
        web.get(f"{p}/clock", get_clock, allow_head=False),
        web.post(f"{p}/clock", move_clock),
        web.get(f"{p}/orgs", list_orgs, allow_head=False),
        web.patch(f"{p}/orgs/{{orgId}}", patch_org),
        web.get(f"{p}/requests", list_requests, allow_head=False),
        web.post(f"{p}/tokens/revoke", revoke_token),
    ]
