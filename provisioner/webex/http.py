"""
HTTP/1.1 for the API client: keep-alive connections to one origin, one request each.

Why our own and not aiohttp's client: a run sends small JSON requests and reads small
JSON answers, thousands of them, and needs only what this module does: keep-alive,
answers sized by ``Content-Length``, chunked or by the connection's close, TLS, one
total timeout per request, and telling a request that was never sent from one that
was. aiohttp's request path costs about twice this module's CPU per call, and
importing it about 0.2 s per command (issue 15's CPU goal). The emulator
stays on aiohttp's server; nothing here imports aiohttp.

What a failure says, because the client's replay rules stand on it:

``ConnectFailed``
    No connection (refused, unknown host, TLS handshake, or the timeout ran out while
    connecting): the request was never sent, so replaying it is safe.
``AnswerTimeout``
    Sent, and no whole answer within the timeout. A ``TimeoutError``.
``ConnectionDropped``
    The connection closed, or sent something that is not HTTP, before a whole answer.

A connection goes back to the pool only after a whole answer that did not ask to
close it; any failure closes it. A connection the server closed while idle is noticed
(its protocol saw the close) and dropped when next taken.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from yarl import URL

if TYPE_CHECKING:
    import ssl

__all__ = [
    "AnswerTimeout",
    "ConnectFailed",
    "ConnectionDropped",
    "HttpAnswer",
    "HttpError",
    "HttpPool",
]

#: Bounds on what the pool reads, against a peer that never stops sending.
MAX_HEAD = 64 * 1024
MAX_BODY = 64 * 1024 * 1024

#: Statuses whose answers never have a body (RFC 9112 section 6.3).
_NO_BODY = frozenset({204, 304})


class HttpError(Exception):
    """
    A request that got no whole answer.
    """


class ConnectFailed(HttpError):
    """
    No connection to the API: the request was never sent.
    """


class AnswerTimeout(HttpError, TimeoutError):
    """
    The request was sent and no whole answer came within the timeout.
    """


class ConnectionDropped(HttpError):
    """
    The connection closed (or carried something that is not HTTP) before a whole answer.
    """


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    """
    One whole HTTP answer: status, reason, headers (names lower-cased, in order), body.
    """

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        """
        Return the first value of the header ``name`` (lower-case), or None.
        """
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def all_headers(self, name: str) -> tuple[str, ...]:
        """
        Return every value of the header ``name`` (lower-case), in order.
        """
        return tuple(value for key, value in self.headers if key == name)


class _Connection(asyncio.Protocol):
    """
    One connection: sends a request, parses its answer as the bytes arrive.
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._buffer = bytearray()
        self._waiter: asyncio.Future[HttpAnswer] | None = None
        self._no_body = False
        # The answer being read: its head once parsed, then its body as it comes.
        self._head: tuple[int, str, tuple[tuple[str, str], ...], bool] | None = None
        self._length: int | None = None  # None: chunked or until the close
        self._chunked = False
        self._body = bytearray()
        self._chunk_left = -1  # -1: a chunk-size line is next
        self.reusable = False

    # -- asyncio.Protocol --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._waiter.done():
            # Bytes nobody asked for: the connection's state is unknown; retire it.
            self._retire()
            return
        self._buffer += data
        try:
            self._parse()
        except ConnectionDropped as error:
            self._fail(error)

    def eof_received(self) -> bool:
        self._finish_at_close()
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._finish_at_close(exc)

    # -- the pool's side ---------------------------------------------------------------

    def send(self, request: bytes, *, no_body: bool) -> asyncio.Future[HttpAnswer]:
        """
        Write one request; return the future its answer completes.
        """
        transport = self.transport
        if transport is None or self.closed or transport.is_closing():
            # Nothing was written: as safe to replay as a refused connection.
            raise ConnectFailed("the connection closed before the request was sent")
        self._waiter = asyncio.get_running_loop().create_future()
        self._no_body = no_body
        self._head = None
        self._body = bytearray()
        self._chunk_left = -1
        self.reusable = False
        transport.write(request)
        return self._waiter

    def abort(self) -> None:
        """
        Close at once (a timeout or a cancelled request leaves it in an unknown state).
        """
        self._retire()
        if self.transport is not None:
            self.transport.abort()

    # -- parsing ---------------------------------------------------------------------

    def _parse(self) -> None:
        while self._head is None:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > MAX_HEAD:
                    raise ConnectionDropped("the answer's head is too long")
                return
            head = bytes(self._buffer[:end])
            del self._buffer[: end + 4]
            self._read_head(head)
        if self._chunked:
            self._read_chunks()
        elif self._length is not None:
            if len(self._buffer) >= self._length:
                self._body = self._buffer[: self._length]
                del self._buffer[: self._length]
                self._complete()
        elif len(self._buffer) > MAX_BODY:
            raise ConnectionDropped("the answer's body is too long")

    def _read_head(self, head: bytes) -> None:
        lines = head.decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        code, _, reason = rest.partition(" ")
        if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
            raise ConnectionDropped(f"not an HTTP answer: {lines[0][:60]!r}")
        status = int(code)
        headers = []
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon:
                raise ConnectionDropped(f"a malformed header line: {line[:60]!r}")
            headers.append((name.strip().lower(), value.strip()))
        if 100 <= status < 200:
            return  # an interim answer (100 Continue): the real one follows
        fields = tuple(headers)
        connection = ",".join(v for k, v in fields if k == "connection").lower()
        keep_alive = (
            "keep-alive" in connection
            if version == "HTTP/1.0"
            else "close" not in connection
        )
        encoding = ",".join(v for k, v in fields if k == "transfer-encoding").lower()
        self._chunked = False
        self._length = None
        if self._no_body or status in _NO_BODY:
            self._length = 0
        elif "chunked" in encoding:
            self._chunked = True
        else:
            length = next((v for k, v in fields if k == "content-length"), None)
            if length is not None:
                if not length.isdigit() or int(length) > MAX_BODY:
                    raise ConnectionDropped(f"a bad Content-Length: {length[:30]!r}")
                self._length = int(length)
            else:
                keep_alive = False  # the body ends where the connection does
        self._head = (status, reason.strip(), fields, keep_alive)

    def _read_chunks(self) -> None:
        while True:
            if self._chunk_left < 0:
                end = self._buffer.find(b"\r\n")
                if end < 0:
                    return
                size = bytes(self._buffer[:end]).split(b";")[0].strip()
                try:
                    self._chunk_left = int(size, 16)
                except ValueError:
                    raise ConnectionDropped(
                        f"a bad chunk size: {size[:20]!r}"
                    ) from None
                del self._buffer[: end + 2]
                if self._chunk_left == 0:
                    self._chunk_left = -2  # trailers, up to an empty line
            if self._chunk_left == -2:
                if self._buffer.startswith(b"\r\n"):
                    del self._buffer[:2]
                    self._complete()
                    return
                end = self._buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                del self._buffer[: end + 4]
                self._complete()
                return
            if len(self._buffer) < self._chunk_left + 2:
                return
            self._body += self._buffer[: self._chunk_left]
            if len(self._body) > MAX_BODY:
                raise ConnectionDropped("the answer's body is too long")
            del self._buffer[: self._chunk_left + 2]
            self._chunk_left = -1

    def _complete(self) -> None:
        assert self._head is not None
        status, reason, fields, keep_alive = self._head
        body = _decoded(bytes(self._body), fields)
        self.reusable = keep_alive and not self._buffer and not self.closed
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(HttpAnswer(status, reason, fields, body))

    def _finish_at_close(self, exc: Exception | None = None) -> None:
        """
        The peer closed: a body sized by the close is whole; anything else dropped.
        """
        self.closed = True
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        head = self._head
        # A body sized by the close is whole only at a clean close, not at a reset.
        if (
            exc is None
            and head is not None
            and not self._chunked
            and self._length is None
        ):
            self._body = self._buffer
            self._buffer = bytearray()
            self._complete()
            return
        why = f" ({exc})" if exc else ""
        self._fail(
            ConnectionDropped(f"the connection closed before a whole answer{why}")
        )

    def _fail(self, error: ConnectionDropped) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
        self._retire()

    def _retire(self) -> None:
        self.closed = True
        self.reusable = False
        if self.transport is not None:
            self.transport.close()


def _why(error: OSError) -> str:
    """
    Say why a connection failed, with what to do about an untrusted certificate.
    """
    reason = error.strerror or str(error) or type(error).__name__
    if "CERTIFICATE_VERIFY_FAILED" in reason:
        # Commonly a proxy that inspects TLS and signs with the agency's own CA.
        reason += (
            "; if your network inspects TLS, point SSL_CERT_FILE at the CA bundle "
            "that signs for it"
        )
    return reason


def _decoded(body: bytes, fields: tuple[tuple[str, str], ...]) -> bytes:
    """
    Undo a gzip or deflate ``Content-Encoding`` (never asked for, but allowed).
    """
    encoding = next((v.lower() for k, v in fields if k == "content-encoding"), "")
    if encoding in ("", "identity") or not body:
        return body
    try:
        if encoding in ("gzip", "x-gzip"):
            return zlib.decompress(body, wbits=16 + zlib.MAX_WBITS)
        if encoding == "deflate":
            return zlib.decompress(body)
    except zlib.error as error:
        raise ConnectionDropped(f"a damaged {encoding} body: {error}") from None
    raise ConnectionDropped(f"an answer in an unknown encoding: {encoding[:30]!r}")


class HttpPool:
    """
    Keep-alive connections to one origin; ``request`` sends one request on one of them.

    Args:
        origin: the API's base URL (only its scheme, host and port are used).
        idle: the most idle connections kept for reuse (the run's concurrency).
        timeout: seconds for one request, connecting included.
        user_agent: the ``User-Agent`` every request carries.
        ssl_context: what an https origin's certificate is checked with; None for the
            system's CAs (``SSL_CERT_FILE``/``SSL_CERT_DIR`` point elsewhere), loaded
            on the first connection.
    """

    def __init__(
        self,
        origin: URL,
        *,
        idle: int,
        timeout: float,
        user_agent: str,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        host = origin.raw_host
        if origin.scheme not in ("http", "https") or not host or origin.port is None:
            raise ValueError(f"not an http(s) URL with a host: {origin}")
        self._host = host
        self._port = origin.port
        self._tls = origin.scheme == "https"
        self._ssl = ssl_context
        authority = f"[{host}]" if ":" in host else host
        if origin.explicit_port is not None and not origin.is_default_port():
            authority = f"{authority}:{origin.port}"
        # The header lines every request carries, written once.
        self._fixed = f"Host: {authority}\r\nUser-Agent: {user_agent}\r\n"
        self._idle_limit = max(1, idle)
        self._timeout = timeout
        self._idle: list[_Connection] = []

    async def request(
        self, method: str, url: URL, headers: Mapping[str, str], body: bytes | None
    ) -> HttpAnswer:
        """
        Send one request and return its whole answer.

        Raises:
            ConnectFailed: no connection; the request was never sent.
            AnswerTimeout: sent, no whole answer within the timeout.
            ConnectionDropped: the connection closed before a whole answer.
        """
        lines = [f"{method} {url.raw_path_qs} HTTP/1.1\r\n", self._fixed]
        lines += [f"{name}: {value}\r\n" for name, value in headers.items()]
        if body is not None or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {0 if body is None else len(body)}\r\n")
        lines.append("\r\n")
        request = "".join(lines).encode("latin-1")
        if body:
            request += body
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        connection = await self._connection(deadline)
        try:
            async with asyncio.timeout_at(deadline):
                answer = await connection.send(request, no_body=method == "HEAD")
        except TimeoutError:
            connection.abort()
            raise AnswerTimeout(f"no whole answer within {self._timeout:g} s") from None
        except BaseException:
            # Dropped, or cancelled from outside: the connection's state is unknown.
            connection.abort()
            raise
        self._release(connection)
        return answer

    async def close(self) -> None:
        """
        Close every idle connection.
        """
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.abort()

    async def _connection(self, deadline: float) -> _Connection:
        while self._idle:
            connection = self._idle.pop()
            transport = connection.transport
            if not connection.closed and transport and not transport.is_closing():
                return connection
        loop = asyncio.get_running_loop()
        if self._tls and self._ssl is None:
            # Made on first use (and ssl imported then): loading the system's CA list
            # costs tens of ms that a run against the local emulator never needs.
            import ssl

            self._ssl = ssl.create_default_context()
        where = f"{self._host}:{self._port}"
        try:
            async with asyncio.timeout_at(deadline):
                _, connection = await loop.create_connection(
                    _Connection,
                    self._host,
                    self._port,
                    ssl=self._ssl if self._tls else None,
                    server_hostname=self._host if self._tls else None,
                )
        except TimeoutError:
            raise ConnectFailed(f"cannot connect to {where}: timed out") from None
        except OSError as error:  # an ssl.SSLError (the certificate) is one too
            raise ConnectFailed(f"cannot connect to {where}: {_why(error)}") from None
        return connection

    def _release(self, connection: _Connection) -> None:
        if connection.reusable and len(self._idle) < self._idle_limit:
            self._idle.append(connection)
        else:
            connection.abort()
