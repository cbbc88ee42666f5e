"""The per-plugin network proxy, against real servers on loopback that each test starts itself."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import socket
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any

import pytest

from deeting_tui.netproxy.proxy import HostProxy

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

HTTP_REPLY = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"


class Upstream:
    """A loopback server that counts the connections it accepted and can be torn down fully."""

    def __init__(self, handler: Handler, host: str = "127.0.0.1") -> None:
        self._handler = handler
        self._host = host
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._writers: list[asyncio.StreamWriter] = []
        self.accepted = 0
        self.requests: list[bytes] = []
        self._peers: list[int] = []
        self._accepts = asyncio.Condition()
        self._recorded = asyncio.Condition()
        self.port = 0

    async def start(self) -> Upstream:
        self._server = await asyncio.start_server(self._accept, self._host, 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.append(writer)
        self.accepted += 1
        async with self._accepts:
            self._peers.append(int(writer.get_extra_info("peername")[1]))
            self._accepts.notify_all()
        try:
            await self._handler(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # a client that left early is not the server's failure
        except asyncio.CancelledError:
            pass  # close() cancels; 3.11's start_server would log a cancelled handler as an error
        finally:
            self._tasks.discard(task)
            writer.close()

    async def record(self, request: bytes) -> None:
        async with self._recorded:
            self.requests.append(request)
            self._recorded.notify_all()

    async def wait_for_requests(self, count: int) -> list[bytes]:
        async with self._recorded:
            await self._recorded.wait_for(lambda: len(self.requests) >= count)
        return self.requests

    async def accepted_before_now(self) -> int:
        """Connections accepted before this call, counted only once the server caught up.

        One more connection is made and waited for: connections are accepted in order, so once
        it has been seen every earlier one (say, one the proxy should never have made) has been
        counted too.
        """
        _, writer = await asyncio.open_connection(self._host, self.port)
        try:
            mine = int(writer.get_extra_info("sockname")[1])
            async with self._accepts:
                await self._accepts.wait_for(lambda: mine in self._peers)
        finally:
            await close_writer(writer)
        return self.accepted - 1

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for writer in self._writers:
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        await self._server.wait_closed()


async def echo_handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Echo until the client half-closes, then say so and close: proves EOF travels both ways."""
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.write(b"<eof>")
    await writer.drain()


def http_handler(upstream_ref: list[Upstream]) -> Handler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        body = b""
        lower = head.lower()
        if b"transfer-encoding: chunked" in lower:
            while not body.endswith(b"0\r\n\r\n"):
                more = await reader.read(65536)
                if not more:
                    await upstream_ref[0].record(head + body + b"<eof>")
                    return
                body += more
        elif b"content-length:" in lower:
            length = int(lower.split(b"content-length:")[1].split(b"\r\n")[0])
            body = await reader.readexactly(length)
        await upstream_ref[0].record(head + body)
        writer.write(HTTP_REPLY)
        await writer.drain()

    return handle


@pytest.fixture
async def echo() -> AsyncIterator[Upstream]:
    upstream = await Upstream(echo_handler).start()
    try:
        yield upstream
    finally:
        await upstream.close()


@pytest.fixture
async def web() -> AsyncIterator[Upstream]:
    ref: list[Upstream] = []
    upstream = Upstream(http_handler(ref))
    ref.append(upstream)
    await upstream.start()
    try:
        yield upstream
    finally:
        await upstream.close()


@contextlib.asynccontextmanager
async def running(
    hosts: Sequence[str], plugin: str = "weather", **options: Any
) -> AsyncIterator[HostProxy]:
    proxy = HostProxy(plugin, hosts, **options)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()


async def close_writer(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


@contextlib.asynccontextmanager
async def client(
    proxy: HostProxy,
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    assert proxy.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    try:
        yield reader, writer
    finally:
        await close_writer(writer)


async def exchange(proxy: HostProxy, request: bytes, *, half_close: bool = False) -> bytes:
    """Send raw bytes to the proxy and return everything it answers until it closes."""
    async with client(proxy) as (reader, writer):
        writer.write(request)
        if half_close:
            writer.write_eof()
        await writer.drain()
        return await reader.read()


async def connect_through(
    proxy: HostProxy, target: str
) -> tuple[bytes, asyncio.StreamReader, asyncio.StreamWriter]:
    assert proxy.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
    await writer.drain()
    return await reader.readuntil(b"\r\n\r\n"), reader, writer


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def status_of(response: bytes) -> str:
    return response.split(b"\r\n", 1)[0].decode()


def body_of(response: bytes) -> str:
    return response.partition(b"\r\n\r\n")[2].decode()


# -- the host check ---------------------------------------------------------------------------

ALLOWS = [
    (["api.example.com"], "api.example.com", 443, True),
    (["api.example.com"], "API.Example.COM", 443, True),
    (["api.example.com"], "api.example.com.", 80, True),
    (["api.example.com"], "example.com", 443, False),
    (["api.example.com"], "x.api.example.com", 443, False),
    (["api.example.com"], "api.example.com.evil.net", 443, False),
    (["*.example.com"], "a.example.com", 443, True),
    (["*.example.com"], "a.b.example.com", 443, True),
    (["*.example.com"], "example.com", 443, False),
    (["*.example.com"], "aexample.com", 443, False),
    (["*.example.com"], "a.example.com.evil.net", 443, False),
    (["api.example.com:443"], "api.example.com", 443, True),
    (["api.example.com:443"], "api.example.com", 80, False),
    (["*.example.com:8443"], "a.example.com", 8443, True),
    (["*.example.com:8443"], "a.example.com", 443, False),
    (["127.0.0.1"], "127.0.0.1", 9, True),
    (["127.0.0.1"], "127.0.0.2", 9, False),
    (["127.0.0.1"], "localhost", 9, False),
    (["127.0.0.1"], "127.1", 9, False),
    (["127.0.0.1"], "2130706433", 9, False),
    (["127.0.0.1"], "[::ffff:127.0.0.1]", 9, False),
    (["127.0.0.1:8080"], "127.0.0.1", 8080, True),
    (["127.0.0.1:8080"], "127.0.0.1", 8081, False),
    (["[::1]"], "[::1]", 443, True),
    (["[::1]"], "::1", 443, True),
    (["[::1]"], "[0:0:0:0:0:0:0:1]", 443, True),
    (["[::1]:443"], "[::1]", 80, False),
    (["[2001:db8::1]"], "[2001:DB8::1]", 443, True),
    (["localhost"], "127.0.0.1", 443, False),
    (["localhost"], "[::1]", 443, False),
    (["*.example.com"], "[::1]", 443, False),
    (["api.example.com"], "api.example.com", 0, False),
    (["api.example.com"], "api.example.com", 65536, False),
    (["api.example.com"], "api example.com", 443, False),
    ([], "api.example.com", 443, False),
]


@pytest.mark.parametrize(("grants", "host", "port", "allowed"), ALLOWS)
def test_allows(grants: list[str], host: str, port: int, allowed: bool) -> None:
    assert HostProxy("p", grants).allows(host, port) is allowed


def test_a_grant_the_resolver_would_read_as_an_address_never_matches() -> None:
    proxy = HostProxy("p", ["10.1"])  # a valid scope, but getaddrinfo reads it as 10.0.0.1
    assert not proxy.allows("10.1", 80)
    assert not proxy.allows("10.0.0.1", 80)


def test_bad_grants_are_rejected_up_front() -> None:
    with pytest.raises(ValueError):
        HostProxy("p", ["*"])
    with pytest.raises(ValueError):
        HostProxy("p", ["exa mple.com"])


def test_url_needs_a_started_proxy() -> None:
    proxy = HostProxy("p", [])
    assert proxy.port is None
    with pytest.raises(RuntimeError):
        _ = proxy.url


# -- CONNECT ----------------------------------------------------------------------------------


async def test_connect_tunnels_bytes_both_ways_and_passes_half_close(echo: Upstream) -> None:
    async with running(["127.0.0.1"]) as proxy:
        assert proxy.url == f"http://127.0.0.1:{proxy.port}"
        status, reader, writer = await connect_through(proxy, f"127.0.0.1:{echo.port}")
        try:
            assert status == b"HTTP/1.1 200 Connection established\r\n\r\n"
            writer.write(b"hello ")
            await writer.drain()
            assert await reader.readexactly(6) == b"hello "
            writer.write(b"x" * 300_000)
            await writer.drain()
            assert await reader.readexactly(300_000) == b"x" * 300_000
            writer.write_eof()
            assert await reader.read() == b"<eof>"
        finally:
            await close_writer(writer)
    assert await echo.accepted_before_now() == 1


async def test_connect_resolves_granted_names_in_the_proxy(echo: Upstream) -> None:
    async with running([f"localhost:{echo.port}"]) as proxy:
        status, reader, writer = await connect_through(proxy, f"LocalHost.:{echo.port}")
        try:
            assert status.startswith(b"HTTP/1.1 200")
            writer.write(b"ping")
            assert await reader.readexactly(4) == b"ping"
        finally:
            await close_writer(writer)


async def test_connect_to_bracketed_ipv6() -> None:
    try:
        upstream = await Upstream(echo_handler, host="::1").start()
    except OSError:
        pytest.skip("no IPv6 loopback here")
    try:
        async with running(["[::1]"]) as proxy:
            status, reader, writer = await connect_through(proxy, f"[::1]:{upstream.port}")
            try:
                assert status.startswith(b"HTTP/1.1 200")
                writer.write(b"six")
                assert await reader.readexactly(3) == b"six"
            finally:
                await close_writer(writer)
    finally:
        await upstream.close()


@pytest.mark.parametrize(
    ("grants", "target"),
    [
        (["127.0.0.1"], "localhost:{port}"),
        (["127.0.0.1"], "127.0.0.2:{port}"),
        (["127.0.0.1:1"], "127.0.0.1:{port}"),
        (["localhost"], "127.0.0.1:{port}"),
        ([], "127.0.0.1:{port}"),
    ],
)
async def test_connect_to_a_host_not_granted_is_refused_without_connecting(
    echo: Upstream, grants: list[str], target: str
) -> None:
    denied: list[tuple[str, str]] = []
    target = target.format(port=echo.port)
    async with running(grants, on_denied=lambda host, why: denied.append((host, why))) as proxy:
        response = await exchange(
            proxy, f"CONNECT {target} HTTP/1.1\r\nHost: 127.0.0.1:{echo.port}\r\n\r\n".encode()
        )
    assert status_of(response).startswith("HTTP/1.1 403 Forbidden")
    body = body_of(response)
    assert body.startswith(f"plugin 'weather' may not connect to {target} — it was granted ")
    assert f"network:{target} would allow it" in body
    for grant in grants:
        assert f"network:{grant}" in body
    assert denied == [(target, body.strip())]
    assert await echo.accepted_before_now() == 0


async def test_a_failing_on_denied_callback_does_not_break_the_refusal(echo: Upstream) -> None:
    def explode(host: str, reason: str) -> None:
        raise RuntimeError("callback bug")

    async with running([], on_denied=explode) as proxy:
        response = await exchange(proxy, f"CONNECT 127.0.0.1:{echo.port} HTTP/1.1\r\n\r\n".encode())
    assert status_of(response).startswith("HTTP/1.1 403 Forbidden")


async def test_connect_to_a_closed_port_is_a_bad_gateway() -> None:
    port = unused_port()
    async with running(["127.0.0.1"]) as proxy:
        response = await exchange(proxy, f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\n\r\n".encode())
    assert status_of(response) == "HTTP/1.1 502 Bad Gateway"
    assert body_of(response) == f"cannot connect to 127.0.0.1:{port}: connection refused\n"


@contextlib.contextmanager
def listener_that_never_answers() -> Iterator[int]:
    """A port whose connects hang: on Linux a full accept queue drops further SYNs."""
    with socket.socket() as server, socket.socket() as filler:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        filler.connect(server.getsockname())
        yield int(server.getsockname()[1])


async def test_connect_timeout_is_a_gateway_timeout() -> None:
    with listener_that_never_answers() as port:
        async with running(["127.0.0.1"], connect_timeout=0.2) as proxy:
            response = await exchange(proxy, f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\n\r\n".encode())
    assert status_of(response) == "HTTP/1.1 504 Gateway Timeout"


async def test_close_ends_open_tunnels(echo: Upstream) -> None:
    proxy = HostProxy("weather", ["127.0.0.1"])
    await proxy.start()
    try:
        status, reader, writer = await connect_through(proxy, f"127.0.0.1:{echo.port}")
        assert status.startswith(b"HTTP/1.1 200")
        writer.write(b"ping")
        assert await reader.readexactly(4) == b"ping"
        await proxy.close()
        assert await reader.read() == b""
        await close_writer(writer)
    finally:
        await proxy.close()  # a second close is harmless


async def test_idle_tunnels_are_closed(echo: Upstream) -> None:
    async with running(["127.0.0.1"], idle_timeout=0.2) as proxy:
        status, reader, writer = await connect_through(proxy, f"127.0.0.1:{echo.port}")
        try:
            assert status.startswith(b"HTTP/1.1 200")
            assert await asyncio.wait_for(reader.read(), 5) == b""
        finally:
            await close_writer(writer)


async def test_connections_beyond_the_cap_get_503(echo: Upstream) -> None:
    async with running(["127.0.0.1"], max_connections=1) as proxy:
        status, reader, writer = await connect_through(proxy, f"127.0.0.1:{echo.port}")
        try:
            assert status.startswith(b"HTTP/1.1 200")
            response = await exchange(
                proxy, f"CONNECT 127.0.0.1:{echo.port} HTTP/1.1\r\n\r\n".encode()
            )
            assert status_of(response) == "HTTP/1.1 503 Service Unavailable"
            assert "1 network connections open" in body_of(response)
            writer.write(b"still")  # the first tunnel is unaffected
            assert await reader.readexactly(5) == b"still"
        finally:
            await close_writer(writer)


# -- plain HTTP -------------------------------------------------------------------------------


async def test_plain_get_is_forwarded_in_origin_form(web: Upstream) -> None:
    request = (
        f"GET http://127.0.0.1:{web.port}/x?y=1 HTTP/1.1\r\n"
        "Host: evil.example\r\n"
        "Proxy-Connection: keep-alive\r\n"
        "Proxy-Authorization: Basic c2VjcmV0\r\n"
        "Connection: keep-alive, X-Hop\r\n"
        "X-Hop: 1\r\n"
        "Accept: text/plain\r\n\r\n"
    )
    async with running(["127.0.0.1"]) as proxy:
        response = await exchange(proxy, request.encode())
    assert response == HTTP_REPLY
    [seen] = web.requests
    lines = seen.decode().split("\r\n")
    assert lines[0] == "GET /x?y=1 HTTP/1.1"
    assert f"Host: 127.0.0.1:{web.port}" in lines
    assert "Accept: text/plain" in lines
    assert "Connection: close" in lines
    lowered = seen.lower()
    assert b"evil.example" not in lowered
    assert b"proxy-" not in lowered
    assert b"x-hop" not in lowered
    assert b"keep-alive" not in lowered


@pytest.mark.parametrize(
    ("framing", "body"),
    [
        ("Content-Length: 11\r\n", b"hello world"),
        ("Transfer-Encoding: chunked\r\n", b"5\r\nhello\r\n6;x=1\r\n world\r\n0\r\n\r\n"),
    ],
)
async def test_plain_post_forwards_exactly_its_body(
    web: Upstream, framing: str, body: bytes
) -> None:
    head = f"POST http://127.0.0.1:{web.port}/submit HTTP/1.1\r\n{framing}\r\n".encode()
    # Bytes after the body must not reach the server as a second, unchecked request.
    smuggled = b"GET /other HTTP/1.1\r\nHost: evil.example\r\n\r\n"
    async with running(["127.0.0.1"]) as proxy:
        response = await exchange(proxy, head + body + smuggled)
    assert response == HTTP_REPLY
    [seen] = web.requests
    assert seen.startswith(b"POST /submit HTTP/1.1\r\n")
    assert seen.endswith(b"\r\n\r\n" + body)
    assert b"evil.example" not in seen


async def test_a_broken_chunked_body_ends_both_connections(web: Upstream) -> None:
    request = (
        f"POST http://127.0.0.1:{web.port}/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5\r\nhello\r\nzz\r\n"
    )
    async with running(["127.0.0.1"]) as proxy:
        assert await exchange(proxy, request.encode()) == b""
        [seen] = await web.wait_for_requests(1)
    assert seen.endswith(b"5\r\nhello\r\n<eof>")


async def test_plain_get_to_a_host_not_granted_is_refused(web: Upstream) -> None:
    denied: list[str] = []
    request = (
        f"GET http://localhost:{web.port}/x HTTP/1.1\r\nHost: 127.0.0.1:{web.port}\r\n\r\n"
    ).encode()
    async with running(["127.0.0.1"], on_denied=lambda host, _: denied.append(host)) as proxy:
        response = await exchange(proxy, request)
    assert status_of(response).startswith("HTTP/1.1 403 Forbidden")
    assert f"may not connect to localhost:{web.port}" in body_of(response)
    assert denied == [f"localhost:{web.port}"]
    assert await web.accepted_before_now() == 0


async def test_plain_get_without_a_port_means_port_80() -> None:
    async with running(["127.0.0.1:8080"]) as proxy:
        response = await exchange(proxy, b"GET http://127.0.0.1/ HTTP/1.1\r\n\r\n")
    assert status_of(response).startswith("HTTP/1.1 403 Forbidden")
    assert "may not connect to 127.0.0.1:80 " in body_of(response)


async def test_plain_get_to_a_closed_port_is_a_bad_gateway() -> None:
    port = unused_port()
    async with running(["127.0.0.1"]) as proxy:
        response = await exchange(proxy, f"GET http://127.0.0.1:{port}/ HTTP/1.1\r\n\r\n".encode())
    assert status_of(response) == "HTTP/1.1 502 Bad Gateway"


MALFORMED = {
    "not http": b"hello there\r\n\r\n",
    "http/2 preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    "relative target": b"GET /relative HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    "https absolute uri": b"GET https://127.0.0.1/ HTTP/1.1\r\n\r\n",
    "user in uri": b"GET http://127.0.0.1@evil.com/ HTTP/1.1\r\n\r\n",
    "request line too long": b"GET http://127.0.0.1/" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n",
    "request line past the buffer": b"GET http://127.0.0.1/" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n",
    "headers too long": b"GET http://127.0.0.1/ HTTP/1.1\r\n"
    + b"".join(b"X-Pad-%d: %s\r\n" % (i, b"p" * 1000) for i in range(70))
    + b"\r\n",
    "connect without port": b"CONNECT 127.0.0.1 HTTP/1.1\r\n\r\n",
    "connect empty port": b"CONNECT 127.0.0.1: HTTP/1.1\r\n\r\n",
    "connect port zero": b"CONNECT 127.0.0.1:0 HTTP/1.1\r\n\r\n",
    "connect port too big": b"CONNECT 127.0.0.1:65536 HTTP/1.1\r\n\r\n",
    "connect port not a number": b"CONNECT 127.0.0.1:https HTTP/1.1\r\n\r\n",
    "connect with a url": b"CONNECT http://127.0.0.1:443/ HTTP/1.1\r\n\r\n",
    "unbracketed ipv6": b"CONNECT ::1:443 HTTP/1.1\r\n\r\n",
    "unclosed bracket": b"CONNECT [::1:443 HTTP/1.1\r\n\r\n",
    "ipv6 zone id": b"CONNECT [fe80::1%eth0]:443 HTTP/1.1\r\n\r\n",
    "bad host name": b"CONNECT exa!mple.com:443 HTTP/1.1\r\n\r\n",
    "numeric name": b"CONNECT 127.1:443 HTTP/1.1\r\n\r\n",
    "header without colon": b"CONNECT 127.0.0.1:443 HTTP/1.1\r\nnonsense\r\n\r\n",
    "folded header": b"CONNECT 127.0.0.1:443 HTTP/1.1\r\nX-A: 1\r\n  2\r\n\r\n",
    "length and chunked": b"POST http://127.0.0.1/ HTTP/1.1\r\nContent-Length: 3\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "gzip without chunked": b"POST http://127.0.0.1/ HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
    "two lengths": b"POST http://127.0.0.1/ HTTP/1.1\r\nContent-Length: 1\r\n"
    b"Content-Length: 2\r\n\r\nab",
    "negative length": b"POST http://127.0.0.1/ HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
    "cut short": b"CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: 127",
}


@pytest.mark.parametrize("request_bytes", MALFORMED.values(), ids=MALFORMED.keys())
async def test_malformed_requests_get_400(echo: Upstream, request_bytes: bytes) -> None:
    async with running(["127.0.0.1"]) as proxy:
        response = await exchange(proxy, request_bytes, half_close=True)
    assert status_of(response) == "HTTP/1.1 400 Bad Request"
    body = body_of(response)
    assert body.endswith("\n")
    assert body.count("\n") == 1
    assert await echo.accepted_before_now() == 0


async def test_a_client_that_says_nothing_gets_nothing() -> None:
    async with running(["127.0.0.1"]) as proxy:
        assert await exchange(proxy, b"", half_close=True) == b""


# -- standard clients -------------------------------------------------------------------------


async def test_urllib_works_through_the_proxy(web: Upstream) -> None:
    async with running(["127.0.0.1"]) as proxy:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy.url}))

        def fetch(url: str) -> bytes:
            with opener.open(url, timeout=10) as response:
                body: bytes = response.read()
                return body

        body = await asyncio.to_thread(fetch, f"http://127.0.0.1:{web.port}/via-urllib")
        assert body == b"hello"
        assert web.requests[0].startswith(b"GET /via-urllib HTTP/1.1\r\n")

        with pytest.raises(urllib.error.HTTPError) as refused:
            await asyncio.to_thread(fetch, f"http://localhost:{web.port}/")
        assert refused.value.code == 403
        assert b"may not connect to localhost" in refused.value.read()
        refused.value.close()


async def test_http_client_tunnels_with_connect(web: Upstream) -> None:
    async with running(["127.0.0.1"]) as proxy:
        assert proxy.port is not None
        port = proxy.port

        def fetch(host: str) -> tuple[int, bytes]:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            try:
                connection.set_tunnel(host, web.port)
                connection.request("GET", "/tunnelled")
                response = connection.getresponse()
                return response.status, response.read()
            finally:
                connection.close()

        assert await asyncio.to_thread(fetch, "127.0.0.1") == (200, b"hello")
        assert web.requests[0].startswith(b"GET /tunnelled HTTP/1.1\r\n")

        with pytest.raises(OSError, match="403"):
            await asyncio.to_thread(fetch, "localhost")


async def test_a_refusal_names_its_reason_in_the_status_line(echo: Upstream) -> None:
    """Clients that never read a 403's body (a CONNECT's "Tunnel connection failed: 403 …",
    urllib's "HTTP Error 403: …") still show the status line: printable ASCII, one line."""
    target = f"localhost:{echo.port}"
    async with running(["127.0.0.1"]) as proxy:
        response = await exchange(proxy, f"CONNECT {target} HTTP/1.1\r\n\r\n".encode())
    status = status_of(response)
    assert status == (
        f"HTTP/1.1 403 Forbidden: plugin 'weather' may not connect to {target} - it was "
        f"granted network:127.0.0.1; network:{target} would allow it"
    )
    assert status.isascii() and status.isprintable()
    assert body_of(response).startswith(f"plugin 'weather' may not connect to {target} — ")
