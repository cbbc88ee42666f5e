"""Load the bundled JSON Schemas and turn jsonschema's errors into sentences a person can act on.

jsonschema's own messages quote whole instances and name keywords ("Additional properties are
not allowed"); plugin authors need the field and the fix. Fields use a JSON-path-ish notation
(``permissions[1]``, ``trigger.regex``, ``[0].parameters``) that every checker shares.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator, ValidationError  # type: ignore[import-untyped, unused-ignore]

__all__ = ["field_path", "human_errors", "load_schema", "type_name", "validator"]

_JSON_TYPES = {
    dict: "an object",
    list: "a list",
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    type(None): "null",
}
_TYPE_WORDS = {
    "object": "an object",
    "array": "a list",
    "string": "a string",
    "boolean": "a boolean (true or false)",
    "integer": "an integer",
    "number": "a number",
    "null": "null",
}


@cache
def load_schema(name: str) -> dict[str, Any]:
    """A bundled schema by file name; package data, so it works from a wheel or a zipapp."""
    text = resources.files("deeting_tui.plugin.schemas").joinpath(name).read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def validator(name: str, ref: str | None = None) -> Draft202012Validator:
    """A validator for a bundled schema, or for one of its ``$defs`` when ``ref`` is given."""
    schema = load_schema(name)
    if ref is not None:
        schema = {"$defs": schema["$defs"], "$ref": ref}
    return Draft202012Validator(schema)


def field_path(parts: Iterable[str | int], prefix: str = "") -> str:
    """``("trigger", "regex")`` → ``trigger.regex``; ``(0, "parameters")`` → ``[0].parameters``."""
    text = prefix
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def human_errors(errors: Iterable[ValidationError], prefix: str = "") -> Iterator[tuple[str, str]]:
    """Yield ``(field, message)`` for each error, in document order."""
    seen: set[tuple[str, str]] = set()
    for error in sorted(errors, key=_document_order):
        field = field_path(error.absolute_path, prefix)
        for message in _messages(error):
            if (field, message) not in seen:
                seen.add((field, message))
                yield field, message


def _document_order(error: ValidationError) -> list[tuple[int, int | str]]:
    return [(0, p) if isinstance(p, int) else (1, p) for p in error.absolute_path]


def _messages(error: ValidationError) -> list[str]:
    """jsonschema reports all unknown (or missing) keys of an object as one error each time."""
    if error.validator == "additionalProperties":
        return [f"unknown key {key!r}{_suggest(error.schema)}" for key in _unknown_keys(error)]
    if error.validator == "required" and isinstance(error.instance, dict):
        return [
            f"{key!r} is required" for key in error.validator_value if key not in error.instance
        ]
    return [_message(error)]


def _unknown_keys(error: ValidationError) -> list[str]:
    known = error.schema.get("properties", {})
    return [key for key in error.instance if key not in known]


def _suggest(schema: dict[str, Any]) -> str:
    """Most unknown keys are typos; naming the allowed ones is the quickest fix."""
    allowed = [k for k in schema.get("properties", {}) if not k.startswith("$")]
    return f" (allowed: {', '.join(allowed)})" if allowed else ""


def _message(error: ValidationError) -> str:
    kind, value, schema = error.validator, error.instance, error.schema
    expected = error.validator_value
    custom = schema.get("x-message")
    if custom and kind in ("pattern", "minLength", "minimum", "maximum"):
        return str(custom).replace("{value}", repr(value))
    if kind == "type":
        wanted = expected if isinstance(expected, list) else [expected]
        words = " or ".join(_TYPE_WORDS.get(str(w), str(w)) for w in wanted)
        return f"must be {words}, not {type_name(value)}"
    if kind in ("const", "enum"):
        choices = [expected] if kind == "const" else list(expected)
        return f"must be {' or '.join(repr(c) for c in choices)}, not {value!r}"
    if kind == "minimum":
        return f"must be at least {expected}, not {value!r}"
    if kind == "maximum":
        return f"must be at most {expected}, not {value!r}"
    if kind == "exclusiveMinimum":
        return f"must be more than {expected}, not {value!r}"
    if kind == "exclusiveMaximum":
        return f"must be less than {expected}, not {value!r}"
    if kind == "minLength":
        return "must not be empty"
    if kind == "pattern":
        return f"{value!r} does not match {expected!r}"
    return str(error.message)


def type_name(value: object) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)
