"""Worker start-to-ready: spawn → ``initialize`` reply (``Supervisor.last_ready_seconds``)."""

from __future__ import annotations

import asyncio
import dataclasses
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deeting_tui.quota.watchdog import Confinement
from deeting_tui.workers.supervisor import Supervisor

from .common import percentile
from .invoke import worker_config
from .launchers import available_launchers, close_launcher


@dataclass
class Ready:
    launcher: str
    samples: list[float]
    #: What else this start includes, if anything (its grants); "" for a plain worker.
    variant: str = ""

    @property
    def key(self) -> str:
        """Its name in the JSON report: the launcher, and what else it includes."""
        return f"{self.launcher} {self.variant}" if self.variant else self.launcher

    @property
    def p50_ms(self) -> float:
        return percentile(self.samples, 50) * 1e3

    @property
    def max_ms(self) -> float:
        return max(self.samples) * 1e3

    def as_json(self) -> dict[str, Any]:
        return {
            "n": len(self.samples),
            "p50_ms": round(self.p50_ms, 2),
            "mean_ms": round(statistics.fmean(self.samples) * 1e3, 2),
            "max_ms": round(self.max_ms, 2),
        }


#: A host grant: the worker also gets a network namespace with the proxy's listener, and
#: the kernel takes that listener over. Measured separately so its cost is visible.
HOST_GRANT = "network:example.com"


async def _ready(
    name: str,
    factory: Any,
    starts: int,
    scopes: tuple[str, ...] = (),
    confinement: Confinement | None = None,
) -> Ready:
    launcher = factory()
    samples = []
    try:
        with tempfile.TemporaryDirectory(prefix="deeting-bench-") as tmp:
            config = dataclasses.replace(worker_config(Path(tmp)), scopes=list(scopes))
            # One unmeasured start: the first exec pays cold page-cache misses, and a
            # forkserver (if any) starts its server on first use.
            for i in range(starts + 1):
                supervisor = Supervisor(config, launcher, confinement=confinement)
                try:
                    await supervisor.start()
                    assert supervisor.last_ready_seconds is not None
                    if i:
                        samples.append(supervisor.last_ready_seconds)
                finally:
                    await supervisor.stop()
    finally:
        await close_launcher(launcher)
        if confinement is not None:
            confinement.close()
    return Ready(name, samples)


def ready_times(starts: int) -> list[Ready]:
    launchers = available_launchers()
    times = [asyncio.run(_ready(name, factory, starts)) for name, factory in launchers.items()]
    if "forkserver" in launchers:
        times.append(
            asyncio.run(_ready("forkserver", launchers["forkserver"], starts, (HOST_GRANT,)))
        )
        times[-1].variant = f"with {HOST_GRANT} (network namespace)"
        # What the kernel really starts: each worker in its cgroups (where this machine lets
        # us make them) and under the watchdog, before initialize.
        confinement = Confinement()
        where = confinement.cgroups.describe()
        made = ", ".join(v for v in where.values() if v) or "no cgroups here"
        confined = asyncio.run(
            _ready("forkserver", launchers["forkserver"], starts, confinement=confinement)
        )
        confined.variant = f"confined ({made})"
        times.append(confined)
    return times
