"""The JSON view: any value, however large, odd or hostile, becomes a readable screenful."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from deeting_tui.render import render
from deeting_tui.render.base import clip, fmt_number
from deeting_tui.render.jsonview import dumps, json_view

Draw = Callable[..., str]


def test_clip_keeps_the_shape_and_says_what_it_left_out() -> None:
    assert clip(list(range(60)))[-1] == "… 10 more items"
    assert clip({str(i): i for i in range(55)})["…"] == "5 more keys"
    assert len(clip("x" * 5_000)) == 1_000
    deep: Any = [1]
    for _ in range(20):
        deep = [deep]
    text = json.dumps(clip(deep), ensure_ascii=False)
    assert text == '[[[[[[[["[… 1 item]"]]]]]]]]'
    assert clip({"a": {"b": 1}}, depth=1) == {"a": "{… 1 key}"}


def test_clip_bounds_the_whole_payload_not_just_each_list() -> None:
    wide = [[list(range(50)) for _ in range(50)] for _ in range(50)]
    assert len(json.dumps(clip(wide))) < 10_000


def test_clip_makes_odd_python_values_json() -> None:
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    out = clip(
        {
            "nan": math.nan,
            "inf": -math.inf,
            "big": 10**5000,
            "bytes": b"abc",
            "set": {1},
            "cycle": cyclic,
            1: "int key",
            "obj": object(),
        }
    )
    json.dumps(out)  # no error
    assert out["nan"] == "NaN" and out["inf"] == "-∞" and out["big"] == "huge"
    assert out["bytes"] == "<3 bytes>" and out["set"] == [1] and out["1"] == "int key"


def test_numbers_read_well() -> None:
    assert fmt_number(0.1 + 0.2) == "0.3"
    assert fmt_number(7) == "7" and fmt_number(-2.5) == "-2.5"
    assert fmt_number(10**30) == "1.000e+30" and fmt_number(-(10**30)) == "-1.000e+30"
    assert fmt_number(math.inf) == "∞" and fmt_number(math.nan) == "NaN"


def test_dumps_packs_short_containers_and_breaks_long_ones() -> None:
    assert dumps({"a": [1, 2], "b": None}, 80) == '{"a": [1, 2], "b": null}'
    opened = dumps({"a": "x" * 30, "b": list(range(30))}, 40)
    lines = opened.splitlines()
    assert lines[0] == "{" and lines[-1] == "}"
    assert lines[1] == '  "a": "' + "x" * 30 + '",'
    assert all(len(line) <= 40 for line in lines[2:-1])
    assert json.loads(opened) == {"a": "x" * 30, "b": list(range(30))}


def test_json_view_is_valid_json_text(draw: Draw) -> None:
    data = {"users": [{"name": f"user{i}", "tags": ["a", "b"], "n": i} for i in range(8)]}
    text = draw(json_view(data, 60), width=60)
    assert json.loads(text) == data


def test_huge_payload_draws_a_screenful(draw: Draw) -> None:
    blob = "z" * 10_000
    data = {"rows": [{"id": i, "blob": blob} for i in range(100_000)]}
    text = draw(render("no-such-renderer", data))
    assert len(text.splitlines()) < 1_000 and "99950 more items" in text
