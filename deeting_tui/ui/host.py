"""What the chat's screens need of the app that shows them, and nothing more.

The app imports its screens; a screen that imported the app back would tie the two into a
cycle. So a screen sees the app as a :class:`ChatHost` (the kernel, the open session, a way
to send a line and wait for it, which Esc cancels), and asks for everything else (a new
session, the session list, the header redrawn) by posting one of the messages in
``messages.py``, which the app handles.
"""

from __future__ import annotations

from typing import Protocol

from deeting_tui.kernel.kernel import Kernel


class ChatHost(Protocol):
    """The app as a screen sees it."""

    kernel: Kernel
    session_id: str | None

    async def submit(self, text: str) -> None:
        """Send ``text`` to the kernel in the open session; returns when the turn is over."""
        ...
