"""The chart face in real Chromium: every kind draws a canvas in the theme's colours, a stream
frame that extends the last one is appended (not redrawn), gaps stay gaps, plugin strings stay
text, and a wrong shape is an escaped failure the next good frame recovers from."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from web.faces_support import FacePage

CANDLES = [
    {"open": 10, "high": 14, "low": 8, "close": 12},
    {"open": 12, "high": 13, "low": 7, "close": 8},
    None,
    {"open": 8, "high": 15, "low": 8, "close": 14},
]

#: The theme colours each kind must show (the first series', or the up-candle's).
SERIES_1 = {"light": "#2962ff", "dark": "#5b8cff"}
GOOD = {"light": "#1a7f37", "dark": "#3fb950"}
BG = {"light": "#ffffff", "dark": "#0d1117"}

# A canvas's pixels, read from a copy made for reading: reading the chart's own canvases again
# and again makes Chromium warn (willReadFrequently) on the page the test checks is clean.
READ_BACK = """const readBack = (canvas) => {
    const copy = document.createElement('canvas');
    copy.width = canvas.width;
    copy.height = canvas.height;
    const ctx = copy.getContext('2d', { willReadFrequently: true });
    ctx.drawImage(canvas, 0, 0);
    return ctx.getImageData(0, 0, copy.width, copy.height);
  };"""

# Counts the pixels of the plot's pane canvas: those unlike the background, and those near a
# given colour (antialiasing blurs edges, so "near" is within a few steps per channel).
PIXELS = """([colour]) => {
  ${READ_BACK}
  const canvases = [...document.querySelectorAll('.chart-plot canvas')];
  const pane = canvases.reduce((a, b) => (b.width * b.height > a.width * a.height ? b : a));
  const { data, width, height } = readBack(pane);
  const hex = (h) => [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16));
  const want = hex(colour);
  const counts = new Map();
  for (let i = 0; i < data.length; i += 4 * 97) {
    const key = (data[i] << 16) | (data[i + 1] << 8) | data[i + 2];
    counts.set(key, (counts.get(key) || 0) + 1);
  }
  const top = [...counts].reduce((a, b) => (b[1] > a[1] ? b : a))[0];
  const bg = [top >> 16, (top >> 8) & 255, top & 255];  // the commonest colour
  let other = 0, near = 0;
  const columns = new Set();
  for (let i = 0; i < data.length; i += 4) {
    const px = [data[i], data[i + 1], data[i + 2]];
    if (px.some((v, k) => Math.abs(v - bg[k]) > 8)) other++;
    if (px.every((v, k) => Math.abs(v - want[k]) <= 24)) { near++; columns.add((i / 4) % width); }
  }
  return { other, near, width, height, bg, columns: [...columns].sort((a, b) => a - b) };
}""".replace("${READ_BACK}", READ_BACK)


@pytest.fixture
def face(open_face: Callable[..., FacePage]) -> Iterator[Any]:
    """The chart face's page; nothing may go wrong on it (asserted when the test ends)."""
    opened = open_face("chart", height=600)
    yield opened.page
    opened.assert_clean()


def draw(page: Any, payload: Any, theme: str = "light") -> None:
    before = int(page.evaluate("document.body.dataset.updates"))
    page.evaluate("([p, t]) => DeetingFace.drawForTest(p, t)", [payload, theme])
    assert page.evaluate("document.body.dataset.updates") == str(before + 1)
    # Lightweight Charts paints on the next animation frame; two frames make sure it has.
    page.evaluate("() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")


def pixels(page: Any, colour: str) -> dict[str, Any]:
    return page.evaluate(PIXELS, [colour])


def appended(page: Any) -> int:
    return int(page.evaluate("document.body.dataset.appended || '0'"))


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("kind", ["line", "area", "bar", "histogram", "candlestick", "sparkline"])
def test_every_kind_draws_in_the_theme_colours(face: Any, kind: str, theme: str) -> None:
    values: list[Any] = CANDLES if kind == "candlestick" else [3, 7, None, 5, 9, 4]
    payload = {
        "kind": kind,
        "title": "Load",
        "unit": "ms",
        "labels": ["a", "b", "c", "d", "e", "f"],
        "series": [{"name": "first", "values": values}, {"name": "second", "values": values[::-1]}],
    }
    draw(face, payload, theme)
    found = pixels(face, (GOOD if kind == "candlestick" else SERIES_1)[theme])
    assert found["near"] > 20, found  # the first series (or the rising candles) is drawn
    assert found["other"] > 200, found
    assert found["bg"] == [int(BG[theme][i : i + 2], 16) for i in (1, 3, 5)]
    legend = face.locator(".chart-legend li").all_text_contents()
    assert legend == ["first", "second"]
    assert face.locator(".chart-head").text_content() == "Load(ms)"
    assert face.locator(".face-failure").count() == 0
    if kind == "sparkline":
        assert face.locator(".chart-plot").bounding_box()["height"] < 100


def test_theme_change_recolours_the_drawn_chart(face: Any) -> None:
    payload = {"series": [{"name": "x", "values": [1, 5, 2, 8]}]}
    draw(face, payload, "light")
    assert pixels(face, SERIES_1["light"])["near"] > 20
    draw(face, payload, "dark")  # the same frame again: only the theme changed
    dark = pixels(face, SERIES_1["dark"])
    assert dark["near"] > 20 and dark["bg"] == [0x0D, 0x11, 0x17]
    assert pixels(face, SERIES_1["light"])["near"] == 0


def test_an_extending_frame_is_appended_and_anything_else_redrawn(face: Any) -> None:
    first = {"labels": ["a", "b"], "series": [{"name": "x", "values": [1, 2]}]}
    draw(face, first)
    assert appended(face) == 0
    more = {"labels": ["a", "b", "c"], "series": [{"name": "x", "values": [1, 2, 9]}]}
    draw(face, more)
    assert appended(face) == 1
    draw(
        face, {"series": [{"name": "x", "values": [1, 2, 9, 4, None, 6]}], "labels": more["labels"]}
    )
    assert appended(face) == 2
    changed = {"series": [{"name": "x", "values": [5, 2, 9, 4, None, 6, 7]}], "labels": ["a"]}
    draw(face, changed)  # an old point changed: drawn in full
    assert appended(face) == 2
    renamed = {"series": [{"name": "y", "values": [5, 2, 9, 4, None, 6, 7, 8]}]}
    draw(face, renamed)
    assert appended(face) == 2
    assert face.locator(".chart-legend li").all_text_contents() == ["y"]
    draw(face, {"kind": "area", **renamed})  # another kind: drawn in full
    assert appended(face) == 2
    base = {"kind": "candlestick", "series": [{"name": "c", "values": CANDLES[:2]}]}
    draw(face, base)
    draw(face, {"kind": "candlestick", "series": [{"name": "c", "values": CANDLES}]})
    assert appended(face) == 3
    assert pixels(face, GOOD["light"])["near"] > 20


def test_times_make_a_time_axis_and_extend_it(face: Any) -> None:
    day = 86_400
    start = 1_764_979_200
    payload = {"times": [start, start + day], "series": [{"name": "t", "values": [1, 2]}]}
    draw(face, payload)
    draw(
        face,
        {
            "times": [start, start + day, start + 2 * day],
            "series": [{"name": "t", "values": [1, 2, 3]}],
        },
    )
    assert appended(face) == 1
    backwards = {
        "times": [start, start + day, start + 2 * day, start],
        "series": [{"name": "t", "values": [1, 2, 3, 4]}],
    }
    draw(face, backwards)  # no longer ascending: drawn in full, on an index axis
    assert appended(face) == 1
    iso = {
        "times": ["2026-12-07", "2026-12-08T10:00:00", "2026-12-09T10:00:00+01:00"],
        "series": [{"values": [1, 2, 3]}],
    }
    draw(face, iso)
    assert pixels(face, SERIES_1["light"])["near"] > 20


def test_nulls_are_gaps(face: Any) -> None:
    values = [5.0] * 10 + [None] * 20 + [5.0] * 10
    draw(face, {"series": [{"name": "g", "values": values}]})
    found = pixels(face, SERIES_1["light"])
    columns = found["columns"]
    assert columns, found
    # the line has a hole around the middle point: no column there has the series' colour
    middle = (columns[0] + columns[-1]) // 2
    assert not any(abs(column - middle) < 20 for column in columns)


def test_plugin_strings_stay_text(face: Any) -> None:
    hostile = '<img src=x onerror="document.title=1">\u202eevil\u0007'
    payload = {
        "title": hostile,
        "unit": hostile,
        "labels": [hostile],
        "series": [{"name": hostile, "values": [1]}],
    }
    draw(face, payload)
    assert face.locator("img").count() == 0
    assert (
        face.locator(".chart-title").text_content()
        == '<img src=x onerror="document.title=1">\ufffdevil\ufffd'
    )
    assert face.locator(".chart-legend li").all_text_contents()[0].startswith("<img src=x")
    assert "\u202e" not in face.evaluate("document.body.textContent")
    assert face.title() == "chart"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (
            {"kind": "candlestick", "series": [{"values": [3]}]},
            "series/0/values/0: expected {open, high, low, close} or null, not a number",
        ),
        (
            {"kind": "candlestick", "series": [{"values": [{"open": 1}]}]},
            "series/0/values/0/high: expected a number, not undefined",
        ),
        (
            {"series": [{"values": [1, "2"]}]},
            "series/0/values/1: expected a number or null, not a string",
        ),
        (
            {"kind": "<img src=x onerror=alert(1)>", "series": []},
            'not "<img src=x onerror=alert(1)>"',
        ),
        ({"series": "1,2"}, "series: expected a list, not a string"),
        ("just text", "a chart payload is an object with series, not a string"),
    ],
)
def test_wrong_shapes_fail_escaped_and_the_next_frame_recovers(
    face: Any, payload: Any, message: str
) -> None:
    draw(face, {"series": [{"name": "ok", "values": [1, 2]}]})
    draw(face, payload)
    failure = face.locator(".face-failure")
    assert message in failure.text_content()
    assert face.locator("img").count() == 0 and face.locator(".chart").count() == 0
    draw(face, {"series": [{"name": "ok", "values": [1, 2, 3]}]})
    assert face.locator(".face-failure").count() == 0
    assert pixels(face, SERIES_1["light"])["near"] > 20
    assert appended(face) == 0  # the chart was gone: drawn afresh, not appended to


def test_no_values_says_so(face: Any) -> None:
    draw(face, {"series": [{"name": "x", "values": [None, None]}]})
    assert face.locator(".chart-note").text_content() == "(no values)"
    draw(face, {"series": [{"name": "x", "values": [None, None, 3]}]})
    assert face.locator(".chart-note").is_hidden()


def test_fits_a_phone_and_draws_ten_thousand_points(open_face: Callable[..., FacePage]) -> None:
    opened = open_face("chart", width=360, height=640)
    page = opened.page
    values = [((i * 7919) % 1000) / 10 for i in range(10_000)]
    draw(page, {"title": "A long title " * 8, "series": [{"name": "n", "values": values}]})
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    box = page.locator(".chart-plot").bounding_box()
    assert 300 <= box["width"] <= 340
    assert pixels(page, SERIES_1["light"])["near"] > 100
    opened.assert_clean()


# The non-background pixels of the time axis (the widest canvas in the chart's last row).
AXIS_INK = """() => {
  ${READ_BACK}
  const row = [...document.querySelectorAll('.chart-plot table tr')].pop();
  const axis = [...row.querySelectorAll('canvas')].reduce((a, b) => (b.width > a.width ? b : a));
  const { data } = readBack(axis);
  const key = (i) => `${data[i]},${data[i + 1]},${data[i + 2]},${data[i + 3]}`;
  const counts = new Map();
  for (let i = 0; i < data.length; i += 4) counts.set(key(i), (counts.get(key(i)) || 0) + 1);
  const common = Math.max(...counts.values());
  return data.length / 4 - common;  // pixels unlike the commonest (the axis's ground)
}""".replace("${READ_BACK}", READ_BACK)


def test_the_index_axis_shows_the_labels(face: Any) -> None:
    values = [1, 3, 2, 5, 4, 6]
    draw(face, {"labels": [""] * 6, "series": [{"name": "x", "values": values}]})
    blank = face.evaluate(AXIS_INK)
    draw(face, {"labels": ["WWWW"] * 6, "series": [{"name": "x", "values": [*values, 0]}]})
    labelled = face.evaluate(AXIS_INK)
    assert labelled > blank + 100, (blank, labelled)


# How many separate runs of the first series' colour touch the top 30% of the pane: the
# peaks of a zigzag in view.
PEAKS = """([colour]) => {
  ${READ_BACK}
  const canvases = [...document.querySelectorAll('.chart-plot canvas')];
  const pane = canvases.reduce((a, b) => (b.width * b.height > a.width * a.height ? b : a));
  const { data, width, height } = readBack(pane);
  const want = [1, 3, 5].map((i) => parseInt(colour.slice(i, i + 2), 16));
  const hit = new Array(width).fill(false);
  for (let y = 0; y < Math.floor(height * 0.3); y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 4;
      if ([0, 1, 2].every((k) => Math.abs(data[i + k] - want[k]) <= 24)) hit[x] = true;
    }
  }
  let runs = 0;
  for (let x = 0; x < width; x++) if (hit[x] && (x === 0 || !hit[x - 1])) runs++;
  return runs;
}""".replace("${READ_BACK}", READ_BACK)


def test_a_stream_that_starts_small_keeps_every_point_in_view(face: Any) -> None:
    zigzag = [0 if i % 2 else 10 for i in range(41)]
    draw(face, {"series": [{"name": "z", "values": zigzag[:2]}]})
    for end in range(3, 42):
        face.evaluate(
            "(p) => DeetingFace.drawForTest(p)", {"series": [{"name": "z", "values": zigzag[:end]}]}
        )
    draw(face, {"series": [{"name": "z", "values": zigzag}]})
    assert appended(face) == 40
    assert face.evaluate(PEAKS, [SERIES_1["light"]]) >= 15  # 21 peaks, all in view


def test_a_sparkline_hides_the_axes_and_the_next_line_chart_has_them_again(face: Any) -> None:
    labels = ["WWWW"] * 4
    draw(
        face,
        {"kind": "sparkline", "labels": labels, "series": [{"name": "s", "values": [1, 3, 2, 4]}]},
    )
    axis_shown = (
        "() => getComputedStyle([...document.querySelectorAll('.chart-plot tr')].pop()).display"
    )
    assert face.evaluate(axis_shown) == "none"
    draw(face, {"labels": labels, "series": [{"name": "s", "values": [1, 3, 2, 4]}]})
    assert face.evaluate(axis_shown) != "none" and face.evaluate(AXIS_INK) > 100
    assert face.locator(".chart-plot").bounding_box()["height"] > 200


def _near_middle(page: Any) -> bool:
    found = pixels(page, SERIES_1["light"])
    columns = found["columns"]
    middle = found["width"] // 2
    return any(abs(column - middle) < 20 for column in columns)


@pytest.mark.parametrize("kind", ["line", "area", "sparkline"])
def test_a_point_between_gaps_is_drawn(face: Any, kind: str) -> None:
    # A line needs two points: an isolated value gets a dot, else it would not show at all.
    values = [None] * 20 + [5.0] + [None] * 20
    draw(face, {"kind": kind, "series": [{"name": "one", "values": values}]})
    assert pixels(face, SERIES_1["light"])["near"] > 20
    ends = [1.0] * 10 + [None] * 10 + [5.0] + [None] * 10 + [9.0] * 10
    draw(face, {"kind": kind, "series": [{"name": "one", "values": ends}]})
    assert _near_middle(face)


def test_an_isolated_point_that_arrives_in_a_stream_frame_is_drawn(face: Any) -> None:
    start = [1.0] * 10
    draw(face, {"series": [{"name": "s", "values": start}]})
    assert face.evaluate(PEAKS, [SERIES_1["light"]]) == 0  # the line is at the bottom
    draw(face, {"series": [{"name": "s", "values": [*start, *([None] * 5), 5.0]}]})
    assert appended(face) == 1
    assert face.evaluate(PEAKS, [SERIES_1["light"]]) == 1  # the lone 5 is at the top: a dot
