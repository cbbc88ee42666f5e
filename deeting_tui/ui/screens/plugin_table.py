"""The plugin manager's table: one row per plugin, laid out to the width it is given.

Apart from the screen (``plugins.py``) because the layout is its own problem: fixed columns
for name, version and state, the permissions last and wrapped over as many lines as they
need, so no scope is cut or pushed out of sight, and laid out again whenever the width
changes. The table knows nothing of the screen: it calls back with its new width.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable

__all__ = ["PluginTable", "Row"]

#: Each column has one cell of padding on each side; the table keeps room for its scrollbar.
CELL_PADDING = 2
SCROLLBAR = 2
MIN_PERMISSIONS = 16

#: A row of the plugin table: its key (the plugin's name), then its four cells.
Row = tuple[str, Text, Text, Text, Text]


class PluginTable(DataTable[Text]):
    """The plugins, one row each. Home and End go to the first and the last plugin (a
    DataTable's own scroll sideways, which a table that fits its width never needs)."""

    BINDINGS = [
        Binding("home", "scroll_top", "First", show=False),
        Binding("end", "scroll_bottom", "Last", show=False),
    ]

    def __init__(self, on_width: Callable[[int], None], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._on_width = on_width

    def on_resize(self) -> None:
        """Lay the rows out again for the new width (the terminal, or narrow ↔ wide)."""
        self._on_width(self.size.width)

    def fill(self, rows: list[Row], width: int) -> int:
        """The rows at ``width``: fixed columns, the permissions last, wrapped over
        as many lines as they need, so no scope is cut or pushed out of sight to the right.
        (Widths are set, not measured later on idle, so a resize never keeps stale lines.)
        Returns the width laid out for."""
        self.clear(columns=True)
        headers = ("plugin", "version", "state")
        fixed = [(name, version, state) for _key, name, version, state, _perms in rows]
        widths = [max([len(h), *(c[i].cell_len for c in fixed)]) for i, h in enumerate(headers)]
        left = width - sum(widths) - 4 * CELL_PADDING - SCROLLBAR
        perms_width = max(MIN_PERMISSIONS, left)
        for header, column_width in zip(headers, widths, strict=True):
            self.add_column(header, width=column_width, key=header)
        self.add_column("permissions", width=perms_width, key="permissions")
        for key, *cells in rows:
            self.add_row(*cells, height=None, key=key)
        return width
