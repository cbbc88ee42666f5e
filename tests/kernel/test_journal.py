from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from deeting_tui.kernel.sessions.journal import SessionJournal
from deeting_tui.kernel.sessions.store import SessionStore


@pytest.fixture
def store(tmp_path: Path):
    with SessionStore(tmp_path / "sessions.sqlite3") as s:
        yield s


def _kinds(path: Path, session_id: str) -> list[str]:
    """What another process would see: a second connection to the same file."""
    with SessionStore(path) as reader:
        return [event.kind for event in reader.events(session_id)]


class Failures(list[tuple[str, str]]):
    def __call__(self, session_id: str, message: str) -> None:
        self.append((session_id, message))


async def test_a_burst_is_committed_at_the_next_pause(store: SessionStore) -> None:
    session = store.create()
    journal = SessionJournal(store, Failures())
    journal.record(session.id, "user", {"text": "hi"})
    journal.record(session.id, "tool_call", {"tool": "echo"})
    assert _kinds(store.path, session.id) == []  # nothing has paused yet
    await asyncio.sleep(0)
    assert _kinds(store.path, session.id) == ["user", "tool_call"]
    assert [e.seq for e in store.events(session.id)] == [1, 2]


async def test_flush_commits_at_once_and_keeps_order_across_bursts(store: SessionStore) -> None:
    session = store.create()
    journal = SessionJournal(store, Failures())
    journal.record(session.id, "user", {"n": 1})
    await asyncio.sleep(0)
    journal.record(session.id, "reply", {"n": 2})
    journal.flush()
    assert [(e.kind, e.payload["n"]) for e in store.events(session.id)] == [
        ("user", 1),
        ("reply", 2),
    ]
    journal.flush()  # nothing pending: a no-op
    assert len(store.events(session.id)) == 2


def test_without_a_loop_events_are_committed_at_once(store: SessionStore) -> None:
    session = store.create()
    SessionJournal(store, Failures()).record(session.id, "error", {"message": "x"})
    assert _kinds(store.path, session.id) == ["error"]


async def test_bad_events_fail_at_the_caller_and_queue_nothing(store: SessionStore) -> None:
    session = store.create()
    journal = SessionJournal(store, Failures())
    with pytest.raises(TypeError):
        journal.record(session.id, "user", {"obj": object()})
    with pytest.raises(ValueError, match="unknown event kind 'chat'"):
        journal.record(session.id, "chat", {})
    journal.flush()
    assert store.events(session.id) == []


async def test_a_deleted_session_loses_only_its_own_events(store: SessionStore) -> None:
    kept, gone = store.create(), store.create()
    failures = Failures()
    journal = SessionJournal(store, failures)
    journal.record(kept.id, "user", {"n": 1})
    journal.record(gone.id, "user", {"n": 2})
    journal.record(kept.id, "reply", {"n": 3})
    store.delete(gone.id)  # e.g. by another Deeting, between the event and the commit
    journal.flush()
    assert [e.payload["n"] for e in store.events(kept.id)] == [1, 3]
    assert len(failures) == 1
    assert failures[0][0] == gone.id and f"no session '{gone.id}'" in failures[0][1]


async def test_a_store_failure_is_reported_not_raised(store: SessionStore) -> None:
    session = store.create()
    failures = Failures()
    journal = SessionJournal(store, failures)
    journal.record(session.id, "user", {"text": "hi"})
    store.close()
    await asyncio.sleep(0)  # the scheduled flush runs in a loop callback: it must not raise
    assert failures == [
        (
            session.id,
            f"1 event(s) could not be saved to the session history: "
            f"the session store {store.path} is closed",
        )
    ]
