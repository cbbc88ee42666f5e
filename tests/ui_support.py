"""Driving the Textual app in tests: wait for a condition, or for a group of workers, with a
deadline, so a hang fails the test with what it waited for instead of stalling the run."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from textual.app import App
from textual.pilot import Pilot

DEADLINE_S = 10.0


async def until(
    pilot: Pilot[Any], done: Callable[[], bool], what: str, timeout: float = DEADLINE_S
) -> None:
    """Let the app run until ``done()``."""

    async def wait() -> None:
        while not done():
            await pilot.pause()

    try:
        await asyncio.wait_for(wait(), timeout)
    except TimeoutError:
        pytest.fail(f"timed out waiting for {what}")


async def settled(app: App[Any], group: str) -> None:
    """Wait for one group's workers (never one blocked on a dialog: that would deadlock)."""
    workers = [w for w in app.workers if w.group == group]
    await asyncio.wait_for(app.workers.wait_for_complete(workers), DEADLINE_S)
