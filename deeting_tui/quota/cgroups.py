"""Per-worker cgroups, wherever this machine lets the kernel make them.

A cgroup is the one container a plugin's processes cannot leave, and the place the OS
counts their memory (shared and tmpfs pages too), tasks and CPU together. Two kinds help:

* **cgroup v2**, where the kernel may write to its own cgroup (root, or a subtree systemd
  delegated to the user): one cgroup per worker, ``cgroup.kill`` to end everything in it at
  once, and the ``memory``/``pids``/``cpu`` controllers if the kernel's own cgroup already
  hands them down (we never change a cgroup we did not make);
* **cgroup v1** hierarchies for ``pids``, ``memory`` and ``cpu``, where writable (as root on
  a hybrid machine, where v2 has no controllers).

Layout: ``BASE/deeting-PID-START-N/PLUGIN-M`` in each hierarchy used, BASE being the kernel's
own cgroup there. ``PID-START`` names the kernel process (its start time tells a dead kernel
from a reused pid), so the next kernel can sweep what a SIGKILLed one left. Where none of
this is possible, containment is the worker's process group (see ``deeting_tui.procgroup``)
and the watchdog counts resources from /proc; ``describe()`` says which applies here.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import logging
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from deeting_tui import procgroup

log = logging.getLogger("deeting.cgroups")

CONTROLLERS = ("pids", "memory", "cpu")
CPU_PERIOD_US = 100_000
PREFIX = "deeting-"
MIB = 1024 * 1024
KILL_TIMEOUT = 2.0

_sequence = itertools.count(1)


@dataclass(frozen=True)
class Hierarchy:
    """One mounted cgroup hierarchy and the kernel's own cgroup in it."""

    version: int
    controllers: frozenset[str]  # v1: bound to it; v2: handed down to our children
    base: Path

    def label(self, controller: str | None = None) -> str:
        return f"cgroup v{self.version}" + (f" {controller}" if controller else "")


@dataclass(frozen=True)
class WorkerLimits:
    """What a worker's cgroup is held to (kimai.json limits)."""

    memory_mb: int
    tasks: int
    cpu_percent: int


def parse_hierarchies(self_cgroup: str, mountinfo: str) -> list[Hierarchy]:
    """The hierarchies mounted here, each with our own cgroup as its base (pure: the texts
    of /proc/self/cgroup and /proc/self/mountinfo in, no file touched). v2 controllers are
    filled in by :meth:`Cgroups.detect`, which may read files."""
    own_v2: str | None = None
    own_v1: dict[str, str] = {}
    for line in self_cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        number, names, path = parts
        if number == "0" and names == "":
            own_v2 = path
        else:
            for name in names.split(","):
                own_v1[name] = path
    found: list[Hierarchy] = []
    seen: set[tuple[int, frozenset[str]]] = set()
    for line in mountinfo.splitlines():
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if not sep or len(fields) < 5 or len(tail) < 3:
            continue
        root, mountpoint = _unescape(fields[3]), _unescape(fields[4])
        fstype, options = tail[0], tail[2].split(",")
        if fstype == "cgroup2" and own_v2 is not None:
            version, controllers, own = 2, frozenset[str](), own_v2
        elif fstype == "cgroup":
            controllers = frozenset(options) & frozenset(CONTROLLERS)
            if not controllers:
                continue
            version, own = 1, own_v1.get(next(iter(sorted(controllers))), "")
            if not own:
                continue
        else:
            continue
        if (version, controllers) in seen:
            continue  # the same hierarchy mounted twice: the first mount will do
        relative = _below(own, root)
        if relative is None:
            continue  # our cgroup is not visible through this mount
        seen.add((version, controllers))
        found.append(Hierarchy(version, controllers, Path(mountpoint) / relative))
    return found


def _below(path: str, root: str) -> str | None:
    if root == "/":
        return path.lstrip("/")
    if path == root:
        return ""
    if path.startswith(root.rstrip("/") + "/"):
        return path[len(root.rstrip("/")) + 1 :]
    return None


def _unescape(text: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        text = text.replace(code, char)
    return text


def _writable(folder: Path) -> bool:
    return os.access(folder, os.W_OK | os.X_OK) and os.access(folder / "cgroup.procs", os.W_OK)


def _kernel_has_cgroup_kill() -> bool:
    """cgroup.kill came with Linux 5.14; the root cgroup has none to look at."""
    try:
        major, minor = (int(part) for part in os.uname().release.split(".")[:2])
    except ValueError:
        return False
    return (major, minor) >= (5, 14)


@dataclass(frozen=True)
class Cgroups:
    """What this machine lets the kernel do with cgroups (found once; writes nothing)."""

    v2: Hierarchy | None = None  # containment with cgroup.kill
    controllers: dict[str, Hierarchy] = field(default_factory=dict)  # name -> where enforced

    @classmethod
    def detect(cls, proc: Path = Path("/proc")) -> Cgroups:
        try:
            self_cgroup = (proc / "self" / "cgroup").read_text()
            mountinfo = (proc / "self" / "mountinfo").read_text()
        except OSError:
            return cls()
        return cls.from_hierarchies(parse_hierarchies(self_cgroup, mountinfo))

    @classmethod
    def from_hierarchies(
        cls, hierarchies: list[Hierarchy], cgroup_kill: bool | None = None
    ) -> Cgroups:
        """Keep the writable ones; v2 only with cgroup.kill. Reads each base's files."""
        v2: Hierarchy | None = None
        controllers: dict[str, Hierarchy] = {}
        kill = _kernel_has_cgroup_kill() if cgroup_kill is None else cgroup_kill
        for hierarchy in hierarchies:
            if not _writable(hierarchy.base):
                continue
            if hierarchy.version == 2 and kill and v2 is None:
                try:
                    handed_down = (hierarchy.base / "cgroup.subtree_control").read_text().split()
                except OSError:
                    handed_down = []
                v2 = Hierarchy(2, frozenset(handed_down) & frozenset(CONTROLLERS), hierarchy.base)
                for name in v2.controllers:
                    controllers[name] = v2
        for hierarchy in hierarchies:
            if hierarchy.version == 1 and _writable(hierarchy.base):
                for name in hierarchy.controllers:
                    controllers.setdefault(name, hierarchy)
        return cls(v2, controllers)

    @property
    def usable(self) -> bool:
        return self.v2 is not None or bool(self.controllers)

    def hierarchies(self) -> list[Hierarchy]:
        """Every hierarchy a worker gets a cgroup in (v2 first)."""
        found = [self.v2] if self.v2 is not None else []
        for hierarchy in self.controllers.values():
            if hierarchy not in found:
                found.append(hierarchy)
        return found

    def describe(self) -> dict[str, str | None]:
        """Which cgroup enforces what: ``containment`` and each controller (None: no cgroup)."""
        found: dict[str, str | None] = {
            "containment": "cgroup v2 (cgroup.kill)" if self.v2 is not None else None
        }
        for name in CONTROLLERS:
            hierarchy = self.controllers.get(name)
            found[name] = hierarchy.label(name) if hierarchy is not None else None
        return found


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
