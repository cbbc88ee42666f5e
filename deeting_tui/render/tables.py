"""The ``table`` and ``key-value`` faces: records and pairs, the shape most tool results have.

Both accept the forms plugins reach for first (rows as lists or as objects; pairs as a list, an
object under ``items``, or simply the payload object itself), so a plugin author rarely has to
reshape data for the card. Too many columns for the width turn the table into stacked records.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from .base import (
    MAX_ROWS,
    PayloadError,
    clean,
    field,
    kind,
    mapping,
    more,
    number,
    required,
    scalar_text,
)

#: The longest word a column is expected to show whole; longer words may be cut.
LONG_WORD = 16


def table_face(data: Any, width: int) -> RenderableType:
    """``{columns?, rows, title?, caption?}``: rows are lists (matched to ``columns`` by
    position) or objects (matched by key; without ``columns`` their keys, first seen first)."""
    payload = mapping(data, "table")
    rows = required(payload, "rows", (list, tuple), "")
    title = field(payload, "title", str, "")
    caption = field(payload, "caption", str, "")
    columns = _columns(field(payload, "columns", (list, tuple), ""), rows)
    cells = [_cells(row, columns, index) for index, row in enumerate(rows[:MAX_ROWS])]
    if rows and len(columns) > 1 and _least_width(columns, cells) > width:
        return _records(columns, cells, title, len(rows))
    table = Table(
        title=Text(clean(title, 200), style="bold") if title else None,
        caption=Text(clean(caption, 400), style="dim") if caption else None,
        box=box.ROUNDED if width >= 30 else box.SIMPLE,
        show_header=any(columns),
        header_style="bold",
        expand=False,
    )
    for position, name in enumerate(columns):
        numeric = bool(rows) and all(
            number(_raw(row, columns, position)) is not None or _raw(row, columns, position) is None
            for row in rows[:MAX_ROWS]
        )
        table.add_column(Text(clean(name, 100)), justify="right" if numeric else "left")
    if not columns:  # an empty payload: still a visible card
        table.add_column("")
    for row_cells in cells:
        table.add_row(*row_cells)
    parts: list[RenderableType] = [table]
    if not rows:
        parts.append(Text("(no rows)", style="dim italic"))
    elif len(rows) > MAX_ROWS:
        parts.append(more(len(rows) - MAX_ROWS, "row"))
    return Group(*parts) if len(parts) > 1 else table


def key_value_face(data: Any, width: int) -> RenderableType:
    """``{items: [{key, value}] | {key: value}, title?}``, or any object: one line per pair.

    Without ``items`` every key of the payload is a pair (``{"expression": "2+2", "result":
    4}`` reads as two lines), so ``title`` is a title only next to ``items``."""
    payload = mapping(data, "key-value")
    if "items" in payload:
        title = field(payload, "title", str, "")
        pairs = _pairs(payload["items"])
    else:
        title, pairs = None, list(payload.items())
    key_width = max([len(clean(str(k), 40)) for k, _ in pairs[:MAX_ROWS]] or [1])
    grid = Table.grid(padding=(0, 2))
    grid.add_column(
        style="bold cyan", no_wrap=width >= 40, max_width=max(6, min(key_width, width // 3))
    )
    grid.add_column(ratio=1)
    for key, value in pairs[:MAX_ROWS]:
        grid.add_row(Text(clean(str(key), 200)), scalar_text(value))
    parts: list[RenderableType] = []
    if title:
        parts.append(Text(clean(title, 200), style="bold"))
    parts.append(grid if pairs else Text("(nothing to show)", style="dim italic"))
    if len(pairs) > MAX_ROWS:
        parts.append(more(len(pairs) - MAX_ROWS, "item"))
    return Group(*parts) if len(parts) > 1 else parts[0]


def _columns(given: Sequence[Any] | None, rows: Sequence[Any]) -> list[str]:
    """Column names: the given ones (stringified), then any object keys or list positions the
    rows have beyond them, so no cell is silently dropped."""
    names = [clean(str(name), 200) if name is not None else "" for name in (given or [])]
    seen = set(names)
    for row in rows[:MAX_ROWS]:
        if isinstance(row, Mapping):
            for key in row:
                if str(key) not in seen:
                    seen.add(str(key))
                    names.append(str(key))
        elif isinstance(row, list | tuple) and len(row) > len(names):
            names.extend("" for _ in range(len(row) - len(names)))
    return names


def _least_width(columns: Sequence[str], cells: Sequence[Sequence[Text]]) -> int:
    """About the narrowest the bordered table can be without cutting short words: each column as
    wide as its longest word (up to LONG_WORD) or its heading (up to 10), plus borders."""
    total = 1
    for position, name in enumerate(columns):
        words = [len(word) for row in cells for word in row[position].plain.split()]
        total += max(min(len(name), 10), min(max(words, default=1), LONG_WORD)) + 3
    return total


def _raw(row: Any, columns: Sequence[str], position: int) -> Any:
    if isinstance(row, Mapping):
        return row.get(columns[position])
    return row[position] if position < len(row) else None


def _cells(row: Any, columns: Sequence[str], index: int) -> list[Text]:
    if not isinstance(row, Mapping | list | tuple):
        raise PayloadError(f"rows/{index}: expected a list or an object, not {kind(row)}")
    cells = [scalar_text(_raw(row, columns, position)) for position in range(len(columns))]
    if not isinstance(row, Mapping) and len(row) < len(columns):  # short rows: blanks, not dashes
        for position in range(len(row), len(columns)):
            cells[position] = Text("")
    return cells


def _records(columns: list[str], cells: list[list[Text]], title: str | None, total: int) -> Group:
    """The narrow form of a table: each row as ``column  value`` lines, rows split by rules."""
    parts: list[RenderableType] = []
    if title:
        parts.append(Text(clean(title, 200), style="bold"))
    for index, row_cells in enumerate(cells):
        if index:
            parts.append(Rule(style="dim"))
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="bold cyan", max_width=12)
        grid.add_column(ratio=1)
        for name, cell in zip(columns, row_cells, strict=True):
            grid.add_row(Text(name or "·"), cell)
        parts.append(grid)
    if total > len(cells):
        parts.append(more(total - len(cells), "row"))
    return Group(*parts)


def _pairs(items: Any) -> list[tuple[Any, Any]]:
    if isinstance(items, Mapping):
        return list(items.items())
    if not isinstance(items, list | tuple):
        raise PayloadError(
            f"items: expected a list of {{key, value}} or an object, not {kind(items)}"
        )
    pairs: list[tuple[Any, Any]] = []
    for index, item in enumerate(items):
        if not isinstance(item, Mapping) or "key" not in item:
            raise PayloadError(f"items/{index}: expected an object with a key, not {kind(item)}")
        pairs.append((item["key"], item.get("value")))
    return pairs
