"""The benchmark's report for people: the machine it ran on, a table of figures, the verdicts.

Kept apart from the run (``__main__.py``) and the judgement (``verdicts.py``): this is only
layout, five right-aligned columns per table, and the same figures also go out as JSON.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import statistics
from collections.abc import Callable
from typing import Any

from .browser_figures import BrowserFigures
from .chat_input import ChatInputFigures
from .common import Latency, percentile, table_lines
from .confinement import ConfinementCost
from .notes import NotesFigures
from .ready import Ready
from .registry import RegistryFigures
from .sandbox import SandboxCost
from .scale import ScaleFigures
from .throughput import Throughput
from .tool_budget import ToolBudgetFigures
from .triggers import TriggerFigures
from .ui import UiFigures
from .verdicts import Verdict

__all__ = [
    "machine_info",
    "machine_lines",
    "printer",
    "results_json",
    "results_table",
    "verdict_table",
]


def machine_info() -> dict[str, Any]:
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions = {}
    for package in ("deeting", "orjson", "mcp"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": model,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "versions": versions,
    }


def results_json(results: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in results.items():
        if isinstance(value, list):
            out[key] = {item.key: item.as_json() for item in value}
        else:
            out[key] = value.as_json()
    return out


def printer() -> Callable[[str], None]:
    def say(text: str) -> None:
        print(text, flush=True)

    return say


def machine_lines(info: dict[str, Any], quick: bool) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
    return "\n".join(
        [
            "Deeting benchmark"
            + (" (--quick: small N, figures are indicative only)" if quick else ""),
            f"  cpu:      {info['cpu_count']} logical ({info['cpus_usable']} usable), "
            f"{info['cpu_model']}",
            f"  python:   {info['implementation']} {info['python']} on {info['platform']}",
            f"  packages: {versions}",
            "",
        ]
    )


def results_table(results: dict[str, Any]) -> str:
    rows = [("round trip (one call in flight)", "n", "p50", "p99", "mean")]
    for key in ("invoke", "floor_asyncio", "floor_blocking", "mcp"):
        item: Latency | None = results.get(key)
        if item is not None:
            rows.append(_latency_row(item))
    ready: list[Ready] = results.get("ready") or []
    if ready:
        rows.append(("", "", "", "", ""))
        rows.append(("worker start-to-ready", "n", "p50", "max", "mean"))
        for item in ready:
            data = item.as_json()
            rows.append(
                (
                    f"launcher: {item.launcher}" + (f", {item.variant}" if item.variant else ""),
                    str(data["n"]),
                    f"{data['p50_ms']:.1f} ms",
                    f"{data['max_ms']:.1f} ms",
                    f"{data['mean_ms']:.1f} ms",
                )
            )
    sandbox: SandboxCost | None = results.get("sandbox")
    if sandbox:
        rows.append(("", "", "", "", ""))
        rows.append((f"OS sandbox ({sandbox.level})", "n", "p50", "p99", "mean"))
        rows += [_latency_row(sandbox.sandboxed), _latency_row(sandbox.unsandboxed)]
        cost = sandbox.as_json()["apply_ms"]
        rows.append(
            (
                "applying it, in the worker",
                str(cost["n"]),
                f"{cost['p50']:.2f} ms",
                f"{cost['max']:.2f} ms",
                f"{cost['mean']:.2f} ms",
            )
        )
        for step, samples in sandbox.steps.items():
            rows.append(
                (
                    f"  of which {step}",
                    str(len(samples)),
                    f"{percentile(samples, 50):.2f} ms",
                    f"{max(samples):.2f} ms",
                    f"{statistics.fmean(samples):.2f} ms",
                )
            )
    confinement: ConfinementCost | None = results.get("confinement")
    if confinement:
        rows.append(("", "", "", "", ""))
        rows += confinement.rows()
    throughput: Throughput | None = results.get("throughput")
    if throughput:
        rows.append(("", "", "", "", ""))
        rows.append(("deeting --script (trigger-routed, persisted)", "value", "", "", ""))
        rows.append(
            (
                f"{throughput.messages} messages, end to end",
                f"{throughput.total_s:.3f} s",
                f"{throughput.end_to_end_per_s:.0f}/s",
                "",
                "",
            )
        )
        rows.append(("1-message run (start-up)", f"{throughput.startup_s:.3f} s", "", "", ""))
        rows.append(
            ("messages/s excluding start-up", f"{throughput.steady_per_s:.0f}/s", "", "", "")
        )
        rows.append(("user events in the session DB", str(throughput.user_events), "", "", ""))
    notes: NotesFigures | None = results.get("notes")
    if notes:
        rows.append(("", "", "", "", ""))
        rows += notes.rows()
    ui: UiFigures | None = results.get("ui")
    if ui:
        rows.append(("", "", "", "", ""))
        rows += ui.rows()
    chat_input: ChatInputFigures | None = results.get("chat_input")
    if chat_input:
        rows.append(("", "", "", "", ""))
        rows += chat_input.rows()
    registry: RegistryFigures | None = results.get("registry")
    if registry:
        rows.append(("", "", "", "", ""))
        rows += registry.rows()
    triggers: TriggerFigures | None = results.get("triggers")
    if triggers:
        rows.append(("", "", "", "", ""))
        rows += triggers.result_rows()
    scale: ScaleFigures | None = results.get("scale")
    if scale:
        rows.append(("", "", "", "", ""))
        rows += scale.rows()
    browser: BrowserFigures | None = results.get("browser")
    if browser:
        rows.append(("", "", "", "", ""))
        rows += browser.rows()
    budget: ToolBudgetFigures | None = results.get("tool_budget")
    if budget:
        rows.append(("", "", "", "", ""))
        rows += budget.rows()
    return _table(rows)


def _latency_row(item: Latency) -> tuple[str, ...]:
    return (
        item.name,
        str(len(item.samples)),
        f"{item.p50_us:.1f} us",
        f"{item.p99_us:.1f} us",
        f"{item.mean_us:.1f} us",
    )


def verdict_table(verdicts: list[Verdict]) -> str:
    rows = [("target", "measured", "limit", "verdict")]
    rows += [(v.target, v.measured, v.limit, "PASS" if v.passed else "FAIL") for v in verdicts]
    return _table(rows)


def _table(rows: list[tuple[str, ...]]) -> str:
    return "\n".join(table_lines(rows))
