"""The chat screen through Pilot, on the real kernel and plugin with a scripted model."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from llm.test_agent import Scripted, calls, said
from support import FAST_POLICY, FIXTURES

from deeting_tui.kernel.kernel import Kernel
from deeting_tui.kernel.paths import resolve_paths
from deeting_tui.llm.agent import LLMAssistant
from deeting_tui.llm.model import ToolCall
from deeting_tui.ui.app import DeetingApp
from deeting_tui.ui.widgets.transcript import (
    AssistantReply,
    ErrorLine,
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
        assert status.startswith("⚙ echo  ✓")
        assert _texts(app, AssistantReply) == ["hello there"]
        assert "session" in app.sub_title and "scripted test-model" in app.sub_title


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
        assert "still here" in _texts(app, AssistantReply)


async def test_up_arrow_brings_back_the_last_message(setup: tuple[DeetingApp, Scripted]) -> None:
    app, _provider = setup
    async with app.run_test(size=SIZE) as pilot:
        await _send(pilot, "echo one")
        await pilot.press("up")
        assert app.screen.query_one("#prompt").value == "echo one"  # type: ignore[attr-defined]
