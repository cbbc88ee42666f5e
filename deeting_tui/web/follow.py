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

from deeting_tui.kernel.events import Event
from deeting_tui.kernel.sessions.store import SessionInfo, SessionStore

from .loading import typed_event

__all__ = ["follow_session", "newest_sessions"]

log = logging.getLogger("deeting.web")

#: With inotify: a safety net only. Without: how stale the view may get.
POLL_WITH_INOTIFY_S = 2.0
POLL_WITHOUT_S = 0.1
#: After a wake that found nothing new, look again after these pauses (see follow_session).
SETTLE_S = (0.001, 0.002, 0.004, 0.008, 0.015, 0.03, 0.06, 0.12, 0.25)


class StoreWake:
    """Set when the store's files change (inotify on their folder); a poll if unavailable."""

    def __init__(self, db_path: Path) -> None:
        self.event = asyncio.Event()
        self.poll = POLL_WITHOUT_S
        self._settle: tuple[float, ...] = ()
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
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel that comes as
        # the event is set, and the follower would run on after its view stopped.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.poll if timeout is None else timeout):
                await self.event.wait()
        self.event.clear()

    async def next_look(self, *, found: bool) -> None:
        """Wait until the store is worth reading again. After a wake that found nothing new,
        look again shortly, a few times, before the long wait: the WAL's write is seen before
        the commit is published in its index (shared memory, which inotify cannot see)."""
        if found:
            self._settle = ()
        if self._settle:
            await self.wait(self._settle[0])
            self._settle = self._settle[1:]
        else:
            await self.wait()
            self._settle = SETTLE_S

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
    wake = StoreWake(Path(store.path))
    seq = after_seq
    try:
        while True:
            # The event that wakes us is cleared before reading, so a commit landing during
            # the read wakes the next wait at once.
            wake.event.clear()
            rows = await asyncio.to_thread(store.events, session_id, after_seq=seq)
            for row in rows:
                seq = row.seq
                yield row.seq, typed_event(row)
            await wake.next_look(found=bool(rows))
    finally:
        wake.close()


async def newest_sessions(
    store: SessionStore, shown: str | None = None
) -> AsyncIterator[SessionInfo]:
    """Yield the newest session (unless it is ``shown`` already), then each newer one as any
    process starts it (a ``deeting --script`` run, the chat's new session): what ``deeting
    view`` without ``--session`` shows. Nothing is yielded while the store holds no session."""
    wake = StoreWake(Path(store.path))
    try:
        while True:
            wake.event.clear()
            newest = await asyncio.to_thread(store.latest)
            fresh = newest is not None and newest.id != shown
            if newest is not None and fresh:
                shown = newest.id
                yield newest
            await wake.next_look(found=fresh)
    finally:
        wake.close()
