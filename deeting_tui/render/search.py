"""The ``search-cards`` face: web or document search results, one short block each.

A result is a numbered title (a terminal hyperlink when the URL is http(s)), the address in
short, and the snippet. Lists of blocks rather than framed panels: ten results must fit a screen.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from rich.console import Group, RenderableType
from rich.style import Style
from rich.table import Table
from rich.text import Text

from deeting_tui.terminal_text import one_line

from .base import PayloadError, clean, field, kind, mapping, more, required

#: Results drawn; search APIs rarely return more, and past this nobody reads on.
MAX_RESULTS = 50
MAX_SNIPPET = 400
_LINK_SCHEMES = ("http", "https")


def search_face(data: Any, width: int) -> RenderableType:
    """``{query?, results: [{title, url?, snippet?, source?, date?}]}``."""
    payload = mapping(data, "search-cards")
    results = required(payload, "results", (list, tuple), "")
    query = field(payload, "query", str, "")
    parts: list[RenderableType] = []
    if query:
        heading = Text("Results for ", style="dim")
        heading.append(clean(query, 200), style="bold")
        parts.append(heading)
    if not results:
        parts.append(Text("No results.", style="dim italic"))
        return Group(*parts)
    grid = Table.grid(padding=(0, 1))
    grid.add_column(justify="right", style="dim", no_wrap=True)
    grid.add_column(ratio=1)
    for index, result in enumerate(results[:MAX_RESULTS]):
        if not isinstance(result, Mapping):
            raise PayloadError(f"results/{index}: expected an object, not {kind(result)}")
        where = f"results/{index}/"
        grid.add_row(Text(f"{index + 1}."), _card(result, where, width))
        if index < min(len(results), MAX_RESULTS) - 1:
            grid.add_row("", "")
    parts.append(grid)
    if len(results) > MAX_RESULTS:
        parts.append(more(len(results) - MAX_RESULTS, "result"))
    return Group(*parts)


def _card(result: Mapping[str, Any], where: str, width: int) -> RenderableType:
    title = clean(required(result, "title", str, where), 300) or "(untitled)"
    url = field(result, "url", str, where)
    snippet = field(result, "snippet", str, where)
    source = field(result, "source", str, where)
    date = field(result, "date", str, where)
    link = _link(url)
    heading = Text(title, style=Style(bold=True, link=link) if link else Style(bold=True))
    lines: list[RenderableType] = [heading]
    meta = Text(style="dim")
    if url:
        meta.append(_short_url(url, max(16, width - 8)), style="green")
    for extra in (source, date):
        if extra:
            meta.append(" · " if meta.plain else "")
            meta.append(clean(extra, 80))
    if meta.plain:
        lines.append(meta)
    if snippet:
        lines.append(Text(clean(one_line(snippet), MAX_SNIPPET)))
    return Group(*lines)


def _link(url: str | None) -> str | None:
    """The URL as a hyperlink target, only for web addresses (no ``file:`` or odd schemes)."""
    if not url:
        return None
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return None
    return clean(url, 2_000) if scheme in _LINK_SCHEMES else None


def _short_url(url: str, limit: int) -> str:
    """``https://www.example.com/a/b?x`` → ``example.com/a/b?x``, cut to ``limit``."""
    text = clean(url, 2_000)
    for prefix in ("https://", "http://"):
        if text.lower().startswith(prefix):
            text = text[len(prefix) :]
            break
    text = text.removeprefix("www.").rstrip("/")
    return text if len(text) <= limit else text[: limit - 1] + "…"
