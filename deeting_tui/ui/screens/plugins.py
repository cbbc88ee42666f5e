"""The plugin manager: every installed plugin with its state, permissions and sandbox; enable,
disable and grant without leaving the chat. All decisions are the kernel's (Loader, grants);
this screen shows them and asks the user where consent is needed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from deeting_tui.kernel.loader import PluginError
from deeting_tui.kernel.permissions import missing_scopes
from deeting_tui.sandbox.policy import describe_grants

from .permission import PermissionDialog

if TYPE_CHECKING:
    from deeting_tui.kernel.kernel import Kernel


class PluginManager(Screen[None]):
    CSS_PATH = "plugins.tcss"
    BINDINGS = [
        Binding(
            "e", "enable", "Enable", id="plugins.enable", tooltip="Grant what it asks, start it"
        ),
        Binding("d", "disable", "Disable", id="plugins.disable"),
        Binding("escape", "app.pop_screen", "Back", id="plugins.back"),
    ]

    def __init__(self, kernel: Kernel) -> None:
        super().__init__()
        self.kernel = kernel

    def compose(self) -> ComposeResult:
        yield Header()
        yield DataTable(id="plugins", cursor_type="row", zebra_stripes=True)
        yield Static(id="details")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#plugins", DataTable)
        table.add_columns("plugin", "version", "state", "permissions")
        self.refresh_table()
        table.focus()

    def refresh_table(self) -> None:
        table = self.query_one("#plugins", DataTable)
        selected = self._selected()
        table.clear()
        for record in self.kernel.installed.all():
            spec = self.kernel.loader.spec(record.name)
            granted = self.kernel.grants.granted(record.name)
            missing = missing_scopes(spec.permissions, granted)
            if record.name in self.kernel.loader.runtimes:
                state = "enabled"
            elif missing:
                state = "needs consent"
            elif record.disabled_reason:
                state = "crashed" if "crash" in record.disabled_reason else "disabled"
            else:
                state = "disabled"
            perms = ", ".join(str(s) for s in spec.permissions) or "none"
            table.add_row(record.name, record.version, state, perms, key=record.name)
        if selected is not None and selected in table.rows:
            table.move_cursor(row=table.get_row_index(selected))  # stay on the same plugin
        self._show_details()

    @on(DataTable.RowHighlighted)
    def _show_details(self) -> None:
        name = self._selected()
        details = self.query_one("#details", Static)
        if name is None:
            details.update("No plugins installed — install one with: deeting plugin install PATH")
            return
        spec = self.kernel.loader.spec(name)
        box = describe_grants(self.kernel.grants.granted(name))
        tools = "\n".join(
            f"  /{t.name} — {t.description.strip().splitlines()[0]}" for t in spec.tools
        )
        details.update(
            f"{spec.name} {spec.version} — {spec.description}\n"
            f"sandbox: {box['level']} · network: {box['network']} · files: {box['files']} · "
            f"programs: {box['programs']}\ntools:\n{tools}"
        )

    def _selected(self) -> str | None:
        table = self.query_one("#plugins", DataTable)
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return str(key.value)

    @work(group="plugins", exclusive=True, exit_on_error=False)
    async def action_enable(self) -> None:
        name = self._selected()
        if name is None:
            return
        spec = self.kernel.loader.spec(name)
        missing = missing_scopes(spec.permissions, self.kernel.grants.granted(name))
        if missing:
            if not await self.app.push_screen_wait(PermissionDialog(name, missing)):
                self.notify(f"{name} stays disabled: permissions not granted")
                return
            self.kernel.grants.grant(name, missing)
        try:
            await self.kernel.loader.enable(name)
        except PluginError as exc:
            self.notify(str(exc), severity="error", timeout=10)
        else:
            self.notify(f"enabled {name}")
        self.refresh_table()

    @work(group="plugins", exclusive=True, exit_on_error=False)
    async def action_disable(self) -> None:
        name = self._selected()
        if name is None or name not in self.kernel.loader.runtimes:
            return
        await self.kernel.loader.disable(name)
        self.notify(f"disabled {name}")
        self.refresh_table()
