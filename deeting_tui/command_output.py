"""What the plugin and registry commands print for people, shared by both.

``deeting plugin …`` (plugin_commands.py) and its registry side (registry_commands.py) end an
install the same way and ask for consent the same way; keeping that here, below both, lets
plugin_commands hand a registry source to registry_commands without the two importing each
other. What a plugin says reaches the terminal only through the neutraliser.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any

from deeting_tui.errors import DeetingError, Fix, Hint
from deeting_tui.kernel.events import ErrorEvent, Event, PluginNotice
from deeting_tui.plugin.scopes import Scope, explain
from deeting_tui.terminal_text import neutralise_line, one_line

if TYPE_CHECKING:
    from deeting_tui.kernel.plugins.loader import AskGrants, InstallReport


def say(line: str) -> None:
    """Print one line for people, neutralised and kept on one line (``neutralise_line``)."""
    print(neutralise_line(line), flush=True)


def fail(message: str) -> int:
    """Say ``message`` as one error line on stderr; the exit status of a failed command."""
    print(f"deeting: error: {one_line(message)}", file=sys.stderr)
    return 1


def cli_hint(hint: Hint) -> str:
    """A fix as the command that does it: ``deeting plugin grant notes fs:read:~/notes``."""
    if hint.fix is Fix.SYNC:
        return " ".join(["deeting", "registry", "sync", *hint.flags])
    words = ["deeting", "plugin", str(hint.fix)]
    if hint.fix is Fix.INSTALL and hint.plugin is None:
        words.append(hint.argument or "PATH")
    elif hint.fix in (Fix.INSTALL, Fix.UPGRADE) and hint.plugin and hint.argument:
        words.append(f"{hint.plugin}@{hint.argument}")
    else:
        words += [w for w in (hint.plugin, hint.argument) if w]
    return " ".join([*words, *hint.flags])


def error_line(error: DeetingError) -> str:
    """An error as the CLI says it: the message, then the command that fixes it."""
    return with_cli_hint(error.message, error.hint)


def event_line(event: ErrorEvent | PluginNotice) -> str:
    """A kernel event's message (an ``error``, a ``plugin_notice``) as the CLI and the
    script say it: the hint the event carries as data becomes the command to run."""
    return with_cli_hint(event.message, event.hint)


def with_cli_hint(message: str, hint: Hint | None) -> str:
    """``message — run: COMMAND``, or the message alone when nothing fixes it."""
    if hint is None:
        return message
    return f"{message} — run: {cli_hint(hint)}"


def ask_on_tty(name: str, scope: Scope) -> bool:
    """The terminal's question for one scope, saying what it allows in plain words."""
    words, risk = explain(scope)
    question = f"'{name}' asks for {words} ({risk} risk). Grant '{scope}'?"
    answer = input(one_line(question) + " [y/N] ")
    return answer.strip().lower() in ("y", "yes")


class Notices:
    """What the kernel tells about a plugin while a command runs (a hook that missed its
    deadline, say) goes to stderr, one line each; except what the command says itself on
    stdout (the upgrade it made, which the kernel tells every front end too)."""

    def __init__(self) -> None:
        self._said_by_command: set[str] = set()

    def __call__(self, event: Event) -> None:
        if not isinstance(event, PluginNotice) or event.plugin in self._said_by_command:
            return
        print(f"deeting: {one_line(event_line(event))}", file=sys.stderr)

    @contextmanager
    def said_by_command(self, plugin: str) -> Iterator[None]:
        self._said_by_command.add(plugin)
        try:
            yield
        finally:
            self._said_by_command.discard(plugin)


#: The one listener of a ``deeting plugin|registry`` command's kernel.
NOTICES = Notices()


def tty_consent(yes: bool) -> AskGrants | None:
    """The y/N question, one scope at a time, on a terminal; none with ``--yes`` or without
    a terminal (a script never prompts: it is told what to grant instead)."""
    if yes or not sys.stdin.isatty():
        return None

    async def ask(name: str, scopes: list[Scope]) -> list[Scope]:
        return [scope for scope in scopes if ask_on_tty(name, scope)]

    return ask


@asynccontextmanager
async def download_bar() -> AsyncIterator[Callable[[str, int, int | None], None]]:
    """A Rich progress bar per download, on stderr (stdout stays for results)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TransferSpeedColumn,
    )

    console = Console(stderr=True)
    tasks: dict[str, Any] = {}
    with Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=console,
        transient=not console.is_terminal,
        disable=not console.is_terminal,
    ) as bar:

        def update(what: str, done: int, total: int | None) -> None:
            if what not in tasks:
                tasks[what] = bar.add_task(one_line(what), total=total)
            bar.update(tasks[what], completed=done, total=total)

        yield update


def settled(report: InstallReport) -> int:
    """The end of an install, for every source: enabled (0); installed and waiting for the
    user's consent (0: nothing failed, the user decides — said as what to run, not as an
    error); or installed but failing to start (1, an error)."""
    spec = report.spec
    if report.granted:
        say("granted: " + ", ".join(str(s) for s in report.granted))
    if report.enabled:
        tools = ", ".join(t.name for t in spec.tools)
        say(f"enabled {spec.name} — tools: {tools}")
        return 0
    if report.awaiting:
        scopes = ", ".join(str(s) for s in report.awaiting)
        say(f"{spec.name} waits for your consent to: {scopes} (not enabled until granted)")
        for scope in report.awaiting:
            say(f"  to grant: deeting plugin grant {spec.name} {scope}")
        return 0
    problem = DeetingError(
        f"installed '{spec.name}' but did not enable it: {report.problem}", report.hint
    )
    return fail(error_line(problem))
