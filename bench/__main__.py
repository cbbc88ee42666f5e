"""``python -m bench [--quick] [--json]``: run every benchmark once and report.

Exit status 0 whatever the verdicts (this is a report, not a gate); 1 when a benchmark could
not run at all; 2 for bad usage.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import os
import platform
import signal
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from .chat_input import ChatInputFigures, ChatInputSizes, chat_input_figures
from .common import REPO_ROOT, Latency, Sizes, percentile, reap_children
from .confinement import ConfinementCost, confinement_cost
from .launchers import default_launcher_name
from .ready import Ready, ready_times
from .registry import RegistryFigures, RegistrySizes, registry_figures
from .roundtrip import roundtrips
from .sandbox import SandboxCost, sandbox_cost
from .throughput import Throughput, script_throughput
from .triggers import TriggerFigures, TriggerSizes, trigger_figures
from .ui import UiFigures, UiSizes, ui_figures

#: The targets, in one place.
FLOOR_FACTOR_MAX = 1.5
MCP_SPEEDUP_MIN = 10.0
READY_MS_MAX = 50.0
MESSAGES_PER_S_MIN = 1000.0
SANDBOX_OVERHEAD_MAX = 0.05
SANDBOX_APPLY_MS_MAX = 10.0


@dataclass
class Verdict:
    target: str
    measured: str
    limit: str
    passed: bool
    value: float

    def as_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "value": round(self.value, 3),
            "limit": self.limit,
            "pass": self.passed,
        }


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small N (for the smoke test)")
    parser.add_argument("--json", action="store_true", help="print one JSON document only")
    options = parser.parse_args(argv)
    sizes = Sizes.quick() if options.quick else Sizes()
    os.chdir(REPO_ROOT)  # children run `python -m bench.*`
    # SIGTERM should clean up like Ctrl-C does: children reaped, temp dirs removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    info = machine_info()
    say = (lambda *_: None) if options.json else _printer()
    say(_machine_lines(info, options.quick))

    results: dict[str, Any] = {}
    errors: dict[str, str] = {}

    def run(key: str, label: str, fn: Callable[[], Any]) -> Any:
        say(f"running: {label} ...")
        began = time.perf_counter()
        try:
            value = fn()
        except Exception as exc:
            errors[key] = f"{type(exc).__name__}: {exc}"
            if os.environ.get("DEETING_DEBUG"):
                traceback.print_exc()
            say(f"  ERROR: {errors[key]}")
            return None
        say(f"  done in {time.perf_counter() - began:.1f} s")
        results[key] = value
        return value

    try:
        trips = run(
            "roundtrip",
            "round trips: deeting invoke, both floors and mcp, taking turns",
            lambda: roundtrips(
                sizes.invoke_n, sizes.invoke_warmup, sizes.mcp_n, sizes.mcp_warmup, errors
            ),
        )
        if trips is not None:
            results.pop("roundtrip")
            results.update(trips)
        run(
            "ready",
            f"worker start-to-ready x{sizes.ready_starts}",
            lambda: ready_times(sizes.ready_starts),
        )
        run(
            "sandbox",
            "invoke with and without the OS sandbox",
            lambda: sandbox_cost(sizes.invoke_n, sizes.invoke_warmup, sizes.ready_starts),
        )
        run(
            "confinement",
            "limits: a cgroup per worker, a watchdog sample",
            lambda: confinement_cost(sizes.ready_starts),
        )
        run(
            "throughput",
            f"deeting --script, {sizes.script_messages} messages",
            lambda: script_throughput(sizes.script_messages, sizes.startup_runs),
        )
        run(
            "ui",
            "the chat: launch to first frame, key latency under a stream flood",
            lambda: ui_figures(UiSizes.quick() if options.quick else UiSizes()),
        )
        run(
            "chat_input",
            "the chat with big input: opening big sessions, keys in a long line",
            lambda: chat_input_figures(
                ChatInputSizes.quick() if options.quick else ChatInputSizes()
            ),
        )
        registry_sizes = RegistrySizes.quick() if options.quick else RegistrySizes()
        run(
            "registry",
            f"verifying a signed {registry_sizes.plugins}-plugin registry, against the floor",
            lambda: registry_figures(registry_sizes),
        )
        run(
            "triggers",
            "matching a message against 200 plugins' triggers (RE2 set), against str/re",
            lambda: trigger_figures(TriggerSizes.quick() if options.quick else TriggerSizes()),
        )
    finally:
        reap_children()

    verdicts = judge(results)
    document = {
        "machine": info,
        "quick": options.quick,
        "sizes": sizes.__dict__,
        "results": _results_json(results),
        "targets": [v.as_json() for v in verdicts],
        "errors": errors,
    }
    if options.json:
        sys.stdout.buffer.write(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        print()
        print(_results_table(results))
        print()
        print(_verdict_table(verdicts))
        for key, message in errors.items():
            print(f"error in {key}: {message}")
    return 1 if errors else 0


def judge(results: dict[str, Any]) -> list[Verdict]:
    verdicts = []
    invoke: Latency | None = results.get("invoke")
    floor: Latency | None = results.get("floor_asyncio")
    mcp: Latency | None = results.get("mcp")
    if invoke and floor:
        factor = invoke.p50_us / floor.p50_us
        verdicts.append(
            Verdict(
                "invoke p50 <= 1.5x floor p50 (asyncio)",
                f"{factor:.2f}x ({invoke.p50_us:.0f} / {floor.p50_us:.0f} us)",
                f"<= {FLOOR_FACTOR_MAX:g}x",
                factor <= FLOOR_FACTOR_MAX,
                factor,
            )
        )
    if invoke and mcp:
        speedup = mcp.p50_us / invoke.p50_us
        verdicts.append(
            Verdict(
                "invoke p50 >= 10x faster than mcp p50",
                f"{speedup:.1f}x ({mcp.p50_us:.0f} / {invoke.p50_us:.0f} us)",
                f">= {MCP_SPEEDUP_MIN:g}x",
                speedup >= MCP_SPEEDUP_MIN,
                speedup,
            )
        )
    # The target is for the launcher the kernel uses; the other is in the table for comparison.
    chosen = default_launcher_name()
    for ready in results.get("ready") or []:
        if ready.launcher != chosen or ready.variant:
            continue
        verdicts.append(
            Verdict(
                f"worker ready p50 <= 50 ms ({ready.launcher}, the default)",
                f"{ready.p50_ms:.1f} ms",
                f"<= {READY_MS_MAX:g} ms",
                ready.p50_ms <= READY_MS_MAX,
                ready.p50_ms,
            )
        )
    sandbox: SandboxCost | None = results.get("sandbox")
    if sandbox:
        verdicts.append(
            Verdict(
                "sandboxed invoke p50 within 5% of unsandboxed",
                f"{(sandbox.overhead - 1) * 100:+.1f}% ({sandbox.sandboxed.p50_us:.0f} / "
                f"{sandbox.unsandboxed.p50_us:.0f} us)",
                f"<= +{SANDBOX_OVERHEAD_MAX * 100:g}%",
                sandbox.overhead <= 1 + SANDBOX_OVERHEAD_MAX,
                sandbox.overhead,
            )
        )
        verdicts.append(
            Verdict(
                "sandbox apply p50 <= 10 ms",
                f"{sandbox.apply_p50_ms:.2f} ms",
                f"<= {SANDBOX_APPLY_MS_MAX:g} ms",
                sandbox.apply_p50_ms <= SANDBOX_APPLY_MS_MAX,
                sandbox.apply_p50_ms,
            )
        )
    throughput: Throughput | None = results.get("throughput")
    if throughput:
        rate = throughput.steady_per_s
        verdicts.append(
            Verdict(
                "messages/s, --script excl. start-up",
                f"{rate:.0f}/s",
                f">= {MESSAGES_PER_S_MIN:g}/s",
                rate >= MESSAGES_PER_S_MIN,
                rate,
            )
        )
        stored = throughput.user_events
        verdicts.append(
            Verdict(
                "session holds every user message",
                f"{stored} of {throughput.messages}",
                f"= {throughput.messages}",
                stored == throughput.messages,
                stored,
            )
        )
    ui: UiFigures | None = results.get("ui")
    if ui:
        verdicts += [Verdict(*verdict) for verdict in ui.verdicts()]
    chat_input: ChatInputFigures | None = results.get("chat_input")
    if chat_input:
        verdicts += [Verdict(*verdict) for verdict in chat_input.verdicts()]
    registry: RegistryFigures | None = results.get("registry")
    if registry:
        verdicts += [Verdict(*verdict) for verdict in registry.verdicts()]
    triggers: TriggerFigures | None = results.get("triggers")
    if triggers:
        verdicts += [Verdict(*verdict) for verdict in triggers.verdicts()]
    return verdicts


def _results_json(results: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in results.items():
        if isinstance(value, list):
            out[key] = {item.key: item.as_json() for item in value}
        else:
            out[key] = value.as_json()
    return out


def _printer() -> Callable[[str], None]:
    def say(text: str) -> None:
        print(text, flush=True)

    return say


def _machine_lines(info: dict[str, Any], quick: bool) -> str:
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


def _results_table(results: dict[str, Any]) -> str:
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
    return _table(rows)


def _latency_row(item: Latency) -> tuple[str, ...]:
    return (
        item.name,
        str(len(item.samples)),
        f"{item.p50_us:.1f} us",
        f"{item.p99_us:.1f} us",
        f"{item.mean_us:.1f} us",
    )


def _verdict_table(verdicts: list[Verdict]) -> str:
    rows = [("target", "measured", "limit", "verdict")]
    rows += [(v.target, v.measured, v.limit, "PASS" if v.passed else "FAIL") for v in verdicts]
    return _table(rows)


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        if not any(row):
            lines.append("")
            continue
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
        if row[1] in ("n", "value", "measured"):
            lines.append("-" * len(lines[-1]))
    return "\n".join(lines)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        reap_children()
        sys.exit(130)
