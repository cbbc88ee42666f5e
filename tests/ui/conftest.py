"""The chat paints its first frame before its kernel has started (``DeetingApp.started``).
Most pilot tests are about the chat once it runs: their ``run_test`` hands the pilot over only
once the kernel has started and the session is shown, as a user sees it a moment after launch.
The tests of the first moments call ``App.run_test(app, …)``, Textual's own, which does not
wait (tests/ui/test_chat_first_frame.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from textual.app import App
from textual.pilot import Pilot
from ui_support import until

from deeting_tui.ui.app import DeetingApp


@pytest.fixture(autouse=True)
def _pilot_after_start(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    @asynccontextmanager
    async def run_test(app: DeetingApp, *args: Any, **kwargs: Any) -> AsyncIterator[Pilot[Any]]:
        async with App.run_test(app, *args, **kwargs) as pilot:
            await until(
                pilot, lambda: app.started.is_set() or not app.is_running, "the kernel to start"
            )
            yield pilot

    monkeypatch.setattr(DeetingApp, "run_test", run_test)
    yield
