"""
Turn whatever stops a command into one sentence on stderr and an exit code, never a
traceback.

Every command runs its body inside ``command_errors()``. An error raised on purpose
(``ProvisionerError``) becomes ``Error: <one sentence saying what to do>`` and exit 2
(nothing could start). Errors raised inside a task group arrive wrapped in an
``ExceptionGroup``; ``the_error`` picks the one that says the most (a refused token
before an unreachable host) so a person never sees the group. Ctrl-C is not handled
here but by the ``provisioner`` group around every command (``cli.interrupted``): exit
130 from any command, at any moment a command has not taken it over itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NoReturn

import click

from provisioner.cli.exit_codes import EXIT_UNUSABLE
from provisioner.errors import (
    ApiError,
    ApiTimeoutError,
    AuthError,
    ConfigError,
    ConnectError,
    ForbiddenError,
    NetworkError,
    ProvisionerError,
    RateLimitedError,
    ServerError,
)
from provisioner.redaction import redact

__all__ = [
    "BASE_URL_ENV",
    "TOKEN_ENV",
    "CommandFailure",
    "command_errors",
    "describe_error",
    "fail",
    "the_error",
]

TOKEN_ENV = "WEBEX_ACCESS_TOKEN"
BASE_URL_ENV = "WEBEX_BASE_URL"


# The order in which the errors of one group are told: the first kind found is the
# one a person must fix first (a refused token makes every other failure moot).
_PRIORITY: tuple[type[ProvisionerError], ...] = (
    AuthError,
    ForbiddenError,
    ConfigError,
    ConnectError,
    NetworkError,
    ApiTimeoutError,
    ServerError,
    RateLimitedError,
    ApiError,
    ProvisionerError,
)


@dataclass(slots=True)
class CommandFailure:
    """
    What a command knows that makes its error messages precise (set as it learns it).
    """

    base_url: str | None = None


def the_error(group: BaseExceptionGroup[BaseException]) -> ProvisionerError | None:
    """
    The error of a group to tell a person, or None when one of them is not ours (a bug).
    """
    leaves = list(_leaves(group))
    ours = [leaf for leaf in leaves if isinstance(leaf, ProvisionerError)]
    if len(ours) != len(leaves):
        return None
    for kind in _PRIORITY:
        for error in ours:
            if isinstance(error, kind):
                return error
    return None  # pragma: no cover - ProvisionerError closes the priority list


def _leaves(group: BaseExceptionGroup[BaseException]) -> Iterator[BaseException]:
    for error in group.exceptions:
        if isinstance(error, BaseExceptionGroup):
            yield from _leaves(error)
        else:
            yield error


@contextlib.contextmanager
def command_errors() -> Iterator[CommandFailure]:
    """
    Run a command's body; an error it raises on purpose ends it with one sentence.

    Yields a ``CommandFailure`` the body fills in (the base URL once it is known), so
    a message can name where the command was talking to.
    """
    where = CommandFailure()
    try:
        yield where
    except ProvisionerError as error:
        _stop(error, where)
    except BaseExceptionGroup as group:
        told = the_error(group)
        if told is None:
            raise
        _stop(told, where)


def _stop(error: ProvisionerError, where: CommandFailure) -> NoReturn:
    message, code = describe_error(error, base_url=where.base_url)
    import structlog  # here: ``validate`` imports this module, and not structlog

    # Only once logging is set up: before it (a missing token is found first),
    # structlog's default would print the event on standard output.
    if structlog.is_configured():
        structlog.get_logger().info("command_stopped", error_type=type(error).__name__)
    fail(message, code)


def describe_error(
    exc: ProvisionerError, *, base_url: str | None = None
) -> tuple[str, int]:
    """
    Turn an error that stopped a command into one sentence for people and an exit code.

    Every error that reaches a command (rather than becoming a row's outcome) means
    nothing could start: exit 2.
    """
    at = f" at {base_url}" if base_url else ""
    if isinstance(exc, AuthError):
        message = (
            "The API refused the access token (401 Unauthorized): check the token "
            f"(${TOKEN_ENV} or --token-file); it may be expired, mistyped or for "
            "another Webex environment (FedRAMP vs commercial: --cloud)."
        )
    elif isinstance(exc, ForbiddenError):
        call = f" to {exc.method} {exc.path}" if exc.method and exc.path else ""
        message = (
            f"The API refused the request{call} (403 Forbidden): the token lacks a "
            "scope or admin rights; use a full admin's token with the "
            "spark-admin:devices_read, spark-admin:devices_write and "
            "spark-admin:telephony_config_read scopes."
        )
    elif isinstance(exc, ConnectError):
        message = (
            f"Cannot reach the API{at} ({exc.message}); check --base-url (or "
            f"${BASE_URL_ENV}) and the network."
        )
    elif isinstance(exc, ApiTimeoutError):
        message = (
            f"The API{at} did not answer in time, even after retries; check "
            f"--base-url (or ${BASE_URL_ENV}) and the network, or try again later."
        )
    elif isinstance(exc, NetworkError):
        message = (
            f"The connection to the API{at} kept dropping ({exc.message}); check "
            "the network, or try again later."
        )
    elif isinstance(exc, ServerError):
        message = (
            f"The API{at} kept failing (HTTP {exc.status}: {exc.message.rstrip('.')}) "
            "even after retries; Webex may be having trouble: try again later."
        )
    elif isinstance(exc, RateLimitedError):
        message = (
            f"The API{at} kept answering 429 Too Many Requests even after waiting; "
            "another tool may be using the same app or org: try again later."
        )
    elif isinstance(exc, ApiError):
        call = f"{exc.method} {exc.path}" if exc.method and exc.path else "an API call"
        status = f" (HTTP {exc.status})" if exc.status else ""
        message = f"The API refused {call}{status}: {exc.message.rstrip('.')}."
    else:
        message = str(exc)
    # A tracking id helps Cisco support only when the API answered.
    if isinstance(exc, ApiError) and exc.status is not None and exc.tracking_id:
        message += f" (tracking id {exc.tracking_id})"
    return message, EXIT_UNUSABLE


def fail(message: str, code: int = EXIT_UNUSABLE) -> NoReturn:
    """
    Print ``Error: message`` on stderr (secrets cut out) and exit with ``code``.
    """
    click.echo(f"Error: {redact(message)}", err=True)
    raise SystemExit(code)
