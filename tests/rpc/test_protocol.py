"""The worker protocol's messages (rpc/protocol.py): the bytes on the wire are those of the
literal dicts they replaced, each reads back what it wrote, and a malformed one from the
worker is refused with what was wrong."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from deeting_tui.rpc import protocol
from deeting_tui.rpc.errors import INVALID_PARAMS
from deeting_tui.rpc.protocol import (
    CancelParams,
    DeniedParams,
    EventParams,
    InitializeResult,
    InvokeParams,
    InvokeResult,
    OnEventResult,
    ProgressParams,
    ProtocolError,
    StreamParams,
    UpgradeState,
)


def test_the_bytes_on_the_wire_are_those_of_before() -> None:
    pairs: list[tuple[Any, dict[str, Any]]] = [
        (InvokeParams("t", {"a": 1}), {"tool": "t", "args": {"a": 1}}),
        (EventParams("system.tick", {"ts": 1.0}), {"topic": "system.tick", "payload": {"ts": 1.0}}),
        (CancelParams(7), {"id": 7}),
        (InvokeResult({"n": 1}, "x", None), {"data": {"n": 1}, "text": "x", "renderer": None}),
        (
            InitializeResult(42, ("invoke",), None),
            {"pid": 42, "hooks": ["invoke"], "sandbox": None},
        ),
        (OnEventResult(True), {"handled": True}),
        (UpgradeState({"k": 1}), {"state": {"k": 1}}),
        (StreamParams("t", {"a": 1}, None), {"topic": "t", "payload": {"a": 1}, "renderer": None}),
        (ProgressParams(3, 0.5, "half"), {"call": 3, "fraction": 0.5, "message": "half"}),
        (DeniedParams("no"), {"message": "no"}),
    ]
    for message, before in pairs:
        assert orjson.dumps(message.to_json()) == orjson.dumps(before)


def test_each_message_reads_back_what_it_wrote() -> None:
    for message in (
        InvokeParams("t", {"a": [1]}),
        EventParams("user.message", {"text": "hi"}),
        InvokeResult([1, 2], None, "table"),
        InitializeResult(1, ("activate", "invoke"), {"landlock": True}),
        OnEventResult(False),
        UpgradeState({"n": 2}),
        ProgressParams("c1", None, ""),
        DeniedParams("refused"),
    ):
        assert type(message).from_json(orjson.loads(orjson.dumps(message.to_json()))) == message


def test_method_names_are_the_protocols() -> None:
    assert protocol.CANCEL == "$/cancelRequest"
    assert protocol.HOOKS == (
        "activate",
        "deactivate",
        "postinstall",
        "preuninstall",
        "preupgrade",
        "postupgrade",
    )


@pytest.mark.parametrize(
    ("read", "value", "why"),
    [
        (InvokeResult.from_json, "text", "the invoke result must be an object, not a string"),
        (InvokeResult.from_json, {"text": 1}, "'text' must be a string or null, not a number"),
        (InvokeResult.from_json, {"x": 1, "y": 2}, "has keys it may not have: x, y"),
        (InitializeResult.from_json, {"pid": "1"}, "'pid' must be a whole number, not a string"),
        (InitializeResult.from_json, {"pid": 1, "hooks": "invoke"}, "an array of strings"),
        (InitializeResult.from_json, {"pid": 1, "sandbox": []}, "'sandbox' must be an object"),
        (ProgressParams.from_json, {"call": 1, "fraction": 2}, "must be between 0 and 1"),
        (ProgressParams.from_json, {"call": True}, "'call' must be a request id, not a boolean"),
        (ProgressParams.from_json, {"call": 1, "message": 5}, "'message' must be a string"),
        (DeniedParams.from_json, {"message": ""}, "'message' is empty"),
        (DeniedParams.from_json, [1], "a refusal report must be an object, not an array"),
        (StreamParams.check, [1], "a stream frame must be an object, not an array"),
        (InvokeParams.from_json, {"tool": 1}, "invoke needs {tool: str, args: object}"),
        (EventParams.from_json, {}, "an event needs {topic: str, payload: object}"),
    ],
)
def test_a_malformed_message_is_refused_with_what_is_wrong(read: Any, value: Any, why: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        read(value)
    assert why in caught.value.message
    assert caught.value.code == INVALID_PARAMS
