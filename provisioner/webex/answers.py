"""
What comes back on the connection, as values and errors.

``read_answer`` reads a response into an ``Answer``; ``error_for_answer`` maps an
unwelcome status to the error tree; ``error_for_exception`` maps aiohttp's exceptions.
These
are the only places that turn HTTP into ``ApiError``s.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from provisioner.errors import (
    ApiError,
    ApiTimeoutError,
    AuthError,
    ConnectError,
    ForbiddenError,
    InvalidRequestError,
    MacInUseError,
    NetworkError,
    NotFoundError,
    RateLimitedError,
    ServerError,
)
from provisioner.webex.wire import (
    Answer,
    api_message,
    is_mac_in_use,
    parse_json,
    retry_after_seconds,
    tracking_id_of,
)

__all__ = ["error_for_answer", "error_for_exception", "read_answer"]


def error_for_exception(
    exc: BaseException, method: str, path: str, tracking_id: str
) -> ApiError | None:
    """
    Return the ``ApiError`` an exception raised while sending a request or reading
    its answer means, or None for one that is not aiohttp's (raised as it is).

    The most specific class wins (a connect timeout is a ``ConnectError``: the
    request was never sent); the client raises it chained to the original.
    """
    if isinstance(exc, ApiError):
        return None
    where: dict[str, Any] = {"method": method, "path": path, "tracking_id": tracking_id}
    if isinstance(exc, (aiohttp.ConnectionTimeoutError, aiohttp.ClientConnectorError)):
        return ConnectError(f"could not connect to the API: {exc}", **where)
    if isinstance(exc, TimeoutError):
        return ApiTimeoutError("no answer from the API within the timeout", **where)
    if isinstance(exc, (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError)):
        return NetworkError(
            f"the connection dropped before the answer: {type(exc).__name__}",
            **where,
        )
    if isinstance(exc, aiohttp.InvalidURL):
        return InvalidRequestError(f"invalid URL: {exc}", **where)
    if isinstance(exc, aiohttp.ClientError):
        return NetworkError(f"HTTP error: {exc}", **where)
    return None


def error_for_answer(answer: Answer, *, method: str, path: str) -> ApiError | None:
    """
    Return the error an HTTP answer means, or None for a success.

    The message is the answer's own; the error cuts registered secrets out of it (an
    answer may quote the request body it refused, a device password among it).
    """
    status = answer.status
    if status < 400:
        return None
    message = api_message(answer.body) or f"{status} {answer.reason}".strip()
    where: dict[str, Any] = {
        "status": status,
        "tracking_id": answer.tracking_id,
        "method": method,
        "path": path,
    }
    if status in (423, 429):
        return RateLimitedError(
            message, retry_after=retry_after_seconds(answer.retry_after), **where
        )
    if status >= 500:
        return ServerError(message, **where)
    if status == 401:
        return AuthError(message, **where)
    if status == 403:
        return ForbiddenError(message, **where)
    if status == 404:
        return NotFoundError(message, **where)
    if is_mac_in_use(answer.body, message):
        return MacInUseError(message, **where)
    return InvalidRequestError(message, **where)


async def read_answer(response: aiohttp.ClientResponse, ours: str) -> Answer:
    """
    Read a whole answer: status, JSON body, tracking id, Retry-After and links.
    """
    raw = await response.read()
    body = parse_json(raw)
    return Answer(
        status=response.status,
        body=body,
        tracking_id=tracking_id_of(response.headers.get("trackingid"), body, ours),
        reason=response.reason or "",
        retry_after=response.headers.get("Retry-After"),
        links=tuple(response.headers.getall("Link", ())),
    )
