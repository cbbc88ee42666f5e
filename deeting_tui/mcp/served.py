"""What an MCP client sees of Deeting's tools and results (``deeting mcp serve``): pure
functions from the kernel's tool infos and outcomes to the SDK's types, and the pinned
annotations of a stock MCP server's tools.

The decisions, in one place:

- a tool keeps its name exactly as the kernel knows it; its description and its parameters'
  JSON Schema are llm-tool.yaml's; ``_meta`` names its plugin;
- a success is its text summary as one ``TextContent`` and its data (the renderer's payload)
  as ``structuredContent``: an object as it is, anything else as ``{"result": DATA}``;
- a failure is ``isError`` with the kernel's one-line message.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import Any

import mcp_types as types

from deeting_tui.kernel.assistant import ToolInfo, ToolOutcome
from deeting_tui.plugin.manifest import PluginSpec
from deeting_tui.plugin.mcp_server import PINS_FILE

#: Our keys in a result's ``_meta`` (MCP: a prefix, then a slash, then the name).
META_PLUGIN = "deeting/plugin"
META_RENDERER = "deeting/renderer"
META_SESSION = "deeting/session"
META_CALL = "deeting/call"


def tool_entry(info: ToolInfo, pinned: Pinned | None = None) -> types.Tool:
    """A kernel tool as ``tools/list`` shows it: its name exactly as the kernel knows it, its
    description and its parameters' JSON Schema (llm-tool.yaml); the plugin in ``_meta``.
    A stock MCP server's tool (``deeting mcp add``) also has the title and annotations its
    server gave it, as the user approved them (the pins)."""
    return types.Tool(
        name=info.name,
        title=pinned.title if pinned else None,
        description=info.description,
        input_schema=info.parameters,
        annotations=pinned.annotations if pinned else None,
        _meta={META_PLUGIN: info.plugin},
    )


@dataclass(frozen=True)
class Pinned:
    """What a stock MCP server said of one tool besides its schema, as pinned at ``mcp add``:
    its hints (read-only, destructive …) are the server's claims, passed on as such."""

    title: str | None
    annotations: types.ToolAnnotations | None


def read_pins(spec: PluginSpec) -> dict[str, Pinned]:
    """The pinned titles and annotations of an MCP plugin's tools, by name; none for any
    other plugin (an author's folder cannot carry pins: only ``mcp add`` writes them) or for
    pins that cannot be read (the bridge refuses to start on those anyway)."""
    if spec.mcp is None:
        return {}
    try:
        pins = json.loads((spec.root / PINS_FILE).read_text("utf-8"))
        tools = pins["tools"]
    except (OSError, ValueError, TypeError, KeyError):
        return {}
    found: dict[str, Pinned] = {}
    for tool in tools if isinstance(tools, list) else []:
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            continue
        annotations = None
        if isinstance(tool.get("annotations"), dict):
            with contextlib.suppress(ValueError):  # pydantic's ValidationError
                annotations = types.ToolAnnotations.model_validate(tool["annotations"])
        title = tool.get("title")
        if not isinstance(title, str):
            title = annotations.title if annotations and annotations.title else None
        if title is not None or annotations is not None:
            found[tool["name"]] = Pinned(title, annotations)
    return found


def call_result(
    outcome: ToolOutcome, *, session_id: str | None = None, call_id: str | None = None
) -> types.CallToolResult:
    """A kernel outcome as MCP's ``CallToolResult``.

    - Success: the text summary (the plugin's text, else its data as JSON) as one
      ``TextContent``, and the plugin's result data (its renderer's payload) as
      ``structuredContent``: as it is when it is a JSON object, else wrapped as
      ``{"result": DATA}`` (MCP wants an object); none when the plugin returned no data.
    - Failure (a plugin error, a crash, a timeout, a sandbox's refusal, bad arguments, a
      cancelled call): ``isError`` with the kernel's one-line message as the text.
    - ``_meta`` says which plugin answered, its renderer, and the session and call that
      recorded it (to find its card with ``deeting view``).
    """
    meta: dict[str, Any] = {}
    if outcome.plugin:
        meta[META_PLUGIN] = outcome.plugin
    if outcome.ok and outcome.renderer:
        meta[META_RENDERER] = outcome.renderer
    if session_id:
        meta[META_SESSION] = session_id
    if call_id:
        meta[META_CALL] = call_id
    if not outcome.ok:
        text = "cancelled" if outcome.cancelled else (outcome.error or "the call failed")
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=text)],
            is_error=True,
            _meta=meta or None,
        )
    data = outcome.data
    structured = None if data is None else data if isinstance(data, dict) else {"result": data}
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=outcome.summary())],
        structured_content=structured,
        is_error=False,
        _meta=meta or None,
    )


def failed(message: str) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=message)], is_error=True
    )
