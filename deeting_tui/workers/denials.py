"""Telling the user, once, what a plugin was refused — and keeping it in the plugin's log.

Every denial (the worker's guard refusing an action its grants do not cover, the proxy
refusing a host) and every bound a plugin hits must reach the plugin's log with the scope or
limit that stopped it, and the user must see one line naming it: a plugin that swallows its
own PermissionError must not hide from the user what it tried. A hostile plugin can be
refused a thousand times a second, so the user hears each distinct refusal once per
``quiet_seconds`` and at most ``burst`` of them per minute; the log gets one line per
reported refusal plus a count of those left out, never an unbounded stream.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from deeting_tui.errors import Hint
from deeting_tui.terminal_text import one_line

#: Longest refusal message kept (a plugin's text may be part of it).
MAX_MESSAGE = 400


class DenialReporter:
    """One plugin's refusals → its log file and, rate-limited, the user."""

    def __init__(
        self,
        plugin: str,
        log_path: Path,
        notify: Callable[[str, Hint | None], None] | None,
        *,
        quiet_seconds: float = 60.0,
        burst: int = 5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.plugin = plugin
        self.log_path = log_path
        self._notify = notify
        self._quiet = quiet_seconds
        self._burst = burst
        self._clock = clock
        self._last_said: dict[str, float] = {}
        self._recent: deque[float] = deque()
        self.left_out = 0
        #: The proxy's latest refusals (time, message), every one, not rate-limited: a failed
        #: call is told the reason, which the plugin's HTTP client may have reduced to "403".
        self._network: deque[tuple[float, str]] = deque(maxlen=8)

    def now(self) -> float:
        return self._clock()

    def network_refused(self, message: str) -> bool:
        """The proxy refused a host: remember it for the failing call, then report it."""
        self._network.append((self._clock(), one_line(str(message))[:MAX_MESSAGE]))
        return self.refused(message)

    def network_refusal_since(self, since: float) -> str | None:
        """The newest proxy refusal at or after ``since`` (a call's start), if any."""
        for when, message in reversed(self._network):
            if when >= since:
                return message
        return None

    def refused(self, message: str, *, log: bool = True, hint: Hint | None = None) -> bool:
        """Report one refusal; True when the user was told. ``log=False`` when the worker
        already wrote it to the plugin's log itself (its guard does); ``hint``: the fix (a
        grant), which the front end the user reads phrases."""
        message = one_line(str(message))[:MAX_MESSAGE]
        now = self._clock()
        while self._recent and self._recent[0] <= now - 60.0:
            self._recent.popleft()
        last = self._last_said.get(message)
        if (last is not None and now - last < self._quiet) or len(self._recent) >= self._burst:
            self.left_out += 1
            return False
        if len(self._last_said) > 256:  # a plugin inventing new messages cannot grow this
            self._last_said.clear()
        self._last_said[message] = now
        self._recent.append(now)
        if log:
            self._append(f"denied: {message}")
        if self.left_out:
            self._append(f"({self.left_out} more refusals not repeated here)")
            self.left_out = 0
        if self._notify is not None:
            self._notify(message, hint)
        return True

    def _append(self, line: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        with contextlib.suppress(OSError):
            fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, f"{stamp} WARNING deeting.kernel: {line}\n".encode())
            finally:
                os.close(fd)
