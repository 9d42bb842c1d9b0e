"""
What comes back on the connection, as values and errors.

``answer_from`` reads an HTTP answer into an ``Answer``; ``error_for_answer`` maps an
unwelcome status to the error tree; ``error_for_exception`` maps the connection's
failures (``http.py``). These are the only places that turn HTTP into ``ApiError``s.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

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
from provisioner.webex.http import (
    ConnectFailed,
    ConnectionDropped,
    HttpAnswer,
    HttpError,
)
from provisioner.webex.wire import (
    Answer,
    api_message,
    is_mac_in_use,
    parse_json,
    retry_after_seconds,
    tracking_id_of,
)

__all__ = [
    "SKEW_TOLERANCE",
    "answer_from",
    "clock_offset",
    "error_for_answer",
    "error_for_exception",
]


def error_for_exception(
    exc: BaseException, method: str, path: str, tracking_id: str
) -> ApiError | None:
    """
    Return the ``ApiError`` a failure to get an answer means, or None for an
    exception that is not a connection's (raised as it is).

    ``ConnectFailed`` is a ``ConnectError``: the request was never sent, so it is
    safe to replay; a timeout or a drop after sending is not. The client raises the
    error chained to the original.
    """
    if isinstance(exc, ApiError):
        return None
    where: dict[str, Any] = {"method": method, "path": path, "tracking_id": tracking_id}
    if isinstance(exc, ConnectFailed):
        return ConnectError(f"could not connect to the API: {exc}", **where)
    if isinstance(exc, TimeoutError):  # an AnswerTimeout is one
        return ApiTimeoutError("no answer from the API within the timeout", **where)
    if isinstance(exc, ConnectionDropped):
        return NetworkError(f"the connection dropped before the answer: {exc}", **where)
    if isinstance(exc, (HttpError, OSError)):
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


#: A gap between the API's clock and this machine's smaller than this is taken for
#: none: a Date header has whole seconds, and the run's time comparisons allow as much.
SKEW_TOLERANCE = timedelta(seconds=2)


def clock_offset(date: str | None, now: datetime) -> timedelta | None:
    """
    How far the API's clock is ahead of this machine's (``now``, UTC), from an
    answer's ``Date`` header: None without a readable one, zero within
    ``SKEW_TOLERANCE``.

    Devices and codes are stamped by the API's clock; the run's own times (when a
    row started, when the run began) are compared with those stamps, so a skewed
    clock here must be corrected by the API's.
    """
    if not date:
        return None
    try:
        told = parsedate_to_datetime(date)
    except (TypeError, ValueError, IndexError):
        return None
    if told.tzinfo is None:
        return None
    # The header drops the fraction of its second: its middle is the best guess.
    offset = told + timedelta(seconds=0.5) - now
    return offset if abs(offset) > SKEW_TOLERANCE else timedelta()


def answer_from(http: HttpAnswer, ours: str) -> Answer:
    """
    Read a whole answer: status, JSON body, tracking id, Retry-After and links.
    """
    body = parse_json(http.body)
    return Answer(
        status=http.status,
        body=body,
        tracking_id=tracking_id_of(http.header("trackingid"), body, ours),
        reason=http.reason,
        retry_after=http.header("retry-after"),
        links=http.all_headers("link"),
    )
