"""``deeting registry sync`` and the registry side of ``deeting plugin upgrade|rollback``.

Printed for people: what was verified, what changed, what to run next. Downloads show a Rich
progress bar on stderr. Every refusal is a DeetingError (the store's StoreError, the kernel's
PluginError) that the command prints as one line, exit status 1, with nothing changed. What
a registry or a plugin says is printed through the neutraliser, like everything else for a
terminal. Installs, upgrades and rollbacks go through the kernel's plugin service, as the
chat's do; only the sync talks to the registry client itself.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from deeting_tui.command_output import (
    NOTICES,
    download_bar,
    error_line,
    fail,
    say,
    tty_consent,
)
from deeting_tui.errors import DeetingError
from deeting_tui.plugin.names import split_source
from deeting_tui.store.client import RegistryClient, SyncReport
from deeting_tui.store.trust import format_time

if TYPE_CHECKING:
    from deeting_tui.kernel.kernel import Kernel

__all__ = ["rollback", "run_registry_command", "upgrade"]


# -- registry sync ----------------------------------------------------------------------------


async def run_registry_command(kernel: Kernel, args: argparse.Namespace) -> int:
    client = RegistryClient(kernel.paths)
    root = Path(args.root).expanduser() if args.root else None
    installed = [(i.name, i.version) for i in kernel.plugins.all() if not i.dev]
    try:
        async with download_bar() as progress:
            report = await client.sync(installed, args.url, root, on_progress=progress)
    except DeetingError as exc:  # said with the command that fixes it, as plugin commands do
        return fail(error_line(exc))
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
    if report.switched_from is not None:
        say(f"now following {report.url} instead of {report.switched_from}")
    if report.official:
        say("the official registry, verified with the root of trust deeting ships")
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


# -- plugin upgrade / rollback ------------------------------------------------------------------


async def upgrade(kernel: Kernel, args: argparse.Namespace) -> int:
    if args.name:
        target = split_source(args.name)
        if target is None:
            raise DeetingError(f"{args.name!r}: expected a plugin NAME or NAME@VERSION")
        targets = [target]
    else:
        targets = [(u.name, None) for u in kernel.plugins.update_list()]
        if not targets:
            say("installed plugins are up to date (as of the last: deeting registry sync)")
            return 0
    async with download_bar() as progress:
        for name, version in targets:
            with NOTICES.said_by_command(name):
                report = await kernel.plugins.upgrade(
                    name,
                    version,
                    allow_downgrade=args.allow_downgrade,
                    grant=args.grant,
                    yes=args.yes,
                    ask_all=tty_consent(args.yes),
                    on_progress=progress,
                )
            if report is None:
                say(f"{name} is already at that version")
                continue
            say(f"upgraded {name} {report.old} → {report.new} (previous version kept)")
    return 0


async def rollback(kernel: Kernel, args: argparse.Namespace) -> int:
    with NOTICES.said_by_command(args.name):
        report = await kernel.plugins.rollback(args.name)
    say(f"rolled {args.name} back {report.old} → {report.new}")
    return 0
