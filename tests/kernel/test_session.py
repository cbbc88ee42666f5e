from __future__ import annotations

import re
import sqlite3
import threading
from pathlib import Path

import pytest

from deeting_tui.kernel.sessions.database import SCHEMA_VERSION, SessionNotFound, SessionStoreError
from deeting_tui.kernel.sessions.encoding import EVENT_KINDS, SessionEvent
from deeting_tui.kernel.sessions.store import SessionInfo, SessionStore


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "nested" / "dir" / "sessions.db"


@pytest.fixture
def store(db_path: Path):
    with SessionStore(db_path) as s:
        yield s


def test_creates_parent_dirs_wal_and_schema_version(db_path: Path) -> None:
    with SessionStore(db_path):
        pass
    assert db_path.is_file()
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    finally:
        conn.close()


def test_create_gives_fresh_hex_ids(store: SessionStore) -> None:
    a = store.create("first chat")
    b = store.create()
    assert re.fullmatch(r"[0-9a-f]{12}", a.id)
    assert a.id != b.id
    assert a.title == "first chat" and b.title is None
    assert a.event_count == 0 and a.created == a.updated
    assert store.exists(a.id) and not store.exists("000000000000")
    assert store.get(a.id) == a


def test_append_returns_seq_and_events_keep_order(store: SessionStore) -> None:
    s = store.create()
    other = store.create()
    seqs = [store.append(s.id, "user", {"text": f"m{i}"}) for i in range(5)]
    store.append(other.id, "user", {"text": "elsewhere"})
    assert seqs == [1, 2, 3, 4, 5]
    events = store.events(s.id)
    assert [e.seq for e in events] == seqs
    assert [e.payload["text"] for e in events] == ["m0", "m1", "m2", "m3", "m4"]
    assert all(isinstance(e, SessionEvent) and e.session_id == s.id for e in events)
    assert all(e.kind == "user" for e in events)
    ts = [e.ts for e in events]
    assert ts == sorted(ts)
    info = store.get(s.id)
    assert info.event_count == 5
    assert info.updated >= info.created
    assert store.events(other.id)[0].seq == 1  # numbering is per session


def test_payload_round_trips_nested_json(store: SessionStore) -> None:
    s = store.create()
    payload = {"text": "héllo\nwörld", "n": 3, "f": 1.5, "ok": True, "none": None,
               "list": [1, {"a": []}], "nested": {"x": {"y": "z"}}}  # fmt: skip
    store.append(s.id, "tool_result", payload)
    assert store.events(s.id)[0].payload == payload


def test_events_filter_by_kind_and_after_seq(store: SessionStore) -> None:
    s = store.create()
    for kind in EVENT_KINDS:
        store.append(s.id, kind, {"k": kind})
    assert [e.kind for e in store.events(s.id)] == list(EVENT_KINDS)
    picked = store.events(s.id, kinds=["reply", "user"])
    assert [e.kind for e in picked] == ["user", "reply"]  # stored order, not the filter's
    assert store.events(s.id, kinds=iter(["error"]))[0].seq == 6
    assert store.events(s.id, kinds=[]) == []
    assert [e.seq for e in store.events(s.id, after_seq=4)] == [5, 6]
    assert [e.kind for e in store.events(s.id, kinds=["user", "stream"], after_seq=1)] == ["stream"]
    with pytest.raises(ValueError, match="unknown event kind 'bogus'"):
        store.events(s.id, kinds=["bogus"])


def test_latest_is_most_recently_changed(store: SessionStore) -> None:
    assert store.latest() is None
    a = store.create()
    b = store.create()
    assert store.latest() == store.get(b.id)
    store.append(a.id, "user", {"text": "back to a"})
    assert store.latest() is not None and store.latest().id == a.id  # type: ignore[union-attr]
    assert [s.id for s in store.list_sessions()] == [a.id, b.id]
    store.rename(b.id, "renamed")  # a rename is not activity
    assert store.latest().id == a.id  # type: ignore[union-attr]


def test_list_sessions_limit(store: SessionStore) -> None:
    ids = [store.create().id for _ in range(5)]
    listed = store.list_sessions(limit=3)
    assert [s.id for s in listed] == ids[::-1][:3]
    assert all(isinstance(s, SessionInfo) for s in listed)
    assert len(store.list_sessions()) == 5
    with pytest.raises(ValueError):
        store.list_sessions(limit=0)


def test_persists_across_reopen(db_path: Path) -> None:
    with SessionStore(db_path) as store:
        s = store.create("kept")
        store.append(s.id, "user", {"text": "hi"})
        store.append(s.id, "reply", {"text": "hello"})
    with SessionStore(db_path) as store:
        assert store.latest() == SessionInfo(s.id, s.created, store.get(s.id).updated, "kept", 2)
        assert [e.payload["text"] for e in store.events(s.id)] == ["hi", "hello"]
        assert store.append(s.id, "user", {"text": "again"}) == 3


def test_unknown_session(store: SessionStore) -> None:
    for call in (
        lambda: store.get("abc123"),
        lambda: store.append("abc123", "user", {}),
        lambda: store.events("abc123"),
        lambda: store.rename("abc123", "x"),
        lambda: store.delete("abc123"),
    ):
        with pytest.raises(SessionNotFound, match="no session 'abc123'") as info:
            call()
        assert info.value.session_id == "abc123"
        assert isinstance(info.value, SessionStoreError)


def test_bad_kind_and_payload(store: SessionStore) -> None:
    s = store.create()
    with pytest.raises(ValueError, match="unknown event kind 'message'"):
        store.append(s.id, "message", {"text": "x"})
    with pytest.raises(TypeError):
        store.append(s.id, "user", ["not", "a", "dict"])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        store.append(s.id, "user", {"obj": object()})
    assert store.get(s.id).event_count == 0
    assert store.events(s.id) == []


def test_rename_and_delete(store: SessionStore) -> None:
    a = store.create("old")
    b = store.create()
    store.append(a.id, "user", {"text": "x"})
    store.rename(a.id, "new")
    assert store.get(a.id).title == "new"
    store.rename(a.id, None)
    assert store.get(a.id).title is None
    store.delete(a.id)
    assert not store.exists(a.id)
    with pytest.raises(SessionNotFound):
        store.events(a.id)
    assert [s.id for s in store.list_sessions()] == [b.id]
    # the deleted session's events are gone from the file too
    conn = sqlite3.connect(store.path)
    try:
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 0
    finally:
        conn.close()


def test_corrupt_file_is_refused_with_advice(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    path.write_bytes(b"this is not a database, just some text that happens to be here\n" * 100)
    with pytest.raises(SessionStoreError, match="move it away") as info:
        SessionStore(path)
    assert str(path) in str(info.value)
    assert not isinstance(info.value, SessionNotFound)


def test_foreign_sqlite_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE something_else (x)")
    conn.commit()
    conn.close()
    with pytest.raises(SessionStoreError, match="not a Deeting session store"):
        SessionStore(path)


def test_newer_schema_is_refused(db_path: Path) -> None:
    SessionStore(db_path).close()
    conn = sqlite3.connect(db_path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(SessionStoreError, match="newer than this Deeting understands"):
        SessionStore(db_path)


def test_closed_store_raises(db_path: Path) -> None:
    store = SessionStore(db_path)
    s = store.create()
    store.close()
    store.close()  # idempotent
    with pytest.raises(SessionStoreError, match="closed"):
        store.append(s.id, "user", {})
    with pytest.raises(SessionStoreError, match="closed"):
        store.latest()


def test_two_stores_on_the_same_file(db_path: Path) -> None:
    with SessionStore(db_path) as one, SessionStore(db_path) as two:
        s = one.create()
        assert two.exists(s.id)
        assert one.append(s.id, "user", {"who": 1}) == 1
        assert two.append(s.id, "reply", {"who": 2}) == 2
        assert one.append(s.id, "reply", {"who": 1}) == 3
        assert [e.payload["who"] for e in two.events(s.id)] == [1, 2, 1]
        assert one.get(s.id).event_count == 3
        t = two.create()
        assert one.latest() == two.latest() == one.get(t.id)


def test_concurrent_appends_from_threads_and_connections(db_path: Path) -> None:
    with SessionStore(db_path) as one, SessionStore(db_path) as two:
        s = one.create()
        n = 100
        errors: list[BaseException] = []

        def writer(store: SessionStore, tag: str) -> None:
            try:
                for i in range(n):
                    store.append(s.id, "tool_result", {"tag": tag, "i": i})
            except BaseException as exc:
                errors.append(exc)

        threads = [
            threading.Thread(target=writer, args=(st, f"{name}{k}"))
            for k in range(2)
            for name, st in (("one", one), ("two", two))
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        events = one.events(s.id)
        assert [e.seq for e in events] == list(range(1, 4 * n + 1))
        for tag in ("one0", "one1", "two0", "two1"):  # each writer's events in its order
            assert [e.payload["i"] for e in events if e.payload["tag"] == tag] == list(range(n))


def test_two_processes_append_to_the_same_session(db_path: Path) -> None:
    import subprocess
    import sys

    with SessionStore(db_path) as store:
        s = store.create()
        child = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys; from pathlib import Path\n"
                "from deeting_tui.kernel.sessions.store import SessionStore\n"
                "with SessionStore(Path(sys.argv[1])) as st:\n"
                "    for i in range(200): st.append(sys.argv[2], 'reply', {'who': 'child'})\n",
                str(db_path),
                s.id,
            ]
        )
        for _ in range(200):
            store.append(s.id, "reply", {"who": "parent"})
        assert child.wait(timeout=30) == 0
        events = store.events(s.id)
        assert [e.seq for e in events] == list(range(1, 401))
        assert sum(e.payload["who"] == "child" for e in events) == 200


def test_same_clock_tick_orders_by_creation(
    store: SessionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import deeting_tui.kernel.sessions.store as session_module

    monkeypatch.setattr(session_module.time, "time", lambda: 1_000_000.0)
    a, b, c = store.create(), store.create(), store.create()
    assert [s.id for s in store.list_sessions()] == [c.id, b.id, a.id]


_V1_SCHEMA = """
CREATE TABLE sessions (id TEXT PRIMARY KEY, created REAL NOT NULL, updated REAL NOT NULL,
    touched INTEGER NOT NULL, title TEXT, event_count INTEGER NOT NULL DEFAULT 0);
CREATE INDEX sessions_by_touched ON sessions (touched);
CREATE TABLE events (session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL, kind TEXT NOT NULL, ts REAL NOT NULL, payload TEXT NOT NULL,
    PRIMARY KEY (session_id, seq)) WITHOUT ROWID;
INSERT INTO sessions VALUES ('aaaaaaaaaaaa', 100.0, 300.0, 3, 'old chat', 2);
INSERT INTO sessions VALUES ('bbbbbbbbbbbb', 200.0, 200.0, 2, NULL, 0);
INSERT INTO events VALUES ('aaaaaaaaaaaa', 1, 'user', 250.0, '{"text": "hi"}');
INSERT INTO events VALUES ('aaaaaaaaaaaa', 2, 'reply', 300.0, '{"text": "hello"}');
PRAGMA user_version = 1;
"""


def test_a_version_1_store_is_upgraded_in_place(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    conn = sqlite3.connect(db_path)
    conn.executescript(_V1_SCHEMA)
    conn.close()
    with SessionStore(db_path) as store:
        assert store.list_sessions() == [
            SessionInfo("aaaaaaaaaaaa", 100.0, 300.0, "old chat", 2),
            SessionInfo("bbbbbbbbbbbb", 200.0, 200.0, None, 0),
        ]
        assert [e.payload["text"] for e in store.events("aaaaaaaaaaaa")] == ["hi", "hello"]
        assert store.append("bbbbbbbbbbbb", "user", {"text": "new"}) == 1
        assert store.latest().id == "bbbbbbbbbbbb"  # type: ignore[union-attr]
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        columns = [row[1] for row in conn.execute("PRAGMA table_info(sessions)")]
        assert columns == ["id", "created", "title"]
    finally:
        conn.close()
