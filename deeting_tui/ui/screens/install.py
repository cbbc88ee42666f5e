"""Install a plugin from a folder or a zip: the TUI's ``deeting plugin install PATH``.

The dialog owns the whole install: the path (with completion from the folder's entries), a
progress bar fed by the loader's ``on_step``, and consent through the PermissionDialog, asked
once for every scope the plugin declares. Denying still installs the plugin, disabled, as the
CLI does. A failure is a notification saying what to do, and the dialog stays open with the
path so it can be corrected; success dismisses it with the loader's report.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Collection
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.suggester import Suggester
from textual.widgets import Button, Checkbox, Input, Label, ProgressBar, Static

from deeting_tui.errors import DeetingError
from deeting_tui.kernel.plugins import InstallReport, PluginInfo
from deeting_tui.plugin.scopes import Scope
from deeting_tui.terminal_text import one_line

from ..hints import chat_error, chat_hint
from .permission import PermissionDialog

if TYPE_CHECKING:
    from deeting_tui.kernel.kernel import Kernel

log = logging.getLogger("deeting.ui")

STEP_WORDS = {
    "unpacking": "unpacking the archive…",
    "validating": "checking the manifest and tools…",
    "copying": "copying the code into place…",
    "dependencies": "installing its Python dependencies (wheels only)…",
    "postinstall": "running its postinstall hook…",
    "permissions": "asking for permissions…",
    "starting": "starting its sandboxed worker…",
    "done": "done",
}


#: The loader words its advice for the CLI; here the checkbox is the way to say --force.
REPLACE_BOX = "tick 'Replace an installed copy'"
CLI_ADVICE = {
    "pass --force to reinstall it": f"{REPLACE_BOX} to reinstall it",
    "uninstall it first": f"{REPLACE_BOX} to replace it (its data is kept)",
    "reinstall it with --force": f"reinstall it: {REPLACE_BOX}",
}


def in_dialog_words(message: str) -> str:
    """A loader error with its command-line advice put in the dialog's terms."""
    for cli, dialog in CLI_ADVICE.items():
        message = message.replace(cli, dialog)
    return message


class PathSuggester(Suggester):
    """Completes the last component of a path from the entries of its folder: folders (with
    a trailing ``/``, so completion can go on) and zips first, hidden entries only on ``.``."""

    def __init__(self) -> None:
        super().__init__(use_cache=False, case_sensitive=True)

    async def get_suggestion(self, value: str) -> str | None:
        head, sep, stem = value.rpartition("/")
        if not value or value in ("~", "."):
            return None
        folder = Path(os.path.expanduser(head + sep)) if sep else Path()
        try:
            entries = sorted(
                (entry.name, entry.is_dir())
                for entry in os.scandir(folder)
                if entry.name.startswith(stem) and (stem or not entry.name.startswith("."))
            )
        except OSError:
            return None
        useful = [(n, d) for n, d in entries if d or n.endswith(".zip")] or entries
        if not useful:
            return None
        name, is_dir = useful[0]
        return value + name[len(stem) :] + ("/" if is_dir else "")


class InstallDialog(ModalScreen[InstallReport | None]):
    CSS_PATH = "install.tcss"
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="install.cancel", tooltip="Install nothing"),
    ]

    class Step(Message):
        """The loader reached an install step (posted, so the worker never touches widgets)."""

        def __init__(self, label: str, fraction: float) -> None:
            super().__init__()
            self.label = label
            self.fraction = fraction

    def __init__(self, kernel: Kernel) -> None:
        super().__init__()
        self.kernel = kernel
        self.installing = False

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("Install a plugin", id="title")
            yield Static(
                "A registry name (weather, weather@1.2.0 — after `deeting registry sync`), a "
                "plugin folder (a local dev install) or a .zip. → accepts a completion.",
                id="hint",
            )
            yield Input(
                placeholder="~/my-plugin  or  ~/Downloads/weather-1.0.0.zip",
                suggester=PathSuggester(),
                id="path",
            )
            yield Checkbox("Replace an installed copy (like --force)", id="force")
            yield ProgressBar(total=1.0, show_eta=False, id="progress")
            yield Static("", id="step")
            with Horizontal(id="buttons"):
                yield Button("Install", variant="success", id="install")
                yield Button("Cancel (Esc)", variant="primary", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#progress", ProgressBar).display = False
        self.query_one("#path", Input).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Leaving mid-install would cancel the loader between two steps.
        return None if action == "cancel" and self.installing else True

    @on(Input.Submitted, "#path")
    @on(Button.Pressed, "#install")
    def _start(self) -> None:
        if self.installing:
            return
        text = self.query_one("#path", Input).value.strip()
        if not text:
            self.notify(
                "type a registry name, or the path of a plugin folder or a .zip, first",
                severity="error",
                markup=False,
            )
            return
        self._set_installing(True)
        self._install(text, self.query_one("#force", Checkbox).value)

    @on(Button.Pressed, "#cancel")
    def _cancel_button(self) -> None:
        if self.check_action("cancel", ()):
            self.action_cancel()

    def action_cancel(self) -> None:
        self.dismiss(None)

    @work(group="install", exit_on_error=False)
    async def _install(self, source: str, force: bool) -> None:
        """The kernel tells a registry name from a path; a download fills the bar's first
        half, the install steps the rest (all of it for a folder or a zip)."""
        downloaded = False

        def on_download(what: str, done: int, total: int | None) -> None:
            nonlocal downloaded
            downloaded = True
            self._on_download(what, done, total)

        def on_step(label: str, fraction: float) -> None:
            self._on_step(label, 0.5 + fraction / 2 if downloaded else fraction)

        await self._attempt(
            source,
            lambda: self.kernel.plugins.install(
                source,
                force=force,
                ask_all=self._consent,
                on_step=on_step,
                on_progress=on_download,
            ),
        )

    async def _attempt(self, label: str, install: Callable[[], Awaitable[InstallReport]]) -> None:
        """Run one install; success dismisses with its report, a failure is a notification
        and the dialog stays, with the input, so it can be corrected."""
        try:
            report = await install()
        except DeetingError as exc:
            message = in_dialog_words(chat_error(exc, on_plugin_screen=True))
            self.notify(message, severity="error", timeout=12, markup=False)
        except OSError as exc:  # a disk problem while copying: say which file and why
            message = f"{label}: install failed: {exc}"
            self.notify(message, severity="error", timeout=12, markup=False)
        except Exception as exc:  # a bug: say so, keep the dialog usable, trace in the log
            log.exception("install %s", label)
            self.notify(f"{label}: unexpected error: {exc!r}", severity="error", markup=False)
        else:
            self.dismiss(report)
            return
        self._set_installing(False)

    def _on_download(self, what: str, done: int, total: int | None) -> None:
        fraction = done / total if total else 0.0
        self.post_message(self.Step(f"downloading {what} ({done // 1024} kB)", fraction / 2))

    async def _consent(self, name: str, scopes: list[Scope]) -> Collection[Scope]:
        intro = "Deny installs it without starting it; grant later with g in the plugin manager."
        allowed = await self.app.push_screen_wait(PermissionDialog(name, scopes, intro=intro))
        return scopes if allowed else []

    def _on_step(self, label: str, fraction: float) -> None:
        self.post_message(self.Step(label, fraction))

    @on(Step)
    def _show_step(self, event: Step) -> None:
        if not self.installing:
            return  # a late step of an install that already failed
        self.query_one("#progress", ProgressBar).update(progress=event.fraction)
        words = STEP_WORDS.get(event.label, event.label)
        self.query_one("#step", Static).update(Text(one_line(words)))

    def _set_installing(self, installing: bool) -> None:
        self.installing = installing
        progress = self.query_one("#progress", ProgressBar)
        progress.display = installing
        progress.update(progress=0.0)
        self.query_one("#step", Static).update("")
        for node in self.query("#path, #force, #install, #cancel"):
            node.disabled = installing
        if not installing:
            self.query_one("#path", Input).focus()


def install_summary(
    report: InstallReport, info: PluginInfo, still_missing: list[Scope]
) -> tuple[str, bool]:
    """What to tell the user after an install (and whether it is a warning), worded like the
    CLI's output but with the TUI's way to fix things."""
    spec = report.spec
    message = info.installed_words
    if report.enabled:
        tools = ", ".join(t.name for t in spec.tools)
        return f"{message} and enabled it — tools: {tools}", False
    if still_missing:
        needs = ", ".join(str(s) for s in still_missing)
        return f"{message} but did not enable it: it needs {needs} — press g to grant", True
    fix = f" — {chat_hint(report.hint, on_plugin_screen=True)}" if report.hint is not None else ""
    return f"{message} but did not enable it: {report.problem}{fix}", True
