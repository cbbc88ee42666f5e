"""Sessions the chat did not write itself: resumed after another process, opened from an
older version's store, or not showable at all. None of them may crash the chat or lock the
user out of it; a crash that happens anyway ends the process non-zero, in one line."""

from __future__ import annotations

import argparse
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from support import FAST_POLICY, FIXTURES
from textual.app import App
from textual.widgets import DataTable
from ui_support import settled, until

from deeting_tui import cli
from deeting_tui.kernel.kernel import Kernel
from deeting_tui.llm.offline import OfflineAssistant
from deeting_tui.paths import resolve_paths
from deeting_tui.ui.app import DeetingApp
from deeting_tui.ui.messages import KernelEvent
from deeting_tui.ui.screens.chat import ChatScreen
from deeting_tui.ui.screens.sessions import SessionList
from deeting_tui.ui.widgets.transcript import ToolCallBlock

SIZE = (100, 32)


def _kernel() -> Kernel:
    return Kernel(resolve_paths(), assistant=OfflineAssistant(), policy=FAST_POLICY)


@pytest.fixture
async def used_home(home: Path) -> AsyncIterator[str]:
    """A home where one process (like ``deeting --script``) installed the fixture plugin and
    made a tool call in a session, then ended; yields that session's id."""
    kernel = _kernel()
    await kernel.start(ticker=False)
    try:
        await kernel.loader.install(FIXTURES / "good_plugin")
        session = kernel.open_session()
        turn = await kernel.submit(session.id, "echo from before")
        assert not turn.failed
    finally:
        await kernel.shutdown()
    yield session.id


async def _send(pilot: Any, text: str) -> None:
    await pilot.click("#prompt")
    await pilot.press(*[c if c != " " else "space" for c in text])
    await pilot.press("enter")
    await settled(pilot.app, "turn")
    await pilot.pause()


def _statuses(app: DeetingApp) -> list[str]:
    return [str(b.query_one(".status").render()) for b in app.chat.query(ToolCallBlock)]


def _store_old_session(kernel: Kernel) -> str:
    """A session as the old per-process counter stored it: two processes, each with a ``c1``
    (and a ``c2`` in the second), as ``deeting --script`` and then the chat would leave it.
    Each result names its call in its error, so the blocks show which result they got."""
    session = kernel.sessions.create()
    for text, ids in (("one", ["c1"]), ("two", ["c1", "c2"])):
        kernel.sessions.append(session.id, "user", {"text": f"/echo text={text}"})
        for n, call_id in enumerate(ids):
            call = {"call_id": call_id, "tool": "echo", "plugin": "echo-fixture"}
            kernel.sessions.append(session.id, "tool_call", {**call, "args": {"text": text}})
            result = {**call, "ok": False, "error": f"result of {text}{n}"}
            kernel.sessions.append(session.id, "tool_result", {**result, "duration_ms": 1.0})
    return session.id


async def test_a_session_another_process_called_tools_in_takes_new_calls(
    used_home: str,
) -> None:
    app = DeetingApp(_kernel())
    async with app.run_test(size=SIZE) as pilot:
        assert app.session_id == used_home  # resumed
        await _send(pilot, "echo after")
        await _send(pilot, "/echo text=again")
        statuses = _statuses(app)
        assert len(statuses) == 3 and all(s.startswith("✓ echo") for s in statuses), statuses
    assert app.return_code in (None, 0) and app.crash is None


async def test_an_old_session_with_repeated_ids_opens_from_f3_and_works(used_home: str) -> None:
    kernel = _kernel()
    old = _store_old_session(kernel)
    kernel.open_session()  # the latest, so that the old one is opened from the list
    app = DeetingApp(kernel)
    async with app.run_test(size=SIZE) as pilot:
        assert app.session_id != old
        await pilot.press("f3")
        await until(pilot, lambda: isinstance(app.screen, SessionList), "the session list")
        table = app.screen.query_one("#sessions", DataTable)
        table.move_cursor(row=table.get_row_index(old), animate=False)
        await pilot.press("enter")
        await settled(app, "sessions")
        await until(pilot, lambda: isinstance(app.screen, ChatScreen), "the chat")
        assert app.session_id == old
        # Each result is shown in its own call's block, though the ids repeat.
        assert [s.split(": ", 1)[-1] for s in _statuses(app)] == [
            "result of one0",
            "result of two0",
            "result of two1",
        ]
        assert len(_done(app)) == 3
        await _send(pilot, "echo after")
        assert len(_statuses(app)) == 4 and _statuses(app)[-1].startswith("✓ echo")
    assert app.crash is None


async def test_a_stored_call_cut_short_says_so_instead_of_spinning(used_home: str) -> None:
    """A call stored without its result (Deeting quit or was killed mid-call): resumed, its
    block says it was cut short, with no spinner left running; a call this kernel runs now
    keeps its spinner until its result."""
    kernel = _kernel()
    call = {"call_id": "c-cut-short", "tool": "echo", "plugin": "echo-fixture"}
    kernel.sessions.append(used_home, "tool_call", {**call, "args": {"text": "lost"}})
    app = DeetingApp(kernel)
    async with app.run_test(size=SIZE) as pilot:
        assert app.session_id == used_home
        await pilot.pause()
        blocks = list(app.chat.query(ToolCallBlock))
        assert [b.call_id for b in blocks][-1] == "c-cut-short"
        status = _statuses(app)[-1]
        assert status.startswith("⊘ echo") and "cut short" in status, status
        assert blocks[-1]._spinner is None  # stopped
        # Its result, should it still come (another process ran it), finishes the block.
        result = {**call, "ok": False, "error": "late result", "duration_ms": 5.0}
        app.chat.post_message(KernelEvent({"type": "tool_result", **result}))
        await until(pilot, lambda: "late result" in _statuses(app)[-1], "the late result")
        await _send(pilot, "echo after")
        assert _statuses(app)[-1].startswith("✓ echo")
    assert app.crash is None


def _done(app: DeetingApp) -> list[ToolCallBlock]:
    return [b for b in app.chat.query(ToolCallBlock) if b.done]


async def test_a_session_that_cannot_be_shown_gives_way_to_a_new_one(used_home: str) -> None:
    kernel = _kernel()
    # A damaged event (written by hand, by another tool, a disk error): its payload is not
    # JSON any more, so the session cannot be read, let alone drawn.
    seq = kernel.sessions.append(used_home, "tool_call", {"call_id": "x1"})
    with sqlite3.connect(kernel.sessions.path) as db:
        db.execute(
            "UPDATE events SET payload = '{not json' WHERE session_id = ? AND seq = ?",
            (used_home, seq),
        )
    app = DeetingApp(kernel)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.session_id != used_home, "a new session")
        # The notice comes once the new session is drawn, a step after the id changes.
        failed = f"session {used_home} could not be shown"
        told = lambda: any(failed in n.message for n in app._notifications)  # noqa: E731
        await until(pilot, told, "the notice naming the session")
        assert not app.chat.query(ToolCallBlock)  # nothing of the broken session is left
        await _send(pilot, "echo still works")
        assert _statuses(app)[-1].startswith("✓ echo")
        assert kernel.sessions.exists(used_home)  # kept, not deleted
    assert app.crash is None


async def test_new_starts_a_new_session_instead_of_resuming(used_home: str) -> None:
    app = DeetingApp(_kernel(), new=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.session_id is not None and app.session_id != used_home
        assert not app.chat.query(ToolCallBlock)


def test_a_crash_of_the_chat_exits_1_with_one_line(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Whatever escapes (here: the chat screen failing as it mounts), the process says so in
    one line and exits non-zero; it used to print Textual's traceback and exit 0."""

    def broken(self: ChatScreen) -> None:
        raise RuntimeError("the screen broke")

    def headless(self: DeetingApp) -> None:
        App.run(self, headless=True, size=SIZE)

    monkeypatch.setattr(ChatScreen, "on_mount", broken)
    monkeypatch.setattr(DeetingApp, "run", headless)
    monkeypatch.setattr(cli, "make_kernel", lambda *_: _kernel())
    args = argparse.Namespace(provider=None, model=None, session=None, new=True)
    with pytest.raises(cli.CliError, match=r"RuntimeError: the screen broke") as caught:
        cli._run_chat(args)
    assert "\n" not in str(caught.value)
    assert "Traceback" not in capsys.readouterr().err
