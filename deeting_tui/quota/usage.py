"""What a plugin uses, measured from outside, and the rules that say when that is too much.

Readers take /proc and folder trees as they are; rules are pure functions over samples, so
each can be tested with made-up numbers. The watchdog (watchdog.py) joins the two.

Costs: one ``/proc/PID/stat`` read per process per sample (CPU time, threads, resident
pages in one line); ``smaps_rollup`` (a page-table walk) only when the cheap resident total
is already over the limit, to count shared pages once (proportionally) and ignore file
pages that are merely mapped; a folder walk for disk, in a thread, only after activity.
"""

from __future__ import annotations

import os
import resource
import stat
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from deeting_tui import procgroup

MIB = 1024 * 1024
PAGE = resource.getpagesize()
TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class ProcessSample:
    pid: int
    pgrp: int
    cpu_seconds: float  # user + system, its own and its reaped children's
    threads: int
    resident_bytes: int


def read_process(pid: int | str) -> ProcessSample | None:
    """One process from /proc/PID/stat; None when it is gone or a zombie."""
    fields = procgroup.stat_fields(pid)
    if fields is None or len(fields) < 22 or fields[0] in ("Z", "X"):
        return None
    try:
        ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))
        return ProcessSample(
            int(pid), int(fields[2]), ticks / TICKS, int(fields[17]), int(fields[21]) * PAGE
        )
    except ValueError:
        return None


def processes_in_groups(pgids: set[int]) -> dict[int, list[ProcessSample]]:
    """Every live process of the given process groups, by group: one pass over /proc."""
    found: dict[int, list[ProcessSample]] = {pgid: [] for pgid in pgids}
    try:
        names = os.listdir("/proc")
    except OSError:
        return found
    for name in names:
        if name.isdigit():
            sample = read_process(name)
            if sample is not None and sample.pgrp in found:
                found[sample.pgrp].append(sample)
    return found


def processes(pids: Iterable[int]) -> list[ProcessSample]:
    """The live ones among ``pids`` (a cgroup's members)."""
    return [s for s in (read_process(pid) for pid in pids) if s is not None]


def proportional_memory(pid: int) -> int | None:
    """Anonymous + shared-memory (shm, memfd, tmpfs) pages and swap, each shared page
    counted as its share: what the process really holds. 0 for a process that is gone or
    exiting (it holds no memory any more); None when we may not look."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            text = f.read().decode("ascii", "replace")
    except (FileNotFoundError, ProcessLookupError):
        return 0
    except OSError:
        return None
    total = 0
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("Pss_Anon", "Pss_Shmem", "SwapPss"):
            parts = rest.split()
            if parts and parts[0].isdigit():
                total += int(parts[0]) * 1024
    return total


@dataclass(frozen=True)
class Usage:
    """One plugin at one moment."""

    at: float  # monotonic seconds
    processes: int
    tasks: int  # processes and threads
    cpu_seconds: float
    memory_bytes: int
    requests_sent: int  # by the kernel to this worker, ever
    calls_in_flight: int


def memory_of(samples: Sequence[ProcessSample], limit_bytes: int) -> int:
    """The resident total, or — when that is over ``limit_bytes`` — the proportional one,
    which does not count a page shared by many processes many times."""
    resident = sum(s.resident_bytes for s in samples)
    if resident <= limit_bytes:
        return resident
    total = 0
    for sample in samples:
        share = proportional_memory(sample.pid)
        total += sample.resident_bytes if share is None else share
    return total


# -- rules ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Breach:
    """A limit a plugin went over: which, by how much, in words."""

    limit: str  # the kimai.json limits key
    used: str
    allowed: str
    detail: str = ""

    def reason(self) -> str:
        """Completes "plugin 'x' worker …" (the supervisor's crash notice)."""
        what = f" {self.detail}" if self.detail else ""
        return (
            f"was stopped: it used {self.used}{what}, over its limit of {self.allowed} — "
            f"if it needs more, raise limits.{self.limit} in its kimai.json"
        )

    def log_line(self, plugin: str) -> str:
        return (
            f"deeting: plugin '{plugin}' stopped: limits.{self.limit} — used {self.used}"
            f"{' ' + self.detail if self.detail else ''}, allowed {self.allowed}"
        )


@dataclass(frozen=True)
class WatchLimits:
    """The limits the watchdog checks (from kimai.json) and which it leaves to the OS."""

    memory_mb: int
    tasks: int
    cpu_percent: int
    idle_cpu_percent: int
    cpu_throttled: bool = False  # a cgroup cpu quota holds cpu_percent already


def check_usage(limits: WatchLimits, now: Usage) -> Breach | None:
    """Memory and tasks: judged on one sample."""
    if now.memory_bytes > limits.memory_mb * MIB:
        return Breach("memory_mb", mib(now.memory_bytes), f"{limits.memory_mb} MiB")
    if now.tasks > limits.tasks:
        return Breach("tasks", f"{now.tasks} processes and threads", f"{limits.tasks}", "at once")
    return None


def check_cpu(
    limits: WatchLimits,
    history: Sequence[Usage],
    window: float,
    idle_window: float | None = None,
) -> Breach | None:
    """CPU: judged on the last seconds of samples (oldest first).

    Over ``idle_cpu_percent`` on average over ``idle_window`` seconds while no call was in
    flight at any sample and no request was sent in between → busy on its own (a thread left
    spinning after its call returned): judged over a short window, so such a thread is
    stopped within seconds, not left to burn a core. Work done for events (ticks, streams)
    is idle work too, which is why that limit is still an average over seconds: a plugin that
    wakes every second for a few milliseconds stays far below it. Over ``cpu_percent`` on
    average over ``window`` → too much (unless a cgroup quota throttles it instead).
    """
    idle = _average(history, window if idle_window is None else idle_window)
    if idle is not None:
        percent, elapsed, since = idle
        quiet = all(u.calls_in_flight == 0 for u in since)
        quiet = quiet and since[-1].requests_sent == since[0].requests_sent
        if quiet and percent > limits.idle_cpu_percent:
            return Breach(
                "idle_cpu_percent",
                f"{percent:.0f}% of a core",
                f"{limits.idle_cpu_percent}%",
                f"over {elapsed:.0f} s with no call in flight",
            )
    overall = _average(history, window)
    if overall is not None and not limits.cpu_throttled:
        percent, elapsed, _ = overall
        if percent > limits.cpu_percent:
            return Breach(
                "cpu_percent",
                f"{percent:.0f}% of a core",
                f"{limits.cpu_percent}%",
                f"over {elapsed:.0f} s",
            )
    return None


def _average(history: Sequence[Usage], window: float) -> tuple[float, float, list[Usage]] | None:
    """(percent of a core, seconds, the samples) over the last full ``window``, or None
    before there is a full window to judge."""
    if len(history) < 2:
        return None
    now = history[-1]
    start = None
    for usage in history:
        if usage.at <= now.at - window:
            start = usage
        else:
            break
    if start is None:
        return None  # not a full window yet
    elapsed = now.at - start.at
    percent = (now.cpu_seconds - start.cpu_seconds) / elapsed * 100 if elapsed > 0 else 0.0
    return percent, elapsed, [u for u in history if u.at >= start.at]


def disk_breach(used_bytes: int, disk_mb: int) -> Breach | None:
    if used_bytes > disk_mb * MIB:
        return Breach("disk_mb", mib(used_bytes), f"{disk_mb} MiB", "in its folders")
    return None


def disk_reason(plugin: str, breach: Breach, folders: Sequence[Path]) -> str:
    """Why a plugin over its disk quota is stopped, and how to get it back: the enable that
    follows is the kernel's hint (``Fix.ENABLE``), phrased by each front end."""
    where = ", ".join(str(folder) for folder in folders)
    return (
        f"plugin '{plugin}' was stopped: its folders hold {breach.used}, over its disk limit "
        f"of {breach.allowed} (limits.disk_mb) — free space in {where} (or raise "
        f"limits.disk_mb in its kimai.json), then enable it again"
    )


def disk_problem(plugin: str, folders: Sequence[Path], disk_mb: int) -> str | None:
    """Why ``plugin`` may not start now (over its disk quota), or None. Walks its folders."""
    breach = disk_breach(folder_usage(folders), disk_mb)
    return disk_reason(plugin, breach, folders) if breach is not None else None


# -- disk -----------------------------------------------------------------------------------


def tree_entries(folders: Iterable[Path | str]) -> Iterator[tuple[str, os.stat_result]]:
    """Every entry under ``folders`` with its lstat, depth first; symbolic links are not
    followed, unreadable entries and missing folders are passed over."""
    stack = [str(folder) for folder in folders]
    while stack:
        try:
            entries = os.scandir(stack.pop())
        except OSError:
            continue
        with entries:
            for entry in entries:
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISDIR(info.st_mode):
                    stack.append(entry.path)
                yield entry.path, info


def folder_usage(folders: Iterable[Path]) -> int:
    """Bytes allocated on disk to everything under ``folders`` (each inode once; symbolic
    links are not followed), as diskwatch.py counts them. Missing folders hold nothing."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for _path, info in tree_entries(folders):
        key = (info.st_dev, info.st_ino)
        if key in seen:
            continue
        seen.add(key)
        total += max(info.st_blocks * 512, 0) if hasattr(info, "st_blocks") else info.st_size
    return total


def mib(size: int) -> str:
    return f"{size / MIB:.0f} MiB"
