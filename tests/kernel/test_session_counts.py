"""What the session list shows of a session: its event count leaves out the stream frames
(kept or dropped), and its label is read without loading its messages."""

from __future__ import annotations

from pathlib import Path

from deeting_tui.kernel.sessions.encoding import TITLE_MAX
from deeting_tui.kernel.sessions.store import SessionStore


def test_the_event_count_is_the_conversation_not_the_frames(tmp_path: Path) -> None:
    with SessionStore(tmp_path / "s.sqlite3") as store:
        session = store.create()
        store.append(session.id, "user", {"text": "hi"})
        for n in range(500):  # a plugin streaming each second: the caps keep the last few
            store.append(session.id, "stream", {"plugin": "sysinfo", "topic": "cpu", "n": n})
        store.append(session.id, "reply", {"text": "hello"})
        assert len(store.events(session.id, kinds=["stream"])) < 500
        assert store.get(session.id).event_count == 2
        assert store.list_sessions()[0].event_count == 2


def test_the_first_message_is_read_as_a_prefix(tmp_path: Path) -> None:
    with SessionStore(tmp_path / "s.sqlite3") as store:
        session = store.create()
        assert store.first_message(session.id) is None
        store.append(session.id, "reply", {"text": "not a user message"})
        store.append(session.id, "user", {"text": "é" * 3_000_000})
        store.append(session.id, "user", {"text": "second"})
        assert store.first_message(session.id) == "é" * TITLE_MAX
        assert store.first_message(session.id, chars=3) == "ééé"
