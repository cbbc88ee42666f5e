"""The small interface between the kernel and whatever answers free text (offline or an LLM).

The kernel never imports a provider: the CLI wires one in. An assistant gets the turn's
text, the tools it may use, a way to call them and a way to reply — nothing else of the
kernel, so providers stay swappable and testable with a fake turn.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from deeting_tui.errors import Hint


@dataclass(frozen=True)
class ToolInfo:
    """What an assistant (and a help text) knows about a tool."""

    name: str
    plugin: str
    description: str
    parameters: dict[str, Any] = field(compare=False)
    trigger: str | None = None  # the plugin's trigger regex, when it routes to this tool
    trigger_examples: tuple[str, ...] = ()  # messages that trigger routes, for help texts
    plugin_description: str = ""  # the plugin's own description (the tool budget ranks on it)


@dataclass
class ToolOutcome:
    ok: bool
    tool: str
    plugin: str | None
    data: Any = None
    text: str | None = None
    renderer: str | None = None
    error: str | None = None
    duration_ms: float = 0.0
    #: The caller gave up on the call (Esc, Ctrl-C): not a failure of the plugin's.
    cancelled: bool = False

    def summary(self) -> str:
        """The text a person (or model) sees for this outcome."""
        if not self.ok:
            return f"error: {self.error}"
        if self.text:
            return self.text
        if self.data is not None:
            import orjson

            return orjson.dumps(self.data).decode()
        return "(no output)"


class Reply(Protocol):
    """Answer the turn with ``text``; ``hint``: a fix the answer points to (the offline
    assistant's "install a plugin"), which each front end phrases its own way;
    ``tool_specs``: a model's tool-spec figures for the call that gave the text."""

    def __call__(
        self, text: str, hint: Hint | None = None, tool_specs: dict[str, int] | None = None
    ) -> None: ...


@dataclass
class AssistantTurn:
    session_id: str
    text: str
    tools: list[ToolInfo]
    call_tool: Callable[[str, dict[str, Any]], Awaitable[ToolOutcome]]
    reply: Reply
    fail: Callable[[str], None]  # report an error for this turn (it then counts as failed)
    #: The session so far, before this message: (kind, payload) of each stored event.
    history: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    #: Text as it streams in, before the reply it becomes (shown live, not stored).
    partial: Callable[[str], None] | None = None


class Assistant(Protocol):
    name: str

    async def respond(self, turn: AssistantTurn) -> None: ...
