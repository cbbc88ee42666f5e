"""Where no browser could be opened (over SSH, no display, a text browser only): the page's
URL to copy, why nothing opened, and how to reach a loopback page from another machine.

The URL is plain text (select it with the mouse, or press c: the terminal's clipboard, which
reaches the local machine over SSH in terminals that allow it).
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, Static


class BrowserUrl(ModalScreen[None]):
    CSS_PATH = "browser_url.tcss"
    BINDINGS = [
        Binding("escape", "close", "Close", id="browser_url.close"),
        Binding("enter", "close", "Close", show=False, id="browser_url.enter"),
        Binding("c", "copy", "Copy URL", id="browser_url.copy", tooltip="To the clipboard"),
    ]

    def __init__(self, url: str, reason: str, hint: str) -> None:
        super().__init__()
        self.url = url
        self.reason = reason
        self.hint = hint

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("Open this page in a browser", id="heading")
            yield Static(Text(self.url), id="url")
            yield Static(Text(f"No browser was opened here: {self.reason}."), id="reason")
            yield Static(Text(self.hint[:1].upper() + self.hint[1:] + "."), id="ssh")
            yield Static("c copies the URL · Esc closes", id="keys")

    def action_copy(self) -> None:
        self.app.copy_to_clipboard(self.url)
        self.notify("URL copied to the clipboard (if the terminal allows it)", timeout=3)

    def action_close(self) -> None:
        self.dismiss(None)
