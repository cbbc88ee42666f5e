"""Sessions in the chat: resume at start, /sessions to open or delete, /new, /help, palette."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from support import FAST_POLICY, FIXTURES
from textual.widgets import DataTable

from deeting_tui.kernel.kernel import Kernel
from deeting_tui.kernel.paths import resolve_paths
from deeting_tui.llm.offline import OfflineAssistant
from deeting_tui.ui.app import DeetingApp
from deeting_tui.ui.screens.confirm import ConfirmDialog
from deeting_tui.ui.screens.sessions import SessionList
from deeting_tui.ui.widgets.transcript import AssistantReply, UserLine

SIZE = (110, 34)


@pytest.fixture
async def app(home: Path) -> AsyncIterator[DeetingApp]:
    kernel = Kernel(resolve_paths(), assistant=OfflineAssistant(), policy=FAST_POLICY)
    await kernel.start(ticker=False)
    await kernel.loader.install(FIXTURES / "good_plugin")
    older = kernel.open_session()
    await kernel.submit(older.id, "echo from the older session")
    latest = kernel.open_session()
    await kernel.submit(latest.id, "echo from the latest session")
    await kernel.loader.shutdown()
    yield DeetingApp(kernel)


async def _type(pilot: Any, text: str, *, wait: bool = True) -> None:
    await pilot.click("#prompt")
    for char in text:
        await pilot.press(char if char != " " else "space")
    await pilot.press("enter")
    if wait:  # not for /sessions: its worker waits for the user's choice
        await settled(pilot.app)
    await pilot.pause()


async def settled(app: DeetingApp, group: str | None = None) -> None:
    """Wait for the app's workers (or one group's); a hang fails instead of stalling."""
    workers = [w for w in app.workers if group is None or w.group == group]
    await asyncio.wait_for(app.workers.wait_for_complete(workers), 10)


def _users(app: DeetingApp) -> list[str]:
    return [str(w.render()) for w in app.chat.query(UserLine)]


async def test_the_last_session_is_resumed_with_its_history(app: DeetingApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert _users(app) == ["> echo from the latest session"]
        assert [w.source for w in app.chat.query(AssistantReply)] == ["from the latest session"]


async def test_open_another_session_then_delete_it(app: DeetingApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await _type(pilot, "/sessions", wait=False)
        assert isinstance(app.screen, SessionList)
        table = app.screen.query_one("#sessions", DataTable)
        assert table.row_count == 2
        await pilot.press("down", "enter")  # the older one
        await settled(app)
        await pilot.pause()
        assert _users(app) == ["> echo from the older session"]
        older = app.session_id
        await _type(pilot, "/sessions", wait=False)
        await pilot.press("down", "x")  # delete the older (current) one
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("y")
        await pilot.pause()
        assert app.screen.query_one("#sessions", DataTable).row_count == 1
        await pilot.press("escape")
        await settled(app)
        await pilot.pause()
        assert not app.kernel.sessions.exists(older or "")
        assert app.session_id != older and _users(app) == []  # a fresh one took its place


async def test_new_help_and_the_command_palette(app: DeetingApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        first = app.session_id
        await _type(pilot, "/new")
        assert app.session_id != first and _users(app) == []
        await _type(pilot, "/help")
        assert "/sessions" in app.chat.query(AssistantReply).last().source
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert {"New session", "Sessions", "Plugins"} <= set(titles)


async def test_the_app_composes_its_own_kernel_for_textual_run(home: Path) -> None:
    """`textual run --dev deeting_tui.ui.app:DeetingApp` constructs the class bare."""
    bare = DeetingApp()
    assert bare.kernel.paths.data_dir.is_relative_to(home)
    async with bare.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert bare.session_id is not None and "offline" in bare.sub_title
