"""The chat's two felt speeds: launch to the first painted frame, and keys under a stream flood.

**Launch.** The venv's ``deeting`` starts in a pseudo-terminal of 80x24 (a fresh
``DEETING_HOME``, every official plugin installed and granted; the chat starts them after its
first frame); the clock runs from just before the exec until the pty output holds the chat's header
text, which Textual draws with the chat screen's first frame (terminal-title sequences are
ignored: Textual sends the title before painting). The baseline, taking turns with it in the
same run, is a minimal Textual app (Header, Input, Footer) in a temp file, timed the same way:
what Textual itself costs, so the difference is ours (imports, kernel, plugin workers). Both
quit with ctrl+q; each must exit 0.

**Keys under a flood.** In a child process, ``DeetingApp`` runs headless (``run_test``) with
the bench-streamer plugin. A thread presses keys into the chat's prompt at a fixed interval,
posting them to the app as Textual's own terminal driver does (from its input thread); the
latency is from the post to the moment the prompt's value changes (its watcher runs). First
with nothing streaming (the baseline), then while the plugin pushes N sparkline updates over
S seconds through the kernel to the chat's live card.

Each half has its module (``ui_launch.py``, ``ui_flood.py``); this one holds the figures,
the targets and the command. ``python -m bench.ui [--quick] [--json]`` runs this section
alone; ``python -m bench`` runs it with the others.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from .common import REPO_ROOT, percentile_ms, table_lines, verdict_lines
from .ui_flood import Flood, flood_child, flood_figures
from .ui_launch import Launch, launch_times

#: Targets (issue 5, point 9).
LAUNCH_S_MAX = 1.0
#: The chat's first frame against Textual alone's, in the same run (issue 17, point 4).
LAUNCH_RATIO_MAX = 1.5
KEY_MS_MAX = 100.0


@dataclass
class UiSizes:
    launch_runs: int = 10
    flood_updates: int = 1000
    flood_seconds: float = 5.0
    key_interval: float = 0.05

    @classmethod
    def quick(cls) -> UiSizes:
        return cls(launch_runs=2, flood_updates=200, flood_seconds=1.0, key_interval=0.05)


@dataclass
class UiFigures:
    deeting: Launch
    textual: Launch
    flood: Flood

    def as_json(self) -> dict[str, Any]:
        return {
            "launch": self.deeting.as_json(),
            "launch_baseline_textual": self.textual.as_json(),
            "flood": self.flood.as_json(),
        }

    def rows(self) -> list[tuple[str, ...]]:
        """Rows for the report's table, five columns like the others'."""
        rows: list[tuple[str, ...]] = [
            ("chat launch, exec to first frame (pty)", "n", "p50", "max", "alt screen")
        ]
        for launch in (self.deeting, self.textual):
            rows.append(
                (
                    launch.name,
                    str(len(launch.painted)),
                    f"{percentile_ms(launch.painted, 50):.0f} ms",
                    f"{percentile_ms(launch.painted, 100):.0f} ms",
                    f"{percentile_ms(launch.started, 50):.0f} ms",
                )
            )
        flood = self.flood
        rows += [
            ("", "", "", "", ""),
            ("key press to prompt value", "n", "p50", "p95", "max"),
        ]
        for label, keys in (
            ("idle (no stream)", flood.idle),
            (f"{flood.updates} updates in {flood.seconds:g} s", flood.flooded),
        ):
            data = keys.as_json()
            rows.append(
                (
                    label,
                    f"{data['keys_handled']}/{data['keys_sent']}",
                    f"{data['p50_ms']:.2f} ms",
                    f"{data['p95_ms']:.2f} ms",
                    f"{data['max_ms']:.2f} ms",
                )
            )
        rows.append(
            (
                "stream updates delivered to the chat",
                f"{flood.seen}/{flood.updates}",
                f"{flood.rate:.0f}/s",
                "",
                "",
            )
        )
        rows.append(
            (
                "frames of the live card painted",
                str(flood.frames),
                f"{flood.frames / flood.span_s:.0f}/s" if flood.span_s > 0 else "",
                "",
                "",
            )
        )
        return rows

    def verdicts(self) -> list[tuple[str, str, str, bool, float]]:
        """(target, measured, limit, passed, value), for the report's verdict table."""
        launch = percentile_ms(self.deeting.painted, 50) / 1e3
        alone = percentile_ms(self.textual.painted, 50) / 1e3
        flooded = self.flood.flooded
        worst = percentile_ms(flooded.samples, 100)
        handled = len(flooded.samples)
        ratio = launch / alone if alone > 0 else float("inf")
        return [
            (
                "chat launch to first frame p50 <= 1 s",
                f"{launch:.2f} s (Textual alone {alone:.2f} s)",
                f"<= {LAUNCH_S_MAX:g} s",
                launch <= LAUNCH_S_MAX,
                launch,
            ),
            (
                "chat first frame / Textual alone's, p50",
                f"{ratio:.2f}x ({launch:.2f} s / {alone:.2f} s)",
                f"<= {LAUNCH_RATIO_MAX:g}x",
                ratio <= LAUNCH_RATIO_MAX,
                ratio,
            ),
            (
                f"key latency max under {self.flood.updates} updates/{self.flood.seconds:g} s",
                f"{worst:.1f} ms (p95 {percentile_ms(flooded.samples, 95):.1f})",
                f"<= {KEY_MS_MAX:g} ms",
                worst <= KEY_MS_MAX and handled == flooded.sent,
                worst,
            ),
        ]


# -- the section ------------------------------------------------------------------------------


def ui_figures(sizes: UiSizes) -> UiFigures:
    deeting, textual = launch_times(sizes.launch_runs)
    return UiFigures(deeting, textual, flood_figures(sizes))


def _report(figures: UiFigures) -> str:
    return "\n".join([*table_lines(figures.rows()), "", *verdict_lines(figures.verdicts())])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ui", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small N (for the smoke test)")
    parser.add_argument("--json", action="store_true", help="print one JSON document only")
    parser.add_argument("--flood-child", nargs=5, help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.flood_child:
        home, updates, seconds, interval, out = options.flood_child
        run = flood_child(Path(home), int(updates), float(seconds), float(interval))
        Path(out).write_bytes(orjson.dumps(asyncio.run(run)))
        return 0
    os.chdir(REPO_ROOT)
    figures = ui_figures(UiSizes.quick() if options.quick else UiSizes())
    if options.json:
        sys.stdout.buffer.write(orjson.dumps(figures.as_json(), option=orjson.OPT_INDENT_2) + b"\n")
    else:
        print(_report(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
