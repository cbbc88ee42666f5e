"""The ``mcp-app`` face: an MCP server's interactive app, as the terminal can show it.

The app itself is HTML for a browser (docs/browser.md#mcp-app-cards); here the card says it
is one, shows the call's text result (the same words the model read) and how to open it.
Every string comes from the server and is neutralised like any plugin string.
"""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.text import Text

from .base import MAX_TEXT, PayloadError, clean, field, mapping, required

#: What the card says about opening the app.
HOW_TO_OPEN = "open it in the browser: o on this card, or deeting view"


def app_face(data: Any, width: int) -> RenderableType:
    """``{uri, html, result, …}``: the app's name, the result's text, and how to open it."""
    payload = mapping(data, "mcp-app")
    uri = required(payload, "uri", str, "")
    if not uri.startswith("ui://"):
        raise PayloadError("the 'mcp-app' renderer expects a ui:// resource as its uri")
    required(payload, "html", str, "")
    result = mapping(required(payload, "result", dict, ""), "mcp-app result")
    content = field(result, "content", list, "result")
    words = "\n".join(
        block["text"]
        for block in content or []
        if isinstance(block, dict)
        and block.get("type") == "text"
        and isinstance(block.get("text"), str)
    ).strip()
    head = Text("▣ interactive app ", style="bold cyan")
    head.append(clean(uri, 200), style="dim")
    parts: list[RenderableType] = [head]
    if words:
        parts.append(Text(clean(words, MAX_TEXT)))
    parts.append(Text("→ " + HOW_TO_OPEN, style="dim"))
    if width < 24:  # a frame would leave no room for the words
        return Group(*parts)
    return Panel(Group(*parts), border_style="cyan", box=box.ROUNDED, expand=False)
