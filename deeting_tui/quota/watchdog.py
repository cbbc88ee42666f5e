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

This module is the kernel-wide part (the cgroups, the sampling loop, what enforces each limit
here); one worker's judgement and fate are box.py.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from . import usage
from .box import Box, Watched
from .cgroup_hierarchies import Cgroups
from .cgroups import KernelCgroups, WorkerLimits
from .diskwatch import DiskWatch
from .policy import WatchdogPolicy

log = logging.getLogger("deeting.watchdog")

#: WatchdogPolicy is defined in policy.py (box.py reads it too) and imported from here.
__all__ = ["Confinement", "WatchdogPolicy", "describe_limits"]


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
