"""The ``chart`` face: line, bar and sparkline charts from Rich text alone (no plotting library).

A line chart is a braille canvas with a value axis; bars are rows of block characters growing
from zero; sparklines are one row per series. When the width leaves no room for a line chart it
becomes sparklines, which still show the shape. The kinds the browser draws richer map onto
these: an area is a line, a histogram is bars, and candlesticks are the line of their closing
values, with a note that says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rich.cells import cell_len, set_cell_size
from rich.console import Group, RenderableType
from rich.text import Text

from .base import PayloadError, clean, field, fmt_short, kind, mapping, more, number, required
from .plot import Canvas, bounds, hbar, sparkline

KINDS = ("line", "bar", "sparkline", "area", "histogram", "candlestick")
#: The terminal's drawing for each kind: a line plot, bars, or sparklines.
DRAWN_AS = {"area": "line", "candlestick": "line", "histogram": "bar"}
CANDLE = ("open", "high", "low", "close")
COLORS = ("cyan", "magenta", "green", "yellow", "blue", "red", "bright_cyan", "bright_magenta")
MAX_SERIES = len(COLORS)
MAX_BARS = 60
#: Below this width a line chart is drawn as sparklines.
MIN_LINE_WIDTH = 24


@dataclass(frozen=True)
class Series:
    name: str
    values: list[float | None]
    color: str


def chart_face(data: Any, width: int) -> RenderableType:
    """``{kind?: line|area|bar|histogram|candlestick|sparkline, series: [{name?, values:
    [number|null]}], labels?, times?, title?, unit?}``: null values are gaps; a candlestick
    chart's values are ``{open, high, low, close}`` objects."""
    payload = mapping(data, "chart")
    chart_kind = field(payload, "kind", str, "") or "line"
    if chart_kind not in KINDS:
        raise PayloadError(
            f"kind: expected one of {', '.join(KINDS)}, not {clean(chart_kind, 20)!r}"
        )
    raw_series = required(payload, "series", (list, tuple), "")
    candles = chart_kind == "candlestick"
    series = [_series(item, index, candles) for index, item in enumerate(raw_series[:MAX_SERIES])]
    labels = [_label(label) for label in field(payload, "labels", (list, tuple), "") or []]
    if not labels:
        labels = _times(field(payload, "times", (list, tuple), "") or [])
    drawn = DRAWN_AS.get(chart_kind, chart_kind)
    title = field(payload, "title", str, "")
    unit = clean(field(payload, "unit", str, "") or "", 12)
    parts: list[RenderableType] = []
    if title:
        heading = Text(clean(title, 200), style="bold")
        if unit:
            heading.append(f" ({unit})", style="dim")
        parts.append(heading)
    if not any(value is not None for s in series for value in s.values):
        parts.append(Text("(no values)", style="dim italic"))
    elif drawn == "bar":
        parts.extend(_bars(series, labels, unit, width))
    elif drawn == "line" and width >= MIN_LINE_WIDTH:
        parts.extend(_line(series, labels, unit, width))
    else:
        parts.extend(_sparklines(series, unit, width))
    if candles:
        parts.append(Text("closing values; the browser view draws the candles", style="dim italic"))
    if len(series) > 1 and chart_kind != "sparkline" and width >= MIN_LINE_WIDTH:
        parts.append(_legend(series))
    if len(raw_series) > MAX_SERIES:
        parts.append(more(len(raw_series) - MAX_SERIES, "series"))
    return Group(*parts)


def _series(item: Any, index: int, candles: bool = False) -> Series:
    where = f"series/{index}/"
    if not isinstance(item, Mapping):
        raise PayloadError(f"series/{index}: expected an object with values, not {kind(item)}")
    name = clean(field(item, "name", str, where) or f"series {index + 1}", 40)
    raw = required(item, "values", (list, tuple), where)
    values: list[float | None] = []
    for position, value in enumerate(raw):
        if candles and value is not None:
            value = _close(value, f"{where}values/{position}")
        elif value is not None and not _is_number(value):
            raise PayloadError(
                f"{where}values/{position}: expected a number or null, not {kind(value)}"
            )
        values.append(number(value))  # NaN and infinities become gaps
    return Series(name, values, COLORS[index % len(COLORS)])


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _close(candle: Any, where: str) -> Any:
    """A candle's closing value, after checking the candle has all four numbers."""
    if not isinstance(candle, Mapping):
        raise PayloadError(
            f"{where}: expected {{open, high, low, close}} or null, not {kind(candle)}"
        )
    for key in CANDLE:
        if not _is_number(candle.get(key)):
            raise PayloadError(f"{where}/{key}: expected a number, not {kind(candle.get(key))}")
    return candle["close"]


def _times(times: Sequence[Any]) -> list[str]:
    """Times as labels: unix seconds as UTC dates (with the time of day when any has one),
    ISO strings as given."""
    moments: list[datetime | None] = []
    for value in times:
        seconds = number(value) if _is_number(value) else None
        try:
            moments.append(None if seconds is None else datetime.fromtimestamp(seconds, UTC))
        except (OverflowError, OSError, ValueError):
            moments.append(None)
    with_time = any(m is not None and (m.hour or m.minute or m.second) for m in moments)
    shape = "%Y-%m-%d %H:%M" if with_time else "%Y-%m-%d"
    return [
        moment.strftime(shape) if moment else _label(value if isinstance(value, str) else "?")
        for value, moment in zip(times, moments, strict=True)
    ]


def _label(label: Any) -> str:
    return clean(label if isinstance(label, str) else fmt_short(number(label) or 0.0), 24)


def _value(value: float | None, unit: str) -> str:
    return "—" if value is None else fmt_short(value) + (f" {unit}" if unit else "")


def _line(series: Sequence[Series], labels: Sequence[str], unit: str, width: int) -> list[Text]:
    """A braille plot with the top, middle and bottom values on its left edge."""
    found = bounds(s.values for s in series)
    assert found is not None  # the caller checked there are values
    low, high = found
    rows = 8 if width >= 50 else 5
    ticks = {0: high, rows - 1: low, (rows - 1) // 2: (low + high) / 2} if high > low else {}
    if not ticks:  # flat: one label, on the row the line runs through
        ticks = {(rows * 4 - 1 - round(0.5 * (rows * 4 - 1))) // 4: low}
    tick_text = {row: _value(value, unit) for row, value in ticks.items()}
    axis = max(len(text) for text in tick_text.values())
    columns = max(1, width - axis - 1)
    canvas = Canvas(columns, rows)
    for index, one in enumerate(series):
        canvas.plot(one.values, low, high, index)
    lines: list[Text] = []
    for row, cells in enumerate(canvas.text_rows()):
        line = Text(
            tick_text.get(row, "").rjust(axis) + ("┤" if row in tick_text else "│"), style="dim"
        )
        for char, owner in cells:
            line.append(char, style=series[owner].color if owner >= 0 else "")
        lines.append(line)
    lines.append(Text(" " * axis + "└" + "─" * columns, style="dim"))
    if labels:
        lines.append(_x_labels(labels, axis + 1, columns))
    return lines


def _x_labels(labels: Sequence[str], indent: int, columns: int) -> Text:
    """The first label under the left end, the last under the right, the middle one centred."""
    first, last = labels[0], labels[-1]
    row = [" "] * columns
    row[: len(first)] = list(first[:columns])
    if len(labels) > 1 and len(first) + len(last) + 1 <= columns:
        row[columns - len(last) :] = list(last)
        middle = labels[len(labels) // 2]
        start = (columns - len(middle)) // 2
        if (
            len(labels) > 2
            and start > len(first) + 1
            and start + len(middle) < columns - len(last) - 1
        ):
            row[start : start + len(middle)] = list(middle)
    return Text(" " * indent + "".join(row), style="dim")


def _bars(series: Sequence[Series], labels: Sequence[str], unit: str, width: int) -> list[Text]:
    """One row per label (and per series), bars growing from a shared zero."""
    count = max(len(s.values) for s in series)
    shown = min(count, MAX_BARS)
    names = [labels[i] if i < len(labels) else str(i + 1) for i in range(shown)]
    label_width = min(max(cell_len(n) for n in names), max(4, width // 4))
    values = [_value(v, unit) for s in series for v in s.values[:shown]]
    value_width = max(len(v) for v in values)
    found = bounds(s.values[:shown] for s in series) or (0.0, 0.0)
    low, high = min(0.0, found[0]), max(0.0, found[1])
    bar_width = width - label_width - value_width - 2
    lines: list[Text] = []
    for index, name in enumerate(names):
        for number_, one in enumerate(series):
            value = one.values[index] if index < len(one.values) else None
            label = name if number_ == 0 else ""
            line = Text(_fit(label, label_width) + " ", style="bold")
            if bar_width >= 4:
                line.append(hbar(value, low, high, bar_width), style=one.color)
                line.append(" ")
            line.append(
                _value(value, unit).rjust(value_width), style="dim" if value is None else ""
            )
            lines.append(line)
    if count > shown:
        lines.append(more(count - shown, "bar"))
    return lines


def _sparklines(series: Sequence[Series], unit: str, width: int) -> list[Text]:
    """One row per series: name, sparkline, latest value, and the range when there is room."""
    name_width = min(max(cell_len(s.name) for s in series), max(4, width // 5))
    lines: list[Text] = []
    for one in series:
        present = [v for v in one.values if v is not None]
        latest = _value(present[-1] if present else None, unit)
        extent = ""
        if present and width >= 60:
            extent = f"  min {fmt_short(min(present))} · max {fmt_short(max(present))}"
        room = max(1, width - name_width - len(latest) - len(extent) - 2)
        line = Text(_fit(one.name, name_width) + " ", style=f"bold {one.color}")
        line.append(sparkline(one.values, room), style=one.color)
        line.append(" " + latest, style="bold")
        line.append(extent, style="dim")
        lines.append(line)
    return lines


def _legend(series: Sequence[Series]) -> Text:
    legend = Text()
    for one in series:
        legend.append("━━ ", style=one.color)
        legend.append(one.name + "   ")
    legend.rstrip()
    return legend


def _fit(text: str, width: int) -> str:
    """``text`` padded or cut (with an ellipsis) to exactly ``width`` cells."""
    if cell_len(text) <= width:
        return set_cell_size(text, width)
    return set_cell_size(text, max(0, width - 1)) + "…"
