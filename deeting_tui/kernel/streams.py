"""Stream frames from plugins, checked where they arrive; refusals told once, not per frame.

The worker's pipe is the trust boundary: whatever the SDK checked in the plugin, the kernel
checks again here (``rpc/limits.py`` has the rules). A frame that breaks one is dropped before
anything sees it — not shown, not published, not stored — and said once: one line in the
plugin's log and one notice for the user, naming the rule. Further refusals for the same
reason within ``window`` seconds are only counted, and the count goes to the log when the
window ends, so a plugin sending a thousand bad frames a second costs the user one notice a
minute and its log one line a minute.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deeting_tui.errors import Fix, Hint
from deeting_tui.rpc.limits import (
    MAX_STREAM_FRAME_BYTES,
    RENDERER_NAME,
    STREAM_TOPIC,
    StreamFrameError,
    describe,
    encode_json,
)

log = logging.getLogger("deeting.streams")

#: How long refusals of one kind from one plugin are counted after the one that was told.
REPORT_WINDOW_S = 60.0

#: Tells the user (plugin, message, the fix); the kernel makes it a plugin notice.
Notice = Callable[[str, str, Hint | None], None]


@dataclass(frozen=True, slots=True)
class AdmittedFrame:
    """A frame that passed: the event every listener sees, and its JSON for the session."""

    event: dict[str, Any]  # plugin, topic, payload, renderer
    encoded: str
    size: int  # bytes of ``encoded``

    @property
    def topic(self) -> str:
        topic: str = self.event["topic"]
        return topic


@dataclass(slots=True)
class _Report:
    """Refusals of one kind from one plugin: the first was told, the rest are counted."""

    message: str
    until: float
    more: int = 0
    timer: asyncio.TimerHandle | None = field(default=None, repr=False)


class StreamGate:
    """Admits well-formed frames of at most ``MAX_STREAM_FRAME_BYTES``; reports the rest."""

    def __init__(
        self,
        *,
        notice: Notice,
        log_path: Callable[[str], Path],
        window: float = REPORT_WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._notice = notice
        self._log_path = log_path
        self._window = window
        self._clock = clock
        self._reports: dict[tuple[str, str], _Report] = {}

    def admit(
        self, plugin: str, params: dict[str, Any], default_renderer: str | None
    ) -> AdmittedFrame | None:
        """The frame as an event (None when refused: reported, and nothing else happens)."""
        try:
            return _check(plugin, params, default_renderer)
        except StreamFrameError as exc:
            self._refuse(plugin, exc)
            return None

    def close(self) -> None:
        """Write the counts still open to the logs (the kernel is shutting down)."""
        for key in list(self._reports):
            self._summarise(key)

    # -- reporting -------------------------------------------------------------------------

    def _refuse(self, plugin: str, error: StreamFrameError) -> None:
        key = (plugin, error.reason)
        report = self._reports.get(key)
        now = self._clock()
        if report is not None and now < report.until:
            report.more += 1
            return
        if report is not None:  # a window ended without its timer (no running loop)
            self._summarise(key)
        message = f"stream frame dropped: {error}"
        self._write_log(plugin, message)
        self._notice(
            plugin,
            f"{plugin}: {message}; more in the next {self._window:g} s are only counted in "
            f"its log ({self._log_path(plugin)}); disabling it stops them",
            Hint(Fix.DISABLE, plugin),
        )
        report = self._reports[key] = _Report(str(error), now + self._window)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        report.timer = loop.call_later(self._window, self._summarise, key)

    def _summarise(self, key: tuple[str, str]) -> None:
        report = self._reports.pop(key, None)
        if report is None:
            return
        if report.timer is not None:
            report.timer.cancel()
        if report.more:
            self._write_log(
                key[0],
                f"{report.more} more stream frame(s) dropped in {self._window:g} s "
                f"(the last reason: {report.message})",
            )

    def _write_log(self, plugin: str, message: str) -> None:
        """One line in the plugin's log, where its own warnings are (same format)."""
        now = time.time()
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
        line = f"{stamp},{int(now % 1 * 1000):03d} WARNING deeting.kernel: {message}\n"
        path = self._log_path(plugin)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)
        except OSError as exc:
            log.warning("cannot write to %s: %s (%s)", path, exc, message)


def _check(plugin: str, params: dict[str, Any], default_renderer: str | None) -> AdmittedFrame:
    topic, payload = params.get("topic"), params.get("payload")
    if not isinstance(topic, str) or not STREAM_TOPIC.fullmatch(topic):
        raise StreamFrameError(
            "bad-topic",
            f"its topic must be 1 to 128 letters, digits, '.', '_' or '-', not {describe(topic)}",
        )
    renderer = params.get("renderer")
    if renderer is not None and (
        not isinstance(renderer, str) or not RENDERER_NAME.fullmatch(renderer)
    ):
        raise StreamFrameError(
            "bad-renderer", f"its renderer is not a renderer's name: {describe(renderer)}"
        )
    if not isinstance(payload, dict):
        raise StreamFrameError(
            "not-object", f"its payload must be a JSON object, not {_json_type(payload)}"
        )
    event = {
        "plugin": plugin,
        "topic": topic,
        "payload": payload,
        "renderer": renderer if renderer is not None else default_renderer,
    }
    encoded = encode_json(event)
    # The payload's own size, as the SDK measured it: the envelope around it is known.
    envelope = len(encode_json({**event, "payload": None})) - len(b"null")
    payload_size = len(encoded) - envelope
    if payload_size > MAX_STREAM_FRAME_BYTES:
        raise StreamFrameError(
            "too-large",
            f"its payload is {payload_size:,} bytes of JSON, over the "
            f"{MAX_STREAM_FRAME_BYTES // 1024} KiB limit for one stream frame",
        )
    return AdmittedFrame(event, encoded.decode(), len(encoded))


def _json_type(value: Any) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number" if isinstance(value, int | float) else "that")
