"""Adding notes through ``deeting --script``: the cost per note must not grow with the notebook.

notes 1.0.0 rewrote and fsynced its whole JSON file per note, so the n-th note cost O(n)
(1,000 notes 5.5 s, 4,000 notes 70 s). For each size N (1,000 and 10,000; ``--quick``: 200
and 1,000), in a fresh ``DEETING_HOME`` with only the plugin measured installed from its
folder (``DEETING_BUNDLE=""``), one ``deeting --script`` process sends N lines
``note: …``, each routed by the notes trigger to ``note_add`` in the sandboxed worker.
Start-up (a 1-line run of the same kind) is subtracted, giving the time per note. The
baseline, in the same run and the same way: N calc messages (``= I+1``), which do no disk
work of their own. Afterwards the notebook is counted: every note must be there.

Verdicts: the time per note at the largest size is within :data:`FLAT_FACTOR_MAX` of that at
the smallest (flat, not growing), and every note was stored.

``python -m bench.notes [--quick] [--json] [--sizes 1000,4000] [--notes PLUGIN_FOLDER]``
(``--notes`` measures another copy, e.g. 1.0.0's, for a before/after).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import tempfile
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from deeting_tui.paths import resolve_paths

from .common import REPO_ROOT, reap_children
from .throughput import _run, deeting_executable

NOTES_PLUGIN = REPO_ROOT / "plugins" / "notes"
CALC_PLUGIN = REPO_ROOT / "plugins" / "calc"
#: Target: the time per note at the largest size at most this times that at the smallest.
FLAT_FACTOR_MAX = 1.5


@dataclass
class NotesSizes:
    sizes: tuple[int, ...] = (1000, 10_000)
    startup_runs: int = 3
    plugin: Path = NOTES_PLUGIN

    @classmethod
    def quick(cls) -> NotesSizes:
        return cls(sizes=(200, 1000), startup_runs=1)


@dataclass
class Run:
    """One kind of message at one size: N of them through one ``--script`` process."""

    kind: str
    messages: int
    total_s: float
    startup_s: float

    @property
    def per_message_ms(self) -> float:
        work = self.total_s - self.startup_s
        if work <= 0:  # start-up noise swamped a tiny run: the end-to-end figure, an upper bound
            return self.total_s / self.messages * 1e3
        return work / max(1, self.messages - 1) * 1e3

    def as_json(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "total_s": round(self.total_s, 4),
            "startup_s": round(self.startup_s, 4),
            "per_message_ms": round(self.per_message_ms, 4),
        }


@dataclass
class NotesFigures:
    version: str
    notes: list[Run] = field(default_factory=list)
    calc: list[Run] = field(default_factory=list)
    stored: list[int] = field(default_factory=list)

    def growth(self) -> float:
        """Time per note at the largest size over that at the smallest."""
        return self.notes[-1].per_message_ms / self.notes[0].per_message_ms

    def verdicts(self) -> list[tuple[str, str, str, bool, float]]:
        small, large = self.notes[0], self.notes[-1]
        growth = self.growth()
        expected = sum(run.messages for run in self.notes)
        return [
            (
                f"notes: time per note at {large.messages:,} within 1.5x of at {small.messages:,}",
                f"{growth:.2f}x ({large.per_message_ms:.2f} / {small.per_message_ms:.2f} ms)",
                f"<= {FLAT_FACTOR_MAX:g}x",
                growth <= FLAT_FACTOR_MAX,
                growth,
            ),
            (
                "notes: the notebook holds every note added",
                f"{sum(self.stored)} of {expected}",
                f"= {expected}",
                sum(self.stored) == expected,
                sum(self.stored),
            ),
        ]

    def rows(self) -> list[tuple[str, str, str, str, str]]:
        rows = [(f"deeting --script, notes {self.version}", "n", "total", "per msg", "vs calc")]
        for note, calc in zip(self.notes, self.calc, strict=True):
            ratio = note.per_message_ms / calc.per_message_ms
            rows.append(
                (
                    f"note: … (note_add), {note.messages:,}",
                    str(note.messages),
                    f"{note.total_s:.2f} s",
                    f"{note.per_message_ms:.3f} ms",
                    f"{ratio:.2f}x",
                )
            )
            rows.append(
                (
                    f"  baseline = I+1 (calc), {calc.messages:,}",
                    str(calc.messages),
                    f"{calc.total_s:.2f} s",
                    f"{calc.per_message_ms:.3f} ms",
                    "",
                )
            )
        return rows

    def as_json(self) -> dict[str, Any]:
        return {
            "notes": {str(run.messages): run.as_json() for run in self.notes},
            "calc": {str(run.messages): run.as_json() for run in self.calc},
            "notes_stored": sum(self.stored),
            "per_note_growth": round(self.growth(), 3),
            "flat_factor_max": FLAT_FACTOR_MAX,
        }


def _timed(
    deeting: str, home: Path, tmp: Path, kind: str, lines: list[str], startup_runs: int
) -> Run:
    one = tmp / f"{kind}-one.txt"
    one.write_text(lines[0] + "\n")
    script = tmp / f"{kind}-{len(lines)}.txt"
    script.write_text("".join(line + "\n" for line in lines))
    _run([deeting, "--script", str(one)], home)  # warm-up: page cache, the session store
    startup = statistics.median(
        _run([deeting, "--script", str(one)], home) for _ in range(startup_runs)
    )
    total = _run([deeting, "--script", str(script)], home, timeout=900.0)
    return Run(kind, len(lines), total, startup)


def count_notes(data: Path) -> int:
    """Notes in a notes data folder: 1.1.0's database, or 1.0.0's JSON for a before/after."""
    if (data / "notes.db").exists():
        with closing(sqlite3.connect(data / "notes.db")) as db:
            return int(db.execute("SELECT count(*) FROM notes").fetchone()[0])
    if (data / "notes.json").exists():
        return len(json.loads((data / "notes.json").read_text())["notes"])
    return 0


def notes_figures(sizes: NotesSizes) -> NotesFigures:
    deeting = deeting_executable()
    manifest = json.loads((sizes.plugin / "kimai.json").read_text())
    figures = NotesFigures(str(manifest["version"]))
    for count in sizes.sizes:
        for kind, plugin in (("calc", CALC_PLUGIN), ("notes", sizes.plugin)):
            with tempfile.TemporaryDirectory(prefix="deeting-bench-notes-") as folder:
                tmp = Path(folder)
                home = tmp / "home"
                home.mkdir()
                _run([deeting, "plugin", "install", str(plugin), "--yes"], home)
                if kind == "calc":
                    lines = [f"= {i}+1" for i in range(count)]
                    figures.calc.append(_timed(deeting, home, tmp, kind, lines, sizes.startup_runs))
                    continue
                lines = [f"note: bench note {i}, buy oat milk" for i in range(count)]
                run = _timed(deeting, home, tmp, kind, lines, sizes.startup_runs)
                figures.notes.append(run)
                # The warm-up and start-up runs added a note each, then the N.
                data = resolve_paths({"DEETING_HOME": str(home)}).plugin_data("notes")
                stored = count_notes(data)
                figures.stored.append(stored - 1 - sizes.startup_runs)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.notes", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="200 and 1,000 notes")
    parser.add_argument("--json", action="store_true", help="print one JSON document only")
    parser.add_argument("--sizes", help="comma-separated note counts (default 1000,10000)")
    parser.add_argument("--notes", type=Path, help="another notes plugin folder to measure")
    options = parser.parse_args(argv)
    sizes = NotesSizes.quick() if options.quick else NotesSizes()
    if options.sizes:
        sizes.sizes = tuple(int(part) for part in options.sizes.split(","))
    if options.notes:
        sizes.plugin = options.notes.resolve()
    try:
        figures = notes_figures(sizes)
    finally:
        reap_children()
    if options.json:
        sys.stdout.buffer.write(orjson.dumps(figures.as_json(), option=orjson.OPT_INDENT_2) + b"\n")
        return 0
    for row in figures.rows():
        print("  ".join(f"{cell:>14}" if i else f"{cell:<40}" for i, cell in enumerate(row)))
    for target, measured, limit, passed, _value in figures.verdicts():
        print(f"{'PASS' if passed else 'FAIL'}  {target}: {measured} ({limit})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
