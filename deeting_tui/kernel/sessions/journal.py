"""The kernel's write path into the session store: events committed in small groups.

A message routed to a tool produces four events (user, tool_call, tool_result, reply) in two
bursts with no pause inside either. Committing each burst as one transaction instead of one
per event halves the SQLite locking and WAL writes on the hot path of every message, and
nothing waits longer: a burst is committed at the event loop's next pause — before the kernel
waits for a plugin, the model or the user — or earlier, when ``flush`` is called (the kernel
does so when a turn ends). An event is serialised when it is recorded, so a payload that is
not JSON fails at the caller, not later.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from .database import SessionNotFound, SessionStoreError
from .encoding import EncodedEvent, encode_event
from .store import SessionStore

log = logging.getLogger("deeting.journal")

#: Told what could not be saved; the kernel shows it to the user.
FailureHandler = Callable[[str, str], None]


class SessionJournal:
    """Buffers events for at most one turn of the event loop, then commits them together."""

    def __init__(self, store: SessionStore, on_failure: FailureHandler) -> None:
        self._store = store
        self._on_failure = on_failure
        self._pending: list[EncodedEvent] = []
        self._flush_scheduled = False

    def record(self, session_id: str, kind: str, payload: dict[str, Any]) -> None:
        """Queue one event; it is committed at the loop's next pause (at once without a loop)."""
        self.record_encoded(encode_event(session_id, kind, payload))

    def record_encoded(self, event: EncodedEvent) -> None:
        """Queue an event serialised already (a stream frame, which the kernel measured)."""
        self._pending.append(event)
        if self._flush_scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        self._flush_scheduled = True
        loop.call_soon(self.flush)

    def flush(self) -> None:
        """Commit everything recorded so far. A failure is reported, never raised: the events
        have been shown already, and the caller's work must go on."""
        self._flush_scheduled = False
        pending, self._pending = self._pending, []
        if not pending:
            return
        try:
            self._store.append_encoded(pending)
            return
        except SessionNotFound:
            pass  # a session deleted meanwhile (by another Deeting): save the others one by one
        except SessionStoreError as exc:
            self._report(pending, str(exc))
            return
        for event in pending:
            try:
                self._store.append_encoded([event])
            except SessionStoreError as exc:
                self._report([event], str(exc))

    def _report(self, lost: list[EncodedEvent], why: str) -> None:
        sessions = sorted({event.session_id for event in lost})
        message = f"{len(lost)} event(s) could not be saved to the session history: {why}"
        log.error("%s (sessions %s)", message, ", ".join(sessions))
        for session_id in sessions:
            self._on_failure(session_id, message)
