"""Filling the disk through the kernel: a hostile plugin floods it with stream frames.

The plugin (tests/fixtures/hostile/streams) writes its notifications straight onto its RPC pipe,
past the SDK's checks: thousands of frames in one call, up to the 16 MiB RPC limit, on one
topic and on many, and malformed ones. The kernel must drop what breaks the rules (one notice
for the user and one log line, not one per frame), keep only the latest state of each stream
within the documented caps, and answer the next message at once.

Run as root by .ci/run, and again as an unprivileged user by test_unprivileged.py."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from support import HOSTILE, events_of, run_deeting

from deeting_tui.errors import Fix, Hint
from deeting_tui.kernel.kernel import Kernel
from deeting_tui.kernel.sessions.retention import ROW_OVERHEAD, StreamCaps
from deeting_tui.rpc.framing import DEFAULT_MAX_MESSAGE_BYTES
from deeting_tui.rpc.limits import MAX_STREAM_FRAME_BYTES
from deeting_tui.workers.supervisor import Supervisor

PLUGIN = "streams"
KIB = 1024
MIB = 1024 * KIB
CAPS = StreamCaps()
#: The largest frame the pipe carries: a payload this big is under the RPC limit, with room
#: for the envelope.
NEAR_RPC_LIMIT = DEFAULT_MAX_MESSAGE_BYTES - 1024
#: "At once": the next call after a flood, on a loaded two-core CI machine.
PROMPT_S = 2.0


async def _install(kernel: Kernel) -> Supervisor:
    report = await kernel.loader.install(HOSTILE / "streams", yes=True)
    assert report.enabled, report.problem
    return kernel.loader.runtimes[PLUGIN].supervisor


def _disk_bytes(kernel: Kernel) -> int:
    """The session database on disk, WAL included, after everything is committed and the WAL
    is checkpointed into the file."""
    kernel.journal.flush()
    db = kernel.paths.sessions_db
    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        conn.close()
    return sum(p.stat().st_size for p in db.parent.glob(db.name + "*"))


def _stored(kernel: Kernel, session_id: str) -> list[dict[str, Any]]:
    kernel.journal.flush()
    return [e.payload for e in kernel.sessions.events(session_id, kinds=["stream"])]


def _cost(frames: list[dict[str, Any]]) -> int:
    """What the caps count: each frame's JSON plus the row overhead."""
    return sum(len(orjson.dumps(f)) + ROW_OVERHEAD for f in frames)


async def _answers_at_once(kernel: Kernel, session_id: str, supervisor: Supervisor) -> None:
    pid = supervisor.pid
    began = time.perf_counter()
    turn = await kernel.submit(session_id, "/ok")
    took = time.perf_counter() - began
    assert not turn.failed, turn.errors
    assert took < PROMPT_S, f"the next call took {took:.2f} s"
    assert supervisor.pid == pid and supervisor.state == "ready"  # nothing was killed


def _notices(seen: list[dict[str, Any]]) -> list[str]:
    return [
        e["message"] for e in seen if e["type"] == "plugin_notice" and e.get("plugin") == PLUGIN
    ]


def _dropped_lines(kernel: Kernel) -> list[str]:
    log = kernel.paths.plugin_log(PLUGIN)
    text = log.read_text() if log.exists() else ""
    return [line for line in text.splitlines() if "stream frame" in line]


async def test_a_flood_on_one_topic_keeps_its_latest_frames_and_one_notice(
    kernel: Kernel,
) -> None:
    supervisor = await _install(kernel)
    session = kernel.open_session()
    seen = events_of(kernel)
    before = _disk_bytes(kernel)
    frames, sizes, big_every = 2000, [200 * KIB, 300 * KIB, 2 * KIB], 500
    outcome = await kernel.call_tool(
        session.id,
        "flood",
        {"frames": frames, "sizes": sizes, "big": NEAR_RPC_LIMIT, "big_every": big_every},
    )
    assert outcome.ok, outcome.error

    def accepted(i: int) -> bool:
        size = NEAR_RPC_LIMIT if i % big_every == big_every - 1 else sizes[i % len(sizes)]
        return size <= MAX_STREAM_FRAME_BYTES

    expected = [i for i in range(frames) if accepted(i)]
    shown = [e["payload"]["i"] for e in seen if e["type"] == "stream"]
    assert shown == expected  # every accepted frame shown (and printed by --json), no other

    stored = _stored(kernel, session.id)
    assert [f["payload"]["i"] for f in stored] == expected[-CAPS.history :]
    assert all(f["topic"] == "flood.0" and f["plugin"] == PLUGIN for f in stored)
    assert _cost(stored) <= CAPS.session_bytes
    grew = _disk_bytes(kernel) - before
    assert grew <= 2 * CAPS.session_bytes, f"the session database grew by {grew:,} bytes"

    notices = _notices(seen)
    assert len(notices) == 1, notices
    assert "256 KiB limit for one stream frame" in notices[0]
    hints = [e.get("hint") for e in seen if e["type"] == "plugin_notice"]
    assert Hint.from_data(hints[0]) == Hint(Fix.DISABLE, PLUGIN)  # the fix, as data
    kernel.streams.close()  # the count of the rest goes to the log now, not in a minute
    lines = _dropped_lines(kernel)
    assert len(lines) == 2, lines
    assert "256 KiB limit" in lines[0]
    assert f"{frames - len(expected) - 1} more stream frame(s) dropped" in lines[1]
    await _answers_at_once(kernel, session.id, supervisor)


async def test_a_flood_on_many_topics_is_held_to_the_plugins_cap(kernel: Kernel) -> None:
    supervisor = await _install(kernel)
    session = kernel.open_session()
    seen = events_of(kernel)
    before = _disk_bytes(kernel)
    # 50 topics, 20 rounds: every topic's history would be 8 x 20 KiB, 8 MiB in all.
    topics, rounds = 50, 20
    await kernel.call_tool(
        session.id, "flood", {"frames": topics * rounds, "topics": topics, "sizes": [20 * KIB]}
    )
    stored = _stored(kernel, session.id)
    latest = {f["topic"]: f["payload"]["i"] for f in stored}
    assert latest == {f"flood.{t}": (rounds - 1) * topics + t for t in range(topics)}
    assert _cost(stored) <= CAPS.session_bytes
    # Then 3,000 topics of 100 KiB: only the newest that fit stay, each with its frame.
    count = 3000
    outcome = await kernel.call_tool(
        session.id,
        "flood",
        {"frames": count, "topics": count, "sizes": [100 * KIB], "big": NEAR_RPC_LIMIT,
         "big_every": 1000},
    )  # fmt: skip
    assert outcome.ok, outcome.error
    stored = _stored(kernel, session.id)
    kept = [f["payload"]["i"] for f in stored]
    newest = [i for i in range(count) if i % 1000 != 999]
    assert kept == newest[-len(kept) :]  # the newest topics, in order, one frame each
    assert _cost(stored) <= CAPS.session_bytes < _cost(stored) + 100 * KIB + ROW_OVERHEAD
    grew = _disk_bytes(kernel) - before
    assert grew <= 2 * CAPS.session_bytes, f"the session database grew by {grew:,} bytes"
    notices = _notices(seen)
    assert len(notices) == 1 and "256 KiB" in notices[0], notices
    await _answers_at_once(kernel, session.id, supervisor)


@pytest.mark.parametrize(
    ("what", "says"),
    [
        ("list-payload", "payload must be a JSON object, not an array"),
        ("string-payload", "payload must be a JSON object, not a string"),
        ("no-payload", "payload must be a JSON object, not null"),
        ("huge-topic", "topic must be 1 to 128 letters"),
        ("escape-topic", "topic must be 1 to 128 letters"),
        ("number-topic", "topic must be 1 to 128 letters, digits, '.', '_' or '-', not 42"),
        ("bad-renderer", "renderer is not a renderer's name: '../../x'"),
        ("deep", "nested more than 252 levels deep"),
    ],
)
async def test_a_malformed_frame_is_dropped_with_one_clear_line(
    kernel: Kernel, what: str, says: str
) -> None:
    supervisor = await _install(kernel)
    session = kernel.open_session()
    seen = events_of(kernel)
    outcome = await kernel.call_tool(session.id, "bad", {"what": what, "repeat": 50})
    assert outcome.ok, outcome.error
    assert [e for e in seen if e["type"] == "stream"] == []
    assert _stored(kernel, session.id) == []
    notices = _notices(seen)
    assert len(notices) == 1 and says in notices[0], notices
    assert "\x1b" not in notices[0] and "\x07" not in notices[0]
    lines = _dropped_lines(kernel)
    assert len(lines) == 1 and says in lines[0], lines
    await _answers_at_once(kernel, session.id, supervisor)


@pytest.mark.parametrize(
    ("what", "says"),
    [
        ("nan", "payload['v'][1] is not a finite number"),
        ("inf", "payload['v']['w'] is not a finite number"),
        ("not-json", "the payload is not JSON"),
        ("deep", "nested more than 252 levels deep"),
        ("huge", "over the 256 KiB limit for one stream frame"),
        ("list", "payload must be a dict, not list"),
        ("topic", "topic must be 1 to 128 letters"),
        ("renderer", "renderer must be a renderer's name"),
    ],
)
async def test_the_sdk_refuses_a_bad_frame_in_the_plugin(
    kernel: Kernel, what: str, says: str
) -> None:
    supervisor = await _install(kernel)
    session = kernel.open_session()
    seen = events_of(kernel)
    outcome = await kernel.call_tool(session.id, "sdk", {"what": what})
    assert outcome.ok, outcome.error
    raised = outcome.data["raised"] if isinstance(outcome.data, dict) else None
    assert raised is not None and "push_stream: " in raised and says in raised, raised
    assert [e for e in seen if e["type"] in ("stream", "plugin_notice")] == []
    await _answers_at_once(kernel, session.id, supervisor)


def test_script_json_prints_each_accepted_frame_and_one_notice(tmp_path: Path) -> None:
    """``--json`` prints one ``stream`` event per frame the kernel accepted."""
    home = tmp_path / "home"
    installed = run_deeting(
        "plugin", "install", str(HOSTILE / "streams"), "--yes", home=home, timeout=120
    )
    assert installed.returncode == 0, installed.stderr
    script = "/flood frames=400 sizes=[1000,300000]\n/ok\n"
    done = run_deeting("--script", "-", "--json", home=home, stdin=script, timeout=120)
    assert done.returncode == 0, done.stderr
    events = [orjson.loads(line) for line in done.stdout.splitlines()]
    streams = [e for e in events if e["type"] == "stream"]
    assert [e["payload"]["i"] for e in streams] == list(range(0, 400, 2))
    notices = [line for line in done.stderr.splitlines() if line.startswith("notice:")]
    assert len(notices) == 1 and "256 KiB limit" in notices[0], done.stderr
    assert [e["text"] for e in events if e["type"] == "reply"] == ["sent 400 frames", "ok"]


async def test_a_frame_over_the_rpc_limit_costs_the_worker_not_the_kernel(kernel: Kernel) -> None:
    """Past 16 MiB a message is a protocol error: the worker is killed and restarted."""
    supervisor = await _install(kernel)
    session = kernel.open_session()
    seen = events_of(kernel)
    pid = supervisor.pid
    outcome = await kernel.call_tool(
        session.id, "flood", {"frames": 3, "sizes": [DEFAULT_MAX_MESSAGE_BYTES + 1]}
    )
    assert not outcome.ok and f"over the {DEFAULT_MAX_MESSAGE_BYTES}-byte limit" in str(
        outcome.error
    )
    assert [e for e in seen if e["type"] == "stream"] == [] and _stored(kernel, session.id) == []
    began = time.perf_counter()
    turn = await kernel.submit(session.id, "/ok")  # served by the restarted worker
    assert not turn.failed, turn.errors
    assert time.perf_counter() - began < PROMPT_S
    assert supervisor.pid != pid and supervisor.state == "ready"
