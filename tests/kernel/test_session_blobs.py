"""A long message is stored once, however many events hold it (user line, tool arguments,
result data and text, reply), and read back whole; its blob goes with the last event."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from support import FIXTURES

from deeting_tui.kernel.kernel import Kernel
from deeting_tui.kernel.sessions.blobs import BLOB_MIN_CHARS
from deeting_tui.kernel.sessions.store import SessionStore


def _stored_bytes(db: Path) -> tuple[int, int]:
    conn = sqlite3.connect(db)
    try:
        events = conn.execute("SELECT COALESCE(sum(length(payload)), 0) FROM events").fetchone()
        blobs = conn.execute("SELECT COALESCE(sum(length(text)), 0) FROM blobs").fetchone()
        return int(events[0]), int(blobs[0])
    finally:
        conn.close()


async def test_a_long_message_sent_to_a_tool_is_stored_once(kernel: Kernel) -> None:
    await kernel.loader.install(FIXTURES / "good_plugin")
    session = kernel.open_session(None)
    text = "x" * 200_000
    turn = await kernel.submit(session.id, f"/echo {text}")
    assert not turn.failed, turn.errors
    events = kernel.sessions.events(session.id)
    kinds = [e.kind for e in events]
    assert kinds == ["user", "tool_call", "tool_result", "reply"]
    assert events[0].payload["text"] == f"/echo {text}"
    assert events[1].payload["args"] == {"text": text}
    assert text in (events[2].payload["text"], str(events[2].payload["data"]))
    in_events, in_blobs = _stored_bytes(kernel.sessions.path)
    assert in_blobs == len(text)  # once (five copies before)
    assert in_events < 10_000


def test_short_strings_stay_inline_and_a_deleted_session_takes_its_blobs(tmp_path: Path) -> None:
    db = tmp_path / "s.sqlite3"
    with SessionStore(db) as store:
        one, two = store.create(), store.create()
        long = "é" * BLOB_MIN_CHARS
        store.append(one.id, "user", {"text": long, "n": [1, {"deep": long}]})
        store.append(two.id, "user", {"text": long})
        store.append(two.id, "reply", {"text": "short"})
        (event,) = store.events(one.id)
        assert event.payload == {"text": long, "n": [1, {"deep": long}]}
        assert _stored_bytes(db)[1] == len(long)
        store.delete(one.id)
        assert _stored_bytes(db)[1] == len(long)  # still referred to by the other session
        store.delete(two.id)
        assert _stored_bytes(db) == (0, 0)
