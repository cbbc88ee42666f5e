"""What the chat's screens need of the app that shows them, and nothing more.

The app imports its screens; a screen that imported the app back would tie the two into a
cycle. So a screen sees the app as a :class:`ChatHost` (the kernel, the open session, a way
to send a line and wait for it, which Esc cancels), and asks for everything else (a new
session, the session list, the header redrawn) by posting one of the messages in
``messages.py``, which the app handles.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from deeting_tui.kernel.kernel import Kernel


class ChatHost(Protocol):
    """The app as a screen sees it."""

    session_id: str | None
    #: Set once the kernel has started and the session is shown (the chat paints before).
    started: asyncio.Event

    @property
    def has_kernel(self) -> bool:
        """Whether the kernel is composed (it may be starting still)."""
        ...

    @property
    def kernel(self) -> Kernel:
        """The kernel: only once ``started`` is set."""
        ...

    async def submit(self, text: str) -> None:
        """Send ``text`` to the kernel in the open session; returns when the turn is over."""
        ...
