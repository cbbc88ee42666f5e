"""``python -m bench [--quick] [--json]``: run every benchmark once and report.

Exit status 0 whatever the verdicts (this is a report, not a gate); 1 when a benchmark could
not run at all; 2 for bad usage. The targets and verdicts are ``verdicts.py``'s, the tables
``report.py``'s; this module runs each section and gathers what it measured.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

import orjson

from .browser import BrowserSizes, browser_figures
from .chat_input import ChatInputSizes, chat_input_figures
from .common import REPO_ROOT, Sizes, reap_children
from .confinement import confinement_cost
from .notes import NotesSizes, notes_figures
from .ready import ready_times
from .registry import RegistrySizes, registry_figures
from .report import (
    machine_info,
    machine_lines,
    printer,
    results_json,
    results_table,
    verdict_table,
)
from .roundtrip import roundtrips
from .sandbox import sandbox_cost
from .scale import ScaleSizes, scale_figures
from .throughput import script_throughput
from .tool_budget import tool_budget_figures
from .triggers import TriggerSizes, trigger_figures
from .ui import UiSizes, ui_figures
from .verdicts import judge


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small N (for the smoke test)")
    parser.add_argument("--json", action="store_true", help="print one JSON document only")
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        metavar="SECTION",
        help="leave a section out (e.g. browser, which python -m bench.browser runs alone)",
    )
    options = parser.parse_args(argv)
    sizes = Sizes.quick() if options.quick else Sizes()
    os.chdir(REPO_ROOT)  # children run `python -m bench.*`
    # SIGTERM should clean up like Ctrl-C does: children reaped, temp dirs removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    info = machine_info()
    say = (lambda *_: None) if options.json else printer()
    say(machine_lines(info, options.quick))

    results: dict[str, Any] = {}
    errors: dict[str, str] = {}

    def run(key: str, label: str, fn: Callable[[], Any]) -> Any:
        if key in options.skip:
            say(f"skipped: {label}")
            return None
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
        notes_sizes = NotesSizes.quick() if options.quick else NotesSizes()
        run(
            "notes",
            f"deeting --script adding {' and '.join(f'{n:,}' for n in notes_sizes.sizes)} notes, "
            "against as many calc messages",
            lambda: notes_figures(notes_sizes),
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
        scale_sizes = ScaleSizes.quick() if options.quick else ScaleSizes()
        run(
            "scale",
            "scale: cold start, first frame, memory, tool specs at "
            + "/".join(str(n) for n in scale_sizes.plugins)
            + " installed plugins",
            lambda: scale_figures(scale_sizes),
        )
        run(
            "tool_budget",
            "the tool budget at 200 tools: tokens per turn, recall on labelled queries",
            tool_budget_figures,
        )
        run(
            "browser",
            "browser faces: server start, a stream frame to its drawing, a live chart's heap",
            lambda: browser_figures(BrowserSizes.quick() if options.quick else BrowserSizes()),
        )
    finally:
        reap_children()

    verdicts = judge(results)
    document = {
        "machine": info,
        "quick": options.quick,
        "sizes": sizes.__dict__,
        "results": results_json(results),
        "targets": [v.as_json() for v in verdicts],
        "errors": errors,
    }
    if options.json:
        sys.stdout.buffer.write(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        print()
        print(results_table(results))
        print()
        print(verdict_table(verdicts))
        for key, message in errors.items():
            print(f"error in {key}: {message}")
    return 1 if errors else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        reap_children()
        sys.exit(130)
