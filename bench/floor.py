"""The floor: a raw NDJSON echo over inherited os.pipe fds, with no protocol on top.

The child reads a line, ``orjson.loads`` it, ``orjson.dumps`` a reply of the same shape the
worker sends and writes it back. Two parents drive it (see roundtrip.py):

- ``asyncio``: the kernel's machinery shape — ``loop.add_reader`` on a non-blocking fd, one
  future per request in a dict keyed by id, replies split on newlines — so the difference to
  the Supervisor figure is our protocol and supervision, not the transport;
- ``blocking``: ``os.write`` / ``os.read`` with no event loop, for reference.

Run as ``python -m bench.floor --child READ_FD,WRITE_FD`` it is the echo child.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
from typing import Any

import orjson

from .common import closing_fds, python, reap, spawn_child


def request_bytes(request_id: int) -> bytes:
    """The same bytes the kernel sends for ``invoke ping {n}``."""
    message = {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "invoke",
        "params": {"tool": "ping", "args": {"n": request_id}},
    }
    return orjson.dumps(message) + b"\n"


# -- the child ----------------------------------------------------------------------------


def echo_child(read_fd: int, write_fd: int) -> None:
    reader = os.fdopen(read_fd, "rb", buffering=256 * 1024)
    for line in reader:
        message = orjson.loads(line)
        n = message["params"]["args"]["n"]
        result = {"data": {"pong": n}, "text": "pong", "renderer": None}
        reply = orjson.dumps({"jsonrpc": "2.0", "id": message["id"], "result": result})
        os.write(write_fd, reply + b"\n")


# -- the parents ----------------------------------------------------------------------------


class EchoChild:
    """The echo child with our two pipe ends; a context manager that always reaps it."""

    def __init__(self) -> None:
        to_parent_r, to_parent_w = os.pipe()
        to_child_r, to_child_w = os.pipe()
        with closing_fds(to_child_r, to_parent_w):
            self.process = spawn_child(
                [python(), "-m", "bench.floor", "--child", f"{to_child_r},{to_parent_w}"],
                pass_fds=(to_child_r, to_parent_w),
                stdin=subprocess.DEVNULL,
            )
        self.read_fd = to_parent_r
        self.write_fd = to_child_w

    def __enter__(self) -> EchoChild:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for fd in (self.read_fd, self.write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)
        reap(self.process)


class AsyncEchoClient:
    """A minimal asyncio client of the kernel's shape: add_reader, futures by id."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self.read_fd = read_fd
        self.write_fd = write_fd
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self.buffer = b""
        self.next_id = 1
        self.loop = asyncio.get_running_loop()
        os.set_blocking(read_fd, False)
        os.set_blocking(write_fd, False)
        self.loop.add_reader(read_fd, self._on_readable)

    def _on_readable(self) -> None:
        try:
            data = os.read(self.read_fd, 256 * 1024)
        except BlockingIOError:
            return
        if not data:
            for future in self.pending.values():
                future.set_exception(ConnectionError("echo child closed the pipe"))
            self.pending.clear()
            self.loop.remove_reader(self.read_fd)
            return
        *lines, self.buffer = (self.buffer + data).split(b"\n")
        for line in lines:
            message = orjson.loads(line)
            future = self.pending.pop(message["id"], None)
            if future is not None and not future.done():
                future.set_result(message["result"])

    async def call(self) -> Any:
        request_id = self.next_id
        self.next_id += 1
        future = self.loop.create_future()
        self.pending[request_id] = future
        os.write(self.write_fd, request_bytes(request_id))  # small frame: never blocks here
        return await future

    def close(self) -> None:
        self.loop.remove_reader(self.read_fd)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.floor")
    parser.add_argument("--child", required=True, metavar="READ_FD,WRITE_FD")
    options = parser.parse_args(argv)
    read_fd, write_fd = (int(part) for part in options.child.split(","))
    with contextlib.suppress(BrokenPipeError, KeyboardInterrupt):
        echo_child(read_fd, write_fd)
    sys.exit(0)


if __name__ == "__main__":
    main()
