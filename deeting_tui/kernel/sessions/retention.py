"""How much of a plugin's live streams the session history keeps: the latest state, bounded.

A stream is a live view, and a plugin may push one at any time, unasked, as often as it likes;
storing every frame would let a plugin fill the disk through the kernel. So the session store
keeps, for each stream:

- per topic (in one session): its newest ``history`` frames — always its latest one;
- per plugin in one session: at most ``session_bytes`` and ``session_frames``;
- per plugin over all sessions: at most ``plugin_bytes`` and ``plugin_frames``.

Going over a per-session cap drops older frames of that plugin first, then the latest frames of
its least recently updated topics; going over a per-plugin cap drops the plugin's frames in the
sessions used least recently, a whole session at a time. Every stored frame counts its JSON
plus ``ROW_OVERHEAD`` for its row and index entry, so a flood of tiny frames is capped too.

The per-session caps hold after every commit. The per-plugin caps are enforced the first time a
store writes a plugin's frames into a session (so once per session and run), counting that
session at its full caps, so they hold too; each other process writing the same plugin's
frames into another session at the same time can add one session's worth.

Dropping frames never frees their seqs: when a session's newest event goes, its seq is kept in
``seq_floors`` and the next event of the session is numbered after it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "ROW_OVERHEAD",
    "Frame",
    "StreamCaps",
    "batch_drops",
    "frames_to_drop",
    "trim_all",
    "trim_plugin",
    "trim_session",
]

#: What a stored frame costs besides its JSON: key, kind, timestamp, index entry, cell headers.
ROW_OVERHEAD = 64

_KIB = 1024
_MIB = 1024 * _KIB


@dataclass(frozen=True, slots=True)
class StreamCaps:
    """The limits; the product uses the defaults, tests shrink them."""

    history: int = 8
    session_bytes: int = 4 * _MIB
    session_frames: int = 512
    plugin_bytes: int = 32 * _MIB
    plugin_frames: int = 4096

    def __post_init__(self) -> None:
        if self.history < 1:
            raise ValueError("a stream keeps at least its latest frame (history >= 1)")
        if self.session_bytes > self.plugin_bytes or self.session_frames > self.plugin_frames:
            raise ValueError("a plugin's caps over all sessions must hold one session's caps")


@dataclass(frozen=True, slots=True)
class Frame:
    """One stored (or about to be stored) frame of a plugin in a session."""

    topic: str
    size: int  # bytes of JSON


def frames_to_drop(frames: Sequence[Frame], caps: StreamCaps) -> set[int]:
    """Which of one plugin's frames in one session (oldest first) the caps drop, by index."""
    drop: set[int] = set()
    latest = [False] * len(frames)
    per_topic: dict[str, int] = {}
    for index in range(len(frames) - 1, -1, -1):
        topic = frames[index].topic
        newer = per_topic.get(topic, 0)
        if newer >= caps.history:
            drop.add(index)
            continue
        latest[index] = newer == 0
        per_topic[topic] = newer + 1
    kept = [index for index in range(len(frames)) if index not in drop]
    count = len(kept)
    total = sum(frames[index].size for index in kept) + count * ROW_OVERHEAD

    def fits() -> bool:
        return count <= caps.session_frames and total <= caps.session_bytes

    # Older frames first, then topics' latest frames, least recently updated first.
    for index in [i for i in kept if not latest[i]] + [i for i in kept if latest[i]]:
        if fits():
            break
        drop.add(index)
        count -= 1
        total -= frames[index].size + ROW_OVERHEAD
    return drop


# Every query goes through the partial index events_streams, named: the planner would rather
# walk a session's rows by primary key, and a row's stream columns come after its payload
# (reading them walks the payload's overflow pages). The index holds every column these
# queries read, kind too (else SQLite reads the row to check it).
_STREAMS = "events INDEXED BY events_streams"
_BEYOND_HISTORY = (
    "DELETE FROM events WHERE session_id = ?1 AND seq IN ("
    f"SELECT seq FROM {_STREAMS} WHERE plugin = ?2 AND session_id = ?1 AND topic = ?3 "
    "AND kind = 'stream' ORDER BY seq DESC LIMIT -1 OFFSET ?4)"
)
_SESSION_TOTALS = (
    f"SELECT count(*), total(size) FROM {_STREAMS} "
    "WHERE plugin = ? AND session_id = ? AND kind = 'stream'"
)
_SESSION_FRAMES = (
    f"SELECT seq, topic, size FROM {_STREAMS} "
    "WHERE plugin = ? AND session_id = ? AND kind = 'stream' ORDER BY seq"
)
_PLUGIN_TOTALS = (
    f"SELECT session_id, count(*), total(size) FROM {_STREAMS} "
    "WHERE plugin = ? AND kind = 'stream' GROUP BY session_id"
)
_DROP_SESSION = (
    "DELETE FROM events WHERE session_id = ?2 AND seq IN ("
    f"SELECT seq FROM {_STREAMS} WHERE plugin = ?1 AND session_id = ?2 AND kind = 'stream')"
)
_ALL_PAIRS = f"SELECT DISTINCT plugin, session_id FROM {_STREAMS} WHERE kind = 'stream'"
# Before dropping what may include a session's newest event: its seq is never given again.
_KEEP_FLOOR = (
    "INSERT INTO seq_floors (session_id, seq) "
    "SELECT ?1, MAX(seq) FROM events WHERE session_id = ?1 HAVING MAX(seq) IS NOT NULL "
    "ON CONFLICT (session_id) DO UPDATE SET seq = max(seq, excluded.seq)"
)
_LAST_CHANGE = "SELECT ts FROM events WHERE session_id = ? ORDER BY seq DESC LIMIT 1"


def trim_session(
    conn: sqlite3.Connection,
    session_id: str,
    plugin: str,
    topics: Iterable[str] | None,
    caps: StreamCaps,
) -> None:
    """Hold one plugin's frames in one session to the caps. ``topics``: those just written
    (their history is trimmed in SQL, the common case); None checks every topic."""
    if topics is not None:
        for topic in topics:
            conn.execute(_BEYOND_HISTORY, (session_id, plugin, topic, caps.history))
        count, total = conn.execute(_SESSION_TOTALS, (plugin, session_id)).fetchone()
        if count <= caps.session_frames and total + count * ROW_OVERHEAD <= caps.session_bytes:
            return
    rows = conn.execute(_SESSION_FRAMES, (plugin, session_id)).fetchall()
    drop = frames_to_drop([Frame(topic, size) for _seq, topic, size in rows], caps)
    if len(rows) - 1 in drop:
        conn.execute(_KEEP_FLOOR, (session_id,))
    conn.executemany(
        "DELETE FROM events WHERE session_id = ? AND seq = ?",
        [(session_id, rows[index][0]) for index in sorted(drop)],
    )


def trim_plugin(conn: sqlite3.Connection, plugin: str, keep: str | None, caps: StreamCaps) -> None:
    """Hold one plugin's frames over all sessions to the caps, dropping whole sessions' worth,
    least recently used first; never the session ``keep`` (the one being written), which is
    counted at its caps, so the total stays within the caps while it grows to them."""
    sessions = conn.execute(_PLUGIN_TOTALS, (plugin,)).fetchall()
    count = sum(row[1] for row in sessions)
    total = sum(row[2] for row in sessions) + count * ROW_OVERHEAD
    if count <= caps.plugin_frames and total <= caps.plugin_bytes:
        return
    recency = {}
    for session_id, _count, _total in sessions:
        last = conn.execute(_LAST_CHANGE, (session_id,)).fetchone()
        recency[session_id] = last[0] if last else 0.0
    newest_first = sorted(sessions, key=lambda row: (row[0] == keep, recency[row[0]]), reverse=True)
    kept_count = kept_total = 0
    full = False
    for session_id, frames, size in newest_first:
        cost = size + frames * ROW_OVERHEAD
        if session_id == keep:  # room for it to grow to its caps
            frames, cost = caps.session_frames, caps.session_bytes
        full = full or (
            kept_count + frames > caps.plugin_frames or kept_total + cost > caps.plugin_bytes
        )
        if full and session_id != keep:
            conn.execute(_KEEP_FLOOR, (session_id,))
            conn.execute(_DROP_SESSION, (plugin, session_id))
        else:
            kept_count += frames
            kept_total += cost


def trim_all(conn: sqlite3.Connection, caps: StreamCaps) -> None:
    """Hold every plugin's frames in every session to the caps (after an upgrade)."""
    pairs = conn.execute(_ALL_PAIRS).fetchall()
    for plugin, session_id in pairs:
        trim_session(conn, session_id, plugin, None, caps)
    for plugin in sorted({plugin for plugin, _session in pairs}):
        trim_plugin(conn, plugin, None, caps)


def batch_drops(frames: Sequence[tuple[str, str, Frame] | None], caps: StreamCaps) -> set[int]:
    """Which frames of a batch about to be stored (``(session_id, plugin, frame)``, None for
    other events) the caps would drop at once, by index: they are never written. Safe before
    looking at what is stored, which is all older: it can only add to what gets dropped."""
    groups: dict[tuple[str, str], list[int]] = {}
    for index, item in enumerate(frames):
        if item is not None:
            groups.setdefault((item[0], item[1]), []).append(index)
    drop: set[int] = set()
    for indexes in groups.values():
        group = [frames[i][2] for i in indexes]  # type: ignore[index]
        size = sum(frame.size for frame in group) + len(group) * ROW_OVERHEAD
        few = len(group) <= min(caps.history, caps.session_frames)
        if few and size <= caps.session_bytes:
            continue  # the usual batch, a frame or a few: nothing to drop yet
        drop.update(indexes[j] for j in frames_to_drop(group, caps))
    return drop
