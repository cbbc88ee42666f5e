"""``deeting plugin …``: the lifecycle commands, printed for people (or ``--json``).

Each command builds a kernel without starting the enabled plugins (a CLI call must not
spin up every worker), does its one step through the Loader, and shuts down.

Manifest strings (description, author, license, tool descriptions, scope paths, a trigger's
regex) and plugin error messages are the plugin's, so every line printed for people goes
through the neutraliser (``say``, ``fail``, the grant prompt). ``--json`` keeps them exact.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from deeting_tui.command_output import ask_on_tty, event_line, fail, say, settled
from deeting_tui.kernel.events import Event, PluginNotice
from deeting_tui.kernel.kernel import Kernel
from deeting_tui.kernel.loader import PluginError
from deeting_tui.kernel.permissions import missing_scopes
from deeting_tui.paths import load_config, resolve_paths
from deeting_tui.plugin.manifest import Limits
from deeting_tui.plugin.scopes import Scope, ScopeError, parse_scope, reads_user_input
from deeting_tui.quota.diskwatch import walked_instead
from deeting_tui.quota.watchdog import describe_limits
from deeting_tui.sandbox.policy import SANDBOX_LINES, describe_grants
from deeting_tui.store.names import split_source
from deeting_tui.terminal_text import one_line, terminal_safe_json


async def run_plugin_command(args: argparse.Namespace) -> int:
    if args.action == "new":
        return _new(args)
    return await with_kernel(_HANDLERS[args.action], args)


async def with_kernel(
    handler: Callable[[Kernel, argparse.Namespace], Awaitable[int]], args: argparse.Namespace
) -> int:
    """Run one command on a kernel that starts no plugin worker, and shut it down."""
    paths = resolve_paths()
    kernel = Kernel(paths, config=load_config(paths))
    kernel.add_listener(_say_notices)
    try:
        return await handler(kernel, args)
    finally:
        await kernel.shutdown()


def _say_notices(event: Event) -> None:
    """What the kernel tells about a plugin while a command runs (a hook that missed its
    deadline, say) goes to stderr, one line each."""
    if isinstance(event, PluginNotice):
        print(f"deeting: {one_line(event_line(event))}", file=sys.stderr)


async def _install(kernel: Kernel, args: argparse.Namespace) -> int:
    source = Path(args.source).expanduser()
    from_registry = split_source(args.source)
    if from_registry is not None and not source.exists():
        if args.force:
            raise PluginError("--force is for folder and zip installs; use: deeting plugin upgrade")
        from deeting_tui import registry_commands  # the client's imports, only when used

        return await registry_commands.install(kernel, args, *from_registry)
    ask = ask_on_tty if sys.stdin.isatty() and not args.yes else None
    report = await kernel.loader.install(
        source, grant=args.grant, yes=args.yes, force=args.force, ask=ask
    )
    spec = report.spec
    kind = "a local dev install from a folder" if report.dev else "from an archive"
    say(f"installed {spec.name} {spec.version} ({kind})")
    return settled(report)


async def _enable(kernel: Kernel, args: argparse.Namespace) -> int:
    runtime = await kernel.loader.enable(args.name)
    say(f"enabled {args.name} {runtime.spec.version}")
    return 0


async def _disable(kernel: Kernel, args: argparse.Namespace) -> int:
    record = kernel.loader.record(args.name)
    if not record.enabled:
        say(f"{args.name} is already disabled")
        return 0
    await kernel.loader.disable(args.name)
    say(f"disabled {args.name}")
    return 0


async def _uninstall(kernel: Kernel, args: argparse.Namespace) -> int:
    record = await kernel.loader.uninstall(args.name)
    say(f"uninstalled {record.name} {record.version} (code, data and cache removed)")
    return 0


def _declared(kernel: Kernel, name: str, text: str) -> Scope:
    spec = kernel.loader.spec(name)
    try:
        scope = parse_scope(text)
    except ScopeError as exc:
        raise PluginError(f"{text}: {exc}") from None
    if scope not in spec.permissions:
        declared = ", ".join(str(s) for s in spec.permissions) or "nothing"
        raise PluginError(f"'{name}' does not ask for '{scope}' (it declares: {declared})")
    return scope


async def _grant(kernel: Kernel, args: argparse.Namespace) -> int:
    scope = _declared(kernel, args.name, args.scope)
    added = kernel.grants.grant(args.name, [scope])
    say(f"granted '{scope}' to {args.name}" if added else f"{args.name} already has '{scope}'")
    record = kernel.loader.record(args.name)
    spec = kernel.loader.spec(args.name)
    missing = missing_scopes(spec.permissions, kernel.grants.granted(args.name))
    if missing:
        say(f"{args.name} still needs: " + ", ".join(str(s) for s in missing))
    elif not record.enabled:
        await kernel.loader.enable(args.name)
        say(f"enabled {args.name}")
    return 0


async def _revoke(kernel: Kernel, args: argparse.Namespace) -> int:
    scope = _declared(kernel, args.name, args.scope)
    if not kernel.grants.revoke(args.name, scope):
        say(f"{args.name} did not have '{scope}'")
        return 0
    say(f"revoked '{scope}' from {args.name}")
    record = kernel.loader.record(args.name)
    if record.enabled:
        reason = f"permission '{scope}' was revoked"
        await kernel.loader.disable(args.name, reason=reason)
        say(f"disabled {args.name} ({reason}; grant it again to re-enable)")
    return 0


def _state(kernel: Kernel, name: str) -> str:
    record = kernel.loader.record(name)
    if record.enabled:
        return "enabled"
    if record.disabled_reason and "not granted" in record.disabled_reason:
        return "needs grant"
    return "disabled"


async def _list(kernel: Kernel, args: argparse.Namespace) -> int:
    records = kernel.installed.all()
    rows: list[dict[str, Any]] = []
    for record in records:
        rows.append(
            {
                "name": record.name,
                "version": record.version,
                "state": _state(kernel, record.name),
                "enabled": record.enabled,
                "dev": record.dev,
                "source": record.source,
                "reason": record.disabled_reason,
            }
        )
    from deeting_tui.sandbox.probe import probe

    caps = probe()
    if args.json:
        document = {"sandbox": caps.as_json(), "plugins": rows}
        document_json = orjson.dumps(document, option=orjson.OPT_INDENT_2)
        sys.stdout.buffer.write(terminal_safe_json(document_json) + b"\n")
        return 0
    say(f"sandbox: {caps.level}" + (" (running as root)" if caps.root else ""))
    if not rows:
        say("no plugins installed — install one with: deeting plugin install PATH")
        return 0
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        origin = "dev" if r["dev"] else _origin(str(r["source"]))
        line = f"{r['name']:<{width}}  {r['version']:<10} {r['state']:<12} {origin}"
        if r["reason"] and not r["enabled"]:
            line += f"  ({one_line(str(r['reason']))})"
        say(line)
    return 0


def _origin(source: str) -> str:
    """Where a non-dev install came from, in one word: the registry, or a zip."""
    return "registry" if source.startswith("registry ") else "zip"


async def _info(kernel: Kernel, args: argparse.Namespace) -> int:
    record = kernel.loader.record(args.name)
    spec = kernel.loader.spec(args.name)
    granted = kernel.grants.granted(args.name)
    missing = missing_scopes(spec.permissions, granted)
    paths = kernel.paths
    info: dict[str, Any] = {
        "name": spec.name,
        "version": spec.version,
        "description": spec.description,
        "author": spec.author,
        "license": spec.license,
        "state": _state(kernel, args.name),
        "reason": record.disabled_reason,
        "source": record.source,
        "dev": record.dev,
        "permissions": [{"scope": str(s), "granted": s not in missing} for s in spec.permissions],
        "tools": [{"name": t.name, "description": t.description} for t in spec.tools],
        "trigger": (
            {
                "regex": spec.trigger.regex,
                "tool": spec.trigger.tool,
                "priority": spec.trigger.priority,
                "examples": list(spec.trigger.examples),
            }
            if spec.trigger
            else None
        ),
        "renderer": spec.renderer,
        "events": [{"topic": e.topic, "priority": e.priority} for e in spec.events],
        "code": str(paths.plugin_code(spec.name, spec.version)),
        "data_dir": str(paths.plugin_data(spec.name)),
        "cache_dir": str(paths.plugin_cache(spec.name)),
        "log": str(paths.plugin_log(spec.name)),
        "sandbox": describe_grants(granted),
        "limits": _limits(kernel, spec.limits, paths.plugin_folders(spec.name)),
    }
    if args.json:
        info_json = orjson.dumps(info, option=orjson.OPT_INDENT_2)
        sys.stdout.buffer.write(terminal_safe_json(info_json) + b"\n")
        return 0
    say(f"{spec.name} {spec.version} — {spec.description}".rstrip(" —"))
    say(
        f"  state:       {info['state']}"
        + (f" ({record.disabled_reason})" if info["reason"] and not record.enabled else "")
    )
    say(f"  source:      {record.source}" + (" (dev install)" if record.dev else ""))
    perms = ", ".join(
        f"{p['scope']}{'' if p['granted'] else ' (not granted)'}" for p in info["permissions"]
    )
    say(f"  permissions: {perms or 'none'}")
    box = info["sandbox"]
    say(f"  sandbox:     {box['level']}")
    for layer in SANDBOX_LINES:
        say(f"    {layer + ':':<14}{box[layer]}")
    _say_limits(info["limits"])
    for tool in spec.tools:
        say(f"  tool:        {tool.name} — {tool.description.strip().splitlines()[0]}")
    if spec.trigger:
        trigger = spec.trigger
        say(f"  trigger:     {trigger.regex} → {trigger.tool} (priority {trigger.priority})")
        if trigger.examples:
            say("  type:        " + "  |  ".join(trigger.examples))
    for event in spec.events:
        reads = (
            " — reads what you type that no trigger takes (with 'messages')"
            if reads_user_input(event.topic)
            else ""
        )
        say(f"  event:       {event.topic} (priority {event.priority}){reads}")
    if spec.renderer:
        say(f"  renderer:    {spec.renderer}")
    say(f"  data:        {info['data_dir']}")
    say(f"  log:         {info['log']}")
    return 0


def _limits(kernel: Kernel, limits: Limits, folders: Sequence[Path]) -> dict[str, str]:
    from deeting_tui.sandbox.probe import probe

    cgroups = kernel.confinement.cgroups
    return describe_limits(
        limits,
        cgroups,
        user_namespaces=probe().user_namespaces,
        disk_walked=walked_instead(folders, kernel.confinement.disk),
    )


def _say_limits(limits: dict[str, str]) -> None:
    """How the plugin's processes end with it, and each limit with what enforces it here."""
    say(f"  containment: {limits['containment']}")
    lines = [f"{key} {value}" for key, value in limits.items() if key != "containment"]
    for index, line in enumerate(lines):
        say(f"  {'limits:' if index == 0 else '':<13}{line}")


def _new(args: argparse.Namespace) -> int:
    from deeting_tui.plugin.scaffold import scaffold

    dest = Path(args.dir) / args.name
    try:
        folder = scaffold(args.name, dest)
    except ValueError as exc:
        return fail(str(exc))
    except OSError as exc:  # a read-only or missing place, a file in the way, a full disk
        why = exc.strerror or str(exc)
        return fail(f"cannot create {dest}: {why} — choose another folder with --dir")
    say(f"created {folder} — try: deeting plugin install {folder}")
    return 0


async def _upgrade(kernel: Kernel, args: argparse.Namespace) -> int:
    from deeting_tui import registry_commands

    return await registry_commands.upgrade(kernel, args)


async def _rollback(kernel: Kernel, args: argparse.Namespace) -> int:
    from deeting_tui import registry_commands

    return await registry_commands.rollback(kernel, args)


_HANDLERS = {
    "install": _install,
    "upgrade": _upgrade,
    "rollback": _rollback,
    "enable": _enable,
    "disable": _disable,
    "uninstall": _uninstall,
    "grant": _grant,
    "revoke": _revoke,
    "list": _list,
    "info": _info,
}
