"""``deeting registry sync`` and the registry side of ``deeting plugin install|upgrade|rollback``.

Printed for people: what was verified, what changed, what to run next. Downloads show a Rich
progress bar on stderr. Every refusal is a StoreError (or the Loader's PluginError) whose
message the CLI prints as one line, exit status 1, with nothing changed. What a registry or a
plugin says is printed through the neutraliser, like everything else for a terminal.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deeting_tui.command_output import ask_on_tty, say, settled
from deeting_tui.plugin.scopes import Scope
from deeting_tui.store.client import RegistryClient, SyncReport
from deeting_tui.store.errors import StoreError
from deeting_tui.store.names import split_source
from deeting_tui.store.trust import format_time
from deeting_tui.terminal_text import one_line

if TYPE_CHECKING:
    from deeting_tui.kernel.kernel import Kernel
    from deeting_tui.kernel.loader import AskGrants

__all__ = ["install", "rollback", "run_registry_command", "upgrade"]


def _ask_all(yes: bool) -> AskGrants | None:
    """On a terminal, one question per scope; elsewhere none (headless never prompts)."""
    if yes or not sys.stdin.isatty():
        return None

    async def ask(name: str, scopes: list[Scope]) -> list[Scope]:
        return [scope for scope in scopes if ask_on_tty(name, scope)]

    return ask


@asynccontextmanager
async def _download_bar() -> AsyncIterator[Callable[[str, int, int | None], None]]:
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


# -- registry sync ----------------------------------------------------------------------------


async def run_registry_command(kernel: Kernel, args: argparse.Namespace) -> int:
    client = RegistryClient(kernel.paths)
    root = Path(args.root).expanduser() if args.root else None
    async with _download_bar() as progress:
        report = await client.sync(kernel.loader, args.url, root, on_progress=progress)
    _print_sync(report)
    return 0


def _print_sync(report: SyncReport) -> None:
    if report.root_on_first_use:
        print(
            "deeting: warning: trusting the registry's own root.json on first use (its keys "
            "sign everything from now on); to pin one got from its maintainers instead, "
            "pass --root FILE",
            file=sys.stderr,
        )
    elif report.root_pinned:
        say("pinned the registry root given with --root")
    if report.rotated_to is not None:
        say(f"the registry rotated its keys: now trusting root version {report.rotated_to}")
    state = "not modified" if report.not_modified else "verified"
    say(
        f"registry {report.version} from {report.url} ({state}): {report.plugins} plugin"
        f"{'s' if report.plugins != 1 else ''}, valid until {format_time(report.expires)}"
    )
    if not report.updates:
        say("installed plugins are up to date")
        return
    for update in report.updates:
        say(f"update available: {update.name} {update.installed} → {update.available}")
    say("upgrade with: deeting plugin upgrade [NAME]")


# -- plugin install / upgrade / rollback --------------------------------------------------------


async def install(kernel: Kernel, args: argparse.Namespace, name: str, version: str | None) -> int:
    client = RegistryClient(kernel.paths)
    async with _download_bar() as progress:
        report = await client.install(
            kernel.loader,
            name,
            version,
            grant=args.grant,
            yes=args.yes,
            ask_all=_ask_all(args.yes),
            on_progress=progress,
        )
    spec = report.spec
    say(f"installed {spec.name} {spec.version} from the registry (verified)")
    return settled(report)


async def upgrade(kernel: Kernel, args: argparse.Namespace) -> int:
    client = RegistryClient(kernel.paths)
    if args.name:
        target = split_source(args.name)
        if target is None:
            raise StoreError(f"{args.name!r}: expected a plugin NAME or NAME@VERSION")
        targets = [target]
    else:
        targets = [(u.name, None) for u in client.updates(kernel.loader, client.registry())]
        if not targets:
            say("installed plugins are up to date (as of the last: deeting registry sync)")
            return 0
    async with _download_bar() as progress:
        for name, version in targets:
            report = await client.upgrade(
                kernel.loader,
                name,
                version,
                allow_downgrade=args.allow_downgrade,
                grant=args.grant,
                yes=args.yes,
                ask_all=_ask_all(args.yes),
                on_progress=progress,
            )
            if report is None:
                say(f"{name} is already at that version")
                continue
            say(f"upgraded {name} {report.old} → {report.new} (previous version kept)")
    return 0


async def rollback(kernel: Kernel, args: argparse.Namespace) -> int:
    report = await RegistryClient(kernel.paths).rollback(kernel.loader, args.name)
    say(f"rolled {args.name} back {report.old} → {report.new}")
    return 0
