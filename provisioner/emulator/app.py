"""
Assemble the emulator: routes plus the middleware that plays the API gateway.

For every ``/v1`` request the middleware, in order: takes a tracking id, logs the
request, picks the org it is charged to, applies that org's rate limit (a 429 never
changes state), rolls the seeded faults (latency, a dropped connection, a 5xx),
checks the bearer token, its scopes and the org it acts for, runs the handler, and,
for an ambiguous create, drops the connection after the device exists. With the
echo knob on, a 4xx answer quotes the request body, as some gateways do.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from email.utils import format_datetime

from aiohttp import web

from provisioner.emulator.admin import ADMIN_PREFIX, admin_routes
from provisioner.emulator.config import EmulatorConfig
from provisioner.emulator.directory_routes import ORG_FREE_ROUTES
from provisioner.emulator.faults import NO_FAULT
from provisioner.emulator.orgs import Org
from provisioner.emulator.requestlog import LoggedRequest, flat_query, macs_in
from provisioner.emulator.routes import REQUIRED_SCOPES, api_routes
from provisioner.emulator.state import STATE_KEY, EmulatorState
from provisioner.emulator.store import Problem
from provisioner.emulator.wire import (
    drop_connection,
    error_response,
    gateway_error,
    json_response,
)

__all__ = ["create_app"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
AMBIGUOUS_ROUTE = "POST /v1/devices"
UNKNOWN_ROUTE = "<unmatched>"
#: List routes whose 200 answer's item count goes into the request log.
LIST_ROUTES = frozenset(
    {"GET /v1/devices", "GET /v1/workspaces", "GET /v1/people", "GET /v1/locations"}
)


def _check_auth(state: EmulatorState, route: str, request: web.Request) -> None:
    identity = state.identity(request)
    for group in REQUIRED_SCOPES.get(route, ()):
        if not group & identity.scopes:
            needed = " or ".join(sorted(group))
            raise Problem(
                403, f"The token lacks the scope this operation needs: {needed}."
            )
    if route not in ORG_FREE_ROUTES:
        state.tenancy.target(identity, request.query.get("orgId"))


def _unmatched(request: web.Request, tracking_id: str) -> web.Response:
    exc = request.match_info.http_exception
    assert exc is not None
    if exc.status == 405:
        response = error_response(
            405,
            "The requested HTTP method is not supported on this resource.",
            tracking_id,
        )
        response.headers["Allow"] = exc.headers.get("Allow", "")
        return response
    return error_response(
        404, "The requested resource could not be found.", tracking_id
    )


async def _answer_api(
    request: web.Request,
    handler: Handler,
    state: EmulatorState,
    route: str,
    org: Org,
    tracking_id: str,
) -> web.StreamResponse | None:
    """
    Run one matched API request through the gateway; None means "dropped".
    """
    bucket = org.bucket
    if bucket is not None and (wait := bucket.take_nowait()):
        response = error_response(
            429, "Too many requests: retry after the Retry-After seconds.", tracking_id
        )
        response.headers["Retry-After"] = str(wait)
        return response
    decision = state.dice.roll(state.knobs)
    delay_s = decision.delay_s + org.limits.latency_ms / 1000.0
    if delay_s:
        await asyncio.sleep(delay_s)
    if decision is not NO_FAULT:
        if decision.drop:
            return None
        if decision.server_error is not None:
            state.stats.server_errors_injected += 1
            return gateway_error(
                decision.server_error, tracking_id, plain_text=decision.plain_text_error
            )
    try:
        _check_auth(state, route, request)
        for each in state.tenancy:
            if each.store.pending:
                each.store.expire_due(state.clock.now())
        answer = await handler(request)
    except Problem as problem:
        return error_response(
            problem.status, problem.message, tracking_id, problem.error_code
        )
    if decision.ambiguous and route == AMBIGUOUS_ROUTE and answer.status < 300:
        return None
    return answer


def _echo(response: web.Response, raw: bytes) -> web.Response:
    """
    Quote the request body in a JSON error answer's message and descriptions.
    """
    try:
        body = json.loads(response.body) if isinstance(response.body, bytes) else None
    except ValueError:
        return response
    if not isinstance(body, dict) or not isinstance(body.get("message"), str):
        return response
    quote = f" Request body: {raw.decode('utf-8', 'replace')}"
    body["message"] += quote
    for detail in body.get("errors", []):
        detail["description"] = str(detail.get("description", "")) + quote
    echoed = json_response(body, response.status)
    for name in ("Retry-After", "Allow"):
        if name in response.headers:
            echoed.headers[name] = response.headers[name]
    return echoed


def _items(route: str, response: web.StreamResponse) -> int | None:
    if route not in LIST_ROUTES or response.status != 200:
        return None
    if not isinstance(response, web.Response) or not isinstance(response.body, bytes):
        return None
    items = json.loads(response.body).get("items")
    return len(items) if isinstance(items, list) else None


def _finish(
    state: EmulatorState,
    org: Org,
    entry: LoggedRequest,
    route: str,
    response: web.StreamResponse | None,
) -> None:
    status: int | str = "dropped" if response is None else response.status
    state.stats.record(route, status)
    org.count(status)
    retry_after = None
    if response is not None and status == 429:
        retry_after = int(response.headers.get("Retry-After", "0"))
    items = None if response is None else _items(route, response)
    state.requests.finish(entry, status, retry_after=retry_after, items=items)


def _route(request: web.Request) -> str:
    """
    The route template a request matched (``GET /v1/devices/{deviceId}``).
    """
    if request.match_info.http_exception is not None:
        return UNKNOWN_ROUTE
    resource = request.match_info.route.resource
    return f"{request.method} {resource.canonical if resource else request.path}"


@web.middleware
async def gateway(request: web.Request, handler: Handler) -> web.StreamResponse:
    """
    Play the API gateway for ``/v1``; pass the admin view straight through.
    """
    state = request.app[STATE_KEY]
    if request.path.startswith(ADMIN_PREFIX + "/"):
        try:
            return await handler(request)
        except Problem as problem:
            return error_response(
                problem.status, problem.message, "EMULATOR_ADMIN", problem.error_code
            )
    answered = asyncio.get_running_loop().create_future()
    state.answering.add(answered)
    try:
        return await _gateway_api(request, handler, state)
    finally:
        state.answering.discard(answered)
        answered.set_result(None)


async def _gateway_api(
    request: web.Request, handler: Handler, state: EmulatorState
) -> web.StreamResponse:
    """
    Answer one ``/v1`` request as the gateway does (see the module).
    """
    started = time.monotonic()
    tracking_id = request.headers.get("TrackingID") or f"ROUTER_{uuid.uuid4()}"
    route = _route(request)
    org = state.tenancy.charged(
        request.headers.get("Authorization", ""), request.query.get("orgId")
    )
    query = flat_query(request.query)
    entry = state.requests.start(
        method=request.method,
        path=request.path,
        route=route,
        query=query,
        org=org.id,
        tracking_id=tracking_id,
        started=started,
    )
    raw = await request.read() if request.body_exists else b""
    entry.mac, entry.macs = macs_in(route, query, raw)
    response: web.StreamResponse | None
    if route == UNKNOWN_ROUTE:
        response = _unmatched(request, tracking_id)
    else:
        response = await _answer_api(request, handler, state, route, org, tracking_id)
    _finish(state, org, entry, route, response)
    if response is None:
        return drop_connection(request)
    if (
        state.knobs.echo_request_body
        and 400 <= response.status < 500
        and isinstance(response, web.Response)
        and raw
    ):
        response = _echo(response, raw)
    response.headers["trackingid"] = tracking_id
    if state.clock.offset:
        # The gateway's Date is its own clock, which the admin view moves: a client
        # comparing its times with the API's stamps sees what it would see there.
        response.headers["Date"] = format_datetime(state.clock.now(), usegmt=True)
    return response


def create_app(config: EmulatorConfig | None = None) -> web.Application:
    """
    Build the emulator application; its state is ``app[STATE_KEY]``.
    """
    app = web.Application(middlewares=[gateway])
    app[STATE_KEY] = EmulatorState(config or EmulatorConfig())
    app.router.add_routes(api_routes())
    app.router.add_routes(admin_routes())
    return app
