"""Terminal injection in the chat: every place the hostile termjack plugin's strings are shown
— replies, tool call lines, result cards, errors, progress, live cards, toasts (crash notices,
start-up problems, install errors), a resumed session, the session list, the plugin manager's
table and details (README, log tail, disabled reason) and the permission dialogs — is checked
on what the app would write to the terminal (``ui_support.assert_screen_safe``).

These run with the ``TerminalGuard`` line filter off, so each boundary is shown to neutralise
on its own; the last test shows the guard catches what a boundary misses."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from rich.style import Style
from rich.text import Text
from support import FAST_POLICY
from terminal_support import ATTACK, MARKUP, TERMJACK, VISIBLE
from textual.app import App
from textual.containers import VerticalScroll
from textual.pilot import Pilot
from textual.widgets import Input, ProgressBar, Static
from textual.widgets._toast import Toast
from ui_support import assert_screen_safe, screen_text, until

from deeting_tui.kernel.kernel import Kernel
from deeting_tui.llm.offline import OfflineAssistant
from deeting_tui.paths import resolve_paths
from deeting_tui.ui.app import DeetingApp
from deeting_tui.ui.messages import KernelEvent
from deeting_tui.ui.screens.grants import GrantsDialog
from deeting_tui.ui.screens.install import InstallDialog
from deeting_tui.ui.screens.permission import PermissionDialog
from deeting_tui.ui.screens.plugin_details import PluginDetails
from deeting_tui.ui.screens.plugins import PluginManager
from deeting_tui.ui.screens.sessions import SessionList
from deeting_tui.ui.widgets.transcript import AssistantReply, ErrorLine, LiveCard

SIZE = (130, 50)


@pytest.fixture(autouse=True)
def _boundaries_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Textual's filters without the TerminalGuard: what is checked is each boundary."""
    monkeypatch.setattr(DeetingApp, "get_line_filters", App.get_line_filters)


async def _kernel(*, grant: bool = True, install: Path | None = TERMJACK) -> Kernel:
    kernel = Kernel(resolve_paths(), assistant=OfflineAssistant(), policy=FAST_POLICY)
    await kernel.start(ticker=False)
    if install is not None:
        await kernel.loader.install(install, yes=grant)
    return kernel


@pytest.fixture
async def app(home: Path) -> AsyncIterator[DeetingApp]:
    kernel = await _kernel()
    await kernel.loader.shutdown()  # the app starts what is enabled, as after the CLI
    yield DeetingApp(kernel)


async def _send(pilot: Pilot[Any], text: str, *, wait: bool = True) -> None:
    app = pilot.app
    assert isinstance(app, DeetingApp)
    app.chat.query_one("#prompt", Input).value = text
    await pilot.press("enter")
    if wait:
        await app.chat.workers.wait_for_complete()
    await pilot.pause()


async def _open_manager(pilot: Pilot[Any], app: DeetingApp) -> PluginManager:
    await pilot.press("f2")
    await until(pilot, lambda: isinstance(app.screen, PluginManager), "the plugin manager")
    assert isinstance(app.screen, PluginManager)
    return app.screen


async def test_a_reply_its_call_and_card(app: DeetingApp) -> None:
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await _send(pilot, "/misbehave what=reply")
        assert not app.chat.query(AssistantReply)  # the card says it, once
        screen = assert_screen_safe(app, "a reply and its card")
        assert "✓ misbehave" in screen and f"{VISIBLE}cr" in screen and MARKUP in screen
        await _send(pilot, "termjack reply")  # the same through its trigger
        assert_screen_safe(app, "a triggered reply")


async def test_a_streamed_reply_cut_inside_its_sequences(app: DeetingApp) -> None:
    """A model's reply arrives in pieces (it may quote a plugin); a piece can end inside an
    escape sequence. The kernel's events, as the chat receives them."""
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await pilot.pause()
        session = app.session_id
        pieces = [ATTACK[:8], ATTACK[8:30], ATTACK[30:47], ATTACK[47:]]  # cut mid-OSC, mid-CSI
        for piece in pieces:
            app.chat.post_message(
                KernelEvent({"type": "reply_delta", "session_id": session, "text": piece})
            )
        app.chat.post_message(KernelEvent({"type": "reply", "session_id": session, "text": ""}))
        await until(pilot, lambda: bool(app.chat.query(AssistantReply)), "the reply")
        await pilot.pause()
        # Each piece is neutralised alone: no ESC survives, but the tail of a sequence cut
        # in two (";PWNED") shows as text, as terminal_text.py's docstring says.
        screen = assert_screen_safe(app, "a streamed reply", payloads=False)
        assert "title" in screen and "overwritten" in screen


async def test_completion_offers_no_parameter_name_that_is_an_attack(app: DeetingApp) -> None:
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await pilot.pause()
        assert app.chat._tool_parameters() == {"misbehave": ["what"]}
        app.chat.query_one("#prompt", Input).value = "/misbehave what=reply "
        await pilot.pause()
        assert_screen_safe(app, "the input line with its completion")


async def test_an_error_and_the_failed_call(app: DeetingApp) -> None:
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await _send(pilot, "/misbehave what=fail")
        assert not app.chat.query(ErrorLine)  # the failed call's block says it, once
        screen = assert_screen_safe(app, "an error")
        assert "✗ misbehave" in screen and VISIBLE in screen


async def test_a_progress_message(app: DeetingApp) -> None:
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await _send(pilot, "/misbehave what=progress", wait=False)
        await until(pilot, lambda: bool(app.chat.query(ProgressBar)), "the progress bar")
        label = app.chat.query_one(".progress-message", Static)
        await until(pilot, lambda: VISIBLE in str(label.render()), "the progress message")
        assert_screen_safe(app, "a progress message")
        (app.kernel.paths.plugin_data("termjack") / "go").touch()
        await app.chat.workers.wait_for_complete()


async def test_a_live_card(app: DeetingApp) -> None:
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await _send(pilot, "/misbehave what=stream")
        await until(pilot, lambda: bool(app.chat.query(LiveCard)), "the live card")
        await pilot.pause()
        screen = assert_screen_safe(app, "a live card")
        assert VISIBLE in screen


async def test_crash_notices_and_the_disabled_plugin(app: DeetingApp) -> None:
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await _send(pilot, "/misbehave what=crash")
        await until(
            pilot, lambda: "termjack" not in app.kernel.loader.runtimes, "the crash loop's end"
        )
        await until(pilot, lambda: bool(app.screen.query(Toast)), "the notices")
        await until(pilot, lambda: VISIBLE in screen_text(app), "a notice quoting it")
        assert_screen_safe(app, "crash notices")
        manager = await _open_manager(pilot, app)
        await until(pilot, lambda: "was disabled" in screen_text(app), "the disabled reason")
        assert manager.query_one("#details", PluginDetails).name_shown == "termjack"
        assert_screen_safe(app, "the plugin manager after the crash loop")


async def test_start_up_problems(home: Path) -> None:
    kernel = await _kernel()
    (kernel.paths.plugin_data("termjack") / "armed").touch()  # activate fails from now on
    await kernel.loader.shutdown()
    app = DeetingApp(kernel)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await until(pilot, lambda: "could not enable" in screen_text(app), "the start-up problem")
        screen = assert_screen_safe(app, "a start-up problem")
        assert VISIBLE in screen  # the toast may wrap after "activate:"


async def test_a_resumed_session_and_the_session_list(home: Path) -> None:
    kernel = await _kernel()
    session = kernel.open_session()
    for line in ("/misbehave what=reply", "/misbehave what=fail"):
        await kernel.submit(session.id, line)
    hostile = kernel.sessions.create()  # a pasted first message, as the list shows it
    kernel.sessions.append(hostile.id, "user", {"text": ATTACK})
    kernel.sessions.rename(session.id, "title " + ATTACK)
    await kernel.loader.shutdown()
    app = DeetingApp(kernel, session_id=session.id)  # resumed: replayed from the store
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        failed = "its failed call"  # the stored error shows in the call's block
        await until(pilot, lambda: bool(app.chat.query(".status.-failed")), failed)
        screen = assert_screen_safe(app, "a resumed session")
        assert VISIBLE in screen and "✓ misbehave" in screen
        await pilot.press("f3")
        await until(pilot, lambda: isinstance(app.screen, SessionList), "the session list")
        await pilot.pause()
        screen = assert_screen_safe(app, "the session list")
        # the title, the other's first message, and the highlighted one's whole under the table
        assert screen.count(VISIBLE) == 3


async def test_the_plugin_manager_table_details_readme_and_log(app: DeetingApp) -> None:
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await _send(pilot, "/misbehave what=log")
        manager = await _open_manager(pilot, app)
        details = manager.query_one("#details", PluginDetails)
        await until(pilot, lambda: "readme" in screen_text(app), "the README")
        screen = assert_screen_safe(app, "the plugin manager")
        assert f"termjack 1.0.0 — {VISIBLE}cr overwritten {MARKUP}" in screen
        assert "[link=https://evil.example]link[/link]" in screen  # markup shown as written
        assert "termjackscope" in screen  # the scope's path
        details.scroll_end(animate=False)
        await until(pilot, lambda: f"log: {VISIBLE}" in screen_text(app), "the log tail")
        screen = assert_screen_safe(app, "the plugin manager's log tail")
        assert f"activate: {VISIBLE}" in screen


async def test_the_permission_and_grants_dialogs(home: Path) -> None:
    kernel = await _kernel(grant=False)  # needs consent for its (hostile) scope
    await kernel.loader.shutdown()
    app = DeetingApp(kernel)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        manager = await _open_manager(pilot, app)
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, PermissionDialog), "the consent dialog")
        await pilot.pause()
        screen = assert_screen_safe(app, "the permission dialog")
        assert "termjackscope" in screen
        await pilot.press("d")
        await manager.workers.wait_for_complete()
        await pilot.press("g")
        await until(pilot, lambda: isinstance(app.screen, GrantsDialog), "the grants dialog")
        await pilot.pause()
        screen = assert_screen_safe(app, "the grants dialog")
        assert "termjackscope" in screen


async def test_an_install_that_fails_quoting_the_plugin(home: Path, tmp_path: Path) -> None:
    folder = tmp_path / "termjack"
    shutil.copytree(TERMJACK, folder)
    (folder / "fail-postinstall").touch()
    kernel = await _kernel(install=None)
    await kernel.loader.shutdown()
    app = DeetingApp(kernel)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await _open_manager(pilot, app)
        await pilot.press("i")
        await until(pilot, lambda: isinstance(app.screen, InstallDialog), "the install dialog")
        app.screen.query_one("#path", Input).value = str(folder)
        await pilot.press("enter")
        await until(pilot, lambda: VISIBLE in screen_text(app), "the failure quoting it")
        assert "postinstall" in assert_screen_safe(app, "an install error")


async def test_the_guard_catches_what_a_boundary_missed(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A widget given raw plugin text (as a forgotten boundary would): without the guard the
    attack reaches the terminal, with it nothing does, hyperlink included."""
    kernel = await _kernel(install=None)
    app = DeetingApp(kernel)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        raw = Text(ATTACK)
        raw.append("link", Style(link="https://evil.example/\x1b]0;PWNED\x07"))
        widget = Static(raw)
        await app.chat.query_one("#transcript", VerticalScroll).mount(widget)
        await pilot.pause()
        with pytest.raises(AssertionError, match="reached the terminal"):
            assert_screen_safe(app, "no guard")
        monkeypatch.undo()  # the guard is back
        widget.refresh()
        await pilot.pause()
        screen = assert_screen_safe(app, "the guard")
        # Rich drops the BELs, so each OSC runs on to the next ESC, as a terminal would read it.
        assert "titlec1rev" in screen and "link" in screen
