"""The chat screen through Pilot, on the real kernel and plugin with a scripted model."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from llm.test_agent import Scripted, calls, said
from support import FAST_POLICY, FIXTURES, OFFICIAL
from textual.widgets import Input, ProgressBar

from deeting_tui.kernel.kernel import Kernel
from deeting_tui.llm.agent import LLMAssistant
from deeting_tui.llm.model import ToolCall
from deeting_tui.paths import resolve_paths
from deeting_tui.ui.app import DeetingApp
from deeting_tui.ui.messages import KernelEvent
from deeting_tui.ui.screens.chat import ChatScreen
from deeting_tui.ui.widgets.transcript import (
    AssistantReply,
    ErrorLine,
    LiveCard,
    ToolCallBlock,
    UserLine,
)

SIZE = (100, 32)


@pytest.fixture
async def setup(home: Path) -> AsyncIterator[tuple[DeetingApp, Scripted]]:
    provider = Scripted()
    kernel = Kernel(
        resolve_paths(), assistant=LLMAssistant(provider, retry_delays=()), policy=FAST_POLICY
    )
    # Installed before the app starts it, as a user would have done with the CLI.
    await kernel.start(ticker=False)
    await kernel.loader.install(FIXTURES / "good_plugin")
    await kernel.loader.shutdown()
    yield DeetingApp(kernel), provider


async def _send(pilot: Any, text: str) -> None:
    await pilot.click("#prompt")
    for char in text:
        await pilot.press(char if char != " " else "space")
    await pilot.press("enter")
    await pilot.app.screen.workers.wait_for_complete()
    await pilot.pause()


def _texts(app: DeetingApp, kind: type) -> list[str]:
    out = []
    for widget in app.screen.query(kind):
        if isinstance(widget, AssistantReply):
            out.append(widget.source)
        else:
            out.append(str(widget.render()))
    return out


async def test_a_trigger_message_shows_the_tool_block_and_its_result(
    setup: tuple[DeetingApp, Scripted],
) -> None:
    app, _provider = setup
    async with app.run_test(size=SIZE) as pilot:
        await _send(pilot, "echo hello there")
        assert _texts(app, UserLine) == ["> echo hello there"]
        (block,) = app.screen.query(ToolCallBlock)
        status = str(block.query_one(".status").render())
        assert status.startswith("✓ echo  ") and status.endswith(" ms")
        assert not block.query(ProgressBar)
        assert _texts(app, AssistantReply) == []  # the card says it: no reply repeats it
        assert app.sub_title == "scripted test-model · 1 running"
        prompt = app.chat.query_one("#prompt", Input)
        assert prompt.border_subtitle == f"session {app.session_id}"


async def test_model_reply_streams_and_tools_run(setup: tuple[DeetingApp, Scripted]) -> None:
    app, provider = setup
    provider.responses = [
        calls(ToolCall("t1", "add", {"a": 1, "b": 2}), text="Adding."),
        said("It is 3."),
    ]
    async with app.run_test(size=SIZE) as pilot:
        await _send(pilot, "what is 1 plus 2")
        assert _texts(app, AssistantReply) == ["Adding.", "It is 3."]
        assert len(app.screen.query(ToolCallBlock)) == 1
        assert not app.screen.query(ErrorLine)


async def test_escape_cancels_a_turn_and_the_chat_goes_on(
    setup: tuple[DeetingApp, Scripted],
) -> None:
    app, provider = setup
    started = asyncio.Event()

    async def hang(**_: Any) -> AsyncIterator[Any]:
        started.set()
        await asyncio.Event().wait()
        yield  # pragma: no cover

    provider.stream = hang  # type: ignore[method-assign]
    async with app.run_test(size=SIZE) as pilot:
        await pilot.click("#prompt")
        for char in "hi":
            await pilot.press(char)
        await pilot.press("enter")
        await asyncio.wait_for(started.wait(), 10)
        await pilot.press("escape")
        await app.screen.workers.wait_for_complete()
        await pilot.pause()
        await _send(pilot, "echo still here")
        assert [b.tool for b in app.chat.query(ToolCallBlock) if b.done] == ["echo"]


async def test_up_arrow_brings_back_the_last_message(setup: tuple[DeetingApp, Scripted]) -> None:
    app, _provider = setup
    async with app.run_test(size=SIZE) as pilot:
        await _send(pilot, "echo one")
        await pilot.press("up")
        assert app.screen.query_one("#prompt").value == "echo one"  # type: ignore[attr-defined]


async def _until(pilot: Any, condition: Any, what: str, timeout: float = 10.0) -> None:
    """Poll a condition while the app runs; a hang fails with ``what`` instead of stalling."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.01)


def _post(app: DeetingApp, event: dict[str, Any]) -> None:
    app.chat.post_message(KernelEvent({"session_id": app.session_id, **event}))


async def test_progress_reports_show_a_bar_until_the_result(
    setup: tuple[DeetingApp, Scripted],
) -> None:
    app, _provider = setup
    async with app.run_test(size=SIZE) as pilot:
        call = {"call_id": "p1", "tool": "slow", "plugin": "echo-fixture"}
        _post(app, {"type": "tool_call", **call, "args": {"n": 3}})
        await pilot.pause()
        block = app.chat.query_one(ToolCallBlock)
        assert "slow" in str(block.query_one(".status").render())
        assert not block.query(ProgressBar)

        _post(app, {"type": "progress", **call, "fraction": None, "message": "warming up"})
        await pilot.pause()
        bar = block.query_one(ProgressBar)
        assert bar.total is None  # indeterminate: the plugin does not know how far it is

        _post(app, {"type": "progress", **call, "fraction": 0.5, "message": "half way"})
        await pilot.pause()
        assert bar.percentage == pytest.approx(0.5)
        assert str(block.query_one(".progress-message").render()) == "half way"

        _post(
            app,
            {
                "type": "tool_result",
                **call,
                "ok": True,
                "data": "done",
                "text": "done",
                "renderer": "text",
                "error": None,
                "duration_ms": 2400.0,
            },
        )
        await pilot.pause()
        assert not block.query(ProgressBar) and not block.query(".progress-message")
        assert str(block.query_one(".status").render()) == "✓ slow  2.4 s"

        # A late report (the bar is only true while the call runs) changes nothing.
        _post(app, {"type": "progress", **call, "fraction": 0.9, "message": "late"})
        await pilot.pause()
        assert not block.query(ProgressBar)


async def test_a_failed_call_says_why_in_its_block(setup: tuple[DeetingApp, Scripted]) -> None:
    app, _provider = setup
    async with app.run_test(size=SIZE) as pilot:
        await _send(pilot, "/add a=1")
        (block,) = app.chat.query(ToolCallBlock)
        status = str(block.query_one(".status").render())
        assert status.startswith("✗ add ") and "invalid arguments" in status
        assert not app.chat.query(ErrorLine)  # said once, in the block


async def test_a_live_card_updates_in_place_from_a_real_plugin_stream(home: Path) -> None:
    kernel = Kernel(resolve_paths(), policy=FAST_POLICY)
    await kernel.start(ticker=False)
    await kernel.loader.install(OFFICIAL / "sysinfo", yes=True)
    await kernel.loader.shutdown()
    app = DeetingApp(kernel)
    async with app.run_test(size=SIZE) as pilot:
        await kernel.bus.publish("system.tick", {"ts": 1.0})
        await _until(pilot, lambda: app.chat.query(LiveCard), "the first frame of the card")
        (card,) = app.chat.query(LiveCard)
        first = str(card.render())
        assert card.border_title == "sysinfo.usage"
        await kernel.bus.publish("system.tick", {"ts": 2.0})
        await _until(pilot, lambda: str(card.render()) != first, "the card to update")
        assert len(app.chat.query(LiveCard)) == 1  # updated in place, not appended


async def test_a_burst_of_stream_updates_is_drawn_once_per_frame(
    setup: tuple[DeetingApp, Scripted],
) -> None:
    app, _provider = setup
    async with app.run_test(size=SIZE) as pilot:
        drawn: list[Any] = []
        original = LiveCard.show

        def counting(card: LiveCard, renderer: Any, payload: Any, topic: str) -> None:
            drawn.append(payload)
            original(card, renderer, payload, topic)

        LiveCard.show = counting  # type: ignore[method-assign]
        app.chat.stream_timer.pause()  # the test plays the 1/30 s timer, once
        try:
            for n in range(200):
                _post(
                    app,
                    {
                        "type": "stream",
                        "plugin": "p",
                        "topic": "p.n",
                        "renderer": "text",
                        "payload": str(n),
                    },
                )
            await pilot.pause()
            await app.chat._redraw_streams()  # the 1/30 s timer's job, done now
        finally:
            LiveCard.show = original  # type: ignore[method-assign]
        assert drawn == ["199"]  # only the newest payload of the burst is drawn
        assert len(app.chat.query(LiveCard)) == 1


async def test_right_arrow_accepts_slash_completions(setup: tuple[DeetingApp, Scripted]) -> None:
    app, _provider = setup
    async with app.run_test(size=SIZE) as pilot:
        await pilot.click("#prompt")
        prompt = app.chat.query_one("#prompt", Input)
        for keys, expected in [("/ec", "/echo "), ("t", "/echo text=")]:
            for key in keys:
                await pilot.press(key)
            await _until(pilot, lambda: prompt._suggestion != "", f"a suggestion for {keys}")
            await pilot.press("right")
            assert prompt.value == expected


async def test_plugin_notices_are_notified_and_the_header_counts_plugins(
    setup: tuple[DeetingApp, Scripted],
) -> None:
    app, _provider = setup
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.sub_title.endswith(" · 1 ready")  # its worker starts when first used
        _post(
            app,
            {
                "type": "plugin_notice",
                "plugin": "echo-fixture",
                "message": "plugin 'echo-fixture' worker exited; restarting it",
            },
        )
        await pilot.pause()
        assert any("restarting it" in str(n.message) for n in app._notifications)


async def test_every_footer_action_is_in_the_command_palette(
    setup: tuple[DeetingApp, Scripted],
) -> None:
    app, _provider = setup
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert {"New session", "Sessions", "Plugins", "Help", "Cancel"} <= titles
        await _send(pilot, "/help")
        assert "/TOOL key=value" in _texts(app, AssistantReply)[-1]
        assert isinstance(app.screen, ChatScreen)


async def test_function_keys_switch_screens_only_from_the_chat(
    setup: tuple[DeetingApp, Scripted],
) -> None:
    from deeting_tui.ui.screens.plugins import PluginManager

    app, _provider = setup
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f2")
        await pilot.pause()
        assert isinstance(app.screen, PluginManager)
        await pilot.press("f2")  # not a second manager on top of the first
        await pilot.press("ctrl+n")  # nor a new session behind it
        await pilot.pause()
        assert len(app.screen_stack) == 3  # default screen, chat, manager
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert not {"New session", "Sessions", "Plugins", "Help"} & titles
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, ChatScreen)
        before = app.session_id
        await pilot.press("ctrl+n")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.session_id != before
