"""App-wide messages: kernel events cross into the UI only as these."""

from __future__ import annotations

from typing import Any

from textual.message import Message


class KernelEvent(Message):
    """One event from the kernel's listener (user, reply, reply_delta, tool_call, …)."""

    def __init__(self, event: dict[str, Any]) -> None:
        super().__init__()
        self.event = event
