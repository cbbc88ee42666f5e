"""Stored events into the chat's widgets, and the rule for an echo (a reply that repeats the
tool result drawn just before it), shared by the live chat and the replay of a session."""

from __future__ import annotations

from typing import Any

import orjson
from textual.widget import Widget

from ..widgets.transcript import ToolCallBlock, message_widgets


def echo_of(result: dict[str, Any]) -> tuple[str, str] | None:
    """The event the kernel sends after this tool result when it repeats it: the reply of a
    direct or triggered call is the result's summary (``ToolOutcome.summary``), a failed
    call's error is ``tool: error``. A model's own reply after its tool calls is different
    text, and is shown."""
    if result.get("renderer_error"):
        return None  # the kernel's error about the data comes next: show it, and the reply
    if not result.get("ok"):
        return "error", f"{result.get('tool')}: {result.get('error')}"
    text, data = result.get("text"), result.get("data")
    if text:
        return "reply", str(text)
    if data is not None:
        return "reply", orjson.dumps(data).decode()
    return "reply", "(no output)"


def repeats(echo: tuple[str, str] | None, event: dict[str, Any]) -> bool:
    """Whether ``event`` is the echo (``echo_of``) of the tool result drawn just before it."""
    kind = event.get("type")
    said = event.get("message") if kind == "error" else event.get("text")
    return echo is not None and echo == (kind, said)


def _batch_start(events: list[dict[str, Any]], size: int) -> int:
    """Where the last ``size`` events begin, moved forward to the start of a turn (a user
    message) when one is in them, so that a tool call and its result are drawn together."""
    start = max(0, len(events) - size)
    if start == 0:
        return 0
    for index in range(start, len(events)):
        if events[index].get("type") == "user":
            return index
    return start


def _replay(
    events: list[dict[str, Any]],
) -> tuple[list[Widget], list[tuple[ToolCallBlock, dict[str, Any]]]]:
    """The widgets of stored events (neutralised already), and each tool block with the result
    to finish it with once mounted. Built in one pass and mounted at once: a message per event
    would cost a round of the message loop each. As live, the reply or error that repeats a
    tool result right after it (``echo_of``) is not drawn a second time."""
    widgets: list[Widget] = []
    results: list[tuple[ToolCallBlock, dict[str, Any]]] = []
    calls: dict[str, ToolCallBlock] = {}  # a repeated id (old sessions): the newest call
    echo: tuple[str, str] | None = None
    for event in events:
        kind = event.get("type")
        repeated = repeats(echo, event)
        echo = None  # an echo is only ever the event right after its result
        if repeated:
            continue
        if kind in ("user", "reply"):
            widgets.extend(message_widgets(kind, str(event.get("text", ""))))
        elif kind == "error":
            widgets.extend(message_widgets("error", str(event.get("message", ""))))
        elif kind == "tool_call":
            call_id = str(event.get("call_id"))
            block = ToolCallBlock(
                call_id, str(event.get("tool") or "?"), event.get("plugin"), event.get("args") or {}
            )
            calls[call_id] = block
            widgets.append(block)
        elif kind == "tool_result":
            found = calls.pop(str(event.get("call_id")), None)
            if found is not None:
                results.append((found, event))
                echo = echo_of(event)
    return widgets, results
