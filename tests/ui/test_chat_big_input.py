"""The chat with big input: a burst of keys, a message over the cap, a huge stored message and
a session of thousands of events. Each asserts the work done (insertions, widgets drawn), not
the time: timings are bench/chat_input.py's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from support import FAST_POLICY
from textual import events
from textual.widgets import TextArea
from ui_support import until

from deeting_tui.kernel.kernel import Kernel
from deeting_tui.kernel.limits import MAX_MESSAGE_BYTES
from deeting_tui.llm.offline import OfflineAssistant
from deeting_tui.paths import resolve_paths
from deeting_tui.ui.app import DeetingApp
from deeting_tui.ui.screens.chat import SHOWN_EVENTS
from deeting_tui.ui.screens.full_text import FullText
from deeting_tui.ui.widgets.prompt import PromptInput
from deeting_tui.ui.widgets.transcript import (
    DISPLAY_CHARS,
    EarlierEvents,
    MoreText,
    UserLine,
)

SIZE = (80, 24)


def _kernel() -> Kernel:
    return Kernel(resolve_paths(), assistant=OfflineAssistant(), policy=FAST_POLICY)


@pytest.fixture
async def kernel_home(home: Path) -> AsyncIterator[Kernel]:
    yield _kernel()


async def _started(pilot: Any, app: DeetingApp) -> None:
    await until(pilot, lambda: hasattr(app, "chat") and app.session_id is not None, "the chat")


def _burst(app: DeetingApp, prompt: PromptInput, text: str) -> None:
    """Keys as a terminal without bracketed paste sends a paste: all queued at once."""
    for char in text:
        app.post_message(events.Key(char, char))


async def test_a_burst_of_keys_is_inserted_in_a_few_steps(
    kernel_home: Kernel, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = DeetingApp(kernel_home)
    async with app.run_test(size=SIZE) as pilot:
        await _started(pilot, app)
        prompt = app.chat.query_one("#prompt", PromptInput)
        inserted: list[str] = []
        insert = prompt.insert_text_at_cursor

        def counted(text: str) -> None:
            inserted.append(text)
            insert(text)

        monkeypatch.setattr(prompt, "insert_text_at_cursor", counted)
        _burst(app, prompt, "x" * 8000)
        await until(pilot, lambda: len(prompt.value) == 8000, "the burst in the input")
        await pilot.pause()
        assert prompt.value == "x" * 8000
        # Textual's Input inserts key by key: 8,000 insertions, each measuring the whole line.
        assert "".join(inserted) == "x" * 8000 and len(inserted) <= 10


async def test_keys_between_typed_text_act_in_order(kernel_home: Kernel) -> None:
    app = DeetingApp(kernel_home)
    async with app.run_test(size=SIZE) as pilot:
        await _started(pilot, app)
        prompt = app.chat.query_one("#prompt", PromptInput)
        _burst(app, prompt, "ab")
        await pilot.press("left")
        _burst(app, prompt, "c")
        await pilot.press("end")
        _burst(app, prompt, "d")
        await until(pilot, lambda: len(prompt.value) == 4, "four characters")
        assert prompt.value == "acbd"
        await pilot.press("enter")
        await until(pilot, lambda: bool(app.chat.query(UserLine)), "the message sent")
        assert str(app.chat.query_one(UserLine).render()) == "> acbd"


async def test_a_message_over_the_cap_is_refused_and_stays_in_the_input(
    kernel_home: Kernel,
) -> None:
    app = DeetingApp(kernel_home)
    async with app.run_test(size=SIZE) as pilot:
        await _started(pilot, app)
        prompt = app.chat.query_one("#prompt", PromptInput)
        huge = "y" * (MAX_MESSAGE_BYTES + 1)
        prompt.value = huge
        await pilot.press("enter")
        await pilot.pause()
        assert prompt.value == huge  # nothing typed is lost
        assert not app.chat.query(UserLine)
        assert any("over the 1 MiB limit" in n.message for n in app._notifications)
        assert app.session_id is not None
        assert app.kernel.sessions.events(app.session_id) == []


async def test_a_huge_stored_message_shows_a_prefix_and_opens_whole(kernel_home: Kernel) -> None:
    await kernel_home.start(ticker=False)
    session = kernel_home.open_session(None)
    huge = "z" * (MAX_MESSAGE_BYTES - 10)
    await kernel_home.submit(session.id, huge)
    await kernel_home.shutdown()
    app = DeetingApp(_kernel(), session_id=session.id)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: bool(app.chat.query(MoreText)), "the cut message")
        line = app.chat.query_one(UserLine)
        assert len(str(line.render())) == len("> ") + DISPLAY_CHARS
        more = app.chat.query_one(MoreText)
        assert f"{len(huge) - DISPLAY_CHARS:,} more characters" in str(more.render())
        more.focus()
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, FullText), "the full text")
        assert app.screen.query_one(TextArea).text == huge
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, FullText), "back to the chat")


async def test_a_long_session_draws_its_last_events_and_earlier_on_demand(
    kernel_home: Kernel,
) -> None:
    await kernel_home.start(ticker=False)
    session = kernel_home.open_session(None)
    stored: list[Any] = []
    for n in range(1500):
        stored.append((session.id, "user", {"text": f"m{n}"}))
    for session_id, kind, payload in stored:
        kernel_home.sessions.append(session_id, kind, payload)
    await kernel_home.shutdown()
    app = DeetingApp(_kernel(), session_id=session.id)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: bool(app.chat.query(UserLine)), "the session")
        lines = app.chat.query(UserLine)
        assert len(lines) == SHOWN_EVENTS
        assert str(lines.last().render()) == "> m1499"
        marker = app.chat.query_one(EarlierEvents)
        assert f"{1500 - SHOWN_EVENTS:,} earlier events" in str(marker.render())
        marker.focus()
        await pilot.press("enter")
        await until(pilot, lambda: len(app.chat.query(UserLine)) == 2 * SHOWN_EVENTS, "more")
        lines = app.chat.query(UserLine)
        assert str(lines.first().render()) == f"> m{1500 - 2 * SHOWN_EVENTS}"
        assert str(lines.last().render()) == "> m1499"


async def test_a_pasted_text_keeps_all_its_lines(kernel_home: Kernel) -> None:
    """Textual's Input kept the first line of a bracketed paste and dropped the rest: the
    message sent is the whole paste, its line breaks shown as ↵ in the line until then, and
    ↑ brings it back whole."""
    app = DeetingApp(kernel_home)
    async with app.run_test(size=SIZE) as pilot:
        await _started(pilot, app)
        prompt = app.chat.query_one("#prompt", PromptInput)
        prompt.focus()
        _burst(app, prompt, "see: ")
        app.post_message(events.Paste("first line\r\nsecond line\nthird"))
        await until(pilot, lambda: "third" in prompt.value, "the paste in the input")
        assert prompt.value == "see: first line↵second line↵third"
        await pilot.press("enter")
        session = app.session_id or ""
        await until(
            pilot,
            lambda: bool(kernel_home.sessions.events(session, kinds=["user"])),
            "the message stored",
        )
        stored = kernel_home.sessions.events(session, kinds=["user"])[0].payload["text"]
        assert stored == "see: first line\nsecond line\nthird"
        await pilot.press("up")
        assert prompt.value == "see: first line↵second line↵third"


async def test_keys_typed_after_enter_start_the_next_line(kernel_home: Kernel) -> None:
    """Typing ahead: keys that come after Enter, before the chat has handled the line sent,
    belong to the next line. They used to be appended to the line sent (``/newsleep 60``)
    and then wiped with it when the chat cleared the line: lost input."""
    app = DeetingApp(kernel_home)
    async with app.run_test(size=SIZE) as pilot:
        await _started(pilot, app)
        prompt = app.chat.query_one("#prompt", PromptInput)
        _burst(app, prompt, "hello")
        app.post_message(events.Key("enter", "\r"))
        _burst(app, prompt, "next")  # all queued before the chat sees the line sent
        await until(pilot, lambda: bool(app.chat.query(UserLine)), "the message sent")
        await until(pilot, lambda: prompt.value == "next", f"'next' kept ({prompt.value!r})")
        assert [str(line.render()) for line in app.chat.query(UserLine)] == ["> hello"]


async def test_a_refused_line_comes_back_before_what_was_typed_after_it(
    kernel_home: Kernel,
) -> None:
    """A line refused (over the cap) goes back into the input, ahead of any keys typed after
    Enter, so nothing typed is lost either way."""
    app = DeetingApp(kernel_home)
    async with app.run_test(size=SIZE) as pilot:
        await _started(pilot, app)
        prompt = app.chat.query_one("#prompt", PromptInput)
        huge = "y" * (MAX_MESSAGE_BYTES + 1)
        prompt.value = huge
        app.post_message(events.Key("enter", "\r"))
        _burst(app, prompt, "z")
        await until(pilot, lambda: prompt.value.endswith("z"), "the key typed after Enter")
        await pilot.pause()
        assert prompt.value == huge + "z"
        assert not app.chat.query(UserLine)
