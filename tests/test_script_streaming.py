"""``deeting --script`` on a terminal writes a reply as it streams; piped, the bare reply."""

from __future__ import annotations

import io

from deeting_tui.headless import ScriptPrinter


def _events() -> list[dict[str, object]]:
    return [
        {"type": "user", "session_id": "s", "text": "hi"},
        {"type": "reply_delta", "session_id": "s", "text": "Hel"},
        {"type": "reply_delta", "session_id": "s", "text": "lo \x1b]0;"},
        {"type": "reply_delta", "session_id": "s", "text": "x\x07there"},
        {"type": "reply", "session_id": "s", "text": "Hello \x1b]0;x\x07there"},
        {"type": "reply_delta", "session_id": "s", "text": "cut"},
        {"type": "error", "session_id": "s", "message": "cancelled"},
        {"type": "reply", "session_id": "s", "text": "not streamed"},
    ]


def test_on_a_terminal_the_reply_is_written_as_it_streams() -> None:
    out, err = io.BytesIO(), io.StringIO()
    printer = ScriptPrinter(out, err, json_mode=False, cards=True)
    seen = []
    for event in _events():
        printer(event)
        seen.append(out.getvalue())
    assert seen[1] == b"Hel"  # before the reply event: streamed
    # A sequence cut between pieces is neutralised piece by piece: harmless, if not pretty.
    first, *rest = out.getvalue().split(b"\n")
    assert first.startswith(b"Hello ") and first.endswith(b"there")
    assert b"\x1b" not in first and b"\x07" not in first
    assert rest == [b"cut", b"not streamed", b""]
    assert err.getvalue() == "deeting: error: cancelled\n"


def test_piped_output_is_the_bare_reply_text() -> None:
    out, err = io.BytesIO(), io.StringIO()
    printer = ScriptPrinter(out, err, json_mode=False, cards=False)
    for event in _events():
        printer(event)
    assert out.getvalue() == b"Hello there\nnot streamed\n"
