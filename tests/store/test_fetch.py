"""fetch.py keeps every download bounded: caps, a deadline, redirect and scheme rules.

The servers are raw HTTP on 127.0.0.1, started and stopped by each test, so a test can
misbehave on purpose (an endless body, a trickle, a lying Content-Length) and watch what the
client does. Rules that need https use httpx.MockTransport through the ``client`` parameter.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from deeting_tui.command_output import error_line
from deeting_tui.errors import Fix, Hint
from deeting_tui.paths import resolve_paths
from deeting_tui.store import fetch_http
from deeting_tui.store.client import RegistryClient
from deeting_tui.store.errors import StoreError
from deeting_tui.store.fetch import fetch, resolve
from deeting_tui.store.fetch_limits import Fetched, FetchError
from deeting_tui.ui.hints import chat_error

KIB = 1024
MIB = 1024 * KIB


# -- a loopback HTTP server that can misbehave ---------------------------------------------


@dataclass
class Seen:
    """One request as the server saw it (header names in lower case)."""

    path: str
    headers: dict[str, str]


Handler = Callable[[Seen, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class LoopbackServer:
    """Raw HTTP/1.1, one request per connection; routes are coroutines that write anything."""

    routes: dict[str, Handler] = field(default_factory=dict)
    requests: list[Seen] = field(default_factory=list)
    port: int = 0
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _server: asyncio.Server | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            request_line, *header_lines = head.split("\r\n")
            headers = {}
            for line in filter(None, header_lines):
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            seen = Seen(request_line.split(" ")[1], headers)
            self.requests.append(seen)
            handler = self.routes.get(seen.path, answer(404, "Not Found", body=b"no"))
            await handler(seen, reader, writer)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass  # stop() ends a handler still running; the test is over, so end quietly
        finally:
            writer.close()
            self._tasks.discard(task)


@pytest.fixture
async def server() -> AsyncIterator[LoopbackServer]:
    loopback = LoopbackServer()
    await loopback.start()
    try:
        yield loopback
    finally:
        await loopback.stop()
        # Nothing the client started may outlive the fetch (no stray reader or pool task).
        stray = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert stray == []


def head(status: int, reason: str, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join([*lines, "Connection: close", "", ""])).encode("latin-1")


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def answer(
    status: int, reason: str, *, headers: dict[str, str] | None = None, body: bytes = b""
) -> Handler:
    async def handler(_: Seen, __: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        all_headers = {"Content-Length": str(len(body)), **(headers or {})}
        writer.write(head(status, reason, all_headers) + body)

    return handler


def chunked(*pieces: bytes) -> Handler:
    async def handler(_: Seen, __: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(head(200, "OK", {"Transfer-Encoding": "chunked"}))
        writer.write(b"".join(chunk(p) for p in pieces if p) + b"0\r\n\r\n")

    return handler


def redirect(location: str, status: int = 302) -> Handler:
    return answer(status, "Found", headers={"Location": location})


async def until(event: asyncio.Event, what: str, within: float = 5.0) -> None:
    try:
        await asyncio.wait_for(event.wait(), within)
    except TimeoutError:
        pytest.fail(f"{what} did not happen within {within} s")


async def failure(url: str, **kwargs: object) -> FetchError:
    options: dict[str, object] = {"what": "the registry", "max_bytes": MIB, "deadline_s": 10}
    with pytest.raises(FetchError) as caught:
        await fetch(url, **{**options, **kwargs})  # type: ignore[arg-type]
    return caught.value


# -- what a good server gets ---------------------------------------------------------------


async def test_a_200_returns_the_body_the_etag_and_the_final_url(server: LoopbackServer) -> None:
    body = b'{"plugins": {}}'
    server.routes["/registry.json"] = answer(200, "OK", headers={"ETag": '"v1"'}, body=body)
    progress: list[tuple[int, int | None]] = []

    got = await fetch(
        server.url("/registry.json"),
        what="the registry",
        max_bytes=MIB,
        deadline_s=10,
        on_progress=lambda received, total: progress.append((received, total)),
    )

    assert got == Fetched(body, '"v1"', server.url("/registry.json"))
    assert not got.not_modified
    assert progress[-1] == (len(body), len(body))
    (request,) = server.requests
    assert "if-none-match" not in request.headers
    assert request.headers["accept-encoding"] == "identity"


async def test_a_matching_etag_gets_not_modified_and_a_stale_one_the_new_body(
    server: LoopbackServer,
) -> None:
    async def conditional(seen: Seen, _: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        if seen.headers.get("if-none-match") == 'W/"v2"':
            w.write(head(304, "Not Modified", {"ETag": 'W/"v2"'}))
        else:
            await answer(200, "OK", headers={"ETag": 'W/"v2"'}, body=b"v2")(seen, _, w)

    server.routes["/registry.json"] = conditional
    url = server.url("/registry.json")

    unchanged = await fetch(url, what="the registry", max_bytes=MIB, deadline_s=10, etag='W/"v2"')
    changed = await fetch(url, what="the registry", max_bytes=MIB, deadline_s=10, etag='"v1"')

    assert unchanged.not_modified and unchanged.body is None
    assert unchanged.etag == 'W/"v2"'
    assert server.requests[0].headers["if-none-match"] == 'W/"v2"'
    assert changed == Fetched(b"v2", 'W/"v2"', url)
    assert server.requests[1].headers["if-none-match"] == '"v1"'


async def test_not_modified_without_an_etag_sent_is_refused(server: LoopbackServer) -> None:
    server.routes["/registry.json"] = answer(304, "Not Modified")

    error = await failure(server.url("/registry.json"))

    assert "304 Not Modified to a request that was not conditional" in str(error)
    assert str(error).startswith(f"cannot fetch the registry from {server.url('/registry.json')}")


# -- caps ----------------------------------------------------------------------------------


async def test_a_content_length_over_the_cap_is_refused_before_the_body(
    server: LoopbackServer,
) -> None:
    client_gone = asyncio.Event()

    async def huge(_: Seen, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(head(200, "OK", {"Content-Length": str(10 * MIB)}))
        await writer.drain()
        await reader.read()  # never sends the body; returns when the client hangs up
        client_gone.set()

    server.routes["/big.zip"] = huge
    started = time.monotonic()

    error = await failure(server.url("/big.zip"), what="weather 1.0.0", max_bytes=MIB)

    assert "the server announces 10485760 bytes, over the 1048576-byte cap" in str(error)
    assert "weather 1.0.0" in str(error)
    assert time.monotonic() - started < 5  # refused at once, not after waiting for a body
    await until(client_gone, "the client hanging up")


async def test_an_endless_body_is_refused_at_the_cap_without_buffering_it(
    server: LoopbackServer,
) -> None:
    client_gone = asyncio.Event()
    written = 0
    piece = chunk(b"x" * 16 * KIB)

    async def endless(_: Seen, __: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal written
        # A small send buffer, so what the server writes tracks what the client takes.
        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * KIB)
        writer.write(head(200, "OK", {"Transfer-Encoding": "chunked"}))
        try:
            while True:
                writer.write(piece)
                written += 16 * KIB
                await writer.drain()
        except ConnectionError:
            client_gone.set()

    server.routes["/endless"] = endless
    server.routes["/warm-up"] = answer(200, "OK", body=b"ok")
    # One fetch first, so the modules httpx imports on first use do not count as its memory.
    await fetch(server.url("/warm-up"), what="a warm-up", max_bytes=MIB, deadline_s=10)
    cap = 2 * MIB
    tracemalloc.start()
    try:
        error = await failure(server.url("/endless"), max_bytes=cap)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert f"more than the {cap}-byte cap arrived" in str(error)
    await until(client_gone, "the client hanging up")
    assert peak < cap + MIB, f"the fetch held {peak} bytes for a {cap}-byte cap"
    # The server stops once the client hangs up; what it wrote past the cap sat in socket buffers.
    assert written < cap + 2 * MIB


@pytest.mark.parametrize(
    ("handler", "exact", "words"),
    [
        (answer(200, "OK", body=b"x" * 10), 20, "announces 10 bytes, but exactly 20 were expected"),
        (chunked(b"x" * 10), 20, "the body ended after 10 bytes, but 20 were expected"),
        (chunked(b"x" * 4, b"x" * 4), 5, "more than the expected 5 bytes arrived"),
    ],
    ids=["announced-mismatch", "too-short", "too-long"],
)
async def test_exact_length_refuses_a_byte_more_or_less(
    server: LoopbackServer, handler: Handler, exact: int, words: str
) -> None:
    server.routes["/weather.zip"] = handler

    error = await failure(server.url("/weather.zip"), exact_length=exact)

    assert words in str(error)
    assert error.fix == Hint(Fix.SYNC)  # the sync is data, for each front end to phrase
    assert "deeting registry sync" not in str(error)


async def test_a_wrong_length_reaches_each_front_end_with_the_sync_as_its_fix(
    server: LoopbackServer, home: Path
) -> None:
    """The client's StoreError carries the sync: the CLI says the command, the chat says
    where to run it (no key syncs)."""
    server.routes["/weather.zip"] = chunked(b"x" * 10)
    client = RegistryClient(resolve_paths())
    with pytest.raises(StoreError) as caught:
        await client._fetch(
            server.url("/weather.zip"), "weather.zip", 1 << 20, None, None, exact_length=20
        )
    error = caught.value
    assert error.hint == Hint(Fix.SYNC)
    assert error_line(error).endswith(
        "the copy served does not match the registry — run: deeting registry sync"
    )
    assert chat_error(error).endswith(
        "the copy served does not match the registry — run in a shell: deeting registry sync"
    )


async def test_exact_length_met_reports_it_as_the_total(server: LoopbackServer) -> None:
    server.routes["/weather.zip"] = chunked(b"abc", b"defg")
    progress: list[tuple[int, int | None]] = []

    got = await fetch(
        server.url("/weather.zip"),
        what="weather 1.0.0",
        max_bytes=MIB,
        deadline_s=10,
        exact_length=7,
        on_progress=lambda received, total: progress.append((received, total)),
    )

    assert got.body == b"abcdefg"
    assert progress[-1] == (7, 7)
    assert all(total == 7 for _, total in progress)


async def test_an_exact_length_over_the_cap_is_refused_without_asking(
    server: LoopbackServer,
) -> None:
    error = await failure(server.url("/weather.zip"), max_bytes=100, exact_length=101)

    assert "its expected 101 bytes are over the 100-byte cap" in str(error)
    assert server.requests == []


async def test_a_compressed_body_is_refused(server: LoopbackServer) -> None:
    server.routes["/registry.json"] = answer(
        200, "OK", headers={"Content-Encoding": "gzip"}, body=b"\x1f\x8b"
    )

    error = await failure(server.url("/registry.json"))

    assert "the server compressed the body (gzip) though asked not to" in str(error)


# -- time ----------------------------------------------------------------------------------


async def test_a_trickling_server_fails_at_the_deadline(server: LoopbackServer) -> None:
    client_gone = asyncio.Event()

    async def trickle(_: Seen, __: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(head(200, "OK", {"Transfer-Encoding": "chunked"}))
        try:
            while True:  # a byte every 100 ms, forever: the behaviour under test
                writer.write(chunk(b"x"))
                await writer.drain()
                await asyncio.sleep(0.1)
        except ConnectionError:
            client_gone.set()

    server.routes["/slow"] = trickle
    started = time.monotonic()

    error = await failure(server.url("/slow"), deadline_s=0.5)

    elapsed = time.monotonic() - started
    assert "it did not finish within the 0.5 s deadline" in str(error)
    assert 0.45 <= elapsed < 3.0
    await until(client_gone, "the client hanging up")


async def test_a_silent_server_fails_on_the_read_timeout(
    server: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fetch_http, "SILENCE_TIMEOUT_S", 0.3)

    async def silent(_: Seen, reader: asyncio.StreamReader, __: asyncio.StreamWriter) -> None:
        await reader.read()  # reads the request, never answers

    server.routes["/silent"] = silent
    started = time.monotonic()

    error = await failure(server.url("/silent"), deadline_s=30)

    assert "the server sent nothing for 0.3 s" in str(error)
    assert time.monotonic() - started < 10


# -- redirects -----------------------------------------------------------------------------


async def test_a_redirect_is_followed_with_the_etag(server: LoopbackServer) -> None:
    server.routes["/old/registry.json"] = redirect("/new/registry.json", status=301)
    server.routes["/new/registry.json"] = answer(200, "OK", headers={"ETag": '"n"'}, body=b"new")

    got = await fetch(
        server.url("/old/registry.json"),
        what="the registry",
        max_bytes=MIB,
        deadline_s=10,
        etag='"o"',
    )

    assert got == Fetched(b"new", '"n"', server.url("/new/registry.json"))
    assert [r.headers["if-none-match"] for r in server.requests] == ['"o"', '"o"']


@pytest.mark.parametrize(("hops", "ok"), [(5, True), (6, False)])
async def test_at_most_five_redirects_are_followed(
    server: LoopbackServer, hops: int, ok: bool
) -> None:
    for n in range(hops):
        server.routes[f"/hop/{n}"] = redirect(server.url(f"/hop/{n + 1}"))
    server.routes[f"/hop/{hops}"] = answer(200, "OK", body=b"there")

    if ok:
        got = await fetch(server.url("/hop/0"), what="the registry", max_bytes=MIB, deadline_s=10)
        assert got.body == b"there"
    else:
        error = await failure(server.url("/hop/0"))
        assert "it redirects more than 5 times" in str(error)
        assert len(server.requests) == 6


async def test_a_redirect_loop_is_refused(server: LoopbackServer) -> None:
    server.routes["/a"] = redirect("/b")
    server.routes["/b"] = redirect("/a")

    error = await failure(server.url("/a"))

    assert f"its redirects loop back to {server.url('/a')}" in str(error)


async def test_a_redirect_to_a_local_file_is_refused(server: LoopbackServer) -> None:
    server.routes["/registry.json"] = redirect("file:///etc/passwd")

    error = await failure(server.url("/registry.json"))

    assert "redirects to file:///etc/passwd, and only http(s) redirects are followed" in str(error)


async def test_a_redirect_without_a_location_is_refused(server: LoopbackServer) -> None:
    server.routes["/registry.json"] = answer(302, "Found")

    error = await failure(server.url("/registry.json"))

    assert "answered 302 without a Location" in str(error)


def mock_client(routes: dict[str, httpx.Response], asked: list[str]) -> httpx.AsyncClient:
    def handle(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        return routes.get(str(request.url), httpx.Response(404))

    return httpx.AsyncClient(transport=httpx.MockTransport(handle))


async def test_a_redirect_from_https_down_to_http_is_refused() -> None:
    asked: list[str] = []
    routes = {
        "https://registry.test/registry.json": httpx.Response(
            302, headers={"Location": "http://registry.test/registry.json"}
        ),
        "http://registry.test/registry.json": httpx.Response(200, content=b"plain"),
    }
    async with mock_client(routes, asked) as client:
        error = await failure("https://registry.test/registry.json", client=client)
        assert not client.is_closed  # a client passed in belongs to the caller

    assert "it redirects from https down to plain http" in str(error)
    assert asked == ["https://registry.test/registry.json"]


async def test_a_redirect_from_http_up_to_https_is_followed() -> None:
    asked: list[str] = []
    routes = {
        "http://registry.test/registry.json": httpx.Response(
            301, headers={"Location": "https://registry.test/registry.json"}
        ),
        "https://registry.test/registry.json": httpx.Response(200, content=b"secure"),
    }
    async with mock_client(routes, asked) as client:
        got = await fetch(
            "http://registry.test/registry.json",
            what="the registry",
            max_bytes=MIB,
            deadline_s=10,
            client=client,
        )

    assert got == Fetched(b"secure", None, "https://registry.test/registry.json")


# -- errors from the server and the network -------------------------------------------------


@pytest.mark.parametrize(
    ("status", "reason", "words"),
    [
        (404, "Not Found", "the server answered 404 Not Found — nothing is published there"),
        (403, "Forbidden", "the server answered 403 Forbidden — the server refuses access"),
        (
            500,
            "Internal Server Error",
            "answered 500 Internal Server Error — the server is failing",
        ),
    ],
    ids=["404", "403", "500"],
)
async def test_an_error_status_is_named_with_what_to_do(
    server: LoopbackServer, status: int, reason: str, words: str
) -> None:
    server.routes["/registry.json"] = answer(status, reason, body=b"nope")

    error = await failure(server.url("/registry.json"))

    assert words in str(error)
    assert error.status == status


async def test_a_password_in_the_url_stays_out_of_the_message(server: LoopbackServer) -> None:
    url = f"http://alice:s3cret@127.0.0.1:{server.port}/missing"

    error = await failure(url)

    assert "404 Not Found" in str(error)
    assert "s3cret" not in str(error)


async def test_a_closed_port_says_the_connection_was_refused() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again when the block ends; nothing listens

    error = await failure(f"http://127.0.0.1:{port}/registry.json")

    assert "the connection to 127.0.0.1 was refused — is the server running?" in str(error)


def raising(cause: BaseException) -> httpx.AsyncClient:
    def handle(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connect failed", request=request) from cause

    return httpx.AsyncClient(transport=httpx.MockTransport(handle))


@pytest.mark.parametrize(
    ("cause", "words"),
    [
        (ssl.SSLCertVerificationError(1, "bad cert"), "TLS: the certificate of registry.test"),
        (ssl.SSLError(1, "handshake"), "TLS: the handshake with registry.test failed"),
        (socket.gaierror(-2, "Name or service not known"), "DNS: the host registry.test could not"),
        (OSError("something else"), "could not connect to registry.test"),
    ],
    ids=["certificate", "tls", "dns", "other"],
)
async def test_connection_failures_say_which_kind(cause: BaseException, words: str) -> None:
    async with raising(cause) as client:
        error = await failure("https://registry.test/registry.json", client=client)

    assert words in str(error)


# -- file:// -------------------------------------------------------------------------------


async def test_a_local_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "registry dir" / "registry.json"
    path.parent.mkdir()
    path.write_bytes(b"local")
    progress: list[tuple[int, int | None]] = []

    got = await fetch(
        path.as_uri(),
        what="the registry",
        max_bytes=MIB,
        deadline_s=10,
        etag='"ignored"',
        on_progress=lambda received, total: progress.append((received, total)),
    )

    assert got == Fetched(b"local", None, path.as_uri())
    assert not got.not_modified
    assert progress == [(5, 5)]


@pytest.mark.parametrize(
    ("size", "options", "words"),
    [
        (None, {}, "there is no file"),
        (2000, {"max_bytes": 1000}, "the file is 2000 bytes, over the 1000-byte cap"),
        (10, {"exact_length": 11}, "the file is 10 bytes, but exactly 11 were expected"),
    ],
    ids=["missing", "over-the-cap", "wrong-length"],
)
async def test_a_local_file_obeys_the_same_rules(
    tmp_path: Path, size: int | None, options: dict[str, int], words: str
) -> None:
    path = tmp_path / "weather.zip"
    if size is not None:
        path.write_bytes(b"x" * size)

    error = await failure(path.as_uri(), **options)

    assert words in str(error)


async def test_a_folder_is_not_a_file(tmp_path: Path) -> None:
    error = await failure(tmp_path.as_uri())

    assert "is not a regular file" in str(error)


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("file://elsewhere/srv/registry.json", "must name a local file, not one on 'elsewhere'"),
        ("file:registry.json", "a file URL needs an absolute path"),
    ],
    ids=["remote-host", "relative-path"],
)
async def test_a_file_url_must_be_local_and_absolute(url: str, words: str) -> None:
    error = await failure(url)

    assert words in str(error)
    assert "file:///absolute/path" in str(error)


# -- URLs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://registry.test/registry.json", "the scheme 'ftp' is not supported"),
        ("registry.json", "it has no scheme"),
        ("http:///registry.json", "it names no host"),
    ],
    ids=["ftp", "no-scheme", "no-host"],
)
async def test_only_http_https_and_file_urls_are_fetched(url: str, words: str) -> None:
    error = await failure(url)

    assert words in str(error)


@pytest.mark.parametrize(
    ("base", "reference", "expected"),
    [
        (
            "https://example.test/deeting/registry.json",
            "plugins/weather-1.0.0.zip",
            "https://example.test/deeting/plugins/weather-1.0.0.zip",
        ),
        (
            "https://example.test/deeting/registry.json",
            "../mirror/weather.zip",
            "https://example.test/mirror/weather.zip",
        ),
        (
            "https://example.test/deeting/registry.json",
            "https://cdn.test/weather.zip",
            "https://cdn.test/weather.zip",
        ),
        (
            "https://example.test/deeting/registry.json?token=abc",
            "weather.zip?v=2",
            "https://example.test/deeting/weather.zip?v=2",
        ),
        ("file:///srv/registry/registry.json", "weather.zip", "file:///srv/registry/weather.zip"),
        ("file:///srv/registry/registry.json", "https://cdn.test/w.zip", "https://cdn.test/w.zip"),
    ],
    ids=["relative", "parent", "absolute", "query", "file", "file-to-web"],
)
def test_resolve_joins_a_link_to_the_registry_url(base: str, reference: str, expected: str) -> None:
    assert resolve(base, reference) == expected


@pytest.mark.parametrize(
    ("base", "reference", "words"),
    [
        ("https://example.test/r.json", "file:///etc/passwd", "may not link to a local file"),
        ("http://example.test/r.json", "file:///etc/passwd", "may not link to a local file"),
        ("https://example.test/r.json", "http://example.test/w.zip", "may not link down to http"),
        ("https://example.test/r.json", "  ", "the link is empty"),
    ],
    ids=["https-to-file", "http-to-file", "https-to-http", "empty"],
)
def test_resolve_refuses_what_a_redirect_may_not_do(base: str, reference: str, words: str) -> None:
    with pytest.raises(FetchError) as caught:
        resolve(base, reference)

    assert words in str(caught.value)
    assert "fix the registry entry" in str(caught.value) or "over https" in str(caught.value)
