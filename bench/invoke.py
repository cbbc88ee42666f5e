"""Invoke round trip through the real Supervisor and a real worker running bench-trivial."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from pathlib import Path

from deeting_tui.kernel.launcher import Launcher
from deeting_tui.kernel.supervisor import SupervisionPolicy, Supervisor, WorkerConfig

from .common import TRIVIAL_PLUGIN, Latency
from .launchers import close_launcher, default_launcher


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


async def _invoke(n: int, warmup: int) -> tuple[str, list[float]]:
    name, launcher = default_launcher()
    try:
        with tempfile.TemporaryDirectory(prefix="deeting-bench-") as tmp:
            async with running_supervisor(launcher, Path(tmp)) as sup:
                for i in range(warmup):
                    await sup.invoke("ping", {"n": i})
                reply = await sup.invoke("ping", {"n": 7})
                if reply.get("data") != {"pong": 7}:
                    raise RuntimeError(f"unexpected reply from bench-trivial: {reply!r}")
                samples = []
                clock = time.perf_counter
                for i in range(n):
                    began = clock()
                    await sup.invoke("ping", {"n": i})
                    samples.append(clock() - began)
    finally:
        await close_launcher(launcher)
    return name, samples


def invoke_latency(n: int, warmup: int) -> Latency:
    name, samples = asyncio.run(_invoke(n, warmup))
    return Latency(f"deeting invoke (Supervisor, {name})", samples)
