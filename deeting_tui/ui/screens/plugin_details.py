"""The details pane of the plugin manager: what a plugin is, what it may do, what it said lately.

Everything ``deeting plugin info`` prints, plus the README rendered as Markdown and the tail of
the plugin's log, so a user can judge a plugin (and see why it crashed) without leaving the
chat. The text is built by pure functions over the kernel's records; the widget only hosts it.

Almost all of it is the plugin's own words (description, author, license, tool descriptions,
scope paths, its trigger's regex, the reason it was disabled, its README and its log), so each
string goes through the neutraliser, on one line where it fills one line, and into ``Text``
(never markup): ``[link=…]`` in a description shows as written.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Markdown, Static

from deeting_tui.errors import DeetingError
from deeting_tui.kernel.plugins import READY_SAID, PluginInfo, PluginState
from deeting_tui.plugin.manifest import PluginSpec
from deeting_tui.plugin.scopes import explain, reads_user_input
from deeting_tui.terminal_text import neutralise, neutralise_line, one_line

from ..hints import chat_error, with_chat_hint
from .permission import scope_line

if TYPE_CHECKING:
    from deeting_tui.kernel.kernel import Kernel
    from deeting_tui.kernel.plugins.ports import AvailablePlugin

LOG_LINES = 20
README_LIMIT = 200_000  # characters; a README is documentation, not a data dump
STATE_STYLE = {
    PluginState.ENABLED: "bold green",
    PluginState.READY: "green",
    PluginState.RESTARTING: "bold yellow",
    PluginState.NEEDS_CONSENT: "bold yellow",
    PluginState.CRASHED: "bold red",
    PluginState.DAMAGED: "bold red",
    PluginState.DISABLED: "dim",
}


#: A bundled plugin that is not installed: its state word and style in the table.
AVAILABLE, AVAILABLE_STYLE = "available", "bold cyan"


def available_summary(plugin: AvailablePlugin) -> RenderableType:
    """What an available plugin is and would need, and the key that installs it."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    grid.add_row("plugin", Text(f"{one_line(plugin.name)} {one_line(plugin.version)}"))
    grid.add_row("about", Text(one_line(plugin.description)))
    grid.add_row("state", Text(AVAILABLE, style=AVAILABLE_STYLE))
    grid.add_row("installed", Text("not yet: it ships with deeting (signed, verified at install)"))
    needs = ", ".join(one_line(p) for p in plugin.permissions)
    grid.add_row("permissions", Text(f"{needs} (you are asked first)" if needs else "none"))
    grid.add_row("install", Text("press e or Enter"))
    return grid


def summary(info: PluginInfo, spec: PluginSpec) -> RenderableType:
    """A two-column grid (label, value) that wraps with a hanging indent at any width; what a
    user decides on (state, permissions, sandbox, tools) first, where things live last."""
    state = info.state
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    title = Text.assemble((f"{spec.name} {spec.version}", "bold"))
    if spec.description:
        title.append(f" — {one_line(spec.description)}")
    grid.add_row("", title)
    state_text = Text.assemble((state, STATE_STYLE[state]))
    reason = one_line(
        with_chat_hint(info.reason, info.fix, on_plugin_screen=True) if info.reason else ""
    )
    if reason and state is not PluginState.NEEDS_CONSENT:  # ✗ below says what is missing
        state_text.append(f" ({reason})", style="dim")
    if state is PluginState.NEEDS_CONSENT:
        state_text.append(" — press e to allow all and start it, g to choose", style="dim")
    if state is PluginState.READY:
        state_text.append(f" — {READY_SAID}", style="dim")
    grid.add_row("state", state_text)
    grid.add_row("permissions", _scopes(info))
    box = dict(info.sandbox)
    if "level" in box:
        grid.add_row("sandbox", Text(one_line(box.pop("level"))))
    for what, said in box.items():
        grid.add_row(f"  {what}", Text(one_line(said)))
    grid.add_row("tools", _tools(spec))
    if spec.trigger:
        trigger = spec.trigger
        line = f"{trigger.regex} → /{trigger.tool} (priority {trigger.priority})"
        grid.add_row("trigger", Text(neutralise_line(line)))  # a regex's spaces matter
    if spec.events:
        events = ", ".join(
            f"{e.topic} (priority {e.priority}"
            + (": reads what you type that no trigger takes)" if reads_user_input(e.topic) else ")")
            for e in spec.events
        )
        grid.add_row("events", Text(one_line(events)))
    if spec.renderer:
        grid.add_row("renderer", Text(one_line(spec.renderer)))
    grid.add_row("installed", Text(info.origin.said))
    if spec.author or spec.license:
        author = " · ".join(p for p in (spec.author, spec.license) if p)
        grid.add_row("author", Text(one_line(author)))
    return grid


def where(kernel: Kernel, info: PluginInfo) -> RenderableType:
    """Where it came from and where it lives: for debugging, so after the README."""
    paths, name = kernel.paths, info.name
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row("source", Text(_short(info.source)))
    grid.add_row("code", Text(_short(paths.plugin_code(name, info.version))))
    grid.add_row("data", Text(_short(paths.plugin_data(name))))
    grid.add_row("cache", Text(_short(paths.plugin_cache(name))))
    grid.add_row("log", Text(_short(paths.plugin_log(name))))
    return grid


def _scopes(info: PluginInfo) -> Text:
    missing = info.missing
    text = Text()
    for scope in info.permissions:
        words, risk = explain(scope)
        text.append("✗ " if scope in missing else "✓ ", "yellow" if scope in missing else "green")
        text.append_text(scope_line(words, risk))
        text.append(" (not granted)\n" if scope in missing else "\n", style="dim")
    text.rstrip()
    return text or Text("none — it only has its own folders")


def _tools(spec: PluginSpec) -> Text:
    text = Text()
    for tool in spec.tools:
        words = one_line(tool.description)
        text.append(f"/{one_line(tool.name)}", style="bold cyan")
        text.append(f" — {words}\n" if words else "\n")
    text.rstrip()
    return text or Text("none")


def _short(path: str | Path) -> str:
    """A path under the user's home as ~/…: shorter, and the same on every machine. A folder
    installed from may be named anything, so the path is neutralised too."""
    text = str(path)
    home = str(Path.home())
    short = "~" + text[len(home) :] if text == home or text.startswith(home + "/") else text
    return neutralise_line(short)


def read_readme(spec: PluginSpec) -> str | None:
    """The installed copy's README.md (never the source folder, which may have moved on),
    neutralised: Markdown is parsed from it, and its code blocks are drawn as written."""
    try:
        text = (spec.root / "README.md").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    return neutralise(text[:README_LIMIT]) if text.strip() else None


def tail(path: Path, lines: int = LOG_LINES, chunk: int = 64 * 1024) -> list[str] | None:
    """The last ``lines`` lines of a log, reading only its end, neutralised (it is what the
    plugin printed, colours and all: shown as plain text); None when there is no log."""
    try:
        with path.open("rb") as log:
            size = log.seek(0, 2)
            log.seek(max(0, size - chunk))
            data = log.read()
    except OSError:
        return None
    text = neutralise(data.decode("utf-8", errors="replace"))
    found = text.splitlines()
    if size > chunk and found:
        found = found[1:]  # the first line was cut by the seek
    return found[-lines:]


class PluginDetails(VerticalScroll, can_focus=True):
    """Scrollable details of one plugin; ``show`` swaps the plugin, ``refresh_log`` re-reads
    the log only when the file changed (the screen polls it, so a crash shows up live)."""

    class _ReadmeWanted(Message):
        """Markdown updates run one at a time, in this widget's queue, latest text wins."""

    def __init__(self, kernel: Kernel, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.kernel = kernel
        self.name_shown: str | None = None
        self._readme: str | None = None
        self._log_key: tuple[str, float, int] | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="summary")
        yield Static("README", id="readme-heading", classes="heading")
        yield Markdown(id="readme")
        yield Static("Files", id="files-heading", classes="heading")
        yield Static(id="files")
        yield Static(id="log-heading", classes="heading")
        yield Static(id="log")

    def show(self, name: str | None) -> None:
        summary_widget = self.query_one("#summary", Static)
        changed = name != self.name_shown
        self.name_shown = name
        if name is None:
            summary_widget.update(
                "No plugins installed. Press i to install one from a folder or a .zip "
                "(or run: deeting plugin install PATH)."
            )
            self._set_readme(None)
            self._show_files(None)
            self._show_log(None)
            return
        available = None
        if self.kernel.installed.get(name) is None:
            available = self.kernel.plugins.available_one(name)
        if available is not None:  # bundled with deeting, not installed: what it would need
            summary_widget.update(available_summary(available))
            self._set_readme(None)
            self._show_files(None)
            self._show_log(None)
            return
        try:
            info = self.kernel.plugins.info(name)
        except DeetingError as exc:  # uninstalled meanwhile (another terminal)
            summary_widget.update(
                Text(one_line(chat_error(exc, on_plugin_screen=True)), style="bold red")
            )
            self._set_readme(None)
            self._show_files(None)
            return
        if info.spec is None:  # a damaged copy: say how to repair it, show what is left
            summary_widget.update(Text(one_line(info.problem or ""), style="bold red"))
            self._set_readme(None)
        else:
            summary_widget.update(summary(info, info.spec))
            self._set_readme(read_readme(info.spec))
        self._show_files(info)
        if changed:
            self.anchor(False)
            self.scroll_home(animate=False)
        self.refresh_log()

    def action_scroll_end(self) -> None:
        """End goes to the log's last line and stays there as the page grows (the README
        drawn after it, a crash logged while it is read), until the user scrolls."""
        self.anchor()

    def refresh_log(self) -> None:
        """Re-read the log tail if the file changed since it was last shown."""
        if self.name_shown is None:
            return
        path = self.kernel.paths.plugin_log(self.name_shown)
        try:
            stat = path.stat()
            key = (self.name_shown, stat.st_mtime, stat.st_size)
        except OSError:
            key = (self.name_shown, 0.0, -1)
        if key != self._log_key:
            self._log_key = key
            self._show_log(path)

    def _show_files(self, info: PluginInfo | None) -> None:
        files = self.query_one("#files", Static)
        files.display = self.query_one("#files-heading").display = info is not None
        if info is not None:
            files.update(where(self.kernel, info))

    def _show_log(self, path: Path | None) -> None:
        heading = self.query_one("#log-heading", Static)
        body = self.query_one("#log", Static)
        heading.display = body.display = path is not None
        if path is None:
            return
        lines = tail(path)
        heading.update(f"Log — its last {LOG_LINES} lines")
        if lines is None:
            body.update(Text("no log yet: the plugin has not run", style="dim"))
        elif not lines:
            body.update(Text("the log is empty", style="dim"))
        else:
            body.update(Text("\n".join(lines), no_wrap=False))

    def _set_readme(self, text: str | None) -> None:
        heading = self.query_one("#readme-heading", Static)
        readme = self.query_one("#readme", Markdown)
        heading.display = readme.display = text is not None
        if text != self._readme:
            self._readme = text
            self.post_message(self._ReadmeWanted())

    @on(_ReadmeWanted)
    async def _update_readme(self) -> None:
        # Markdown.update is not safe to overlap (each call removes the blocks it saw when
        # called); handlers run in order, and a stale request finds the text already current.
        readme = self.query_one("#readme", Markdown)
        text = self._readme or ""
        if readme.source != text:
            await readme.update(text)
