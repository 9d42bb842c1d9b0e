"""
Where requests may go and what may be sent: the base-URL, loopback and token rules.

One home for the rules the CLI applies to its flags and the client applies again to
its settings, so both say the same thing in the same words.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from provisioner.errors import ConfigError
from provisioner.settings import FEDRAMP_BASE_URL

__all__ = ["check_base_url", "check_token", "is_loopback"]


def check_base_url(url: str) -> str:
    """
    Return ``url`` without surrounding space or a trailing slash if it is an allowed
    API base URL.

    ``https://`` is allowed anywhere; ``http://`` only for a loopback host (127.0.0.0/8,
    ::1, localhost), which is where the emulator runs.

    Raises:
        ConfigError: any other scheme, no host, or ``http://`` to a non-loopback host.
    """
    parts = urlsplit(url.strip())
    host = parts.hostname
    if parts.scheme not in ("http", "https") or not host:
        raise ConfigError(
            f"The base URL {url!r} is not an http(s) URL. Use e.g. {FEDRAMP_BASE_URL}."
        )
    if parts.scheme == "http" and not is_loopback(host):
        raise ConfigError(
            f"Refusing plain http:// to {host}: the token would cross the network "
            "unencrypted. Use https://, or http:// only for a loopback address "
            "(127.0.0.1, ::1, localhost) such as the bundled emulator."
        )
    return url.strip().rstrip("/")


def is_loopback(host: str) -> bool:
    """
    True for ``localhost`` and any loopback address (127.0.0.0/8, ::1).
    """
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_token(token: str) -> None:
    """
    Refuse a token that cannot be sent in a header, without echoing it.

    A line break in a header would end it early and start another (the request's
    text is ours to write, see ``http.py``), and a header carries no character past
    ASCII (Webex tokens have none; a pasted "…" or a smart quote does): refuse such a
    token first, in words that name no secret.
    """
    unsendable = any(ch in token for ch in "\r\n\0") or not token.isascii()
    if not token or unsendable or token != token.strip():
        raise ConfigError(
            "The access token is empty or contains whitespace, control or non-ASCII "
            "characters; check WEBEX_ACCESS_TOKEN or the token file."
        )
