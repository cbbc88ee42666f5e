"""The chat takes typed kernel events (kernel/events.py): its own text is not one, and a
stored event it cannot read is said in its place."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from support import FAST_POLICY

from deeting_tui.kernel.events import Event
from deeting_tui.kernel.kernel import Kernel
from deeting_tui.llm.offline import OfflineAssistant
from deeting_tui.paths import resolve_paths
from deeting_tui.ui.app import DeetingApp
from deeting_tui.ui.help_text import HELP
from deeting_tui.ui.screens.chat import ChatScreen
from deeting_tui.ui.widgets.transcript import AssistantReply, ErrorLine, UserLine

SIZE = (100, 32)


@pytest.fixture
async def kernel(home: Path) -> AsyncIterator[Kernel]:
    k = Kernel(resolve_paths(), assistant=OfflineAssistant(), policy=FAST_POLICY)
    yield k


async def test_help_is_the_chats_own_text_not_a_kernel_event(
    kernel: Kernel, monkeypatch: pytest.MonkeyPatch
) -> None:
    drawn: list[object] = []
    show = ChatScreen._show

    async def spy(self: ChatScreen, event: Event) -> None:
        drawn.append(event)
        await show(self, event)

    monkeypatch.setattr(ChatScreen, "_show", spy)
    app = DeetingApp(kernel, new=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.chat.show_help()
        await pilot.pause()
        replies = [w.source for w in app.screen.query(AssistantReply)]
        assert replies == [HELP]
        assert drawn == []  # no kernel event was forged for it
        assert app.session_id is not None
        assert kernel.sessions.events(app.session_id) == []  # nor stored


async def test_a_stored_event_that_cannot_be_read_is_said_in_its_place(kernel: Kernel) -> None:
    session = kernel.sessions.create()
    kernel.sessions.append(session.id, "user", {"text": "before"})
    kernel.sessions.append(session.id, "tool_call", {"call_id": "c1", "tool": "t", "args": [1]})
    kernel.sessions.append(session.id, "reply", {"text": "after"})
    app = DeetingApp(kernel, session_id=session.id)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.session_id == session.id  # shown, not replaced by a new session
        assert [str(w.render()) for w in app.screen.query(UserLine)] != []
        errors = [str(w.render()) for w in app.screen.query(ErrorLine)]
        assert any("cannot be shown" in e and "'args'" in e for e in errors), errors
        assert [w.source for w in app.screen.query(AssistantReply)] == ["after"]
