"""The loopback server as an attacker on the same machine (or a web page in the user's
browser) meets it: raw requests, so no client library tidies a path or a header first."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest
from web_support import get, parse, raw

from deeting_tui.errors import DeetingError
from deeting_tui.kernel.events import StreamFrame, ToolResult
from deeting_tui.web import backlog as backlog_module
from deeting_tui.web import server as server_module
from deeting_tui.web.server import CardServer


@pytest.fixture
async def server() -> AsyncIterator[CardServer]:
    card_server = CardServer()
    await card_server.start()
    try:
        yield card_server
    finally:
        await card_server.stop()


def _path(server: CardServer, rest: str = "") -> str:
    return f"/{server.token}/{rest}"


async def test_the_page_and_its_files_are_served_under_the_token(server: CardServer) -> None:
    assert server.url == f"http://127.0.0.1:{server.port}/{server.token}/"
    expected = {
        "": "text/html; charset=utf-8",
        "page/host.js": "text/javascript; charset=utf-8",
        "page/host.css": "text/css; charset=utf-8",
        "vendor/mcp-host.js": "text/javascript; charset=utf-8",
        "renderers/text/index.html": "text/html; charset=utf-8",
        "renderers/text/main.js": "text/javascript; charset=utf-8",
        "renderers/_shared/guest.js": "text/javascript; charset=utf-8",
        "renderers/text/schema.json": "application/json",
    }
    for rest, content_type in expected.items():
        status, headers, body = parse(await raw(server, get(server, _path(server, rest))))
        assert (status, headers["content-type"]) == (200, content_type), rest
        assert body


async def test_a_renderer_without_a_face_gets_the_fallback_face(
    server: CardServer, tmp_path: Path
) -> None:
    faces = tmp_path / "renderers"
    for name in ("_fallback", "_shared", "text", "facelessone"):
        (faces / name).mkdir(parents=True)
    (faces / "_fallback" / "index.html").write_text("fallback face")
    (faces / "text" / "index.html").write_text("text face")
    server.files.renderers_dir = faces
    answers = {}
    for name in ("text", "facelessone"):
        response = await raw(server, get(server, _path(server, f"renderers/{name}/index.html")))
        answers[name] = parse(response)[2]
    assert answers == {"text": b"text face", "facelessone": b"fallback face"}
    # A name with no folder is not a renderer at all.
    response = await raw(server, get(server, _path(server, "renderers/nosuch/index.html")))
    assert parse(response)[0] == 404


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/index.html",
        "/page/host.js",
        "/events",
        "/{wrong}/",
        "/{wrong}/events",
        "/{prefix}/",
        "/{token}x/",
        "/{upper}/",
        "/{token}",  # no slash: the page's relative links would point outside the token
    ],
)
async def test_without_the_token_everything_is_a_bare_404(server: CardServer, path: str) -> None:
    path = path.format(
        wrong="A" * len(server.token),
        prefix=server.token[:-1],
        token=server.token,
        upper=server.token.swapcase(),
    )
    status, _, body = parse(await raw(server, get(server, path)))
    assert status == 404
    assert body == b"not found\n"  # nothing that hints at the token
    assert server.token.encode() not in body


@pytest.mark.parametrize(
    "host",
    [
        "evil.example:{port}",  # DNS rebinding: a page whose name now points at 127.0.0.1
        "evil.example",
        "127.0.0.1:{other}",
        "127.0.0.1",
        "localhost:{port}",  # we bound 127.0.0.1 only, and say so in every URL
        "[::1]:{port}",
        "127.0.0.1:{port}.evil.example",
        "",
    ],
)
async def test_a_foreign_host_header_is_refused(server: CardServer, host: str) -> None:
    host = host.format(port=server.port, other=server.port + 1)
    status, _, body = parse(await raw(server, get(server, _path(server), host=host)))
    assert status == 421
    assert b"<html" not in body.lower()


async def test_a_request_without_host_is_refused(server: CardServer) -> None:
    response = await raw(server, f"GET {_path(server)} HTTP/1.1\r\n\r\n".encode())
    assert parse(response)[0] == 400


@pytest.mark.parametrize(
    "rest",
    [
        "renderers/text/../../../pyproject.toml",
        "renderers/../page/index.html",
        "renderers/text/%2e%2e/%2e%2e/%2e%2e/pyproject.toml",
        "renderers/text/..%2f..%2f..%2fpyproject.toml",
        "renderers/text/..%2F..%2F..%2Fpyproject.toml",
        "renderers/text/..%5c..%5cpyproject.toml",
        "renderers/text/..\\..\\pyproject.toml",
        "renderers/text/index.html%00.js",
        "renderers/text//index.html",
        "renderers/./text/index.html",
        "renderers/%2e%2e/%2e%2e/pyproject.toml",
        "renderers/..%2f..%2fdeeting_tui/web/server.py",
        "vendor/../../../../etc/passwd",
        "vendor/%2e%2e/policy.py",
        "page/../server.py",
        "page/../../web/server.py",
        "renderers/text/%ff.js",
        "renderers/text/main.py",
        "../pyproject.toml",
    ],
)
async def test_no_path_reaches_outside_the_served_folders(server: CardServer, rest: str) -> None:
    status, _, body = parse(await raw(server, get(server, _path(server, rest))))
    assert status in (400, 404)
    assert b"[project]" not in body and b"root:" not in body and b"import" not in body


async def test_a_symlink_out_of_a_served_folder_is_not_followed(
    server: CardServer, tmp_path: Path
) -> None:
    faces = tmp_path / "renderers"
    (faces / "text").mkdir(parents=True)
    secret = tmp_path / "secret.js"
    secret.write_text("the secret")
    os.symlink(secret, faces / "text" / "main.js")
    os.symlink(tmp_path, faces / "escape")  # a renderer folder that is a link out
    (faces / "text" / "index.html").write_text("face")
    server.files.renderers_dir = faces
    for rest in ("renderers/text/main.js", "renderers/escape/secret.js"):
        status, _, body = parse(await raw(server, get(server, _path(server, rest))))
        assert status == 404, rest
        assert b"the secret" not in body


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"])
async def test_only_get_and_head_are_served(server: CardServer, method: str) -> None:
    request = (
        f"{method} {_path(server)} HTTP/1.1\r\nHost: {server.authority}\r\n"
        "Origin: http://evil.example\r\nAccess-Control-Request-Method: GET\r\n\r\n"
    ).encode()
    status, headers, _ = parse(await raw(server, request))
    assert status == 405
    assert headers["allow"] == "GET, HEAD"
    assert not [name for name in headers if name.startswith("access-control-")]


async def test_head_sends_the_headers_without_the_body(server: CardServer) -> None:
    response = await raw(server, get(server, _path(server), method="HEAD"), limit=0.5)
    status, headers, body = parse(response)
    assert status == 200
    assert int(headers["content-length"]) > 0
    assert body == b""


async def test_every_response_carries_the_policies_and_no_cors(server: CardServer) -> None:
    requests = {
        "page": get(server, _path(server)),
        "face": get(server, _path(server, "renderers/text/index.html")),
        "script": get(server, _path(server, "vendor/mcp-host.js")),
        "missing": get(server, _path(server, "renderers/text/nope.js")),
        "no token": get(server, "/"),
        "foreign host": get(server, _path(server), host="evil.example"),
        "method": get(server, _path(server), method="POST"),
    }
    for what, request in requests.items():
        request = request.replace(b"\r\n\r\n", b"\r\nOrigin: http://evil.example\r\n\r\n")
        _, headers, _ = parse(await raw(server, request))
        assert headers["x-content-type-options"] == "nosniff", what
        assert headers["cache-control"] == "no-store", what
        assert headers["referrer-policy"] == "no-referrer", what
        assert headers["cross-origin-resource-policy"] in ("same-origin", "cross-origin"), what
        assert "default-src 'none'" in headers["content-security-policy"], what
        assert not [name for name in headers if name.startswith("access-control-")], what
    _, page, _ = parse(await raw(server, requests["page"]))
    _, face, _ = parse(await raw(server, requests["face"]))
    assert "frame-ancestors 'none'" in page["content-security-policy"]
    assert "connect-src 'none'" in face["content-security-policy"]
    assert f"frame-ancestors {server.origin}" in face["content-security-policy"]


async def test_the_event_stream_carries_the_policies_too(server: CardServer) -> None:
    async with (
        httpx.AsyncClient() as client,
        client.stream("GET", server.url + "events") as response,
    ):
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert not [name for name in response.headers if name.startswith("access-control-")]


async def test_oversized_headers_are_refused(server: CardServer) -> None:
    request = (
        f"GET {_path(server)} HTTP/1.1\r\nHost: {server.authority}\r\n"
        f"X-Padding: {'a' * (20 * 1024)}\r\n\r\n"
    ).encode()
    status, _, body = parse(await raw(server, request))
    assert status == 431
    assert b"<html" not in body


async def test_a_request_with_a_body_is_refused(server: CardServer) -> None:
    request = (
        f"GET {_path(server)} HTTP/1.1\r\nHost: {server.authority}\r\n"
        "Content-Length: 5\r\n\r\nhello"
    ).encode()
    assert parse(await raw(server, request))[0] == 413
    chunked = (
        f"GET {_path(server)} HTTP/1.1\r\nHost: {server.authority}\r\n"
        "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    ).encode()
    assert parse(await raw(server, chunked))[0] == 413


async def test_an_idle_connection_is_closed(
    server: CardServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server_module, "IDLE_TIMEOUT_S", 0.2)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(b"GET / HTTP/1.1\r\n")  # and then nothing
        assert await asyncio.wait_for(reader.read(), 5) == b""
    finally:
        writer.close()


async def test_keep_alive_serves_several_requests_on_one_connection(server: CardServer) -> None:
    async with httpx.AsyncClient() as client:
        for rest in ("", "page/host.js", "renderers/text/index.html"):
            assert (await client.get(server.url + rest)).status_code == 200


async def test_a_taken_port_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(DeetingError, match=f"port {port} on 127.0.0.1 is already in use"):
            await CardServer(port=port).start()


async def test_the_given_port_is_used() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    card_server = CardServer(port=port)
    await card_server.start()
    try:
        assert card_server.url.startswith(f"http://127.0.0.1:{port}/")
    finally:
        await card_server.stop()


# -- the event stream ------------------------------------------------------------------------


class Stream:
    """A raw SSE client: reads ``data:`` lines as JSON ops."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, server: CardServer) -> Stream:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", server.port, limit=64 * 1024 * 1024
        )
        writer.write(get(server, _path(server, "events")))
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200")
        return cls(reader, writer)

    async def op(self, timeout: float = 5.0) -> dict[str, object]:
        while True:
            line = await asyncio.wait_for(self.reader.readline(), timeout)
            if not line:
                raise EOFError("the stream ended")
            if line.startswith(b"data: "):
                return dict(orjson.loads(line[6:]))

    def close(self) -> None:
        self.writer.close()


def _result(call_id: str, text: str = "hi") -> ToolResult:
    data = {"text": text}
    return ToolResult(
        session_id="s", call_id=call_id, tool="t", plugin="p", ok=True, data=data, renderer="text"
    )


async def test_a_client_gets_a_reset_then_the_ops(server: CardServer) -> None:
    server.load("s1", "My session", [_result("c0")])
    stream = await Stream.open(server)
    try:
        reset = await stream.op()
        assert reset["op"] == "reset"
        assert reset["session"] == {"id": "s1", "title": "My session"}
        assert [card["id"] for card in reset["cards"]] == ["c0"]  # type: ignore[index]
        assert reset["older"] == 0
        server.publish(_result("c1"))
        op = await stream.op()
        assert op["op"] == "card" and op["card"]["id"] == "c1"  # type: ignore[index]
        server.set_theme("dark")
        assert await stream.op() == {"op": "theme", "theme": "dark"}
    finally:
        stream.close()


async def test_two_clients_both_follow(server: CardServer) -> None:
    first, second = await Stream.open(server), await Stream.open(server)
    try:
        assert (await first.op())["op"] == (await second.op())["op"] == "reset"
        for n in range(3):
            frame = {"text": f"{n}"}
            server.publish(
                StreamFrame(session_id="s", plugin="p", topic="t", payload=frame, renderer="text")
            )
        for stream in (first, second):
            ops = [await stream.op() for _ in range(3)]
            assert [op["op"] for op in ops] == ["card", "result", "result"]
    finally:
        first.close()
        second.close()


async def test_stop_ends_open_event_streams_promptly(server: CardServer) -> None:
    stream = await Stream.open(server)
    assert (await stream.op())["op"] == "reset"
    await asyncio.wait_for(server.stop(), 1.0)
    with pytest.raises(EOFError):
        await stream.op(timeout=1.0)
    stream.close()
    await server.stop()  # idempotent
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", server.port)


async def test_stop_as_a_frame_wakes_the_stream_still_ends_it_promptly(
    server: CardServer,
) -> None:
    """A frame published just before stop() wakes the stream as it is cancelled: the cancel
    must not be lost (asyncio.wait_for on 3.11 could swallow it, and the stream then waited
    for its next heartbeat: a view stopped by Ctrl-C hung for seconds)."""
    stream = await Stream.open(server)
    assert (await stream.op())["op"] == "reset"
    server.publish(_result("c1"))
    await asyncio.wait_for(server.stop(), 1.0)
    stream.close()


async def test_a_slow_client_holds_up_no_one_and_gets_a_fresh_reset(
    server: CardServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backlog_module, "CLIENT_QUEUE", 8)
    slow, fast = await Stream.open(server), await Stream.open(server)
    slow.writer.transport.pause_reading()  # type: ignore[attr-defined]
    try:
        assert (await fast.op())["op"] == "reset"
        big = "x" * 200_000  # enough to fill the socket buffers of the client that never reads
        for n in range(60):
            server.publish(_result(f"c{n}", big))
            assert all(client.queue.qsize() <= 8 for client in server._clients)
            op = await fast.op()
            assert op["card"]["id"] == f"c{n}"  # type: ignore[index]
        slow.writer.transport.resume_reading()  # type: ignore[attr-defined]
        ops = []
        while not ops or ops[-1]["op"] != "reset" or len(ops) < 2:
            ops.append(await slow.op())
        fresh = ops[-1]
        assert len(fresh["cards"]) == 60  # type: ignore[arg-type]
    finally:
        slow.close()
        fast.close()


async def test_a_heartbeat_is_sent_while_nothing_happens(
    server: CardServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server_module, "HEARTBEAT_S", 0.05)
    stream = await Stream.open(server)
    try:
        await stream.op()
        while (line := await asyncio.wait_for(stream.reader.readline(), 5)) != b": ping\n":
            assert line.strip() in (b"", b"retry: 1000") or line.startswith((b"id:", b"data:"))
    finally:
        stream.close()


async def test_server_start_is_fast() -> None:
    loop = asyncio.get_running_loop()
    card_server = CardServer()
    began = loop.time()
    await card_server.start()
    took = loop.time() - began
    await card_server.stop()
    assert took < 0.5  # the bench holds the 50 ms target; this catches an accidental second


async def test_face_files_may_load_in_an_opaque_origin_and_the_data_may_not(
    server: CardServer,
) -> None:
    """A sandboxed card is an opaque origin: CORP same-origin on its scripts and styles
    blocks every one of them (tests/web/test_page.py shows it in Chromium); the page and the
    event stream keep same-origin."""
    policies = {}
    for rest in ("renderers/text/main.js", "renderers/_shared/face.css", "vendor/mcp-app.js", ""):
        _, headers, _ = parse(await raw(server, get(server, _path(server, rest))))
        policies[rest] = headers["cross-origin-resource-policy"]
    assert policies == {
        "renderers/text/main.js": "cross-origin",
        "renderers/_shared/face.css": "cross-origin",
        "vendor/mcp-app.js": "cross-origin",
        "": "same-origin",
    }


async def test_arguments_json_cannot_carry_do_not_stop_the_stream(server: CardServer) -> None:
    from deeting_tui.kernel.events import ToolCall

    stream = await Stream.open(server)
    try:
        await stream.op()
        server.publish(ToolCall(session_id="s", call_id="c1", tool="t", args={"n": 2**70}))
        op = await stream.op()
        assert op["card"]["input"] == {"arguments": {"n": 2**70}}  # type: ignore[index]
    finally:
        stream.close()


def _frame(n: int, topic: str = "t", pad: str = "") -> StreamFrame:
    payload = {"text": f"{n}{pad}"}
    return StreamFrame(session_id="s", plugin="p", topic=topic, payload=payload, renderer="text")


async def test_a_slow_client_gets_the_latest_frame_of_a_flooded_card_without_a_reset(
    server: CardServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stream far faster than the page reads: its frames coalesce (latest wins) instead of
    # overflowing the backlog, which would cost the page a whole reset.
    monkeypatch.setattr(backlog_module, "CLIENT_QUEUE", 8)
    slow, fast = await Stream.open(server), await Stream.open(server)
    slow.writer.transport.pause_reading()  # type: ignore[attr-defined]
    try:
        assert (await fast.op())["op"] == "reset"
        pad = "x" * 20_000  # enough to fill the socket buffers of the client that never reads
        server.publish(_frame(0, "a"))
        assert (await fast.op())["op"] == "card"
        for n in range(1, 2001):
            server.publish(_frame(n, "a", pad))
            if n == 1000:
                server.publish(_frame(0, "b"))  # another card, between the frames
                server.set_theme("dark")
            assert all(client.queue.qsize() <= 3 for client in server._clients)  # bounded
            op = await fast.op()  # the other client sees every frame, in order
            if n == 1000:
                assert op["op"] == "result"
                assert (await fast.op())["op"] == "card"
                assert (await fast.op())["op"] == "theme"
            assert op["op"] == "result" and op["result"]["_meta"]["deeting/frame"] == n + 1  # type: ignore[index]
        slow.writer.transport.resume_reading()  # type: ignore[attr-defined]
        ops = [await slow.op()]
        while not (
            ops[-1]["op"] == "result" and ops[-1]["result"]["_meta"]["deeting/frame"] == 2001
        ):  # type: ignore[index]
            ops.append(await slow.op())
        kinds = [op["op"] for op in ops]
        assert "reset" not in kinds[1:]  # no backlog was dropped
        assert len(ops) < 2001  # frames were coalesced
        # Order between cards and the non-frame ops are kept: card b and the theme come
        # after a frame of card a published before them, and before the last frame.
        b = next(
            i for i, op in enumerate(ops) if op["op"] == "card" and op["card"]["id"] == "stream:p:b"
        )  # type: ignore[index]
        theme = kinds.index("theme")
        assert b < theme < len(ops) - 1
        frames = [op["result"]["_meta"]["deeting/frame"] for op in ops if op["op"] == "result"]  # type: ignore[index]
        assert frames == sorted(frames)  # a card's frames never go backwards
    finally:
        slow.close()
        fast.close()


async def test_frames_of_a_client_that_keeps_up_are_all_sent(server: CardServer) -> None:
    stream = await Stream.open(server)
    try:
        assert (await stream.op())["op"] == "reset"
        for n in range(50):
            server.publish(_frame(n))
            op = await stream.op()
            assert op["op"] == ("card" if n == 0 else "result")
    finally:
        stream.close()


async def test_a_checkout_without_built_libraries_is_told_how_to_build_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No Node.js when ./dev.sh ran: the pages would stay blank, so the server says so
    instead of starting (deeting view prints it; the chat's o key shows it)."""
    from deeting_tui.errors import DeetingError
    from deeting_tui.web import files

    monkeypatch.setattr(files, "VENDOR_DIR", tmp_path / "vendor")
    server = CardServer()
    with pytest.raises(DeetingError) as raised:
        await server.start()
    message = str(raised.value)
    assert "libraries are not built" in message and "mcp-host.js, mcp-app.js" in message
    assert "./dev.sh run" in message
    await server.stop()
