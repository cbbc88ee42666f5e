"""Typed kernel events (kernel/events.py): the JSON of each is the dict of before, a session
stored by the code of before loads, and a damaged stored event is said, not fatal."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest
from support import FIXTURES

from deeting_tui.kernel.events import (
    EVENT_TYPES,
    ErrorEvent,
    EventFormatError,
    PluginNotice,
    Progress,
    Reply,
    StreamFrame,
    ToolCall,
    ToolResult,
    from_json,
)
from deeting_tui.kernel.kernel import Kernel
from deeting_tui.kernel.sessions.store import SessionStore

GOLDEN = FIXTURES / "golden"


def _stored_before() -> tuple[str, list[dict[str, object]]]:
    """The session events as the code before typed events read them (session_events.json was
    written from session.db by that code: tests/fixtures/golden)."""
    written = orjson.loads((GOLDEN / "session_events.json").read_bytes())
    return written["session_id"], written["events"]


def test_every_stored_event_of_the_old_code_reads_back_to_the_same_bytes() -> None:
    _, events = _stored_before()
    assert {e["type"] for e in events} >= {"user", "reply", "tool_call", "tool_result", "error"}
    for event in events:
        typed = from_json(event)
        assert type(typed) is EVENT_TYPES[str(event["type"])]
        assert orjson.dumps(typed.to_json()) == orjson.dumps(event)  # key order included


async def test_a_session_written_by_the_old_code_loads(kernel: Kernel, tmp_path: Path) -> None:
    session_id, events = _stored_before()
    copy = tmp_path / "old.db"
    shutil.copy(GOLDEN / "session.db", copy)
    kernel.sessions.close()
    kernel.sessions = SessionStore(copy)
    kernel.journal.store = kernel.sessions
    shown = kernel.conversation(session_id)
    wanted = [e for e in events if e["type"] != "stream"]
    assert [orjson.dumps(e.to_json()) for e in shown] == [orjson.dumps(e) for e in wanted]
    assert not any("cannot be shown" in getattr(e, "message", "") for e in shown)


async def test_a_damaged_stored_event_is_said_in_its_place(kernel: Kernel) -> None:
    session = kernel.open_session()
    kernel.sessions.append(session.id, "user", {"text": "hi"})
    kernel.sessions.append(session.id, "tool_call", {"call_id": "c1", "tool": "t", "args": [1]})
    kernel.sessions.append(session.id, "reply", {"text": "after"})
    shown = kernel.conversation(session.id)
    assert [type(e) for e in shown] == [type(shown[0]), ErrorEvent, Reply]
    assert isinstance(shown[1], ErrorEvent)
    assert "(tool_call)" in shown[1].message
    assert "'args' must be an object, not an array" in shown[1].message


def test_the_json_of_each_kind_is_the_dict_of_before() -> None:
    assert ToolResult(
        session_id="s",
        call_id="c",
        tool="t",
        plugin="p",
        ok=False,
        cancelled=True,
        error="cancelled",
        duration_ms=1.5,
    ).to_json() == {
        "type": "tool_result",
        "session_id": "s",
        "call_id": "c",
        "tool": "t",
        "plugin": "p",
        "ok": False,
        "cancelled": True,
        "data": None,
        "text": None,
        "renderer": None,
        "error": "cancelled",
        "duration_ms": 1.5,
    }
    result = ToolResult(session_id="s", call_id="c", tool="t", plugin="p", ok=True, data={})
    assert "cancelled" not in result.to_json() and "renderer_error" not in result.to_json()
    assert list(ToolCall(session_id="s", call_id="c", tool="t", plugin="p").to_json()) == [
        "type",
        "session_id",
        "call_id",
        "tool",
        "plugin",
        "args",
    ]
    assert PluginNotice(plugin=None, message="m").to_json() == {
        "type": "plugin_notice",
        "plugin": None,
        "message": "m",
    }
    assert Reply(session_id="s", text="x", provider="offline").to_json() == {
        "type": "reply",
        "session_id": "s",
        "text": "x",
        "provider": "offline",
    }
    frame = StreamFrame(session_id="s", plugin="p", topic="t", payload={"a": 1}, renderer=None)
    assert list(frame.to_json()) == ["type", "session_id", "plugin", "topic", "payload", "renderer"]
    assert frame.to_stored() == {"plugin": "p", "topic": "t", "payload": {"a": 1}, "renderer": None}
    progress = Progress(session_id="s", call_id="c", tool="t", plugin="p", fraction=None)
    assert from_json(progress.to_json()) == progress


def test_keys_this_version_does_not_know_are_kept() -> None:
    event = {"type": "error", "session_id": "s", "message": "m", "hint": {"fix": "grant"}}
    assert orjson.dumps(from_json(event).to_json()) == orjson.dumps(event)


@pytest.mark.parametrize(
    ("event", "why"),
    [
        ({"type": "telepathy"}, "unknown event type 'telepathy'"),
        ({"text": "no type"}, "unknown event type None"),
        ({"type": "reply", "text": 5}, "'reply' event: 'text' must be a string, not a number"),
        ({"type": "reply", "text": None}, "'reply' event: 'text' must not be null"),
        ({"type": "tool_result", "ok": "yes"}, "'ok' must be a boolean, not a string"),
        ({"type": "progress", "fraction": True}, "'fraction' must be a number, not a boolean"),
        ({"type": "error", "line": 1.5}, "'line' must be a whole number, not a fraction"),
    ],
)
def test_a_malformed_event_is_refused_with_what_is_wrong(
    event: dict[str, object], why: str
) -> None:
    with pytest.raises(EventFormatError) as caught:
        from_json(event)
    assert why in str(caught.value)
