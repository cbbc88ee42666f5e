"""Stored events into the chat's widgets, and the rule for an echo (a reply that repeats the
tool result drawn just before it), shared by the live chat and the replay of a session."""

from __future__ import annotations

import orjson
from textual.widget import Widget

from deeting_tui.kernel.events import ErrorEvent, Event, Reply, ToolCall, ToolResult, UserMessage

from ..hints import chat_event_line
from ..widgets.transcript import ToolCallBlock, message_widgets

#: An echo: the kind of event the kernel sends after a tool result that repeats it, and its text.
Echo = tuple[type[Reply] | type[ErrorEvent], str]


def echo_of(result: ToolResult) -> Echo | None:
    """The event the kernel sends after this tool result when it repeats it: the reply of a
    direct or triggered call is the result's summary (``ToolOutcome.summary``), a failed
    call's error is ``tool: error``. A model's own reply after its tool calls is different
    text, and is shown."""
    if result.renderer_error:
        return None  # the kernel's error about the data comes next: show it, and the reply
    if not result.ok:
        return ErrorEvent, f"{result.tool}: {result.error}"
    if result.text:
        return Reply, result.text
    if result.data is not None:
        return Reply, orjson.dumps(result.data).decode()
    return Reply, "(no output)"


def repeats(echo: Echo | None, event: Event) -> bool:
    """Whether ``event`` is the echo (``echo_of``) of the tool result drawn just before it."""
    if isinstance(event, ErrorEvent):
        said = event.message
    elif isinstance(event, Reply):
        said = event.text
    else:
        return False
    return echo is not None and echo == (type(event), said)


def batch_start(events: list[Event], size: int) -> int:
    """Where the last ``size`` events begin, moved forward to the start of a turn (a user
    message) when one is in them, so that a tool call and its result are drawn together."""
    start = max(0, len(events) - size)
    if start == 0:
        return 0
    for index in range(start, len(events)):
        if isinstance(events[index], UserMessage):
            return index
    return start


def replay(events: list[Event]) -> tuple[list[Widget], list[tuple[ToolCallBlock, ToolResult]]]:
    """The widgets of stored events (neutralised already), and each tool block with the result
    to finish it with once mounted. Built in one pass and mounted at once: a message per event
    would cost a round of the message loop each. As live, the reply or error that repeats a
    tool result right after it (``echo_of``) is not drawn a second time."""
    widgets: list[Widget] = []
    results: list[tuple[ToolCallBlock, ToolResult]] = []
    calls: dict[str, ToolCallBlock] = {}  # a repeated id (old sessions): the newest call
    echo: Echo | None = None
    for event in events:
        repeated = repeats(echo, event)
        echo = None  # an echo is only ever the event right after its result
        if repeated:
            continue
        if isinstance(event, UserMessage):
            widgets.extend(message_widgets("user", event.text))
        elif isinstance(event, Reply):
            widgets.extend(message_widgets("reply", chat_event_line(event)))
        elif isinstance(event, ErrorEvent):
            widgets.extend(message_widgets("error", chat_event_line(event)))
        elif isinstance(event, ToolCall):
            block = ToolCallBlock(event.call_id, event.tool or "?", event.plugin, event.args)
            calls[event.call_id] = block
            widgets.append(block)
        elif isinstance(event, ToolResult):
            found = calls.pop(event.call_id, None)
            if found is not None:
                results.append((found, event))
                echo = echo_of(event)
    return widgets, results
