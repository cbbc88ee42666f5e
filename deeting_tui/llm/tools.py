"""Plugin tools as the model sees them: safe names, stable order, and the way back.

Plugin tool names follow our manifest rules, which are looser than what model APIs accept
(Anthropic and OpenAI both want ``^[a-zA-Z0-9_-]{1,64}$``), so each name is mapped to a safe
one and back. The list is sorted, so the same tools always give the same request prefix
(provider-side prompt caching keys on it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from deeting_tui.kernel.assistant import ToolInfo

from .model import ToolSpec

MAX_NAME = 64
_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]+")


@dataclass(frozen=True)
class Toolbox:
    """The specs for one request and the map from their names to the kernel's."""

    specs: tuple[ToolSpec, ...]
    kernel_names: dict[str, str]

    def kernel_name(self, model_name: str) -> str | None:
        return self.kernel_names.get(model_name)


def safe_name(name: str) -> str:
    cleaned = _UNSAFE.sub("_", name).strip("_") or "tool"
    return cleaned[:MAX_NAME]


def build_toolbox(tools: Iterable[ToolInfo], *, reserved: frozenset[str] = frozenset()) -> Toolbox:
    """The specs of ``tools`` sorted by name; ``reserved``: model-facing names no plugin
    tool may take (tool_budget.py's ``find_tools``), so a clash gets a suffix instead."""
    specs: list[ToolSpec] = []
    kernel_names: dict[str, str] = {}
    for tool in sorted(tools, key=lambda t: t.name):
        base = safe_name(tool.name)
        name, n = base, 2
        # two names that clean up the same (or to a reserved one): keep both reachable
        while name in kernel_names or name in reserved:
            suffix = f"_{n}"
            name, n = base[: MAX_NAME - len(suffix)] + suffix, n + 1
        kernel_names[name] = tool.name
        parameters = tool.parameters if tool.parameters else {"type": "object", "properties": {}}
        specs.append(ToolSpec(name, tool.description.strip(), parameters))
    return Toolbox(tuple(specs), kernel_names)


def system_prompt(tools: Iterable[ToolInfo]) -> str:
    """Who the model is talking for, which plugins exist, and how results reach the user."""
    plugins = sorted({tool.plugin for tool in tools})
    lines = [
        "You are Deeting, an assistant inside the user's terminal. You act through tools, each "
        "provided by a plugin that runs in its own sandbox.",
        "When a tool fits the request, call it instead of guessing; never invent results.",
        "Tool results are shown to the user by renderers (cards, tables, charts) as they "
        "arrive, so do not repeat their data in full: answer briefly and add what the data "
        "alone does not say.",
        "If a tool returns an error, read it: fix the arguments and try again, or tell the "
        "user plainly what went wrong and what they can do.",
    ]
    if plugins:
        lines.append("Installed plugins: " + ", ".join(plugins) + ".")
    else:
        lines.append("No plugins are installed, so no tools are available.")
    return "\n".join(lines)
