"""The kernel's events, typed: one frozen dataclass per kind.

The kernel emits these to its listeners (the chat, ``deeting --script``, tests), stores the
conversation's kinds in the session, and front ends dispatch on the class. ``to_json()`` is
the event as a JSON object, exactly the dict of before the events were typed, key order
included: ``deeting --script --json`` prints it byte for byte as before (DESIGN: the
``--json`` contract, pinned by tests/integration/test_script_json_golden.py), and the
session store keeps it (less ``type`` and ``session_id``, which are columns).

:func:`from_json` reads one back (a stored event, or one a test writes by hand). A key this
version does not know (a session written by another version) is kept in ``extra`` and written
back after the known ones, so reading and writing an event never loses what it held; a known
key of the wrong JSON type raises :class:`EventFormatError`, which says which key and why.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from deeting_tui.errors import Hint

__all__ = [
    "EVENT_TYPES",
    "ErrorEvent",
    "Event",
    "EventFormatError",
    "PluginNotice",
    "Progress",
    "Reply",
    "ReplyDelta",
    "StreamFrame",
    "ToolCall",
    "ToolResult",
    "UserMessage",
    "from_json",
    "from_stored",
]


class EventFormatError(ValueError):
    """An event's JSON is not one this version can read (a damaged or foreign session)."""


def _json(
    *types: type, omit: bool = False, read: Callable[[Any], Any] | None = None
) -> dict[str, Any]:
    """A field's metadata: the JSON types its key may hold (none: any), whether the key is
    left out of the JSON while the field has its default (keys there only sometimes), and
    ``read``, for a field that reads its own JSON leniently (a ``hint``: a fix that cannot be
    read never stops its message being shown)."""
    return {"types": types, "omit": omit, "read": read}


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """What every kernel event is: its ``type`` (the JSON's), and whether the session keeps it.

    ``extra``: keys of a stored event this version does not know, kept as they were.
    """

    TYPE: ClassVar[str] = ""
    STORED: ClassVar[bool] = False

    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def to_json(self) -> dict[str, Any]:
        """The event as a JSON object: ``type`` first, then its keys in their fixed order."""
        out: dict[str, Any] = {"type": self.TYPE}
        for spec in dataclasses.fields(self):
            if spec.name == "extra":
                continue
            value = getattr(self, spec.name)
            if spec.metadata.get("omit") and value == spec.default:
                continue
            out[spec.name] = value.as_data() if isinstance(value, Hint) else value
        for key, value in self.extra.items():
            out.setdefault(key, value)
        return out

    def to_stored(self) -> dict[str, Any]:
        """What the session stores: the JSON less ``type`` and ``session_id`` (its columns)."""
        out = self.to_json()
        del out["type"]
        out.pop("session_id", None)
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class UserMessage(Event):
    """A line the user sent (as the kernel stores it: stripped)."""

    TYPE: ClassVar[str] = "user"
    STORED: ClassVar[bool] = True
    session_id: str = field(default="", metadata=_json(str))
    text: str = field(default="", metadata=_json(str))


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply(Event):
    """The answer to a message: a model's (with the ``provider`` and ``model`` that gave it)
    or a direct or triggered call's summary."""

    TYPE: ClassVar[str] = "reply"
    STORED: ClassVar[bool] = True
    session_id: str = field(default="", metadata=_json(str))
    text: str = field(default="", metadata=_json(str))
    provider: str | None = field(default=None, metadata=_json(str, omit=True))
    model: str | None = field(default=None, metadata=_json(str, omit=True))
    hint: Hint | None = field(default=None, metadata=_json(dict, omit=True, read=Hint.from_data))
    #: A model's reply: the tool specs its model call carried (``sent`` of ``total``) and
    #: their estimated tokens against those of every spec (llm/tool_budget.py).
    tool_specs: dict[str, int] | None = field(default=None, metadata=_json(dict, omit=True))


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplyDelta(Event):
    """A piece of a reply as the model streams it; shown, not stored (the reply is)."""

    TYPE: ClassVar[str] = "reply_delta"
    session_id: str = field(default="", metadata=_json(str))
    text: str = field(default="", metadata=_json(str))
    provider: str | None = field(default=None, metadata=_json(str, omit=True))
    model: str | None = field(default=None, metadata=_json(str, omit=True))


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCall(Event):
    """A tool call, recorded before it is sent to the plugin's worker."""

    TYPE: ClassVar[str] = "tool_call"
    STORED: ClassVar[bool] = True
    session_id: str = field(default="", metadata=_json(str))
    call_id: str = field(default="", metadata=_json(str))
    tool: str = field(default="", metadata=_json(str))
    plugin: str | None = field(default=None, metadata=_json(str))
    args: dict[str, Any] = field(default_factory=dict, metadata=_json(dict))


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolResult(Event):
    """What a call came back with; ``cancelled`` when its caller gave up on it (Esc), and
    ``renderer_error`` when the data does not fit its renderer's schema."""

    TYPE: ClassVar[str] = "tool_result"
    STORED: ClassVar[bool] = True
    session_id: str = field(default="", metadata=_json(str))
    call_id: str = field(default="", metadata=_json(str))
    tool: str = field(default="", metadata=_json(str))
    plugin: str | None = field(default=None, metadata=_json(str))
    ok: bool = field(default=False, metadata=_json(bool))
    cancelled: bool = field(default=False, metadata=_json(bool, omit=True))
    data: Any = field(default=None, metadata=_json())
    text: str | None = field(default=None, metadata=_json(str))
    renderer: str | None = field(default=None, metadata=_json(str))
    error: str | None = field(default=None, metadata=_json(str))
    duration_ms: float | None = field(default=None, metadata=_json(int, float))
    renderer_error: str | None = field(default=None, metadata=_json(str, omit=True))


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorEvent(Event):
    """Something failed; ``plugin`` when a plugin's call did, ``line`` and ``input`` for a
    script line that could not be sent (its text as written, bytes spelled ``\\xff``)."""

    TYPE: ClassVar[str] = "error"
    STORED: ClassVar[bool] = True
    session_id: str = field(default="", metadata=_json(str))
    message: str = field(default="", metadata=_json(str))
    plugin: str | None = field(default=None, metadata=_json(str, omit=True))
    line: int | None = field(default=None, metadata=_json(int, omit=True))
    input: str | None = field(default=None, metadata=_json(str, omit=True))
    hint: Hint | None = field(default=None, metadata=_json(dict, omit=True, read=Hint.from_data))


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamFrame(Event):
    """Live data a plugin pushed (``ctx.push_stream``), checked by streams.py; the session
    keeps each stream's latest frames."""

    TYPE: ClassVar[str] = "stream"
    STORED: ClassVar[bool] = True
    session_id: str = field(default="", metadata=_json(str))
    plugin: str = field(default="", metadata=_json(str))
    topic: str = field(default="", metadata=_json(str))
    payload: Any = field(default=None, metadata=_json())  # a JSON object, as streams.py admits
    renderer: str | None = field(default=None, metadata=_json(str))


@dataclass(frozen=True, slots=True, kw_only=True)
class Progress(Event):
    """A running call's progress (``ctx.progress``); shown, not stored: a progress bar is
    only true while its call runs."""

    TYPE: ClassVar[str] = "progress"
    session_id: str = field(default="", metadata=_json(str))
    call_id: str = field(default="", metadata=_json(str))
    tool: str = field(default="", metadata=_json(str))
    plugin: str | None = field(default=None, metadata=_json(str))
    fraction: float | None = field(default=None, metadata=_json(int, float))
    message: str = field(default="", metadata=_json(str))


@dataclass(frozen=True, slots=True, kw_only=True)
class PluginNotice(Event):
    """A plugin crashed, restarted, was upgraded or disabled elsewhere: said, not stored.
    Not about one session, so it has no ``session_id``."""

    TYPE: ClassVar[str] = "plugin_notice"
    plugin: str | None = field(default=None, metadata=_json(str))
    message: str = field(default="", metadata=_json(str))
    hint: Hint | None = field(default=None, metadata=_json(dict, omit=True, read=Hint.from_data))


EVENT_TYPES: dict[str, type[Event]] = {
    cls.TYPE: cls
    for cls in (
        UserMessage,
        Reply,
        ReplyDelta,
        ToolCall,
        ToolResult,
        ErrorEvent,
        StreamFrame,
        Progress,
        PluginNotice,
    )
}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, float) and not value.is_integer():
        return "a fraction"
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string"}
    return names.get(type(value), "an array" if isinstance(value, list) else "an object")


def _wanted(types: tuple[type, ...]) -> str:
    if float in types:
        return "a number"
    names = {str: "a string", bool: "a boolean", int: "a whole number", dict: "an object"}
    return " or ".join(names.get(t, t.__name__) for t in types)


def _check(kind: object, key: str, value: Any, types: tuple[type, ...]) -> Any:
    if not types or value is None:
        return value
    # JSON true is not a number, though Python's bool is an int.
    if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
        raise EventFormatError(
            f"'{kind}' event: '{key}' must be {_wanted(types)}, not {_json_type(value)}"
        )
    return value


def from_json(data: Mapping[str, Any]) -> Event:
    """The typed event of a JSON object (``to_json``'s inverse); EventFormatError if its
    ``type`` is unknown or a known key holds the wrong JSON type."""
    if not isinstance(data, Mapping):
        raise EventFormatError(f"an event must be a JSON object, not {_json_type(data)}")
    kind = data.get("type")
    cls = EVENT_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise EventFormatError(f"unknown event type {kind!r}")
    values: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    known = {spec.name: spec for spec in dataclasses.fields(cls) if spec.name != "extra"}
    for key, value in data.items():
        spec = known.get(key)
        if key == "type":
            continue
        if spec is None:
            extra[key] = value
            continue
        if value is None and spec.default is not None and not spec.metadata.get("omit"):
            raise EventFormatError(f"'{kind}' event: '{key}' must not be null")
        if (read := spec.metadata.get("read")) is not None:
            values[key] = read(value)
            continue
        values[key] = _check(kind, key, value, spec.metadata.get("types", ()))
    return cls(**values, extra=extra)


def from_stored(kind: str, session_id: str, payload: Mapping[str, Any]) -> Event:
    """A stored event (its kind and session are columns, the rest is its payload)."""
    return from_json({"type": kind, "session_id": session_id, **payload})
