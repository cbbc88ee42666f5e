from __future__ import annotations

import orjson
import pytest

from deeting_tui.rpc import errors
from deeting_tui.rpc.errors import RpcError
from deeting_tui.rpc.framing import DEFAULT_MAX_MESSAGE_BYTES, LineBuffer, Oversized, encode

# -- encode -------------------------------------------------------------------------------


def test_encode_is_one_line() -> None:
    frame = encode({"jsonrpc": "2.0", "method": "m", "params": {"text": "a\nb\r\nc"}})
    assert frame.endswith(b"\n")
    assert frame.count(b"\n") == 1  # newlines inside strings are escaped
    assert orjson.loads(frame) == {"jsonrpc": "2.0", "method": "m", "params": {"text": "a\nb\r\nc"}}


def test_encode_rejects_non_json() -> None:
    with pytest.raises(TypeError):
        encode({"x": object()})


# -- LineBuffer ---------------------------------------------------------------------------


def test_whole_frames_in_one_chunk() -> None:
    buf = LineBuffer()
    assert buf.feed(b'{"a":1}\n{"b":2}\n') == [b'{"a":1}', b'{"b":2}']
    assert buf.feed(b"{}\n") == [b"{}"]  # nothing left over to prefix the next frame


def test_frame_split_across_chunks() -> None:
    buf = LineBuffer()
    assert buf.feed(b'{"a":') == []
    assert buf.feed(b"1}") == []
    assert buf.feed(b'\n{"b"') == [b'{"a":1}']
    assert buf.feed(b":2}\n") == [b'{"b":2}']
    assert buf.feed(b"{}\n") == [b"{}"]


def test_byte_at_a_time() -> None:
    data = encode({"x": "y" * 50}) + encode({"n": [1, 2, 3]})
    buf = LineBuffer()
    frames: list[bytes | Oversized] = []
    for i in range(len(data)):
        frames += buf.feed(data[i : i + 1])
    assert [orjson.loads(f) for f in frames if isinstance(f, bytes)] == [
        {"x": "y" * 50},
        {"n": [1, 2, 3]},
    ]


def test_blank_lines_are_skipped() -> None:
    buf = LineBuffer()
    assert buf.feed(b"\n  \n\t\r\n{}\n\n") == [b"{}"]


def test_empty_feed() -> None:
    buf = LineBuffer()
    assert buf.feed(b"") == []
    assert buf.feed(b"{}\n") == [b"{}"]


def test_limit_is_inclusive() -> None:
    buf = LineBuffer(max_bytes=10)
    assert buf.feed(b"x" * 10 + b"\n") == [b"x" * 10]
    assert buf.feed(b"x" * 11 + b"\n") == [Oversized(11)]
    # the same across chunks
    assert buf.feed(b"x" * 6) == []
    assert buf.feed(b"x" * 4 + b"\n") == [b"x" * 10]
    assert buf.feed(b"x" * 6) == []
    assert buf.feed(b"x" * 5 + b"\n") == [Oversized(11)]


def test_oversized_complete_line_is_reported_and_next_frames_survive() -> None:
    buf = LineBuffer(max_bytes=16)
    frames = buf.feed(b"{}\n" + b"z" * 100 + b'\n{"ok":1}\n')
    assert frames == [b"{}", Oversized(100), b'{"ok":1}']


def test_oversized_partial_is_discarded_and_reported_once() -> None:
    buf = LineBuffer(max_bytes=16)
    assert buf.feed(b"a" * 10) == []
    assert buf.feed(b"b" * 10) == []  # over the limit: from here on discarding
    for _ in range(100):
        assert buf.feed(b"c" * 1000) == []
    # memory stays bounded while discarding
    assert buf._pending == 0 and buf._parts == []
    assert buf.feed(b"d" * 5 + b"\n{}\n") == [Oversized(10 + 10 + 100_000 + 5), b"{}"]
    assert buf.feed(b'{"after":true}\n') == [b'{"after":true}']


def test_default_limit() -> None:
    assert LineBuffer().max_bytes == DEFAULT_MAX_MESSAGE_BYTES == 16 * 1024 * 1024


# -- errors -------------------------------------------------------------------------------


def test_error_codes_are_distinct_and_in_range() -> None:
    codes = [v for k, v in vars(errors).items() if k.isupper() and isinstance(v, int)]
    assert len(codes) == len(set(codes))
    assert errors.PARSE_ERROR == -32700 and errors.INTERNAL_ERROR == -32603
    deeting = [c for c in codes if c > -32600]
    assert all(-32099 <= c <= -32000 for c in deeting)


def test_rpc_error_to_and_from_json() -> None:
    err = RpcError(errors.PLUGIN_ERROR, "boom", {"trace": "x"})
    assert err.to_json() == {"code": -32000, "message": "boom", "data": {"trace": "x"}}
    assert RpcError(1, "m").to_json() == {"code": 1, "message": "m"}
    back = RpcError.from_json(err.to_json())
    assert (back.code, back.message, back.data) == (-32000, "boom", {"trace": "x"})
    assert str(back) == "boom"
    assert repr(back) == "RpcError(-32000, 'boom')"


@pytest.mark.parametrize(
    "raw",
    [None, "text", 5, [], {"code": "x", "message": 5}, {"code": True, "message": "m"}, {}],
)
def test_rpc_error_from_malformed_json(raw: object) -> None:
    err = RpcError.from_json(raw)
    assert isinstance(err.code, int) and not isinstance(err.code, bool)
    assert isinstance(err.message, str)
    if not isinstance(raw, dict):
        assert err.code == errors.INTERNAL_ERROR
        assert err.data == raw
    else:
        assert err.code == errors.INTERNAL_ERROR
