"""The Messages API wire, both ways: neutral messages and tools in its shapes, its raw
stream events back as neutral events and one :class:`TurnDone`.

Apart from the client (``anthropic_provider.py``) because it is plain data: the API's rules
(alternating roles, tool_result blocks before text, tool input arriving as JSON fragments)
are met here, and a malformed tool call becomes a :class:`ToolCall` with ``arguments_error``
rather than an exception, so the model is told and can try again. The SDK's types are named
for the type checker only: importing this loads no SDK.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .model import (
    Event,
    Message,
    ProviderError,
    TextDelta,
    ToolCall,
    ToolCallStarted,
    ToolSpec,
    TurnDone,
    Usage,
)

if TYPE_CHECKING:
    from anthropic.types import (
        MessageParam,
        RawMessageStreamEvent,
        TextBlockParam,
        ToolParam,
        ToolResultBlockParam,
        ToolUseBlockParam,
    )

    Block = TextBlockParam | ToolUseBlockParam | ToolResultBlockParam

__all__ = ["ERROR_CHARS", "StreamTurn", "to_wire_messages", "to_wire_tools"]

ERROR_CHARS = 200  # how much of the server's error message goes into the one line


_STOP_REASONS = {
    "end_turn": "end_turn",
    "stop_sequence": "end_turn",
    "tool_use": "tool_use",
    "max_tokens": "max_tokens",
}


@dataclass
class _ToolBlock:
    id: str
    name: str
    json_parts: list[str] = field(default_factory=list)


@dataclass
class StreamTurn:
    """Accumulates one streamed response into a :class:`TurnDone`."""

    texts: dict[int, list[str]] = field(default_factory=dict)
    tools: dict[int, _ToolBlock] = field(default_factory=dict)
    stop_reason: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    stopped: bool = False

    def feed(self, event: RawMessageStreamEvent) -> list[Event]:
        """Take one raw event; return what to tell the caller now."""
        if event.type == "message_start":
            self.input_tokens = event.message.usage.input_tokens
            self.output_tokens = event.message.usage.output_tokens
        elif event.type == "content_block_start":
            block = event.content_block
            if block.type == "text":
                self.texts[event.index] = [block.text]
                return [TextDelta(block.text)] if block.text else []
            if block.type == "tool_use":
                self.tools[event.index] = _ToolBlock(block.id, block.name)
                return [ToolCallStarted(block.id, block.name)]
            # thinking and server-side tool blocks are not part of the neutral model
        elif event.type == "content_block_delta":
            delta = event.delta
            if delta.type == "text_delta" and event.index in self.texts:
                self.texts[event.index].append(delta.text)
                return [TextDelta(delta.text)] if delta.text else []
            if delta.type == "input_json_delta" and event.index in self.tools:
                self.tools[event.index].json_parts.append(delta.partial_json)
        elif event.type == "message_delta":
            self.stop_reason = event.delta.stop_reason
            self.output_tokens = event.usage.output_tokens
            if event.usage.input_tokens is not None:
                self.input_tokens = event.usage.input_tokens
        elif event.type == "message_stop":
            self.stopped = True
        return []

    def finish(self) -> TurnDone:
        if not self.stopped:
            # Retryable: the agent loop only retries when nothing was shown yet.
            raise ProviderError(
                "Anthropic's response ended before message_stop — try again",
                kind="protocol",
                retryable=True,
            )
        text = "".join("".join(self.texts[i]) for i in sorted(self.texts))
        calls = tuple(_tool_call(self.tools[i]) for i in sorted(self.tools))
        return TurnDone(
            text=text,
            tool_calls=calls,
            stop_reason=_STOP_REASONS.get(self.stop_reason or "", "other"),
            usage=Usage(self.input_tokens, self.output_tokens),
        )


def _tool_call(block: _ToolBlock) -> ToolCall:
    raw = "".join(block.json_parts)
    if not raw.strip():
        return ToolCall(block.id, block.name, {})  # a tool without parameters
    try:
        value = json.loads(raw)
    except ValueError as exc:
        return ToolCall(block.id, block.name, {}, f"not valid JSON ({exc}): {raw[:ERROR_CHARS]}")
    if not isinstance(value, dict):
        kind = type(value).__name__
        return ToolCall(block.id, block.name, {}, f"expected a JSON object, got {kind}")
    return ToolCall(block.id, block.name, value)


def to_wire_tools(tools: Sequence[ToolSpec]) -> list[ToolParam]:
    return [
        {"name": t.name, "description": t.description, "input_schema": t.parameters} for t in tools
    ]


def to_wire_messages(messages: Sequence[Message]) -> list[MessageParam]:
    """Neutral messages as Messages API ``messages``.

    The API requires alternating roles and, in a user message, tool_result blocks before any
    text; consecutive messages of one role are merged to satisfy both. Empty messages are
    dropped (the API rejects empty content).
    """
    merged: list[tuple[str, list[Block]]] = []
    for message in messages:
        blocks = _blocks(message)
        if not blocks:
            continue
        if merged and merged[-1][0] == message.role:
            merged[-1][1].extend(blocks)
        else:
            merged.append((message.role, blocks))
    wire: list[MessageParam] = []
    for role, blocks in merged:
        blocks.sort(key=lambda b: b["type"] != "tool_result")  # stable: keeps the order
        if role == "user":
            first = blocks[0]
            if len(blocks) == 1 and first["type"] == "text":
                wire.append({"role": "user", "content": first["text"]})
            else:
                wire.append({"role": "user", "content": blocks})
        else:
            wire.append({"role": "assistant", "content": blocks})
    return wire


def _blocks(message: Message) -> list[Block]:
    blocks: list[Block] = []
    for result in message.tool_results:
        blocks.append(
            {
                "type": "tool_result",
                "tool_use_id": result.call_id,
                "content": result.content,
                "is_error": result.is_error,
            }
        )
    if message.text:
        blocks.append({"type": "text", "text": message.text})
    for call in message.tool_calls:
        blocks.append(
            {"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments}
        )
    return blocks
