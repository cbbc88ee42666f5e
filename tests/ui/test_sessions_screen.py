"""Sessions in the chat: resume at start, /sessions to open or delete, /new, /help, palette."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from rich.text import Text
from support import FAST_POLICY, FIXTURES
from textual import events
from textual.widgets import DataTable, Input
from ui_support import until

from deeting_tui.kernel.kernel import Kernel
from deeting_tui.kernel.sessions.encoding import TITLE_MAX
from deeting_tui.llm.offline import OfflineAssistant
from deeting_tui.paths import resolve_paths
from deeting_tui.ui.app import DeetingApp
from deeting_tui.ui.screens.confirm import ConfirmDialog
from deeting_tui.ui.screens.rename import RenameDialog
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


async def _session_list(pilot: Any) -> SessionList:
    await _type(pilot, "/sessions", wait=False)
    screen = pilot.app.screen
    assert isinstance(screen, SessionList)
    return screen


def _labels(screen: SessionList) -> list[str]:
    """The last column of each row, as shown (title or first message, maybe cut)."""
    table = screen.query_one("#sessions", DataTable)
    return [str(table.get_row_at(i)[-1]) for i in range(table.row_count)]


async def _rename_dialog(pilot: Any) -> RenameDialog:
    await pilot.press("r")
    await pilot.pause()
    dialog = pilot.app.screen
    assert isinstance(dialog, RenameDialog)
    return dialog


def _users(app: DeetingApp) -> list[str]:
    return [str(w.render()) for w in app.chat.query(UserLine)]


async def test_the_last_session_is_resumed_with_its_history(app: DeetingApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert _users(app) == ["> echo from the latest session"]
        # The triggered call's card, and no reply repeating it.
        await until(pilot, lambda: bool(app.chat.query("ToolCallBlock Collapsible")), "the card")
        assert [w.source for w in app.chat.query(AssistantReply)] == []


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
    bare = DeetingApp()  # its kernel is composed after the first frame
    async with bare.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert bare.kernel.paths.data_dir.is_relative_to(home)
        assert bare.session_id is not None and "offline" in bare.sub_title


async def test_rename_shows_the_title_and_empty_brings_back_the_first_message(
    app: DeetingApp,
) -> None:
    async with app.run_test(size=SIZE) as pilot:
        sessions = await _session_list(pilot)
        latest = app.session_id or ""
        assert _labels(sessions) == [
            "echo from the latest session ●",
            "echo from the older session",
        ]
        dialog = await _rename_dialog(pilot)
        field = dialog.query_one(Input)
        assert field.value == "" and field.has_focus  # no title yet
        for char in "Lisbon":
            await pilot.press(char)
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is sessions
        assert app.kernel.sessions.get(latest).title == "Lisbon"
        assert _labels(sessions)[0] == "Lisbon ●"
        table = sessions.query_one("#sessions", DataTable)
        assert table.cursor_row == 0  # still on the renamed row

        dialog = await _rename_dialog(pilot)
        field = dialog.query_one(Input)
        assert field.value == "Lisbon"  # prefilled with the current title
        await pilot.press(*["backspace"] * len("Lisbon"), "enter")
        await pilot.pause()
        assert app.kernel.sessions.get(latest).title is None
        assert _labels(sessions)[0] == "echo from the latest session ●"


async def test_a_cancelled_rename_changes_nothing(app: DeetingApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        sessions = await _session_list(pilot)
        older = app.kernel.sessions.list_sessions()[1].id
        app.kernel.sessions.rename(older, "kept")
        sessions.refresh_table()
        before = _labels(sessions)
        await pilot.press("down")
        dialog = await _rename_dialog(pilot)
        assert dialog.query_one(Input).value == "kept"
        await pilot.press("x", "y", "z", "escape")
        await pilot.pause()
        assert app.screen is sessions
        assert app.kernel.sessions.get(older).title == "kept"
        assert _labels(sessions) == before
        assert sessions.query_one("#sessions", DataTable).cursor_row == 1


async def test_a_pasted_title_is_cleaned_and_capped(app: DeetingApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        sessions = await _session_list(pilot)
        dialog = await _rename_dialog(pilot)
        field = dialog.query_one(Input)
        pasted = "\x1b[31mRed\x07 \u202etrip\t" + "z" * 1000 + "\nsecond line"
        field.post_message(events.Paste(pasted))
        await pilot.pause()
        assert len(field.value) == TITLE_MAX  # the field stops at the cap
        await pilot.press("enter")
        await pilot.pause()
        title = app.kernel.sessions.get(app.session_id or "").title
        assert title is not None and len(title) <= TITLE_MAX
        # The colour sequence goes whole, the bell shows as U+FFFD, bidi override and tab go
        assert title.startswith("Red\ufffd trip zzz")
        assert all(ch.isprintable() for ch in title)
        label = _labels(sessions)[0]
        assert label.endswith("… ●")  # cut to the table's width


async def test_rows_fit_80_columns_on_one_line(app: DeetingApp) -> None:
    store = app.kernel.sessions
    long = store.create()
    store.append(long.id, "user", {"text": "first line\nsecond line " + "word " * 60})
    async with app.run_test(size=(80, 24)) as pilot:
        sessions = await _session_list(pilot)
        table = sessions.query_one("#sessions", DataTable)
        await pilot.pause()
        assert table.row_count == 3
        label = table.get_row_at(0)[-1]
        assert isinstance(label, Text)
        assert str(label).startswith("first line second line word") and str(label).endswith("… ●")
        assert table.max_scroll_x == 0  # nothing hides past the right edge
        assert table.virtual_size.width <= table.size.width
        changed = str(table.get_row_at(0)[0])
        assert len(changed) == len("2026-01-01 12:00")
        await pilot.resize_terminal(120, 24)  # type: ignore[attr-defined]
        await pilot.pause()
        assert len(str(table.get_row_at(0)[-1])) > len(str(label))  # wider: more shown
