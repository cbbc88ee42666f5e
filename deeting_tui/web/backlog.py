"""One event-stream client's backlog: the ops not yet written to a page that reads slowly.

While a client reads slowly, a stream's frames coalesce in it: a card's next ``result``
replaces the one still waiting (every frame is a whole payload, so the latest is all a page
needs), which keeps a flooded live card current on a slow page. Only when the backlog still
overflows (many cards, not one fast stream) does the client lose it and get a fresh reset.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field

__all__ = ["CLIENT_QUEUE", "WRITE_BATCH", "Backlog", "StreamClient"]

#: Ops waiting for one slow client before its backlog is dropped for a fresh reset (a
#: stream's frames coalesce first: one waiting frame per card).
CLIENT_QUEUE = 512
#: Ops written to a client at once; a backlog longer than this coalesces frames too.
WRITE_BATCH = 64


class Backlog:
    """A client's ops not yet written, oldest first, where a card's newer frame replaces its
    waiting one.

    Each op has a key: a ``result`` op's is its card (so the latest frame wins and moves to
    the end, after every op published before it: order between cards, and a card's own
    ``card``/``cancelled`` ops before its later frames, are kept); every other op's key is
    unique, so it is never dropped.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._ops: OrderedDict[Hashable, bytes] = OrderedDict()
        self._serial = 0

    def put(self, key: Hashable | None, chunk: bytes, coalesce: bool = True) -> bool:
        """Queue `chunk` (replacing the waiting op with the same key, when `coalesce`);
        False when full."""
        if key is None or not coalesce:
            self._serial += 1
            key = ("op", self._serial)
        elif self._ops.pop(key, None) is not None:
            self._ops[key] = chunk
            return True
        if len(self._ops) >= self.limit:
            return False
        self._ops[key] = chunk
        return True

    def get_nowait(self) -> bytes:
        return self._ops.popitem(last=False)[1]

    def empty(self) -> bool:
        return not self._ops

    def qsize(self) -> int:
        return len(self._ops)

    def clear(self) -> None:
        self._ops.clear()


@dataclass(eq=False)
class StreamClient:
    """One event-stream client: its backlog of encoded ops, and whether it needs a reset."""

    queue: Backlog = field(default_factory=lambda: Backlog(CLIENT_QUEUE))
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    needs_reset: bool = True
    #: The client's socket is full (its writer waits): it reads slower than ops come.
    behind: bool = False

    def push(self, chunk: bytes, key: Hashable | None = None) -> None:
        if self.needs_reset:
            return  # the coming reset holds it
        # A page that keeps up gets every frame (a burst within one write included); one
        # that has fallen behind gets each card's latest.
        coalesce = self.behind or self.queue.qsize() >= WRITE_BATCH
        if not self.queue.put(key, chunk, coalesce):
            self.resync()
            return
        self.wake.set()

    def resync(self) -> None:
        """Drop the backlog: the client gets the whole board again instead."""
        self.queue.clear()
        self.needs_reset = True
        self.wake.set()
