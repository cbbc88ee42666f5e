"""The chat's two felt speeds: launch to the first painted frame, and keys under a stream flood.

**Launch.** The venv's ``deeting`` starts in a pseudo-terminal of 80x24 (a fresh
``DEETING_HOME``, every official plugin installed and granted, so all of them start with the
chat); the clock runs from just before the exec until the pty output holds the chat's header
text, which Textual draws with the chat screen's first frame (terminal-title sequences are
ignored: Textual sends the title before painting). The baseline, taking turns with it in the
same run, is a minimal Textual app (Header, Input, Footer) in a temp file, timed the same way:
what Textual itself costs, so the difference is ours (imports, kernel, plugin workers). Both
quit with ctrl+q; each must exit 0.

**Keys under a flood.** In a child process, ``DeetingApp`` runs headless (``run_test``) with
the bench-streamer plugin. A thread presses keys into the chat's prompt at a fixed interval,
posting them to the app as Textual's own terminal driver does (from its input thread); the
latency is from the post to the moment the prompt's value changes (its watcher runs). First
with nothing streaming (the baseline), then while the plugin pushes N sparkline updates over
S seconds through the kernel to the chat's live card.

``python -m bench.ui [--quick] [--json]`` runs this section alone; ``python -m bench`` runs it
with the others.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import tempfile
import termios
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from .common import BENCH_DIR, REPO_ROOT, child_env, closing_fds, percentile_ms, reap, spawn_child
from .throughput import deeting_executable

STREAMER_PLUGIN = BENCH_DIR / "plugins" / "streamer"
STREAMER = "bench-streamer"
OFFICIAL_PLUGINS = REPO_ROOT / "plugins"

#: Targets (issue 5, point 9).
LAUNCH_S_MAX = 1.0
KEY_MS_MAX = 100.0

COLUMNS, ROWS = 80, 24
ALT_SCREEN = b"\x1b[?1049h"
CTRL_Q = b"\x11"
_OSC = re.compile(rb"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")  # window title and the like
CHAT_MARKER = b"Deeting"  # the chat's header (the app's TITLE)
BASELINE_MARKER = b"Baseline"
BASELINE_APP = """\
from textual.app import App
from textual.widgets import Footer, Header, Input


class Baseline(App[None]):
    TITLE = "Baseline"

    def compose(self):
        yield Header()
        yield Input(placeholder="Message")
        yield Footer()


if __name__ == "__main__":
    Baseline().run()
"""


@dataclass
class UiSizes:
    launch_runs: int = 10
    flood_updates: int = 1000
    flood_seconds: float = 5.0
    key_interval: float = 0.05

    @classmethod
    def quick(cls) -> UiSizes:
        return cls(launch_runs=2, flood_updates=200, flood_seconds=1.0, key_interval=0.05)


@dataclass
class Launch:
    """Seconds from exec to the alternate screen (Textual's driver up) and to the frame."""

    name: str
    started: list[float]
    painted: list[float]

    def as_json(self) -> dict[str, Any]:
        return {
            "n": len(self.painted),
            "alt_screen_p50_ms": round(percentile_ms(self.started, 50), 1),
            "first_frame_p50_ms": round(percentile_ms(self.painted, 50), 1),
            "first_frame_max_ms": round(percentile_ms(self.painted, 100), 1),
        }


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


@dataclass
class UiFigures:
    deeting: Launch
    textual: Launch
    flood: Flood

    def as_json(self) -> dict[str, Any]:
        return {
            "launch": self.deeting.as_json(),
            "launch_baseline_textual": self.textual.as_json(),
            "flood": self.flood.as_json(),
        }

    def rows(self) -> list[tuple[str, ...]]:
        """Rows for the report's table, five columns like the others'."""
        rows: list[tuple[str, ...]] = [
            ("chat launch, exec to first frame (pty)", "n", "p50", "max", "alt screen")
        ]
        for launch in (self.deeting, self.textual):
            rows.append(
                (
                    launch.name,
                    str(len(launch.painted)),
                    f"{percentile_ms(launch.painted, 50):.0f} ms",
                    f"{percentile_ms(launch.painted, 100):.0f} ms",
                    f"{percentile_ms(launch.started, 50):.0f} ms",
                )
            )
        flood = self.flood
        rows += [
            ("", "", "", "", ""),
            ("key press to prompt value", "n", "p50", "p95", "max"),
        ]
        for label, keys in (
            ("idle (no stream)", flood.idle),
            (f"{flood.updates} updates in {flood.seconds:g} s", flood.flooded),
        ):
            data = keys.as_json()
            rows.append(
                (
                    label,
                    f"{data['keys_handled']}/{data['keys_sent']}",
                    f"{data['p50_ms']:.2f} ms",
                    f"{data['p95_ms']:.2f} ms",
                    f"{data['max_ms']:.2f} ms",
                )
            )
        rows.append(
            (
                "stream updates delivered to the chat",
                f"{flood.seen}/{flood.updates}",
                f"{flood.rate:.0f}/s",
                "",
                "",
            )
        )
        rows.append(
            (
                "frames of the live card painted",
                str(flood.frames),
                f"{flood.frames / flood.span_s:.0f}/s" if flood.span_s > 0 else "",
                "",
                "",
            )
        )
        return rows

    def verdicts(self) -> list[tuple[str, str, str, bool, float]]:
        """(target, measured, limit, passed, value), for the report's verdict table."""
        launch = percentile_ms(self.deeting.painted, 50) / 1e3
        alone = percentile_ms(self.textual.painted, 50) / 1e3
        flooded = self.flood.flooded
        worst = percentile_ms(flooded.samples, 100)
        handled = len(flooded.samples)
        return [
            (
                "chat launch to first frame p50 <= 1 s",
                f"{launch:.2f} s (Textual alone {alone:.2f} s)",
                f"<= {LAUNCH_S_MAX:g} s",
                launch <= LAUNCH_S_MAX,
                launch,
            ),
            (
                f"key latency max under {self.flood.updates} updates/{self.flood.seconds:g} s",
                f"{worst:.1f} ms (p95 {percentile_ms(flooded.samples, 95):.1f})",
                f"<= {KEY_MS_MAX:g} ms",
                worst <= KEY_MS_MAX and handled == flooded.sent,
                worst,
            ),
        ]


# -- launch -----------------------------------------------------------------------------------


def _terminal_env(home: Path) -> dict[str, str]:
    """Ours, minus anything that would change what answers or how Textual runs."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ANTHROPIC_", "OPENAI_", "TEXTUAL", "DEETING_", "TMUX"))
        and k not in ("COLUMNS", "LINES")
    }
    env.update(DEETING_HOME=str(home), TERM="xterm-256color")
    return env


def _first_frame(args: list[str], env: dict[str, str], marker: bytes) -> tuple[float, float]:
    """Run ``args`` on a fresh 80x24 pty; seconds to the alternate screen and to ``marker``
    drawn; then ctrl+q, and the program must exit 0."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
    with closing_fds(master):
        began = time.perf_counter()
        try:
            process = spawn_child(args, env=env, stdin=slave, stdout=slave, stderr=slave)
        finally:
            os.close(slave)
        output = bytearray()
        try:
            started = _read_until(master, output, lambda: ALT_SCREEN in output) - began
            painted = _read_until(master, output, lambda: marker in _OSC.sub(b"", output)) - began
            os.write(master, CTRL_Q)
            with contextlib.suppress(TimeoutError, EOFError):
                _read_until(master, output, lambda: False, timeout=15.0)
        except (TimeoutError, EOFError) as exc:
            tail = output[-600:].decode(errors="replace")
            raise RuntimeError(f"{Path(args[-1]).name}: {exc}; its last output: {tail!r}") from None
        finally:
            reap(process, timeout=15.0)
    if process.returncode != 0:
        tail = output[-600:].decode(errors="replace")
        raise RuntimeError(f"{Path(args[-1]).name} exited {process.returncode}: {tail!r}")
    return started, painted


def _read_until(
    fd: int, output: bytearray, done: Callable[[], bool], timeout: float = 30.0
) -> float:
    """Read the pty into ``output`` until ``done()``; the time it became true. EOFError when
    the program closed its terminal (exited) first, TimeoutError after ``timeout``."""
    deadline = time.perf_counter() + timeout
    while not done():
        left = deadline - time.perf_counter()
        if left <= 0:
            raise TimeoutError(f"nothing after {timeout:g} s")
        ready, _, _ = select.select([fd], [], [], min(left, 0.5))
        if not ready:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: every copy of the other end is closed
            chunk = b""
        if not chunk:
            raise EOFError("the program closed its terminal")
        output += chunk
    return time.perf_counter()


def _install(home: Path, plugin: Path) -> None:
    done = subprocess.run(
        [deeting_executable(), "plugin", "install", str(plugin), "--yes"],
        env=_terminal_env(home),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"installing {plugin.name}: {done.stderr.strip()}")


def launch_times(runs: int) -> tuple[Launch, Launch]:
    with tempfile.TemporaryDirectory(prefix="deeting-bench-ui-") as tmp:
        home = Path(tmp) / "home"
        for plugin in sorted(p for p in OFFICIAL_PLUGINS.iterdir() if (p / "kimai.json").exists()):
            _install(home, plugin)
        baseline = Path(tmp) / "baseline_app.py"
        baseline.write_text(BASELINE_APP)
        env = _terminal_env(home)
        chat_args = [deeting_executable()]
        baseline_args = [sys.executable, str(baseline)]
        deeting = Launch(f"deeting ({_count_plugins(home)} plugins)", [], [])
        textual = Launch("textual, minimal app (baseline)", [], [])
        # A warm-up each (page cache, bytecode, the first session), then turns.
        _first_frame(chat_args, env, CHAT_MARKER)
        _first_frame(baseline_args, env, BASELINE_MARKER)
        for _ in range(runs):
            for launch, args, marker in (
                (deeting, chat_args, CHAT_MARKER),
                (textual, baseline_args, BASELINE_MARKER),
            ):
                started, painted = _first_frame(args, env, marker)
                launch.started.append(started)
                launch.painted.append(painted)
    return deeting, textual


def _count_plugins(home: Path) -> int:
    done = subprocess.run(
        [deeting_executable(), "plugin", "list", "--json"],
        env=_terminal_env(home),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
    )
    if done.returncode != 0:
        raise RuntimeError(f"deeting plugin list: {done.stderr.decode().strip()}")
    return sum(1 for item in orjson.loads(done.stdout)["plugins"] if item["enabled"])


# -- keys under a flood -----------------------------------------------------------------------


def flood_figures(sizes: UiSizes) -> Flood:
    """Install the streamer in a fresh home; run :func:`_flood_child` in a child on an 80x24
    pty, with Textual's real terminal driver, so frames are encoded and written as on a
    terminal (we read and discard them); the child writes its figures to a file."""
    with tempfile.TemporaryDirectory(prefix="deeting-bench-ui-") as tmp:
        home = Path(tmp) / "home"
        _install(home, STREAMER_PLUGIN)
        report = Path(tmp) / "flood.json"
        args = [
            sys.executable, "-m", "bench.ui", "--flood-child", str(home),
            str(sizes.flood_updates), str(sizes.flood_seconds), str(sizes.key_interval),
            str(report),
        ]  # fmt: skip
        env = _terminal_env(home)
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
                _read_until(master, output, lambda: False, timeout=limit)
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


async def _flood_child(home: Path, updates: int, seconds: float, interval: float) -> dict[str, Any]:
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
        while not isinstance(app.focused, Input):
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


# -- the section ------------------------------------------------------------------------------


def ui_figures(sizes: UiSizes) -> UiFigures:
    deeting, textual = launch_times(sizes.launch_runs)
    return UiFigures(deeting, textual, flood_figures(sizes))


def _report(figures: UiFigures) -> str:
    rows = figures.rows()
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = []
    for row in rows:
        if not any(row):
            lines.append("")
            continue
        cells = [row[0].ljust(widths[0])]
        cells += [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells).rstrip())
        if row[1] == "n":
            lines.append("-" * len(lines[-1]))
    lines.append("")
    for target, measured, limit, passed, _value in figures.verdicts():
        lines.append(f"{target}: {measured} (target {limit}) {'PASS' if passed else 'FAIL'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ui", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small N (for the smoke test)")
    parser.add_argument("--json", action="store_true", help="print one JSON document only")
    parser.add_argument("--flood-child", nargs=5, help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.flood_child:
        home, updates, seconds, interval, out = options.flood_child
        run = _flood_child(Path(home), int(updates), float(seconds), float(interval))
        Path(out).write_bytes(orjson.dumps(asyncio.run(run)))
        return 0
    os.chdir(REPO_ROOT)
    figures = ui_figures(UiSizes.quick() if options.quick else UiSizes())
    if options.json:
        sys.stdout.buffer.write(orjson.dumps(figures.as_json(), option=orjson.OPT_INDENT_2) + b"\n")
    else:
        print(_report(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
