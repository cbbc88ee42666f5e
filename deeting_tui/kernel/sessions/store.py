"""Chat sessions and their history, persisted in SQLite as they happen.

Every user message, reply, tool call, tool result, stream and error is appended to its session as it
occurs. The kernel writes through journal.py, which commits each burst of events as one transaction
at the event loop's next pause (before it waits for a plugin, the model or the user), so a crash (of
a plugin, or of Deeting itself) loses nothing already shown. Plugins' streams are live views: of
each, the store keeps the latest frames, within caps per plugin (see retention.py), so a plugin that
streams without pause cannot fill the disk. The file itself (WAL, locking, schema and upgrades) is
session_db.py's; what an event is and how it is encoded, session_events.py's.

Each session numbers its events 1, 2, 3, … (``seq``). An append is one INSERT (the seq is
computed inside it, under the write lock) and touches nothing else: a session's event count
(counted over its events, stream frames left out), last change and place in the "most recent"
order are read from its events instead of
being kept up to date in the sessions table, which would cost a second page write per event
on the hot path of every message. Recency is the wall clock (last event, else creation; ties
go to the session created later), so a clock stepped backwards can misorder "latest" but
never loses or reorders events. The seqs of stream frames that were dropped stay unused.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import orjson

from .blobs import restore
from .database import SessionDatabase, SessionNotFound, SessionStoreError
from .encoding import (
    TITLE_MAX,
    EncodedEvent,
    SessionEvent,
    check_kind,
    clean_title,
    encode_event,
)
from .retention import Frame, batch_drops, trim_plugin, trim_session

__all__ = ["SessionInfo", "SessionStore"]


# A session's last event, found through the primary key (no scan of its events).
_LAST_EVENT = "(SELECT {col} FROM events WHERE session_id = s.id ORDER BY seq DESC LIMIT 1)"
# Its conversation's events, counted: not its last seq, which counts stream frames the caps
# dropped long ago (a chat left open with a plugin streaming each second: 86,400 a day).
_CONVERSATION_COUNT = "(SELECT count(*) FROM events WHERE session_id = s.id AND kind != 'stream')"
_SESSION_SELECT = (
    "SELECT s.id, s.created, "
    f"COALESCE({_LAST_EVENT.format(col='ts')}, s.created) AS updated, s.title, "
    f"{_CONVERSATION_COUNT} FROM sessions AS s"
)
# ?8 is the seq when the caller knows it (_APPEND_NEXT), ?9 the event's blob references.
_APPEND = (
    "INSERT INTO events (session_id, seq, kind, ts, payload, plugin, topic, size, refs) "
    "SELECT ?1, max(COALESCE(MAX(seq), 0), "
    "COALESCE((SELECT seq FROM seq_floors WHERE session_id = ?1), 0)) + 1, "
    "?2, ?3, ?4, ?5, ?6, ?7, ?9 FROM events WHERE session_id = ?1 RETURNING seq"
)
_APPEND_NEXT = (
    "INSERT INTO events (session_id, seq, kind, ts, payload, plugin, topic, size, refs) "
    "VALUES (?1, ?8, ?2, ?3, ?4, ?5, ?6, ?7, ?9)"
)
_ADD_BLOB = "INSERT OR IGNORE INTO blobs (hash, text) VALUES (?, ?)"
# Blobs no event refers to any more (after a session's deletion).
_DROP_UNUSED_BLOBS = (
    "DELETE FROM blobs WHERE hash NOT IN (SELECT json_extract(r.value, '$[1]') "
    "FROM events, json_each(events.refs) AS r WHERE events.refs IS NOT NULL)"
)


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """A session; ``event_count`` counts its conversation (stream frames are not in it)."""

    id: str
    created: float
    updated: float
    title: str | None
    event_count: int


def _storable(session_id: str) -> bool:
    """Whether an id can be looked up at all: one typed on a command line may hold bytes that
    are not UTF-8 (``--session $'\\xff'``, surrogate-escaped by Python), which SQLite refuses
    with an encoding error. No stored session has such an id, so it is simply not found."""
    try:
        session_id.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _blob(conn: sqlite3.Connection, digest: str) -> str | None:
    row = conn.execute("SELECT text FROM blobs WHERE hash = ?", (digest,)).fetchone()
    return None if row is None else str(row[0])


class SessionStore(SessionDatabase):
    """The sessions of one Deeting home, in one SQLite file. Safe to share between threads."""

    @staticmethod
    def _info(row: tuple[Any, ...]) -> SessionInfo:
        return SessionInfo(row[0], row[1], row[2], row[3], row[4])

    # -- sessions ------------------------------------------------------------------------

    def create(self, title: str | None = None) -> SessionInfo:
        title = clean_title(title)
        now = time.time()
        with self._write() as conn:
            for _ in range(8):
                session_id = secrets.token_hex(6)
                try:
                    conn.execute(
                        "INSERT INTO sessions (id, created, title) VALUES (?, ?, ?)",
                        (session_id, now, title),
                    )
                except sqlite3.IntegrityError:
                    continue  # an id collision: astronomically rare, but cheap to survive
                return SessionInfo(session_id, now, now, title, 0)
        raise SessionStoreError("could not find a free session id")  # pragma: no cover

    def exists(self, session_id: str) -> bool:
        if not _storable(session_id):
            return False
        with self._db() as conn:
            row = conn.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone()
        return row is not None

    def get(self, session_id: str) -> SessionInfo:
        if not _storable(session_id):
            raise SessionNotFound(session_id)
        with self._db() as conn:
            row = conn.execute(f"{_SESSION_SELECT} WHERE s.id = ?", (session_id,)).fetchone()
        if row is None:
            raise SessionNotFound(session_id)
        return self._info(row)

    def latest(self) -> SessionInfo | None:
        """The session that changed last (created, or appended to), or None."""
        sessions = self.list_sessions(limit=1)
        return sessions[0] if sessions else None

    def list_sessions(self, limit: int = 50) -> list[SessionInfo]:
        """Sessions, most recently changed first."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        with self._db() as conn:
            rows = conn.execute(
                f"{_SESSION_SELECT} ORDER BY updated DESC, s.rowid DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [self._info(row) for row in rows]

    def first_message(self, session_id: str, chars: int = TITLE_MAX) -> str | None:
        """The start (``chars`` characters) of the session's first user message, or None: a
        label for a session without a title, read without loading the message (which may be
        megabytes) or any other."""
        with self._db() as conn:
            row = conn.execute(
                "SELECT substr(json_extract(payload, '$.text'), 1, ?), refs FROM events "
                "WHERE session_id = ? AND kind = 'user' AND json_valid(payload) "
                "ORDER BY seq LIMIT 1",
                (chars, session_id),
            ).fetchone()
            if row is None or not isinstance(row[0], str):
                return None
            for path, digest, prefix in orjson.loads(row[1] or "[]"):
                if path == ["text"]:  # a long message: its start, from its blob
                    found = conn.execute(
                        "SELECT substr(text, 1, ?) FROM blobs WHERE hash = ?", (chars, digest)
                    ).fetchone()
                    return str(prefix + (found[0] if found else ""))[:chars]
        return str(row[0])

    def rename(self, session_id: str, title: str | None) -> None:
        """Set a session's title (cleaned by :func:`clean_title`); None, or a title with
        nothing left after cleaning, clears it. Does not count as a change for latest()."""
        title = clean_title(title)
        with self._write() as conn:
            cursor = conn.execute("UPDATE sessions SET title = ? WHERE id = ?", (title, session_id))
            if cursor.rowcount == 0:
                raise SessionNotFound(session_id)

    def delete(self, session_id: str) -> None:
        """Remove a session and all its events."""
        with self._write() as conn:
            conn.execute("DELETE FROM events WHERE session_id = ?", (session_id,))
            cursor = conn.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
            if cursor.rowcount == 0:
                raise SessionNotFound(session_id)
            conn.execute(_DROP_UNUSED_BLOBS)

    # -- events --------------------------------------------------------------------------

    def append(self, session_id: str, kind: str, payload: dict[str, Any]) -> int:
        """Store one event now (committed before this returns); return its ``seq`` (0 for a
        stream frame the caps drop at once)."""
        return self.append_encoded([encode_event(session_id, kind, payload)])[0]

    def append_encoded(self, events: list[EncodedEvent]) -> list[int]:
        """Store several events in one transaction (all or none); return their ``seq``s.

        Stream frames are held to the caps in the same transaction: a frame that the newer
        frames of the batch would push out at once is never written (its seq is 0), and older
        frames go as new ones arrive. So a burst costs no more writes than before the caps.
        """
        caps = self.stream_caps
        dropped: set[int] = set()
        if any(e.kind == "stream" for e in events):
            frames = [
                (e.session_id, e.plugin, Frame(e.topic, e.size)) if e.kind == "stream" else None
                for e in events
            ]
            dropped = batch_drops(frames, caps)
        seqs = []
        written: dict[tuple[str, str], set[str]] = {}
        # A session's first event here finds its seq in SQL; the next ones follow it (the
        # write lock is held, so nobody else numbers in between).
        next_seq: dict[str, int] = {}
        with self._write() as conn:
            for index, event in enumerate(events):
                if index in dropped:
                    seqs.append(0)
                    continue
                stream = event.kind == "stream"
                values = (
                    event.session_id,
                    event.kind,
                    event.ts,
                    event.payload,
                    event.plugin if stream else None,
                    event.topic if stream else None,
                    event.size if stream else None,
                    None,
                    event.refs,
                )
                if event.blobs:
                    conn.executemany(_ADD_BLOB, event.blobs)
                try:
                    seq = next_seq.get(event.session_id)
                    if seq is None:
                        seq = int(conn.execute(_APPEND, values).fetchone()[0])
                    else:
                        conn.execute(_APPEND_NEXT, (*values[:7], seq, values[8]))
                except sqlite3.IntegrityError as exc:
                    if "FOREIGN KEY" not in str(exc):  # the events → sessions key: no session
                        raise
                    raise SessionNotFound(event.session_id) from None
                seqs.append(seq)
                next_seq[event.session_id] = seq + 1
                if stream:
                    written.setdefault((event.session_id, event.plugin), set()).add(event.topic)
            for (session_id, plugin), topics in written.items():
                trim_session(conn, session_id, plugin, topics, caps)
                if (session_id, plugin) not in self._plugins_checked:
                    trim_plugin(conn, plugin, session_id, caps)
        self._plugins_checked.update(written)
        return seqs

    def events(
        self, session_id: str, kinds: Iterable[str] | None = None, after_seq: int = 0
    ) -> list[SessionEvent]:
        """A session's events in order, optionally only some kinds, only those after a seq."""
        sql = "SELECT seq, kind, ts, payload, refs FROM events WHERE session_id = ? AND seq > ?"
        args: list[Any] = [session_id, after_seq]
        if kinds is not None:
            wanted = sorted(set(kinds))
            for kind in wanted:
                check_kind(kind)
            sql += f" AND kind IN ({', '.join('?' * len(wanted))})" if wanted else " AND 0"
            args.extend(wanted)
        sql += " ORDER BY seq"
        with self._db() as conn:
            conn.execute("BEGIN")  # one snapshot for the existence check and the rows
            try:
                found = conn.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,))
                if found.fetchone() is None:
                    raise SessionNotFound(session_id)
                rows = conn.execute(sql, args).fetchall()
                events = []
                for seq, kind, ts, payload, refs in rows:
                    loaded = orjson.loads(payload)
                    if refs is not None:
                        restore(loaded, refs, lambda digest: _blob(conn, digest))
                    events.append(SessionEvent(seq, session_id, kind, ts, loaded))
            finally:
                conn.execute("COMMIT")
        return events

    # -- lifetime ------------------------------------------------------------------------

    def __enter__(self) -> SessionStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
