"""Keys under a stream flood: key-press latency in the chat while a plugin streams to it.

In a child process on an 80x24 pty, ``DeetingApp`` runs with Textual's real terminal driver
and the bench-streamer plugin. :class:`KeyProbe` presses keys into the prompt from a thread,
as the driver does, and times each to the prompt's value changing: first with nothing
streaming (the baseline), then while the plugin pushes N updates over S seconds to the
chat's live card. The child is ``python -m bench.ui --flood-child``.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import re
import struct
import sys
import tempfile
import termios
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from .common import BENCH_DIR, child_env, closing_fds, percentile_ms, reap, spawn_child
from .ui_launch import COLUMNS, ROWS, install_plugin, read_until, terminal_env

if TYPE_CHECKING:
    from .ui import UiSizes

__all__ = ["Flood", "KeyProbe", "Keys", "flood_child", "flood_figures"]

STREAMER_PLUGIN = BENCH_DIR / "plugins" / "streamer"
STREAMER = "bench-streamer"


@dataclass
class Keys:
    """Key-press to prompt-value-changed latencies, in seconds."""

    sent: int
    samples: list[float]

    def as_json(self) -> dict[str, Any]:
        return {
            "keys_sent": self.sent,
            "keys_handled": len(self.samples),
            "p50_ms": round(percentile_ms(self.samples, 50), 3),
            "p95_ms": round(percentile_ms(self.samples, 95), 3),
            "max_ms": round(percentile_ms(self.samples, 100), 3),
        }


@dataclass
class Flood:
    updates: int  # asked of the plugin
    seconds: float
    seen: int  # stream events that reached the UI
    span_s: float  # first to last of them
    frames: int  # frames of the live card written to the terminal
    idle: Keys
    flooded: Keys

    @property
    def rate(self) -> float:
        return (self.seen - 1) / self.span_s if self.span_s > 0 else float(self.seen)

    def as_json(self) -> dict[str, Any]:
        return {
            "updates_asked": self.updates,
            "seconds_asked": self.seconds,
            "updates_seen": self.seen,
            "updates_per_s": round(self.rate, 1),
            "card_frames_painted": self.frames,
            "card_frames_per_s": round(self.frames / self.span_s, 1) if self.span_s > 0 else 0,
            "keys_idle": self.idle.as_json(),
            "keys_flood": self.flooded.as_json(),
        }


# -- keys under a flood -----------------------------------------------------------------------


def flood_figures(sizes: UiSizes) -> Flood:
    """Install the streamer in a fresh home; run :func:`flood_child` in a child on an 80x24
    pty, with Textual's real terminal driver, so frames are encoded and written as on a
    terminal (we read and discard them); the child writes its figures to a file."""
    with tempfile.TemporaryDirectory(prefix="deeting-bench-ui-") as tmp:
        home = Path(tmp) / "home"
        install_plugin(home, STREAMER_PLUGIN)
        report = Path(tmp) / "flood.json"
        args = [
            sys.executable, "-m", "bench.ui", "--flood-child", str(home),
            str(sizes.flood_updates), str(sizes.flood_seconds), str(sizes.key_interval),
            str(report),
        ]  # fmt: skip
        env = terminal_env(home)
        env["PYTHONPATH"] = child_env()["PYTHONPATH"]  # the child runs `python -m bench.ui`
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
        with closing_fds(master):
            try:
                process = spawn_child(args, env=env, stdin=slave, stdout=slave, stderr=slave)
            finally:
                os.close(slave)
            output = bytearray()
            limit = 120 + 3 * sizes.flood_seconds
            try:
                read_until(master, output, lambda: False, timeout=limit)
            except EOFError:
                pass  # the child is done with its terminal
            except TimeoutError:
                raise RuntimeError(f"the flood run took longer than {limit:g} s") from None
            finally:
                reap(process, timeout=15.0)
        if process.returncode != 0 or not report.exists():
            tail = output[-1500:].decode(errors="replace")
            raise RuntimeError(f"the flood run exited {process.returncode}: {tail!r}")
        figures = orjson.loads(report.read_bytes())
    # The card's title holds the update's number: distinct numbers drawn = frames painted.
    titles = re.findall(rb"flood (\d+)/%d" % sizes.flood_updates, bytes(output))
    return Flood(
        updates=sizes.flood_updates,
        seconds=sizes.flood_seconds,
        seen=figures["seen"],
        span_s=figures["span_s"],
        frames=len(set(titles)),
        idle=Keys(figures["sent"], figures["idle"]),
        flooded=Keys(figures["sent"], figures["flood"]),
    )


class KeyProbe:
    """Presses keys into an Input from a thread, as a terminal driver does; times each to
    the change of the Input's value. Keys alternate ``x`` and backspace, so every press
    changes the value and the Input stays short."""

    def __init__(self, app: Any, prompt: Any) -> None:
        self.app = app
        self.pending: deque[float] = deque()
        self.samples: list[float] = []
        app.watch(prompt, "value", self._changed, init=False)

    def _changed(self) -> None:
        now = time.perf_counter()
        if self.pending:
            self.samples.append(now - self.pending.popleft())

    def _press(self, count: int, interval: float) -> None:
        from textual import events

        began = time.perf_counter()
        for i in range(count):
            delay = began + i * interval - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            key = events.Key("x", "x") if i % 2 == 0 else events.Key("backspace", None)
            key.set_sender(self.app)
            self.pending.append(time.perf_counter())
            self.app.post_message(key)  # thread-safe, as the driver's input thread uses it

    async def run(self, count: int, interval: float) -> list[float]:
        self.pending.clear()
        self.samples = []
        await asyncio.to_thread(self._press, count, interval)
        deadline = time.perf_counter() + 5.0
        while self.pending and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)
        return self.samples


async def flood_child(home: Path, updates: int, seconds: float, interval: float) -> dict[str, Any]:
    from textual.widgets import Input

    from deeting_tui.kernel.events import Event, StreamFrame, ToolResult
    from deeting_tui.kernel.kernel import Kernel
    from deeting_tui.llm.offline import OfflineAssistant
    from deeting_tui.paths import resolve_paths
    from deeting_tui.ui.app import DeetingApp

    kernel = Kernel(resolve_paths({"DEETING_HOME": str(home)}), assistant=OfflineAssistant())
    app = DeetingApp(kernel)
    seen: list[float] = []
    failure: list[str] = []

    def listen(event: Event) -> None:
        if isinstance(event, StreamFrame) and event.plugin == STREAMER:
            seen.append(time.perf_counter())
        elif isinstance(event, ToolResult) and event.plugin == STREAMER and not event.ok:
            failure.append(str(event.error))

    count = max(2, 2 * round(seconds / interval / 2))  # even: the prompt ends empty
    async with app.run_test(headless=False, size=(COLUMNS, ROWS)) as pilot:
        deadline = time.perf_counter() + 30
        while not (app.started.is_set() and isinstance(app.focused, Input)):
            if time.perf_counter() > deadline:
                raise RuntimeError(f"the chat's prompt never had the focus ({app.focused!r})")
            await pilot.pause(0.01)
        app.focused.value = ""
        kernel.add_listener(listen)
        probe = KeyProbe(app, app.focused)
        await probe.run(10, interval)  # warm-up: first-key costs are not the steady state
        idle = await probe.run(count, interval)
        assert app.session_id is not None
        turn = asyncio.create_task(
            kernel.submit(app.session_id, f"/flood count={updates} seconds={seconds}")
        )
        while not seen:
            if turn.done() or time.perf_counter() > deadline + 30:
                raise RuntimeError(f"no stream update arrived: {failure or turn}")
            await asyncio.sleep(0.005)
        flood = await probe.run(count, interval)
        await asyncio.wait_for(turn, timeout=seconds + 30)
        await pilot.pause()
    if failure:
        raise RuntimeError(f"the flood tool failed: {failure[0]}")
    return {
        "sent": count,
        "idle": idle,
        "flood": flood,
        "seen": len(seen),
        "span_s": seen[-1] - seen[0],
    }
