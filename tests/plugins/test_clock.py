"""The clock plugin: now, strict durations, persistent timers, ticks that ring them once."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from deeting_tui.sandbox.plugin_import import import_plugin_module
from deeting_tui.sdk import normalize_result

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"
NOV_25_2026_140312_UTC = 1795615392.0


@pytest.fixture
def clock(load_plugin: Any) -> ModuleType:
    module: ModuleType = load_plugin("clock")
    return module


@pytest.fixture
def handler(clock: ModuleType) -> ModuleType:
    return import_plugin_module(PLUGINS / "clock" / "src", "handler")


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def call(module: ModuleType, ctx: Any, tool: str, **args: Any) -> dict[str, Any]:
    return normalize_result(module.invoke(ctx, tool, args))


def tick(module: ModuleType, ctx: Any, ts: float) -> Any:
    return module.on_event(ctx, "system.tick", {"ts": ts})


# -- now ---------------------------------------------------------------------------------------


def test_now(clock: ModuleType, make_ctx: Any) -> None:
    before = time.time()
    out = call(clock, make_ctx("clock"), "now")
    assert out["renderer"] == "key-value"
    data = out["data"]
    assert set(data) == {"iso", "epoch", "timezone"}
    assert before - 1 <= data["epoch"] <= time.time() + 1
    assert abs(datetime.fromisoformat(data["iso"]).timestamp() - data["epoch"]) < 1
    assert isinstance(data["timezone"], str) and data["timezone"]
    assert re.fullmatch(
        r"It is \d\d:\d\d:\d\d \(\w{3} \d{1,2} \w{3} \d{4}, UTC[+-]\d\d:\d\d\)", out["text"]
    )


def test_now_text_is_exact_in_utc(handler: ModuleType, utc: None) -> None:
    data, text = handler.now_info(NOV_25_2026_140312_UTC)
    assert text == "It is 14:03:12 (Wed 25 Nov 2026, UTC+00:00)"
    assert data == {
        "iso": "2026-11-25T14:03:12+00:00",
        "epoch": NOV_25_2026_140312_UTC,
        "timezone": "UTC",
    }


def test_now_takes_no_arguments(clock: ModuleType, make_ctx: Any) -> None:
    with pytest.raises(ValueError, match=r"unknown argument\(s\) tz \(expected: none\)"):
        call(clock, make_ctx("clock"), "now", tz="UTC")


# -- durations ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("5m", 300),
        ("1h30m", 5400),
        ("2", 2),
        ("1", 1),
        ("1d", 86400),
        ("7d", 604800),
        ("1d2h3m4s", 93784),
        ("2H", 7200),
        ("5 minutes", 300),
        ("10min", 600),
        ("1 hour", 3600),
        ("1h 30m", 5400),
        ("45sec", 45),
    ],
)
def test_durations(handler: ModuleType, text: str, seconds: int) -> None:
    assert handler.parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0", "too short"),
        ("0s", "too short"),
        ("8d", "longer than 7 days"),
        ("604801", "longer than 7 days"),
        ("99999999999999", "longer than 7 days"),
        ("1.5h", "cannot read"),
        ("30m1h", "cannot read"),
        ("5x", "cannot read"),
        ("m", "cannot read"),
        ("1h30", "cannot read"),
        ("-5m", "cannot read"),
        ("five", "cannot read"),
        ("\uff15", "cannot read"),  # a full-width digit five
        ("", "empty"),
    ],
)
def test_bad_durations(handler: ModuleType, text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        handler.parse_duration(text)


def test_format_duration(handler: ModuleType) -> None:
    assert handler.format_duration(5400) == "1h30m"
    assert handler.format_duration(90) == "1m30s"
    assert handler.format_duration(90061) == "1d1h1m1s"
    assert handler.format_duration(0) == "0s"


@pytest.mark.parametrize(
    ("duration", "label", "expected"),
    [
        ("5", "minutes to stretch", ("5 minutes", "stretch")),
        ("1h", "30m tea", ("1h 30m", "tea")),
        ("5m", "for tea", ("5m", "tea")),
        ("5m", None, ("5m", None)),
        ("5", "10 things", ("5", "10 things")),
        ("5", "minutes", ("5 minutes", None)),
    ],
)
def test_split_label(handler: ModuleType, duration: str, label: Any, expected: Any) -> None:
    assert handler.split_label(duration, label) == expected


# -- timers ------------------------------------------------------------------------------------


def test_timer_is_set_and_persisted(clock: ModuleType, make_ctx: Any) -> None:
    ctx = make_ctx("clock")
    before = time.time()
    out = call(clock, ctx, "timer", duration="5m", label="tea")
    data = out["data"]
    assert data["id"] == 1 and data["label"] == "tea" and data["seconds"] == 300
    assert before + 300 <= data["due_epoch"] <= time.time() + 300
    assert re.fullmatch(r"Timer #1 \(tea\) set for 5m \(due \d\d:\d\d:\d\d\)", out["text"])
    stored = json.loads((ctx.data_dir / "timers.json").read_text())
    assert stored["timers"] == [data]
    assert sorted(p.name for p in ctx.data_dir.iterdir()) == ["timers.json"]
    second = call(clock, ctx, "timer", duration="90s")
    assert second["data"]["id"] == 2 and second["data"]["label"] is None
    assert second["text"].startswith("Timer #2 set for 1m30s (due ")


def test_timer_arguments_from_the_trigger(clock: ModuleType, make_ctx: Any) -> None:
    spec = json.loads((PLUGINS / "clock" / "kimai.json").read_text())["trigger"]
    match = re.match(spec["regex"], "remind me in 5 minutes to stretch")
    assert match is not None
    out = call(clock, make_ctx("clock"), spec["tool"], **match.groupdict())
    assert out["data"]["seconds"] == 300 and out["data"]["label"] == "stretch"
    match = re.match(spec["regex"], "timer 90s")
    assert match is not None and match.groupdict() == {"duration": "90s", "label": None}
    assert call(clock, make_ctx("clock"), "timer", **match.groupdict())["data"]["seconds"] == 90


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({}, "missing argument"),
        ({"duration": 5}, "duration must be a string, not int"),
        ({"duration": "5m", "label": 3}, "label must be a string"),
        ({"duration": "5m", "label": "x" * 201}, "label is too long"),
        ({"duration": "5m", "when": "now"}, "unknown argument(s) when"),
        ({"duration": "soon"}, "cannot read duration 'soon'"),
        ({"duration": "30d"}, "longer than 7 days"),
    ],
)
def test_timer_validation(
    clock: ModuleType, make_ctx: Any, args: dict[str, Any], message: str
) -> None:
    ctx = make_ctx("clock")
    with pytest.raises(ValueError, match=re.escape(message)):
        clock.invoke(ctx, "timer", args)
    assert not (ctx.data_dir / "timers.json").exists()


def test_timers_table(clock: ModuleType, make_ctx: Any) -> None:
    ctx = make_ctx("clock")
    empty = call(clock, ctx, "timers")
    assert empty["text"] == "No timers pending."
    assert empty["data"] == {"columns": ["id", "label", "due", "remaining"], "rows": []}
    call(clock, ctx, "timer", duration="1h", label="oven")
    call(clock, ctx, "timer", duration="2m")
    out = call(clock, ctx, "timers")
    assert out["renderer"] == "table"
    rows = out["data"]["rows"]
    assert [row[0] for row in rows] == [2, 1]  # soonest first
    assert rows[0][1] == "" and rows[1][1] == "oven"
    assert rows[0][3] in ("2m", "1m59s")
    lines = out["text"].splitlines()
    assert lines[0].startswith("Timer #2: due ") and lines[1].startswith("Timer #1 (oven): due ")


def test_tick_before_due_does_nothing(clock: ModuleType, make_ctx: Any, channel: Any) -> None:
    ctx = make_ctx("clock")
    clock.activate(ctx)
    due = call(clock, ctx, "timer", duration="5m", label="tea")["data"]["due_epoch"]
    assert tick(clock, ctx, due - 1) is False
    assert channel.streams() == []
    assert len(call(clock, ctx, "timers")["data"]["rows"]) == 1


def test_tick_after_due_rings_once(clock: ModuleType, make_ctx: Any, channel: Any) -> None:
    ctx = make_ctx("clock")
    clock.activate(ctx)
    due = call(clock, ctx, "timer", duration="5m", label="tea")["data"]["due_epoch"]
    later = call(clock, ctx, "timer", duration="1h")["data"]["due_epoch"]
    assert tick(clock, ctx, due + 0.5) is False
    assert channel.streams() == [
        {
            "topic": "clock.timer",
            "payload": {
                "id": 1,
                "label": "tea",
                "due_epoch": due,
                "fired_epoch": due + 0.5,
                "text": "⏰ Timer #1 (tea) is done",
            },
            "renderer": "notice",
        }
    ]
    tick(clock, ctx, due + 1.5)
    assert len(channel.streams()) == 1
    stored = json.loads((ctx.data_dir / "timers.json").read_text())
    assert [t["id"] for t in stored["timers"]] == [2]
    assert [row[0] for row in call(clock, ctx, "timers")["data"]["rows"]] == [2]
    tick(clock, ctx, later)
    assert [s["payload"]["text"] for s in channel.streams()][1] == "⏰ Timer #2 is done"


def test_timers_survive_a_worker_restart(load_plugin: Any, make_ctx: Any, channel: Any) -> None:
    first = load_plugin("clock")
    due = call(first, make_ctx("clock"), "timer", duration="10s", label="eggs")["data"]["due_epoch"]
    second = load_plugin("clock")  # a fresh worker: nothing in memory
    ctx = make_ctx("clock")
    second.activate(ctx)
    assert [row[0] for row in call(second, ctx, "timers")["data"]["rows"]] == [1]
    tick(second, ctx, due + 3600)
    (stream,) = channel.streams()
    assert stream["payload"]["id"] == 1
    assert stream["payload"]["text"].startswith("⏰ Timer #1 (eggs) is done (it was due ")
    third = load_plugin("clock")
    assert call(third, make_ctx("clock"), "timers")["data"]["rows"] == []
    assert call(third, make_ctx("clock"), "timer", duration="1s")["data"]["id"] == 2


def test_tick_without_ts_uses_the_clock(clock: ModuleType, make_ctx: Any, channel: Any) -> None:
    ctx = make_ctx("clock")
    call(clock, ctx, "timer", duration="1h")
    assert clock.on_event(ctx, "system.tick", {}) is False
    assert clock.on_event(ctx, "system.tick", {"ts": "soon"}) is False
    assert channel.streams() == []


def test_other_topics_are_ignored(clock: ModuleType, make_ctx: Any, channel: Any) -> None:
    ctx = make_ctx("clock")
    call(clock, ctx, "timer", duration="1s")
    assert clock.on_event(ctx, "user.message", {"ts": time.time() + 10}) is False
    assert channel.streams() == []


def test_corrupt_timers_file_on_activate(clock: ModuleType, make_ctx: Any, channel: Any) -> None:
    ctx = make_ctx("clock")
    ctx.data_dir.mkdir(parents=True)
    (ctx.data_dir / "timers.json").write_text('{"timers": "nope"}')
    clock.activate(ctx)
    aside = list(ctx.data_dir.glob("timers.json.corrupt-*"))
    assert len(aside) == 1
    (warning,) = channel.streams()
    assert warning["topic"] == "clock.warning" and str(aside[0]) in warning["payload"]["text"]
    assert call(clock, ctx, "timers")["data"]["rows"] == []


def test_corrupt_timers_file_on_a_call(clock: ModuleType, make_ctx: Any) -> None:
    ctx = make_ctx("clock")
    ctx.data_dir.mkdir(parents=True)
    (ctx.data_dir / "timers.json").write_text("{broken")
    with pytest.raises(ValueError, match="unreadable"):
        call(clock, ctx, "timer", duration="5m")
    assert call(clock, ctx, "timer", duration="5m")["data"]["id"] == 1


def test_unknown_tool(clock: ModuleType, make_ctx: Any) -> None:
    with pytest.raises(ValueError, match="no tool 'alarm'"):
        call(clock, make_ctx("clock"), "alarm")


@pytest.mark.parametrize(
    ("message", "groups"),
    [
        ("timer 5m tea", {"duration": "5m", "label": "tea"}),
        ("timer 90s", {"duration": "90s", "label": None}),
        ("remind me in 1h30m call mum", {"duration": "1h30m", "label": "call mum"}),
    ],
)
def test_trigger(message: str, groups: dict[str, Any]) -> None:
    spec = json.loads((PLUGINS / "clock" / "kimai.json").read_text())["trigger"]
    match = re.match(spec["regex"], message)
    assert match is not None and match.groupdict() == groups
    assert spec["tool"] == "timer"


@pytest.mark.parametrize("message", ["timers", "timer", "set a timer for 5m", "remind me later"])
def test_trigger_leaves_other_messages_alone(message: str) -> None:
    spec = json.loads((PLUGINS / "clock" / "kimai.json").read_text())["trigger"]
    assert re.match(spec["regex"], message) is None
