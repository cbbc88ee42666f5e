"""The SQLite file under the session store: opened, created or upgraded, and one lock.

The store runs in WAL mode with ``synchronous=NORMAL``: a commit is durable against a process
crash and costs no fsync (only checkpoints sync), which keeps appends cheap enough for the hot
path. Two processes may open the same file; writers take the write lock up front (``BEGIN
IMMEDIATE``) and wait for each other up to a timeout. An older file is upgraded in place, in
one transaction (``_MIGRATIONS``); a newer one, a damaged one or another program's database
is refused with one line saying what to do. What is stored and read is session.py's.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from deeting_tui.errors import DeetingError

from .retention import StreamCaps, trim_all

log = logging.getLogger("deeting.session")

__all__ = [
    "BUSY_TIMEOUT_S",
    "RECLAIM_MIN_BYTES",
    "SCHEMA_VERSION",
    "WAL_SIZE_LIMIT",
    "SessionDatabase",
    "SessionNotFound",
    "SessionStoreError",
]


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


_CORRUPT_CODES = frozenset({sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT})


class SessionStoreError(DeetingError):
    """The session store cannot be opened or used; the message says what to do."""


class SessionNotFound(SessionStoreError):
    """No session has the given id."""

    def __init__(self, session_id: str) -> None:
        super().__init__(f"no session {session_id!r}")
        self.session_id = session_id


class SessionDatabase:
    """One session store's SQLite connection, shared between threads under one lock."""

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

    def close(self) -> None:
        """Close the database. Idempotent; any later use raises SessionStoreError."""
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
