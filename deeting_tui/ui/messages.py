"""App-wide messages: kernel events cross into the UI only as these."""

from __future__ import annotations

from typing import Any

from textual.message import Message

from deeting_tui.terminal_text import neutralise_tree


class KernelEvent(Message):
    """One event from the kernel's listener (user, reply, reply_delta, tool_call, …).

    This is where a kernel event becomes the chat's, live or replayed from a stored session,
    so it is where plugin text is neutralised for the terminal: every string in the event
    (reply text and deltas, tool arguments, errors, notices, progress messages, result data,
    stream payloads) as ``deeting_tui.terminal_text.neutralise`` leaves it. The kernel and
    the stored session keep the original; widgets only ever see the neutralised copy.
    """

    def __init__(self, event: dict[str, Any]) -> None:
        super().__init__()
        self.event: dict[str, Any] = neutralise_tree(event)
