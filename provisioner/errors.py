"""
Every error the package raises, in one tree.

::

    ProvisionerError
    ├── ConfigError               bad flags or settings; the run cannot start
    │   ├── NotConfirmedError     the change to an org was declined, or nobody could be
    │   │                         asked (off a terminal without --yes)
    │   └── JournalBusyError      another command is working with the same journal
    ├── ManifestError             the manifest file itself is unusable (exit 2)
    │   ├── ManifestReadError     unreadable: missing file, wrong encoding, missing sheet
    │   └── MissingColumnError    a required column is absent
    └── ApiError                  a call to the Webex API failed; carries status, message, tracking id
        ├── TransientError        worth retrying: the request may succeed later
        │   ├── RateLimitedError  429 (or 423), with ``retry_after`` seconds
        │   ├── ServerError       5xx
        │   ├── ApiTimeoutError   no answer in time
        │   └── NetworkError      connection refused, reset or dropped
        │       └── ConnectError  the connection was never opened: the request was not sent
        ├── OutcomeUnknownError   a non-idempotent call (create) may or may not have happened;
        │                         look the device up before trying again
        └── PermanentError        retrying the same request cannot help
            ├── AuthError         401: token missing, expired or unknown
            ├── ForbiddenError    403: the token lacks a scope or admin rights
            ├── NotFoundError     404
            ├── InvalidRequestError 400/405/409/410/415 and other 4xx
            └── MacInUseError     the MAC is already registered ("MAC Address is in use")

Retry decisions are made on these types, never on message text. Messages never contain
the access token, a device password or an activation code: an ``ApiError`` passes its
message through ``provisioner.redaction.redact`` when it is made, because its text may
come from the API's answer, and an answer may quote the request it refused (the
password of a create among it). Every sink of that text (the journal, the report,
the log, the terminal) then holds the clean message.
"""

from __future__ import annotations

from provisioner.redaction import redact

__all__ = [
    "ApiError",
    "ApiTimeoutError",
    "AuthError",
    "ConfigError",
    "ConnectError",
    "ForbiddenError",
    "InvalidRequestError",
    "JournalBusyError",
    "MacInUseError",
    "ManifestError",
    "ManifestReadError",
    "MissingColumnError",
    "NetworkError",
    "NotConfirmedError",
    "NotFoundError",
    "OutcomeUnknownError",
    "PermanentError",
    "ProvisionerError",
    "RateLimitedError",
    "ServerError",
    "TransientError",
]


class ProvisionerError(Exception):
    """
    Base of every error this package raises on purpose.
    """


class ConfigError(ProvisionerError):
    """
    A flag, setting or environment value is unusable; the run cannot start.
    """


class NotConfirmedError(ConfigError):
    """
    A command that would change an org was not confirmed: nothing was written.
    """


class JournalBusyError(ConfigError):
    """
    Another provisioner command holds the journal (its lock): this one must not
    write it.
    """


class ManifestError(ProvisionerError):
    """
    The manifest file as a whole cannot be used (bad rows are outcomes, not errors).
    """


class ManifestReadError(ManifestError):
    """
    The file cannot be read: missing, wrong encoding, not a spreadsheet, missing sheet.
    """


class MissingColumnError(ManifestError):
    """
    A required column is missing from the header row.
    """


class ApiError(ProvisionerError):
    """
    A Webex API call failed.

    Args:
        message: what went wrong, in words a person can act on; registered secrets
            are cut out of it here (it may quote an API answer).
        status: the HTTP status, or None when no response arrived.
        tracking_id: the response's tracking id (what Cisco support asks for), or ours
            when no response arrived.
        method: the HTTP method of the failing call.
        path: the path of the failing call, relative to the base URL, without query.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        tracking_id: str | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        message = redact(message)
        super().__init__(message)
        self.message = message
        self.status = status
        self.tracking_id = tracking_id
        self.method = method
        self.path = path

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.message!r}, status={self.status!r}, "
            f"tracking_id={self.tracking_id!r})"
        )


class TransientError(ApiError):
    """
    The request may succeed if tried again later.
    """


class RateLimitedError(TransientError):
    """
    The API answered 429 (or 423): slow down for ``retry_after`` seconds.
    """

    def __init__(
        self, message: str, *, retry_after: float | None = None, **kwargs: object
    ) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after


class ServerError(TransientError):
    """
    The API answered with a 5xx status.
    """


class ApiTimeoutError(TransientError):
    """
    No answer arrived within the timeout.
    """


class NetworkError(TransientError):
    """
    The connection failed or dropped before an answer arrived.
    """


class ConnectError(NetworkError):
    """
    The connection could not be opened, so the request was never sent.

    Unlike other network errors this one is safe to replay even for a create.
    """


class OutcomeUnknownError(ApiError):
    """
    A create may or may not have taken effect (timeout, dropped connection, 5xx).

    It is never replayed blind: the caller looks the device up by MAC first.
    ``cause`` is the transient error that made the outcome unknown.
    """

    def __init__(self, message: str, *, cause: ApiError, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.cause = cause


class PermanentError(ApiError):
    """
    Retrying the same request cannot help.
    """


class AuthError(PermanentError):
    """
    401: the access token is missing, expired or unknown.
    """


class ForbiddenError(PermanentError):
    """
    403: the token lacks a needed scope or admin rights.
    """


class NotFoundError(PermanentError):
    """
    404: the resource (device, workspace, person) does not exist.
    """


class InvalidRequestError(PermanentError):
    """
    400, 405, 409, 410, 415 and other 4xx answers: the request itself is refused.
    """


class MacInUseError(InvalidRequestError):
    """
    Create by MAC refused because the MAC is already registered.
    """
