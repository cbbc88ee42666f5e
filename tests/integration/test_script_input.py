"""``deeting --script -`` reading a pipe: waiting for the next line never stalls the kernel."""

from __future__ import annotations

import asyncio
import io
import os
import threading
from pathlib import Path

from support import FIXTURES

from deeting_tui.headless import run_script
from deeting_tui.kernel.kernel import Kernel


async def test_the_loop_runs_while_the_script_waits_for_a_line(kernel: Kernel) -> None:
    await kernel.loader.install(FIXTURES / "good_plugin")
    read_end, write_end = os.pipe()
    lines = os.fdopen(read_end, "r")
    out = io.BytesIO()
    # If reading blocked the loop, nothing below could run until a line came: a watchdog
    # thread sends one after a while, so such a bug fails this test instead of hanging it.
    watchdog = threading.Timer(10, os.write, (write_end, b"/echo text=watchdog\n"))
    watchdog.start()
    script = asyncio.create_task(
        run_script(kernel, lines, session_id=None, out=out, err=io.StringIO(), json_mode=True)
    )
    try:
        for _ in range(20):  # let the script start and reach its wait for input
            await asyncio.sleep(0)
        assert not script.done()
        ticked = asyncio.Event()
        asyncio.get_running_loop().call_soon(ticked.set)
        await ticked.wait()
        assert watchdog.is_alive(), "the loop was blocked until the watchdog's line came"
        os.write(write_end, b"/echo text=one\n")
        deadline = asyncio.get_running_loop().time() + 10
        while b'"tool_result"' not in out.getvalue():
            assert asyncio.get_running_loop().time() < deadline, out.getvalue()
            await asyncio.sleep(0.01)  # polling our own output buffer
    finally:
        watchdog.cancel()
        os.close(write_end)  # end of input: the script ends
    assert await asyncio.wait_for(script, 10) == 0
    assert b"watchdog" not in out.getvalue()
    lines.close()


async def test_a_regular_file_is_read_in_place(kernel: Kernel, tmp_path: Path) -> None:
    await kernel.loader.install(FIXTURES / "good_plugin")
    script = tmp_path / "lines.txt"
    script.write_text("# a comment\n\n/echo text=two\n")
    out = io.BytesIO()
    with script.open() as lines:
        code = await run_script(
            kernel, lines, session_id=None, out=out, err=io.StringIO(), json_mode=True
        )
    assert code == 0 and b"two" in out.getvalue()
