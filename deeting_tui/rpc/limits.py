"""What one stream frame may be: checked by the SDK (early, in the plugin) and by the kernel.

The pipe is the trust boundary, so the kernel enforces every rule here on what arrives; the SDK
applies the same rules before sending, so a plugin author gets a precise exception at the
``push_stream`` call instead of a frame that silently never shows.

One frame is capped at :data:`MAX_STREAM_FRAME_BYTES` of serialised payload. A stream is a live
view (a chart, a status card) redrawn at most 30 times a second and stored as its latest state:
256 KiB holds a table of a few thousand rows or a chart of tens of thousands of points, far
more than a terminal card can show, while frames of the RPC limit (16 MiB, sized for tool
results that carry a screenshot or a large table) would let one plugin push hundreds of MiB
a minute through the kernel and into the session history.
"""

from __future__ import annotations

import math
import re
from typing import Any

import orjson

__all__ = [
    "MAX_DEPTH",
    "MAX_STREAM_FRAME_BYTES",
    "RENDERER_NAME",
    "STREAM_TOPIC",
    "StreamFrameError",
    "describe",
    "encode_json",
    "encode_payload",
    "non_finite_path",
]

MAX_STREAM_FRAME_BYTES = 256 * 1024
#: A stream topic: it becomes the bus topic ``stream.TOPIC`` and a card's title.
STREAM_TOPIC = re.compile(r"[A-Za-z0-9_.-]{1,128}")
#: A renderer's name, as kimai.json's ``renderer`` field spells it.
RENDERER_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
#: How deeply a payload may nest: orjson serialises at most 254 levels, and the RPC message
#: holds a payload two levels down.
MAX_DEPTH = 252


class StreamFrameError(ValueError):
    """A frame breaks a rule; ``reason`` is a short key (reports of the same reason are
    counted together), the message says what is wrong in words."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def encode_payload(payload: Any) -> bytes:
    """The payload as JSON bytes; StreamFrameError when it is not a JSON object or too deep.

    Size is the caller's check: the SDK and the kernel measure different envelopes.
    """
    if not isinstance(payload, dict):
        raise StreamFrameError(
            "not-object", f"the payload must be a JSON object, not {type(payload).__name__}"
        )
    # Encoded as deep as the RPC message holds it, so what passes here passes the pipe.
    return encode_json([[payload]])[2:-2]


def encode_json(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError as exc:  # orjson.JSONEncodeError is a TypeError
        if "Recursion limit" in str(exc):
            raise StreamFrameError(
                "too-deep", f"the payload is nested more than {MAX_DEPTH} levels deep"
            ) from None
        raise StreamFrameError("not-json", f"the payload is not JSON: {exc}") from None


def non_finite_path(value: Any, path: str = "payload") -> str | None:
    """Where ``value`` holds a NaN or an infinity (JSON has neither: orjson would quietly
    write null), or None. Walks the whole value: call it only when the encoding holds a
    ``null`` (see the SDK), which every such value turns into."""
    if isinstance(value, float):
        return None if math.isfinite(value) else path
    if isinstance(value, dict):
        for key, item in value.items():
            found = non_finite_path(item, f"{path}[{key!r}]")
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = non_finite_path(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def describe(value: Any, limit: int = 40) -> str:
    """A bad value, quoted and cut, safe to put in a one-line message (repr escapes control
    characters)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
