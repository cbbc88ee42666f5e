"""The tool budget (deeting_tui/llm/tool_budget.py): tokens per turn, recall and its cost.

**Catalogue**: ``data/tool_catalog.json`` (261 tools of 76 plugins, bench/tool_catalog.py);
the figures are taken at its first 200 tools, with the queries whose tool is among them.

**Tokens**: the specs one model call carries against every spec, both as the budget
estimates them (compact JSON bytes / 4), per query; the worst query is judged.

**Recall**: a query counts when its labelled tool is among the specs sent, or when
``find_tools`` called with the user's message itself (the model's query modelled as the
message, no rewording: the honest default) finds it in one step. Shown apart for the
"fresh" queries, written after the ranker's vocabulary was, so not tuned on.

**Time**: one turn's selection (p50 and max over the queries) with the tool set's index
built, and the index build itself (once per tool set), at 200 and 1,000 tools (the
catalogue repeated with numbered names).

``python -m bench.tool_budget [--json]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from deeting_tui.llm import tool_budget
from deeting_tui.llm.tool_budget import Budget

from .common import percentile_ms
from .tool_catalog import load_queries, tool_infos

#: The targets (issue 17): at 200 tools.
TOKENS_MAX = 0.10
RECALL_MIN = 0.95
SELECT_MS_MAX = 10.0


@dataclass
class Timing:
    tools: int
    build_s: float
    samples: list[float] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "tools": self.tools,
            "index_build_ms": round(self.build_s * 1e3, 2),
            "select_p50_ms": round(percentile_ms(self.samples, 50), 3),
            "select_max_ms": round(max(self.samples) * 1e3, 3),
        }


@dataclass
class ToolBudgetFigures:
    tools: int
    queries: int
    fresh: int
    found_sent: int  # the tool was among the specs sent
    found_find: int  # found_tools with the message found it
    fresh_found: int
    ratios: list[float]
    sent: list[int]
    all_tokens: int
    misses: list[str]
    timings: list[Timing]

    @property
    def recall(self) -> float:
        return (self.found_sent + self.found_find) / self.queries

    @property
    def fresh_recall(self) -> float:
        return self.fresh_found / self.fresh if self.fresh else 1.0

    def verdicts(self) -> list[tuple[str, str, str, bool, float]]:
        worst = max(self.ratios)
        at200 = next(t for t in self.timings if t.tools == self.tools)
        p50 = percentile_ms(at200.samples, 50)
        return [
            (
                f"tool-spec tokens per turn, {self.tools} tools (worst query)",
                f"{worst * 100:.1f}% of every spec's {self.all_tokens}",
                f"<= {TOKENS_MAX * 100:g}%",
                worst <= TOKENS_MAX,
                worst,
            ),
            (
                f"tool budget recall, {self.queries} labelled queries",
                f"{self.recall * 100:.1f}% (fresh {self.fresh_recall * 100:.0f}% of {self.fresh})",
                f">= {RECALL_MIN * 100:g}%",
                self.recall >= RECALL_MIN,
                self.recall,
            ),
            (
                f"tool selection per turn p50, {self.tools} tools",
                f"{p50:.2f} ms",
                f"<= {SELECT_MS_MAX:g} ms",
                p50 <= SELECT_MS_MAX,
                p50,
            ),
        ]

    def rows(self) -> list[tuple[str, str, str, str, str]]:
        mean = sum(self.ratios) / len(self.ratios)
        rows = [(f"tool budget, {self.tools} tools", "value", "", "", "")]
        rows.append(("every spec, estimated tokens", str(self.all_tokens), "", "", ""))
        rows.append(
            (
                "sent per turn: specs (mean / max)",
                f"{sum(self.sent) / len(self.sent):.1f}",
                str(max(self.sent)),
                "",
                "",
            )
        )
        rows.append(
            ("tokens vs every spec (mean / max)", f"{mean:.1%}", f"{max(self.ratios):.1%}", "", "")
        )
        rows.append(
            (
                f"recall, {self.queries} queries (sent / find_tools)",
                f"{self.recall:.1%}",
                str(self.found_sent),
                str(self.found_find),
                "",
            )
        )
        rows.append((f"recall, {self.fresh} fresh queries", f"{self.fresh_recall:.1%}", "", "", ""))
        for timing in self.timings:
            data = timing.as_json()
            rows.append(
                (
                    f"selection at {timing.tools} tools: p50 / max / index build",
                    f"{data['select_p50_ms']:.2f} ms",
                    f"{data['select_max_ms']:.2f} ms",
                    f"{data['index_build_ms']:.0f} ms",
                    "",
                )
            )
        return rows

    def as_json(self) -> dict[str, Any]:
        return {
            "tools": self.tools,
            "queries": self.queries,
            "all_tokens": self.all_tokens,
            "tokens_ratio_max": round(max(self.ratios), 4),
            "tokens_ratio_mean": round(sum(self.ratios) / len(self.ratios), 4),
            "sent_max": max(self.sent),
            "recall": round(self.recall, 4),
            "recall_sent_only": round(self.found_sent / self.queries, 4),
            "fresh_queries": self.fresh,
            "fresh_recall": round(self.fresh_recall, 4),
            # every figure a positive number (python -m bench's smoke test): the misses are
            # in the text report only
            "timings": {str(t.tools): t.as_json() for t in self.timings},
        }


def tool_budget_figures(tools_n: int = 200) -> ToolBudgetFigures:
    tools = tool_infos(tools_n)
    names = {t.name for t in tools}
    queries = [q for q in load_queries() if q["tool"] in names]
    found_sent = found_find = fresh = fresh_found = 0
    ratios: list[float] = []
    sent: list[int] = []
    misses: list[str] = []
    all_tokens = 0
    for query in queries:
        budget = Budget.select(tools, query["query"])
        figures = budget.figures
        all_tokens = figures["all_tokens"]
        ratios.append(figures["tokens"] / figures["all_tokens"])
        sent.append(figures["sent"])
        hit = query["tool"] in {t.name for t in budget.chosen}
        found_sent += hit
        if not hit:
            budget.find(query["query"])
            hit = query["tool"] in {t.name for t in budget.chosen}
            found_find += hit
        if query.get("set") == "fresh":
            fresh += 1
            fresh_found += hit
        if not hit:
            misses.append(f"{query['tool']}: {query['query']}")
    timings = [_timing(tools_n, queries), _timing(1000, queries)]
    return ToolBudgetFigures(
        tools_n,
        len(queries),
        fresh,
        found_sent,
        found_find,
        fresh_found,
        ratios,
        sent,
        all_tokens,
        misses,
        timings,
    )


def _timing(count: int, queries: list[dict[str, str]]) -> Timing:
    tools = tool_infos(count)
    tool_budget._cache = None  # time the build, not a cached index
    began = time.perf_counter()
    tool_budget.index_for(tools)
    timing = Timing(count, time.perf_counter() - began)
    for query in queries:
        began = time.perf_counter()
        Budget.select(tools, query["query"])
        timing.samples.append(time.perf_counter() - began)
    return timing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tool_budget", description=__doc__)
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args(argv)
    figures = tool_budget_figures()
    if options.json:
        sys.stdout.buffer.write(orjson.dumps(figures.as_json(), option=orjson.OPT_INDENT_2))
        sys.stdout.write("\n")
    else:
        for row in figures.rows():
            print("  ".join(cell for cell in row if cell))
        for verdict in figures.verdicts():
            print(f"{'PASS' if verdict[3] else 'FAIL'}  {verdict[0]}: {verdict[1]} ({verdict[2]})")
        for miss in figures.misses:
            print(f"miss  {miss}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
