"""The board: kernel events in, CARDs and ops out, and no plugin data that can break it."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from deeting_tui.kernel.events import (
    ErrorEvent,
    Progress,
    Reply,
    StreamFrame,
    ToolCall,
    ToolResult,
    UserMessage,
)
from deeting_tui.web.cards import MAX_CARDS, MAX_PAYLOAD_BYTES, UNREADABLE_KEY, Board, card_id


def _result(call_id: str = "c1", **fields: Any) -> ToolResult:
    values: dict[str, Any] = {
        "session_id": "s",
        "call_id": call_id,
        "tool": "disk",
        "plugin": "sys",
        "ok": True,
        "data": {"text": "hi"},
        "renderer": "text",
        "text": "hi",
    }
    values.update(fields)
    return ToolResult(**values)


def _frame(n: int, topic: str = "cpu", **fields: Any) -> StreamFrame:
    values: dict[str, Any] = {
        "session_id": "s",
        "plugin": "sys",
        "topic": topic,
        "payload": {"text": f"frame {n}"},
        "renderer": "text",
    }
    values.update(fields)
    return StreamFrame(**values)


def _only_card(ops: list[dict[str, Any]]) -> dict[str, Any]:
    assert [op["op"] for op in ops] == ["card"]
    return dict(ops[0]["card"])


def test_card_ids() -> None:
    assert card_id(_result("abc")) == "abc"
    assert card_id(ToolCall(session_id="s", call_id="abc", tool="t")) == "abc"
    assert card_id(Progress(session_id="s", call_id="abc", tool="t")) == "abc"
    assert card_id(_frame(1, topic="load")) == "stream:sys:load"
    assert card_id(Reply(session_id="s", text="x")) is None
    assert card_id(UserMessage(session_id="s", text="x")) is None
    assert card_id(ErrorEvent(session_id="s", message="x")) is None


def test_a_result_is_a_card_with_an_mcp_result() -> None:
    card = _only_card(Board().apply(_result(), ts=12.5))
    assert card == {
        "id": "c1",
        "kind": "result",
        "renderer": "text",
        "title": "disk",
        "plugin": "sys",
        "tool": "disk",
        "ts": 12.5,
        "input": None,
        "result": {
            "content": [{"type": "text", "text": "hi"}],
            "structuredContent": {"text": "hi"},
            "isError": False,
            "_meta": {
                "deeting/card": "c1",
                "deeting/renderer": "text",
                "deeting/frame": 1,
                "deeting/wrapped": False,
            },
        },
        "frames": 1,
    }


def test_a_call_is_running_until_its_result_replaces_it() -> None:
    board = Board()
    call = ToolCall(session_id="s", call_id="c1", tool="disk", plugin="sys", args={"path": "/"})
    running = _only_card(board.apply(call))
    assert running["result"] is None
    assert running["input"] == {"arguments": {"path": "/"}}
    done = _only_card(board.apply(_result()))
    assert done["id"] == "c1" and done["renderer"] == "text"
    assert done["input"] == {"arguments": {"path": "/"}}
    assert list(board.cards) == ["c1"]


def test_progress_updates_the_running_card_and_a_late_note_changes_nothing() -> None:
    board = Board()
    board.apply(ToolCall(session_id="s", call_id="c1", tool="disk"))
    ops = board.apply(Progress(session_id="s", call_id="c1", tool="disk", fraction=0.5))
    assert ops[0]["op"] == "card"  # the first drawable result: the face is loaded now
    assert ops[0]["card"]["result"]["structuredContent"] == {"fraction": 0.5, "message": ""}
    ops = board.apply(Progress(session_id="s", call_id="c1", tool="disk", fraction=0.75))
    assert [op["op"] for op in ops] == ["result"]
    board.apply(_result())
    assert board.apply(Progress(session_id="s", call_id="c1", tool="disk", fraction=0.9)) == []


def test_a_payload_that_is_not_an_object_is_wrapped() -> None:
    card = _only_card(Board().apply(_result(data="plain words")))
    assert card["result"]["structuredContent"] == {"value": "plain words"}
    assert card["result"]["_meta"]["deeting/wrapped"] is True


@pytest.mark.parametrize(
    ("renderer", "data", "words"),
    [
        ("text", {"nottext": 1}, "'text' is a required property"),
        ("progress", {"fraction": 7}, "7 is greater than the maximum of 1"),
        ("error", {"message": ""}, "should be non-empty"),
    ],
)
def test_data_that_does_not_fit_its_schema_is_an_error_card(
    renderer: str, data: Any, words: str
) -> None:
    card = _only_card(Board().apply(_result(renderer=renderer, data=data)))
    assert card["renderer"] == "error"
    assert card["result"]["isError"] is True
    payload = card["result"]["structuredContent"]
    assert f"does not fit the '{renderer}' renderer" in payload["message"]
    assert words in payload["message"]


def test_a_huge_payload_is_an_error_card_not_megabytes_on_the_wire() -> None:
    card = _only_card(Board().apply(_result(data={"text": "x" * (MAX_PAYLOAD_BYTES + 10)})))
    assert card["renderer"] == "error"
    assert "MiB, more than the 4 MiB a card shows" in card["result"]["structuredContent"]["message"]
    assert len(orjson.dumps(card)) < 10_000


def test_data_that_is_not_json_is_an_error_card() -> None:
    card = _only_card(Board().apply(_result(renderer="notice", data={"text": "x", "f": {1, 2}})))
    assert card["renderer"] == "error"
    assert "not JSON" in card["result"]["structuredContent"]["title"]


def test_a_failed_call_is_an_error_card() -> None:
    failed = _result(ok=False, data=None, error="permission 'network' not granted")
    card = _only_card(Board().apply(failed))
    assert card["renderer"] == "error"
    assert card["result"]["isError"] is True
    assert card["result"]["structuredContent"] == {
        "title": "disk failed",
        "message": "permission 'network' not granted",
    }


def test_a_renderer_error_the_kernel_found_is_an_error_card() -> None:
    bad = _result(renderer_error="data does not fit the 'table' renderer: rows: required")
    card = _only_card(Board().apply(bad))
    assert card["renderer"] == "error"
    assert "rows: required" in card["result"]["structuredContent"]["message"]


def test_a_cancelled_call_is_marked_and_announced() -> None:
    board = Board()
    board.apply(ToolCall(session_id="s", call_id="c1", tool="disk"))
    ops = board.apply(_result(ok=False, cancelled=True, data=None, error="cancelled by the user"))
    assert ops == [{"op": "cancelled", "id": "c1", "reason": "cancelled by the user"}]
    assert board.reset()["cards"][0]["cancelled"] == "cancelled by the user"


def test_text_without_data_is_a_text_card() -> None:
    card = _only_card(Board().apply(_result(data=None, renderer=None, text="just words")))
    assert card["renderer"] == "text"
    assert card["result"]["structuredContent"] == {"text": "just words"}


def test_data_without_a_known_renderer_gets_the_fallback_face() -> None:
    for renderer in (None, "nosuchrenderer", "../../etc"):
        card = _only_card(Board().apply(_result(renderer=renderer, data={"a": [1, 2]})))
        assert card["renderer"] == "_fallback"
        assert card["result"]["structuredContent"] == {"a": [1, 2]}


def test_a_stream_is_one_card_and_its_frames_are_results() -> None:
    board = Board()
    first = board.apply(_frame(1))
    assert first[0]["op"] == "card"
    assert first[0]["card"]["kind"] == "stream"
    assert first[0]["card"]["id"] == "stream:sys:cpu"
    ops = [op for n in range(2, 6) for op in board.apply(_frame(n))]
    assert [op["op"] for op in ops] == ["result"] * 4
    assert [op["result"]["_meta"]["deeting/frame"] for op in ops] == [2, 3, 4, 5]
    assert ops[-1]["result"]["_meta"]["deeting/stream"] == {"topic": "cpu"}
    assert board.cards["stream:sys:cpu"]["frames"] == 5
    # A bad frame swaps the card to an error card; the next good one swaps it back.
    bad = board.apply(_frame(6, payload={"nottext": 1}))
    assert bad[0]["op"] == "card" and bad[0]["card"]["renderer"] == "error"
    good = board.apply(_frame(7))
    assert good[0]["op"] == "card" and good[0]["card"]["renderer"] == "text"
    assert len(board.cards) == 1


def test_the_board_keeps_the_newest_cards_and_counts_the_rest() -> None:
    board = Board()
    for n in range(MAX_CARDS + 25):
        board.apply(_result(f"c{n}"))
    reset = board.reset()
    assert reset["older"] == 25
    assert len(reset["cards"]) == MAX_CARDS
    assert reset["cards"][0]["id"] == "c25"  # oldest first
    assert reset["cards"][-1]["id"] == f"c{MAX_CARDS + 24}"


def test_load_replaces_the_board() -> None:
    board = Board()
    board.apply(_result("old"))
    board.load("s2", "Second", [_result("new"), Reply(session_id="s2", text="ignored")])
    reset = board.reset()
    assert reset["session"] == {"id": "s2", "title": "Second"}
    assert [card["id"] for card in reset["cards"]] == ["new"]


def test_an_unreadable_stored_event_is_an_error_card() -> None:
    event = ErrorEvent(
        session_id="s", message="event 7 could not be read", extra={UNREADABLE_KEY: 7}
    )
    card = _only_card(Board().apply(event))
    assert card["id"] == "unreadable:7"
    assert card["renderer"] == "error"
    assert card["result"]["structuredContent"]["message"] == "event 7 could not be read"


def test_every_example_payload_fits_its_own_renderer() -> None:
    from deeting_tui.resources import core_renderers_dir

    for example in sorted(core_renderers_dir().glob("*/example.json")):
        name = example.parent.name
        data = orjson.loads(example.read_bytes())
        card = _only_card(Board().apply(_result(renderer=name, data=data)))
        assert card["renderer"] == name, card["result"]["structuredContent"]
