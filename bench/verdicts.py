"""The benchmark's targets and the verdicts on them: what ``python -m bench`` passes or fails.

The limits live in one place so the report, the JSON document and the docs quote the same
numbers; each section's own targets come with its figures (``ui.verdicts()`` and the like),
and :func:`judge` gathers them all into one list of :class:`Verdict`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .browser_figures import BrowserFigures
from .chat_input import ChatInputFigures
from .common import Latency
from .launchers import default_launcher_name
from .notes import NotesFigures
from .registry import RegistryFigures
from .sandbox import SandboxCost
from .scale import ScaleFigures
from .throughput import Throughput
from .tool_budget import ToolBudgetFigures
from .triggers import TriggerFigures
from .ui import UiFigures

__all__ = ["Verdict", "judge"]

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
    notes: NotesFigures | None = results.get("notes")
    if notes:
        verdicts += [Verdict(*verdict) for verdict in notes.verdicts()]
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
    scale: ScaleFigures | None = results.get("scale")
    if scale:
        verdicts += [Verdict(*verdict) for verdict in scale.verdicts()]
    browser: BrowserFigures | None = results.get("browser")
    if browser:
        verdicts += [Verdict(*verdict) for verdict in browser.verdicts()]
    budget: ToolBudgetFigures | None = results.get("tool_budget")
    if budget:
        verdicts += [Verdict(*verdict) for verdict in budget.verdicts()]
    return verdicts
