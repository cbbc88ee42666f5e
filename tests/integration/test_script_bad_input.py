"""``deeting --script``: a line that is not UTF-8, or over the message cap, gets one error line
naming it, and the run goes on; what the user wrote stays in the session's error event."""

from __future__ import annotations

import io

from deeting_tui.headless import run_script
from deeting_tui.kernel.kernel import Kernel
from deeting_tui.kernel.limits import MAX_MESSAGE_BYTES


async def _run(kernel: Kernel, data: bytes, json_mode: bool = False) -> tuple[int, bytes, str]:
    out, err = io.BytesIO(), io.StringIO()
    code = await run_script(
        kernel, io.BytesIO(data), session_id=None, out=out, err=err, json_mode=json_mode
    )
    return code, out.getvalue(), err.getvalue()


async def test_a_line_that_is_not_utf8_is_reported_and_the_run_goes_on(kernel: Kernel) -> None:
    data = b"hello\nbad \xff byte\n# a comment in latin-1: caf\xe9\nafter\n"
    code, out, err = await _run(kernel, data)
    assert code == 1
    assert err.count("\n") == 1 and err.startswith(
        "deeting: error: line 2: not UTF-8 (byte 0xff at byte 5)"
    )
    assert out.count(b"offline assistant") == 2  # hello and after were both answered
    session = kernel.sessions.latest()
    assert session is not None
    events = kernel.sessions.events(session.id)
    assert [e.kind for e in events] == ["user", "reply", "error", "user", "reply"]
    assert events[2].payload["line"] == 2
    assert events[2].payload["input"] == "bad \\xff byte"  # kept, spelled so it can be stored
    assert [e.payload["text"] for e in events if e.kind == "user"] == ["hello", "after"]


async def test_a_line_over_the_cap_is_reported_not_sent(kernel: Kernel) -> None:
    data = b"a" * (3 * MAX_MESSAGE_BYTES) + b"\nafter\n"
    code, out, err = await _run(kernel, data, json_mode=True)
    assert code == 1
    assert err.startswith(
        f"deeting: error: line 1: {3 * MAX_MESSAGE_BYTES:,} bytes, over the 1 MiB"
    )
    assert len(out) < 1000 and b'"type":"error"' in out and b'"type":"reply"' in out
    session = kernel.sessions.latest()
    assert session is not None
    kinds = [e.kind for e in kernel.sessions.events(session.id)]
    assert kinds == ["error", "user", "reply"]


async def test_a_line_at_the_cap_is_sent(kernel: Kernel) -> None:
    data = b"b" * MAX_MESSAGE_BYTES + b"\r\n"
    code, _, err = await _run(kernel, data)
    assert code == 0, err
