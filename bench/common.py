"""Shared pieces: percentiles, child processes that are always reaped, the trivial plugin."""

from __future__ import annotations

import contextlib
import os
import signal
import statistics
import subprocess
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
TRIVIAL_PLUGIN = BENCH_DIR / "plugins" / "trivial"

#: Every child the benchmark starts, so an error or Ctrl-C still reaps them all.
_CHILDREN: list[subprocess.Popen[Any]] = []


@dataclass
class Sizes:
    """How much work one run does; ``--quick`` shrinks everything for the smoke test."""

    invoke_n: int = 5000
    invoke_warmup: int = 500
    mcp_n: int = 5000
    mcp_warmup: int = 500
    ready_starts: int = 30
    script_messages: int = 1000
    startup_runs: int = 3

    @classmethod
    def quick(cls) -> Sizes:
        return cls(
            invoke_n=300,
            invoke_warmup=50,
            mcp_n=100,
            mcp_warmup=20,
            ready_starts=3,
            script_messages=100,
            startup_runs=1,
        )


@dataclass
class Latency:
    """Round-trip samples in seconds, summarised in microseconds."""

    name: str
    samples: list[float] = field(repr=False)

    @property
    def p50_us(self) -> float:
        return percentile(self.samples, 50) * 1e6

    @property
    def p99_us(self) -> float:
        return percentile(self.samples, 99) * 1e6

    @property
    def mean_us(self) -> float:
        return statistics.fmean(self.samples) * 1e6

    def as_json(self) -> dict[str, Any]:
        return {
            "n": len(self.samples),
            "p50_us": round(self.p50_us, 2),
            "p99_us": round(self.p99_us, 2),
            "mean_us": round(self.mean_us, 2),
        }


def percentile(samples: list[float], pct: float) -> float:
    """Nearest-rank percentile (no interpolation: every figure is a real sample)."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    rank = max(1, -(-len(ordered) * pct // 100))  # ceil(n * pct / 100), at least 1
    return ordered[int(rank) - 1]


def percentile_ms(samples: list[float], pct: float) -> float:
    """The same, for samples in seconds, in milliseconds."""
    return percentile(samples, pct) * 1e3


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for bench children: ours, with the repository importable."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    env.update(extra or {})
    return env


def spawn_child(args: list[str], **kwargs: Any) -> subprocess.Popen[Any]:
    """Popen, remembered so that :func:`reap_children` can always clean it up."""
    kwargs.setdefault("env", child_env())
    kwargs.setdefault("start_new_session", True)
    process = subprocess.Popen(args, **kwargs)
    _CHILDREN.append(process)
    return process


def reap(process: subprocess.Popen[Any], timeout: float = 5.0) -> None:
    """Wait for a child briefly, then kill its process group; always wait it out."""
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.kill()
        process.wait()
    with contextlib.suppress(ValueError):
        _CHILDREN.remove(process)


def reap_children() -> None:
    for process in list(_CHILDREN):
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            process.kill()
        process.wait()
        _CHILDREN.remove(process)


@contextlib.contextmanager
def closing_fds(*fds: int) -> Iterator[None]:
    try:
        yield
    finally:
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)


def python() -> str:
    return sys.executable


#: A row whose second cell is one of these is a table's heading, underlined.
HEADING_CELLS = ("n", "value", "measured")


def table_lines(rows: Sequence[tuple[str, ...]]) -> list[str]:
    """Rows as columns: the first left-aligned, the others right-aligned; an empty row stays
    an empty line, and a heading row (see :data:`HEADING_CELLS`) is underlined. Every
    section's text report lays its figures out with this."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines: list[str] = []
    for row in rows:
        if not any(row):
            lines.append("")
            continue
        cells = [row[0].ljust(widths[0])]
        cells += [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells).rstrip())
        if row[1] in HEADING_CELLS:
            lines.append("-" * len(lines[-1]))
    return lines


def verdict_lines(verdicts: Iterable[tuple[str, str, str, bool, Any]]) -> list[str]:
    """A section's verdicts, one line each: ``target: measured (target limit) PASS``."""
    return [
        f"{target}: {measured} (target {limit}) {'PASS' if passed else 'FAIL'}"
        for target, measured, limit, passed, _value in verdicts
    ]
