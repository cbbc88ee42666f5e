"""The stdio of ``deeting mcp serve`` (deeting_tui/mcp/wire.py): stdout is the protocol's
alone while it serves, whoever else writes to fd 1, and the reader never holds up the loop."""

from __future__ import annotations

import subprocess
import sys

from support import REPO

CHILD = """
import asyncio, os, sys
from deeting_tui.mcp.wire import LineReader, LineWriter, claim_stdio

async def main():
    with claim_stdio() as wire:
        print("a stray print")                       # Python's sys.stdout
        os.write(1, b"a stray write to fd 1\\n")     # what a child or a C library does
        os.system("echo a child process")            # a process that inherits fd 1
        writer = LineWriter(wire.writer)
        async for line in LineReader(wire.reader):
            await writer.write("got " + line)
            await writer.flush()
        assert os.read(0, 10) == b""                 # fd 0 is the null device meanwhile

asyncio.run(main())
"""


def test_only_the_protocol_reaches_stdout_and_stray_output_goes_to_stderr() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHILD],
        input=b'{"a": 1}\nnot utf-8 \xff\n',
        capture_output=True,
        cwd=REPO,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    # Bytes that are not UTF-8 are replaced, as the SDK's own reader does (the SDK then
    # answers what does not parse).
    assert done.stdout == 'got {"a": 1}\ngot not utf-8 \ufffd\n'.encode()
    assert sorted(done.stderr.splitlines()) == [
        b"a child process",
        b"a stray print",
        b"a stray write to fd 1",
    ]
