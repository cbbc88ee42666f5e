"""The SDK refuses, in the plugin, a stream frame the kernel would drop (rpc/limits.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from deeting_tui.rpc.limits import MAX_STREAM_FRAME_BYTES, encode_payload
from deeting_tui.sdk import Context


class Channel:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def notify(self, method: str, params: dict[str, Any]) -> None:
        self.sent.append((method, params))


@pytest.fixture
def channel() -> Channel:
    return Channel()


@pytest.fixture
def ctx(tmp_path: Path, channel: Channel) -> Context:
    return Context(name="p", version="1.0.0", data_dir=tmp_path, cache_dir=tmp_path,
                   channel=channel)  # fmt: skip


def _payload_of(size: int) -> dict[str, str]:
    return {"pad": "x" * (size - len('{"pad":""}'))}


def test_a_good_frame_is_sent_as_given(ctx: Context, channel: Channel) -> None:
    ctx.push_stream("p.live", {"v": [1, None, 2.5], "ok": None}, renderer="chart")
    ctx.push_stream("p.live", _payload_of(MAX_STREAM_FRAME_BYTES))  # exactly at the limit
    assert channel.sent[0] == (
        "stream",
        {"topic": "p.live", "payload": {"v": [1, None, 2.5], "ok": None}, "renderer": "chart"},
    )
    assert len(channel.sent) == 2


@pytest.mark.parametrize(
    ("topic", "payload", "renderer", "error", "says"),
    [
        ("t", _payload_of(MAX_STREAM_FRAME_BYTES + 1), None, ValueError,
         f"{MAX_STREAM_FRAME_BYTES + 1:,} bytes of JSON, over the 256 KiB limit"),
        ("t", {"v": float("nan")}, None, ValueError, "payload['v'] is not a finite number"),
        ("t", {"v": [0, {"w": float("inf")}]}, None, ValueError, "payload['v'][1]['w']"),
        ("t", {"v": {1, 2}}, None, ValueError, "the payload is not JSON"),
        ("t", {1: "x"}, None, ValueError, "the payload is not JSON"),
        ("t", [1, 2], None, TypeError, "payload must be a dict, not list"),
        ("", {}, None, ValueError, "topic must be 1 to 128 letters"),
        ("a/b", {}, None, ValueError, "not 'a/b'"),
        ("t" * 129, {}, None, ValueError, "topic must be 1 to 128"),
        ("t", {}, "Chart", ValueError, "renderer must be a renderer's name"),
    ],
)  # fmt: skip
def test_a_bad_frame_raises_a_clear_error_and_sends_nothing(
    ctx: Context,
    channel: Channel,
    topic: str,
    payload: Any,
    renderer: str | None,
    error: type[Exception],
    says: str,
) -> None:
    with pytest.raises(error, match=r"^push_stream: ") as raised:
        ctx.push_stream(topic, payload, renderer=renderer)
    assert says in str(raised.value)
    assert channel.sent == []


def test_a_payload_deeper_than_the_pipe_carries_is_refused(ctx: Context, channel: Channel) -> None:
    def nested(depth: int) -> dict[str, Any]:
        value: dict[str, Any] = {}
        for _ in range(depth - 1):
            value = {"a": value}
        return value

    ctx.push_stream("t", nested(252))
    with pytest.raises(ValueError, match="nested more than 252 levels deep"):
        ctx.push_stream("t", nested(253))
    assert len(channel.sent) == 1


def test_what_the_sdk_measures_is_the_payloads_json() -> None:
    assert encode_payload({"a": [1, "é"]}) == '{"a":[1,"é"]}'.encode()
