"""
Tests for the base-URL, loopback and token rules (``provisioner.webex.endpoint``).
"""

from __future__ import annotations

import pytest

from provisioner.errors import ConfigError
from provisioner.webex.endpoint import check_base_url, check_token, is_loopback


class TestBaseUrl:
    @pytest.mark.parametrize(
        "url",
        [
            "http://127.0.0.1:8080/v1",
            "http://127.10.0.3/v1",
            "http://[::1]:8080/v1",
            "http://localhost:1/v1",
            "https://api-usgov.webex.com/v1/",
        ],
    )
    def test_allowed_base_urls(self, url: str) -> None:
        """https anywhere and http to loopback are allowed (trailing slash dropped)."""

        assert check_base_url(url) == url.rstrip("/")

    @pytest.mark.parametrize(
        "url",
        [
            "http://10.0.0.1/v1",
            "http://api-usgov.webex.com/v1",
            "http://127.0.0.1.example.com/v1",
            "ftp://127.0.0.1/v1",
            "api-usgov.webex.com/v1",
        ],
    )
    def test_refused_base_urls(self, url: str) -> None:
        """Non-loopback http, other schemes and scheme-less URLs are refused."""

        with pytest.raises(ConfigError):
            check_base_url(url)


class TestLoopback:
    @pytest.mark.parametrize(
        ("host", "expected"),
        [
            ("localhost", True),
            ("LOCALHOST", True),
            ("127.0.0.1", True),
            ("127.255.0.9", True),
            ("::1", True),
            ("[::1]", True),
            ("10.0.0.1", False),
            ("localhost.example.com", False),
            ("api-usgov.webex.com", False),
        ],
    )
    def test_loopback_hosts(self, host: str, expected: bool) -> None:
        """Only localhost and the loopback ranges count as the emulator's home."""

        assert is_loopback(host) is expected


class TestToken:
    @pytest.mark.parametrize(
        "token", ["", " abc", "abc\n", "ab\rc", "ab\x00c", "abc\u2026", "ab\u00e9c"]
    )
    def test_unsendable_tokens_are_refused_without_echo(self, token: str) -> None:
        """A token a header cannot carry is refused, and the message never quotes it."""

        with pytest.raises(ConfigError) as caught:
            check_token(token)
        if token.strip():
            assert token.strip() not in str(caught.value)

    def test_a_plain_token_passes(self) -> None:
        """An ordinary bearer token is accepted as it is."""

        assert check_token("Zm9vYmFyYmF6_secret-Token.1") is None
