"""The small faces: text, markdown, notice, error and progress.

Each is a pure function ``(data, width) -> renderable``. Plugin strings are never parsed as Rich
markup (``Text(...)``, not ``console.print(str)``), so ``[bold]`` in a note stays literal.
"""

from __future__ import annotations

import math
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.markdown import Markdown
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from .base import EMPTY, PayloadError, clean, field, kind, mapping, required


def text_face(data: Any, width: int) -> RenderableType:
    """``{text}`` (or a bare string): the words, wrapped, nothing interpreted."""
    body = _body(data, "text")
    return Text(clean(body)) if body.strip() else EMPTY.copy()


def markdown_face(data: Any, width: int) -> RenderableType:
    """``{markdown}`` (or a bare string): headings, lists, code and links via Rich's Markdown."""
    body = _body(data, "markdown")
    return Markdown(clean(body), hyperlinks=True) if body.strip() else EMPTY.copy()


_NOTICE_LEVELS = {
    "info": ("\N{INFORMATION SOURCE}", "cyan"),
    "success": ("✓", "green"),
    "warning": ("⚠", "yellow"),
    "error": ("✗", "red"),
}


def notice_face(data: Any, width: int) -> RenderableType:
    """``{text, level?}``: one line that tells the user something happened (a timer rang)."""
    payload = mapping(data, "notice")
    message = required(payload, "text", str, "")
    level = field(payload, "level", str, "") or "info"
    icon, style = _NOTICE_LEVELS.get(level, _NOTICE_LEVELS["info"])
    line = Text(f"{icon} ", style=f"bold {style}")
    line.append(clean(message))
    return line


def error_face(data: Any, width: int) -> RenderableType:
    """``{message, hint?, title?}``: what failed, and what to do about it, in a red frame."""
    payload = mapping(data, "error")
    message = required(payload, "message", str, "")
    hint = field(payload, "hint", str, "")
    title = field(payload, "title", str, "") or "Error"
    body = Text("✗ ", style="bold red")
    body.append(clean(message), style="bold")
    parts: list[RenderableType] = [body]
    if hint:
        parts.append(Text("→ " + clean(hint), style="dim"))
    if width < 24:  # a frame would leave no room for the words
        return Group(*parts)
    return Panel(
        Group(*parts),
        title=Text(clean(title, 60), style="bold red"),
        title_align="left",
        border_style="red",
        box=box.ROUNDED,
        expand=False,
    )


def progress_face(data: Any, width: int) -> RenderableType:
    """``{fraction, message?}``: a bar with a percentage; a null fraction means "busy, amount
    unknown" and draws a still, dashed bar (an animated pulse would make the face impure)."""
    payload = mapping(data, "progress")
    if "fraction" not in payload:
        raise PayloadError("fraction: missing (a number from 0 to 1, or null)")
    fraction = payload["fraction"]
    message = field(payload, "message", str, "")
    if fraction is not None and (
        isinstance(fraction, bool) or not isinstance(fraction, int | float)
    ):
        raise PayloadError(f"fraction: expected a number from 0 to 1 or null, not {kind(fraction)}")
    if fraction is not None and math.isnan(fraction):
        fraction = None
    bar_width = max(4, min(40, width - 8))
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column(no_wrap=True, justify="right")
    if fraction is None:
        grid.add_row(Text("╌" * bar_width, style="dim"), Text(" …", style="dim"))
    else:
        done = min(1.0, max(0.0, float(fraction)))
        bar = ProgressBar(total=1.0, completed=done, width=bar_width)
        grid.add_row(bar, Text(f"{math.floor(done * 100):d}%", style="bold"))
    if not message:
        return grid
    return Group(grid, Text(clean(message), style="dim"))


def _body(data: Any, key: str) -> str:
    """The string a text-like face draws: a bare string, or the object's ``key``."""
    if isinstance(data, str):
        return data
    value: str = required(mapping(data, key), key, str, "")
    return value
