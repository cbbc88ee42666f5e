"""The view of last resort: data no face claims, or a face could not draw, shown as JSON.

It has to work for anything, because it is what the catalog falls back to: the data is clipped
first (``base.clip``), so a megabyte payload becomes a screenful that still shows its shape.
"""

from __future__ import annotations

import json
from typing import Any

from rich.console import Group, RenderableType
from rich.highlighter import JSONHighlighter
from rich.text import Text

from deeting_tui.terminal_text import one_line

from .base import EMPTY, clean, clip


def json_view(data: Any, width: int = 80) -> RenderableType:
    """``data`` as highlighted JSON, packed to ``width`` the way a person would lay it out
    (short lists on one line, long lists of numbers filled line by line); a plain string as
    plain text."""
    if isinstance(data, str):
        return Text(clean(data)) if data.strip() else EMPTY.copy()
    try:
        text = Text(dumps(clip(data), max(20, width)), overflow="fold")
        JSONHighlighter().highlight(text)
    except Exception:  # the last resort must not fail: show repr instead
        return Text(clean(_safe_repr(data), 2_000))
    return text


def dumps(value: Any, width: int, indent: int = 0, lead: int = 0) -> str:
    """JSON text for ``value`` that keeps each container on one line when it fits in ``width``
    (counting ``indent`` and the ``lead`` characters before it on its line) and breaks it
    open, two spaces deeper, when it does not."""
    flat = json.dumps(value, ensure_ascii=False)
    if not isinstance(value, dict | list) or not value or indent + lead + len(flat) <= width:
        return flat
    inner = " " * (indent + 2)
    if isinstance(value, dict):
        lines = []
        for key, item in value.items():
            prefix = json.dumps(key, ensure_ascii=False) + ": "
            lines.append(inner + prefix + dumps(item, width, indent + 2, len(prefix)))
        return "{\n" + ",\n".join(lines) + "\n" + " " * indent + "}"
    if all(not isinstance(item, dict | list) for item in value):
        lines = _fill([json.dumps(item, ensure_ascii=False) for item in value], width - len(inner))
    else:
        lines = [dumps(item, width, indent + 2) for item in value]
    return "[\n" + ",\n".join(inner + line for line in lines) + "\n" + " " * indent + "]"


def _fill(words: list[str], width: int) -> list[str]:
    """Scalars joined by ", " into lines of at most ``width`` (a long one gets its own line)."""
    lines: list[str] = []
    current = ""
    for word in words:
        if current and len(current) + 2 + len(word) + 1 > width:
            lines.append(current)
            current = word
        else:
            current = f"{current}, {word}" if current else word
    lines.append(current)
    return lines


def fallback(renderer: str, data: Any, reason: str, width: int = 80) -> RenderableType:
    """The raw data under a one-line note saying which renderer gave up and why."""
    reason = clean(one_line(reason), 160) or "unexpected data"
    note = Text(f"⚠ the '{clean(renderer, 64)}' renderer could not draw this: {reason}")
    note.stylize("yellow")
    return Group(note, json_view(data, width))


def unknown(renderer: str, data: Any, width: int = 80) -> RenderableType:
    """Data for a renderer this catalog does not have: the JSON, with a quiet word about it."""
    note = Text(f"no '{clean(renderer, 64)}' renderer here; the raw data:", style="dim italic")
    return Group(note, json_view(data, width))


def _safe_repr(data: Any) -> str:
    try:
        return repr(data)
    except Exception:  # a hostile __repr__ still gets a card
        return f"<{type(data).__name__}>"
