"""What plugin code imports: the per-plugin :class:`Context` and the :class:`Result` it returns.

The SDK is deliberately tiny and has no dependency on the kernel (the stream rules it checks
early live in ``rpc/limits.py``, which the kernel enforces): it runs inside the sandboxed
worker, and everything it can do travels to the kernel as a JSON-RPC notification through the
``Channel`` the worker hands in. That keeps plugin code testable with a fake channel.
"""

from __future__ import annotations

import contextvars
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from deeting_tui.atomic import write_bytes_atomic
from deeting_tui.rpc.limits import (
    MAX_STREAM_FRAME_BYTES,
    RENDERER_NAME,
    STREAM_TOPIC,
    StreamFrameError,
    describe,
    encode_payload,
    non_finite_path,
)

__all__ = [
    "Channel",
    "Context",
    "Result",
    "ResultError",
    "normalize_result",
    "write_text_atomic",
]

RESULT_KEYS = frozenset({"data", "text", "renderer"})

# The id of the kernel request being served, so progress() can say which call it extends.
current_call_id: contextvars.ContextVar[int | str | None] = contextvars.ContextVar(
    "deeting_current_call_id", default=None
)


@dataclass
class Result:
    """A tool's answer: ``data`` for the renderer (JSON), ``text`` for the model."""

    data: Any = None
    text: str | None = None
    renderer: str | None = None


class ResultError(ValueError):
    """A plugin returned something that is not a Result, a result dict, a str or None."""


class Channel(Protocol):
    """How a Context reaches the kernel; the worker implements it over RPC."""

    def notify(self, method: str, params: dict[str, Any]) -> None: ...


class Context:
    """Everything a plugin may touch besides its own code: folders, log, streams, progress."""

    def __init__(
        self,
        *,
        name: str,
        version: str,
        data_dir: Path,
        cache_dir: Path,
        channel: Channel,
        log: logging.Logger | None = None,
    ) -> None:
        self.name = name
        self.version = version
        self.data_dir = Path(data_dir)
        self.cache_dir = Path(cache_dir)
        self.log = log or logging.getLogger(f"plugin.{name}")
        self._channel = channel

    def push_stream(
        self, topic: str, payload: Mapping[str, Any], renderer: str | None = None
    ) -> None:
        """Send live data to the UI at any time (not only during a call).

        A stream is a live view: the UI draws its latest frame and the session keeps only its
        last few. One frame's payload is at most ``MAX_STREAM_FRAME_BYTES`` (256 KiB) of JSON;
        send the current state, not a growing history. Raises ValueError (or TypeError for a
        payload that is not a dict) instead of sending a frame the kernel would drop.
        """
        if not isinstance(topic, str) or not STREAM_TOPIC.fullmatch(topic):
            raise ValueError(
                "push_stream: topic must be 1 to 128 letters, digits, '.', '_' or '-', "
                f"not {describe(topic)}"
            )
        if not isinstance(payload, Mapping):
            raise TypeError(f"push_stream: payload must be a dict, not {type(payload).__name__}")
        if renderer is not None and (
            not isinstance(renderer, str) or not RENDERER_NAME.fullmatch(renderer)
        ):
            raise ValueError(
                "push_stream: renderer must be a renderer's name (lowercase letters, digits "
                f"and '-'), not {describe(renderer)}"
            )
        payload = dict(payload)
        try:
            encoded = encode_payload(payload)
        except StreamFrameError as exc:
            raise ValueError(f"push_stream: {exc}") from None
        if b"null" in encoded:  # NaN and infinities are written as null: look for them
            where = non_finite_path(payload)
            if where is not None:
                raise ValueError(
                    f"push_stream: {where} is not a finite number, which JSON cannot hold "
                    "(send None or a string)"
                )
        if len(encoded) > MAX_STREAM_FRAME_BYTES:
            raise ValueError(
                f"push_stream: the payload is {len(encoded):,} bytes of JSON, over the "
                f"{MAX_STREAM_FRAME_BYTES // 1024} KiB limit for one stream frame "
                "(send the current state, not a history)"
            )
        self._channel.notify("stream", {"topic": topic, "payload": payload, "renderer": renderer})

    def progress(self, fraction: float | None, message: str = "") -> None:
        """Report progress on the current call; it also extends that call's deadline."""
        if fraction is not None:
            if not isinstance(fraction, int | float) or math.isnan(fraction):
                raise ValueError("progress: fraction must be a number between 0 and 1, or None")
            fraction = min(1.0, max(0.0, float(fraction)))
        self._channel.notify(
            "progress", {"call": current_call_id.get(), "fraction": fraction, "message": message}
        )


def write_text_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8) so a crash mid-write leaves the old file whole:
    what a plugin keeping state in its data folder should use instead of its own copy."""
    write_bytes_atomic(path, text.encode("utf-8"))


def normalize_result(value: Any) -> dict[str, Any]:
    """Turn whatever ``invoke`` returned into ``{"data", "text", "renderer"}``.

    Being strict here gives plugin authors a precise message instead of a card that
    silently shows nothing.
    """
    if value is None:
        return {"data": None, "text": None, "renderer": None}
    if isinstance(value, Result):
        out = {"data": value.data, "text": value.text, "renderer": value.renderer}
    elif isinstance(value, str):
        out = {"data": None, "text": value, "renderer": None}
    elif isinstance(value, Mapping):
        extra = sorted(str(k) for k in value if k not in RESULT_KEYS)
        if extra:
            raise ResultError(
                f"invoke returned a dict with unknown keys {extra}; "
                "return Result(data=..., text=...) or a dict with only data, text, renderer"
            )
        out = {
            "data": value.get("data"),
            "text": value.get("text"),
            "renderer": value.get("renderer"),
        }
    else:
        raise ResultError(
            f"invoke returned {type(value).__name__}; return a Result, a dict, a str or None"
        )
    if out["text"] is not None and not isinstance(out["text"], str):
        raise ResultError(f"Result.text must be a str, not {type(out['text']).__name__}")
    if out["renderer"] is not None and not isinstance(out["renderer"], str):
        raise ResultError(f"Result.renderer must be a str, not {type(out['renderer']).__name__}")
    return out
