"""
The one redaction of secrets: the access token and device passwords never leave a
process in text we write.

Every place that keeps text it did not write itself goes through ``redact``: an
``ApiError`` redacts its message when it is made (an API answer may quote the
request body it refused, password included), so the journal, the report, the
Summary, the log and every exception message get the clean text whatever they do
with it; the log processors and the CLI's printed errors redact again, as a last
line of defence.

Secrets are registered in one process-wide set as they become known: the client
registers its token when it is made and each password before it sends it; the CLI
registers the manifest's passwords once it has read them. A secret is never
unregistered in a process (``forget_secrets`` is for tests): once a value was a
secret, text holding it is still not safe to write.

A secret is cut out both as it is and as JSON writes it inside a string (an echoed
request body arrives JSON-encoded within the answer's message: ``"`` as ``\\"``,
``é`` as ``\\u00e9``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # Types only: importing structlog costs ~0.2 s (it loads rich), and every
    # command imports this module through ``errors``, ``validate`` included.
    from structlog.typing import EventDict, WrappedLogger

__all__ = [
    "MIN_SECRET_LENGTH",
    "REDACTED",
    "SecretRedactor",
    "add_secrets",
    "forget_secrets",
    "redact",
    "registry",
]

REDACTED = "[redacted]"

#: Secrets shorter than this are not cut out of free text: a one- or two-character
#: "password" would mangle every message while protecting nothing.
MIN_SECRET_LENGTH = 4

# Keys whose values are secret whatever they hold. Matched after lower-casing and
# dropping "_" and "-", so ``accessToken``, ``access_token`` and ``Access-Token`` agree.
_SECRET_KEYS = frozenset(
    {
        "token",
        "accesstoken",
        "authorization",
        "password",
        "activationcode",
        "secret",
    }
)


def _normalise_key(key: str) -> str:
    return key.lower().replace("_", "").replace("-", "")


def _spellings(secret: str) -> set[str]:
    """
    The ways a secret can appear in text: as it is, and JSON-escaped inside a string.
    """
    return {
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
    }


class SecretRedactor:
    """
    Cut known secret values out of text, and mask values under secret-looking keys.

    The set of secrets grows during a command (the token first, then the passwords of
    the manifest once it is read); ``add`` is thread-safe so that rich's refresh thread
    or a worker thread logging at the same moment sees a consistent set. Called as a
    structlog processor, it cleans every value of an event.
    """

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._lock = threading.Lock()
        self._secrets: tuple[str, ...] = ()
        self.add(secrets)

    def add(self, secrets: Iterable[str | None]) -> None:
        """
        Register more values that must never appear in written text.
        """
        fresh: set[str] = set()
        for secret in secrets:
            if secret and len(secret) >= MIN_SECRET_LENGTH:
                fresh |= _spellings(secret)
        with self._lock:
            # Longest first, so a secret that contains another is cut whole.
            merged = set(self._secrets) | fresh
            self._secrets = tuple(sorted(merged, key=len, reverse=True))

    def clear(self) -> None:
        """
        Forget every registered secret.
        """
        with self._lock:
            self._secrets = ()

    def redact(self, text: str) -> str:
        """
        Return ``text`` with every registered secret replaced by ``REDACTED``.
        """
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def scrub(self, value: object) -> object:
        """
        Return ``value`` with every registered secret replaced, recursing into containers.
        """
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, Mapping):
            return {k: self._scrub_item(str(k), v) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self.scrub(v) for v in value]
        if isinstance(value, int | float | bool) or value is None:
            return value
        # Anything else (an exception, a Path, a dataclass) is rendered to text here, so
        # a secret hiding in its str() or repr() is caught too.
        return self.redact(str(value))

    def _scrub_item(self, key: str, value: object) -> object:
        if _normalise_key(key) in _SECRET_KEYS and value not in (None, ""):
            return REDACTED
        return self.scrub(value)

    def __call__(
        self, logger: WrappedLogger, method_name: str, event_dict: EventDict
    ) -> EventDict:
        return {k: self._scrub_item(k, v) for k, v in event_dict.items()}


# The process-wide set every writer redacts with.
_registry = SecretRedactor()


def registry() -> SecretRedactor:
    """
    The process-wide redactor (the log processor chain holds it).
    """
    return _registry


def add_secrets(*secrets: str | None) -> None:
    """
    Register values (the token, device passwords) that must never be written.
    """
    _registry.add(secrets)


def redact(text: str) -> str:
    """
    Return ``text`` with every registered secret cut out.
    """
    return _registry.redact(text)


def forget_secrets() -> None:
    """
    Forget every registered secret (tests start each case with none).
    """
    _registry.clear()
