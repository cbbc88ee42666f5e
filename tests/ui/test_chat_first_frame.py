"""First frame first (issue 17): the chat is on the screen, its input taking keys, before the
kernel has started a plugin or the model provider's SDK is imported. What is typed meanwhile
stays in the line; a message sent meanwhile is shown as waiting and goes once the kernel is
ready (Esc gives it back); the resumed session appears then; a kernel that cannot be composed
still ends the chat with its error.

These tests hold the kernel's start until they release it, so they use Textual's own
``App.run_test``, which hands the pilot over at the first frame (tests/ui/conftest.py's waits
for the kernel).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support import OFFICIAL
from textual.app import App
from textual.pilot import Pilot
from textual.worker import WorkerFailed
from ui_support import app_with_plugins, screen_text, until

from deeting_tui.kernel.events import UserMessage
from deeting_tui.kernel.kernel import Kernel
from deeting_tui.llm.offline import OfflineAssistant
from deeting_tui.paths import ConfigError, resolve_paths
from deeting_tui.ui.app import STARTING, DeetingApp
from deeting_tui.ui.screens.chat import ChatScreen
from deeting_tui.ui.widgets.prompt import PromptInput
from deeting_tui.ui.widgets.transcript import EarlierEvents, ToolCallBlock, UserLine

SIZE = (80, 24)
pytestmark = pytest.mark.usefixtures("home")


class HeldStart:
    """The kernel's start, held until ``release()``: the plugins are 'starting' meanwhile."""

    def __init__(self, kernel: Kernel) -> None:
        self.entered = False
        self._release = asyncio.Event()
        start = kernel.start

        async def held(*args: Any, **kwargs: Any) -> list[str]:
            self.entered = True
            await self._release.wait()
            return await start(*args, **kwargs)

        kernel.start = held  # type: ignore[method-assign]

    def release(self) -> None:
        self._release.set()


def _prompt(app: DeetingApp) -> PromptInput:
    return app.screen.query_one("#prompt", PromptInput)


def _user_lines(app: DeetingApp) -> list[tuple[str, bool]]:
    """Each user line in the transcript, and whether it is drawn as waiting."""
    return [(str(line.render()), line.has_class("waiting")) for line in app.screen.query(UserLine)]


async def _type(pilot: Pilot[Any], text: str) -> None:
    await pilot.press(*[c if c != " " else "space" for c in text])


async def _at_first_frame(pilot: Pilot[Any], app: DeetingApp, held: HeldStart) -> None:
    """The kernel's start has begun (after the first refresh) and is held: the chat is up."""
    await until(pilot, lambda: held.entered, "the kernel's start")
    assert isinstance(app.screen, ChatScreen)
    assert not app.started.is_set() and app.sub_title == STARTING
    shown = screen_text(app)
    assert "Deeting" in shown and STARTING in shown
    assert _prompt(app).has_focus


async def test_the_chat_takes_keys_before_the_kernel_starts_and_sends_once_it_has() -> None:
    app = await app_with_plugins(OFFICIAL / "calc")
    held = HeldStart(app.kernel)
    async with App.run_test(app, size=SIZE) as pilot:
        await _at_first_frame(pilot, app, held)
        await _type(pilot, "calc 2+3")
        await pilot.press("enter")
        await until(pilot, lambda: bool(_user_lines(app)), "the waiting message")
        assert _user_lines(app) == [("> calc 2+3", True)]
        await _type(pilot, "calc 4*5")  # typed, not sent: stays in the line
        await pilot.pause()
        assert _prompt(app).value == "calc 4*5"
        assert app.session_id is None  # nothing reached the kernel yet

        held.release()
        await until(pilot, lambda: bool(app.screen.query(ToolCallBlock)), "the sent message")
        await until(pilot, lambda: app.screen.query_one(ToolCallBlock).done, "its result")
        assert _user_lines(app) == [("> calc 2+3", False)]
        assert _prompt(app).value == "calc 4*5"
        assert app.sub_title != STARTING
        assert app.session_id is not None
        stored = app.kernel.conversation(app.session_id)
        assert [e.text for e in stored if isinstance(e, UserMessage)] == ["calc 2+3"]


async def test_messages_sent_before_the_kernel_is_ready_go_in_order() -> None:
    app = await app_with_plugins(OFFICIAL / "calc")
    held = HeldStart(app.kernel)
    async with App.run_test(app, size=SIZE) as pilot:
        await _at_first_frame(pilot, app, held)
        for text in ("calc 1+1", "calc 2+2", "calc 3+3"):
            await _type(pilot, text)
            await pilot.press("enter")
        await until(pilot, lambda: len(_user_lines(app)) == 3, "three waiting messages")
        held.release()

        def answered() -> bool:
            blocks = app.screen.query(ToolCallBlock)
            return len(blocks) == 3 and all(block.done for block in blocks)

        await until(pilot, answered, "three answers")
        assert _user_lines(app) == [(f"> calc {n}+{n}", False) for n in (1, 2, 3)]
        assert app.session_id is not None
        stored = app.kernel.conversation(app.session_id)
        sent = [e.text for e in stored if isinstance(e, UserMessage)]
        assert sent == ["calc 1+1", "calc 2+2", "calc 3+3"]


async def test_esc_gives_a_waiting_message_back_to_the_input() -> None:
    app = await app_with_plugins(OFFICIAL / "calc")
    held = HeldStart(app.kernel)
    async with App.run_test(app, size=SIZE) as pilot:
        await _at_first_frame(pilot, app, held)
        await _type(pilot, "calc 6*7")
        await pilot.press("enter")
        await until(pilot, lambda: bool(_user_lines(app)), "the waiting message")
        await pilot.press("escape")
        await until(pilot, lambda: _prompt(app).value == "calc 6*7", "the line given back")
        assert _user_lines(app) == []
        held.release()
        await until(pilot, app.started.is_set, "the kernel")
        await pilot.pause()
        assert _user_lines(app) == []  # given back, not sent
        assert app.session_id is not None
        assert app.kernel.conversation(app.session_id) == []


async def test_a_long_resumed_session_is_shown_once_the_kernel_is_ready(home: Path) -> None:
    """A used home: the latest session (many events) is resumed after the first frame, and a
    message sent before then goes into it, after its history."""
    kernel = Kernel(resolve_paths(), assistant=OfflineAssistant())
    await kernel.start(ticker=False)
    session = kernel.open_session().id
    for number in range(40):
        await kernel.submit(session, f"message {number}")
    await kernel.shutdown()

    app = DeetingApp(Kernel(resolve_paths(), assistant=OfflineAssistant()))
    held = HeldStart(app.kernel)
    async with App.run_test(app, size=SIZE) as pilot:
        await _at_first_frame(pilot, app, held)
        await _type(pilot, "one more")
        await pilot.press("enter")
        await until(pilot, lambda: bool(_user_lines(app)), "the waiting message")
        held.release()
        await until(pilot, lambda: _user_lines(app)[-1:] == [("> one more", False)], "the send")
        assert app.session_id == session
        assert app.screen.query(EarlierEvents)  # the rest of the history, on demand
        assert ("> message 39", False) in _user_lines(app)
        stored = app.kernel.conversation(session)
        assert [e.text for e in stored if isinstance(e, UserMessage)][-2:] == [
            "message 39",
            "one more",
        ]


async def test_a_kernel_that_cannot_be_composed_ends_the_chat_with_its_error(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def damaged(*_args: Any) -> Kernel:
        raise ConfigError("config.toml: not valid TOML")

    monkeypatch.setattr("deeting_tui.compose.make_kernel", damaged)
    app = DeetingApp()
    with pytest.raises(WorkerFailed):  # Textual's pilot raises what ended the app
        async with App.run_test(app, size=SIZE) as pilot:
            await until(pilot, lambda: not app.is_running, "the chat to end")
    assert isinstance(app.crash, ConfigError)
    assert app.return_code == 1


def test_no_model_provider_or_kernel_is_imported_before_the_first_frame(home: Path) -> None:
    """``deeting``'s path to its first frame: the CLI, then the app, the Anthropic provider
    chosen. When the kernel's start is due (after the first refresh), none of the SDKs, httpx
    or the kernel is loaded yet; they load after, in the start worker."""
    code = """
import asyncio, sys
import deeting_tui.cli
from deeting_tui.ui.app import STARTING, DeetingApp

HEAVY = ("anthropic", "openai", "httpx", "deeting_tui.kernel.kernel", "jsonschema")

async def main():
    app = DeetingApp(provider="anthropic", model="claude-test")
    seen = {}

    def start_kernel():
        seen["loaded"] = [m for m in HEAVY if m in sys.modules]
        seen["header"] = app.sub_title
        seen["screen"] = type(app.screen).__name__
        app.exit()

    app.start_kernel = start_kernel
    async with app.run_test(size=(80, 24)) as pilot:
        while app.is_running:
            await pilot.pause()
    print(seen["loaded"], seen["header"] == STARTING, seen["screen"])

asyncio.run(main())
"""
    keep = ("DEETING_", "PYTHON", "PATH", "HOME")
    env = {k: v for k, v in os.environ.items() if k.startswith(keep)}
    env["ANTHROPIC_API_KEY"] = "sk-test"  # the provider chosen; never called
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["[]", "True", "ChatScreen"], out.stdout
