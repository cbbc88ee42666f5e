"""Turning user text into tool arguments: ``/TOOL key=value …`` and trigger regex groups.

Values are read according to the tool's JSON Schema, so ``expr=2+2`` stays a string for a
string parameter while ``limit=5`` becomes an integer; the schema check afterwards is the
single authority on what is valid.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

import orjson

from deeting_tui.errors import DeetingError
from deeting_tui.plugin.triggers import TriggerMatch
from deeting_tui.terminal_text import quote_prefix

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
_COMMAND = re.compile(r"^/(?P<name>[A-Za-z0-9_-]{1,64})(?:\s+(?P<rest>.*))?$", re.DOTALL)


class ArgumentError(DeetingError, ValueError):
    """The command text cannot be read as arguments; the message shows the right form."""


def split_command(text: str) -> tuple[str, str] | None:
    """``/name rest`` → (name, rest); None if the text is not a slash command."""
    match = _COMMAND.match(text.strip())
    if match is None:
        return None
    return match["name"], (match["rest"] or "").strip()


def coerce(raw: str, schema: dict[str, Any] | None) -> Any:
    """Read one textual value as the type its schema asks for (best effort)."""
    kind = (schema or {}).get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind == "string":
        return raw
    if kind == "integer":
        try:
            return int(raw)
        except ValueError:
            return raw  # the schema check reports it
    if kind == "number":
        try:
            number = float(raw)
        except ValueError:
            return raw
        return int(number) if number.is_integer() and "." not in raw and "e" not in raw else number
    if kind == "boolean":
        low = raw.lower()
        return True if low in _TRUE else False if low in _FALSE else raw
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw


def parse_arguments(rest: str, parameters: dict[str, Any]) -> dict[str, Any]:
    """``key=value`` pairs (shell quoting) or, for a tool with one required string
    parameter, the whole text as that parameter."""
    properties: dict[str, Any] = parameters.get("properties") or {}
    if not rest:
        return {}
    try:
        tokens = shlex.split(rest)
    except ValueError as exc:
        raise ArgumentError(f"cannot read the arguments: {exc}") from None
    if not any("=" in t and t.split("=", 1)[0] in properties for t in tokens[:1]):
        target = first_required_string(parameters)
        if target is not None:
            return {target: rest}
    args: dict[str, Any] = {}
    for token in tokens:
        key, sep, value = token.partition("=")
        if not sep or not key:
            raise ArgumentError(
                f"expected key=value, got '{quote_prefix(token)}' — quote values with spaces: "
                'key="two words"'
            )
        if key in args:
            raise ArgumentError(f"argument '{quote_prefix(key)}' given twice")
        args[key] = coerce(value, properties.get(key))
    return args


def first_required_string(parameters: dict[str, Any]) -> str | None:
    properties = parameters.get("properties") or {}
    for name in parameters.get("required") or []:
        if (properties.get(name) or {}).get("type") == "string":
            return str(name)
    return None


def trigger_arguments(match: TriggerMatch, parameters: dict[str, Any]) -> dict[str, Any]:
    """Named groups become arguments by name; a single unnamed group fills the first
    required string parameter (the plugin contract). ``match`` is RE2's (or ``re``'s)."""
    properties = parameters.get("properties") or {}
    named = {k: v for k, v in match.groupdict().items() if v is not None}
    if named:
        return {key: coerce(value, properties.get(key)) for key, value in named.items()}
    groups = match.groups()
    if len(groups) == 1 and groups[0] is not None:
        target = first_required_string(parameters)
        if target is not None:
            return {target: groups[0]}
    return {}
