"""Trigger-routed messages through ``deeting --script`` end to end, sessions persisted.

In a fresh ``DEETING_HOME`` the trivial plugin is installed with the real CLI, then a
script of N lines ``ping I`` runs as one ``deeting --script FILE`` process; every line is
routed by the plugin's trigger to its worker and every event is committed to the session
store. Start-up (interpreter, kernel, worker spawn, shutdown) is measured with a 1-line
script and subtracted to give the steady-state message rate.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deeting_tui.kernel.sessions.store import SessionStore

from .common import TRIVIAL_PLUGIN, reap, spawn_child


@dataclass
class Throughput:
    messages: int
    total_s: float
    startup_s: float
    user_events: int

    @property
    def end_to_end_per_s(self) -> float:
        return self.messages / self.total_s

    @property
    def steady_per_s(self) -> float:
        # One of the startup run's seconds was its own single message: add it back.
        work = self.total_s - self.startup_s
        if work <= 0:
            # Start-up noise swamped a small run (--quick under load): the end-to-end rate
            # is then the honest figure, a lower bound on the steady rate.
            return self.end_to_end_per_s
        return (self.messages - 1) / work

    def as_json(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "total_s": round(self.total_s, 4),
            "startup_s": round(self.startup_s, 4),
            "end_to_end_msgs_per_s": round(self.end_to_end_per_s, 1),
            "msgs_per_s_excl_startup": round(self.steady_per_s, 1),
            "user_events_stored": self.user_events,
        }


def deeting_executable() -> str:
    """The venv's ``deeting``, next to the interpreter running the benchmark."""
    import sys

    candidate = Path(sys.executable).with_name("deeting")
    if candidate.exists():
        return str(candidate)
    found = shutil.which("deeting")
    if found is None:
        raise RuntimeError(f"no 'deeting' next to {sys.executable} or on PATH")
    return found


def _run(args: list[str], home: Path, *, timeout: float = 300.0) -> float:
    """Run a deeting command in ``home``; return its wall time; raise with stderr on failure."""
    env = dict(os.environ)
    env["DEETING_HOME"] = str(home)
    env["DEETING_BUNDLE"] = ""  # only the plugin measured, not a first run's bundled ones
    env.pop("DEETING_DEBUG", None)
    began = time.perf_counter()
    process = spawn_child(
        args,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        _out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        reap(process, timeout=0)
        raise RuntimeError(f"{' '.join(args)} took longer than {timeout:g} s") from None
    elapsed = time.perf_counter() - began
    reap(process)
    if process.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args[1:3])} exited {process.returncode}: {err.decode(errors='replace')}"
        )
    return elapsed


def user_events_in_latest_session(db: Path) -> int:
    """Counted through the kernel's own store, so the check follows its schema."""
    with SessionStore(db) as store:
        latest = store.latest()
        return len(store.events(latest.id, kinds=["user"])) if latest else 0


def script_throughput(messages: int, startup_runs: int) -> Throughput:
    deeting = deeting_executable()
    with tempfile.TemporaryDirectory(prefix="deeting-bench-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        _run([deeting, "plugin", "install", str(TRIVIAL_PLUGIN), "--yes"], home)
        one = Path(tmp) / "one.txt"
        one.write_text("ping 1\n")
        script = Path(tmp) / "script.txt"
        script.write_text("".join(f"ping {i}\n" for i in range(messages)))
        # Warm-up run (page cache, first session-store creation), then the start-up runs.
        _run([deeting, "--script", str(one)], home)
        startup = statistics.median(
            _run([deeting, "--script", str(one)], home) for _ in range(startup_runs)
        )
        total = _run([deeting, "--script", str(script)], home)
        stored = user_events_in_latest_session(home / "data" / "sessions.sqlite3")
    return Throughput(messages, total, startup, stored)
