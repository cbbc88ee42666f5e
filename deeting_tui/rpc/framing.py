"""NDJSON framing: one JSON-RPC message per line, with a hard size limit per message.

orjson never emits a raw newline inside a document (it escapes them in strings), so a newline
is an unambiguous frame boundary. The buffer never holds more than the limit: an oversized
frame is skipped up to its newline and reported once, so a flood cannot exhaust memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Oversized:
    """Marks a frame that exceeded the limit; its content was dropped."""

    size: int


def encode(message: dict[str, Any]) -> bytes:
    """Serialise one message as a frame. Raises TypeError for non-JSON values."""
    return orjson.dumps(message) + b"\n"


class LineBuffer:
    """Splits a byte stream into frames, enforcing ``max_bytes`` per frame."""

    __slots__ = ("_discarded", "_discarding", "_parts", "_pending", "max_bytes")

    def __init__(self, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._parts: list[bytes] = []
        self._pending = 0
        self._discarding = False
        self._discarded = 0

    def feed(self, data: bytes) -> list[bytes | Oversized]:
        if (
            not self._parts
            and not self._discarding
            and data[:1] == b"{"
            and data.find(b"\n") == len(data) - 1
            and len(data) <= self.max_bytes
        ):
            return [data[:-1]]  # the usual case: exactly one whole message
        frames: list[bytes | Oversized] = []
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                self._keep(data[start:])
                return frames
            piece = data[start:end]
            if self._discarding:
                frames.append(Oversized(self._discarded + len(piece)))
                self._discarding = False
                self._discarded = 0
            elif self._pending + len(piece) > self.max_bytes:
                frames.append(Oversized(self._pending + len(piece)))
                self._parts.clear()
                self._pending = 0
            else:
                if self._parts:
                    self._parts.append(piece)
                    piece = b"".join(self._parts)
                    self._parts.clear()
                    self._pending = 0
                if piece.strip():
                    frames.append(piece)
            start = end + 1

    def _keep(self, rest: bytes) -> None:
        if not rest:
            return
        if self._discarding:
            self._discarded += len(rest)
        elif self._pending + len(rest) > self.max_bytes:
            self._discarding = True
            self._discarded = self._pending + len(rest)
            self._parts.clear()
            self._pending = 0
        else:
            self._parts.append(rest)
            self._pending += len(rest)
