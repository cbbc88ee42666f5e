"""Invoke round trip through the real Supervisor and a real worker running bench-trivial."""

from __future__ import annotations

import contextlib
from pathlib import Path

from deeting_tui.workers.launcher import Launcher
from deeting_tui.workers.supervisor import SupervisionPolicy, Supervisor, WorkerConfig

from .common import TRIVIAL_PLUGIN


def worker_config(home: Path) -> WorkerConfig:
    return WorkerConfig(
        name="bench-trivial",
        version="1.0.0",
        root=TRIVIAL_PLUGIN,
        data_dir=home / "data",
        cache_dir=home / "cache",
        tmp_dir=home / "tmp",
        log_path=home / "logs" / "bench-trivial.log",
    )


@contextlib.asynccontextmanager
async def running_supervisor(launcher: Launcher, home: Path):  # type: ignore[no-untyped-def]
    supervisor = Supervisor(worker_config(home), launcher, policy=SupervisionPolicy())
    try:
        await supervisor.start()
        yield supervisor
    finally:
        await supervisor.stop()
