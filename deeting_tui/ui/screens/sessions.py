"""Sessions: the stored conversations, newest first; open one, rename it, or delete it
(confirmed). Each row is one line that fits the terminal: the title, else the first message,
cut with an ellipsis at whatever width is left after the time and the event count; under the
table, the highlighted session's id and its whole title or first message, wrapped."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from deeting_tui.kernel.sessions.database import SessionStoreError
from deeting_tui.kernel.sessions.encoding import TITLE_MAX, clean_title
from deeting_tui.terminal_text import one_line

from ..host import ChatHost
from .confirm import ConfirmDialog
from .rename import RenameDialog

TIME_FORMAT = "%Y-%m-%d %H:%M"
CURRENT = " ●"
# Each column has one cell of padding on each side, and the table keeps room for its scrollbar.
_PADDING = 2
_SCROLLBAR = 2
_MIN_TEXT = 12


@dataclass(frozen=True, slots=True)
class _Row:
    id: str
    updated: float
    events: int
    title: str | None
    first: str | None
    first_cut: bool = False  # the first message is longer than a title: ``first`` ends early


class SessionList(Screen[str | None]):
    """Dismisses with the id of the session to open, or None."""

    SUB_TITLE = "sessions, newest first"
    BINDINGS = [
        Binding(
            "enter",
            "open",
            "Open",
            id="sessions.open",
            tooltip="Continue this session",
            priority=True,  # before the table's own Enter, so the footer shows it
        ),
        Binding(
            "r",
            "rename",
            "Rename",
            id="sessions.rename",
            tooltip="Give the session a title (empty: show its first message again)",
        ),
        Binding(
            "x,delete",  # the footer names the first key: x, as the README says
            "delete",
            "Delete",
            id="sessions.delete",
            tooltip="Delete the session and its history (asks first)",
        ),
        Binding("escape", "dismiss_none", "Back", id="sessions.back", tooltip="Back to the chat"),
    ]
    DEFAULT_CSS = """
    SessionList DataTable { height: 1fr; scrollbar-gutter: stable; }
    SessionList #detail {
        height: auto; max-height: 6; padding: 0 1; border-top: solid $accent;
        color: $text-muted;
    }
    """

    def __init__(self) -> None:
        super().__init__()
        self._rows: list[_Row] = []
        self._width = 0  # the width the rows were cut for

    def compose(self) -> ComposeResult:
        yield Header()
        yield DataTable(id="sessions", cursor_type="row", zebra_stripes=True)
        yield Static(id="detail")
        yield Footer()

    @property
    def deeting(self) -> ChatHost:
        # Only the Deeting app pushes this screen (see host.py: the app imports the screens,
        # not the reverse).
        return cast(ChatHost, self.app)

    def on_mount(self) -> None:
        self.refresh_table()
        self.query_one("#sessions", DataTable).focus()

    def on_resize(self) -> None:
        if self.size.width != self._width:
            self._fill(self._selected())

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("open", "rename", "delete") and not self._rows:
            return None  # shown, but disabled: there is no session to act on
        return True

    # -- the table ---------------------------------------------------------------------------

    def refresh_table(self) -> None:
        """Read the sessions again, and stay on the same row where it still exists."""
        selected = self._selected()
        store = self.deeting.kernel.sessions
        rows = []
        for info in store.list_sessions(limit=200):
            first, cut = None, False
            if info.title is None:
                # Read past the title's length, to know whether the label is cut (whitespace
                # runs shrink to one space on a label).
                text = store.first_message(info.id, chars=4 * TITLE_MAX)
                first = clean_title(text)
                cut = text is not None and len(one_line(text)) > TITLE_MAX
            rows.append(_Row(info.id, info.updated, info.event_count, info.title, first, cut))
        self._rows = rows
        self._fill(selected)
        self.refresh_bindings()

    def _fill(self, selected: str | None) -> None:
        """Draw the rows at the current width (cheap: no store reads)."""
        table = self.query_one("#sessions", DataTable)
        index = table.cursor_row
        table.clear(columns=True)
        changed = [time.strftime(TIME_FORMAT, time.localtime(row.updated)) for row in self._rows]
        counts = [str(row.events) for row in self._rows]
        time_width = max([len("changed"), *map(len, changed)])
        count_width = max([len("events"), *map(len, counts)])
        width = self._width = self.size.width or self.app.size.width
        text_width = max(_MIN_TEXT, width - time_width - count_width - 3 * _PADDING - _SCROLLBAR)
        # Fixed widths: auto widths are measured later (on idle), so a table refilled on a
        # resize could be drawn once with the header's widths and keep those lines.
        table.add_column("changed", width=time_width, key="changed")
        table.add_column(Text("events", justify="right"), width=count_width, key="events")
        table.add_column("title / first message", width=text_width, key="text")
        for row, when, count in zip(self._rows, changed, counts, strict=True):
            table.add_row(
                when,
                Text(count, justify="right"),
                self._label(row, text_width),
                key=row.id,
            )
        if selected is not None and selected in table.rows:
            table.move_cursor(row=table.get_row_index(selected), animate=False)
        elif table.row_count:
            table.move_cursor(row=min(index, table.row_count - 1), animate=False)
        self._show_detail()

    @on(DataTable.RowHighlighted)
    def _show_detail(self) -> None:
        """The highlighted session whole: the row may have cut its words to the width."""
        detail = self.query_one("#detail", Static)
        session_id = self._selected()
        row = next((r for r in self._rows if r.id == session_id), None)
        detail.display = row is not None
        if row is not None:
            words = clean_title(row.title) if row.title is not None else row.first
            more = "… (Enter opens it whole)" if row.title is None and row.first_cut else ""
            detail.update(Text(f"{row.id} · {words or '(empty)'}{more}"))

    def _label(self, row: _Row, width: int) -> Text:
        if row.title is not None:  # cleaned when stored; again here for older stores
            label = Text(clean_title(row.title) or "")
        elif row.first is not None:
            label = Text(row.first, style="italic")
        else:
            label = Text("(empty)", style="dim italic")
        marker = CURRENT if row.id == self.deeting.session_id else ""
        label.truncate(width - len(marker), overflow="ellipsis")
        return label.append(marker)

    def _selected(self) -> str | None:
        table = self.query_one("#sessions", DataTable)
        if table.row_count == 0:
            return None
        return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    # -- actions -----------------------------------------------------------------------------

    def action_open(self) -> None:
        self.dismiss(self._selected())

    @on(DataTable.RowSelected)
    def _row_chosen(self, event: DataTable.RowSelected) -> None:
        self.dismiss(str(event.row_key.value))

    def action_dismiss_none(self) -> None:
        self.dismiss(None)

    def action_rename(self) -> None:
        session_id = self._selected()
        if session_id is None:
            return
        current = next((row.title for row in self._rows if row.id == session_id), None)

        def answered(title: str | None) -> None:
            if title is None:  # cancelled
                return
            self._change(lambda: self.deeting.kernel.sessions.rename(session_id, title or None))

        self.app.push_screen(RenameDialog(session_id, current), answered)

    def action_delete(self) -> None:
        session_id = self._selected()
        if session_id is None:
            return

        def answered(yes: bool | None) -> None:
            if not yes:
                return
            if self._change(lambda: self.deeting.kernel.sessions.delete(session_id)):
                self.notify(f"deleted session {session_id}")

        question = f"Delete session {session_id} and everything in it? This cannot be undone."
        self.app.push_screen(ConfirmDialog(question), answered)

    def _change(self, change: Callable[[], None]) -> bool:
        """Run one store change; a failure (gone meanwhile, store broken) is a notice. The
        table is read again either way."""
        try:
            change()
        except SessionStoreError as exc:
            self.notify(str(exc), severity="error", timeout=10)
            ok = False
        else:
            ok = True
        self.refresh_table()
        return ok
