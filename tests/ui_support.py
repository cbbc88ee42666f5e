"""Driving the Textual app in tests: wait for a condition, or for a group of workers, with a
deadline, so a hang fails the test with what it waited for instead of stalling the run; and
read what the app would write to the terminal."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from rich.segment import Segment
from terminal_support import assert_terminal_safe
from textual._compositor import LayoutUpdate
from textual.app import App
from textual.pilot import Pilot

if TYPE_CHECKING:
    from deeting_tui.ui.app import DeetingApp

DEADLINE_S = 10.0
#: Every notification of an app as (severity, message), as the user would read them.
Notes = list[tuple[str, str]]


async def app_with_plugins(*folders: Path) -> DeetingApp:
    """An app on a real kernel (offline assistant, fast supervision) in the test's home, with
    each plugin folder installed as the CLI would: enabled when it needs no permission,
    waiting for consent when it does."""
    from support import FAST_POLICY

    from deeting_tui.kernel.kernel import Kernel
    from deeting_tui.llm.offline import OfflineAssistant
    from deeting_tui.paths import resolve_paths
    from deeting_tui.ui.app import DeetingApp

    kernel = Kernel(resolve_paths(), assistant=OfflineAssistant(), policy=FAST_POLICY)
    await kernel.start(ticker=False)
    for folder in folders:
        await kernel.loader.install(folder)
    await kernel.loader.shutdown()
    return DeetingApp(kernel)


def record_notes(app: DeetingApp) -> Notes:
    """Every notification the app shows from now on, in order (it is still shown)."""
    seen: Notes = []
    notify = app.notify

    def record(message: str, **options: Any) -> None:
        seen.append((options.get("severity", "information"), message))
        notify(message, **options)

    app.notify = record  # type: ignore[method-assign]
    return seen


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


def terminal_write(app: App[Any]) -> tuple[str, list[list[Segment]]]:
    """What the driver would write to the terminal to paint the whole screen now (the screens
    under a modal too: what ``export_screenshot`` renders), and its rows' segments."""
    update = app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    assert isinstance(update, LayoutUpdate)
    rows = [[segment for strip in line for segment in strip] for line in update.strips]
    return update.render_segments(app.console), rows


def screen_text(app: App[Any]) -> str:
    """The screen as text, one line a row."""
    return "\n".join("".join(s.text for s in row) for row in terminal_write(app)[1])


# Textual's own sequences in a full repaint: cursor moves, colours and styles (SGR), and OSC 8
# around a hyperlink. Anything else with an ESC, and any other control, came from content.
_TEXTUAL_OWN = re.compile(r"\x1b\[[0-9;]*[Hm]|\x1b\]8;[^\x07\x1b]*\x1b\\")


def assert_screen_safe(app: App[Any], where: str, *, payloads: bool = True) -> str:
    """Nothing on the screen can drive the terminal: no control or bidi character in any
    segment's text or hyperlink, nothing but Textual's own sequences in what is written, and
    (with ``payloads``) none of the attacks' payloads shown. Returns the screen's text, one
    line a row."""
    written, rows = terminal_write(app)
    segments = [segment for row in rows for segment in row]
    links = [s.style.link for s in segments if s.style is not None and s.style.link]
    text = "\n".join("".join(s.text for s in row) for row in rows)
    assert_terminal_safe(text, f"{where} (text)", payloads=payloads)
    assert_terminal_safe("\n".join(links), f"{where} (hyperlinks)")
    assert_terminal_safe(_TEXTUAL_OWN.sub("", written), f"{where} (written)", payloads=False)
    return text
