"""What a session holds, checked and encoded before it is stored: its events and its title.

An event is one of a few kinds (EVENT_KINDS) with a JSON object as payload; encoding checks
both and serialises the payload once, outside the store's lock, so the journal can hand a
burst of ready rows to one transaction. A conversation event's long strings are taken out to
be stored once (blobs.py); a stream frame carries its plugin, topic and size for the caps
(retention.py). A title is a one-line label, neutralised for the terminal. Pure: no database.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson

from deeting_tui.terminal_text import one_line

from .blobs import extract

__all__ = [
    "CONVERSATION_KINDS",
    "EVENT_KINDS",
    "TITLE_MAX",
    "EncodedEvent",
    "SessionEvent",
    "check_kind",
    "clean_title",
    "encode",
    "encode_event",
]


EVENT_KINDS = ("user", "reply", "tool_call", "tool_result", "stream", "error")
#: What a conversation is made of, without plugins' live data: a plugin streaming once a second
#: stores 3,600 frames an hour, which neither the model's history nor a resumed chat shows.
CONVERSATION_KINDS = tuple(kind for kind in EVENT_KINDS if kind != "stream")
_KINDS = frozenset(EVENT_KINDS)

#: A title longer than this is cut (it is a one-line label, not a note).
TITLE_MAX = 200


@dataclass(frozen=True, slots=True)
class SessionEvent:
    seq: int
    session_id: str
    kind: str
    ts: float
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class EncodedEvent:
    """An event checked and serialised (:func:`encode_event`), ready to be stored.

    A stream frame also carries its plugin and topic (which frames replace which) and its
    size in bytes; :func:`encode_event` fills them in from the payload.
    """

    session_id: str
    kind: str
    ts: float
    payload: str
    plugin: str = ""
    topic: str = ""
    size: int = 0
    refs: str | None = None  # where its long strings were taken out (blobs.py)
    blobs: tuple[tuple[str, str], ...] = ()  # (hash, text) of each

    def __post_init__(self) -> None:
        if self.kind == "stream" and self.size <= 0:  # what the caps count, never unknown
            object.__setattr__(self, "size", len(self.payload.encode()))


def check_kind(kind: str) -> None:
    if kind not in _KINDS:
        raise ValueError(f"unknown event kind {kind!r}: expected one of {', '.join(EVENT_KINDS)}")


def clean_title(title: str | None) -> str | None:
    """A title fit for a one-line label: neutralised for the terminal (escape sequences and
    bidi overrides go, other controls show as U+FFFD: see ``deeting_tui.terminal_text``),
    whitespace runs (tabs, newlines) become one space, at most ``TITLE_MAX`` characters are
    kept; None when nothing is left (the first message shows)."""
    if title is None:
        return None
    cleaned = one_line(title)[:TITLE_MAX].rstrip()
    return cleaned or None


def encode(kind: str, payload: dict[str, Any]) -> str:
    """Check an event and serialise its payload; raises for a bad kind or non-JSON values."""
    check_kind(kind)
    if not isinstance(payload, dict):
        raise TypeError(f"event payload must be a dict, not {type(payload).__name__}")
    return orjson.dumps(payload).decode()  # TypeError for values that are not JSON


def encode_event(
    session_id: str, kind: str, payload: dict[str, Any], ts: float | None = None
) -> EncodedEvent:
    """:func:`encode`, as an event ready to be stored (now, unless ``ts`` says when). A
    conversation event's long strings are taken out, to be stored once (blobs.py)."""
    when = time.time() if ts is None else ts
    if kind != "stream":
        check_kind(kind)
        if not isinstance(payload, dict):
            raise TypeError(f"event payload must be a dict, not {type(payload).__name__}")
        out = extract(payload)  # TypeError for values that are not JSON
        return EncodedEvent(
            session_id, kind, when, out.payload, refs=out.refs, blobs=tuple(out.blobs.items())
        )
    text = encode(kind, payload)
    plugin, topic = payload.get("plugin"), payload.get("topic")
    return EncodedEvent(
        session_id,
        kind,
        when,
        text,
        plugin if isinstance(plugin, str) else "",
        topic if isinstance(topic, str) else "",
    )
