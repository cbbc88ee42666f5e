"""Chat sessions and their history, persisted in SQLite as they happen.

Every user message, reply, tool call, tool result, stream and error is appended to its session as it
occurs. The kernel writes through journal.py, which commits each burst of events as one transaction
at the event loop's next pause (before it waits for a plugin, the model or the user), so a crash (of
a plugin, or of Deeting itself) loses nothing already shown. Plugins' streams are live views: of
each, the store keeps the latest frames, within caps per plugin (see retention.py), so a plugin that
streams without pause cannot fill the disk. The store runs in WAL mode with ``synchronous=NORMAL``:
a commit is durable against a process crash and costs no fsync (only checkpoints sync), which keeps
appends cheap enough for the hot path. Two processes may open the same file; writers take the write
lock up front (``BEGIN IMMEDIATE``) and wait for each other up to a timeout.

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

import logging
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson

from deeting_tui.errors import DeetingError
from deeting_tui.terminal_text import one_line

from .blobs import extract, restore
from .retention import Frame, StreamCaps, batch_drops, trim_all, trim_plugin, trim_session

log = logging.getLogger("deeting.session")

__all__ = [
    "CONVERSATION_KINDS",
    "EVENT_KINDS",
    "SCHEMA_VERSION",
    "TITLE_MAX",
    "EncodedEvent",
    "SessionEvent",
    "SessionInfo",
    "SessionNotFound",
    "SessionStore",
    "SessionStoreError",
    "StreamCaps",
    "clean_title",
    "encode",
    "encode_event",
]

EVENT_KINDS = ("user", "reply", "tool_call", "tool_result", "stream", "error")
#: What a conversation is made of, without plugins' live data: a plugin streaming once a second
#: stores 3,600 frames an hour, which neither the model's history nor a resumed chat shows.
CONVERSATION_KINDS = tuple(kind for kind in EVENT_KINDS if kind != "stream")
_KINDS = frozenset(EVENT_KINDS)

#: Stored in ``PRAGMA user_version``; bump it and add a step to ``_MIGRATIONS`` when the
#: schema changes.
SCHEMA_VERSION = 4

#: How long one store waits for another (thread or process) holding the write lock.
BUSY_TIMEOUT_S = 10.0
#: The WAL file is cut back to this after a checkpoint.
WAL_SIZE_LIMIT = 8 * 1024 * 1024
#: On opening, a file with at least this much in free pages, and more free than used, is
#: compacted (VACUUM).
RECLAIM_MIN_BYTES = 8 * 1024 * 1024

_SCHEMA = """
CREATE TABLE sessions (
    id      TEXT PRIMARY KEY,
    created REAL NOT NULL,
    title   TEXT
);
CREATE TABLE events (
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    ts         REAL NOT NULL,
    payload    TEXT NOT NULL,       -- a JSON object
    plugin     TEXT,                -- a stream frame's plugin, topic and JSON size in bytes,
    topic      TEXT,                -- NULL for other kinds
    size       INTEGER,
    refs       TEXT,                -- its long strings, stored once in blobs (blobs.py)
    PRIMARY KEY (session_id, seq)
) WITHOUT ROWID;
"""

#: Long strings of events, each stored once (blobs.py); a row lives while an event refers to it.
_BLOBS = """
CREATE TABLE blobs (
    hash TEXT PRIMARY KEY,
    text TEXT NOT NULL
)
"""

#: A session's highest seq, kept when dropped stream frames took it away, so that a seq is
#: never given twice (a reader following a session asks for what came after the last it saw).
_SEQ_FLOORS = """
CREATE TABLE seq_floors (
    session_id TEXT PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL
) WITHOUT ROWID
"""

#: Which frames replace which, and what they weigh, without reading a payload (retention.py).
_STREAMS_INDEX = """
CREATE INDEX events_streams ON events (plugin, session_id, topic, seq, size, kind)
    WHERE kind = 'stream'
"""


def _stream_field(name: str) -> str:
    # A text field of the payload, else ''; CASE evaluates in order, so a damaged payload
    # never reaches json_type.
    return (
        f"CASE WHEN NOT json_valid(payload) THEN '' WHEN json_type(payload, '$.{name}') = 'text' "
        f"THEN json_extract(payload, '$.{name}') ELSE '' END"
    )


#: Version N → N + 1, each run inside the upgrade's write transaction.
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    # 1 kept event_count / updated / touched in the sessions row, rewritten on every append.
    1: (
        "DROP INDEX IF EXISTS sessions_by_touched",
        "ALTER TABLE sessions DROP COLUMN touched",
        "ALTER TABLE sessions DROP COLUMN updated",
        "ALTER TABLE sessions DROP COLUMN event_count",
    ),
    # 2 stored every stream frame; 3 keeps the latest ones within caps (trimmed after this).
    2: (
        "ALTER TABLE events ADD COLUMN plugin TEXT",
        "ALTER TABLE events ADD COLUMN topic TEXT",
        "ALTER TABLE events ADD COLUMN size INTEGER",
        f"UPDATE events SET plugin = {_stream_field('plugin')}, topic = {_stream_field('topic')}, "
        "size = length(CAST(payload AS BLOB)) WHERE kind = 'stream'",
        _STREAMS_INDEX,
        _SEQ_FLOORS,
    ),
    # 3 stored a long message in every event that held it (up to five times); 4 stores it once.
    3: ("ALTER TABLE events ADD COLUMN refs TEXT", _BLOBS),
}

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
_CORRUPT_CODES = frozenset({sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT})

#: A title longer than this is cut (it is a one-line label, not a note).
TITLE_MAX = 200


class SessionStoreError(DeetingError):
    """The session store cannot be opened or used; the message says what to do."""


class SessionNotFound(SessionStoreError):
    """No session has the given id."""

    def __init__(self, session_id: str) -> None:
        super().__init__(f"no session {session_id!r}")
        self.session_id = session_id


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """A session; ``event_count`` counts its conversation (stream frames are not in it)."""

    id: str
    created: float
    updated: float
    title: str | None
    event_count: int


@dataclass(frozen=True, slots=True)
class SessionEvent:
    seq: int
    session_id: str
    kind: str
    ts: float
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class EncodedEvent:
    """An event checked and serialised (:func:`encode_event`), ready to be stored.

    A stream frame also carries its plugin and topic (which frames replace which) and its
    size in bytes; :func:`encode_event` fills them in from the payload.
    """

    session_id: str
    kind: str
    ts: float
    payload: str
    plugin: str = ""
    topic: str = ""
    size: int = 0
    refs: str | None = None  # where its long strings were taken out (blobs.py)
    blobs: tuple[tuple[str, str], ...] = ()  # (hash, text) of each

    def __post_init__(self) -> None:
        if self.kind == "stream" and self.size <= 0:  # what the caps count, never unknown
            object.__setattr__(self, "size", len(self.payload.encode()))


def _check_kind(kind: str) -> None:
    if kind not in _KINDS:
        raise ValueError(f"unknown event kind {kind!r}: expected one of {', '.join(EVENT_KINDS)}")


def clean_title(title: str | None) -> str | None:
    """A title fit for a one-line label: neutralised for the terminal (escape sequences and
    bidi overrides go, other controls show as U+FFFD: see ``deeting_tui.terminal_text``),
    whitespace runs (tabs, newlines) become one space, at most ``TITLE_MAX`` characters are
    kept; None when nothing is left (the first message shows)."""
    if title is None:
        return None
    cleaned = one_line(title)[:TITLE_MAX].rstrip()
    return cleaned or None


def encode(kind: str, payload: dict[str, Any]) -> str:
    """Check an event and serialise its payload; raises for a bad kind or non-JSON values."""
    _check_kind(kind)
    if not isinstance(payload, dict):
        raise TypeError(f"event payload must be a dict, not {type(payload).__name__}")
    return orjson.dumps(payload).decode()  # TypeError for values that are not JSON


def encode_event(
    session_id: str, kind: str, payload: dict[str, Any], ts: float | None = None
) -> EncodedEvent:
    """:func:`encode`, as an event ready to be stored (now, unless ``ts`` says when). A
    conversation event's long strings are taken out, to be stored once (blobs.py)."""
    when = time.time() if ts is None else ts
    if kind != "stream":
        _check_kind(kind)
        if not isinstance(payload, dict):
            raise TypeError(f"event payload must be a dict, not {type(payload).__name__}")
        out = extract(payload)  # TypeError for values that are not JSON
        return EncodedEvent(
            session_id, kind, when, out.payload, refs=out.refs, blobs=tuple(out.blobs.items())
        )
    text = encode(kind, payload)
    plugin, topic = payload.get("plugin"), payload.get("topic")
    return EncodedEvent(
        session_id,
        kind,
        when,
        text,
        plugin if isinstance(plugin, str) else "",
        topic if isinstance(topic, str) else "",
    )


def _blob(conn: sqlite3.Connection, digest: str) -> str | None:
    row = conn.execute("SELECT text FROM blobs WHERE hash = ?", (digest,)).fetchone()
    return None if row is None else str(row[0])


class SessionStore:
    """The sessions of one Deeting home, in one SQLite file. Safe to share between threads."""

    def __init__(self, path: Path, stream_caps: StreamCaps | None = None) -> None:
        self.path = Path(path)
        self.stream_caps = stream_caps or StreamCaps()
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        # (session, plugin) pairs whose plugin-wide stream caps this store has enforced.
        self._plugins_checked: set[tuple[str, str]] = set()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SessionStoreError(
                f"cannot create the folder for the session store {self.path}: "
                f"{exc.strerror or exc} — check DEETING_HOME"
            ) from exc
        try:
            # isolation_level=None: no implicit transactions; every write below says BEGIN.
            conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise self._open_error(exc) from exc
        try:
            self._setup(conn)
            self._reclaim(conn)
        except SessionStoreError:
            conn.close()
            raise
        except sqlite3.Error as exc:
            conn.close()
            raise self._open_error(exc) from exc
        self._conn = conn

    def _open_error(self, exc: sqlite3.Error) -> SessionStoreError:
        if getattr(exc, "sqlite_errorcode", None) in _CORRUPT_CODES:
            return SessionStoreError(
                f"the session store {self.path} is damaged or not an SQLite database ({exc}) — "
                f"move it away (mv {self.path} {self.path}.broken) and Deeting starts a new one"
            )
        return SessionStoreError(f"cannot open the session store {self.path}: {exc}")

    def _setup(self, conn: sqlite3.Connection) -> None:
        # The first statement that reads the file; a non-database fails here.
        conn.execute("PRAGMA journal_mode=WAL").fetchone()
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        # The WAL is reused from its start after a checkpoint but never shrinks on its own:
        # one big transaction would leave a big file until the last connection closes.
        conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
        version = self._schema_version(conn)
        if version == SCHEMA_VERSION:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Re-read under the write lock: another process may have just created it.
            version = self._schema_version(conn)
            if version == 0:
                tables = conn.execute(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
                ).fetchone()[0]
                if tables:
                    raise SessionStoreError(
                        f"{self.path} is an SQLite database but not a Deeting session store — "
                        "move it away and Deeting starts a new one"
                    )
                # Statement by statement: executescript() would COMMIT the transaction first.
                for statement in (*_SCHEMA.split(";"), _STREAMS_INDEX, _SEQ_FLOORS, _BLOBS):
                    if statement.strip():
                        conn.execute(statement)
            else:
                # An older store: upgraded in place, in this one transaction (all or nothing).
                for step in range(version, SCHEMA_VERSION):
                    for statement in _MIGRATIONS[step]:
                        conn.execute(statement)
                # Streams stored before the caps (or under other caps) are held to them now.
                trim_all(conn, self.stream_caps)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _reclaim(self, conn: sqlite3.Connection) -> None:
        """Give the disk back when most of the file is free pages (an upgrade that trimmed a
        history of streams, deleted sessions): SQLite reuses free pages but never shrinks the
        file itself. Skipped while another process is writing (the next start tries again)."""
        page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
        pages = int(conn.execute("PRAGMA page_count").fetchone()[0])
        free = int(conn.execute("PRAGMA freelist_count").fetchone()[0])
        if free * page_size < RECLAIM_MIN_BYTES or 2 * free < pages:
            return
        conn.execute("PRAGMA busy_timeout=0")
        try:
            conn.execute("VACUUM")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.OperationalError as exc:  # busy: another Deeting holds the database
            log.info("session store %s: space not reclaimed now: %s", self.path, exc)
        finally:
            conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")

    def _schema_version(self, conn: sqlite3.Connection) -> int:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise SessionStoreError(
                f"the session store {self.path} has schema version {version}, newer than this "
                f"Deeting understands ({SCHEMA_VERSION}) — upgrade Deeting, or move the file away"
            )
        return version

    # -- plumbing ------------------------------------------------------------------------

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """The connection, under the lock, with SQLite errors turned into SessionStoreError."""
        with self._lock:
            conn = self._conn
            if conn is None:
                raise SessionStoreError(f"the session store {self.path} is closed")
            try:
                yield conn
            except sqlite3.Error as exc:
                raise SessionStoreError(f"session store {self.path}: {exc}") from exc

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: takes the database write lock at once, commits on success."""
        with self._db() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

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
        with self._db() as conn:
            row = conn.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone()
        return row is not None

    def get(self, session_id: str) -> SessionInfo:
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
                _check_kind(kind)
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

    def close(self) -> None:
        """Close the database. Idempotent; any later use raises SessionStoreError."""
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def __enter__(self) -> SessionStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
