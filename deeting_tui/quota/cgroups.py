"""Per-worker cgroups: made, limited, emptied and removed, and swept after a dead kernel.

A cgroup is the one container a plugin's processes cannot leave, and the place the OS
counts their memory (shared and tmpfs pages too), tasks and CPU together. Which hierarchies
this machine lets the kernel use is found by cgroup_hierarchies.py; this module writes in
them, and only in folders it made.

Layout: ``BASE/deeting-PID-START-N/PLUGIN-M`` in each hierarchy used, BASE being the kernel's
own cgroup there. ``PID-START`` names the kernel process (its start time tells a dead kernel
from a reused pid), so the next kernel can sweep what a SIGKILLed one left. Where none of
this is possible, containment is the worker's process group (see ``deeting_tui.procgroup``)
and the watchdog counts resources from /proc; ``Cgroups.describe()`` says which applies here.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import logging
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from deeting_tui import procgroup

from .cgroup_hierarchies import Cgroups, Hierarchy

log = logging.getLogger("deeting.cgroups")
CPU_PERIOD_US = 100_000
PREFIX = "deeting-"
MIB = 1024 * 1024
KILL_TIMEOUT = 2.0

_sequence = itertools.count(1)


@dataclass(frozen=True)
class WorkerLimits:
    """What a worker's cgroup is held to (kimai.json limits)."""

    memory_mb: int
    tasks: int
    cpu_percent: int


class KernelCgroups:
    """One kernel's cgroups: a folder per hierarchy, made on first use, gone at close."""

    def __init__(self, cgroups: Cgroups) -> None:
        self.cgroups = cgroups
        self.name = f"{PREFIX}{os.getpid()}-{_start_time(os.getpid())}-{next(_sequence)}"
        self._made: dict[Hierarchy, Path] = {}
        self._workers: list[WorkerCgroup] = []
        self._counter = itertools.count(1)
        self._swept = False

    def sweep(self) -> None:
        """Once per kernel, before its first cgroup: clear what dead kernels left."""
        if not self._swept:
            self._swept = True
            for folder in sweep_stale(self.cgroups):
                log.info("removed %s, left by a kernel that is gone", folder)

    def _folder(self, hierarchy: Hierarchy) -> Path:
        folder = self._made.get(hierarchy)
        if folder is None:
            self.sweep()
            folder = hierarchy.base / self.name
            folder.mkdir(exist_ok=True)
            self._made[hierarchy] = folder
            if hierarchy.version == 2 and hierarchy.controllers:
                wanted = " ".join(f"+{name}" for name in sorted(hierarchy.controllers))
                _write(folder / "cgroup.subtree_control", wanted)
        return folder

    def worker(self, plugin: str, limits: WorkerLimits) -> WorkerCgroup:
        """A fresh, empty cgroup for one worker, its limits set (OSError if it cannot be)."""
        name = f"{plugin}-{next(self._counter)}"
        made: dict[Hierarchy, Path] = {}
        try:
            for hierarchy in self.cgroups.hierarchies():
                folder = self._folder(hierarchy) / name
                folder.mkdir()
                made[hierarchy] = folder
            group = WorkerCgroup(self.cgroups, made)
            group.set_limits(limits)
        except OSError:
            WorkerCgroup(self.cgroups, made).remove()
            raise
        self._workers.append(group)
        return group

    def forget(self, group: WorkerCgroup) -> None:
        with contextlib.suppress(ValueError):
            self._workers.remove(group)

    def close(self) -> None:
        """End every worker cgroup left (killing what is still in it) and our folders."""
        for group in self._workers:
            group.kill()
            group.remove()
        self._workers.clear()
        for folder in self._made.values():
            with contextlib.suppress(OSError):
                folder.rmdir()
        self._made.clear()


class WorkerCgroup:
    """One worker's cgroup, in every hierarchy used."""

    def __init__(self, cgroups: Cgroups, folders: dict[Hierarchy, Path]) -> None:
        self.cgroups = cgroups
        self.folders = folders
        self.removed = False

    def _in(self, controller: str) -> tuple[Path, int] | None:
        """The folder enforcing ``controller`` and its hierarchy's version, if any."""
        hierarchy = self.cgroups.controllers.get(controller)
        if hierarchy is None or hierarchy not in self.folders:
            return None
        return self.folders[hierarchy], hierarchy.version

    def set_limits(self, limits: WorkerLimits) -> None:
        memory = self._in("memory")
        if memory is not None:
            folder, version = memory
            size = str(limits.memory_mb * MIB)
            if version == 2:  # swap is memory too
                _write(folder / "memory.max", size)
                _write_if_present(folder / "memory.swap.max", "0")
            else:  # memsw (memory + swap) may not be below the memory limit: written after
                _write(folder / "memory.limit_in_bytes", size)
                _write_if_present(folder / "memory.memsw.limit_in_bytes", size)
        pids = self._in("pids")
        if pids is not None:
            _write(pids[0] / "pids.max", str(limits.tasks))
        cpu = self._in("cpu")
        if cpu is not None:
            folder, version = cpu
            quota = max(1000, CPU_PERIOD_US * limits.cpu_percent // 100)
            if version == 2:
                _write(folder / "cpu.max", f"{quota} {CPU_PERIOD_US}")
            else:
                _write(folder / "cpu.cfs_period_us", str(CPU_PERIOD_US))
                _write(folder / "cpu.cfs_quota_us", str(quota))

    def add(self, pid: int) -> None:
        """Move a process (and its threads) into every hierarchy's cgroup."""
        for folder in self.folders.values():
            _write(folder / "cgroup.procs", str(pid))

    def pids(self) -> list[int]:
        """The processes in it (read from one hierarchy: they are the same in all)."""
        for folder in self.folders.values():
            return _read_pids(folder)
        return []

    def oom_kills(self) -> int:
        """How many processes the memory controller killed for going over the limit."""
        memory = self._in("memory")
        if memory is None:
            return 0
        folder, version = memory
        name = "memory.events" if version == 2 else "memory.oom_control"
        with contextlib.suppress(OSError, ValueError):
            for line in (folder / name).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        return 0

    def tasks_refused(self) -> int:
        """How many times pids.max refused a fork or a thread (``max`` in pids.events)."""
        pids = self._in("pids")
        if pids is None:
            return 0
        with contextlib.suppress(OSError, ValueError):
            for line in (pids[0] / "pids.events").read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "max":
                    return int(value)
        return 0

    def kill(self, timeout: float = KILL_TIMEOUT) -> list[int]:
        """SIGKILL everything in it and wait until it is empty; returns survivors."""
        deadline = time.monotonic() + timeout
        v2 = self.cgroups.v2
        while True:
            if v2 is not None and v2 in self.folders:
                _write_if_present(self.folders[v2] / "cgroup.kill", "1")
            alive: set[int] = set()
            for folder in self.folders.values():
                alive.update(_read_pids(folder))
            alive = {pid for pid in alive if _running(pid)}
            if not alive:
                return []
            for pid in alive:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            survivors = procgroup.wait_exited(alive, deadline)
            if survivors and time.monotonic() >= deadline:
                return survivors

    def remove(self) -> bool:
        """rmdir every folder; False when one is still busy (a process not yet gone)."""
        done = True
        for folder in self.folders.values():
            try:
                folder.rmdir()
            except FileNotFoundError:
                pass
            except OSError as exc:
                done = False
                log.warning("could not remove cgroup %s: %s", folder, exc.strerror)
        self.removed = done
        return done


def sweep_stale(cgroups: Cgroups) -> list[Path]:
    """Kill and remove what kernels that are no longer running left in our hierarchies (a
    SIGKILLed kernel cannot clean up); returns the folders removed."""
    removed: list[Path] = []
    for hierarchy in cgroups.hierarchies():
        try:
            entries = list(hierarchy.base.iterdir())
        except OSError:
            continue
        for folder in entries:
            owner = _owner(folder.name)
            if owner is None or _start_time(owner[0]) == owner[1]:
                continue  # not ours, or that kernel still runs
            for child in [p for p in folder.iterdir() if p.is_dir()]:
                group = WorkerCgroup(cgroups, {hierarchy: child})
                group.kill()
                group.remove()
            with contextlib.suppress(OSError):
                folder.rmdir()
                removed.append(folder)
    return removed


def _owner(name: str) -> tuple[int, str] | None:
    """(pid, start time) from ``deeting-PID-START-N``, or None for another folder."""
    if not name.startswith(PREFIX):
        return None
    parts = name[len(PREFIX) :].split("-")
    if len(parts) != 3 or not all(part.isdigit() for part in parts):
        return None
    return int(parts[0]), parts[1]


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot ("0" when it is gone)."""
    fields = procgroup.stat_fields(pid)
    return fields[19] if fields is not None and len(fields) > 19 else "0"


def _running(pid: int) -> bool:
    fields = procgroup.stat_fields(pid)
    return fields is not None and bool(fields) and fields[0] not in ("Z", "X")


def _read_pids(folder: Path) -> list[int]:
    try:
        text = (folder / "cgroup.procs").read_text()
    except OSError:
        return []
    return [int(line) for line in text.split() if line.isdigit()]


def _write(path: Path, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _write_if_present(path: Path, value: str) -> None:
    try:
        _write(path, value)
    except OSError as exc:
        if exc.errno not in (errno.ENOENT, errno.EINVAL, errno.EACCES, errno.EPERM):
            raise
