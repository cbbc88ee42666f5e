"""``deeting plugin …``: the lifecycle commands, printed for people (or ``--json``).

Each command builds a kernel without starting the enabled plugins (a CLI call must not
spin up every worker), does its one step through the kernel's plugin service
(kernel/plugins.py, which the chat's plugin manager renders too), and shuts down. A refusal
is a DeetingError, said once here as one line with the command that fixes it.

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

from deeting_tui.command_output import (
    NOTICES,
    download_bar,
    error_line,
    fail,
    say,
    settled,
    tty_consent,
    with_cli_hint,
)
from deeting_tui.compose import fresh_home, plug_ports
from deeting_tui.errors import DeetingError
from deeting_tui.kernel.kernel import Kernel
from deeting_tui.kernel.plugins import READY_SAID, AlreadyInstalled, InstallReport, PluginState
from deeting_tui.paths import load_config, resolve_paths
from deeting_tui.plugin.manifest import PluginSpec
from deeting_tui.plugin.mcp_server import PINS_FILE
from deeting_tui.plugin.scopes import reads_user_input
from deeting_tui.plugin.wheel_install import DEPS_DIR, installed_dependencies
from deeting_tui.quota.diskwatch import walked_instead
from deeting_tui.quota.watchdog import describe_limits
from deeting_tui.sandbox.policy import SANDBOX_LINES
from deeting_tui.terminal_text import one_line, terminal_safe_json


async def run_plugin_command(args: argparse.Namespace) -> int:
    if args.action == "new":
        return _new(args)
    try:
        return await with_kernel(_HANDLERS[args.action], args)
    except DeetingError as exc:  # the one place a refusal becomes the CLI's error line
        return fail(error_line(exc))


async def with_kernel(
    handler: Callable[[Kernel, argparse.Namespace], Awaitable[int]], args: argparse.Namespace
) -> int:
    """Run one command on a kernel that starts no plugin worker, and shut it down."""
    paths = resolve_paths()
    first_run = fresh_home(paths)
    kernel = plug_ports(Kernel(paths, config=load_config(paths)), first_run=first_run)
    kernel.add_listener(NOTICES)
    try:
        warning = await kernel.plugins.first_run()
        if warning:
            print(f"deeting: warning: {one_line(warning)}", file=sys.stderr)
        return await handler(kernel, args)
    finally:
        await kernel.shutdown()


async def _install(kernel: Kernel, args: argparse.Namespace) -> int:
    """One SOURCE: installed, or its refusal raised (said once by the caller). Several, or
    ``--missing``: each in turn, a refusal said as its own error line while the rest still
    install (exit 1 if any failed, as a script with a failed line); with ``--missing`` a
    plugin installed at any version is left alone, all of them named in one line."""
    sources: list[str] = args.source
    if len(sources) == 1 and not args.missing:
        async with download_bar() as progress:
            report = await _install_one(kernel, args, sources[0], progress)
        say(kernel.plugins.info(report.spec.name).installed_words)
        return settled(report)
    failed = False
    kept: list[str] = []
    async with download_bar() as progress:
        for source in sources:
            try:
                report = await _install_one(kernel, args, source, progress)
            except DeetingError as exc:  # a refusal; anything else stops them all, said once
                if args.missing and isinstance(exc, AlreadyInstalled):
                    kept.append(f"{exc.name} {exc.version}")
                    continue
                fail(error_line(exc))
                failed = True
                continue
            say(kernel.plugins.info(report.spec.name).installed_words)
            failed = settled(report) != 0 or failed
    if kept:
        say("already installed, left alone: " + ", ".join(kept))
    return 1 if failed else 0


async def _install_one(
    kernel: Kernel,
    args: argparse.Namespace,
    source: str,
    progress: Callable[[str, int, int | None], None],
) -> InstallReport:
    return await kernel.plugins.install(
        source,
        grant=args.grant,
        yes=args.yes,
        force=args.force,
        ask_all=tty_consent(args.yes),
        on_progress=progress,
    )


async def _enable(kernel: Kernel, args: argparse.Namespace) -> int:
    info = await kernel.plugins.enable(args.name)
    say(f"enabled {args.name} {info.version}")
    return 0


async def _disable(kernel: Kernel, args: argparse.Namespace) -> int:
    if not await kernel.plugins.disable(args.name):
        say(f"{args.name} is already disabled")
        return 0
    say(f"disabled {args.name}")
    return 0


async def _uninstall(kernel: Kernel, args: argparse.Namespace) -> int:
    record = await kernel.plugins.uninstall(args.name)
    say(f"uninstalled {record.name} {record.version} (code, data and cache removed)")
    return 0


async def _grant(kernel: Kernel, args: argparse.Namespace) -> int:
    report = await kernel.plugins.grant(args.name, args.scope)
    scope = kernel.plugins.declared(args.name, args.scope)
    say(
        f"granted '{scope}' to {args.name}"
        if report.added
        else f"{args.name} already has '{scope}'"
    )
    if report.missing:
        say(f"{args.name} still needs: " + ", ".join(str(s) for s in report.missing))
    elif report.enabled:
        say(f"enabled {args.name}")
    return 0


async def _revoke(kernel: Kernel, args: argparse.Namespace) -> int:
    report = await kernel.plugins.revoke(args.name, args.scope)
    scope = args.scope
    if not report.revoked:
        say(f"{args.name} did not have '{scope}'")
        return 0
    say(f"revoked '{scope}' from {args.name}")
    if report.disabled:
        say(f"disabled {args.name} ({report.reason}; grant it again to re-enable)")
    return 0


async def _list(kernel: Kernel, args: argparse.Namespace) -> int:
    infos = kernel.plugins.all()
    available = kernel.plugins.available()
    rows: list[dict[str, Any]] = [
        {
            "name": info.name,
            "version": info.version,
            "state": str(info.state),
            "enabled": info.enabled,
            "dev": info.dev,
            "source": info.source,
            "reason": info.reason,
            "origin": str(info.origin),
        }
        for info in infos
    ]
    # Additive: the plugins deeting carries that are not installed, one install away.
    rows += [
        {
            "name": plugin.name,
            "version": plugin.version,
            "state": AVAILABLE,
            "enabled": False,
            "dev": False,
            "source": None,
            "reason": None,
            "origin": plugin.origin,
            "description": plugin.description,
            "permissions": list(plugin.permissions),
        }
        for plugin in available
    ]
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
    width = max(len(str(row["name"])) for row in rows)
    for info in infos:
        line = f"{info.name:<{width}}  {info.version:<10} {info.state:<12} {info.origin}"
        if info.reason:
            line += f"  ({one_line(info.reason)})"
        elif info.problem:
            line += f"  ({one_line(info.problem)})"
        say(line)
    for plugin in available:
        needs = ", ".join(plugin.permissions) or "no permission"
        row = f"{plugin.name:<{width}}  {plugin.version:<10} {AVAILABLE:<12} {plugin.origin}"
        say(f"{row}  ({needs})")
    if any(info.state is PluginState.READY for info in infos):
        say(f"ready: {READY_SAID}")
    if available:
        say(f"install one with: deeting plugin install {available[0].name}")
    return 0


AVAILABLE = "available"  # a bundled plugin not installed: the state `plugin list` shows


def _available_info(kernel: Kernel, args: argparse.Namespace) -> int | None:
    """``plugin info`` of a bundled plugin that is not installed: what it would need."""
    plugin = kernel.plugins.available_one(args.name)
    if plugin is None:
        return None
    if args.json:
        document = {
            "name": plugin.name,
            "version": plugin.version,
            "description": plugin.description,
            "state": AVAILABLE,
            "origin": plugin.origin,
            "permissions": [{"scope": scope, "granted": False} for scope in plugin.permissions],
        }
        info_json = orjson.dumps(document, option=orjson.OPT_INDENT_2)
        sys.stdout.buffer.write(terminal_safe_json(info_json) + b"\n")
        return 0
    say(f"{plugin.name} {plugin.version} — {plugin.description}".rstrip(" —"))
    say("  state:       available (bundled with deeting, not installed)")
    needs = ", ".join(plugin.permissions)
    say(f"  permissions: {needs + ' (asked when you install it)' if needs else 'none'}")
    say(f"  install:     deeting plugin install {plugin.name}")
    return 0


async def _info(kernel: Kernel, args: argparse.Namespace) -> int:
    if kernel.installed.get(args.name) is None:
        said = _available_info(kernel, args)
        if said is not None:
            return said
    plugin = kernel.plugins.info(args.name)
    spec = kernel.plugins.spec(args.name)  # a damaged copy: its error, with the fix
    missing = plugin.missing
    paths = kernel.paths
    info: dict[str, Any] = {
        "name": spec.name,
        "version": spec.version,
        "description": spec.description,
        "author": spec.author,
        "license": spec.license,
        "state": str(plugin.state),
        "reason": plugin.reason,
        "source": plugin.source,
        "dev": plugin.dev,
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
        "dependencies": [
            {"name": dep.name, "version": dep.version}
            for dep in installed_dependencies(paths.plugin_code(spec.name, spec.version))
        ],
        "deps_dir": str(paths.plugin_code(spec.name, spec.version) / DEPS_DIR),
        "data_dir": str(paths.plugin_data(spec.name)),
        "cache_dir": str(paths.plugin_cache(spec.name)),
        "log": str(paths.plugin_log(spec.name)),
        "sandbox": dict(plugin.sandbox),
        "limits": _limits(kernel, spec, paths.plugin_folders(spec.name)),
        "mcp": _mcp_info(spec),
    }
    if args.json:
        info_json = orjson.dumps(info, option=orjson.OPT_INDENT_2)
        sys.stdout.buffer.write(terminal_safe_json(info_json) + b"\n")
        return 0
    say(f"{spec.name} {spec.version} — {spec.description}".rstrip(" —"))
    reason = with_cli_hint(plugin.reason, plugin.fix) if plugin.reason else None
    if plugin.state is PluginState.READY and not reason:
        reason = READY_SAID
    say(f"  state:       {plugin.state}" + (f" ({reason})" if reason else ""))
    say(f"  source:      {plugin.source} ({plugin.origin.said})")
    perms = ", ".join(
        f"{p['scope']}{'' if p['granted'] else ' (not granted)'}" for p in info["permissions"]
    )
    say(f"  permissions: {perms or 'none'}")
    box = info["sandbox"]
    say(f"  sandbox:     {box['level']}")
    for layer in SANDBOX_LINES:
        say(f"    {layer + ':':<14}{box[layer]}")
    _say_limits(info["limits"])
    if info["mcp"] is not None:
        server = info["mcp"]
        say(f"  mcp server:  {server['package'] or server['entry']} ({server['runtime']})")
        if server["args"]:
            say(f"    {'arguments:':<14}{' '.join(server['args'])}")
        if server["env"]:
            say(f"    {'environment:':<14}{', '.join(server['env'])} (values kept private)")
        review = f"deeting mcp review {spec.name}"
        say(f"    {'tools pinned:':<14}{server['approved']} (to see changes: {review})")
    if info["dependencies"]:
        pins = ", ".join(f"{d['name']}=={d['version']}" for d in info["dependencies"])
        say(f"  dependencies: {pins}")
        say(f"    {'installed in:':<14}{info['deps_dir']}")
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


def _mcp_info(spec: PluginSpec) -> dict[str, Any] | None:
    """What an MCP plugin runs, and when its tools were approved (mcp-tools.json)."""
    server = spec.mcp
    if server is None:
        return None
    try:
        approved = str(orjson.loads((spec.root / PINS_FILE).read_bytes()).get("approved", "?"))
    except (OSError, orjson.JSONDecodeError, AttributeError):
        approved = "unknown (mcp-tools.json is unreadable)"
    return {**server.to_json(), "approved": approved}


def _limits(kernel: Kernel, spec: PluginSpec, folders: Sequence[Path]) -> dict[str, str]:
    from deeting_tui.sandbox.probe import probe

    cgroups = kernel.confinement.cgroups
    described = describe_limits(
        spec.limits,
        cgroups,
        user_namespaces=probe().user_namespaces,
        disk_walked=walked_instead(folders, kernel.confinement.disk),
    )
    if spec.mcp is not None and spec.mcp.runtime == "node":
        # V8's WebAssembly reservations rule out an address-space limit (process_limits.py).
        described["memory_mb"] = described["memory_mb"].replace(
            "RLIMIT_AS per process", "RLIMIT_DATA per process"
        )
    return described


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
