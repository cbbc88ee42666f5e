"""The ``mcp`` object of an MCP plugin's kimai.json, and the files ``deeting mcp add`` writes.

A stock MCP server installed as plugin NAME is an ordinary plugin folder (kimai.json,
package.json, llm-tool.yaml) with no ``src/``: its worker runs Deeting's bridge
(``deeting_tui.mcp.bridge``) instead of plugin code. What the bridge starts is said here:

``"mcp": {"runtime": "python", "entry": "server/venv/bin/mcp-server-time", "args": [],
"package": "mcp-server-time==2026.10.19", "env": ["API_KEY"]}``

- ``runtime``: ``python`` (``entry`` is a script in the plugin's venv, run by the venv's
  interpreter), ``node`` (``entry`` is a JavaScript file in the plugin's ``server/``, run by
  the machine's node), or ``command`` (``entry`` is an absolute path to a program already on
  the machine).
- ``env``: the names of the variables the user gave this server (``--env``, or an imported
  file's ``env``); their values live in the user's grant store, never in the plugin folder.

``mcp-tools.json`` beside it pins the tools as the user approved them (the server's own
``tools/list`` entries, whole); llm-tool.yaml is derived from it. Only ``deeting mcp add``
writes these: an author's folder or an archive carrying an ``mcp`` object is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "LIST_TOOLS",
    "MCP_KEY",
    "PINS_FILE",
    "RUNTIMES",
    "SERVER_DIR",
    "McpServer",
    "mcp_server",
]

MCP_KEY = "mcp"
PINS_FILE = "mcp-tools.json"
#: Where the server's installation lives inside the plugin's code folder.
SERVER_DIR = "server"
RUNTIMES = ("python", "node", "command")
#: The reserved tool name ``mcp add`` and ``mcp review`` call to read the server's live tool
#: list through the worker's bridge: no llm-tool.yaml can hold it (tool names have no '/'),
#: so no model and no ``/TOOL`` line can call it.
LIST_TOOLS = "mcp/tools"


@dataclass(frozen=True)
class McpServer:
    """How to start one stock MCP server (kimai.json's ``mcp`` object, checked by the
    schema before it gets here)."""

    runtime: str
    entry: str
    args: tuple[str, ...] = ()
    package: str = ""
    env: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "runtime": self.runtime,
            "entry": self.entry,
            "args": list(self.args),
            "package": self.package,
            "env": list(self.env),
        }


def mcp_server(kimai: dict[str, Any]) -> McpServer | None:
    """The server a checked kimai.json describes, or None for an ordinary plugin."""
    section = kimai.get(MCP_KEY)
    if not isinstance(section, dict):
        return None
    return McpServer(
        runtime=str(section["runtime"]),
        entry=str(section["entry"]),
        args=tuple(str(a) for a in section.get("args", ())),
        package=str(section.get("package", "")),
        env=tuple(str(k) for k in section.get("env", ())),
    )
