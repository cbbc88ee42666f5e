"""Holding each plugin to its limits: a cgroup where the machine allows one, a watchdog always.

The OS bounds what it can at once, inside the worker (rlimits, set by the worker itself) and
around it (a cgroup per worker: memory of every kind, tasks, CPU quota, ``cgroup.kill``).
What no OS mechanism bounds per plugin here, one asyncio task per kernel samples: memory
across all the plugin's processes, their task count, and CPU (overall, and while nothing
asked the plugin to work). The disk its folders use is accounted as it is written
(diskwatch.py: inotify, a running total per plugin), with a walk of the folders now and then
as a check — or, where inotify cannot account them, as the measure. A plugin over a bound is
stopped — its whole process group or cgroup — with one notice naming the limit and how to
raise it, and one line in its log. Never the kernel.

Memory, tasks and CPU stops count towards the crash-loop rule (3 in 5 minutes disables the
plugin): a plugin that keeps blowing a limit would otherwise be killed and restarted forever,
each round costing what the limit was there to save. A plugin over its disk quota is not
restarted at all — the files do not go away by restarting — but disabled with a message
saying what to free, and ``enable`` refuses it until it is back under.

Cost per sample (every ``interval``): one ``/proc/PID/stat`` read per process of each
plugin (the members of its cgroup, or one /proc pass by process group without cgroups).
Disk: one lstat per inotify event; folder walks run in a thread, at most every
``disk_check`` while a plugin is active (every ``disk_interval``, and after calls, for a
plugin whose folders are walked instead of watched).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from . import usage
from .cgroup_hierarchies import Cgroups
from .cgroups import KernelCgroups, WorkerCgroup, WorkerLimits
from .diskaccount import Account
from .diskwatch import DiskWatch

log = logging.getLogger("deeting.watchdog")


@dataclass(frozen=True)
class WatchdogPolicy:
    """Timing knobs; tests shrink them, the product keeps the defaults."""

    interval: float = 0.5  # seconds between samples
    cpu_window: float = 10.0  # cpu_percent is an average over this
    idle_window: float = 3.0  # idle_cpu_percent over this: a spinning thread goes in seconds
    disk_check: float = 30.0  # watched folders are walked, as a check, at most this often
    disk_interval: float = 5.0  # folders not watched are walked at most this often ...
    disk_after_call: float = 1.0  # ... and this long after the last walk once a call ended


class Watched(Protocol):
    """What the watchdog needs of a supervisor (workers/supervisor.py)."""

    name: str
    config: Any  # WorkerConfig: limits, folders, log path
    denials: Any  # DenialReporter: bounds hit but not stopped for, told once, logged

    @property
    def activity(self) -> tuple[int, int]:
        """(requests sent to the worker so far, calls in flight now)."""
        ...

    def stop_for_limit(self, generation: int, reason: str) -> None: ...

    def disable_for_limit(self, generation: int, reason: str) -> None: ...


class Box:
    """One worker under watch: its cgroup (if any), its recent samples, its fate."""

    def __init__(
        self,
        confinement: Confinement,
        supervisor: Watched,
        pid: int,
        generation: int,
        cgroup: WorkerCgroup | None,
    ) -> None:
        self.confinement = confinement
        self.supervisor = supervisor
        self.pid = pid
        self.generation = generation
        self.cgroup = cgroup
        c = supervisor.config
        self.limits = usage.WatchLimits(
            c.memory_mb,
            c.tasks,
            c.cpu_percent,
            c.idle_cpu_percent,
            cpu_throttled=cgroup is not None and "cpu" in confinement.cgroups.controllers,
        )
        self.folders: tuple[Path, ...] = (c.data_dir, c.cache_dir, c.tmp_dir)
        self.disk_mb: int = c.disk_mb
        self.history: deque[usage.Usage] = deque()
        self.stopped = False  # a limit was hit: one notice per worker, not one per sample
        self.oom_seen = 0
        self.refused_seen = 0  # forks and threads pids.max refused, as last seen
        self.last_disk = float("-inf")
        self.disk_sent = -1  # requests_sent at the last disk scan
        self.disk_cpu = -1.0
        self.walking = False  # a walk of its folders (not watched) is in flight
        self.ended = False
        self.account: Account | None = None  # its folders, accounted as they are written
        self.pids: list[int] = [pid]  # its processes, as last sampled

    # -- sampling ----------------------------------------------------------------------------

    def observe(self, now: float, processes: Sequence[usage.ProcessSample]) -> None:
        if self.stopped or self.ended or not processes:
            return
        self.pids = [p.pid for p in processes]
        sent, in_flight = self.supervisor.activity
        sample = usage.Usage(
            at=now,
            processes=len(processes),
            tasks=sum(p.threads for p in processes),
            cpu_seconds=sum(p.cpu_seconds for p in processes),
            memory_bytes=usage.memory_of(processes, self.limits.memory_mb * usage.MIB),
            requests_sent=sent,
            calls_in_flight=in_flight,
        )
        self.history.append(sample)
        keep = self.confinement.policy.cpu_window + 3 * self.confinement.policy.interval
        while self.history and self.history[0].at < now - keep:
            self.history.popleft()
        breach = (
            usage.check_usage(self.limits, sample)
            or usage.check_cpu(
                self.limits,
                self.history,
                self.confinement.policy.cpu_window,
                self.confinement.policy.idle_window,
            )
            or self._killed_by_the_os()
        )
        if breach is not None:
            self.stop(breach)
            return
        self._tell_refused_tasks()
        if self._disk_due(sample):
            self.confinement.scan_disk(self, sample)

    def _killed_by_the_os(self) -> usage.Breach | None:
        """The memory cgroup killed one of its processes (the worker may live on)."""
        if self.cgroup is None:
            return None
        kills = self.cgroup.oom_kills()
        if kills <= self.oom_seen:
            return None
        self.oom_seen = kills
        return _oom_breach(self.limits.memory_mb)

    def _tell_refused_tasks(self) -> None:
        """The pids cgroup refused a process or thread: the bound held and the plugin runs
        on, but its user (and its log) hear which limit said no."""
        if self.cgroup is None:
            return
        refused = self.cgroup.tasks_refused()
        if refused > self.refused_seen:
            self.refused_seen = refused
            self.supervisor.denials.refused(
                f"plugin '{self.supervisor.name}' was refused a new process or thread: it "
                f"has reached limits.tasks ({self.limits.tasks}) — if it needs more, raise "
                "limits.tasks in its kimai.json"
            )

    def _disk_due(self, sample: usage.Usage) -> bool:
        if self.scanning:
            return False
        policy = self.confinement.policy
        since = sample.at - self.last_disk
        called = sample.requests_sent != self.disk_sent
        active = called or sample.cpu_seconds > self.disk_cpu
        if self.watched:
            return active and since >= policy.disk_check  # a check: events keep the count
        if called and sample.calls_in_flight == 0 and since >= policy.disk_after_call:
            return True  # a call ended: what did it leave on disk?
        return active and since >= policy.disk_interval

    @property
    def scanning(self) -> bool:
        """A walk of its folders is in flight (watched or not)."""
        return self.walking or (self.account is not None and self.account.scanning)

    @property
    def watched(self) -> bool:
        """Its folders are accounted as they are written (not only walked now and then)."""
        return self.account is not None and self.account.live

    def disk_over(self, used: int) -> None:
        """Its folders' running total passed the quota (diskwatch.Owner)."""
        breach = usage.disk_breach(used, self.disk_mb)
        if breach is not None and not self.stopped and not self.ended:
            self.over_disk(breach)

    def disk_pids(self) -> list[int]:
        """Its processes now: its cgroup's, or as last sampled (diskwatch.Owner)."""
        if self.cgroup is not None:
            return self.cgroup.pids()
        return self.pids

    def disk_fallback(self, reason: str) -> None:
        """Events can no longer account its folders (diskwatch.Owner): walk them."""
        interval = self.confinement.policy.disk_interval
        line = (
            f"deeting: plugin '{self.supervisor.name}' limits.disk_mb: its folders are walked "
            f"every {interval:g} s while it is active, no longer watched as they are written "
            f"— {reason}"
        )
        self.note(line)
        log.warning("%s", line)
        self.last_disk = float("-inf")  # walk them now

    # -- outcomes ----------------------------------------------------------------------------

    def stop(self, breach: usage.Breach) -> None:
        """Stop the worker (its restart follows the crash rules), say so once."""
        self.stopped = True
        self.note(breach.log_line(self.supervisor.name))
        log.warning("plugin %s: %s", self.supervisor.name, breach.log_line(self.supervisor.name))
        self.supervisor.stop_for_limit(self.generation, breach.reason())

    def over_disk(self, breach: usage.Breach) -> None:
        """Disable the plugin: restarting would not free a byte. Killed first, told after:
        every millisecond it runs on, it writes."""
        self.stopped = True
        reason = usage.disk_reason(self.supervisor.name, breach, self.folders)
        self.supervisor.disable_for_limit(self.generation, reason)
        self.note(breach.log_line(self.supervisor.name))
        log.warning("%s", reason)

    def note(self, line: str) -> None:
        """One line in the plugin's own log, where its author will look."""
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        with contextlib.suppress(OSError):
            fd = os.open(self.supervisor.config.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            try:
                os.write(fd, f"{stamp} {line}\n".encode())
            finally:
                os.close(fd)

    def end(self) -> str | None:
        """The worker exited: empty and remove its cgroup. Returns why, when the OS stopped
        it for a limit (the memory cgroup's kill) and nobody has said so yet."""
        if self.ended:
            return None
        self.ended = True
        self.confinement.boxes.pop(id(self), None)
        if self.account is not None:
            self.confinement.disk.release(self.account, self)
        if self.cgroup is None:
            return None
        breach = None if self.stopped else self._killed_by_the_os()
        survivors = self.cgroup.kill()
        if survivors:
            log.error("plugin %s: %s outlived cgroup.kill", self.supervisor.name, survivors)
        if self.cgroup.remove() and self.confinement.kernel_cgroups is not None:
            self.confinement.kernel_cgroups.forget(self.cgroup)
        if breach is None:
            return None
        self.stopped = True
        self.note(breach.log_line(self.supervisor.name))
        return breach.reason()


def _oom_breach(memory_mb: int) -> usage.Breach:
    return usage.Breach(
        "memory_mb", f"more than {memory_mb} MiB", f"{memory_mb} MiB", "(the OS killed it)"
    )


class Confinement:
    """The kernel's resource guard: cgroups for its workers and the watchdog over them."""

    def __init__(self, cgroups: Cgroups | None = None, policy: WatchdogPolicy | None = None):
        self.cgroups = Cgroups.detect() if cgroups is None else cgroups
        self.policy = policy or WatchdogPolicy()
        self.kernel_cgroups = KernelCgroups(self.cgroups) if self.cgroups.usable else None
        self.boxes: dict[int, Box] = {}
        self.disk = DiskWatch()
        self._scans: set[asyncio.Task[None]] = set()

    def admit(
        self,
        supervisor: Watched,
        pid: int,
        generation: int,
        contain: Callable[[str], None] | None = None,
    ) -> Box:
        """Put a just-started worker (no plugin code has run yet) in its own cgroup where
        possible, and under watch. ``contain`` tells the worker's reaper its cgroup v2
        folder, for the case the kernel dies before the worker."""
        cgroup = None
        if self.kernel_cgroups is not None:
            c = supervisor.config
            try:
                cgroup = self.kernel_cgroups.worker(
                    supervisor.name, WorkerLimits(c.memory_mb, c.tasks, c.cpu_percent)
                )
                cgroup.add(pid)
                v2 = self.cgroups.v2
                if contain is not None and v2 is not None and v2 in cgroup.folders:
                    contain(str(cgroup.folders[v2]))
            except OSError as exc:
                log.warning("plugin %s: no cgroup for its worker: %s", supervisor.name, exc)
                if cgroup is not None:
                    cgroup.remove()
                    self.kernel_cgroups.forget(cgroup)
                cgroup = None
        box = Box(self, supervisor, pid, generation, cgroup)
        self.boxes[id(box)] = box
        box.account = self.disk.watch(box.folders, box.disk_mb * usage.MIB, box)
        if box.watched:
            box.last_disk = time.monotonic()  # its first walk is under way
        return box

    async def run(self) -> None:
        """Sample every worker under watch, forever (cancel to stop)."""
        if self.kernel_cgroups is not None:
            self.kernel_cgroups.sweep()
        while True:
            await asyncio.sleep(self.policy.interval)  # pacing, not synchronisation
            try:
                self.sample()
            except Exception:  # a bug here must not end the watch
                log.exception("watchdog sample failed")

    def sample(self) -> None:
        now = time.monotonic()
        boxes = list(self.boxes.values())
        groups = {box.pid for box in boxes if box.cgroup is None}
        by_group = usage.processes_in_groups(groups) if groups else {}
        for box in boxes:
            if box.cgroup is not None:
                found = usage.processes(box.cgroup.pids())
            else:
                found = by_group.get(box.pid, [])
            box.observe(now, found)

    def scan_disk(self, box: Box, sample: usage.Usage) -> None:
        if box.account is not None and box.account.live:
            box.last_disk = sample.at
            box.disk_sent, box.disk_cpu = sample.requests_sent, sample.cpu_seconds
            box.account.rescan()  # the walk checks the running total, and re-arms watches
            return
        box.walking = True
        task = asyncio.get_running_loop().create_task(self._scan(box, sample))
        self._scans.add(task)
        task.add_done_callback(self._scans.discard)

    async def _scan(self, box: Box, sample: usage.Usage) -> None:
        try:
            used = await asyncio.to_thread(usage.folder_usage, box.folders)
        finally:
            box.walking = False
        box.last_disk = time.monotonic()
        box.disk_sent, box.disk_cpu = sample.requests_sent, sample.cpu_seconds
        breach = usage.disk_breach(used, box.disk_mb)
        if breach is not None and not box.stopped and not box.ended:
            box.over_disk(breach)

    def close(self) -> None:
        """Stop watching; remove this kernel's cgroups (every worker has ended by now)."""
        for task in self._scans:
            task.cancel()
        self.disk.close()
        if self.kernel_cgroups is not None:
            self.kernel_cgroups.close()


def describe_limits(
    limits: Any,
    cgroups: Cgroups | None = None,
    *,
    user_namespaces: bool = False,
    disk_walked: str | None = None,
) -> dict[str, str]:
    """Each limit of ``limits`` (plugin.manifest.Limits) with what enforces it on this
    machine, for ``deeting plugin info``; ``containment`` says how a worker's processes end
    with it. ``user_namespaces``: the sandbox's probe found them (a worker not run by root
    then counts its tasks under RLIMIT_NPROC in its own). ``disk_walked``: why its folders
    are walked rather than accounted as they are written (diskwatch.walked_instead), None
    when they are watched. Reads /proc, writes nothing."""
    cgroups = Cgroups.detect() if cgroups is None else cgroups
    where = cgroups.describe()
    policy = WatchdogPolicy()
    window = f"{policy.cpu_window:g} s average"

    def enforced(controller: str, fallback: str) -> str:
        found = where.get(controller)
        return found if found is not None else fallback

    if os.geteuid() != 0 and user_namespaces:
        task_fallback = "RLIMIT_NPROC in its own user namespace + watchdog"
    else:
        task_fallback = "watchdog"  # root is exempt from RLIMIT_NPROC
    containment = (
        f"{where['containment']} + process group"
        if where["containment"]
        else "process group + reaper"
    )
    cpu = f"{where['cpu']} quota" if where.get("cpu") else f"watchdog, {window}"
    if disk_walked is None:
        disk = (
            "inotify: its folders as they are written; walked every "
            f"{policy.disk_check:g} s while active, as a check"
        )
    else:
        disk = (
            f"watchdog: its folders walked after calls and every {policy.disk_interval:g} s "
            f"while active — {disk_walked}"
        )
    return {
        "containment": containment,
        "call_timeout": f"{limits.call_timeout:g} s (the kernel's deadline)",
        "memory_mb": (
            f"{limits.memory_mb} MiB (RLIMIT_AS per process + "
            f"{enforced('memory', 'watchdog: all its processes')})"
        ),
        "tasks": f"{limits.tasks} ({enforced('pids', task_fallback)})",
        "disk_mb": f"{limits.disk_mb} MiB (RLIMIT_FSIZE per file + {disk})",
        "cpu_percent": f"{limits.cpu_percent}% of a core ({cpu})",
        "idle_cpu_percent": (
            f"{limits.idle_cpu_percent}% of a core with no call in flight "
            f"(watchdog, {policy.idle_window:g} s average)"
        ),
    }
