"""
Build responses in the Webex wire format: JSON bodies, the error body, drops.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from multidict import MultiDict

from provisioner.emulator.query import page, parse_paging

__all__ = [
    "drop_connection",
    "error_response",
    "gateway_error",
    "json_response",
    "paged",
]

GATEWAY_TEXT = {
    502: "<html><body><h1>502 Bad Gateway</h1></body></html>",
    503: "<html><body><h1>503 Service Unavailable</h1></body></html>",
    504: "<html><body><h1>504 Gateway Time-out</h1></body></html>",
}
GATEWAY_MESSAGE = {
    502: "Bad gateway: the upstream service answered badly; try again later.",
    503: "Service unavailable: the server is overloaded; try again later.",
    504: "Gateway timeout: the upstream service did not answer in time.",
}


def json_response(data: Any, status: int = 200) -> web.Response:
    """
    Answer with a JSON body.
    """
    return web.Response(
        body=json.dumps(data, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
    )


def error_response(
    status: int, message: str, tracking_id: str, error_code: int | None = None
) -> web.Response:
    """
    Answer with the Webex error body ``{message, errors:[{description}], trackingId}``.
    """
    detail: dict[str, Any] = {"description": message}
    body: dict[str, Any] = {"message": message, "errors": [detail]}
    if error_code is not None:
        detail["errorCode"] = error_code
        body["errorCode"] = error_code
    body["trackingId"] = tracking_id
    return json_response(body, status)


def gateway_error(status: int, tracking_id: str, *, plain_text: bool) -> web.Response:
    """
    Answer an injected 502/503/504, either as the error body or as gateway HTML.
    """
    if plain_text:
        return web.Response(
            status=status, text=GATEWAY_TEXT[status], content_type="text/html"
        )
    return error_response(status, GATEWAY_MESSAGE[status], tracking_id)


def drop_connection(request: web.Request) -> web.Response:
    """
    Close the connection without answering.

    The returned response is never written: aiohttp finds the transport closing and
    ignores the write as a premature client disconnection, quietly (no traceback).
    The client sees ``ServerDisconnectedError``.
    """
    transport = request.transport
    if transport is not None:
        transport.close()
    return web.Response(status=499)


def paged(request: web.Request, items: list[Any], default_max: int) -> web.Response:
    """
    Answer one page of ``items`` with ``Link rel="next"`` while more remain.
    """
    start, size = parse_paging(request.query, default_max)
    chunk, next_start = page(items, start, size)
    response = json_response({"items": chunk})
    if next_start is not None:
        query = MultiDict(request.query)
        query["start"] = str(next_start)
        query["max"] = str(size)
        response.headers["Link"] = f'<{request.url.with_query(query)}>; rel="next"'
    return response
