"""Reading Linux's ``/proc`` without psutil: parsers over text, a reader over a folder, a window.

The parsers are pure functions over the files' text, so tests feed them fixture text and never
depend on the machine. :class:`ProcReader` turns every way a read can fail (no ``/proc`` at all,
no permission, an odd format) into a :class:`ProcError` whose message says what to do, and
:class:`UsageWindow` keeps the rolling CPU and memory series the live card draws.
"""

from __future__ import annotations

import math
import os
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "MIN_SAMPLE_GAP",
    "PROC",
    "WINDOW",
    "CpuTimes",
    "LoadAverage",
    "Memory",
    "ProcError",
    "ProcReader",
    "UsageWindow",
    "count_processes",
    "cpu_percent",
    "format_kib",
    "format_uptime",
    "measure_cpu",
    "parse_loadavg",
    "parse_meminfo",
    "parse_stat",
    "parse_uptime",
    "snapshot",
]

PROC = Path("/proc")
#: Points kept per series on the live card (one per tick: a minute at the default 1 s tick).
WINDOW = 60
#: Ticks closer together than this (a backlog after a busy moment) are coalesced into one.
MIN_SAMPLE_GAP = 0.25
GRANT_HINT = "deeting plugin grant sysinfo filesystem:read:/proc"
#: The time columns of a ``cpu`` line that count towards the total. guest and guest_nice are
#: already included in user and nice, so they are left out (as top and psutil do).
_CPU_FIELDS = 8  # user nice system idle iowait irq softirq steal
_IDLE, _IOWAIT = 3, 4
_MAX_READ = 4 * 1024 * 1024


class ProcError(ValueError):
    """``/proc`` cannot be read or understood; the message says which file and why."""


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
