"""The browser bench's floors: what the same work costs without Deeting in the way.

**Server start.** ``asyncio.start_server`` on 127.0.0.1, port 0, until a client's connect is
accepted: what binding and listening cost at all, against ``CardServer.start()``.

**Frames to the browser.** A child process writes the same stamped frames as the bench
plugin (``frame I of N`` / ``sent_ms T``) to a pipe, one JSON line each, on the same
schedule; this process reads the pipe and sends each line as a Server-Sent Event to a bare
page, whose script puts the text in ``<body>`` and counts ``data-updates`` as a face does.
No kernel, no worker, no host page, no iframe, no postMessage: the floor of process → pipe →
HTTP → browser → DOM on this machine, timed in the page exactly as the real path is.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator

#: The child that writes stamped frames on a schedule (argv: count, interval in ms).
FRAME_WRITER = r"""
import sys, time
count, interval = int(sys.argv[1]), float(sys.argv[2]) / 1000
out = sys.stdout
began = time.monotonic()
for i in range(count):
    delay = began + i * interval - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    sent = time.time() * 1000
    out.write('{"text": "frame %d of %d\\nsent_ms %.3f"}\n' % (i + 1, count, sent))
    out.flush()
"""

_PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>floor</title>
<script src="floor.js" defer></script></head><body data-updates="0"></body></html>
"""

_SCRIPT = b"""
"use strict";
let updates = 0;
const source = new EventSource("events");
source.onmessage = (event) => {
  const frame = JSON.parse(event.data);
  const box = document.createElement("div");
  box.textContent = frame.text;
  document.body.replaceChildren(box);
  updates += 1;
  document.body.dataset.updates = String(updates);
};
"""


async def start_floor_ms() -> float:
    """One start of a bare asyncio server, to its first accepted connection, in ms."""
    accepted = asyncio.Event()

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set()
        writer.close()

    began = time.perf_counter()
    server = await asyncio.start_server(on_client, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    took = (time.perf_counter() - began) * 1e3
    writer.close()
    await accepted.wait()
    server.close()
    await server.wait_closed()
    return took


class FloorServer:
    """A bare page and an SSE stream on 127.0.0.1; :meth:`relay` forwards a pipe to it."""

    def __init__(self) -> None:
        self._clients: list[asyncio.StreamWriter] = []
        self._connected = asyncio.Event()
        self._server: asyncio.Server | None = None
        self.url = ""

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/"

    async def stop(self) -> None:
        for writer in self._clients:
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def connected(self) -> None:
        await self._connected.wait()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        path = request.split(b" ", 2)[1]
        if path == b"/events":
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                b"Cache-Control: no-store\r\n\r\n"
            )
            await writer.drain()
            self._clients.append(writer)
            self._connected.set()
            return
        body, kind = (
            (_SCRIPT, b"text/javascript") if path == b"/floor.js" else (_PAGE, b"text/html")
        )
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: " + kind + b"; charset=utf-8\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body
        )
        await writer.drain()
        writer.close()

    async def relay(self, count: int, interval_ms: float) -> int:
        """Run the frame writer; send each of its lines to every page; returns lines sent."""
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", FRAME_WRITER, str(count), str(interval_ms),
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        sent = 0
        try:
            assert process.stdout is not None
            async for line in _lines(process.stdout):
                event = b"data: " + line + b"\n\n"
                for writer in self._clients:
                    writer.write(event)
                sent += 1
        finally:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
        return sent


async def _lines(stream: asyncio.StreamReader) -> AsyncIterator[bytes]:
    while line := await stream.readline():
        yield line.rstrip(b"\n")
