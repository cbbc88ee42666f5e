"""``deeting mcp review NAME``: how a server's tools changed since the user approved them.

A server can change a tool's description or schema after the user added it (the "rug pull":
an innocent description at install, instructions to the model later). The bridge refuses a
changed tool and the model keeps the approved spec; this command starts the server in its
sandbox, shows each change as a diff of the approved and the current definition, and on the
user's yes writes the current ones as the new pins (mcp-tools.json, llm-tool.yaml). Tools the
server added are offered the same way: none reaches the model unapproved.
"""

from __future__ import annotations

import asyncio
import difflib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deeting_tui.errors import DeetingError, Fix, Hint
from deeting_tui.plugin.mcp_server import PINNED_FIELDS, PINS_FILE
from deeting_tui.terminal_text import neutralise_line

if TYPE_CHECKING:
    from deeting_tui.kernel.kernel import Kernel

__all__ = ["ReviewError", "review_changes", "run_review", "tool_diff"]


class ReviewError(DeetingError):
    """The plugin is not an MCP server, or its server could not be asked."""


def run_review(args: Any) -> int:
    from deeting_tui.command_output import error_line, fail
    from deeting_tui.plugin_commands import with_kernel

    async def handler(kernel: Kernel, _args: Any) -> int:
        try:
            return await review_changes(kernel, args.name, yes=args.yes)
        except DeetingError as exc:
            return fail(error_line(exc))

    return asyncio.run(with_kernel(handler, args))


async def review_changes(kernel: Kernel, name: str, *, yes: bool) -> int:
    from deeting_tui.mcp.add import pinned_tools, read_tools, write_pins

    record = kernel.loader.installed.get(name)
    if record is None:
        raise ReviewError(f"no plugin '{name}' is installed", Hint(Fix.LIST))
    spec = kernel.loader.code_spec(name, record.version)
    if spec.mcp is None:
        raise ReviewError(f"'{name}' is not an MCP server (it has no tools pinned to review)")
    pinned = _pins(spec.root)
    granted = kernel.loader.grants.granted(name)
    live = await read_tools(kernel, spec.root, granted)
    diff = tool_diff(pinned, live["tools"])
    if not diff:
        print(f"{name}: its tools are as you approved them", flush=True)
        return 0
    for line in diff:
        print(neutralise_line(line), flush=True)
    if not yes:
        if not sys.stdin.isatty():
            print(
                f"deeting: error: the changes above are not approved — approve them with: "
                f"deeting mcp review {name} --yes",
                file=sys.stderr,
            )
            return 1
        answer = input(f"Approve these changes to {name}'s tools? [y/N] ").strip().lower()
        if answer not in ("y", "yes"):
            print("not approved: the model keeps the approved tools", flush=True)
            return 1
    tools = pinned_tools(live["tools"], lambda line: print(neutralise_line(line), flush=True))
    write_pins(spec.root, live, tools)
    print(
        f"approved: {name}'s tools are pinned as they are now (a running chat uses them "
        "from the plugin's next start)",
        flush=True,
    )
    return 0


def _pins(root: Path) -> list[dict[str, Any]]:
    try:
        document = json.loads((root / PINS_FILE).read_text("utf-8"))
        tools = document["tools"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ReviewError(f"{root / PINS_FILE}: unreadable ({exc})") from None
    return [t for t in tools if isinstance(t, dict)]


def tool_diff(pinned: list[dict[str, Any]], live: list[dict[str, Any]]) -> list[str]:
    """Every change from ``pinned`` to ``live`` as lines for a person: a unified diff per
    changed tool, and the tools removed and added."""
    before = {str(t.get("name")): t for t in pinned}
    after = {str(t.get("name")): t for t in live}
    lines: list[str] = []
    for tool_name in sorted(before.keys() | after.keys()):
        old, new = before.get(tool_name), after.get(tool_name)
        if old is not None and new is None:
            lines.append(f"removed: {tool_name}")
            continue
        if old is None and new is not None:
            lines.append(f"added: {tool_name} (offered to the model only once approved)")
            lines.extend(_render(new, "+"))
            continue
        assert old is not None and new is not None
        a, b = _shown(old), _shown(new)
        if a != b:
            lines.append(f"changed: {tool_name}")
            lines.extend(
                line.rstrip("\n")
                for line in difflib.unified_diff(a, b, "approved", "now", lineterm="", n=2)
            )
    return lines


def _shown(tool: dict[str, Any]) -> list[str]:
    subset = {k: tool[k] for k in PINNED_FIELDS if k in tool}
    return json.dumps(subset, indent=2, sort_keys=True, ensure_ascii=False).splitlines()


def _render(tool: dict[str, Any], mark: str) -> list[str]:
    return [f"{mark} {line}" for line in _shown(tool)]
