"""One long message, whole: what the transcript cut to a prefix, read in a scrolling viewer.

The transcript shows at most a few thousand characters of a message (a megabyte laid out as
wrapped lines would take seconds to draw and make the conversation unreadable); this screen
holds the rest. A read-only TextArea lays out and draws only the lines on screen, so a whole
megabyte opens at once; the text can be selected and copied.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static, TextArea


class FullText(ModalScreen[None]):
    CSS_PATH = "full_text.tcss"
    BINDINGS = [
        Binding("escape", "close", "Close", id="full_text.close", tooltip="Back to the chat"),
    ]

    def __init__(self, heading: str, text: str) -> None:
        super().__init__()
        self.heading = heading
        self.text = text  # neutralised already (KernelEvent)

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(f"{self.heading} — {len(self.text):,} characters", id="heading")
            yield TextArea(self.text, read_only=True, soft_wrap=True, id="full")
            yield Static("Esc closes", id="hint")

    def on_mount(self) -> None:
        self.query_one("#full", TextArea).focus()

    def action_close(self) -> None:
        self.dismiss(None)
