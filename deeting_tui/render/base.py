"""What every face shares: reading a payload defensively and making plugin strings safe to draw.

Payloads come from sandboxed plugins, so nothing in them is trusted: a string may carry terminal
escape sequences, a number may be NaN or have ten thousand digits, a list may hold a million rows.
The helpers here turn such values into short, printable text, and raise ``PayloadError`` with a
sentence a plugin author can act on when the shape is wrong (the catalog then shows the raw data).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from rich.text import Text

from deeting_tui.terminal_text import neutralise

#: Longest string drawn as is; more is cut with a note (the JSON view has the rest).
MAX_TEXT = 20_000
#: Longest single cell or value in a table or key-value list.
MAX_CELL = 500
#: Most rows, items or results a face draws before it says how many it left out.
MAX_ROWS = 200


#: What a face shows for nothing at all, so an empty result is still a visible card.
EMPTY = Text("(empty)", style="dim italic")


class PayloadError(ValueError):
    """The payload does not have the shape the face draws; the message says what is wrong."""


def clean(value: str, limit: int = MAX_TEXT) -> str:
    """``value`` neutralised for the terminal (no escape sequence, control character or bidi
    override: see ``deeting_tui.terminal_text``), cut to ``limit`` characters with a visible
    mark. Cut first, so a huge string costs no more than ``limit`` characters' work."""
    text = neutralise(value[:limit])
    if len(value) > limit:
        return text[: limit - 1] + "…"
    return text


def fmt_number(value: float | int) -> str:
    """A number as a person reads it: no float noise, NaN and infinity spelled, giants shortened."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        try:
            digits = str(value)
        except ValueError:  # past Python's int-to-str limit
            return "-huge" if value < 0 else "huge"
        sign, body = ("-", digits[1:]) if digits.startswith("-") else ("", digits)
        if len(body) > 21:
            return f"{sign}{body[0]}.{body[1:4]}e+{len(body) - 1}"
        return digits
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    return f"{value:.10g}"


def fmt_short(value: float) -> str:
    """A number in at most about six characters, for chart axes and bar labels."""
    if not math.isfinite(value):
        return fmt_number(value)
    size = abs(value)
    for limit, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e4, "k")):
        if size >= limit:
            return f"{value / limit:.3g}{suffix}"
    if size >= 100 or value == int(value):
        return f"{value:.0f}"
    return f"{value:.3g}"


def scalar_text(value: Any, limit: int = MAX_CELL) -> Text:
    """One value as styled text: numbers plain, null dim, booleans as marks, nested as JSON."""
    if value is None:
        return Text("—", style="dim")
    if isinstance(value, bool):
        return Text("✓", style="green") if value else Text("✗", style="red")
    if isinstance(value, int | float):
        return Text(fmt_number(value))
    if isinstance(value, str):
        return Text(clean(value, limit))
    return Text(clean(compact_json(value), limit), style="dim")


def compact_json(value: Any, limit: int = MAX_CELL) -> str:
    """Nested data on one line, for a table cell; never fails on odd Python values."""
    try:
        text = json.dumps(clip(value), ensure_ascii=False, separators=(", ", ": "))
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def clip(
    value: Any, *, nodes: int = 400, items: int = 50, depth: int = 8, string: int = 1_000
) -> Any:
    """A JSON-able copy of ``value`` small enough to read: at most ``items`` per list or object,
    ``depth`` levels, about ``nodes`` values in all, ``string`` characters per string. What is
    left out is said in place ("… 950 more items"), so a huge payload still shows its shape."""
    return _Clipper(nodes, items, depth, string)(value, 0)


class _Clipper:
    def __init__(self, nodes: int, items: int, depth: int, string: int) -> None:
        self.nodes, self.items, self.depth, self.string = nodes, items, depth, string

    def __call__(self, value: Any, level: int) -> Any:
        self.nodes -= 1
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, int):
            return value if abs(value) < 10**21 else fmt_number(value)
        if isinstance(value, float):
            return value if math.isfinite(value) else fmt_number(value)
        if isinstance(value, str):
            return clean(value, self.string)
        if isinstance(value, bytes | bytearray):
            return f"<{len(value)} bytes>"
        if isinstance(value, Mapping):
            if level >= self.depth or self.nodes <= 0:
                return "{… " + _count(len(value), "key") + "}"
            out: dict[str, Any] = {}
            for index, (key, item) in enumerate(value.items()):
                if index >= self.items or self.nodes <= 0:
                    out["…"] = _count(len(value) - index, "more key")
                    break
                out[clean(str(key), 200)] = self(item, level + 1)
            return out
        if isinstance(value, list | tuple | set | frozenset):
            if level >= self.depth or self.nodes <= 0:
                return "[… " + _count(len(value), "item") + "]"
            seq: list[Any] = []
            for index, item in enumerate(value):
                if index >= self.items or self.nodes <= 0:
                    seq.append("… " + _count(len(value) - index, "more item"))
                    break
                seq.append(self(item, level + 1))
            return seq
        return clean(repr(value), self.string)


def mapping(data: Any, face: str) -> Mapping[str, Any]:
    """``data`` as an object, or a PayloadError naming the face."""
    if not isinstance(data, Mapping):
        raise PayloadError(f"the '{face}' renderer expects an object, not {kind(data)}")
    return data


def field(data: Mapping[str, Any], key: str, types: type | tuple[type, ...], where: str) -> Any:
    """``data[key]`` when present and of ``types``; None when absent or null."""
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in _tuple(types)):
        raise PayloadError(f"{where}{key}: expected {_expected(types)}, not {kind(value)}")
    return value


def required(data: Mapping[str, Any], key: str, types: type | tuple[type, ...], where: str) -> Any:
    """Like ``field`` but the key must be there."""
    value = field(data, key, types, where)
    if value is None:
        raise PayloadError(f"{where}{key}: missing")
    return value


def number(value: Any) -> float | None:
    """A finite float, or None for anything else (null, NaN, infinity, strings, booleans)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        out = float(value)
    except OverflowError:
        return None
    return out if math.isfinite(out) else None


def kind(value: Any) -> str:
    """The JSON name of a value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def more(count: int, noun: str) -> Text:
    """The dim line that says how much a face left out."""
    return Text("… " + _count(count, "more " + noun), style="dim italic")


def _count(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' * (count != 1 and not noun.endswith('s'))}"


def _tuple(types: type | tuple[type, ...]) -> tuple[type, ...]:
    return types if isinstance(types, tuple) else (types,)


def _expected(types: type | tuple[type, ...]) -> str:
    """``(list, tuple)`` as "a list", ``(int, float, str)`` as "a number or a string"."""
    names: list[str] = []
    for each in _tuple(types):
        if each in (int, float):
            name = "a number"
        elif each in (list, tuple):
            name = "a list"
        elif each is str:
            name = "a string"
        elif each is bool:
            name = "a boolean"
        else:
            name = "an object"
        if name not in names:
            names.append(name)
    return " or ".join(names)
