"""
A stand-in for ``provisioner.webex.http.HttpPool``: canned answers, every request kept.

Put in place of the pool by replacing ``provisioner.webex.client.HttpPool`` (see
``tests/webex/test_client.py``'s ``mock`` fixture).

Shaped after aioresponses, which mocked the aiohttp client the pool replaced: answers
are registered by method and URL with ``get``/``post``/``patch``/``delete`` and each is
used once (``repeat``: that many times, or for ever with True); ``requests`` maps
``(method, URL)`` to what was sent, in order. A request nothing was registered for
fails as a refused connection would, and is still recorded.
"""

from __future__ import annotations

import http
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

import anyio.lowlevel
from yarl import URL

from provisioner.webex.http import ConnectFailed, HttpAnswer

__all__ = ["FakeHttp", "SentRequest"]


@dataclass(frozen=True, slots=True)
class SentRequest:
    """
    One request as the client sent it: ``kwargs`` holds its url, headers and data.
    """

    kwargs: dict[str, Any]


@dataclass(slots=True)
class _Canned:
    answer: HttpAnswer | None
    exception: BaseException | None
    uses: int | None  # None: for ever


@dataclass
class FakeHttp:
    """
    Canned answers by method and URL (query order aside); see the module.
    """

    requests: dict[tuple[str, URL], list[SentRequest]] = field(default_factory=dict)
    _canned: dict[tuple[str, URL], list[_Canned]] = field(default_factory=dict)

    def add(
        self,
        method: str,
        url: str,
        *,
        status: int = 200,
        payload: Any = None,
        body: str | bytes | None = None,
        headers: Mapping[str, str] | None = None,
        reason: str | None = None,
        exception: BaseException | None = None,
        repeat: bool | int = False,
    ) -> None:
        """
        Answer the next request(s) for ``method url`` so (or raise ``exception``).
        """
        fields = {"content-type": "application/json"} if payload is not None else {}
        fields.update({k.lower(): v for k, v in (headers or {}).items()})
        if payload is not None:
            raw = json.dumps(payload).encode()
        elif isinstance(body, str):
            raw = body.encode()
        else:
            raw = body or b""
        answer = HttpAnswer(
            status=status,
            reason=http.HTTPStatus(status).phrase if reason is None else reason,
            headers=tuple(fields.items()),
            body=raw,
        )
        uses = None if repeat is True else max(1, int(repeat))
        canned = _Canned(None if exception else answer, exception, uses)
        self._canned.setdefault((method, _normal(URL(url))), []).append(canned)

    def get(self, url: str, **answer: Any) -> None:
        self.add("GET", url, **answer)

    def post(self, url: str, **answer: Any) -> None:
        self.add("POST", url, **answer)

    def patch(self, url: str, **answer: Any) -> None:
        self.add("PATCH", url, **answer)

    def delete(self, url: str, **answer: Any) -> None:
        self.add("DELETE", url, **answer)

    async def request(
        self, method: str, url: URL, headers: Mapping[str, str], body: bytes | None
    ) -> HttpAnswer:
        key = (method, _normal(url))
        sent = SentRequest({"url": url, "headers": dict(headers), "data": body})
        self.requests.setdefault(key, []).append(sent)
        await anyio.lowlevel.checkpoint()  # a real request lets other tasks run
        queue = self._canned.get(key)
        if not queue:
            raise ConnectFailed(f"nothing registered for {method} {url}")
        canned = queue[0]
        if canned.uses is not None:
            canned.uses -= 1
            if canned.uses == 0:
                queue.pop(0)
        if canned.exception is not None:
            raise canned.exception
        assert canned.answer is not None
        return canned.answer

    async def close(self) -> None:
        return None


def _normal(url: URL) -> URL:
    """
    ``url`` with its query sorted: two spellings of one query are one key.
    """
    if not url.query_string:
        return url
    return url.with_query(urlencode(sorted(parse_qsl(url.query_string))))
