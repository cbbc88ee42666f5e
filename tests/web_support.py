"""Helpers for the loopback server's tests: raw HTTP over a socket, and a server in a thread
for the (sync) browser tests."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from deeting_tui.web.server import CardServer


async def raw(server: CardServer, request: bytes, *, limit: float = 5.0) -> bytes:
    """Send bytes as they are (no client library tidying the path) and read until the server
    closes or goes quiet after a full response."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(request)
        await writer.drain()
        data = b""
        while True:
            try:
                chunk = await asyncio.wait_for(reader.read(65536), limit)
            except TimeoutError:
                break
            if not chunk:
                break
            data += chunk
            if _complete(data):
                break
        return data
    finally:
        writer.close()


def _complete(data: bytes) -> bool:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value.strip())
    return False


def get(server: CardServer, path: str, *, host: str | None = None, method: str = "GET") -> bytes:
    """A request line and headers for ``path`` (as written, not normalised)."""
    host = server.authority if host is None else host
    return f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()


def parse(response: bytes) -> tuple[int, dict[str, str], bytes]:
    """(status, headers with lower-case names, body)."""
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


class ServerThread:
    """A CardServer on its own event loop in a thread: the sync Playwright tests drive a
    browser while the server runs, and publish events into it."""

    def __init__(self, **kwargs: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = CardServer(**kwargs)
        self.call(self.server.start())

    def call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        async def wrapped() -> Any:
            return fn(*args)

        return self.call(wrapped())

    def publish(self, *events: Any) -> None:
        def publish_all() -> None:
            for event in events:
                self.server.publish(event)

        self.run(publish_all)

    def close(self) -> None:
        try:
            self.call(self.server.stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
            self.loop.close()
