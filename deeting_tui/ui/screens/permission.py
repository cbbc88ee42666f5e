"""Asking the user for permissions: a modal that answers True (allow) or False (deny).

Pushed with ``push_screen_wait`` from a worker, so the code that needs the decision simply awaits it
(docs/architecture.md#the-data-paths). Fully keyboard-driven: a/y allow, d/n/Esc deny. The same
dialog serves enabling, installing and granting one scope; ``intro`` says which, and what denying
means. A scope's path is the plugin's to choose, so its words are neutralised and never markup.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widget import Widget
from textual.widgets import Button, Label, Static

from deeting_tui.plugin.scopes import MESSAGES, Scope, explain
from deeting_tui.terminal_text import one_line

RISK_STYLE = {"low": "green", "medium": "yellow", "high": "bold red"}


def scope_line(words: str, risk: str) -> Text:
    """A scope in words and its risk, coloured and said (``(high risk)``): colour alone is
    lost on a monochrome terminal and to a colour-blind reader."""
    line = Text(one_line(words), style=RISK_STYLE[risk])
    line.append(f" ({risk} risk)", style=RISK_STYLE[risk])
    return line


def fit_to_screen(screen: Screen[Any], dialog: Widget, scroller: Widget) -> None:
    """Give ``scroller`` what the screen has left after the rest of ``dialog``, so a long
    list scrolls and the question, the note and the buttons stay in sight at 80x24."""
    rest = dialog.styles.gutter.height + sum(
        child.outer_size.height + child.styles.margin.height
        for child in dialog.children
        if child is not scroller
    )
    scroller.styles.max_height = max(3, screen.size.height - rest)


class PermissionDialog(ModalScreen[bool]):
    CSS_PATH = "permission.tcss"
    BINDINGS = [
        Binding("a,y", "decide(True)", "Allow", id="permission.allow"),
        Binding("d,n,escape", "decide(False)", "Deny", id="permission.deny"),
    ]

    def __init__(self, plugin: str, scopes: list[Scope], *, intro: str | None = None) -> None:
        super().__init__()
        self.plugin = plugin
        self.scopes = scopes
        self.intro = intro

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(Text(one_line(f"'{self.plugin}' asks for:")), id="title")
            if self.intro:
                yield Static(self.intro, id="intro", markup=False)
            with VerticalScroll(id="scopes"):  # many scopes scroll; the rest stays in sight
                for scope in self.scopes:
                    words, risk = explain(scope)
                    yield Static(Text("• ").append_text(scope_line(words, risk)), classes="scope")
            yield Static(self._note(), id="note")
            with Horizontal(id="buttons"):
                yield Button("Allow (a)", variant="warning", id="allow")
                yield Button("Deny (d)", variant="primary", id="deny")

    def _note(self) -> str:
        if MESSAGES not in self.scopes:
            return "The OS sandbox holds the plugin to exactly these. You can revoke them later."
        return (
            "The OS sandbox holds the plugin to exactly these; what you type reaches it only "
            "with 'messages', after every plugin's trigger and before the assistant. You can "
            "revoke them later."
        )

    def on_mount(self) -> None:
        self.query_one("#deny", Button).focus()  # the safe choice has the focus
        self.call_after_refresh(self._fit)

    def on_resize(self) -> None:
        self.call_after_refresh(self._fit)

    def _fit(self) -> None:
        fit_to_screen(self, self.query_one("#dialog", Vertical), self.query_one("#scopes"))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "allow")

    def action_decide(self, allow: bool) -> None:
        self.dismiss(allow)
