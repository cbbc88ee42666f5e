"""The pieces of a conversation: user lines, streamed replies, tool-call blocks, cards.

Widgets only host what the kernel said and what the renderers drew; no decisions here.
"""

from __future__ import annotations

from typing import Any

import orjson
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Collapsible, Markdown, Static

from deeting_tui.render import render


class UserLine(Static):
    DEFAULT_CSS = """
    UserLine { color: $text; background: $boost; padding: 0 1; margin: 1 0 0 0; }
    """

    def __init__(self, text: str) -> None:
        super().__init__(Text("> " + text))


class AssistantReply(Markdown):
    """A reply; text may arrive in pieces (see ChatScreen's stream handling)."""

    DEFAULT_CSS = """
    AssistantReply { margin: 0 0 0 2; padding: 0; background: transparent; }
    """


class ErrorLine(Static):
    DEFAULT_CSS = """
    ErrorLine { color: $error; padding: 0 1; margin: 0 0 0 2; }
    """

    def __init__(self, message: str) -> None:
        super().__init__(Text("✗ " + message))


class ToolCallBlock(Vertical):
    """One tool call: its arguments, then its duration and result card (collapsible)."""

    DEFAULT_CSS = """
    ToolCallBlock { height: auto; margin: 0 0 0 2; }
    ToolCallBlock > .status { color: $text-muted; }
    ToolCallBlock > .status.-failed { color: $error; }
    """

    def __init__(self, call_id: str, tool: str, plugin: str | None, args: dict[str, Any]) -> None:
        super().__init__(id=f"call-{call_id}")
        self.tool = tool
        self.plugin = plugin
        self.args = args

    def compose(self) -> ComposeResult:
        args = orjson.dumps(self.args).decode()
        yield Static(Text(f"⚙ {self.tool} {args}  running…"), classes="status")

    def finish(self, result: dict[str, Any]) -> None:
        status = self.query_one(".status", Static)
        took = f"{result.get('duration_ms', 0):.0f} ms"
        if result.get("ok"):
            status.update(Text(f"⚙ {self.tool}  ✓ {took}"))
            card = render(result.get("renderer"), result.get("data"), text=result.get("text"))
            body = Collapsible(Static(card), title=f"{self.tool} result", collapsed=False)
            self.mount(body)
        else:
            status.add_class("-failed")
            status.update(Text(f"⚙ {self.tool}  ✗ {took}: {result.get('error')}"))


class LiveCard(Static):
    """A plugin's stream (push_stream), redrawn in place as new payloads arrive."""

    DEFAULT_CSS = """
    LiveCard { border: round $accent; height: auto; margin: 0 0 0 2; }
    """

    def show(self, renderer: str | None, payload: Any, topic: str) -> None:
        self.border_title = topic
        self.update(render(renderer, payload))
