"""The loopback server: the host page, the renderers' faces, the libraries and the card events.

It listens on 127.0.0.1 only, and everything it serves sits under a secret token (the first
path segment, made once per process): a request without it gets a bare 404, so another local
user or a web page guessing ports learns nothing. The Host header must name exactly the
address it bound (``127.0.0.1:PORT``), which defeats DNS rebinding (a page at evil.example
whose name now resolves to 127.0.0.1 sends ``Host: evil.example:PORT``). No CORS header is
ever sent, only GET and HEAD are served, files are served from three fixed folders with
their real paths checked to stay inside, and every response carries the page policies
(policy.py). HTTP/1.1 is parsed by h11; a request is at most :data:`MAX_HEADER_BYTES` of
headers and no body.

``/TOKEN/events`` is a Server-Sent Events stream: a ``reset`` (the whole board) first, then
the board's ops as they happen (cards.py). Each client has a bounded backlog of ops not yet
written (backlog.py), where a stream's frames coalesce: a slow page never holds up the others
or grows the server's memory. Which file a path names, and under which policy, is files.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hmac
import json
import secrets
import socket
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

import h11
import orjson

from deeting_tui.errors import DeetingError
from deeting_tui.kernel.events import Event

from .backlog import WRITE_BATCH, StreamClient
from .cards import Board
from .files import FaceFiles, content_type, missing_libraries, segments
from .policy import COMMON_HEADERS, FACE_FILE_RESOURCE_POLICY, app_policy, host_policy

__all__ = ["MAX_HEADER_BYTES", "CardServer"]

HOST = "127.0.0.1"
#: The most a request line and its headers may weigh.
MAX_HEADER_BYTES = 16 * 1024
#: A connection that sends nothing for this long (between requests, or mid-request) is closed.
IDLE_TIMEOUT_S = 30.0
#: A comment line on every event stream this often, so a dead client is noticed (the write
#: fails) and proxies keep the stream open.
HEARTBEAT_S = 15.0
#: A client that takes longer than this to take one write is dropped.
WRITE_TIMEOUT_S = 30.0
#: Connections at once; more are closed at once (a page opens a handful).
MAX_CONNECTIONS = 256

_SERVER_NAME = b"deeting"


class CardServer:
    """Serves one board of cards on 127.0.0.1 to any number of browser tabs."""

    def __init__(self, *, port: int = 0, theme: str | None = None) -> None:
        self._port = port
        self.token = secrets.token_urlsafe(24)
        self.board = Board()
        self.board.theme = _theme(theme)
        self._server: asyncio.Server | None = None
        self._clients: set[StreamClient] = set()
        self._connections: set[asyncio.Task[None]] = set()
        self._next_id = 0
        self._stopped = False

    # -- lifetime -------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind 127.0.0.1 (the given port, or a free one) and start accepting."""
        if self._server is not None:
            return
        problem = missing_libraries()
        if problem is not None:
            raise DeetingError(problem)
        try:
            self._server = await asyncio.start_server(
                self._connection, HOST, self._port, limit=MAX_HEADER_BYTES, reuse_address=True
            )
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise DeetingError(
                    f"port {self._port} on {HOST} is already in use — choose another with "
                    "--port N, or leave --port out for any free port"
                ) from None
            raise DeetingError(f"cannot listen on {HOST}:{self._port}: {exc.strerror}") from None
        sock: socket.socket = self._server.sockets[0]
        self.port = int(sock.getsockname()[1])
        self.authority = f"{HOST}:{self.port}"
        self.origin = f"http://{self.authority}"
        self.files = FaceFiles(self.origin)

    async def stop(self) -> None:
        """Stop accepting, end every event stream and close every connection. Idempotent."""
        if self._server is None or self._stopped:
            return
        self._stopped = True
        self._server.close()
        # Cancelling is not enough alone: a stream woken as it is cancelled could carry on
        # (asyncio.wait_for on 3.11 may swallow the cancel); each also sees _stopped.
        for client in self._clients:
            client.wake.set()
        tasks = list(self._connections)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await self._server.wait_closed()

    @property
    def url(self) -> str:
        """The host page: ``http://127.0.0.1:PORT/TOKEN/``."""
        return f"{self.origin}/{self.token}/"

    def card_url(self, card_id: str) -> str:
        """The host page showing one card only."""
        return f"{self.url}?card={quote(card_id, safe='')}"

    # -- the board ------------------------------------------------------------------------

    def publish(self, event: Event, ts: float | None = None) -> None:
        """Fold a kernel event into the board and send the ops to every page. Call it on the
        server's event loop (a front end's listener runs there); it never raises for plugin
        data."""
        for op in self.board.apply(event, ts):
            self._send(op)

    def load(self, session_id: str | None, title: str | None, events: Iterable[Event] = ()) -> None:
        """Replace the board (a first load, or a session switch); every page starts over."""
        self.board.load(session_id, title, events)
        for client in self._clients:
            client.resync()

    def set_theme(self, theme: str | None) -> None:
        """Follow the front end's theme; None lets each page follow the system's."""
        self.board.theme = _theme(theme)
        self._send({"op": "theme", "theme": self.board.theme})

    def _send(self, op: dict[str, Any]) -> None:
        chunk = self._event(op)
        # A card's frames coalesce in a slow client's backlog: each is a whole payload.
        key = ("result", op.get("id")) if op.get("op") == "result" else None
        for client in self._clients:
            client.push(chunk, key)

    def _event(self, op: dict[str, Any]) -> bytes:
        self._next_id += 1
        try:
            data = orjson.dumps(op, option=orjson.OPT_NON_STR_KEYS, default=str)
        except orjson.JSONEncodeError:
            # An integer beyond 64 bits in a call's arguments (payloads were checked by the
            # board): the standard library writes it; nothing a plugin sends stops a page.
            data = json.dumps(op, default=str, ensure_ascii=False).encode()
        return b"id: %d\ndata: %s\n\n" % (self._next_id, data)

    # -- connections ----------------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if self._stopped or len(self._connections) >= MAX_CONNECTIONS:
            writer.close()
            return
        self._connections.add(task)
        try:
            await self._serve(reader, writer)
        except (TimeoutError, OSError, h11.ProtocolError):
            pass
        except asyncio.CancelledError:
            # stop() cancels every connection; the task ends here, quietly (asyncio's stream
            # callback would report a cancelled connection task as an error).
            if not self._stopped:
                raise
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)
        while True:
            event = await self._next_event(conn, reader)
            if event is None:
                return
            if isinstance(event, h11.RemoteProtocolError):
                if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                    words = "request headers too large" if event.error_status_hint == 431 else ""
                    await self._plain(
                        conn, writer, event.error_status_hint, words or "bad request", "GET"
                    )
                return
            if isinstance(event, h11.Request):
                keep = await self._respond(conn, writer, event)
                if not keep:
                    return
            if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                return
            if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
                conn.start_next_cycle()

    async def _next_event(self, conn: h11.Connection, reader: asyncio.StreamReader) -> Any:
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                return exc  # garbage, or headers over the limit: answered, then closed
            if event is h11.NEED_DATA:
                async with asyncio.timeout(IDLE_TIMEOUT_S):
                    data = await reader.read(65536)
                conn.receive_data(data)
                continue
            if isinstance(event, h11.ConnectionClosed):
                return None
            return event

    async def _respond(
        self, conn: h11.Connection, writer: asyncio.StreamWriter, request: h11.Request
    ) -> bool:
        """Answer one request; False when the connection must close after it."""
        size = len(request.target) + sum(len(n) + len(v) + 4 for n, v in request.headers)
        if size > MAX_HEADER_BYTES:  # arrived whole in one read, so h11's own limit let it be
            await self._plain(conn, writer, 431, "request headers too large", "GET")
            return False
        headers = {name.lower(): value for name, value in request.headers}
        method = request.method.decode("latin-1")
        target = request.target.decode("latin-1")
        if headers.get(b"host", b"").decode("latin-1") != self.authority:
            await self._plain(conn, writer, 421, "misdirected request", method)
            return False
        path, _, query = target.partition("?")
        parts = segments(path)
        if (
            parts is not None
            and len(parts) == 2
            and parts[0] == "app"
            and method in ("GET", "HEAD")
        ):
            return await self._app(conn, writer, parts[1], method)
        if (
            parts is None
            or not parts
            or not hmac.compare_digest(parts[0].encode(), self.token.encode())
        ):
            await self._plain(conn, writer, 404, "not found", method)
            return False
        if method not in ("GET", "HEAD"):
            await self._plain(
                conn, writer, 405, "method not allowed", method, (b"Allow", b"GET, HEAD")
            )
            return False
        if (b"content-length" in headers and headers[b"content-length"] != b"0") or (
            b"transfer-encoding" in headers
        ):
            await self._plain(conn, writer, 413, "a request has no body", method)
            return False
        rest = parts[1:]
        if rest == ["events"]:
            await self._events(conn, writer, method)
            return False
        found = self.files.find(rest)
        if found is None:
            await self._plain(conn, writer, 404, "not found", method)
            return True
        file, policy = found
        try:
            body = file.read_bytes()
        except OSError:
            await self._plain(conn, writer, 404, "not found", method)
            return True
        del query  # ?card=ID is read by the page itself
        face_file = rest[0] in ("renderers", "vendor")
        await self._send_response(
            conn, writer, 200, content_type(file), body, method, policy, face_file=face_file
        )
        return True

    async def _app(
        self, conn: h11.Connection, writer: asyncio.StreamWriter, nonce: str, method: str
    ) -> bool:
        """An MCP server's app as a document of its own: ``/app/NONCE``, a random name the
        board made for that card (no token: the app can read its own address)."""
        html = self.board.app_html(nonce) if nonce else None
        if html is None:
            await self._plain(conn, writer, 404, "not found", method)
            return False
        body = html.encode("utf-8", "surrogatepass")
        policy = app_policy(self.origin)
        await self._send_response(
            conn, writer, 200, "text/html; charset=utf-8", body, method, policy
        )
        return True

    # -- responses ------------------------------------------------------------------------

    def _headers(
        self, content_type: str, policy: str, face_file: bool = False
    ) -> list[tuple[bytes, bytes]]:
        headers = [
            (b"Content-Type", content_type.encode()),
            (b"Content-Security-Policy", policy.encode()),
            (b"Server", _SERVER_NAME),
        ]
        for name, value in COMMON_HEADERS:
            if face_file and name == "Cross-Origin-Resource-Policy":
                value = FACE_FILE_RESOURCE_POLICY
            headers.append((name.encode(), value.encode()))
        return headers

    async def _send_response(
        self,
        conn: h11.Connection,
        writer: asyncio.StreamWriter,
        status: int,
        content_type: str,
        body: bytes,
        method: str,
        policy: str,
        extra: tuple[tuple[bytes, bytes], ...] = (),
        *,
        face_file: bool = False,
    ) -> None:
        headers = self._headers(content_type, policy, face_file)
        headers.append((b"Content-Length", str(len(body)).encode()))
        headers.extend(extra)
        data = conn.send(h11.Response(status_code=status, headers=headers))
        if method != "HEAD":
            data = (data or b"") + (conn.send(h11.Data(data=body)) or b"")
        data = (data or b"") + (conn.send(h11.EndOfMessage()) or b"")
        writer.write(data)
        async with asyncio.timeout(WRITE_TIMEOUT_S):
            await writer.drain()

    async def _plain(
        self,
        conn: h11.Connection,
        writer: asyncio.StreamWriter,
        status: int,
        text: str,
        method: str,
        *extra: tuple[bytes, bytes],
    ) -> None:
        """A short error, no detail: which token or host was expected is never said."""
        if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        extra = (*extra, (b"Connection", b"close"))
        body = (text + "\n").encode()
        await self._send_response(
            conn, writer, status, "text/plain; charset=utf-8", body, method, host_policy(), extra
        )

    async def _events(
        self, conn: h11.Connection, writer: asyncio.StreamWriter, method: str
    ) -> None:
        """The event stream: a reset, then ops, until the client or the server goes."""
        # The head is written by hand: the body is plain lines until the connection closes
        # (no chunked framing), which every EventSource reads and a test can read raw.
        headers = self._headers("text/event-stream; charset=utf-8", host_policy())
        headers.append((b"Connection", b"close"))
        head = b"HTTP/1.1 200 OK\r\n" + b"".join(b"%s: %s\r\n" % pair for pair in headers)
        writer.write(head + b"\r\n")
        async with asyncio.timeout(WRITE_TIMEOUT_S):
            await writer.drain()
        if method == "HEAD":
            return
        client = StreamClient()
        self._clients.add(client)
        try:
            # Tell EventSource to come back quickly after a restart of the stream.
            writer.write(b"retry: 1000\n\n")
            while not self._stopped:
                if client.needs_reset:
                    client.needs_reset = False
                    chunk = self._event(self.board.reset())
                else:
                    chunks: list[bytes] = []
                    while not client.queue.empty() and len(chunks) < WRITE_BATCH:
                        chunks.append(client.queue.get_nowait())
                    if not chunks:
                        client.wake.clear()
                        try:
                            async with asyncio.timeout(HEARTBEAT_S):
                                await client.wake.wait()
                        except TimeoutError:
                            chunks.append(b": ping\n\n")
                        else:
                            continue
                    chunk = b"".join(chunks)
                writer.write(chunk)
                # drain() only waits while the socket is full: ops pushed meanwhile coalesce.
                client.behind = True
                try:
                    async with asyncio.timeout(WRITE_TIMEOUT_S):
                        await writer.drain()
                finally:
                    client.behind = False
        finally:
            self._clients.discard(client)


def _theme(theme: str | None) -> str | None:
    if theme not in (None, "light", "dark"):
        raise ValueError(f"theme must be 'light', 'dark' or None, not {theme!r}")
    return theme
