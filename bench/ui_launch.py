"""The chat's launch, timed: exec on an 80x24 pty to the first painted frame, against Textual.

The venv's ``deeting`` starts with a fresh ``DEETING_HOME`` and every official plugin
installed and granted; the clock runs from just before the exec until the pty output holds
the chat's header text (terminal-title sequences are ignored). A minimal Textual app timed
the same way, taking turns with it, is the baseline: the difference is ours. The pty
helpers here (a clean environment, reading until a condition) serve ``ui_flood.py`` too.

With ``copies``, the home also holds that many copies of calc (``plugin_copies.py``):
the first frame must not grow with the number of installed plugins.
``python -m bench.ui_launch --copies N [--runs R]`` runs this half alone and prints JSON.
"""

from __future__ import annotations

import argparse
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from .common import REPO_ROOT, closing_fds, percentile_ms, reap, spawn_child
from .plugin_copies import generate_copies
from .throughput import deeting_executable

__all__ = [
    "COLUMNS",
    "ROWS",
    "Launch",
    "install_plugin",
    "installed_count",
    "launch_times",
    "read_until",
    "terminal_env",
]

OFFICIAL_PLUGINS = REPO_ROOT / "plugins"


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


# -- launch -----------------------------------------------------------------------------------


def terminal_env(home: Path) -> dict[str, str]:
    """Ours, minus anything that would change what answers or how Textual runs."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ANTHROPIC_", "OPENAI_", "TEXTUAL", "DEETING_", "TMUX"))
        and k not in ("COLUMNS", "LINES")
    }
    # DEETING_BUNDLE empty: the homes get exactly the plugins a benchmark installs, not the
    # bundled ones a fresh home's first run would add.
    env.update(DEETING_HOME=str(home), DEETING_BUNDLE="", TERM="xterm-256color")
    return env


def _first_frame(
    args: list[str], env: dict[str, str], marker: bytes, timeout: float = 30.0
) -> tuple[float, float]:
    """Run ``args`` on a fresh 80x24 pty; seconds to the alternate screen and to ``marker``
    drawn (each within ``timeout``); then ctrl+q, and the program must exit 0."""
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
            started = read_until(master, output, lambda: ALT_SCREEN in output, timeout) - began
            painted = (
                read_until(master, output, lambda: marker in _OSC.sub(b"", output), timeout) - began
            )
            os.write(master, CTRL_Q)
            with contextlib.suppress(TimeoutError, EOFError):
                read_until(master, output, lambda: False, timeout=15.0)
        except (TimeoutError, EOFError) as exc:
            tail = output[-600:].decode(errors="replace")
            raise RuntimeError(f"{Path(args[-1]).name}: {exc}; its last output: {tail!r}") from None
        finally:
            reap(process, timeout=15.0)
    if process.returncode != 0:
        tail = output[-600:].decode(errors="replace")
        raise RuntimeError(f"{Path(args[-1]).name} exited {process.returncode}: {tail!r}")
    return started, painted


def read_until(
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


def install_plugin(home: Path, *plugins: Path) -> None:
    done = subprocess.run(
        [deeting_executable(), "plugin", "install", *map(str, plugins), "--yes"],
        env=terminal_env(home),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        names = ", ".join(plugin.name for plugin in plugins)
        raise RuntimeError(f"installing {names}: {done.stderr.strip()}")


def launch_times(runs: int, copies: int = 0) -> tuple[Launch, Launch]:
    """The chat's and the baseline's first frames, ``runs`` each, in a home with every
    official plugin and ``copies`` copies of calc."""
    with tempfile.TemporaryDirectory(prefix="deeting-bench-ui-") as tmp:
        home = Path(tmp) / "home"
        for plugin in sorted(p for p in OFFICIAL_PLUGINS.iterdir() if (p / "kimai.json").exists()):
            install_plugin(home, plugin)
        if copies:
            install_plugin(home, *generate_copies(Path(tmp), copies))
        baseline = Path(tmp) / "baseline_app.py"
        baseline.write_text(BASELINE_APP)
        env = terminal_env(home)
        chat_args = [deeting_executable()]
        baseline_args = [sys.executable, str(baseline)]
        deeting = Launch(f"deeting ({installed_count(home)} plugins)", [], [])
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


def installed_count(home: Path) -> int:
    """Enabled plugins, as ``deeting plugin list --json`` sees them."""
    done = subprocess.run(
        [deeting_executable(), "plugin", "list", "--json"],
        env=terminal_env(home),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"deeting plugin list: {done.stderr.decode().strip()}")
    return sum(1 for item in orjson.loads(done.stdout)["plugins"] if item["enabled"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ui_launch", description=__doc__)
    parser.add_argument("--runs", type=int, default=10, help="launches of each (default 10)")
    parser.add_argument("--copies", type=int, default=0, help="copies of calc to install too")
    options = parser.parse_args(argv)
    deeting, textual = launch_times(options.runs, options.copies)
    chat, alone = deeting.as_json(), textual.as_json()
    ratio = chat["first_frame_p50_ms"] / alone["first_frame_p50_ms"]
    report = {deeting.name: chat, textual.name: alone, "first_frame_ratio": round(ratio, 2)}
    sys.stdout.buffer.write(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
