"""Scale with the number of installed plugins: the same figures at 3, 50 and 200 plugins.

**Homes.** One per size, built once per run: the plugins a fresh install gets (calc, clock,
notes) plus generated copies of calc (``scale_home.py``: distinct names, tools, triggers and
descriptions), all installed by the real ``deeting plugin install ... --yes``; bundled
plugins off (``DEETING_BUNDLE=""``), no model configured (the offline assistant).

**Figures, per size** (each probe is a fresh ``deeting`` process; the OS page cache is warm,
one unmeasured run per home first):

* cold start: ``printf 'calc 2+3\\n' | deeting --script -``, exec to the reply on stdout and
  to exit, median of a few runs;
* chat first frame: ``deeting`` on an 80x24 pty until its header is drawn, taking turns
  with a bare Textual app (``ui_launch.py``'s measurement), p50 of each;
* memory: ``deeting --script -`` with stdin held open, one message, and once its reply is
  out the PSS of the whole process tree (kernel, forkserver, workers) and its process count;
* tool-spec tokens per model turn: a free-text message to a model — a recording Chat
  Completions server on 127.0.0.1 — and the specs that request carried, against every
  installed tool's spec (tokens estimated as the tool budget does); the ``--json`` reply
  event's own ``tool_specs`` figure too, where this build reports one;
* a tool's first call vs its warm calls: in a fresh ``deeting --script - --json`` brought up
  by a message the offline assistant answers and a call of clock's ``/now`` (its worker
  starts with the kernel; the call loads what the kernel loads once per process),
  ``/calc expr=1+1`` and then the same again; p50 of the first calls (one per process) and
  of the warm ones. Where workers start on demand, the first call pays calc's worker start.

**Targets** (issue 17): cold start and PSS at the largest size within 1.2x of the smallest;
first frame <= 1.5x bare Textual at every size; tokens at the largest size <= 10 % of
every spec's; first call <= 60 ms over warm (p50), at every size.

``python -m bench.scale [--quick] [--json]``; ``python -m bench`` runs it too. Its printed
table is the one the README shows.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from deeting_tui.kernel.assistant import ToolInfo
from deeting_tui.llm.tools import build_toolbox
from deeting_tui.plugin.checker import load_plugin

from .common import REPO_ROOT, percentile_ms, reap_children, table_lines, verdict_lines
from .plugin_copies import OFFICIAL, generate_copies
from .scale_home import FRESH_INSTALL, build_home
from .scale_probe import (
    approx_tokens,
    cold_start,
    first_and_warm_calls,
    tool_spec_turn,
    tree_memory,
)
from .throughput import deeting_executable
from .ui_launch import (
    BASELINE_APP,
    BASELINE_MARKER,
    CHAT_MARKER,
    _first_frame,
    installed_count,
    terminal_env,
)

#: Targets (issue 17, point 7).
COLD_RATIO_MAX = 1.2
PSS_RATIO_MAX = 1.2
FRAME_RATIO_MAX = 1.5
TOKENS_SHARE_MAX = 0.10
FIRST_CALL_OVER_MS_MAX = 60.0
#: How long a chat may take to paint: where every worker starts first, 200 plugins on a
#: busy 2-core VM took 20 s.
FRAME_TIMEOUT_S = 120.0


@dataclass
class ScaleSizes:
    plugins: tuple[int, ...] = (3, 50, 200)
    cold_runs: int = 5
    frame_runs: int = 5
    first_call_runs: int = 5
    warm_calls: int = 10

    @classmethod
    def quick(cls) -> ScaleSizes:
        return cls(plugins=(3, 20), cold_runs=1, frame_runs=1, first_call_runs=1, warm_calls=3)


@dataclass
class AtSize:
    """Everything measured with ``plugins`` installed."""

    plugins: int
    build_s: float
    cold_reply: list[float] = field(default_factory=list)
    cold_exit: list[float] = field(default_factory=list)
    frame: list[float] = field(default_factory=list)
    baseline: list[float] = field(default_factory=list)
    processes: int = 0
    pss_kib: int = 0
    specs_sent: int = 0
    tokens_sent: int = 0
    specs_all: int = 0
    tokens_all: int = 0
    reported: dict[str, int] | None = None
    first_call: list[float] = field(default_factory=list)
    warm_call: list[float] = field(default_factory=list)

    @property
    def cold_s(self) -> float:
        return statistics.median(self.cold_exit)

    @property
    def frame_ratio(self) -> float:
        return percentile_ms(self.frame, 50) / percentile_ms(self.baseline, 50)

    @property
    def token_share(self) -> float:
        return self.tokens_sent / self.tokens_all

    @property
    def first_over_ms(self) -> float:
        return percentile_ms(self.first_call, 50) - percentile_ms(self.warm_call, 50)

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "plugins": self.plugins,
            "home_build_s": round(self.build_s, 2),
            "cold_start_to_reply_median_ms": round(statistics.median(self.cold_reply) * 1e3, 1),
            "cold_start_to_exit_median_ms": round(self.cold_s * 1e3, 1),
            "cold_start_n": len(self.cold_exit),
            "first_frame_p50_ms": round(percentile_ms(self.frame, 50), 1),
            "first_frame_baseline_textual_p50_ms": round(percentile_ms(self.baseline, 50), 1),
            "first_frame_ratio": round(self.frame_ratio, 3),
            "first_frame_n": len(self.frame),
            "processes_after_one_message": self.processes,
            "pss_after_one_message_mib": round(self.pss_kib / 1024, 1),
            "tool_specs_sent": self.specs_sent,
            "tool_spec_tokens_sent": self.tokens_sent,
            "tool_specs_all": self.specs_all,
            "tool_spec_tokens_all": self.tokens_all,
            "tool_spec_token_share": round(self.token_share, 4),
            "first_call_p50_ms": round(percentile_ms(self.first_call, 50), 2),
            "warm_call_p50_ms": round(percentile_ms(self.warm_call, 50), 2),
            "first_call_n": len(self.first_call),
        }
        if self.reported is not None:  # only a build with the tool budget reports it
            data["reported_tool_specs"] = dict(self.reported)
        return data


@dataclass
class ScaleFigures:
    sizes: list[AtSize]
    seconds: float

    def as_json(self) -> dict[str, Any]:
        return {
            "sizes": {str(s.plugins): s.as_json() for s in self.sizes},
            "section_s": round(self.seconds, 1),
        }

    def rows(self) -> list[tuple[str, ...]]:
        """Rows for the report's table, five columns like the others'."""
        rows: list[tuple[str, ...]] = [
            ("scale with installed plugins (bench.scale)", "value", "", "", ""),
            ("plugins installed", *self._heads()),
        ]
        cells: tuple[tuple[str, Callable[[AtSize], str]], ...] = (
            (
                "cold start to reply, --script (median)",
                lambda s: _ms(statistics.median(s.cold_reply)),
            ),
            ("cold start to exit, --script (median)", lambda s: _ms(s.cold_s)),
            ("chat first frame p50", lambda s: f"{percentile_ms(s.frame, 50):.0f} ms"),
            ("  bare Textual app, in turns", lambda s: f"{percentile_ms(s.baseline, 50):.0f} ms"),
            ("processes after one message", lambda s: str(s.processes)),
            ("PSS of the tree after one message", lambda s: f"{s.pss_kib / 1024:.0f} MiB"),
            ("tool specs sent / installed", lambda s: f"{s.specs_sent}/{s.specs_all}"),
            ("tool-spec tokens sent / all", lambda s: f"{s.tokens_sent}/{s.tokens_all}"),
            ("first /calc call p50", lambda s: f"{percentile_ms(s.first_call, 50):.1f} ms"),
            ("  warm /calc call p50", lambda s: f"{percentile_ms(s.warm_call, 50):.1f} ms"),
        )
        for label, cell in cells:
            rows.append((label, *(cell(s) for s in self._four()), *self._pad()))
        return rows

    def _four(self) -> list[AtSize]:
        return self.sizes[:4]

    def _heads(self) -> tuple[str, ...]:
        return (*(str(s.plugins) for s in self._four()), *self._pad())

    def _pad(self) -> tuple[str, ...]:
        return ("",) * (4 - len(self._four()))

    def verdicts(self) -> list[tuple[str, str, str, bool, float]]:
        """(target, measured, limit, passed, value), for the report's verdict table."""
        small, large = self.sizes[0], self.sizes[-1]
        cold = large.cold_s / small.cold_s
        pss = large.pss_kib / small.pss_kib
        verdicts = [
            (
                f"cold start at {large.plugins} plugins <= 1.2x at {small.plugins}",
                f"{cold:.2f}x ({_ms(large.cold_s)} / {_ms(small.cold_s)})",
                f"<= {COLD_RATIO_MAX:g}x",
                cold <= COLD_RATIO_MAX,
                cold,
            ),
            (
                f"PSS at {large.plugins} plugins <= 1.2x at {small.plugins}",
                f"{pss:.2f}x ({large.pss_kib / 1024:.0f} / {small.pss_kib / 1024:.0f} MiB)",
                f"<= {PSS_RATIO_MAX:g}x",
                pss <= PSS_RATIO_MAX,
                pss,
            ),
        ]
        worst = max(self.sizes, key=lambda s: s.frame_ratio)
        verdicts.append(
            (
                "chat first frame <= 1.5x bare Textual, every size",
                f"{worst.frame_ratio:.2f}x at {worst.plugins} ({percentile_ms(worst.frame, 50):.0f}"
                f" / {percentile_ms(worst.baseline, 50):.0f} ms)",
                f"<= {FRAME_RATIO_MAX:g}x",
                worst.frame_ratio <= FRAME_RATIO_MAX,
                worst.frame_ratio,
            )
        )
        share = large.token_share
        verdicts.append(
            (
                f"tool-spec tokens per turn at {large.plugins} plugins <= 10% of all",
                f"{share * 100:.1f}% ({large.tokens_sent} / {large.tokens_all})",
                f"<= {TOKENS_SHARE_MAX * 100:g}%",
                share <= TOKENS_SHARE_MAX,
                share,
            )
        )
        slow = max(self.sizes, key=lambda s: s.first_over_ms)
        verdicts.append(
            (
                "first tool call p50 <= 60 ms over warm, every size",
                f"+{slow.first_over_ms:.1f} ms at {slow.plugins} "
                f"({percentile_ms(slow.first_call, 50):.1f} / "
                f"{percentile_ms(slow.warm_call, 50):.1f} ms)",
                f"<= +{FIRST_CALL_OVER_MS_MAX:g} ms",
                slow.first_over_ms <= FIRST_CALL_OVER_MS_MAX,
                slow.first_over_ms,
            )
        )
        return verdicts


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.0f} ms"


# -- the section ------------------------------------------------------------------------------


def scale_figures(sizes: ScaleSizes) -> ScaleFigures:
    if min(sizes.plugins) < len(FRESH_INSTALL) or list(sizes.plugins) != sorted(sizes.plugins):
        raise ValueError(f"sizes must rise from at least {len(FRESH_INSTALL)}: {sizes.plugins}")
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="deeting-bench-scale-") as tmp:
        root = Path(tmp)
        copies = generate_copies(root / "copies", max(sizes.plugins) - len(FRESH_INSTALL))
        baseline = root / "baseline_app.py"
        baseline.write_text(BASELINE_APP)
        measured = []
        for count in sizes.plugins:
            mine = copies[: count - len(FRESH_INSTALL)]
            measured.append(_at_size(root / f"home-{count}", mine, baseline, sizes))
    return ScaleFigures(measured, time.perf_counter() - began)


def _at_size(home: Path, copies: list[Path], baseline: Path, sizes: ScaleSizes) -> AtSize:
    began = time.perf_counter()
    build_home(home, copies)
    figures = AtSize(installed_count(home), time.perf_counter() - began)
    env = terminal_env(home)
    chat = [deeting_executable()]
    bare = [sys.executable, str(baseline)]
    # One unmeasured run of each: the page cache, bytecode, the home's first session.
    cold_start(home)
    _first_frame(chat, env, CHAT_MARKER, FRAME_TIMEOUT_S)
    _first_frame(bare, env, BASELINE_MARKER)
    for _ in range(sizes.cold_runs):
        run = cold_start(home)
        figures.cold_reply.append(run.reply_s)
        figures.cold_exit.append(run.exit_s)
    for _ in range(sizes.frame_runs):
        figures.frame.append(_first_frame(chat, env, CHAT_MARKER, FRAME_TIMEOUT_S)[1])
        figures.baseline.append(_first_frame(bare, env, BASELINE_MARKER)[1])
    memory = tree_memory(home)
    figures.processes, figures.pss_kib = memory.processes, memory.pss_kib
    turn = tool_spec_turn(home)
    every = all_specs([OFFICIAL / name for name in FRESH_INSTALL] + copies)
    figures.specs_sent, figures.tokens_sent = len(turn.sent), approx_tokens(turn.sent)
    figures.specs_all, figures.tokens_all = len(every), approx_tokens(every)
    figures.reported = turn.reported
    for _ in range(sizes.first_call_runs):
        first, warm = first_and_warm_calls(home, sizes.warm_calls)
        figures.first_call.append(first)
        figures.warm_call += warm
    return figures


def all_specs(folders: list[Path]) -> list[dict[str, Any]]:
    """Every tool of these plugins as a model call with no budget would carry it."""
    infos = []
    for folder in folders:
        spec = load_plugin(folder, layout="source")
        infos += [ToolInfo(t.name, spec.name, t.description, t.parameters) for t in spec.tools]
    return [
        {"name": s.name, "description": s.description, "parameters": s.parameters}
        for s in build_toolbox(infos).specs
    ]


def _report(figures: ScaleFigures) -> str:
    lines = [*table_lines(figures.rows()), "", *verdict_lines(figures.verdicts())]
    lines.append(f"(the section took {figures.seconds:.0f} s)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small N (for the smoke test)")
    parser.add_argument("--json", action="store_true", help="print one JSON document only")
    options = parser.parse_args(argv)
    os.chdir(REPO_ROOT)
    # SIGTERM cleans up like Ctrl-C: every deeting reaped, the homes removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        figures = scale_figures(ScaleSizes.quick() if options.quick else ScaleSizes())
    finally:
        reap_children()
    if options.json:
        document = figures.as_json()
        document["targets"] = [
            {"target": t, "value": round(v, 3), "limit": lim, "pass": ok}
            for t, _m, lim, ok, v in figures.verdicts()
        ]
        sys.stdout.buffer.write(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        print(_report(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
