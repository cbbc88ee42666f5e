"""A session's stored events as the card server loads them (``CardServer.load``): what
``deeting view`` shows at start and the chat's page shows when it starts or switches session.

Read like ``follow.follow_session`` reads what comes after: a stored event this version cannot
read becomes the same error card, so the first load and the live updates agree.
"""

from __future__ import annotations

from deeting_tui.kernel.events import ErrorEvent, Event, EventFormatError, from_stored
from deeting_tui.kernel.sessions.encoding import SessionEvent
from deeting_tui.kernel.sessions.store import SessionStore

from .cards import UNREADABLE_KEY

__all__ = ["stored_events", "typed_event"]


def typed_event(row: SessionEvent) -> Event:
    """A stored event as a typed one; one this version cannot read becomes an error card."""
    try:
        return from_stored(row.kind, row.session_id, row.payload)
    except (EventFormatError, TypeError, ValueError) as exc:
        return ErrorEvent(
            session_id=row.session_id,
            message=f"event {row.seq} of this session could not be read: {exc}",
            extra={UNREADABLE_KEY: row.seq},
        )


def stored_events(store: SessionStore, session_id: str) -> tuple[list[Event], int]:
    """The session's events, oldest first, and the last seq read (0: none), from which to
    follow. Raises SessionNotFound for an unknown session."""
    rows = store.events(session_id)
    return [typed_event(row) for row in rows], rows[-1].seq if rows else 0
