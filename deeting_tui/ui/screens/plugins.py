"""The plugin manager: every installed plugin with its state and permissions, and everything
about the highlighted one; enable, disable, grant, revoke, install and uninstall without leaving
the chat. All decisions are the kernel's plugin service (kernel/plugins.py); this screen renders
it and asks the user where consent is needed. Modals do the multi-step work (grants.py, install.py).

Cells are ``Text`` of neutralised strings (a ``str`` cell would be read as markup), and every
notification goes through ``DeetingApp.notify``, which neutralises it: an error may quote the
plugin."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header

from deeting_tui.errors import DeetingError
from deeting_tui.kernel.plugins import InstallReport, PluginService
from deeting_tui.plugin.scopes import Scope
from deeting_tui.terminal_text import one_line

from ..hints import chat_error
from .confirm import ConfirmDialog
from .grants import GrantsDialog
from .install import InstallDialog, install_summary
from .permission import PermissionDialog
from .plugin_details import AVAILABLE, AVAILABLE_STYLE, STATE_STYLE, PluginDetails
from .plugin_table import PluginTable, Row

if TYPE_CHECKING:
    from deeting_tui.kernel.kernel import Kernel

log = logging.getLogger("deeting.ui")

POLL_SECONDS = 1.0  # how often a crash, a restart or new log lines show up unasked
FOR_A_PLUGIN = {
    "enable",
    "disable",
    "grants",
    "upgrade",
    "no_upgrade",
    "uninstall",
}  # need a plugin


class PluginManager(Screen[None]):
    CSS_PATH = "plugins.tcss"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (140, "-wide")]  # side by side when wide
    BINDINGS = [
        Binding(
            "e", "enable", "Enable", id="plugins.enable", tooltip="Grant what it asks, start it"
        ),
        Binding("d", "disable", "Disable", id="plugins.disable", tooltip="Stop its worker"),
        Binding(
            "g",
            "grants",
            "Grants",  # short: the footer names up to seven keys in 80 columns
            id="plugins.grants",
            tooltip="Grant or revoke single permissions",
        ),
        Binding(
            "i",
            "install",
            "Install",
            id="plugins.install",
            tooltip="Install a plugin from a folder or a .zip",
        ),
        Binding(
            "u",
            "upgrade",
            "Upgrade",
            id="plugins.upgrade",
            tooltip="Install the newest version from the registry; the chat keeps running",
        ),
        # The same key when there is nothing newer: not in the footer, but never silent.
        Binding("u", "no_upgrade", "Upgrade", id="plugins.no_upgrade", show=False),
        Binding(
            "x,delete",
            "uninstall",
            "Uninstall",
            id="plugins.uninstall",
            tooltip="Remove its code, data, cache, log and grants",
        ),
        Binding(
            "r",
            "reload",
            "Refresh",
            id="plugins.refresh",
            tooltip="Re-read states, details and the log",
            show=False,
        ),
        Binding("escape", "back", "Back", id="plugins.back", tooltip="Back to the chat"),
    ]

    def __init__(self, kernel: Kernel) -> None:
        super().__init__()
        self.kernel = kernel
        self.plugins: PluginService = kernel.plugins
        self.busy = False  # a lifecycle step is running: no second one on top of it
        self._seen: Any = None  # what the table last showed, to redraw only on change
        self.updates: dict[str, str] = {}  # plugin → newer version in the synced registry
        self.available: set[str] = set()  # bundled plugins not installed (rows too)
        self._width = 0  # the table width the rows were laid out for

    def compose(self) -> ComposeResult:
        yield Header()
        with Container(id="body"):
            yield PluginTable(
                self.table_resized, id="plugins", cursor_type="row", zebra_stripes=True
            )
            yield PluginDetails(self.kernel, id="details")
        yield Footer(compact=True)  # with an upgrade on offer, seven keys: all in 80 columns

    def on_mount(self) -> None:
        table = self.query_one("#plugins", DataTable)
        self.refresh_table()
        table.focus()
        self.set_interval(POLL_SECONDS, self._poll)

    # -- what is shown -----------------------------------------------------------------------

    def refresh_table(self, select: str | None = None) -> None:
        """Redraw every row from the kernel; the cursor stays on (or moves to) a plugin."""
        table = self.query_one("#plugins", PluginTable)
        selected = select or self._selected()
        self.updates = available_updates(self.kernel)
        rows: list[Row] = []
        for info in self.plugins.all():
            name, version = Text(one_line(info.name)), Text(one_line(info.version))
            state_text = Text(info.state, style=STATE_STYLE[info.state])
            if info.spec is None:  # a damaged copy: listed, so it can be uninstalled
                rows.append((info.name, name, version, state_text, Text("?")))
                continue
            # One scope a line: a narrow column then folds only a scope longer than itself.
            perms = Text(",\n".join(one_line(str(s)) for s in info.permissions) or "none")
            if info.missing:
                perms = Text(",\n").join(
                    Text(one_line(str(s)), style="yellow" if s in info.missing else "")
                    for s in info.permissions
                )
            if info.name in self.updates:
                version.append(f" → {one_line(self.updates[info.name])}", style="bold cyan")
            rows.append((info.name, name, version, state_text, perms))
        # The plugins deeting carries that are not installed: one key from installed.
        self.available = {plugin.name for plugin in self.plugins.available()}
        for plugin in self.plugins.available():
            perms = Text(",\n".join(one_line(p) for p in plugin.permissions) or "none")
            rows.append(
                (
                    plugin.name,
                    Text(one_line(plugin.name)),
                    Text(one_line(plugin.version)),
                    Text(AVAILABLE, style=AVAILABLE_STYLE),
                    perms,
                )
            )
        self._width = table.fill(rows, table.size.width or self.app.size.width)
        if selected is not None and selected in table.rows:
            table.move_cursor(row=table.get_row_index(selected))
        self._seen = self._snapshot()
        self._show_details()

    def table_resized(self, width: int) -> None:
        if width != self._width:
            self.refresh_table()

    @on(DataTable.RowHighlighted)
    def _show_details(self) -> None:
        self.query_one("#details", PluginDetails).show(self._selected())
        self.refresh_bindings()

    def _selected(self) -> str | None:
        table = self.query_one_optional("#plugins", DataTable)
        if table is None or table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return str(key.value)

    def _snapshot(self) -> Any:
        """Cheap fingerprint of everything the table shows (no manifest is read)."""
        return self.plugins.fingerprint()

    def _poll(self) -> None:
        """Catch what happens behind the screen's back: a crash loop, a CLI in another
        terminal, new log lines."""
        if self.busy:
            return
        if self._snapshot() != self._seen:
            self.refresh_table()
        else:
            self.query_one("#details", PluginDetails).refresh_log()

    def action_reload(self) -> None:
        self.query_one("#details", PluginDetails).name_shown = None  # re-read it all
        self.refresh_table()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Hide what does not apply to the highlighted plugin; grey out all changes while one
        is running."""
        if action in ("install", "back"):
            return None if self.busy else True
        if action not in FOR_A_PLUGIN:
            return True
        name = self._selected()
        if name is None:
            return False
        if name in self.available:  # e (or Enter) installs it; nothing else applies yet
            return (None if self.busy else True) if action == "enable" else False
        running = self.plugins.running(name)
        if (action == "enable" and running) or (action == "disable" and not running):
            return False
        if action == "upgrade" and name not in self.updates:
            return False
        if action == "no_upgrade":
            return name not in self.updates
        return None if self.busy else True

    # -- lifecycle ---------------------------------------------------------------------------

    @asynccontextmanager
    async def _working(self) -> AsyncIterator[None]:
        """One lifecycle step at a time; its error becomes a notification, never a crash."""
        self.busy = True
        self.refresh_bindings()
        try:
            yield
        except DeetingError as exc:
            self.notify(
                chat_error(exc, on_plugin_screen=True), severity="error", timeout=10, markup=False
            )
        except OSError as exc:
            self.notify(
                f"{exc} — check the disk space and the permissions of {self.kernel.paths.data_dir}",
                severity="error",
                markup=False,
            )
        except Exception as exc:  # a bug: say so, keep the app, leave the trace in the log
            log.exception("plugin manager")
            self.notify(f"unexpected error: {exc!r}", severity="error", markup=False)
        finally:
            self.busy = False
            if self.is_attached:
                self.refresh_table()

    @on(DataTable.RowSelected)
    def _row_chosen(self) -> None:
        """Enter on an available plugin installs it (as e does)."""
        if self._selected() in self.available and not self.busy:
            self.action_enable()

    @work(group="plugins", exit_on_error=False)
    async def action_enable(self) -> None:
        name = self._selected()
        if name is None:
            return
        if name in self.available:
            await self._install_available(name)
            return
        async with self._working():
            await self.plugins.enable(name, ask_all=self._enable_consent)
            self.notify(f"enabled {name}", markup=False)

    @work(group="plugins", exit_on_error=False)
    async def action_disable(self) -> None:
        name = self._selected()
        if name is None or not self.plugins.running(name):
            return
        async with self._working():
            await self.plugins.disable(name)
            self.notify(f"disabled {name}", markup=False)

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_grants(self) -> None:
        name = self._selected()
        if name is None:
            return
        try:
            self.plugins.spec(name)  # a damaged copy has no scopes to show
        except DeetingError as exc:
            self.notify(
                chat_error(exc, on_plugin_screen=True), severity="error", timeout=10, markup=False
            )
            return
        self.app.push_screen(GrantsDialog(self.kernel, name), lambda _: self.refresh_table())

    @work(group="plugins", exit_on_error=False)
    async def action_uninstall(self) -> None:
        name = self._selected()
        if name is None:
            return
        async with self._working():
            version = self.plugins.info(name).version
            question = (
                f"Uninstall {name} {version}? Its code, data, cache, log and permissions "
                "are removed."
            )
            if not await self.app.push_screen_wait(ConfirmDialog(question)):
                return
            record = await self.plugins.uninstall(name)
            self.notify(
                f"uninstalled {record.name} {record.version} (code, data, cache removed)",
                markup=False,
            )

    @work(group="plugins", exit_on_error=False)
    async def action_upgrade(self) -> None:
        name = self._selected()
        if name is None or name not in self.updates:
            return
        async with self._working():
            # The service upgrades through the kernel, which tells every front end (plugin_notice).
            report = await self.plugins.upgrade(name, ask_all=self._upgrade_consent)
            if report is not None:
                how = "without a pause" if report.hot else "(it was not running)"
                self.notify(f"upgraded {name} {report.old} → {report.new} {how}", markup=False)

    def action_no_upgrade(self) -> None:
        name = self._selected()
        if name is None:
            return
        current = f" {self.plugins.info(name).version}" if name in self.plugins.names() else ""
        self.notify(
            f"no newer version of {name}{current} in the synced registry — "
            "run `deeting registry sync` to fetch the latest list, then press u again",
            markup=False,
        )

    async def _install_available(self, name: str) -> None:
        """Install a plugin deeting carries: verified as a download is, through the consent
        dialog for what it asks."""
        async with self._working():
            report = await self.plugins.install(name, ask_all=self._install_consent)
            self.available.discard(name)
            info = self.plugins.info(name)
            message, warn = install_summary(report, info, list(info.missing))
            self.notify(
                message, severity="warning" if warn else "information", timeout=10, markup=False
            )

    async def _install_consent(self, name: str, scopes: list[Scope]) -> list[Scope]:
        intro = "Deny installs it without starting it; grant later with g."
        allowed = await self.app.push_screen_wait(PermissionDialog(name, scopes, intro=intro))
        return scopes if allowed else []

    async def _enable_consent(self, name: str, scopes: list[Scope]) -> list[Scope]:
        allowed = await self.app.push_screen_wait(PermissionDialog(name, scopes))
        return scopes if allowed else []

    async def _upgrade_consent(self, name: str, scopes: list[Scope]) -> list[Scope]:
        intro = "The new version asks for more. Deny keeps the current version running."
        allowed = await self.app.push_screen_wait(PermissionDialog(name, scopes, intro=intro))
        return scopes if allowed else []

    def action_install(self) -> None:
        self.app.push_screen(InstallDialog(self.kernel), self._installed)

    def _installed(self, report: InstallReport | None) -> None:
        if report is None:
            return
        name = report.spec.name
        info = self.plugins.info(name)
        message, warn = install_summary(report, info, list(info.missing))
        self.notify(
            message, severity="warning" if warn else "information", timeout=10, markup=False
        )
        self.refresh_table(select=name)


def available_updates(kernel: Kernel) -> dict[str, str]:
    """Newer versions in the last synced registry (none when there is none, or it no longer
    verifies: the plugin manager then simply offers no upgrade)."""
    return kernel.plugins.updates()
