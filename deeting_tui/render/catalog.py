"""The catalog: renderer names to faces, and ``render``, the one call the front ends make.

``render`` never raises. It returns a ``Card``, a Rich renderable that builds its face when Rich
draws it, at the width it is actually given, and draws the JSON view with a one-line note if the
face (or Rich, drawing it) fails on the data. So a Textual ``Static`` that is resized redraws the
card for the new width, and a plugin's odd data costs a pretty card, never the screen.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.measure import Measurement
from rich.segment import Segment
from rich.text import Text

from deeting_tui.resources import core_renderers_dir

from .apps import app_face
from .base import PayloadError, clean
from .basic import error_face, markdown_face, notice_face, progress_face, text_face
from .charts import chart_face
from .jsonview import fallback, json_view, unknown
from .search import search_face
from .tables import key_value_face, table_face
from .weather import weather_face

#: The core renderers' folders (schema.json and example.json each), in a
#: checkout or inside an installed wheel; the kernel's PayloadSchemas reads the same place.
RENDERERS_DIR = core_renderers_dir()

#: A face: the payload and the width in cells to a Rich renderable. Pure: no I/O, no clock.
Draw = Callable[[Any, int], RenderableType]


@dataclass(frozen=True)
class Face:
    """One renderer's terminal face, and where its schema and example live."""

    name: str
    draw: Draw
    summary: str

    @property
    def folder(self) -> Path:
        return RENDERERS_DIR / self.name


FACES: Mapping[str, Face] = MappingProxyType(
    {
        face.name: face
        for face in (
            Face("text", text_face, "plain text, nothing interpreted"),
            Face("markdown", markdown_face, "Markdown: headings, lists, code, links"),
            Face("table", table_face, "rows under column headings"),
            Face("key-value", key_value_face, "one line per key and value"),
            Face("weather-cards", weather_face, "current weather and a daily forecast"),
            Face("search-cards", search_face, "search results: title, address, snippet"),
            Face("chart", chart_face, "line, area, bar, candlestick or sparkline chart"),
            Face("progress", progress_face, "a progress bar with a message"),
            Face("error", error_face, "what failed and what to do"),
            Face("notice", notice_face, "a one-line notice (a timer rang)"),
            Face("mcp-app", app_face, "an MCP server's interactive app (opens in the browser)"),
        )
    }
)

#: Width a card is built at when neither the caller nor Rich says otherwise.
DEFAULT_WIDTH = 80


def names() -> list[str]:
    """The renderer names this catalog draws, sorted."""
    return sorted(FACES)


def face(renderer: str) -> Face | None:
    """The face for ``renderer``, or None when the catalog has none (the JSON view draws it)."""
    return FACES.get(renderer)


def render(
    renderer: str | None, data: Any, *, text: str | None = None, width: int | None = None
) -> RenderableType:
    """A renderable for a plugin's ``data`` as ``renderer`` draws it; never raises.

    No data draws ``text`` (a plugin that only said something), or a quiet "(no data)". An
    unknown or missing renderer draws the JSON view. ``width`` caps the card's width in cells;
    without it the card takes the width Rich offers when drawing it."""
    if data is None:
        return Text(clean(text)) if text else Text("(no data)", style="dim italic")
    if not renderer or not isinstance(renderer, str):  # callers outside mypy may pass anything
        return Card(None, data, width)
    return Card(face(renderer) or renderer, data, width)


class Card:
    """A face bound to its data, built at draw time and guarded: any exception while building
    or drawing it turns into the JSON view under a note. ``build`` is the same, for callers
    that want the plain renderable (at a known width)."""

    def __init__(self, drawer: Face | str | None, data: Any, width: int | None = None) -> None:
        self.drawer = drawer
        self.data = data
        self.width = width

    @property
    def renderer(self) -> str | None:
        return self.drawer.name if isinstance(self.drawer, Face) else self.drawer

    def build(self, width: int | None = None) -> RenderableType:
        """The face's renderable at ``width``, or the fallback if the face rejects the data."""
        width = max(1, width or self.width or DEFAULT_WIDTH)
        if not isinstance(self.drawer, Face):
            if self.drawer is None:
                return json_view(self.data, width)
            return unknown(self.drawer, self.data, width)
        try:
            return self.drawer.draw(self.data, width)
        except Exception as exc:  # a plugin's data must not break the screen
            return fallback(self.drawer.name, self.data, _reason(exc), width)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = min(self.width or options.max_width, options.max_width)
        inner = options.update(width=width, height=None)
        try:
            lines = console.render_lines(self.build(width), inner, pad=False)
        except Exception as exc:  # Rich itself failed on what the face built
            note = fallback(self.renderer or "json", self.data, _reason(exc), width)
            lines = console.render_lines(note, inner, pad=False)
        for line in lines:
            yield from line
            yield Segment.line()

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        width = min(self.width or options.max_width, options.max_width)
        try:
            measured = Measurement.get(console, options.update_width(width), self.build(width))
        except Exception:  # measuring is a hint; drawing will show the problem
            return Measurement(1, width)
        return measured.clamp(1, width)


def _reason(exc: Exception) -> str:
    """An exception as the short clause after "could not draw this:"."""
    message = str(exc).splitlines()[0] if str(exc) else ""
    return message if isinstance(exc, PayloadError) else f"{type(exc).__name__}: {message}"
