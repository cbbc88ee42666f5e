"""Reading Linux's ``/proc`` without psutil: a reader over a folder, the snapshot, a window.

The parsers are pure functions over the files' text (``procparse.py``), so tests feed them
fixture text and never depend on the machine. :class:`ProcReader` turns every way a read can
fail (no ``/proc`` at all, no permission, an odd format) into a :class:`ProcError` whose
message says what to do, and :class:`UsageWindow` keeps the rolling CPU and memory series the
live card draws.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

try:
    from .procparse import (
        CpuTimes,
        LoadAverage,
        Memory,
        count_processes,
        cpu_percent,
        format_kib,
        format_uptime,
        parse_loadavg,
        parse_meminfo,
        parse_stat,
        parse_uptime,
    )
except ImportError:  # imported as a plain module, with src/ on sys.path
    from procparse import (  # type: ignore[no-redef,import-not-found]
        CpuTimes,
        LoadAverage,
        Memory,
        count_processes,
        cpu_percent,
        format_kib,
        format_uptime,
        parse_loadavg,
        parse_meminfo,
        parse_stat,
        parse_uptime,
    )

__all__ = [
    "MIN_SAMPLE_GAP",
    "PROC",
    "WINDOW",
    "ProcError",
    "ProcReader",
    "UsageWindow",
    "measure_cpu",
    "snapshot",
]

PROC = Path("/proc")
#: Points kept per series on the live card (one per tick: a minute at the default 1 s tick).
WINDOW = 60
#: Ticks closer together than this (a backlog after a busy moment) are coalesced into one.
MIN_SAMPLE_GAP = 0.25
GRANT_HINT = "deeting plugin grant sysinfo filesystem:read:/proc"
_MAX_READ = 4 * 1024 * 1024


class ProcError(ValueError):
    """``/proc`` cannot be read or understood; the message says which file and why."""


# -- reading ------------------------------------------------------------------------------------


class ProcReader:
    """Reads and parses the files of one ``/proc`` (a fixture folder in tests)."""

    def __init__(self, root: Path = PROC) -> None:
        self.root = Path(root)

    def read(self, name: str) -> str:
        path = self.root / name
        try:
            with open(path, "rb") as handle:
                raw = handle.read(_MAX_READ)
        except FileNotFoundError:
            raise ProcError(_missing(path, self.root)) from None
        except PermissionError:
            raise ProcError(f"cannot read {path}: permission denied — run: {GRANT_HINT}") from None
        except OSError as error:
            raise ProcError(f"cannot read {path}: {error.strerror or error}") from None
        return raw.decode("utf-8", errors="replace")

    def _parse(self, name: str, parser: Callable[[str], Any]) -> Any:
        text = self.read(name)
        try:
            return parser(text)
        except ValueError as error:
            raise ProcError(f"cannot understand {self.root / name}: {error}") from None

    def cpu(self) -> CpuTimes:
        result: CpuTimes = self._parse("stat", parse_stat)
        return result

    def memory(self) -> Memory:
        result: Memory = self._parse("meminfo", parse_meminfo)
        return result

    def load(self) -> LoadAverage:
        result: LoadAverage = self._parse("loadavg", parse_loadavg)
        return result

    def uptime(self) -> float:
        result: float = self._parse("uptime", parse_uptime)
        return result

    def processes(self) -> int:
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            raise ProcError(_missing(self.root, self.root)) from None
        except PermissionError:
            raise ProcError(
                f"cannot list {self.root}: permission denied — run: {GRANT_HINT}"
            ) from None
        except OSError as error:
            raise ProcError(f"cannot list {self.root}: {error.strerror or error}") from None
        return count_processes(names)


def _missing(path: Path, root: Path) -> str:
    if not root.is_dir():
        return f"{root} does not exist: sysinfo reads Linux's /proc, which this system lacks"
    return f"{path} does not exist (is {root} a Linux /proc?)"


# -- the snapshot tool --------------------------------------------------------------------------


def measure_cpu(
    reader: ProcReader,
    baseline: CpuTimes | None,
    sleep: Callable[[float], None],
    interval: float = 0.25,
) -> tuple[float, int]:
    """CPU busy percent since ``baseline`` (a recent tick's sample), or over ``interval``
    seconds when there is none; and the core count. Raises :class:`ProcError`."""
    if baseline is None:
        baseline = reader.cpu()
        sleep(interval)
    times = reader.cpu()
    busy = cpu_percent(baseline, times)
    if busy is None:  # the clock did not move (a coarse tick): measure once more
        sleep(interval)
        busy = cpu_percent(baseline, reader.cpu())
    if busy is None:
        raise ProcError(f"the CPU times in {reader.root / 'stat'} do not advance")
    return busy, times.cores


def snapshot(reader: ProcReader, cpu: tuple[float, int] | ProcError) -> tuple[dict[str, Any], str]:
    """The ``key-value`` payload and the model's summary for one snapshot.

    ``cpu`` is :func:`measure_cpu`'s answer or the error it raised. A file that fails costs
    only its own line ("unavailable: why"); when every file fails, the first reason is raised.
    """
    items: list[dict[str, str]] = []
    summary: list[str] = []
    errors: list[str] = []

    def unavailable(key: str, error: str) -> None:
        items.append({"key": key, "value": f"unavailable: {error}"})
        errors.append(error)

    if isinstance(cpu, ProcError):
        unavailable("CPU", str(cpu))
    else:
        busy, cores = cpu
        core_text = f"{cores} core" + ("s" if cores != 1 else "")
        items.append({"key": "CPU", "value": f"{busy:.1f} % ({core_text})"})
        summary.append(f"CPU {busy:.1f}% busy ({core_text})")

    load: LoadAverage | None = None
    try:
        load = reader.load()
    except ProcError as error:
        unavailable("Load average", str(error))
    else:
        loads = f"{load.one:.2f}, {load.five:.2f}, {load.fifteen:.2f}"
        items.append({"key": "Load average", "value": f"{loads} (1, 5, 15 min)"})
        summary.append(f"load {loads}")

    try:
        memory = reader.memory()
    except ProcError as error:
        unavailable("Memory", str(error))
    else:
        used = f"{format_kib(memory.used_kib)} of {format_kib(memory.total_kib)}"
        items.append({"key": "Memory", "value": f"{used} used ({memory.used_percent:.1f} %)"})
        items.append({"key": "Available", "value": format_kib(memory.available_kib)})
        summary.append(
            f"memory {memory.used_percent:.1f}% used ({used}, "
            f"{format_kib(memory.available_kib)} available)"
        )
        if memory.swap_total_kib:
            swap = f"{format_kib(memory.swap_used_kib)} of {format_kib(memory.swap_total_kib)}"
            items.append({"key": "Swap", "value": f"{swap} used"})
            summary.append(f"swap {swap} used")

    try:
        uptime = reader.uptime()
    except ProcError as error:
        unavailable("Uptime", str(error))
    else:
        items.append({"key": "Uptime", "value": format_uptime(uptime)})
        summary.append(f"up {format_uptime(uptime)}")

    try:
        processes = reader.processes()
    except ProcError as error:
        unavailable("Processes", str(error))
    else:
        extra = f" ({load.threads} threads)" if load is not None else ""
        items.append({"key": "Processes", "value": f"{processes}{extra}"})
        summary.append(f"{processes} processes{extra}")

    if not summary:
        raise ProcError(errors[0] if errors else "nothing could be read from /proc")
    text = "System: " + ", ".join(summary) + "."
    if errors:
        text += " Could not read: " + "; ".join(dict.fromkeys(errors)) + "."
    return {"title": "System", "items": items}, text


# -- the live card ------------------------------------------------------------------------------


class UsageWindow:
    """Rolling CPU and memory series, one point per accepted sample."""

    def __init__(self, size: int = WINDOW) -> None:
        self.cpu: deque[float] = deque(maxlen=size)
        self.memory: deque[float] = deque(maxlen=size)
        self.last: CpuTimes | None = None
        self.last_at: float | None = None

    def sample(self, reader: ProcReader, now: float) -> bool:
        """Take one sample at monotonic time ``now``; True when a point was added.

        The first sample only sets the CPU baseline; a sample closer than
        :data:`MIN_SAMPLE_GAP` to the previous one is skipped (coalescing a burst of ticks).
        Raises :class:`ProcError` when ``/proc`` cannot be read.
        """
        if self.last_at is not None and now - self.last_at < MIN_SAMPLE_GAP:
            return False
        times = reader.cpu()
        memory = reader.memory()
        before = self.last
        self.last, self.last_at = times, now
        busy = cpu_percent(before, times) if before is not None else None
        if busy is None:
            return False
        self.cpu.append(busy)
        self.memory.append(memory.used_percent)
        return True

    def recent_baseline(self, now: float, newest: float = 5.0) -> CpuTimes | None:
        """The last sample if it is at least :data:`MIN_SAMPLE_GAP` and at most ``newest``
        seconds old, so a snapshot can measure CPU since then without waiting."""
        if self.last is None or self.last_at is None:
            return None
        age = now - self.last_at
        return self.last if MIN_SAMPLE_GAP <= age <= newest else None

    def payload(self) -> dict[str, Any]:
        return {
            "kind": "sparkline",
            "title": "CPU and memory",
            "unit": "%",
            "series": [
                {"name": "cpu", "values": list(self.cpu)},
                {"name": "memory", "values": list(self.memory)},
            ],
        }
