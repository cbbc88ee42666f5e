"""The ``weather-cards`` face: current conditions and a daily forecast, shaped after Open-Meteo.

A weather plugin can pass Open-Meteo's fields nearly as they come (``weather_code`` as ``code``,
``temperature_2m_max`` as ``max`` …); the face names the condition and picks the icon from the
WMO code when the plugin gives no words. The forecast draws each day's range on one shared
scale, so a cold day and a warm day can be told apart at a glance.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from rich import box
from rich.cells import cell_len, set_cell_size
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from .base import PayloadError, clean, field, fmt_number, kind, mapping, number, required

MAX_DAYS = 16  # Open-Meteo's longest forecast

# WMO weather interpretation codes, as Open-Meteo documents them: code -> (words, icon).
# Icons carry VS16 (U+FE0F) where the emoji has no default emoji presentation, so terminals and
# Rich agree they are two cells wide.
WMO: dict[int, tuple[str, str]] = {
    0: ("Clear sky", "☀️"),
    1: ("Mainly clear", "🌤️"),
    2: ("Partly cloudy", "⛅"),
    3: ("Overcast", "☁️"),
    45: ("Fog", "🌫️"),
    48: ("Rime fog", "🌫️"),
    51: ("Light drizzle", "🌦️"),
    53: ("Drizzle", "🌦️"),
    55: ("Dense drizzle", "🌦️"),
    56: ("Freezing drizzle", "🌧️"),
    57: ("Freezing drizzle", "🌧️"),
    61: ("Light rain", "🌧️"),
    63: ("Rain", "🌧️"),
    65: ("Heavy rain", "🌧️"),
    66: ("Freezing rain", "🌧️"),
    67: ("Heavy freezing rain", "🌧️"),
    71: ("Light snow", "🌨️"),
    73: ("Snow", "🌨️"),
    75: ("Heavy snow", "🌨️"),
    77: ("Snow grains", "🌨️"),
    80: ("Light showers", "🌦️"),
    81: ("Showers", "🌦️"),
    82: ("Violent showers", "🌧️"),
    85: ("Snow showers", "🌨️"),
    86: ("Heavy snow showers", "🌨️"),
    95: ("Thunderstorm", "⛈️"),
    96: ("Thunderstorm, hail", "⛈️"),
    99: ("Thunderstorm, heavy hail", "⛈️"),
}
_WORDS = (  # words in a plugin's own condition -> icon, when it sends no code
    ("thunder", "⛈️"),
    ("snow", "🌨️"),
    ("sleet", "🌨️"),
    ("shower", "🌦️"),
    ("drizzle", "🌦️"),
    ("rain", "🌧️"),
    ("fog", "🌫️"),
    ("mist", "🌫️"),
    ("partly", "⛅"),
    ("overcast", "☁️"),
    ("cloud", "☁️"),
    ("clear", "☀️"),
    ("sun", "☀️"),
)
_COMPASS = ("N", "NE", "E", "SE", "S", "SW", "W", "NW")


def weather_face(data: Any, width: int) -> RenderableType:
    """``{location, current: {temperature, unit?, condition?, code?, …}, daily?: [{date, min,
    max, condition?, code?, precipitation_probability?}], source?}`` (see its schema)."""
    payload = mapping(data, "weather-cards")
    location = clean(required(payload, "location", str, ""), 120)
    current = required(payload, "current", Mapping, "")
    daily = field(payload, "daily", (list, tuple), "") or []
    source = field(payload, "source", str, "")
    unit = clean(field(current, "unit", str, "current/") or "°C", 8)
    parts: list[RenderableType] = [_now(current, unit)]
    if daily:
        parts.append(Text(""))
        parts.append(_forecast(daily[:MAX_DAYS], unit, width - 4))
    if width < 40:  # no frame on a narrow screen: the location becomes a heading
        return Group(Text(location, style="bold"), *parts)
    return Panel(
        Group(*parts),
        title=Text(location, style="bold"),
        title_align="left",
        subtitle=Text(clean(source, 60), style="dim") if source else None,
        subtitle_align="right",
        box=box.ROUNDED,
        border_style="cyan",
        padding=(0, 1),
    )


def icon(code: Any, condition: str | None, is_day: Any = None) -> str:
    """The icon for a WMO code, else for the words of a condition; a moon for clear nights."""
    found = WMO.get(code) if isinstance(code, int) and not isinstance(code, bool) else None
    symbol = found[1] if found else ""
    if not symbol and condition:
        lowered = condition.lower()
        symbol = next((sym for word, sym in _WORDS if word in lowered), "")
    if symbol == "☀️" and is_day is not None and not is_day:  # Open-Meteo sends 0 or 1
        return "🌙"
    return symbol or "🌡️"


def condition_words(code: Any, condition: str | None) -> str:
    """The plugin's words for the sky, or the WMO code's."""
    if condition:
        words = clean(condition, 60)
        return words[:1].upper() + words[1:]  # "light rain" from an API reads as a sentence
    if isinstance(code, int) and not isinstance(code, bool) and code in WMO:
        return WMO[code][0]
    return ""


def compass(degrees: float) -> str:
    """Wind direction in degrees (where it blows from) as one of eight compass points."""
    return _COMPASS[round((degrees % 360) / 45) % 8]


def _now(current: Mapping[str, Any], unit: str) -> RenderableType:
    where = "current/"
    temperature = required(current, "temperature", (int, float), where)
    condition = field(current, "condition", str, where)
    code = field(current, "code", int, where)
    line = Text()
    line.append(icon(code, condition, current.get("is_day")) + "  ")
    line.append(f"{fmt_number(round(temperature, 1))}{unit}", style="bold")
    words = condition_words(code, condition)
    if words:
        line.append("  " + words)
    details: list[str] = []
    feels = number(current.get("feels_like"))
    if feels is not None:
        details.append(f"feels like {fmt_number(round(feels))}{unit}")
    wind = _wind(current, where)
    if wind:
        details.append(wind)
    humidity = number(current.get("humidity"))
    if humidity is not None:
        details.append(f"humidity {fmt_number(round(humidity))}%")
    rain = number(current.get("precipitation"))
    if rain:
        details.append(f"precipitation {fmt_number(round(rain, 1))} mm")
    if not details:
        return line
    return Group(line, Text(" · ".join(details), style="dim"))


def _wind(current: Mapping[str, Any], where: str) -> str:
    wind = field(current, "wind", (int, float, str), where)
    if wind is None:
        return ""
    if isinstance(wind, str):
        return "wind " + clean(wind, 40)
    unit = clean(field(current, "wind_unit", str, where) or "km/h", 10)
    text = f"wind {fmt_number(round(wind))} {unit}"
    direction = number(current.get("wind_direction"))
    return f"{text} {compass(direction)}" if direction is not None else text


def _forecast(days: list[Any], unit: str, width: int) -> Table:
    rows = []
    for index, day in enumerate(days):
        if not isinstance(day, Mapping):
            raise PayloadError(f"daily/{index}: expected an object, not {kind(day)}")
        where = f"daily/{index}/"
        date = required(day, "date", str, where)
        low = field(day, "min", (int, float), where)
        high = field(day, "max", (int, float), where)
        condition = field(day, "condition", str, where)
        code = field(day, "code", int, where)
        chance = number(day.get("precipitation_probability"))
        rows.append((date, number(low), number(high), condition, code, chance))
    lows = [r[1] for r in rows if r[1] is not None]
    highs = [r[2] for r in rows if r[2] is not None]
    scale = (min(lows + highs), max(lows + highs)) if lows or highs else (0.0, 0.0)
    show_words = width >= 60
    show_rain = width >= 50 and any(r[5] is not None for r in rows)
    columns: list[list[str]] = [[], [], [], [], [], []]  # day, icon, words, min, max, rain
    for date, low, high, condition, code, chance in rows:
        columns[0].append(_day(date, width))
        columns[1].append(icon(code, condition))
        columns[2].append(_fit(condition_words(code, condition), 16))
        columns[3].append(_degrees(low, unit))
        columns[4].append(_degrees(high, unit))
        columns[5].append(f"{fmt_number(round(chance))}%" if chance is not None else "")
    keep = [True, True, show_words, True, True, show_rain]
    fixed = [max(map(cell_len, column)) for column, kept in zip(columns, keep, strict=True) if kept]
    bar_width = min(40, width - sum(fixed) - len(fixed))  # one space between columns
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)  # day
    grid.add_column(no_wrap=True)  # icon
    if show_words:
        grid.add_column(no_wrap=True)
    grid.add_column(justify="right", no_wrap=True, style="blue")
    if bar_width >= 6:
        grid.add_column(no_wrap=True)
    grid.add_column(no_wrap=True, style="red")
    if show_rain:
        grid.add_column(justify="right", no_wrap=True, style="dim")
    for index, (_, low, high, *_rest) in enumerate(rows):
        cells: list[Text | str] = [columns[0][index], columns[1][index]]
        if show_words:
            cells.append(columns[2][index])
        cells.append(columns[3][index])
        if bar_width >= 6:
            cells.append(_range_bar(low, high, scale, bar_width, unit))
        cells.append(columns[4][index])
        if show_rain:
            cells.append(columns[5][index])
        grid.add_row(*cells)
    return grid


def _fit(text: str, width: int) -> str:
    return text if cell_len(text) <= width else set_cell_size(text, width - 1) + "…"


def _day(date: str, width: int) -> str:
    try:
        day = dt.date.fromisoformat(date[:10])
    except ValueError:
        return clean(date, 12)
    return f"{day:%a %d %b}" if width >= 50 else f"{day:%a %d}"


def _degrees(value: float | None, unit: str) -> str:
    return "—" if value is None else f"{fmt_number(round(value))}{unit[:1] if unit else ''}"


def _range_bar(
    low: float | None, high: float | None, scale: tuple[float, float], cells: int, unit: str
) -> Text:
    """Where ``low..high`` sits on the forecast's shared scale, as a colored stretch of ``━``."""
    bar = Text("·" * cells, style="dim")
    if low is None or high is None:
        return bar
    bottom, top = scale
    span = top - bottom
    start = 0 if span <= 0 else round((min(low, high) - bottom) / span * (cells - 1))
    end = cells - 1 if span <= 0 else round((max(low, high) - bottom) / span * (cells - 1))
    bar = Text("·" * start, style="dim")
    middle = (low + high) / 2
    celsius = (middle - 32) * 5 / 9 if "F" in unit.upper() else middle
    bar.append("━" * (end - start + 1), style=_warmth(celsius))
    bar.append("·" * (cells - end - 1), style="dim")
    return bar


def _warmth(celsius: float) -> str:
    """A color for a temperature: blue below freezing up to red past 28 °C."""
    for limit, style in ((0, "bright_blue"), (10, "cyan"), (20, "green"), (28, "yellow")):
        if celsius < limit:
            return style
    return "red"
