"""What a checked plugin is: :class:`PluginSpec` and its parts, and the ways a check says no.

``checker.py`` turns a folder (kimai.json + package.json + llm-tool.yaml + src/index.py) into
one of these or into a list of :class:`Problem`; everything after install (the kernel, the
router, the watchdog, the plugins screen) only ever reads the spec, so it lives apart from
the checks that build it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from deeting_tui.errors import DeetingError
from deeting_tui.plugin.mcp_server import McpServer, mcp_server
from deeting_tui.plugin.scopes import Scope, parse_scope
from deeting_tui.plugin.triggers import TriggerPattern, compile_trigger

__all__ = [
    "EventSubscription",
    "Limits",
    "ManifestError",
    "PluginSpec",
    "Problem",
    "ToolSpec",
    "TriggerSpec",
    "build_spec",
]

#: Trigger and event priorities (kimai.schema.json says the same; the kernel clamps to it).
PRIORITY_MIN, PRIORITY_MAX = 0, 100
TRIGGER_PRIORITY, EVENT_PRIORITY = 50, 0


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a plugin, located by file and field so an author can go fix it."""

    file: str
    field: str
    message: str

    def __str__(self) -> str:
        return ": ".join(part for part in (self.file, self.field, self.message) if part)


class ManifestError(DeetingError):
    """A plugin was refused; ``problems`` lists every reason, not just the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, Any] = field(hash=False)


@dataclass(frozen=True)
class TriggerSpec:
    regex: str
    tool: str
    priority: int = TRIGGER_PRIORITY
    #: Messages it routes (kimai.json's optional ``trigger.examples``, each checked to match):
    #: what help shows the user to type, instead of the regex.
    examples: tuple[str, ...] = ()

    @cached_property
    def pattern(self) -> TriggerPattern:
        """Compiled once, by RE2 (linear time): the kernel tries it on every user message."""
        return compile_trigger(self.regex)


@dataclass(frozen=True)
class EventSubscription:
    topic: str
    priority: int = EVENT_PRIORITY


@dataclass(frozen=True)
class Limits:
    """What one plugin may use (kimai.json ``limits``; defaults here and in the schema).

    Generous for real plugins, tight enough that a runaway stops long before the machine
    does: memory counts every kind (private, shared, memfd) across all its processes; tasks
    are processes and threads; disk is its data, cache and temp folders together; CPU is
    in percent of one core, overall and while nothing asked the plugin to work.
    """

    call_timeout: float = 30.0
    memory_mb: int = 1024
    tasks: int = 128
    disk_mb: int = 512
    cpu_percent: int = 100
    idle_cpu_percent: int = 25


@dataclass(frozen=True)
class PluginSpec:
    root: Path
    name: str
    version: str
    description: str
    author: str
    license: str
    permissions: tuple[Scope, ...]
    trigger: TriggerSpec | None
    renderer: str | None
    events: tuple[EventSubscription, ...]
    tools: tuple[ToolSpec, ...]
    limits: Limits
    manifest: dict[str, Any] = field(compare=False, hash=False, repr=False)

    def tool(self, name: str) -> ToolSpec | None:
        return next((tool for tool in self.tools if tool.name == name), None)

    @cached_property
    def mcp(self) -> McpServer | None:
        """The stock MCP server this plugin runs instead of its own code, if it is one."""
        return mcp_server(self.manifest)


def build_spec(
    root: Path,
    kimai: dict[str, Any],
    package: dict[str, Any],
    tools: list[dict[str, Any]],
    trigger: TriggerSpec | None,
) -> PluginSpec:
    """Only called once every check has passed, so the documents have the schema's shape."""
    limits = kimai.get("limits", {})
    return PluginSpec(
        root=root,
        name=kimai["name"],
        version=kimai["version"],
        description=_text(kimai, package, "description"),
        author=_text(kimai, package, "author"),
        license=_text(kimai, package, "license"),
        permissions=tuple(parse_scope(text) for text in kimai.get("permissions", [])),
        trigger=trigger,
        renderer=kimai.get("renderer"),
        events=tuple(
            EventSubscription(event["topic"], int(event.get("priority", EVENT_PRIORITY)))
            for event in kimai.get("events", [])
        ),
        tools=tuple(
            ToolSpec(tool["name"], tool["description"], tool["parameters"]) for tool in tools
        ),
        limits=_limits(limits),
        manifest=kimai,
    )


def _limits(limits: dict[str, Any]) -> Limits:
    """kimai.json's ``limits`` over the defaults (the schema has checked every value)."""
    default = Limits()
    return Limits(
        call_timeout=float(limits.get("call_timeout", default.call_timeout)),
        memory_mb=int(limits.get("memory_mb", default.memory_mb)),
        tasks=int(limits.get("tasks", default.tasks)),
        disk_mb=int(limits.get("disk_mb", default.disk_mb)),
        cpu_percent=int(limits.get("cpu_percent", default.cpu_percent)),
        idle_cpu_percent=int(limits.get("idle_cpu_percent", default.idle_cpu_percent)),
    )


def _text(kimai: dict[str, Any], package: dict[str, Any], key: str) -> str:
    """kimai.json wins; package.json fills in (npm's author may be ``{name, email}``)."""
    value = kimai.get(key, package.get(key, ""))
    if isinstance(value, dict):
        value = value.get("name", "")
    return value if isinstance(value, str) else ""
