"""
Assemble the emulator: routes plus the middleware that plays the API gateway.

For every ``/v1`` request the middleware, in order: takes a tracking id, applies the
global rate limit (a 429 never changes state), rolls the seeded faults (latency, a
dropped connection, a 5xx), checks the bearer token and its scopes, runs the
handler, and, for an ambiguous create, drops the connection after the device exists.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web

from provisioner.emulator.admin import ADMIN_PREFIX, admin_routes
from provisioner.emulator.config import EmulatorConfig
from provisioner.emulator.faults import NO_FAULT
from provisioner.emulator.routes import REQUIRED_SCOPES, api_routes
from provisioner.emulator.state import STATE_KEY, EmulatorState
from provisioner.emulator.store import Problem
from provisioner.emulator.wire import drop_connection, error_response, gateway_error

__all__ = ["create_app"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
AMBIGUOUS_ROUTE = "POST /v1/devices"
UNKNOWN_ROUTE = "<unmatched>"


def _check_auth(state: EmulatorState, route: str, header: str) -> frozenset[str]:
    scopes = state.token_scopes(header)
    if scopes is None:
        raise Problem(
            401,
            "The request requires a valid access token set in the Authorization "
            "request header.",
        )
    for group in REQUIRED_SCOPES.get(route, ()):
        if not group & scopes:
            needed = " or ".join(sorted(group))
            raise Problem(
                403, f"The token lacks the scope this operation needs: {needed}."
            )
    return scopes


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
    tracking_id: str,
) -> web.StreamResponse | None:
    """
    Run one matched API request through the gateway; None means "dropped".
    """
    bucket = state.bucket
    if bucket is not None and (wait := bucket.take_nowait()):
        response = error_response(
            429, "Too many requests: retry after the Retry-After seconds.", tracking_id
        )
        response.headers["Retry-After"] = str(wait)
        return response
    decision = state.dice.roll(state.knobs)
    if decision is not NO_FAULT:
        if decision.delay_s:
            await asyncio.sleep(decision.delay_s)
        if decision.drop:
            return None
        if decision.server_error is not None:
            state.stats.server_errors_injected += 1
            return gateway_error(
                decision.server_error, tracking_id, plain_text=decision.plain_text_error
            )
    try:
        _check_auth(state, route, request.headers.get("Authorization", ""))
        if state.store.pending:
            state.store.expire_due(state.clock.now())
        answer = await handler(request)
    except Problem as problem:
        return error_response(
            problem.status, problem.message, tracking_id, problem.error_code
        )
    if decision.ambiguous and route == AMBIGUOUS_ROUTE and answer.status < 300:
        return None
    return answer


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
    tracking_id = request.headers.get("TrackingID") or f"ROUTER_{uuid.uuid4()}"
    if request.match_info.http_exception is not None:
        response: web.StreamResponse | None
        response = _unmatched(request, tracking_id)
        route = UNKNOWN_ROUTE
    else:
        resource = request.match_info.route.resource
        route = f"{request.method} {resource.canonical if resource else request.path}"
        response = await _answer_api(request, handler, state, route, tracking_id)
    if response is None:
        state.stats.record(route, "dropped")
        return drop_connection(request)
    state.stats.record(route, response.status)
    response.headers["trackingid"] = tracking_id
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
