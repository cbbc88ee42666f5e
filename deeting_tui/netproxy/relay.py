"""Moving bytes once the proxy said yes: the tunnel, the request body, the reply.

A relay must never let a plugin hold the kernel: one idle clock covers both directions, a
request body is copied by its own framing and no further (so nothing after it reaches the
server as a second request), and a close never waits forever on a peer that stopped reading.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

__all__ = [
    "CHUNK",
    "LINGER_BYTES",
    "LINGER_SECONDS",
    "Idle",
    "cancel",
    "close_writer",
    "pipe",
    "send_body",
]

CHUNK = 64 * 1024
# After a refusal, what the client still sends is read and dropped for a moment: closing a
# socket with unread input makes the kernel send a reset, which can destroy the reply in flight.
LINGER_SECONDS = 2.0
LINGER_BYTES = 1024 * 1024


_CHUNK_SIZE = re.compile(rb"[0-9a-fA-F]{1,16}")


_T = TypeVar("_T")


class _BadBody(Exception):
    """The request body breaks its own framing after the request was sent upstream."""


class Idle:
    """One inactivity clock for both directions of a relay.

    A download is silent from the client's side for as long as it lasts; timing each direction
    on its own would cut it off, so any byte moved in either direction keeps both alive.
    """

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._last = time.monotonic()

    def touch(self) -> None:
        self._last = time.monotonic()

    async def wait(self, step: Callable[[], Awaitable[_T]]) -> _T:
        while True:
            remaining = self._last + self._seconds - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no traffic for {self._seconds:g}s")
            deadline = asyncio.timeout(remaining)
            try:
                async with deadline:
                    return await step()
            except TimeoutError:
                if not deadline.expired():
                    raise  # the socket's own ETIMEDOUT: retrying would spin on a dead socket
                # else the other direction may have moved bytes meanwhile: look again


async def send_body(
    length: int | None,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    idle: Idle,
) -> None:
    """Copy exactly the request body, so nothing after it reaches the server as a request."""
    if length is None:
        await _copy_chunked(reader, writer, idle)
    else:
        await _copy_exactly(reader, writer, length, idle)
    await idle.wait(writer.drain)


async def _copy_exactly(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, count: int, idle: Idle
) -> None:
    while count > 0:
        data = await idle.wait(functools.partial(reader.read, min(count, CHUNK)))
        if not data:
            raise _BadBody("the body ended early")
        idle.touch()
        count -= len(data)
        writer.write(data)
        await idle.wait(writer.drain)


async def _copy_chunked(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, idle: Idle
) -> None:
    while True:
        line = await idle.wait(lambda: reader.readuntil(b"\n"))
        size = line.split(b";", 1)[0].strip()
        if not _CHUNK_SIZE.fullmatch(size):
            raise _BadBody(f"bad chunk size {size[:20]!r}")
        writer.write(line)
        if int(size, 16) == 0:
            break
        await _copy_exactly(reader, writer, int(size, 16) + 2, idle)  # data and its CRLF
    while True:  # trailer fields, up to the blank line
        line = await idle.wait(lambda: reader.readuntil(b"\n"))
        writer.write(line)
        if line in (b"\r\n", b"\n"):
            break
    await idle.wait(writer.drain)


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, idle: Idle) -> None:
    """Relay one direction; at its end pass the half-close on, as the sender meant it."""
    while True:
        data = await idle.wait(lambda: reader.read(CHUNK))
        if not data:
            break
        idle.touch()
        writer.write(data)
        await idle.wait(writer.drain)
    if writer.can_write_eof() and not writer.is_closing():
        with contextlib.suppress(OSError):  # ENOTCONN: the other end is gone, nothing to tell
            writer.write_eof()


async def cancel(tasks: Sequence[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def close_writer(writer: asyncio.StreamWriter) -> None:
    """Close politely, but never wait forever on a peer that stopped reading."""
    writer.close()
    try:
        await asyncio.wait_for(writer.wait_closed(), LINGER_SECONDS)
    except asyncio.CancelledError:
        writer.transport.abort()
        raise
    except TimeoutError:
        writer.transport.abort()
    except OSError:
        pass
