"""What plugin code imports: the per-plugin :class:`Context` and the :class:`Result` it returns.

A plugin's ``src/index.py`` defines ``invoke`` (and optionally ``on_event`` and the lifecycle
hooks); the worker calls each with a :class:`Context` as its first argument::

    from deeting_tui.sdk import Context, Result

    def invoke(ctx: Context, tool: str, args: dict) -> Result:
        if tool == "greet":                   # a tool named in llm-tool.yaml
            ctx.progress(0.5, "thinking")     # the chat shows it; extends the deadline
            return Result(data={"greeting": f"Hello, {args['name']}!"},   # for the card
                          text=f"Hello, {args['name']}!")                  # for the model
        raise ValueError(f"no tool {tool!r}")  # the user and the model see this one line

``invoke`` may also be ``async def`` (then Esc cancels it at its current ``await``) and may
return a :class:`Result`, a dict with only ``data``/``text``/``renderer``, a ``str`` (text
only) or ``None``. The whole contract (manifest, scopes, renderers, limits, hooks, testing)
is docs/plugins.md in this repository.

The SDK is deliberately tiny and has no dependency on the kernel (the stream rules it checks
early live in ``rpc/limits.py``, which the kernel enforces again): it runs inside the
sandboxed worker, and everything it can do travels to the kernel as a JSON-RPC notification
through the ``Channel`` the worker hands in. That keeps plugin code testable with a fake
channel: any object with ``notify(method, params)``.
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
from deeting_tui.rpc.protocol import PROGRESS, STREAM, ProgressParams, StreamParams

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
    """A tool's answer: ``data`` for the user's card, ``text`` for the model.

    - ``data``: any JSON value, drawn by ``renderer``; the kernel checks it against that
      renderer's payload schema (``renderers/NAME/schema.json``) and shows an error card,
      not a crash, when it does not fit. ``None``: the card shows ``text``.
    - ``text``: the summary the model reads and ``deeting --script`` prints. Give one even
      with ``data``: a model cannot see the card.
    - ``renderer``: a core renderer's name (``text``, ``markdown``, ``key-value``, ``table``,
      ``chart``, ``weather-cards``, ``search-cards``, ``progress``, ``error``, ``notice``);
      ``None`` uses kimai.json's ``renderer``, and with none there, ``data`` shows as JSON.
    """

    data: Any = None
    text: str | None = None
    renderer: str | None = None


class ResultError(ValueError):
    """A plugin returned something that is not a Result, a result dict, a str or None."""


class Channel(Protocol):
    """How a Context reaches the kernel; the worker implements it over RPC.

    In a unit test, pass any object with this method to record what the plugin sends:
    ``("stream", {topic, payload, renderer})`` and ``("progress", {call, fraction, message})``.
    """

    def notify(self, method: str, params: dict[str, Any]) -> None: ...


class Context:
    """Everything a plugin may touch besides its own code: folders, log, streams, progress.

    One per worker, passed to ``invoke``, ``on_event`` and every hook. Attributes:

    - ``name``, ``version``: the plugin's, from kimai.json.
    - ``data_dir``: a folder of its own for what must last; the same folder across restarts
      and upgrades, removed by uninstall. Memory does not last: a worker may be restarted
      (after a crash, or a sync call the user cancelled) and ``activate`` runs again.
    - ``cache_dir``: a folder of its own for what can be rebuilt. (``TMPDIR`` is a third,
      private one.) All three count towards kimai.json's ``limits.disk_mb``.
    - ``log``: a :class:`logging.Logger` writing to the plugin's log file, as do its stdout
      and stderr; ``deeting plugin info NAME`` shows where it is.

    A plugin needs no permission for any of these; anything else goes through the scopes
    it declares in kimai.json's ``permissions``.
    """

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
        """Send live data to the UI at any time (not only during a call), from any thread.

        A stream is a live view: the chat draws the topic's latest frame as one card updated
        in place, ``--json`` prints a ``stream`` event, other plugins may subscribe to
        ``stream.TOPIC``, and the session keeps only the newest frames of each topic (8, and
        per plugin at most 4 MiB a session). So send the current state, not a growing history::

            ctx.push_stream("build.status", {"text": "3 of 5 steps done"}, renderer="notice")

        - ``topic``: 1 to 128 letters, digits, ``.``, ``_`` or ``-``; a new frame on the same
          topic replaces the card's content.
        - ``payload``: a JSON object of at most ``MAX_STREAM_FRAME_BYTES`` (256 KiB) of JSON,
          with no NaN or infinity, in the shape its renderer expects.
        - ``renderer``: a core renderer's name; ``None`` uses kimai.json's ``renderer``.

        Raises ValueError (or TypeError for a payload that is not a dict) naming the broken
        rule, instead of sending a frame the kernel would drop.
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
        self._channel.notify(STREAM, StreamParams(topic, payload, renderer).to_json())

    def progress(self, fraction: float | None, message: str = "") -> None:
        """Report progress on the call being served; it also extends that call's deadline.

        ``fraction`` is 0 to 1 (clamped), or ``None`` when the amount of work is unknown;
        ``message`` is one short line for the user (``"page 3 of 10"``). Each report starts
        the call's ``limits.call_timeout`` again, so a long job that keeps reporting is not
        cut off while a stuck one still is; it does not extend a lifecycle hook's deadline.
        Call it from the code serving the call (for an async tool, within its task; threads
        started with ``asyncio.to_thread`` carry the call along). Raises ValueError for a
        fraction that is not a number.
        """
        if fraction is not None:
            if not isinstance(fraction, int | float) or math.isnan(fraction):
                raise ValueError("progress: fraction must be a number between 0 and 1, or None")
            fraction = min(1.0, max(0.0, float(fraction)))
        report = ProgressParams(current_call_id.get(), fraction, message)
        self._channel.notify(PROGRESS, report.to_json())


def write_text_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8) so a crash mid-write leaves the old file whole:
    what a plugin keeping state in its data folder should use instead of its own copy."""
    write_bytes_atomic(path, text.encode("utf-8"))


def normalize_result(value: Any) -> dict[str, Any]:
    """Turn whatever ``invoke`` returned into ``{"data", "text", "renderer"}``.

    The worker calls this on every result: a :class:`Result`, a dict with only those three
    keys, a ``str`` (text only) or ``None``. Anything else raises :class:`ResultError`, which
    becomes the call's error. Being strict here gives plugin authors a precise message
    instead of a card that silently shows nothing.
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
