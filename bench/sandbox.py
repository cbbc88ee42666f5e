"""What the OS sandbox costs: invoke round trip with and without it, and the time to apply it.

Both workers run the trivial plugin side by side under one launcher; calls alternate between
them in blocks, so drift in the machine's speed (this is a shared VM) lands on both equally.
The apply time is what each sandboxed worker reports in its handshake, measured inside the
worker from planning the rules to the audit hook being installed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deeting_tui.workers.supervisor import SupervisionPolicy, Supervisor

from .common import Latency, percentile
from .invoke import worker_config
from .launchers import close_launcher, default_launcher

BLOCKS = 10


@dataclass
class SandboxCost:
    sandboxed: Latency
    unsandboxed: Latency
    apply_ms: list[float]
    level: str
    #: Milliseconds per step of applying it (namespaces, landlock, capabilities, ...).
    steps: dict[str, list[float]] = field(default_factory=dict)

    @property
    def overhead(self) -> float:
        """Sandboxed p50 over unsandboxed p50 (1.0 = free)."""
        return self.sandboxed.p50_us / self.unsandboxed.p50_us

    @property
    def apply_p50_ms(self) -> float:
        return percentile(self.apply_ms, 50)

    def as_json(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "sandboxed": self.sandboxed.as_json(),
            "unsandboxed": self.unsandboxed.as_json(),
            "overhead": round(self.overhead, 4),
            "apply_ms": {
                "n": len(self.apply_ms),
                "p50": round(self.apply_p50_ms, 3),
                "max": round(max(self.apply_ms), 3),
                "mean": round(statistics.fmean(self.apply_ms), 3),
            },
            "steps_p50_ms": {
                step: round(percentile(samples, 50), 3) for step, samples in self.steps.items()
            },
        }


async def _cost(n: int, warmup: int, starts: int) -> SandboxCost:
    _name, launcher = default_launcher()
    try:
        with tempfile.TemporaryDirectory(prefix="deeting-bench-") as tmp:
            home = Path(tmp)
            base = worker_config(home)
            on = Supervisor(base, launcher, policy=SupervisionPolicy())
            off = Supervisor(
                dataclasses.replace(base, sandbox=False, name="bench-trivial-off"),
                launcher,
                policy=SupervisionPolicy(),
            )
            samples: dict[bool, list[float]] = {True: [], False: []}
            try:
                await on.start()
                await off.start()
                for supervisor in (on, off):
                    for i in range(warmup):
                        await supervisor.invoke("ping", {"n": i})
                clock = time.perf_counter
                per_block = max(1, n // BLOCKS)
                for block in range(BLOCKS):
                    # Alternate which goes first, so neither always follows the other.
                    order = (on, off) if block % 2 == 0 else (off, on)
                    for supervisor in order:
                        bucket = samples[supervisor is on]
                        for i in range(per_block):
                            began = clock()
                            await supervisor.invoke("ping", {"n": i})
                            bucket.append(clock() - began)
                level = str((on.sandbox or {}).get("level", "unknown"))
            finally:
                await on.stop()
                await off.stop()
            apply_ms = []
            steps: dict[str, list[float]] = {}
            for _ in range(starts):
                fresh = Supervisor(base, launcher, policy=SupervisionPolicy())
                try:
                    await fresh.start()
                    report = fresh.sandbox or {}
                    apply_ms.append(float(report.get("ms", 0.0)))
                    for step, ms in (report.get("steps") or {}).items():
                        steps.setdefault(str(step), []).append(float(ms))
                finally:
                    await fresh.stop()
    finally:
        await close_launcher(launcher)
    return SandboxCost(
        Latency("deeting invoke, sandboxed", samples[True]),
        Latency("deeting invoke, sandbox off", samples[False]),
        apply_ms,
        level,
        steps,
    )


def sandbox_cost(n: int, warmup: int, starts: int) -> SandboxCost:
    return asyncio.run(_cost(n, warmup, starts))
