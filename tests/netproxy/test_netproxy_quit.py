"""The proxy at the end of the program: connections still open when the event loop ends (the
chat quit right after a cancelled call) end without a word, and a relay whose other end has
gone (ENOTCONN on the half-close) is an ended connection, not a traceback."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
from typing import Any

import pytest

from deeting_tui.netproxy.proxy import HostProxy
from deeting_tui.netproxy.relay import Idle, pipe


def test_a_tunnel_left_open_when_the_loop_ends_says_nothing() -> None:
    problems: list[dict[str, Any]] = []

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: problems.append(ctx))

        async def silent(reader: asyncio.StreamReader, _writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(asyncio.CancelledError):  # 3.11 would log it (see below)
                await reader.read()  # a server that never answers: a call that blocks

        upstream = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = upstream.sockets[0].getsockname()[1]
        proxy = HostProxy("weather", ["127.0.0.1"])
        await proxy.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\n\r\n".encode())
        assert (await reader.readline()).startswith(b"HTTP/1.1 200")
        # Returning now leaves the tunnel's tasks to asyncio.run, which cancels them, as at
        # the end of the chat.

    asyncio.run(main())
    assert [ctx.get("message") for ctx in problems] == []


class _GoneWriter:
    """The writing side of a socket whose other end has reset: the half-close fails."""

    def can_write_eof(self) -> bool:
        return True

    def is_closing(self) -> bool:
        return False

    def write(self, _data: bytes) -> None:
        pass

    async def drain(self) -> None:
        pass

    def write_eof(self) -> None:
        raise OSError(errno.ENOTCONN, "Transport endpoint is not connected")


async def test_a_relay_whose_far_end_is_gone_ends_quietly(caplog: pytest.LogCaptureFixture) -> None:
    reader = asyncio.StreamReader()
    reader.feed_data(b"the last bytes")
    reader.feed_eof()
    with caplog.at_level(logging.DEBUG, logger="deeting.netproxy"):
        await pipe(reader, _GoneWriter(), Idle(5.0))  # type: ignore[arg-type]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
