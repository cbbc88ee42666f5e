"""The disk quota, held as files are written: what it costs the kernel, and how far past its
quota a plugin writing as fast as it can gets.

* accounting: a plain child process writes 1 GiB as 1,024 files of 1 MiB into three folders
  one DiskWatch accounts (with a quota out of reach); the CPU time the kernel's loop spends
  on their events (DiskWatch.drain), how many there were, and the total it ends with. Also
  the walk of the same folders that runs now and then as a check.
* overshoot: the bench-filler plugin (``limits.disk_mb`` 64) in its real, sandboxed worker
  under the watchdog writes 1 GiB in one call, ``--runs`` times each way: as 1 MiB files,
  and as 32 files written at once by 32 threads in one write() each (seen through its open
  files, since no event comes before a write returns); what its folders hold once it has
  been stopped, past 64 MiB, and the kernel's whole CPU time for the call. ``--load N``
  keeps N processes spinning meanwhile (this VM has 2 cores).

``python -m bench.diskquota [--runs N] [--load N] [--json]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson

from deeting_tui.quota import usage
from deeting_tui.quota.diskwatch import DiskWatch
from deeting_tui.quota.inotify import Event
from deeting_tui.quota.watchdog import Confinement
from deeting_tui.rpc.errors import RpcError
from deeting_tui.workers.supervisor import Supervisor, WorkerConfig

from .common import BENCH_DIR, percentile
from .launchers import close_launcher, default_launcher

FILLER = BENCH_DIR / "plugins" / "filler"
MIB = usage.MIB
QUOTA_MB = 64
GIB_FILES = 1024
THREADS = 32
WRITER = """
import sys
folder, count = sys.argv[1], int(sys.argv[2])
chunk = b"x" * (1 << 20)
for index in range(count):
    with open(f"{folder}/{index:05d}.bin", "wb") as f:
        f.write(chunk)
"""


class TimedWatch(DiskWatch):
    """A DiskWatch that adds up the thread CPU time of its event handling."""

    def __init__(self) -> None:
        super().__init__()
        self.cpu = 0.0
        self.events = 0

    def drain(self) -> None:
        began = time.thread_time()
        super().drain()
        self.cpu += time.thread_time() - began

    def dispatch(self, events: Sequence[Event]) -> None:
        self.events += len(events)
        super().dispatch(events)


class Owner:
    def disk_over(self, used: int) -> None:
        raise AssertionError(f"over a quota out of reach: {used}")

    def disk_fallback(self, reason: str) -> None:
        raise AssertionError(f"fell back: {reason}")

    def disk_pids(self) -> list[int]:
        return []  # the writer is not a plugin: only its events are accounted


@dataclass
class DiskQuotaFigures:
    accounting_cpu_ms: float  # the loop's CPU time for the events of 1 GiB in 1 MiB files
    accounting_events: int
    accounted_mb: float
    walk_ms: float  # one walk of the same 1,024 files, as the check does now and then
    overshoot_mb: list[float]  # past the quota, per run: 1 MiB files
    kernel_cpu_ms: list[float]  # the kernel process's CPU time for the call, per run
    parallel_overshoot_mb: list[float]  # ... and 32 threads with one large write() each
    load: int

    def rows(self) -> list[tuple[str, ...]]:
        over, parallel = self.overshoot_mb, self.parallel_overshoot_mb
        cpu = self.kernel_cpu_ms
        loaded = f", {self.load} spinning" if self.load else ""
        return [
            ("disk quota (1 GiB as 1 MiB files)", "n", "p50", "max", "mean"),
            (
                "accounting: loop CPU for all its events",
                "1",
                f"{self.accounting_cpu_ms:.1f} ms",
                f"{self.accounting_events} events",
                f"{self.accounted_mb:.0f} MiB seen",
            ),
            ("walk of the same folders (the check)", "1", f"{self.walk_ms:.1f} ms", "", ""),
            _mib_row(f"overshoot past {QUOTA_MB} MiB, 1 MiB files{loaded}", over),
            _mib_row(f"... {THREADS} threads, one write() each{loaded}", parallel),
            (
                "kernel CPU for the call, until stopped",
                str(len(cpu)),
                f"{percentile(cpu, 50):.0f} ms",
                f"{max(cpu):.0f} ms",
                f"{statistics.fmean(cpu):.0f} ms",
            ),
        ]


def _mib_row(label: str, samples: list[float]) -> tuple[str, ...]:
    return (
        label,
        str(len(samples)),
        f"{percentile(samples, 50):.1f} MiB",
        f"{max(samples):.1f} MiB",
        f"{statistics.fmean(samples):.1f} MiB",
    )


async def accounting() -> tuple[float, int, float, float]:
    watch = TimedWatch()
    with tempfile.TemporaryDirectory(prefix="deeting-bench-") as tmp:
        folders = [Path(tmp) / name for name in ("data", "cache", "tmp")]
        for folder in folders:
            folder.mkdir()
        account = watch.watch(folders, 1 << 50, Owner())
        if account is None:
            raise RuntimeError(f"no inotify here: {watch.problem}")
        await account.walked()
        watch.cpu, watch.events = 0.0, 0
        writer = await asyncio.create_subprocess_exec(
            sys.executable, "-c", WRITER, str(folders[0]), str(GIB_FILES)
        )
        await writer.wait()
        watch.drain()
        await account.walked()
        accounted = account.total / MIB
        cpu_ms, events = watch.cpu * 1e3, watch.events
        began = time.perf_counter()
        walked = usage.folder_usage(folders)
        walk_ms = (time.perf_counter() - began) * 1e3
        if walked != account.total:
            raise RuntimeError(f"accounted {account.total} bytes, the walk found {walked}")
        watch.close()
    return cpu_ms, events, accounted, walk_ms


async def overshoot(runs: int, threads: int = 1) -> tuple[list[float], list[float]]:
    over, cpu = [], []
    _, launcher = default_launcher()
    try:
        for _ in range(runs):
            with tempfile.TemporaryDirectory(prefix="deeting-bench-") as tmp:
                home = Path(tmp)
                config = WorkerConfig(
                    name="bench-filler",
                    version="1.0.0",
                    root=FILLER,
                    data_dir=home / "data",
                    cache_dir=home / "cache",
                    tmp_dir=home / "tmp",
                    log_path=home / "bench-filler.log",
                    disk_mb=QUOTA_MB,
                )
                confinement = Confinement()
                supervisor = Supervisor(config, launcher, confinement=confinement)
                try:
                    await supervisor.start()
                    pid = supervisor.pid
                    began = time.process_time()
                    with contextlib.suppress(RpcError):
                        await supervisor.invoke("fill", {"mb": GIB_FILES, "threads": threads})
                        raise RuntimeError("bench-filler wrote 1 GiB and was not stopped")
                    while pid is not None and usage.read_process(pid) is not None:
                        await asyncio.sleep(0.005)  # until its launcher reaped it
                    cpu.append((time.process_time() - began) * 1e3)
                    used = usage.folder_usage([config.data_dir, config.cache_dir, config.tmp_dir])
                    over.append(used / MIB - QUOTA_MB)
                finally:
                    await supervisor.stop()
                    confinement.close()
    finally:
        await close_launcher(launcher)
    return over, cpu


@contextlib.contextmanager
def spinning(count: int) -> Iterator[None]:
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


def disk_quota_figures(runs: int = 10, load: int = 0) -> DiskQuotaFigures:
    cpu_ms, events, accounted, walk_ms = asyncio.run(accounting())
    with spinning(load):
        over, kernel_cpu = asyncio.run(overshoot(runs))
        parallel, _ = asyncio.run(overshoot(runs, THREADS))
    return DiskQuotaFigures(cpu_ms, events, accounted, walk_ms, over, kernel_cpu, parallel, load)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.diskquota", description=__doc__)
    parser.add_argument("--runs", type=int, default=10, help="overshoot runs (default 10)")
    parser.add_argument("--load", type=int, default=0, help="spinning processes meanwhile")
    parser.add_argument("--json", action="store_true", help="print one JSON document only")
    options = parser.parse_args(argv)
    logging.getLogger("deeting").setLevel(logging.ERROR)  # each stop is logged: expected here
    figures = disk_quota_figures(options.runs, options.load)
    if options.json:
        sys.stdout.buffer.write(orjson.dumps(asdict(figures)) + b"\n")
        return 0
    rows = figures.rows()
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for index, row in enumerate(rows):
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if index == 0:
            print("-" * (sum(widths) + 2 * (len(widths) - 1)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
