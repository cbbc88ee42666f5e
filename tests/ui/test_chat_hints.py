"""The chat's side of the error family: a fix carried as a Hint is said as the keys that do it
(``press F2, select p, press d``), never as a shell command a key does; a known error is said
without a Python type name; an expected error that ends the chat is said by the CLI as its
one line."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from support import FAST_POLICY
from textual.app import App
from ui_support import record_notes, until

from deeting_tui import cli
from deeting_tui.kernel.kernel import Kernel
from deeting_tui.kernel.sessions.store import SessionStoreError
from deeting_tui.llm.offline import OfflineAssistant
from deeting_tui.paths import ConfigError, resolve_paths
from deeting_tui.ui.app import DeetingApp
from deeting_tui.ui.screens.chat import ChatScreen
from deeting_tui.ui.widgets.transcript import AssistantReply

SIZE = (100, 32)


def _kernel() -> Kernel:
    return Kernel(resolve_paths(), assistant=OfflineAssistant(), policy=FAST_POLICY)


def _replies(app: DeetingApp) -> list[str]:
    return [w.source for w in app.chat.query(AssistantReply)]


async def test_the_offline_reply_with_no_plugin_names_the_key(home: Path) -> None:
    app = DeetingApp(_kernel(), new=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.click("#prompt")
        for key in "hello":
            await pilot.press(key)
        await pilot.press("enter")
        await until(pilot, lambda: bool(_replies(app)), "the offline reply")
        (reply,) = _replies(app)
        assert reply.endswith("install one — press F2, press i and choose a folder or a .zip")
        assert "deeting plugin" not in reply


async def test_a_notice_with_a_fix_names_the_key_and_is_neutralised(home: Path) -> None:
    """A stream frame the kernel drops: its notice says how to stop the plugin, as keys."""
    app = DeetingApp(_kernel(), new=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        notes = record_notes(app)
        app.kernel.streams.admit("noisy\x1b[2J", {"topic": ["t"], "payload": {}}, None)
        await until(pilot, lambda: bool(notes), "the notice")
        (severity, said) = notes[0]
        assert severity == "warning"
        assert said.endswith("— press F2, select noisy, press d"), said
        assert "deeting plugin" not in said
        shown = app._notifications
        assert all("\x1b" not in n.message for n in shown), [n.message for n in shown]


async def test_a_known_error_opening_a_session_is_said_without_its_type(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kernel = _kernel()
    opened = kernel.open_session

    def locked(session_id: str | None = None) -> object:
        if session_id == "s1":
            raise SessionStoreError("the session store is locked by another program")
        return opened(session_id)

    monkeypatch.setattr(kernel, "open_session", locked)
    app = DeetingApp(kernel, session_id="s1")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.session_id not in (None, "s1"), "a new session")
        notices = [n.message for n in app._notifications]
        assert any(
            "session s1 could not be shown (the session store is locked by another program)" in n
            for n in notices
        ), notices
        assert not any("SessionStoreError" in n for n in notices), notices


def test_an_expected_error_that_ends_the_chat_is_its_one_line(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A known error escaping the chat is not 'an unexpected error (ConfigError: …)': the CLI
    says it as it says every known error."""

    def broken(self: ChatScreen) -> None:
        raise ConfigError("config.toml: provider must be a string")

    def headless(self: DeetingApp) -> None:
        App.run(self, headless=True, size=SIZE)

    monkeypatch.setattr(ChatScreen, "on_mount", broken)
    monkeypatch.setattr(DeetingApp, "run", headless)
    monkeypatch.setattr(cli, "make_kernel", lambda *_: _kernel())
    args = argparse.Namespace(provider=None, model=None, session=None, new=True)
    with pytest.raises(ConfigError) as caught:
        cli._run_chat(args)
    assert cli.error_text(caught.value) == "config.toml: provider must be a string"
    assert "Traceback" not in capsys.readouterr().err
