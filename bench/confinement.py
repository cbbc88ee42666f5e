"""What holding plugins to their limits costs: a cgroup per worker, and the watchdog.

* cgroup: make a worker's cgroups (every hierarchy used here) with their limits, move a
  process in, and at its end cgroup.kill and remove them — per worker, in milliseconds.
  Where the kernel may not make cgroups (not root, no delegation) there is nothing to pay
  and the figure says so.
* watchdog: one sample of N running trivial workers (their processes read from /proc or
  their cgroup, the rules applied), in microseconds; at the default interval that is the
  share of one core the watchdog takes.

Start-to-ready with confinement is in ready.py's table (its "with cgroups" row).
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deeting_tui.quota.cgroup_hierarchies import Cgroups
from deeting_tui.quota.cgroups import KernelCgroups, WorkerLimits
from deeting_tui.quota.watchdog import Confinement, WatchdogPolicy
from deeting_tui.workers.supervisor import Supervisor

from .common import percentile
from .invoke import worker_config
from .launchers import close_launcher, default_launcher

WORKERS = 5
SAMPLES = 200


@dataclass
class ConfinementCost:
    mechanisms: dict[str, str | None]
    cgroup_ms: list[float]  # per worker: make + limit + move + kill + remove
    sample_us: list[float]  # one watchdog sample of WORKERS workers
    workers: int
    interval_s: float

    @property
    def watchdog_core_share(self) -> float:
        """Fraction of one core the watchdog takes at its default interval."""
        return percentile(self.sample_us, 50) / 1e6 / self.interval_s

    def as_json(self) -> dict[str, Any]:
        return {
            "mechanisms": self.mechanisms,
            "cgroup_per_worker_ms": _summary(self.cgroup_ms, 3) if self.cgroup_ms else None,
            "watchdog_sample_us": _summary(self.sample_us, 1),
            "watchdog_workers": self.workers,
            "watchdog_core_percent": round(self.watchdog_core_share * 100, 4),
        }

    def rows(self) -> list[tuple[str, ...]]:
        rows: list[tuple[str, ...]] = [("per-plugin limits", "n", "p50", "max", "mean")]
        if self.cgroup_ms:
            label = "cgroups per worker: make, limit, move, kill, remove"
            rows.append(_row(label, self.cgroup_ms, "ms"))
        else:
            rows.append(("cgroups per worker: none here (not writable)", "0", "", "", ""))
        rows.append(_row(f"watchdog: one sample of {self.workers} workers", self.sample_us, "us"))
        rows.append(
            (
                f"watchdog: share of a core at {1 / self.interval_s:g} samples/s",
                "",
                f"{self.watchdog_core_share * 100:.3f}%",
                "",
                "",
            )
        )
        return rows


def _summary(samples: list[float], digits: int) -> dict[str, float]:
    return {
        "n": len(samples),
        "p50": round(percentile(samples, 50), digits),
        "max": round(max(samples), digits),
        "mean": round(statistics.fmean(samples), digits),
    }


def _row(label: str, samples: list[float], unit: str) -> tuple[str, ...]:
    fmt = ".2f" if unit == "ms" else ".1f"
    return (
        label,
        str(len(samples)),
        f"{percentile(samples, 50):{fmt}} {unit}",
        f"{max(samples):{fmt}} {unit}",
        f"{statistics.fmean(samples):{fmt}} {unit}",
    )


def cgroup_times(cgroups: Cgroups, n: int) -> list[float]:
    """Per worker: its cgroups made and limited, a process moved in, killed, removed."""
    if not cgroups.usable:
        return []
    kernel = KernelCgroups(cgroups)
    samples = []
    try:
        for _ in range(n):
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
            try:
                began = time.perf_counter()
                group = kernel.worker("bench", WorkerLimits(1024, 128, 100))
                group.add(child.pid)
                group.kill()
                child.wait()
                group.remove()
                kernel.forget(group)
                samples.append((time.perf_counter() - began) * 1e3)
            finally:
                if child.poll() is None:
                    child.kill()
                    child.wait()
    finally:
        kernel.close()
    return samples


async def _sample_times(workers: int, samples: int) -> tuple[list[float], float]:
    policy = WatchdogPolicy()
    confinement = Confinement(policy=policy)
    _, launcher = default_launcher()
    supervisors = []
    try:
        with tempfile.TemporaryDirectory(prefix="deeting-bench-") as tmp:
            for index in range(workers):
                home = Path(tmp) / str(index)
                supervisor = Supervisor(worker_config(home), launcher, confinement=confinement)
                await supervisor.start()
                supervisors.append(supervisor)
            times = []
            for _ in range(samples):
                began = time.perf_counter()
                confinement.sample()
                times.append((time.perf_counter() - began) * 1e6)
                await asyncio.sleep(0)  # let disk scans the samples started run
            for supervisor in supervisors:
                await supervisor.stop()
            supervisors.clear()
    finally:
        for supervisor in supervisors:
            await supervisor.stop()
        confinement.close()
        await close_launcher(launcher)
    return times, policy.interval


def confinement_cost(starts: int) -> ConfinementCost:
    cgroups = Cgroups.detect()
    cgroup_ms = cgroup_times(cgroups, starts)
    sample_us, interval = asyncio.run(_sample_times(WORKERS, SAMPLES))
    return ConfinementCost(cgroups.describe(), cgroup_ms, sample_us, WORKERS, interval)
