"""Esc on a call whose plugin blocks in sync code (as urllib does): the call's block says
"cancelled" at once, and the plugin answers the next call, however often Esc is pressed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from support import FAST_POLICY, FIXTURES
from textual.widgets import ProgressBar, Static
from ui_support import until

from deeting_tui.kernel.kernel import Kernel
from deeting_tui.llm.offline import OfflineAssistant
from deeting_tui.paths import resolve_paths
from deeting_tui.ui.app import DeetingApp
from deeting_tui.ui.widgets.transcript import ErrorLine, ToolCallBlock

SIZE = (100, 32)


@pytest.fixture
async def app(home: Path) -> AsyncIterator[DeetingApp]:
    kernel = Kernel(resolve_paths(), assistant=OfflineAssistant(), policy=FAST_POLICY)
    await kernel.start(ticker=False)
    await kernel.loader.install(FIXTURES / "blocking_plugin")
    await kernel.loader.shutdown()
    yield DeetingApp(kernel)


async def _type(pilot: Any, text: str) -> None:
    await pilot.click("#prompt")
    for char in text:
        await pilot.press(char if char != " " else "space")
    await pilot.press("enter")


def _status(block: ToolCallBlock) -> str:
    return str(block.query_one(".status", Static).render())


async def _cancel_a_blocking_call(
    pilot: Any, app: DeetingApp, key: str = "escape"
) -> ToolCallBlock:
    """`sleep 60` (the trigger of sleeper's blocking tool), then ``key`` once it blocks."""
    calls = len(app.screen.query(ToolCallBlock))
    await _type(pilot, "sleep 60")
    await until(pilot, lambda: len(app.screen.query(ToolCallBlock)) > calls, "the call")
    block = list(app.screen.query(ToolCallBlock))[-1]
    # The plugin reported progress: it is inside time.sleep now.
    await until(pilot, lambda: bool(block.query(ProgressBar)), "the plugin to block")
    await pilot.press(key)
    # The kernel says so before it deals with the worker (tests/kernel covers that).
    await until(pilot, lambda: block.done, "the block to end")
    return block


async def test_escape_on_a_blocking_call_ends_its_block_at_once(app: DeetingApp) -> None:
    notices: list[str] = []
    notify = app.notify

    def record(message: str, **options: Any) -> None:
        notices.append(message)
        notify(message, **options)

    app.notify = record  # type: ignore[method-assign]
    async with app.run_test(size=SIZE) as pilot:
        for round_ in range(4):  # more than the crash-loop limit of 3
            block = await _cancel_a_blocking_call(pilot, app)
            assert block.query_one(".status").has_class("-cancelled")
            assert _status(block).startswith("⊘ block  cancelled after "), _status(block)
            await app.screen.workers.wait_for_complete()
            await _type(pilot, "/state")
            await app.screen.workers.wait_for_complete()
            await pilot.pause()
            answer = list(app.screen.query(ToolCallBlock))[-1]
            assert _status(answer).startswith("✓ state"), (round_, _status(answer))
        assert not app.screen.query(ErrorLine) and notices == []
        assert app.kernel.loader.record("sleeper").enabled


async def test_ctrl_c_on_a_running_call_cancels_it_and_otherwise_copies(app: DeetingApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        block = await _cancel_a_blocking_call(pilot, app, key="ctrl+c")
        assert _status(block).startswith("⊘ block  cancelled after "), _status(block)
        await app.screen.workers.wait_for_complete()
        # Nothing running: ctrl+c is the input's copy again, and the chat goes on.
        await pilot.press("ctrl+c")
        await _type(pilot, "/state")
        await app.screen.workers.wait_for_complete()
        await pilot.pause()
        answer = list(app.screen.query(ToolCallBlock))[-1]
        assert _status(answer).startswith("✓ state"), _status(answer)
        assert app.screen is app.chat
