"""A plugin as every front end reads it: one state, one origin, the cause of a disable.

:class:`PluginInfo` is built by the service (service.py) from the installed record, the grant
store and the running workers; the words a listing shows (a state's, an origin's) live here,
once, for the CLI and the chat alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from deeting_tui.errors import Fix, Hint
from deeting_tui.plugin.manifest import PluginSpec
from deeting_tui.plugin.scopes import Scope

from .installed import Cause, InstalledPlugin

__all__ = ["COUNTED", "READY_SAID", "Origin", "PluginInfo", "PluginState", "origin_of"]


class PluginState(StrEnum):
    """A plugin's state in one word (healthiest first); the words the CLI and chat show."""

    ENABLED = "enabled"
    READY = "ready"  # enabled; its worker starts when the plugin is first used
    RESTARTING = "restarting"
    NEEDS_CONSENT = "needs consent"
    CRASHED = "crashed"
    DAMAGED = "damaged"
    DISABLED = "disabled"


#: What "ready" means, where a listing says it once.
READY_SAID = "enabled; its worker starts when the plugin is first used"

#: How the chat's header counts the states it mentions (disabled ones go unsaid).
COUNTED = {
    PluginState.RESTARTING: "restarting",
    PluginState.CRASHED: "crashed",
    PluginState.DAMAGED: "damaged",
    PluginState.NEEDS_CONSENT: "awaiting consent",
}


class Origin(StrEnum):
    """Where an installed plugin came from: the word a listing shows."""

    FOLDER = "dev"  # a local dev install from a folder
    ZIP = "zip"
    REGISTRY = "registry"
    BUNDLED = "bundled"  # one of the official plugins deeting carries
    MCP = "mcp"  # a stock MCP server (deeting mcp add)

    @property
    def said(self) -> str:
        """Where it came from, in words, on the CLI and in the chat alike."""
        return {
            Origin.FOLDER: "a local dev install from a folder",
            Origin.ZIP: "from an archive",
            Origin.REGISTRY: "from the registry (verified)",
            Origin.BUNDLED: "from the plugins deeting carries (verified)",
            Origin.MCP: "a stock MCP server, added with deeting mcp add",
        }[self]

    @property
    def words(self) -> str:
        """The same, as the end of ``installed NAME VERSION …``."""
        return self.said if self in (Origin.REGISTRY, Origin.BUNDLED) else f"({self.said})"


REGISTRY_SOURCE = "registry "  # an install's recorded source: "registry URL"
BUNDLED_SOURCE = "bundled with deeting "  # "bundled with deeting VERSION" (store/bundle.py)
MCP_SOURCE = "mcp server "  # "mcp server pypi:mcp-server-time==2026.10.19" (mcp/add.py)


def origin_of(record: InstalledPlugin) -> Origin:
    if record.dev:
        return Origin.FOLDER
    if record.source.startswith(BUNDLED_SOURCE):
        return Origin.BUNDLED
    if record.source.startswith(MCP_SOURCE):
        return Origin.MCP
    return Origin.REGISTRY if record.source.startswith(REGISTRY_SOURCE) else Origin.ZIP


@dataclass(frozen=True)
class PluginInfo:
    """One installed plugin as every front end shows it. ``spec`` is None for a damaged copy
    (``problem`` says what is wrong), which is listed so that it can be uninstalled."""

    name: str
    version: str
    state: PluginState
    origin: Origin
    source: str
    enabled: bool  # recorded as enabled (it starts with the next chat)
    running: bool  # a worker serves it in this process (started, or starting on first use)
    reason: str | None  # why it is disabled, in words
    cause: Cause | None  # what the kernel stored with the reason
    previous: str | None
    spec: PluginSpec | None
    problem: str | None = None
    permissions: tuple[Scope, ...] = ()
    granted: tuple[Scope, ...] = ()
    missing: tuple[Scope, ...] = ()
    #: What the OS sandbox allows with these grants: "level", then one line per layer.
    sandbox: Mapping[str, str] = field(default_factory=dict)

    @property
    def fix(self) -> Hint | None:
        """What brings back a plugin the kernel disabled for a crash loop or its disk quota
        (once fixed, or with space freed): enabling it. The stored ``reason`` says what to
        fix in words; each front end phrases this hint beside it (a command, a key)."""
        if self.cause in (Cause.CRASHED, Cause.QUOTA) and not self.enabled:
            return Hint(Fix.ENABLE, self.name)
        return None

    @property
    def dev(self) -> bool:
        return self.origin is Origin.FOLDER

    @property
    def installed_words(self) -> str:
        return f"installed {self.name} {self.version} {self.origin.words}"
