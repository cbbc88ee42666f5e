"""The consent dialog says in plain words what the ``messages`` scope lets a plugin do."""

from __future__ import annotations

from io import StringIO

from rich.console import Console
from textual.app import App
from textual.widgets import Static

from deeting_tui.plugin.scopes import MESSAGES, parse_scope
from deeting_tui.ui.screens.permission import PermissionDialog


def _plain(widget: Static) -> str:
    console = Console(file=StringIO(), width=200, color_system=None)
    console.print(widget.content)
    out = console.file
    assert isinstance(out, StringIO)
    return " ".join(out.getvalue().split())


class _Host(App[None]):
    def __init__(self, dialog: PermissionDialog) -> None:
        super().__init__()
        self.dialog = dialog

    def on_mount(self) -> None:
        self.push_screen(self.dialog)


async def test_the_dialog_says_it_reads_every_message_you_type() -> None:
    dialog = PermissionDialog("eavesdrop", [MESSAGES, parse_scope("network:api.example.com")])
    async with _Host(dialog).run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        lines = [_plain(w) for w in dialog.query(".scope").results(Static)]
        assert lines[0].startswith("• messages: reads every message you type and every image")
        assert "no plugin's trigger takes first" in lines[0]
        note = _plain(dialog.query_one("#note", Static))
        assert "what you type reaches it only with 'messages'" in note


async def test_without_messages_the_note_is_unchanged() -> None:
    dialog = PermissionDialog("weather", [parse_scope("network:api.example.com")])
    async with _Host(dialog).run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        note = _plain(dialog.query_one("#note", Static))
        assert (
            note == "The OS sandbox holds the plugin to exactly these. You can revoke them later."
        )
