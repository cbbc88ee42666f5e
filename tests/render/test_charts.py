"""Scaling rules of sparklines, bars and the line canvas, and the chart face around them."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from deeting_tui.render import render
from deeting_tui.render.plot import BLOCKS, Canvas, bounds, hbar, position, resample, sparkline

Draw = Callable[..., str]


def test_sparkline_spans_lowest_to_highest_block() -> None:
    assert sparkline([0, 1, 2, 3, 4, 5, 6, 7], 80) == BLOCKS
    assert sparkline([-5, 5], 80) == "▁█"  # negatives scale like any other range
    assert sparkline([-3, -2, -1], 80) == "▁▅█"


@pytest.mark.parametrize("values", [[4, 4, 4], [0, 0], [-2.5] * 5, [7]])
def test_flat_and_single_values_sit_in_the_middle(values: list[float]) -> None:
    assert sparkline(values, 80) == "▄" * len(values)


def test_gaps_nan_and_infinity_are_spaces() -> None:
    assert sparkline([1, None, 3], 80) == "▁ █"
    assert sparkline([None, None], 80) == "  "
    assert sparkline([], 80) == ""
    # the face turns NaN and infinities into gaps before they reach the arithmetic
    assert bounds([[None, 2.0, None, -1.0]]) == (-1.0, 2.0) and bounds([[], [None]]) is None


def test_long_series_are_averaged_down_not_cut() -> None:
    assert resample([1, 3, 5, 7], 2) == [2, 6]
    assert resample([1, None, None, None], 2) == [1, None]
    assert resample(list(range(1000)), 10)[-1] == pytest.approx(949.5)
    assert len(sparkline(list(range(100_000)), 40)) == 40
    assert resample([1, 2], 0) == []


def test_extreme_ranges_stay_finite() -> None:
    assert position(1e308, -1e308, 1e308) == pytest.approx(1.0)
    assert position(0.0, -1e308, 1e308) == pytest.approx(0.5)
    assert sparkline([-1e308, 0, 1e308], 10) == "▁▅█"
    assert resample([1e308, 1e308], 1) == [1e308]


def test_bars_grow_from_zero() -> None:
    assert hbar(10, 0, 10, 10) == "█" * 10
    assert hbar(5, 0, 10, 10) == "█████     "
    assert hbar(0.5, 0, 10, 10) == "▌         "  # eighths of a cell
    assert hbar(0.001, 0, 10, 10) == "▏         "  # small but not zero: a sliver
    assert hbar(0, 0, 10, 10) == " " * 10
    assert hbar(None, 0, 10, 10) == " " * 10


def test_bars_with_negatives_share_one_zero_line() -> None:
    assert hbar(-5, -5, 5, 10) == "█████     "
    assert hbar(5, -5, 5, 10) == "     █████"
    assert hbar(-10, -10, 0, 10) == "█" * 10


def test_equal_and_zero_bars() -> None:
    assert hbar(3, 0, 3, 6) == "█" * 6  # all equal: all full
    assert hbar(0, 0, 0, 6) == " " * 6  # all zero: no range, no bars, no error
    assert hbar(1, 0, 1, 0) == ""


def test_canvas_draws_joined_points_and_a_flat_line_mid_height() -> None:
    canvas = Canvas(4, 2)
    canvas.plot([0, 1], 0, 1, series=0)
    rows = ["".join(char for char, _ in row) for row in canvas.text_rows()]
    assert rows[0][-1] != " " and rows[1][0] != " "  # low on the left, high on the right
    flat = Canvas(4, 2)
    flat.plot([5, 5, 5], 5, 5, series=1)
    drawn = [[char for char, _ in row] for row in flat.text_rows()]
    assert all(char != " " for char in drawn[0]) or all(char != " " for char in drawn[1])
    single = Canvas(5, 1)
    single.plot([3], 3, 3, series=0)
    assert sum(char != " " for char, _ in single.text_rows()[0]) == 1
    gap = Canvas(10, 1)
    gap.plot([1, None, 1], 0, 2, series=0)
    owners = [owner for _, owner in gap.text_rows()[0]]
    assert owners[0] == 0 and owners[-1] == 0 and -1 in owners


def test_line_chart_axis_labels_and_legend(draw: Draw) -> None:
    data = {
        "title": "Latency",
        "unit": "ms",
        "labels": ["00:00", "06:00", "12:00"],
        "series": [
            {"name": "p50", "values": [10, 20, 15]},
            {"name": "p99", "values": [40, 90, 60]},
        ],
    }
    lines = draw(render("chart", data)).splitlines()
    assert lines[0].strip() == "Latency (ms)"
    assert lines[1].startswith("90 ms┤") and any(line.startswith("10 ms┤") for line in lines)
    assert "00:00" in lines[-2] and "06:00" in lines[-2] and "12:00" in lines[-2]
    assert "━━ p50" in lines[-1] and "━━ p99" in lines[-1]


def test_flat_line_chart_has_one_label(draw: Draw) -> None:
    text = draw(render("chart", {"series": [{"values": [3, 3, 3]}]}))
    assert text.count("┤") == 1 and "3┤" in text


def test_line_chart_turns_to_sparklines_when_narrow(draw: Draw) -> None:
    text = draw(render("chart", {"series": [{"name": "cpu", "values": [1, 5, 3]}]}), width=20)
    assert "┤" not in text and "cpu" in text and "▁" in text


def test_bar_chart(draw: Draw) -> None:
    data = {
        "kind": "bar",
        "labels": ["gain", "loss", "flat"],
        "series": [{"values": [3, -2, 0]}],
        "unit": "€",
    }
    lines = draw(render("chart", data)).splitlines()
    assert lines[0].startswith("gain") and lines[0].rstrip().endswith("3 €")
    assert lines[1].rstrip().endswith("-2 €") and "█" in lines[1]
    gain_start = lines[0].index("█")
    loss_end = lines[1].rindex("█")
    assert loss_end < gain_start  # negative bars end at the zero line where positives begin
    assert "█" not in lines[2]


def test_bar_chart_edge_cases(draw: Draw) -> None:
    same = draw(render("chart", {"kind": "bar", "series": [{"values": [2, 2]}]}))
    assert same.count("█") > 20 and "1 " in same and "2 " in same  # numbered without labels
    gaps = draw(render("chart", {"kind": "bar", "series": [{"values": [None, 1]}]}))
    assert "—" in gaps
    many = draw(render("chart", {"kind": "bar", "series": [{"values": list(range(100))}]}))
    assert "… 40 more bars" in many
    two = draw(
        render(
            "chart",
            {
                "kind": "bar",
                "series": [{"name": "a", "values": [1]}, {"name": "b", "values": [2, 3]}],
            },
        )
    )
    assert "━━ a" in two and "━━ b" in two


def test_sparkline_chart(draw: Draw) -> None:
    data = {
        "kind": "sparkline",
        "series": [{"name": "rx", "values": [1, 2, math.nan, 8]}],
        "unit": "kB",
    }
    line = draw(render("chart", data)).splitlines()[0]
    assert line.startswith("rx ▁▂ █ 8 kB") and "min 1 · max 8" in line


@pytest.mark.parametrize(
    "data",
    [
        {"series": []},
        {"series": [{"values": []}]},
        {"series": [{"values": [None, math.nan, math.inf]}]},
        {"kind": "bar", "series": [{"values": [None]}]},
    ],
)
def test_charts_without_values_say_so(data: dict[str, object], draw: Draw) -> None:
    assert "(no values)" in draw(render("chart", data))


def test_chart_payload_errors_fall_back(draw: Draw) -> None:
    text = draw(render("chart", {"series": [{"values": [1, "2"]}]}), width=120)
    assert "could not draw this: series/0/values/1: expected a number or null, not a string" in text
    text = draw(render("chart", {"kind": "pie", "series": []}), width=120)
    assert "kind: expected one of line, bar, sparkline" in text


def test_area_is_drawn_as_a_line_and_histogram_as_bars(draw: Draw) -> None:
    series = [{"name": "rx", "values": [1, 4, 2]}]
    line = draw(render("chart", {"kind": "line", "series": series}))
    assert draw(render("chart", {"kind": "area", "series": series})) == line
    bars = draw(render("chart", {"kind": "bar", "labels": ["a", "b", "c"], "series": series}))
    histogram = {"kind": "histogram", "labels": ["a", "b", "c"], "series": series}
    assert draw(render("chart", histogram)) == bars


def test_candlesticks_draw_their_closes_with_a_note(draw: Draw) -> None:
    candles = [
        {"open": 10, "high": 12, "low": 9, "close": 11},
        None,
        {"open": 11, "high": 30, "low": 1, "close": 20},
    ]
    data = {"kind": "candlestick", "unit": "€", "series": [{"name": "ACME", "values": candles}]}
    text = draw(render("chart", data))
    closes = draw(
        render("chart", {"unit": "€", "series": [{"name": "ACME", "values": [11, None, 20]}]})
    )
    assert text.startswith(closes.rstrip("\n"))
    assert "20 €┤" in text and "30 €" not in text  # the close, not the high
    assert "closing values; the browser view draws the candles" in text
    narrow = draw(render("chart", data), width=20)
    assert "ACME" in narrow and "20 €" in narrow


def test_candlestick_shape_errors_are_specific(draw: Draw) -> None:
    wrong = {"kind": "candlestick", "series": [{"values": [3]}]}
    assert "series/0/values/0: expected {open, high, low, close} or null, not a number" in draw(
        render("chart", wrong), width=120
    )
    half = {"kind": "candlestick", "series": [{"values": [{"open": 1, "high": 2, "low": 0}]}]}
    assert "series/0/values/0/close: expected a number" in draw(render("chart", half), width=120)
    candle_in_line = {"series": [{"values": [{"open": 1, "high": 2, "low": 0, "close": 1}]}]}
    assert "expected a number or null, not an object" in draw(
        render("chart", candle_in_line), width=120
    )


def test_times_label_the_axis_when_there_are_no_labels(draw: Draw) -> None:
    days = {"times": [1_764_979_200, 1_765_065_600], "series": [{"values": [1, 2]}]}
    text = draw(render("chart", days))
    assert "2025-12-06" in text and "2025-12-07" in text
    hours = {"times": [1_764_979_200, 1_764_982_800], "series": [{"values": [1, 2]}]}
    assert "2025-12-06 01:00" in draw(render("chart", hours))
    iso = {"times": ["2026-12-07", "2026-12-08T10:00:00Z"], "series": [{"values": [1, 2]}]}
    assert "2026-12-08T10:00:00Z" in draw(render("chart", iso))
    both = {"labels": ["Mon", "Tue"], "times": [0, 86400], "series": [{"values": [1, 2]}]}
    text = draw(render("chart", both))
    assert "Mon" in text and "1970" not in text


def test_new_kinds_fit_the_schema_and_wrong_shapes_do_not() -> None:
    from deeting_tui.kernel.renderers import PayloadSchemas

    schemas = PayloadSchemas()
    candle = {"open": 1, "high": 2, "low": 0, "close": 1.5}
    for good in (
        {"kind": "area", "series": [{"values": [1, None]}]},
        {"kind": "histogram", "series": [{"values": [1, 2]}]},
        {"kind": "candlestick", "series": [{"values": [candle, None]}]},
        {"times": [1_700_000_000, "2026-12-07", "2026-12-07T15:30:00+01:00"], "series": []},
        {"kind": "sparkline", "labels": ["a"], "series": [{"values": [1]}]},
    ):
        assert schemas.problem("chart", good) is None, good
    number_candle = schemas.problem("chart", {"kind": "candlestick", "series": [{"values": [3]}]})
    assert number_candle and "series/0/values/0" in number_candle and "object" in number_candle
    half = {"kind": "candlestick", "series": [{"values": [{"open": 1}]}]}
    assert "'high' is a required property" in (schemas.problem("chart", half) or "")
    in_line = schemas.problem("chart", {"series": [{"values": [candle]}]})
    assert in_line and "series/0/values/0" in in_line and "'number', 'null'" in in_line
    assert schemas.problem("chart", {"times": ["yesterday"], "series": []})
