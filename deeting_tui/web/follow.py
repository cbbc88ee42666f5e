"""Follow a session as any process appends to it: ``deeting view`` beside a running chat.

The store is SQLite in WAL mode, so another process's commit shows up as a write to the
``-wal`` file (or the database itself, after a checkpoint). inotify on the store's folder
wakes the follower within a few milliseconds of a commit; a short poll covers systems without
inotify and events inotify cannot see (a network file system). Each wake reads only the
events after the last seq seen, so a burst of commits costs one query.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from deeting_tui.kernel.events import ErrorEvent, Event, EventFormatError, from_stored
from deeting_tui.kernel.sessions.store import SessionStore

from .cards import UNREADABLE_KEY

__all__ = ["follow_session"]

log = logging.getLogger("deeting.web")

#: With inotify: a safety net only. Without: how stale the view may get.
POLL_WITH_INOTIFY_S = 2.0
POLL_WITHOUT_S = 0.1
#: After a wake that found nothing new, look again after these pauses (see follow_session).
SETTLE_S = (0.001, 0.002, 0.004, 0.008, 0.015, 0.03, 0.06, 0.12, 0.25)


class _Wake:
    """Set when the store's files change (inotify on their folder); a poll if unavailable."""

    def __init__(self, db_path: Path) -> None:
        self.event = asyncio.Event()
        self.poll = POLL_WITHOUT_S
        self._names = {db_path.name, f"{db_path.name}-wal"}
        self._inotify = None
        self._loop = asyncio.get_running_loop()
        try:
            from deeting_tui.quota import inotify

            watcher = inotify.Inotify()
            mask = inotify.IN_MODIFY | inotify.IN_CREATE | inotify.IN_MOVED_TO
            mask |= inotify.IN_CLOSE_WRITE
            try:
                watcher.add_watch(str(db_path.parent), mask | inotify.IN_ONLYDIR)
            except OSError:
                watcher.close()
                raise
        except OSError as exc:
            log.info("following %s by polling: %s", db_path, exc)
            return
        self._inotify = watcher
        self._loop.add_reader(watcher.fd, self._readable)
        self.poll = POLL_WITH_INOTIFY_S

    def _readable(self) -> None:
        assert self._inotify is not None
        events = self._inotify.read()
        if not events or any(e.name in self._names or e.wd == -1 for e in events):
            self.event.set()

    async def wait(self, timeout: float | None = None) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.event.wait(), self.poll if timeout is None else timeout)
        self.event.clear()

    def close(self) -> None:
        if self._inotify is not None:
            self._loop.remove_reader(self._inotify.fd)
            self._inotify.close()
            self._inotify = None


async def follow_session(
    store: SessionStore, session_id: str, after_seq: int = 0
) -> AsyncIterator[tuple[int, Event]]:
    """Yield ``(seq, event)`` for each event of the session after ``after_seq``, as they are
    appended by this or any other process, until the caller stops iterating.

    Raises :class:`~deeting_tui.kernel.sessions.database.SessionNotFound` (a DeetingError
    naming the session) if the session does not exist or is deleted meanwhile. A stored event
    this version cannot read is yielded as an :class:`ErrorEvent` that makes an error card
    (cards.UNREADABLE_KEY), and following goes on.
    """
    wake = _Wake(Path(store.path))
    seq = after_seq
    settle: tuple[float, ...] = ()
    try:
        while True:
            # The event that wakes us is cleared before reading, so a commit landing during
            # the read wakes the next wait at once.
            wake.event.clear()
            rows = await asyncio.to_thread(store.events, session_id, after_seq=seq)
            for row in rows:
                seq = row.seq
                try:
                    event = from_stored(row.kind, row.session_id, row.payload)
                except (EventFormatError, TypeError, ValueError) as exc:
                    event = ErrorEvent(
                        session_id=session_id,
                        message=f"event {row.seq} of this session could not be read: {exc}",
                        extra={UNREADABLE_KEY: row.seq},
                    )
                yield row.seq, event
            if rows:
                settle = ()
            elif settle:
                # Woken, but nothing new yet: the WAL's write is seen before the commit is
                # published in its index (shared memory, which inotify cannot see), so look
                # again shortly, a few times, before the long wait.
                await wake.wait(settle[0])
                settle = settle[1:]
            else:
                await wake.wait()
                settle = SETTLE_S
    finally:
        wake.close()
