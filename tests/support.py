"""Helpers shared by tests (importable as ``support``; tests/ is on pythonpath)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from deeting_tui.kernel.kernel import Kernel
from deeting_tui.kernel.supervisor import SupervisionPolicy
from deeting_tui.kernel.watchdog import WatchdogPolicy

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
HOSTILE = FIXTURES / "hostile"
OFFICIAL = REPO / "plugins"
DEETING = [sys.executable, "-m", "deeting_tui"]

# Short grace and backoff so fault tests take milliseconds, not seconds; the logic is the same.
FAST_POLICY = SupervisionPolicy(kill_grace=0.3, stop_grace=2.0, backoff_base=0.01)
# The watchdog's rules with a short window, so limit tests take a second, not ten.
FAST_WATCHDOG = WatchdogPolicy(interval=0.1, cpu_window=1.0, disk_interval=0.2, disk_after_call=0.0)


def events_of(k: Kernel) -> list[dict[str, Any]]:
    """Subscribe to a kernel's events; returns the list that fills up."""
    seen: list[dict[str, Any]] = []
    k.add_listener(seen.append)
    return seen


def run_deeting(
    *args: str,
    home: Path,
    stdin: str | None = None,
    timeout: float = 60,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **(env or {}), "DEETING_HOME": str(home)}
    env.pop("DEETING_DEBUG", None)
    return subprocess.run(
        [*DEETING, *args],
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        cwd=REPO,
    )
