"""sysinfo: a snapshot of CPU, load, memory, uptime and processes from ``/proc``, and a live
CPU/memory card fed by ``system.tick`` (reading and the rolling window are in handler.py,
parsing in procparse.py)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from deeting_tui.sdk import Context, Result

try:
    from .handler import PROC, ProcError, ProcReader, UsageWindow, measure_cpu, snapshot
except ImportError:  # imported as a plain module, with src/ on sys.path
    from handler import (  # type: ignore[no-redef,import-not-found]
        PROC,
        ProcError,
        ProcReader,
        UsageWindow,
        measure_cpu,
        snapshot,
    )

TOOLS = ("sysinfo",)
STREAM_TOPIC = "sysinfo.usage"

#: Where /proc is; tests point it at a fixture folder.
PROC_ROOT: Path = PROC

# One worker serves one plugin: one window, fed by ticks, also used as the snapshot's baseline.
_window = UsageWindow()
_last_tick_error: str | None = None


def deactivate(ctx: Context) -> None:
    global _window, _last_tick_error
    _window = UsageWindow()
    _last_tick_error = None


def invoke(ctx: Context, tool: str, args: dict[str, Any]) -> Result:
    if tool not in TOOLS:
        raise ValueError(f"sysinfo has no tool {tool!r} (tools: {', '.join(TOOLS)})")
    if not isinstance(args, dict):
        raise ValueError(f"{tool}: arguments must be an object")
    if args:
        raise ValueError(f"{tool}: unknown argument(s) {', '.join(sorted(args))} (expected: none)")
    reader = ProcReader(PROC_ROOT)
    cpu: tuple[float, int] | ProcError
    try:
        cpu = measure_cpu(reader, _window.recent_baseline(time.monotonic()), time.sleep)
    except ProcError as error:
        cpu = error
    data, text = snapshot(reader, cpu)  # raises ProcError (a ValueError) when nothing is readable
    return Result(data=data, text=text, renderer="key-value")


def on_event(ctx: Context, topic: str, payload: dict[str, Any]) -> bool:
    """One sample per tick, and at most one push; ticks are broadcast, so never handled."""
    global _last_tick_error
    if topic != "system.tick":
        return False
    try:
        added = _window.sample(ProcReader(PROC_ROOT), time.monotonic())
    except ProcError as error:
        if str(error) != _last_tick_error:  # say it once, not every second
            ctx.log.warning("live usage paused: %s", error)
            _last_tick_error = str(error)
        return False
    _last_tick_error = None
    if added:
        ctx.push_stream(STREAM_TOPIC, _window.payload(), renderer="chart")
    return False
