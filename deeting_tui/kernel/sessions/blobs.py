"""Long strings of a session's events, stored once and referenced.

One message routed to a tool is in four events: the user's line, the tool call's arguments,
the result (often twice: its data and its text) and the reply. A megabyte sent to ``/echo``
was stored five times. Here every string of at least ``BLOB_MIN_CHARS`` characters in a
payload (conversation events only: stream frames have caps of their own) is moved to the
``blobs`` table under its SHA-256, stored once whatever refers to it, and the payload keeps
``""`` in its place plus a reference: the path to the string, the hash, and a literal prefix.
The prefix is how the user's ``/echo TEXT`` line and the ``TEXT`` of its arguments share one
blob: a long slash command is split after its name (``"/echo "`` + blob of ``TEXT``).

Pure functions over JSON-like values; session.py does the SQL.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any

import orjson

__all__ = ["BLOB_MIN_CHARS", "Extracted", "extract", "restore"]

#: Shorter strings stay in the payload: a blob row costs more than it saves.
BLOB_MIN_CHARS = 4096

_COMMAND_HEAD = re.compile(r"/[A-Za-z0-9_-]{1,64}\s+")

#: Where a string is in a payload: dict keys and list indexes, from the top.
Path = list[str | int]


class Extracted:
    """A payload with its long strings taken out."""

    def __init__(self, payload: str, refs: str | None, blobs: dict[str, str]) -> None:
        self.payload = payload  # JSON text, "" where each long string was
        self.refs = refs  # JSON: [[path, hash, prefix], …], or None
        self.blobs = blobs  # hash → text


def _long_strings(value: Any) -> list[tuple[Path, str]]:
    found: list[tuple[Path, str]] = []
    pending: list[tuple[Any, Path]] = [(value, [])]
    while pending:  # iterative: a deep plugin result cannot exhaust the stack
        node, path = pending.pop()
        if isinstance(node, str):
            if len(node) >= BLOB_MIN_CHARS:
                found.append((path, node))
        elif isinstance(node, dict):
            pending.extend((item, [*path, key]) for key, item in node.items())
        elif isinstance(node, list | tuple):
            pending.extend((item, [*path, index]) for index, item in enumerate(node))
    return found


def extract(payload: dict[str, Any]) -> Extracted:
    """``payload`` serialised with its long strings replaced by references."""
    found = _long_strings(payload)
    if not found:
        return Extracted(orjson.dumps(payload).decode(), None, {})
    copy = orjson.loads(orjson.dumps(payload))  # never change the caller's (shown) payload
    refs: list[list[Any]] = []
    blobs: dict[str, str] = {}
    for path, text in found:
        head = _COMMAND_HEAD.match(text)
        prefix = head.group() if head else ""
        body = text[len(prefix) :]
        digest = hashlib.sha256(body.encode()).hexdigest()
        blobs[digest] = body
        refs.append([path, digest, prefix])
        _set(copy, path, "")
    return Extracted(orjson.dumps(copy).decode(), orjson.dumps(refs).decode(), blobs)


def restore(payload: dict[str, Any], refs: str, blob: Callable[[str], str | None]) -> None:
    """Put the long strings back into a payload read from the store (in place). A blob gone
    missing (a damaged file) leaves ``""``: the event still reads."""
    for path, digest, prefix in orjson.loads(refs):
        text = blob(digest)
        if text is not None:
            _set(payload, path, prefix + text)


def _set(container: Any, path: Path, value: str) -> None:
    for step in path[:-1]:
        container = container[step]
    container[path[-1]] = value
