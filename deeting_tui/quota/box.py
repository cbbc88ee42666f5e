"""One worker under the watchdog: its samples judged against its limits, and its fate.

A Box keeps a worker's recent samples, decides when one passes a bound (memory, tasks, CPU,
the memory cgroup's own kill, the disk quota as its folders are accounted or walked), and
carries out the outcome once: stop it (the crash rules decide on a restart) or, for disk,
disable it, with one notice and one line in the plugin's log. The loop that samples every
box, and the cgroups it is put in, are the Confinement's (watchdog.py).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from . import usage
from .cgroup_hierarchies import Cgroups
from .cgroups import KernelCgroups, WorkerCgroup
from .diskaccount import Account
from .diskwatch import DiskWatch
from .policy import WatchdogPolicy

log = logging.getLogger("deeting.watchdog")


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


class Guard(Protocol):
    """What a box needs of the Confinement that watches it (watchdog.py)."""

    policy: WatchdogPolicy
    cgroups: Cgroups
    kernel_cgroups: KernelCgroups | None
    boxes: dict[int, Box]
    disk: DiskWatch

    def scan_disk(self, box: Box, sample: usage.Usage) -> None:
        """Measure ``box``'s folders again now (``sample`` is its latest)."""


class Box:
    """One worker under watch: its cgroup (if any), its recent samples, its fate."""

    def __init__(
        self,
        confinement: Guard,
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
