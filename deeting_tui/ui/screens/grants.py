"""Grant or revoke one permission of one plugin: the TUI's ``deeting plugin grant|revoke``.

Every scope the plugin declares (and any it still holds but no longer declares) is a line in a
selection list, ticked when granted, with its risk coloured and said; what the highlighted one
allows (``explain``) is shown whole under the list (a selection list draws one line an option,
so the words could not wrap there). Ticking asks
for consent with the usual PermissionDialog first; unticking revokes at once, and a running
plugin is stopped, as the CLI does (its sandbox was built with the scope). The list is rebuilt
from the grant store after every change, so it never shows a state the kernel does not hold.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, SelectionList, Static
from textual.widgets.selection_list import Selection

from deeting_tui.errors import DeetingError
from deeting_tui.plugin.scopes import Scope, covers, explain, parse_scope
from deeting_tui.terminal_text import one_line

from ..hints import chat_error
from .permission import PermissionDialog, fit_to_screen, scope_line
from .plugin_details import STATE_STYLE

if TYPE_CHECKING:
    from deeting_tui.kernel.kernel import Kernel


class GrantsDialog(ModalScreen[None]):
    CSS_PATH = "grants.tcss"
    BINDINGS = [
        Binding("escape", "close", "Close", id="grants.close", tooltip="Back to the plugins"),
    ]

    def __init__(self, kernel: Kernel, plugin: str) -> None:
        super().__init__()
        self.kernel = kernel
        self.plugin = plugin
        self._one_at_a_time = asyncio.Lock()

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(Text(one_line(f"Permissions of '{self.plugin}'")), id="title")
            yield Static(id="state")
            yield SelectionList[str](id="scopes")
            yield Static(id="explain")
            yield Static(
                "Space or Enter toggles. Granting asks you first; revoking stops a running "
                "plugin until you grant again.",
                id="note",
            )
            with Horizontal(id="buttons"):
                yield Button("Close (Esc)", variant="primary", id="close")

    def on_mount(self) -> None:
        self.reload()
        self.query_one("#scopes", SelectionList).focus()
        self.call_after_refresh(self._fit)

    def on_resize(self) -> None:
        self.call_after_refresh(self._fit)

    def _fit(self) -> None:
        fit_to_screen(self, self.query_one("#dialog", Vertical), self.query_one("#scopes"))

    def reload(self) -> None:
        """Rebuild the list from the grant store; the highlight stays on the same line."""
        scopes_list: SelectionList[str] = self.query_one("#scopes", SelectionList)
        highlighted = scopes_list.highlighted
        info = self.kernel.plugins.info(self.plugin)
        granted, missing = list(info.granted), info.missing
        rows: list[Selection[str]] = []
        for scope in info.permissions:
            rows.append(Selection(self._prompt(scope, granted), str(scope), scope not in missing))
        for scope in granted:  # held but no longer declared (an upgrade dropped it)
            if scope not in info.permissions:
                prompt = self._prompt(scope, granted).append(" (no longer asked for)", "dim")
                rows.append(Selection(prompt, str(scope), True))
        scopes_list.clear_options()
        scopes_list.add_options(rows)
        if rows:
            scopes_list.highlighted = min(highlighted or 0, len(rows) - 1)
        self._explain(scopes_list.highlighted)
        text = Text.assemble(("state: ", "bold"), (info.state, STATE_STYLE[info.state]))
        if not rows:
            text.append(" — it asks for no permissions: only its own folders", style="dim")
        self.query_one("#state", Static).update(text)

    def _prompt(self, scope: Scope, granted: list[Scope]) -> Text:
        prompt = scope_line(str(scope), explain(scope)[1])
        broader = next((g for g in granted if g != scope and covers(g, scope)), None)
        if scope not in granted and broader is not None:
            prompt.append(one_line(f" (covered by '{broader}')"), style="dim")
        return prompt

    @on(SelectionList.SelectionHighlighted)
    def _highlighted(self, event: SelectionList.SelectionHighlighted[str]) -> None:
        self._explain(event.selection_index)

    def _explain(self, index: int | None) -> None:
        """What the highlighted scope allows, in full words that wrap."""
        scopes_list: SelectionList[str] = self.query_one("#scopes", SelectionList)
        text = Text()
        if index is not None and 0 <= index < scopes_list.option_count:
            value = scopes_list.get_option_at_index(index).value
            text = scope_line(*explain(parse_scope(value)))
        self.query_one("#explain", Static).update(text)
        self.query_one("#explain", Static).display = bool(text)

    @on(SelectionList.SelectionToggled)
    def _toggled(self, event: SelectionList.SelectionToggled[str]) -> None:
        value = event.selection.value
        self._apply(parse_scope(value), value in event.selection_list.selected)

    @work(group="grants", exit_on_error=False)
    async def _apply(self, scope: Scope, grant: bool) -> None:
        async with self._one_at_a_time:
            try:
                if grant:
                    await self._grant(scope)
                else:
                    await self._revoke(scope)
            except DeetingError as exc:
                self.notify(
                    chat_error(exc, on_plugin_screen=True),
                    severity="error",
                    timeout=10,
                    markup=False,
                )
            except OSError as exc:  # the grant store could not be written
                self.notify(str(exc), severity="error", timeout=10, markup=False)
            finally:
                if self.is_attached:
                    self.reload()

    async def _grant(self, scope: Scope) -> None:
        name = self.plugin
        intro = "Deny keeps things as they are."
        if not await self.app.push_screen_wait(PermissionDialog(name, [scope], intro=intro)):
            self.notify(f"did not grant '{scope}' to {name}", markup=False)
            return
        report = await self.kernel.plugins.grant(name, scope)
        message = (
            f"granted '{scope}' to {name}" if report.added else f"{name} already has '{scope}'"
        )
        if report.missing:
            message += " — it still needs: " + ", ".join(str(s) for s in report.missing)
        elif report.enabled:
            message += f" — enabled {name}"
        self.notify(message, markup=False)

    async def _revoke(self, scope: Scope) -> None:
        name = self.plugin
        report = await self.kernel.plugins.revoke(name, scope)
        if not report.revoked:
            broader = [g for g in self.kernel.plugins.granted(name) if covers(g, scope)]
            hint = f": '{broader[0]}' covers it — revoke that instead" if broader else ""
            self.notify(f"{name} did not have '{scope}'{hint}", severity="warning", markup=False)
            return
        message = f"revoked '{scope}' from {name}"
        if report.disabled:
            message += f" — disabled {name} ({report.reason}; grant it again to re-enable)"
        self.notify(message, markup=False)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Leaving mid-change would cancel the worker between the grant store and the loader.
        return None if action == "close" and self._one_at_a_time.locked() else True

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if self.check_action("close", ()):
            self.action_close()

    def action_close(self) -> None:
        self.dismiss(None)
