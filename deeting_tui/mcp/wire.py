"""``deeting mcp serve``'s stdio: the protocol owns the process's stdin and stdout.

Anything else that writes to fd 1 (a stray ``print``, a library's warning, the forkserver or
a worker that inherits the descriptor) would corrupt the JSON-RPC stream a client reads, so
the wire is moved to private descriptors first and fd 1 is pointed at stderr, fd 0 at the
null device, for the whole run (the SDK's own ``stdio_server`` claims the descriptors only
while it serves, after the kernel has started; and its reader blocks a thread in ``readline``,
so a SIGTERM could not end the run until the client wrote another line).

Lines are read by a daemon thread and handed to the loop: waiting for the client never blocks
the loop, and a signal ends the run at once whatever the thread is doing.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import BinaryIO


@dataclass
class Wire:
    """The protocol's own descriptors: ``reader`` from the client, ``writer`` to it."""

    reader: BinaryIO
    writer: BinaryIO


@contextlib.contextmanager
def claim_stdio() -> Iterator[Wire]:
    """Move the wire off fds 0 and 1 for the block (restored after it)."""
    sys.stdout.flush()
    wire_in, wire_out = os.dup(0), os.dup(1)  # not inherited: no worker sees the wire
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        os.dup2(null, 0)
        os.dup2(2, 1)
    finally:
        os.close(null)
    reader = os.fdopen(wire_in, "rb", buffering=io.DEFAULT_BUFFER_SIZE)
    writer = os.fdopen(wire_out, "wb", buffering=0)
    try:
        yield Wire(reader, writer)
    finally:
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()
        with contextlib.suppress(OSError):
            os.dup2(writer.fileno(), 1)
        with contextlib.suppress(OSError):
            os.dup2(reader.fileno(), 0)
        # The reader thread may still be blocked on its descriptor: it is a daemon, left to
        # the process's end rather than closed under it.
        with contextlib.suppress(OSError):
            writer.close()


class LineReader:
    """The client's lines, as text (invalid UTF-8 replaced, as the SDK's reader does; the
    SDK answers what does not parse), read off the loop by a daemon thread."""

    def __init__(self, source: BinaryIO) -> None:
        self._source = source
        self._queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=64)
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._read, name="deeting-mcp-reader", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for raw in self._source:
                self._hand_over(raw.decode("utf-8", "replace"))
        except (OSError, ValueError):
            pass  # the client's end broke: the same as its end of input
        with contextlib.suppress(RuntimeError):
            self._hand_over(None)

    def _hand_over(self, line: str | None) -> None:
        """Give the loop one line and wait until it took it (the queue bounds memory)."""
        put = self._queue.put(line)
        try:
            future = asyncio.run_coroutine_threadsafe(put, self._loop)
        except RuntimeError:  # the loop is closed: nobody reads any more
            put.close()
            raise
        future.result()

    def __aiter__(self) -> AsyncIterator[str]:
        return self._lines()

    async def _lines(self) -> AsyncIterator[str]:
        while (line := await self._queue.get()) is not None:
            yield line


class LineWriter:
    """What the SDK's writer task writes to: one JSON-RPC message per ``write``. A write is
    small and the client reads as it goes, so it is made in place (a client that stops
    reading stops the server, as with any pipe)."""

    def __init__(self, sink: BinaryIO) -> None:
        self._sink = sink

    async def write(self, text: str) -> None:
        self._sink.write(text.encode("utf-8"))

    async def flush(self) -> None:
        self._sink.flush()
