"""
HttpPool on a real socket: the request's bytes, every way an answer is sized, reuse,
and each failure's class (the client's replay rules stand on which one it is).

The server is scripted per test: for each request it reads (head, and the body its
Content-Length announces) it writes the test's bytes and, when told, closes.
"""

from __future__ import annotations

import asyncio
import gzip
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from yarl import URL

from provisioner.webex.http import (
    AnswerTimeout,
    ConnectFailed,
    ConnectionDropped,
    HttpPool,
)

TLS = Path(__file__).parent.parent / "data" / "tls"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"

#: One scripted reply: the bytes to write (b"HOLD": none, ever), then whether to
#: close the connection (RESET: abort it, the peer sees a reset).
Reply = tuple[bytes, bool | str]
RESET = "reset"


@dataclass
class Server:
    """
    A scripted HTTP server on 127.0.0.1; ``replies`` are used in order.
    """

    replies: list[Reply]
    received: list[bytes] = field(default_factory=list)
    connections: int = 0
    hold: asyncio.Event = field(default_factory=asyncio.Event)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    port: int = 0

    async def handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = await reader.readexactly(length)
                self.received.append(head + body)
                self.arrived.set()
                data, close = self.replies.pop(0)
                if data == b"HOLD":
                    await self.hold.wait()
                    return
                writer.write(data)
                await writer.drain()
                if close == RESET:
                    linger = struct.pack("ii", 1, 0)  # close at once, with a reset
                    writer.get_extra_info("socket").setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, linger
                    )
                if close:
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()


Start = Callable[..., Awaitable[Server]]


@pytest.fixture(name="serve")
async def _serve() -> AsyncIterator[Start]:
    """
    ``await serve(reply, ..., tls=False)`` starts a scripted server; all stop after.
    """
    servers: list[asyncio.Server] = []
    scripts: list[Server] = []

    async def serve(*replies: Reply, tls: bool = False) -> Server:
        script = Server(list(replies))
        context = None
        if tls:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(TLS / "localhost.pem", TLS / "localhost.key")
        server = await asyncio.start_server(script.handle, "127.0.0.1", 0, ssl=context)
        script.port = server.sockets[0].getsockname()[1]
        servers.append(server)
        scripts.append(script)
        return script

    yield serve
    for script in scripts:
        script.hold.set()
    for server in servers:
        server.close()
        await server.wait_closed()


def pool_for(
    script: Server,
    *,
    timeout: float = 5.0,
    tls: bool = False,
    ssl_context: ssl.SSLContext | None = None,
) -> tuple[HttpPool, URL]:
    """
    A pool for the script's server, and the server's base URL.
    """
    base = URL(f"{'https' if tls else 'http'}://127.0.0.1:{script.port}/v1")
    pool = HttpPool(
        base,
        idle=4,
        timeout=timeout,
        user_agent="provisioner-test",
        ssl_context=ssl_context,
    )
    return pool, base


class TestRequest:
    async def test_the_request_on_the_wire(self, serve: Start) -> None:
        """Request line with the raw path and query, Host, agent, headers, length, body."""
        script = await serve((OK, False))
        pool, base = pool_for(script)
        url = (base / "devices").with_query({"orgId": "O 1", "tag": "a,b"})

        await pool.request(
            "POST", url, {"Authorization": "Bearer t", "X-A": "1"}, b'{"mac":"1"}'
        )
        await pool.close()

        assert script.received == [
            b"POST /v1/devices?orgId=O+1&tag=a,b HTTP/1.1\r\n"
            + f"Host: 127.0.0.1:{script.port}\r\n".encode()
            + b"User-Agent: provisioner-test\r\n"
            b"Authorization: Bearer t\r\nX-A: 1\r\n"
            b'Content-Length: 11\r\n\r\n{"mac":"1"}'
        ]

    async def test_a_get_carries_no_length(self, serve: Start) -> None:
        """A GET has no body and says nothing of one."""
        script = await serve((OK, False))
        pool, base = pool_for(script)

        await pool.request("GET", base / "people" / "me", {}, None)
        await pool.close()

        assert b"Content-Length" not in script.received[0]
        assert script.received[0].startswith(b"GET /v1/people/me HTTP/1.1\r\n")


class TestAnswers:
    async def test_status_reason_headers_and_body(self, serve: Start) -> None:
        """Headers keep their order and every value; names are lower-cased."""
        answer_bytes = (
            b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3\r\n"
            b'Link: <a>; rel="next"\r\nLINK: <b>; rel="last"\r\n'
            b"Content-Length: 5\r\n\r\nhello"
        )
        script = await serve((answer_bytes, False))
        pool, base = pool_for(script)

        answer = await pool.request("GET", base, {}, None)
        await pool.close()

        assert (answer.status, answer.reason, answer.body) == (
            429,
            "Too Many Requests",
            b"hello",
        )
        assert answer.header("retry-after") == "3"
        assert answer.all_headers("link") == ('<a>; rel="next"', '<b>; rel="last"')
        assert answer.header("absent") is None

    async def test_a_chunked_answer(self, serve: Start) -> None:
        """Chunks (with an extension and a trailer) are joined; the connection is kept."""
        chunked = (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b'4;ext=1\r\n{"a"\r\n3\r\n:1}\r\n0\r\nX-Trailer: t\r\n\r\n'
        )
        script = await serve((chunked, False), (OK, False))
        pool, base = pool_for(script)

        first = await pool.request("GET", base, {}, None)
        second = await pool.request("GET", base, {}, None)
        await pool.close()

        assert (first.body, second.body) == (b'{"a":1}', b"{}")
        assert script.connections == 1

    async def test_an_answer_sized_by_the_close(self, serve: Start) -> None:
        """No length and no chunks: the body is all until the close; no reuse."""
        script = await serve((b"HTTP/1.0 200 OK\r\n\r\n[1, 2]", True), (OK, False))
        pool, base = pool_for(script)

        first = await pool.request("GET", base, {}, None)
        second = await pool.request("GET", base, {}, None)
        await pool.close()

        assert (first.body, second.body) == (b"[1, 2]", b"{}")
        assert script.connections == 2

    async def test_connection_close_is_obeyed(self, serve: Start) -> None:
        """An answer saying Connection: close is not followed by another on it."""
        closing = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}"
        script = await serve((closing, True), (OK, False))
        pool, base = pool_for(script)

        await pool.request("GET", base, {}, None)
        await pool.request("GET", base, {}, None)
        await pool.close()

        assert script.connections == 2

    async def test_keep_alive_reuses_one_connection(self, serve: Start) -> None:
        """Answers that keep the connection open let the next request use it."""
        no_content = b"HTTP/1.1 204 No Content\r\n\r\n"
        script = await serve((OK, False), (no_content, False), (OK, False))
        pool, base = pool_for(script)

        answers = [await pool.request("DELETE", base, {}, None) for _ in range(3)]
        await pool.close()

        assert [a.status for a in answers] == [200, 204, 200]
        assert answers[1].body == b""
        assert script.connections == 1

    async def test_an_interim_answer_is_skipped(self, serve: Start) -> None:
        """A 100 Continue before the answer is not the answer."""
        script = await serve((b"HTTP/1.1 100 Continue\r\n\r\n" + OK, False))
        pool, base = pool_for(script)

        answer = await pool.request("POST", base, {}, b"{}")
        await pool.close()

        assert (answer.status, answer.body) == (200, b"{}")

    async def test_a_gzip_body_is_unpacked(self, serve: Start) -> None:
        """A server that gzips anyway is read right."""
        packed = gzip.compress(b'{"id":"D"}')
        answer_bytes = (
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n"
            + f"Content-Length: {len(packed)}\r\n\r\n".encode()
            + packed
        )
        script = await serve((answer_bytes, False))
        pool, base = pool_for(script)

        answer = await pool.request("GET", base, {}, None)
        await pool.close()

        assert answer.body == b'{"id":"D"}'

    async def test_an_idle_connection_the_server_closed_is_not_used(
        self, serve: Start
    ) -> None:
        """The server closing a kept connection (its keep-alive timeout) costs nothing."""
        script = await serve((OK, True), (OK, False))
        pool, base = pool_for(script)

        await pool.request("GET", base, {}, None)
        for _ in range(20):  # let the close arrive
            await asyncio.sleep(0)
        answer = await pool.request("GET", base, {}, None)
        await pool.close()

        assert answer.status == 200
        assert script.connections == 2


class TestFailures:
    async def test_a_refused_connection_was_never_sent(self) -> None:
        """Nothing listening: ConnectFailed, the one failure that is safe to replay."""
        probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = probe.sockets[0].getsockname()[1]
        probe.close()
        await probe.wait_closed()
        pool = HttpPool(
            URL(f"http://127.0.0.1:{port}/v1"), idle=1, timeout=5, user_agent="t"
        )

        with pytest.raises(ConnectFailed, match=f"127.0.0.1:{port}"):
            await pool.request("POST", URL(f"http://127.0.0.1:{port}/v1"), {}, b"{}")

    async def test_closed_with_no_answer_is_dropped(self, serve: Start) -> None:
        """The request went out and the connection closed: ConnectionDropped."""
        script = await serve((b"", True))
        pool, base = pool_for(script)

        with pytest.raises(ConnectionDropped, match="before a whole answer"):
            await pool.request("POST", base, {}, b"{}")
        assert len(script.received) == 1

    async def test_closed_in_the_middle_of_the_body_is_dropped(
        self, serve: Start
    ) -> None:
        """Fewer bytes than the Content-Length, then the close: not a whole answer."""
        cut = b'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{"id"'
        script = await serve((cut, True))
        pool, base = pool_for(script)

        with pytest.raises(ConnectionDropped):
            await pool.request("GET", base, {}, None)

    async def test_a_reset_before_the_close_that_sizes_the_body_is_dropped(
        self, serve: Start
    ) -> None:
        """A body sized by the close is whole only at a clean close: a reset part way
        is a dropped answer, not a short body."""
        script = await serve((b"HTTP/1.0 200 OK\r\n\r\n[1, 2", RESET))
        pool, base = pool_for(script)

        with pytest.raises(ConnectionDropped):
            await pool.request("GET", base, {}, None)

    async def test_something_that_is_not_http_is_dropped(self, serve: Start) -> None:
        """A peer that answers garbage gets its connection closed, not trusted."""
        script = await serve((b"SSH-2.0-OpenSSH\r\n\r\n", False), (OK, False))
        pool, base = pool_for(script)

        with pytest.raises(ConnectionDropped, match="not an HTTP answer"):
            await pool.request("GET", base, {}, None)
        answer = await pool.request("GET", base, {}, None)
        await pool.close()

        assert answer.status == 200
        assert script.connections == 2

    async def test_no_answer_in_time_is_a_timeout(self, serve: Start) -> None:
        """Sent, then silence: AnswerTimeout (a TimeoutError); the connection is gone."""
        script = await serve((b"HOLD", False), (OK, False))
        pool, base = pool_for(script, timeout=0.2)

        with pytest.raises(AnswerTimeout) as caught:
            await pool.request("POST", base, {}, b"{}")
        answer = await pool.request("GET", base, {}, None)
        await pool.close()

        assert isinstance(caught.value, TimeoutError)
        assert answer.status == 200
        assert script.connections == 2

    async def test_a_cancelled_request_leaves_no_connection_behind(
        self, serve: Start
    ) -> None:
        """Cancelled while waiting: the half-used connection is not reused."""
        script = await serve((b"HOLD", False), (OK, False))
        pool, base = pool_for(script)

        task = asyncio.ensure_future(pool.request("GET", base, {}, None))
        await script.arrived.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        answer = await pool.request("GET", base, {}, None)
        await pool.close()

        assert answer.status == 200
        assert script.connections == 2


class TestTls:
    async def test_https_with_a_trusted_certificate(self, serve: Start) -> None:
        """Over TLS the certificate is checked against the given CAs, and it works."""
        script = await serve((OK, False), (OK, False), tls=True)
        trusted = ssl.create_default_context(cafile=TLS / "localhost.pem")
        pool, base = pool_for(script, tls=True, ssl_context=trusted)

        answers = [await pool.request("GET", base, {}, None) for _ in range(2)]
        await pool.close()

        assert [a.status for a in answers] == [200, 200]
        assert script.connections == 1

    async def test_an_untrusted_certificate_is_refused(self, serve: Start) -> None:
        """A certificate no CA vouches for: ConnectFailed, nothing sent."""
        script = await serve((OK, False), tls=True)
        pool, base = pool_for(
            script, tls=True, ssl_context=ssl.create_default_context()
        )

        with pytest.raises(ConnectFailed, match="certificate.*SSL_CERT_FILE"):
            await pool.request("POST", base, {}, b"{}")
        assert script.received == []


async def test_a_connect_that_runs_out_of_time_was_never_sent() -> None:
    """A listener whose accept queue is full drops the SYN: the timeout runs out while
    connecting, which is ConnectFailed (never sent), not AnswerTimeout."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):  # fill the accept queue (nobody accepts)
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    base = URL(f"http://127.0.0.1:{port}/v1")
    pool = HttpPool(base, idle=1, timeout=0.3, user_agent="t")
    try:
        with pytest.raises(ConnectFailed, match="timed out"):
            await pool.request("POST", base, {}, b"{}")
    finally:
        for sock in [*fillers, listener]:
            sock.close()
