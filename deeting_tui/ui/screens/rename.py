"""Renaming a session: one line, prefilled with the current title.

Dismisses with the new title (``""`` clears it, so the list shows the first message again),
or None when cancelled. Cleaning (control characters, length) is the store's job; the field
shows the length cap at once (a paste past it is cut, not refused as ``max_length`` would).
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from deeting_tui.kernel.sessions.encoding import TITLE_MAX


class RenameDialog(ModalScreen[str | None]):
    CSS_PATH = "rename.tcss"
    BINDINGS = [
        Binding(
            "escape",
            "cancel",
            "Cancel",
            id="rename.cancel",
            tooltip="Close without changing the title",
        ),
    ]

    def __init__(self, session_id: str, title: str | None) -> None:
        super().__init__()
        self.session_id = session_id
        self.title_now = title or ""

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(f"Rename session {self.session_id}", id="heading")
            yield Input(
                self.title_now,
                placeholder="a title — leave empty to show the first message",
                id="title",
            )
            yield Static("Enter saves · Esc cancels · empty shows the first message", id="hint")

    def on_mount(self) -> None:
        self.query_one("#title", Input).focus()

    @on(Input.Changed, "#title")
    def _cap(self, event: Input.Changed) -> None:
        if len(event.value) > TITLE_MAX:
            event.input.value = event.value[:TITLE_MAX]

    @on(Input.Submitted, "#title")
    def _save(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)
