"""The notebook: an SQLite database in the plugin's data folder, one durable commit per note.

Why SQLite: 1.0.0 kept every note in one JSON file and rewrote (and fsynced) all of it on every
note, so adding the n-th note cost O(n) and a notebook of thousands crawled. Here adding a note
is one indexed insert and listing reads the newest rows by primary key; what grows with the
notebook is the search's scan (a substring search must look at every note's text) and the
total a listing shows (``count(*)`` walks the table's pages: well under a millisecond for
10,000 notes).

Durability: WAL journal with ``synchronous=NORMAL``, as deeting's session store: the note is
committed before ``note_add`` answers and survives the worker (or deeting) being killed right
after; only a power loss can take the last notes since a checkpoint, as it can the session's
last messages. ``FULL`` would fsync per note: ~4 ms each on a VM disk, for no gain against a
kill.

Migration from 1.0.0 (``notes.json``): whenever the JSON file is present when the database is
opened (first use after an upgrade, and the ``postupgrade`` hook, which opens it eagerly), its
notes are imported in ONE transaction together with a fingerprint of the file's bytes; only
after that commit is the file renamed to ``notes.json.migrated``. A crash before the commit
leaves the JSON authoritative and nothing imported, so the next open imports again; a crash
between commit and rename is recognised by the fingerprint and only the rename is redone.
Notes keep their ids, order and timestamps. A JSON file written after the import (the 1.0.0
worker finishing a call during a hot upgrade, or a rollback to 1.0.0 and back) is merged the
same way: a note already present (same id, text and time) is skipped, one whose id is taken by
a different note is added with a new id, so nothing is lost. A JSON file that cannot be read
(not JSON, not UTF-8, wrong shape, too big) is never imported or overwritten: it is moved to
``notes.json.corrupt-<timestamp>`` and that call fails once with a message saying where.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

__all__ = [
    "DB_NAME",
    "DEFAULT_LIMIT",
    "JSON_NAME",
    "MAX_JSON_BYTES",
    "MAX_LIMIT",
    "MAX_QUERY",
    "MAX_TEXT",
    "MIGRATED_NAME",
    "Note",
    "NoteBook",
    "NotesError",
    "close_all",
    "preview",
    "summary",
    "table",
]

DB_NAME = "notes.db"
JSON_NAME = "notes.json"  # 1.0.0's notebook, imported once
MIGRATED_NAME = "notes.json.migrated"
#: A 1.0.0 notebook larger than this is not parsed (it would not fit the worker's memory
#: limit comfortably); it is kept aside, whole, with an error saying so.
MAX_JSON_BYTES = 64 * 1024 * 1024
MAX_TEXT = 5000
MAX_QUERY = 200
MAX_LIMIT = 500
DEFAULT_LIMIT = 50
COLUMNS = ["id", "created", "text"]
PREVIEW = 120
#: How long a call waits for another process holding the database (a second deeting).
BUSY_TIMEOUT = 10.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS notes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    text TEXT NOT NULL,
    created TEXT NOT NULL,
    folded TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS imports (
    sha256 TEXT PRIMARY KEY,
    imported TEXT NOT NULL,
    notes INTEGER NOT NULL
);
"""


#: Open connections by database path, with the file's identity when opened.
_OPEN: dict[str, tuple[sqlite3.Connection, tuple[int, int] | None]] = {}
_LOCK = threading.RLock()


def close_all() -> None:
    """Close every open notebook (the worker's ``deactivate``)."""
    with _LOCK:
        while _OPEN:
            _OPEN.popitem()[1][0].close()


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        status = path.stat()
    except OSError:
        return None
    return (status.st_dev, status.st_ino)


class NotesError(ValueError):
    """A call cannot be served; the message says why and what to do."""


@dataclass(frozen=True)
class Note:
    id: int
    text: str
    created: str

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "text": self.text, "created": self.created}


class NoteBook:
    """The notes of one data folder. The connection stays open for the worker's life (so a
    note costs one WAL append, not a checkpoint and its fsyncs as the last connection closes);
    it is opened anew when the database file was replaced or removed meanwhile."""

    def __init__(self, data_dir: Path) -> None:
        self.folder = Path(data_dir)
        self.path = self.folder / DB_NAME

    @contextmanager
    def open(self) -> Iterator[sqlite3.Connection]:
        """The database, created and migrated from 1.0.0's JSON if needed; one caller at a
        time (a sync ``invoke`` may run on any thread)."""
        with _LOCK:
            db = self._connection()
            try:
                self._migrate(db)
                yield db
            except sqlite3.Error as error:
                raise NotesError(f"{self.path}: {error}") from None

    def _connection(self) -> sqlite3.Connection:
        key = str(self.path)
        cached = _OPEN.get(key)
        if cached is not None:
            db, identity = cached
            if _identity(self.path) == identity:
                return db
            del _OPEN[key]
            db.close()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as error:
            raise NotesError(f"cannot open {self.path}: {error}") from None
        try:
            _prepare(db)
        except sqlite3.Error as error:
            db.close()
            raise NotesError(f"cannot open {self.path}: {error}") from None
        _OPEN[key] = (db, _identity(self.path))
        return db

    def add(self, text: str, now: float) -> Note:
        created = datetime.fromtimestamp(now).astimezone().isoformat(timespec="seconds")
        with self.open() as db:
            cursor = db.execute(
                "INSERT INTO notes (text, created, folded) VALUES (?, ?, ?)",
                (text, created, text.casefold()),
            )
            note_id = cursor.lastrowid
        assert note_id is not None
        return Note(id=note_id, text=text, created=created)

    def recent(self, limit: int) -> tuple[list[Note], int]:
        """The ``limit`` newest notes, newest first, and how many there are in all."""
        with self.open() as db:
            rows = db.execute(
                "SELECT id, text, created FROM notes ORDER BY id DESC LIMIT ?", (limit,)
            ).fetchall()
            total = rows and db.execute("SELECT count(*) FROM notes").fetchone()[0]
        return [Note(*row) for row in rows], int(total or 0)

    def search(self, query: str, limit: int) -> tuple[list[Note], int]:
        """The ``limit`` newest notes containing ``query`` regardless of case, newest first,
        and how many match in all."""
        needle = query.casefold()
        with self.open() as db:
            rows = db.execute(
                "SELECT id, text, created FROM notes WHERE instr(folded, ?) > 0 "
                "ORDER BY id DESC LIMIT ?",
                (needle, limit),
            ).fetchall()
            total = len(rows)
            if total == limit:
                total = db.execute(
                    "SELECT count(*) FROM notes WHERE instr(folded, ?) > 0", (needle,)
                ).fetchone()[0]
        return [Note(*row) for row in rows], int(total)

    def migrate(self) -> None:
        """Open once, importing 1.0.0's JSON if it is there (the ``postupgrade`` hook)."""
        with self.open():
            pass

    # -- 1.0.0's JSON ---------------------------------------------------------------------

    def _migrate(self, db: sqlite3.Connection) -> None:
        source = self.folder / JSON_NAME
        try:
            size = source.stat().st_size
        except FileNotFoundError:
            return
        except OSError as error:
            raise NotesError(f"cannot read {source}: {error.strerror or error}") from None
        if size > MAX_JSON_BYTES:
            self._unreadable(source, f"{size} bytes, more than the {MAX_JSON_BYTES} imported")
        try:
            raw = source.read_bytes()
        except FileNotFoundError:  # another process finished the import meanwhile
            return
        except OSError as error:
            raise NotesError(f"cannot read {source}: {error.strerror or error}") from None
        try:
            notes, next_id = _parse(json.loads(raw.decode("utf-8")))
        except (ValueError, TypeError, KeyError, RecursionError) as error:
            self._unreadable(source, _reason(error))
        digest = hashlib.sha256(raw).hexdigest()
        db.execute("BEGIN IMMEDIATE")
        try:
            if db.execute("SELECT 1 FROM imports WHERE sha256 = ?", (digest,)).fetchone() is None:
                _import(db, notes, next_id, digest)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        _set_aside(source, MIGRATED_NAME)

    def _unreadable(self, source: Path, reason: str) -> NoReturn:
        moved = _set_aside(source, f"{JSON_NAME}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
        raise NotesError(
            f"{source} (notes from version 1.0.0) could not be imported ({reason}); it was "
            f"kept as {moved} and your other notes are untouched. Please try again."
        )


def _prepare(db: sqlite3.Connection) -> None:
    """Journal and durability settings, and the schema on first use."""
    if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    if db.execute("PRAGMA user_version").fetchone()[0] == 0:
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement in filter(str.strip, SCHEMA.split(";")):
                db.execute(statement)
            db.execute("PRAGMA user_version = 1")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise


def _import(db: sqlite3.Connection, notes: list[Note], next_id: int, digest: str) -> None:
    """Inside the caller's transaction: every note not already here, keeping its id when
    free; the sequence so the next note gets 1.0.0's ``next_id``."""
    imported = 0
    for note in notes:
        row = db.execute("SELECT text, created FROM notes WHERE id = ?", (note.id,)).fetchone()
        if row == (note.text, note.created):
            continue
        values = (note.text, note.created, note.text.casefold())
        if row is None:
            db.execute(
                "INSERT INTO notes (id, text, created, folded) VALUES (?, ?, ?, ?)",
                (note.id, *values),
            )
        else:  # the id went to another note since: keep both
            db.execute("INSERT INTO notes (text, created, folded) VALUES (?, ?, ?)", values)
        imported += 1
    sequence = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'notes'").fetchone()
    if sequence is None:
        db.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('notes', ?)", (next_id - 1,))
    elif sequence[0] < next_id - 1:
        db.execute("UPDATE sqlite_sequence SET seq = ? WHERE name = 'notes'", (next_id - 1,))
    stamp = datetime.now().astimezone().isoformat(timespec="seconds")
    db.execute(
        "INSERT INTO imports (sha256, imported, notes) VALUES (?, ?, ?)", (digest, stamp, imported)
    )


def _set_aside(source: Path, name: str) -> Path:
    """Rename ``source`` to ``name`` beside it (``name-2``… if taken); never overwrites."""
    target = source.with_name(name)
    count = 1
    while target.exists():
        count += 1
        target = source.with_name(f"{name}-{count}")
    try:
        os.replace(source, target)
    except FileNotFoundError:  # another process set it aside first
        return target
    except OSError as error:
        raise NotesError(
            f"{source} could not be renamed to {target.name} ({error.strerror or error}); "
            "move it by hand"
        ) from None
    return target


def _parse(document: Any) -> tuple[list[Note], int]:
    if not isinstance(document, dict) or not isinstance(document.get("notes"), list):
        raise ValueError('expected an object with a "notes" list')
    notes: list[Note] = []
    for index, entry in enumerate(document["notes"]):
        if not isinstance(entry, dict):
            raise ValueError(f"note {index} is not an object")
        note_id, text, created = entry.get("id"), entry.get("text"), entry.get("created")
        if isinstance(note_id, bool) or not isinstance(note_id, int) or note_id < 1:
            raise ValueError(f"note {index} has no valid id")
        if not isinstance(text, str) or not isinstance(created, str):
            raise ValueError(f"note {index} needs text and created strings")
        notes.append(Note(id=note_id, text=text, created=created))
    highest = max((note.id for note in notes), default=0)
    next_id = document.get("next_id", highest + 1)
    if isinstance(next_id, bool) or not isinstance(next_id, int):
        raise ValueError("next_id is not an integer")
    return notes, max(next_id, highest + 1)


def _reason(error: BaseException) -> str:
    if isinstance(error, json.JSONDecodeError):
        return f"not JSON: {error.msg} at line {error.lineno}"
    if isinstance(error, UnicodeDecodeError):
        return "not UTF-8 text"
    if isinstance(error, RecursionError):
        return "nested too deeply"
    return str(error)


def preview(text: str, width: int = PREVIEW) -> str:
    """One line of at most ``width`` characters, for summaries the model reads."""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1].rstrip() + "…"


def table(notes: list[Note]) -> dict[str, Any]:
    """The ``table`` renderer's payload."""
    return {"columns": list(COLUMNS), "rows": [[n.id, n.created, n.text] for n in notes]}


def summary(notes: list[Note]) -> str:
    """One note per line: ``#3 2026-11-25 14:03  text``."""
    return "\n".join(
        f"#{n.id} {n.created[:16].replace('T', ' ')}  {preview(n.text)}" for n in notes
    )
