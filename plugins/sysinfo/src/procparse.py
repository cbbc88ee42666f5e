"""Linux's ``/proc`` files as values: pure parsers over their text, and how they are shown.

Pure functions, so tests feed them fixture text and never depend on the machine; each raises
ValueError with what was odd about the text, which ``handler.py``'s reader turns into a
:class:`~handler.ProcError` naming the file.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "CpuTimes",
    "LoadAverage",
    "Memory",
    "count_processes",
    "cpu_percent",
    "format_kib",
    "format_uptime",
    "parse_loadavg",
    "parse_meminfo",
    "parse_stat",
    "parse_uptime",
]

#: The time columns of a ``cpu`` line that count towards the total. guest and guest_nice are
#: already included in user and nice, so they are left out (as top and psutil do).
_CPU_FIELDS = 8  # user nice system idle iowait irq softirq steal
_IDLE, _IOWAIT = 3, 4


# -- parsers (pure) -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CpuTimes:
    """The aggregate ``cpu`` line of ``/proc/stat``, in clock ticks since boot."""

    busy: int
    total: int
    cores: int


def parse_stat(text: str) -> CpuTimes:
    """``/proc/stat`` → busy and total CPU time (all cores together) and the core count."""
    aggregate: list[int] | None = None
    cores = 0
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        label = fields[0]
        if label == "cpu":
            aggregate = _cpu_numbers(fields[1:])
        elif label.startswith("cpu") and label[3:].isdigit():
            cores += 1
    if aggregate is None:
        raise ValueError('no "cpu" line')
    total = sum(aggregate)
    idle = aggregate[_IDLE] + (aggregate[_IOWAIT] if len(aggregate) > _IOWAIT else 0)
    return CpuTimes(busy=total - idle, total=total, cores=max(cores, 1))


def _cpu_numbers(fields: list[str]) -> list[int]:
    if len(fields) < _IDLE + 1:
        raise ValueError(f'the "cpu" line has {len(fields)} numbers, expected at least 4')
    try:
        numbers = [int(field) for field in fields[:_CPU_FIELDS]]
    except ValueError:
        raise ValueError('the "cpu" line holds something that is not a whole number') from None
    if any(number < 0 for number in numbers):
        raise ValueError('the "cpu" line holds a negative number')
    return numbers


def cpu_percent(before: CpuTimes, after: CpuTimes) -> float | None:
    """Busy share of the CPU time between two samples, 0 to 100; None if no time passed."""
    total = after.total - before.total
    if total <= 0:
        return None
    busy = min(max(after.busy - before.busy, 0), total)
    return round(100.0 * busy / total, 1)


@dataclass(frozen=True)
class LoadAverage:
    one: float
    five: float
    fifteen: float
    running: int
    threads: int


def parse_loadavg(text: str) -> LoadAverage:
    """``0.52 0.58 0.59 2/1234 56789`` → the three averages and runnable/total threads."""
    fields = text.split()
    if len(fields) < 4 or "/" not in fields[3]:
        raise ValueError(f"expected 'L1 L5 L15 RUNNING/TOTAL …', got {text.strip()[:60]!r}")
    try:
        one, five, fifteen = (float(field) for field in fields[:3])
        running, threads = (int(part) for part in fields[3].split("/", 1))
    except ValueError:
        raise ValueError(f"expected numbers, got {text.strip()[:60]!r}") from None
    if not all(math.isfinite(v) and v >= 0 for v in (one, five, fifteen)):
        raise ValueError(f"load averages out of range in {text.strip()[:60]!r}")
    return LoadAverage(one, five, fifteen, running, threads)


@dataclass(frozen=True)
class Memory:
    """Sizes in KiB, as ``/proc/meminfo`` gives them."""

    total_kib: int
    available_kib: int
    swap_total_kib: int = 0
    swap_free_kib: int = 0

    @property
    def used_kib(self) -> int:
        return self.total_kib - self.available_kib

    @property
    def used_percent(self) -> float:
        return round(100.0 * self.used_kib / self.total_kib, 1)

    @property
    def swap_used_kib(self) -> int:
        return self.swap_total_kib - self.swap_free_kib


def parse_meminfo(text: str) -> Memory:
    """``/proc/meminfo`` → total and available memory (and swap).

    ``MemAvailable`` exists since Linux 3.14; without it, free + buffers + cached stands in.
    """
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, sep, rest = line.partition(":")
        parts = rest.split()
        if not sep or not parts:
            continue
        try:
            amount = int(parts[0])
        except ValueError:
            continue
        unit = parts[1].lower() if len(parts) > 1 else "kb"
        values[key.strip()] = amount if unit == "kb" else amount // 1024
    total = values.get("MemTotal")
    if total is None or total <= 0:
        raise ValueError("no usable MemTotal line")
    available = values.get("MemAvailable")
    if available is None:
        if "MemFree" not in values:
            raise ValueError("neither MemAvailable nor MemFree is there")
        available = values["MemFree"] + values.get("Buffers", 0) + values.get("Cached", 0)
    available = min(max(available, 0), total)
    swap_total = max(values.get("SwapTotal", 0), 0)
    swap_free = min(max(values.get("SwapFree", swap_total), 0), swap_total)
    return Memory(total, available, swap_total, swap_free)


def parse_uptime(text: str) -> float:
    """``350735.47 234388.90`` → seconds since boot."""
    fields = text.split()
    if not fields:
        raise ValueError("the file is empty")
    try:
        seconds = float(fields[0])
    except ValueError:
        raise ValueError(f"expected seconds, got {fields[0][:40]!r}") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"uptime out of range: {fields[0][:40]!r}")
    return seconds


def count_processes(names: Iterable[str]) -> int:
    """The entries of ``/proc`` that are process ids."""
    return sum(1 for name in names if name.isdigit() and name.isascii())


def format_kib(kib: int) -> str:
    """``16384000`` → ``15.6 GiB``."""
    size = float(kib)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        if round(size, 1) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "KiB" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def format_uptime(seconds: float) -> str:
    """``273600`` → ``3d 4h 0m``; under an hour ``12m 5s``."""
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h {minutes}m"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s"
