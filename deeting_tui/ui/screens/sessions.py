"""Sessions: the stored conversations, newest first; open one, or delete it (confirmed)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header

from .confirm import ConfirmDialog

if TYPE_CHECKING:
    from ..app import DeetingApp


class SessionList(Screen[str | None]):
    """Dismisses with the id of the session to open, or None."""

    BINDINGS = [
        Binding("enter", "open", "Open", id="sessions.open"),
        Binding("delete,x", "delete", "Delete", id="sessions.delete"),
        Binding("escape", "dismiss_none", "Back", id="sessions.back"),
    ]
    DEFAULT_CSS = """
    SessionList DataTable { height: 1fr; }
    """

    def compose(self) -> ComposeResult:
        yield Header()
        yield DataTable(id="sessions", cursor_type="row", zebra_stripes=True)
        yield Footer()

    @property
    def deeting(self) -> DeetingApp:
        from ..app import DeetingApp

        assert isinstance(self.app, DeetingApp)
        return self.app

    def on_mount(self) -> None:
        table = self.query_one("#sessions", DataTable)
        table.add_columns("changed", "events", "first message")
        self.refresh_table()
        table.focus()

    def refresh_table(self) -> None:
        table = self.query_one("#sessions", DataTable)
        table.clear()
        store = self.deeting.kernel.sessions
        for info in store.list_sessions(limit=200):
            first = store.events(info.id, kinds=["user"])[:1]
            title = info.title or (first[0].payload.get("text", "") if first else "(empty)")
            changed = time.strftime("%Y-%m-%d %H:%M", time.localtime(info.updated))
            marker = " ●" if info.id == self.deeting.session_id else ""
            table.add_row(changed, str(info.event_count), f"{title[:70]}{marker}", key=info.id)

    def _selected(self) -> str | None:
        table = self.query_one("#sessions", DataTable)
        if table.row_count == 0:
            return None
        return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    def action_open(self) -> None:
        self.dismiss(self._selected())

    @on(DataTable.RowSelected)
    def _row_chosen(self, event: DataTable.RowSelected) -> None:
        self.dismiss(str(event.row_key.value))

    def action_dismiss_none(self) -> None:
        self.dismiss(None)

    def action_delete(self) -> None:
        session_id = self._selected()
        if session_id is None:
            return

        def answered(yes: bool | None) -> None:
            if not yes:
                return
            self.deeting.kernel.sessions.delete(session_id)
            self.notify(f"deleted session {session_id}")
            self.refresh_table()

        question = f"Delete session {session_id} and everything in it? This cannot be undone."
        self.app.push_screen(ConfirmDialog(question), answered)
