"""The session store keeps the latest state of each stream, within caps (sessions/retention.py),
and upgrades a used version-2 store (every frame kept) in place."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest

from deeting_tui.kernel.sessions.database import SCHEMA_VERSION
from deeting_tui.kernel.sessions.encoding import EncodedEvent, encode_event
from deeting_tui.kernel.sessions.retention import (
    ROW_OVERHEAD,
    Frame,
    StreamCaps,
    batch_drops,
    frames_to_drop,
)
from deeting_tui.kernel.sessions.store import SessionStore

SMALL = StreamCaps(history=3, session_bytes=10_000, session_frames=20, plugin_bytes=25_000,
                   plugin_frames=50)  # fmt: skip


def _frame(plugin: str, topic: str, n: int, pad: int = 0) -> dict[str, Any]:
    return {"plugin": plugin, "topic": topic, "payload": {"n": n, "pad": "x" * pad},
            "renderer": None}  # fmt: skip


def _streams(store: SessionStore, session_id: str) -> list[tuple[str, str, int]]:
    return [
        (e.payload["plugin"], e.payload["topic"], e.payload["payload"]["n"])
        for e in store.events(session_id, kinds=["stream"])
    ]


def _cost(store: SessionStore, session_id: str, plugin: str | None = None) -> int:
    return sum(
        len(orjson.dumps(e.payload)) + ROW_OVERHEAD
        for e in store.events(session_id, kinds=["stream"])
        if plugin is None or e.payload.get("plugin") == plugin
    )


# -- the rule, as a pure function --------------------------------------------------------------


def test_each_topic_keeps_its_newest_frames() -> None:
    frames = [Frame("a", 10), Frame("b", 10)] * 5  # a b a b … oldest first
    dropped = frames_to_drop(frames, SMALL)
    kept = [i for i in range(len(frames)) if i not in dropped]
    assert kept == [4, 5, 6, 7, 8, 9]  # the newest 3 of each


def test_over_the_cap_older_frames_go_before_any_topics_latest() -> None:
    caps = StreamCaps(history=4, session_bytes=5 * (100 + ROW_OVERHEAD), session_frames=100,
                      plugin_bytes=10**6, plugin_frames=1000)  # fmt: skip
    # "quiet" was updated once, long ago; "busy" many times since.
    frames = [Frame("quiet", 100)] + [Frame("busy", 100)] * 6
    kept = [i for i in range(len(frames)) if i not in frames_to_drop(frames, caps)]
    assert kept == [0, 3, 4, 5, 6]  # quiet's only frame stays; busy's oldest go


def test_past_that_the_least_recently_updated_topics_go() -> None:
    caps = StreamCaps(history=1, session_bytes=2 * (100 + ROW_OVERHEAD), session_frames=100,
                      plugin_bytes=10**6, plugin_frames=1000)  # fmt: skip
    frames = [Frame(f"t{i}", 100) for i in range(5)]
    kept = [i for i in range(len(frames)) if i not in frames_to_drop(frames, caps)]
    assert kept == [3, 4]


def test_a_flood_of_tiny_frames_is_capped_by_count() -> None:
    frames = [Frame(f"t{i}", 1) for i in range(100)]
    kept = [i for i in range(len(frames)) if i not in frames_to_drop(frames, SMALL)]
    assert kept == list(range(80, 100))


def test_a_batch_drops_only_stream_frames_and_groups_by_session_and_plugin() -> None:
    items = [("s", "p", Frame("t", 10))] * 5 + [None] + [("s", "q", Frame("t", 10))]
    items += [("other", "p", Frame("t", 10))]
    assert batch_drops(items, SMALL) == {0, 1}


def test_caps_must_be_consistent() -> None:
    with pytest.raises(ValueError, match="latest frame"):
        StreamCaps(history=0)
    with pytest.raises(ValueError, match="one session's caps"):
        StreamCaps(session_bytes=2, plugin_bytes=1)


# -- the store ---------------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path):
    with SessionStore(tmp_path / "sessions.db", stream_caps=SMALL) as s:
        yield s


def test_appends_keep_the_latest_frames_of_each_topic(store: SessionStore) -> None:
    s = store.create()
    store.append(s.id, "user", {"text": "hi"})
    for n in range(10):
        store.append(s.id, "stream", _frame("p", "a", n))
        store.append(s.id, "stream", _frame("p", "b", n))
    store.append(s.id, "reply", {"text": "there"})
    assert _streams(store, s.id) == [
        ("p", t, n) for n in (7, 8, 9) for t in ("a", "b")
    ]  # in the order they came
    kinds = [e.kind for e in store.events(s.id)]
    assert kinds[0] == "user" and kinds[-1] == "reply"  # the conversation is untouched


def test_a_burst_in_one_transaction_writes_only_what_stays(store: SessionStore) -> None:
    s = store.create()
    events = [encode_event(s.id, "stream", _frame("p", "a", n)) for n in range(10)]
    seqs = store.append_encoded([encode_event(s.id, "user", {"text": "go"}), *events])
    assert seqs == [1] + [0] * 7 + [2, 3, 4]  # 0: dropped at once, never written
    assert _streams(store, s.id) == [("p", "a", 7), ("p", "a", 8), ("p", "a", 9)]


def test_a_plugins_frames_in_a_session_are_capped_in_bytes(store: SessionStore) -> None:
    s = store.create()
    for n in range(30):
        store.append(s.id, "stream", _frame("big", f"t{n}", n, pad=900))
        store.append(s.id, "stream", _frame("small", "only", n))
    assert _cost(store, s.id, "big") <= SMALL.session_bytes
    topics = [t for p, t, _n in _streams(store, s.id) if p == "big"]
    assert topics == [f"t{n}" for n in range(30 - len(topics), 30)]  # the newest topics
    # Another plugin's stream is not pushed out by this one's.
    assert [n for p, _t, n in _streams(store, s.id) if p == "small"] == [27, 28, 29]


def test_a_plugins_frames_over_all_sessions_are_capped_oldest_sessions_first(
    tmp_path: Path,
) -> None:
    db = tmp_path / "sessions.db"
    sessions = []
    for n in range(4):  # one run of Deeting per session, as `deeting --script` does
        with SessionStore(db, stream_caps=SMALL) as store:
            s = store.create()
            sessions.append(s.id)
            store.append(s.id, "user", {"text": f"run {n}"})
            for k in range(10):
                store.append(s.id, "stream", _frame("p", f"t{k}", k, pad=800))
    with SessionStore(db, stream_caps=SMALL) as store:
        costs = [_cost(store, sid) for sid in sessions]
        assert sum(costs) <= SMALL.plugin_bytes
        assert costs[-1] > 0 and costs[0] == 0  # the newest session kept, the oldest emptied
        # The conversation of every session stays, and no seq is ever given twice.
        first = sessions[0]
        assert [e.kind for e in store.events(first)] == ["user"]
        last_seq = store.events(first)[-1].seq
        assert last_seq == 1
        assert store.append(first, "user", {"text": "back again"}) == 12  # not 2: 2-11 were used
        store.delete(first)  # its kept seq goes with it
        assert not store.exists(first)


# -- upgrading a used store ---------------------------------------------------------------------

# Version 2 exactly as the previous release created it.
_V2_SCHEMA = """
CREATE TABLE sessions (id TEXT PRIMARY KEY, created REAL NOT NULL, title TEXT);
CREATE TABLE events (
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL, kind TEXT NOT NULL, ts REAL NOT NULL, payload TEXT NOT NULL,
    PRIMARY KEY (session_id, seq)
) WITHOUT ROWID;
PRAGMA user_version = 2;
"""


def _used_v2_store(db: Path) -> dict[str, Any]:
    """A version-2 home after weeks of use: two sessions, thousands of stream frames from a
    chatty plugin, a few frames of megabytes from a hog, and a damaged row."""
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(_V2_SCHEMA)
    rows: list[tuple[str, int, str, float, str]] = []
    for sid, created in (("aaaaaaaaaaaa", 100.0), ("bbbbbbbbbbbb", 200.0)):
        conn.execute("INSERT INTO sessions VALUES (?, ?, NULL)", (sid, created))
        seq = 0

        def add(kind: str, payload: Any, sid: str = sid, created: float = created) -> None:
            nonlocal seq
            seq += 1
            rows.append((sid, seq, kind, created + seq / 1000, orjson.dumps(payload).decode()))

        add("user", {"text": "watch my machine"})
        for n in range(3000):
            add("stream", _frame("sysinfo", "sysinfo.live", n, pad=200))
            if n % 500 == 0:
                add("stream", _frame("hog", f"hog.{n}", n, pad=3 * 1024 * 1024))
        add("stream", {"no": "plugin or topic"})
        add("reply", {"text": "done"})
    # A third session ends in a damaged row and a frame larger than a session may keep.
    conn.execute("INSERT INTO sessions VALUES ('cccccccccccc', 300.0, NULL)")
    rows.append(("cccccccccccc", 1, "user", 301.0, '{"text": "hi"}'))
    rows.append(("cccccccccccc", 2, "stream", 302.0, "{not json"))
    huge = orjson.dumps(_frame("hog", "hog.x", 0, pad=5 * 1024 * 1024)).decode()
    rows.append(("cccccccccccc", 3, "stream", 303.0, huge))
    conn.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?)", rows)
    conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return {"rows": len(rows)}


def _file_bytes(db: Path) -> int:
    return sum(p.stat().st_size for p in db.parent.glob(db.name + "*"))


def test_a_used_version_2_store_is_upgraded_trimmed_and_compacted(tmp_path: Path) -> None:
    db = tmp_path / "sessions.sqlite3"
    _used_v2_store(db)
    before = _file_bytes(db)
    assert before > 30 * 1024 * 1024
    caps = StreamCaps()
    with SessionStore(db) as store:
        for sid in ("aaaaaaaaaaaa", "bbbbbbbbbbbb"):
            events = store.events(sid)
            assert [e.kind for e in events if e.kind != "stream"] == ["user", "reply"]
            live = [e.payload["payload"]["n"] for e in events
                    if e.payload.get("topic") == "sysinfo.live"]  # fmt: skip
            assert live == list(range(3000 - caps.history, 3000))
            assert _cost(store, sid, "hog") <= caps.session_bytes
            hog_topics = [e.payload["topic"] for e in events if e.payload.get("plugin") == "hog"]
            assert hog_topics == ["hog.2500"]  # 3 MiB frames: only the newest fits
        # Appending goes on after the highest seq, also when that event was dropped.
        assert store.append("bbbbbbbbbbbb", "user", {"text": "again"}) == 3010
        assert store.append("cccccccccccc", "user", {"text": "again"}) == 4
    after = _file_bytes(db)
    assert after < before / 4, (before, after)
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        third = conn.execute(
            "SELECT seq, kind, plugin, topic FROM events "
            "WHERE session_id = 'cccccccccccc' ORDER BY seq"
        ).fetchall()
        assert third == [(1, "user", None, None), (2, "stream", "", ""), (4, "user", None, None)]
    finally:
        conn.close()


def test_a_stream_event_always_knows_its_size() -> None:
    assert (
        EncodedEvent("s", "stream", 0.0, '{"a":"é"}', "p", "t").size == 10
    )  # bytes, not characters
    assert EncodedEvent("s", "user", 0.0, '{"a":"é"}').size == 0  # only frames are counted
