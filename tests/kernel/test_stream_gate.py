"""The kernel's check of each stream frame (kernel/streams.py): what passes, what is dropped,
and how a refusal is told — once, not once per frame."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from deeting_tui.command_output import with_cli_hint
from deeting_tui.kernel.streams import StreamGate
from deeting_tui.rpc.limits import MAX_STREAM_FRAME_BYTES


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def told() -> list[tuple[str, str]]:
    return []


def _telling(told: list[tuple[str, str]]):  # type: ignore[no-untyped-def]
    """The gate's notice as the CLI says it: the hint (data) phrased as the command to run."""
    return lambda plugin, message, hint: told.append((plugin, with_cli_hint(message, hint)))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def gate(tmp_path: Path, told: list[tuple[str, str]], clock: Clock) -> StreamGate:
    return StreamGate(
        notice=_telling(told),
        log_path=lambda plugin: tmp_path / "logs" / f"{plugin}.log",
        window=60.0,
        clock=clock,
    )


def _log(tmp_path: Path, plugin: str = "p") -> list[str]:
    path = tmp_path / "logs" / f"{plugin}.log"
    return path.read_text().splitlines() if path.exists() else []


def _payload_of(size: int) -> dict[str, str]:
    """A payload of exactly ``size`` bytes of JSON."""
    return {"pad": "x" * (size - len('{"pad":""}'))}


def test_a_good_frame_becomes_the_event_and_its_json(gate: StreamGate) -> None:
    frame = gate.admit("p", {"topic": "p.live", "payload": {"v": [1, 2.5]}}, "chart")
    assert frame is not None
    assert frame.event == {"plugin": "p", "topic": "p.live", "payload": {"v": [1, 2.5]},
                           "renderer": "chart"}  # fmt: skip
    assert orjson.loads(frame.encoded) == frame.event and frame.size == len(frame.encoded)
    own = gate.admit("p", {"topic": "p.live", "payload": {}, "renderer": "notice"}, "chart")
    assert own is not None and own.event["renderer"] == "notice"


def test_the_limit_is_on_the_payload_as_the_sdk_measures_it(
    gate: StreamGate, told: list[tuple[str, str]]
) -> None:
    topic = "t" * 128  # the largest envelope does not count against the payload
    at = gate.admit("p", {"topic": topic, "payload": _payload_of(MAX_STREAM_FRAME_BYTES)}, None)
    assert at is not None and told == []
    over = _payload_of(MAX_STREAM_FRAME_BYTES + 1)
    assert gate.admit("p", {"topic": "t", "payload": over}, None) is None
    assert len(told) == 1
    assert f"its payload is {MAX_STREAM_FRAME_BYTES + 1:,} bytes of JSON" in told[0][1]
    assert "over the 256 KiB limit for one stream frame" in told[0][1]


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"topic": "t", "payload": [1]}, "payload must be a JSON object, not an array"),
        ({"topic": "t", "payload": 3}, "payload must be a JSON object, not a number"),
        ({"topic": "t"}, "payload must be a JSON object, not null"),
        ({"topic": "", "payload": {}}, "topic must be 1 to 128 letters"),
        ({"topic": "t" * 129, "payload": {}}, "topic must be 1 to 128 letters"),
        ({"topic": "a b", "payload": {}}, "not 'a b'"),
        ({"topic": ["t"], "payload": {}}, "not ['t']"),
        ({"topic": "t", "payload": {}, "renderer": 5}, "renderer is not a renderer's name: 5"),
        ({"topic": "t", "payload": {}, "renderer": "A"}, "renderer is not a renderer's name"),
    ],
)
def test_a_malformed_frame_is_dropped_and_said_once(
    gate: StreamGate, told: list[tuple[str, str]], tmp_path: Path, params: dict, says: str
) -> None:
    for _ in range(100):
        assert gate.admit("p", params, None) is None
    assert len(told) == 1 and told[0][0] == "p" and says in told[0][1], told
    assert "deeting plugin disable p" in told[0][1]
    lines = _log(tmp_path)
    assert len(lines) == 1 and says in lines[0] and "WARNING deeting.kernel:" in lines[0]


def test_a_payload_nested_too_deep_is_dropped(gate: StreamGate, told: list) -> None:
    deep: dict = {}
    inner = deep
    for _ in range(300):  # what a hostile worker can send: orjson reads up to 1024 levels
        inner["a"] = {}
        inner = inner["a"]
    assert gate.admit("p", {"topic": "t", "payload": deep}, None) is None
    assert "nested more than 252 levels deep" in told[0][1]


def test_terminal_escapes_in_a_bad_topic_never_reach_the_message(
    gate: StreamGate, told: list
) -> None:
    gate.admit("p", {"topic": "\x1b[2J\x1b]0;owned\x07" + "x" * 500, "payload": {}}, None)
    message = told[0][1]
    assert "\x1b" not in message and "\x07" not in message and len(message) < 400


def test_refusals_are_counted_per_window_and_the_count_is_logged(
    gate: StreamGate, told: list, clock: Clock, tmp_path: Path
) -> None:
    big = {"topic": "t", "payload": _payload_of(MAX_STREAM_FRAME_BYTES + 10)}
    for _ in range(1000):
        gate.admit("p", big, None)
    gate.admit("p", {"topic": "t", "payload": [1]}, None)  # another reason: told on its own
    gate.admit("q", big, None)  # another plugin: told on its own
    assert [(plugin, "256 KiB" in m) for plugin, m in told] == [
        ("p", True), ("p", False), ("q", True)
    ]  # fmt: skip
    clock.now += 61  # the window is over: the next refusal is told again, with the count
    gate.admit("p", big, None)
    assert len(told) == 4
    lines = _log(tmp_path)
    assert len(lines) == 4, lines  # told, other reason, count of the 999, told again
    assert "999 more stream frame(s) dropped in 60 s" in lines[2]
    gate.close()  # nothing more was dropped since: nothing more to say
    assert len(_log(tmp_path)) == 4


async def test_with_a_loop_the_count_is_logged_when_the_window_ends(
    tmp_path: Path, told: list
) -> None:
    import asyncio

    gate = StreamGate(notice=_telling(told),
                      log_path=lambda p: tmp_path / f"{p}.log", window=0.05)  # fmt: skip
    for _ in range(10):
        gate.admit("p", {"topic": "t", "payload": None}, None)
    ended = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_later(0.06, ended.set_result, None)
    await ended
    lines = (tmp_path / "p.log").read_text().splitlines()
    assert len(told) == 1 and len(lines) == 2 and "9 more stream frame(s)" in lines[1]


def test_an_unwritable_log_does_not_stop_the_gate(tmp_path: Path, told: list) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    gate = StreamGate(notice=_telling(told),
                      log_path=lambda p: blocker / f"{p}.log")  # fmt: skip
    assert gate.admit("p", {"topic": "t", "payload": None}, None) is None
    assert len(told) == 1
