"""The provider-neutral conversation model: what the agent loop speaks, whatever the API.

Each provider converts these to and from its own wire format at its edge (Anthropic Messages,
OpenAI Chat Completions), so the agent loop, the session history and the tests never see a
vendor's shapes. A provider streams :data:`Event`s; the last one is always a
:class:`TurnDone` carrying the whole turn, so a caller that does not care about deltas can
just wait for it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from deeting_tui.errors import DeetingError

__all__ = [
    "Event",
    "Message",
    "Provider",
    "ProviderError",
    "TextDelta",
    "ToolCall",
    "ToolCallStarted",
    "ToolResult",
    "ToolSpec",
    "TurnDone",
    "Usage",
]

Role = Literal["user", "assistant"]
ToolChoice = Literal["auto", "none"]


@dataclass(frozen=True)
class ToolSpec:
    """A tool as the model sees it; ``name`` is already safe for every API (see tools.py)."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True)
class ToolCall:
    """The model asks for a tool. ``arguments`` is the parsed JSON object, or ``{}`` with
    ``arguments_error`` set when the model sent something that is not a JSON object."""

    id: str
    name: str
    arguments: dict[str, Any]
    arguments_error: str | None = None


@dataclass(frozen=True)
class ToolResult:
    """What goes back to the model for one call: text, and whether it is an error."""

    call_id: str
    content: str
    is_error: bool = False


@dataclass(frozen=True)
class Message:
    """One message of the conversation.

    ``user`` messages carry ``text`` and/or the ``tool_results`` answering the previous
    assistant message's calls; ``assistant`` messages carry ``text`` and/or ``tool_calls``.
    """

    role: Role
    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_results: tuple[ToolResult, ...] = ()


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ToolCallStarted:
    """The model began a tool call (its arguments are still streaming)."""

    id: str
    name: str


@dataclass(frozen=True)
class TurnDone:
    """The end of one model response: everything it said and asked for.

    ``stop_reason`` is normalised: ``end_turn``, ``tool_use``, ``max_tokens`` or ``other``.
    """

    text: str
    tool_calls: tuple[ToolCall, ...]
    stop_reason: str
    usage: Usage = field(default_factory=Usage)


Event = TextDelta | ToolCallStarted | TurnDone


class ProviderError(DeetingError):
    """One actionable line for the user, and whether trying again may help.

    ``kind`` is one of ``auth`` (401/403), ``rate_limit`` (429), ``server`` (5xx),
    ``connection`` (refused, DNS, reset), ``timeout``, ``bad_request`` (4xx, a bug or a bad
    model name) or ``protocol`` (the server's answer made no sense).
    """

    def __init__(self, message: str, *, kind: str, retryable: bool = False) -> None:
        super().__init__(message)
        self.kind = kind
        self.retryable = retryable


class Provider(Protocol):
    """A model API. ``stream`` yields events and ends with exactly one TurnDone; it raises
    ProviderError for every failure (never an SDK or httpx exception)."""

    name: str
    model: str

    def stream(
        self,
        *,
        system: str,
        messages: list[Message],
        tools: list[ToolSpec],
        tool_choice: ToolChoice = "auto",
    ) -> AsyncIterator[Event]: ...
