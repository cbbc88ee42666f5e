"""The committed tool catalogue and labelled queries the tool-budget bench measures recall on.

``data/tool_catalog.json``: 261 hand-written tools of 76 plugins, in the style of everyday
plugins and MCP servers (files, git, calendar, currency, units, translation, weather, notes,
timers, system info, http, search, maths, …): name, description, JSON-schema parameters, and
the plugin's name and description. ``data/tool_queries.json``: 213 user messages written as
people type them (not from the descriptions; paraphrases for some tools), each labelled
with the one tool it needs. Both are fixed: a change to either changes the recall figures.

Small and importable (the scale bench may install the catalogue as plugins' tools).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from deeting_tui.kernel.assistant import ToolInfo

__all__ = ["load_catalog", "load_queries", "tool_infos"]

DATA = Path(__file__).resolve().parent / "data"


def load_catalog() -> list[dict[str, Any]]:
    """The catalogue's tools: dicts with name, description, parameters, plugin and
    plugin_description, in the file's order."""
    tools: list[dict[str, Any]] = json.loads((DATA / "tool_catalog.json").read_text())["tools"]
    return tools


def load_queries() -> list[dict[str, str]]:
    """The labelled queries: dicts with ``query`` (what the user types) and ``tool``."""
    queries: list[dict[str, str]] = json.loads((DATA / "tool_queries.json").read_text())["queries"]
    return queries


def tool_infos(count: int | None = None) -> list[ToolInfo]:
    """The first ``count`` catalogue tools (all by default) as the kernel hands them to the
    assistant; past the catalogue's size, numbered copies of it (for timing at 1,000)."""
    catalog = load_catalog()
    count = len(catalog) if count is None else count
    infos = []
    for i in range(count):
        tool = catalog[i % len(catalog)]
        copy = i // len(catalog)
        suffix = f"_{copy}" if copy else ""
        infos.append(
            ToolInfo(
                name=tool["name"] + suffix,
                plugin=tool["plugin"] + suffix.replace("_", "-"),
                description=tool["description"],
                parameters=tool["parameters"],
                plugin_description=tool["plugin_description"],
            )
        )
    return infos
