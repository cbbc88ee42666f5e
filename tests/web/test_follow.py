"""follow_session: events another process appends reach a follower at once, by inotify."""

from __future__ import annotations

import asyncio
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from deeting_tui.kernel.events import ErrorEvent, Event, ToolResult, UserMessage
from deeting_tui.kernel.sessions.database import SessionNotFound
from deeting_tui.kernel.sessions.store import SessionStore
from deeting_tui.web import follow as follow_module
from deeting_tui.web.cards import UNREADABLE_KEY, Board
from deeting_tui.web.follow import follow_session

# Another process that appends to (or deletes) a session, a line of stdin at a time.
WRITER = textwrap.dedent(
    """
    import sys
    import orjson
    from deeting_tui.kernel.sessions.store import SessionStore

    store = SessionStore(sys.argv[1])
    session = sys.argv[2]
    for line in sys.stdin:
        order = orjson.loads(line)
        if order["do"] == "delete":
            store.delete(session)
        else:
            store.append(session, order["kind"], order["payload"])
        print("done", flush=True)
    """
)


class Writer:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    async def send(self, **order: Any) -> None:
        import orjson

        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(orjson.dumps(order) + b"\n")
        await self.process.stdin.drain()
        assert await asyncio.wait_for(self.process.stdout.readline(), 30) == b"done\n"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SessionStore]:
    with SessionStore(tmp_path / "sessions.sqlite3") as opened:
        yield opened


@pytest.fixture
async def writer(store: SessionStore, tmp_path: Path) -> AsyncIterator[Writer]:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    session = store.create("followed")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        str(store.path),
        session.id,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        yield Writer(process)
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


def _session(store: SessionStore) -> str:
    found = store.latest()
    assert found is not None
    return found.id


@pytest.fixture(autouse=True)
def only_inotify_wakes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The safety-net poll is made too slow to matter: a test passes only if the follower is
    woken by the other process's commit itself."""
    monkeypatch.setattr(follow_module, "POLL_WITH_INOTIFY_S", 3600.0)


async def _next(events: AsyncIterator[tuple[int, Event]]) -> tuple[int, Event]:
    return await asyncio.wait_for(events.__anext__(), 10)


async def test_events_another_process_appends_are_followed(
    store: SessionStore, writer: Writer
) -> None:
    session = _session(store)
    store.append(session, "user", {"text": "before"})
    events = follow_session(store, session).__aiter__()
    try:
        seq, event = await _next(events)
        assert seq == 1 and event == UserMessage(session_id=session, text="before")
        waiting = asyncio.ensure_future(_next(events))
        result = {"call_id": "c1", "tool": "disk", "plugin": "sys", "ok": True, "data": None}
        result |= {"text": "hi", "renderer": None, "error": None, "duration_ms": 3}
        await writer.send(do="append", kind="tool_result", payload=result)
        seq, event = await waiting
        assert seq == 2
        assert isinstance(event, ToolResult) and event.call_id == "c1" and event.text == "hi"
    finally:
        await events.aclose()  # type: ignore[attr-defined]


async def test_following_starts_after_the_given_seq(store: SessionStore) -> None:
    session = store.create().id
    for n in range(3):
        store.append(session, "user", {"text": f"m{n}"})
    events = follow_session(store, session, after_seq=2).__aiter__()
    try:
        seq, event = await _next(events)
        assert seq == 3 and isinstance(event, UserMessage) and event.text == "m2"
    finally:
        await events.aclose()  # type: ignore[attr-defined]


async def test_a_session_deleted_meanwhile_ends_following_with_a_clear_error(
    store: SessionStore, writer: Writer
) -> None:
    session = _session(store)
    events = follow_session(store, session).__aiter__()
    waiting = asyncio.ensure_future(_next(events))
    await asyncio.sleep(0)  # let the follower start waiting (order only; not a timing guess)
    await writer.send(do="delete")
    with pytest.raises(SessionNotFound, match=f"no session '{session}'"):
        await waiting


async def test_a_missing_session_is_a_clear_error(store: SessionStore) -> None:
    with pytest.raises(SessionNotFound, match="no session 'nosuch'"):
        await _next(follow_session(store, "nosuch").__aiter__())


async def test_an_unreadable_stored_event_is_an_error_card_and_following_goes_on(
    store: SessionStore,
) -> None:
    session = store.create().id
    store.append(session, "tool_result", {"call_id": 5, "ok": "yes"})  # wrong JSON types
    store.append(session, "user", {"text": "after"})
    events = follow_session(store, session).__aiter__()
    try:
        seq, event = await _next(events)
        assert seq == 1 and isinstance(event, ErrorEvent)
        assert "event 1 of this session could not be read" in event.message
        assert event.extra[UNREADABLE_KEY] == 1
        card = Board().apply(event)[0]["card"]
        assert card["renderer"] == "error" and card["id"] == "unreadable:1"
        seq, event = await _next(events)
        assert seq == 2 and isinstance(event, UserMessage)
    finally:
        await events.aclose()  # type: ignore[attr-defined]
