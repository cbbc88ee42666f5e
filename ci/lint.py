"""Lint plugin folders (or zips) the way the kernel will judge them at install.

``python ci/lint.py plugins/*`` prints every problem of every plugin, one per line, prefixed by
the plugin's path, so a CI log reads like a compiler's. ``--json`` gives one document for
tools. Exit 0: all good; 1: any problem; 2: bad usage.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

if not __package__:  # run as a script: the checkout's ``ci`` and deeting_tui, not others
    sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

from ci._cli import parse, plugin_parser, report
from deeting_tui.plugin.lint import lint_path
from deeting_tui.plugin.manifest import PluginSpec, Problem
from deeting_tui.terminal_text import neutralise_line

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(plugin_parser("lint.py", "Check Deeting plugin folders or zips."), argv)
    if isinstance(args, int):
        return args
    results = [(path, *lint_path(path)) for path in args.paths]
    return report(
        results,
        args.json,
        lambda result: _as_json(*result),
        lambda result: _print_plain(*result),
        ok=lambda result: not result[2],
    )


def _print_plain(path: Path, spec: PluginSpec | None, problems: list[Problem]) -> None:
    # A problem may quote the plugin's own strings: neutralised, on one line each.
    if spec is not None:
        print(neutralise_line(f"ok  {path} ({spec.name}@{spec.version})"))
    for problem in problems:
        located = problem.file or problem.field  # else the message names the path itself
        print(neutralise_line(f"{path}: {problem}" if located else str(problem)))


def _as_json(path: Path, spec: PluginSpec | None, problems: list[Problem]) -> dict[str, object]:
    document: dict[str, object] = {
        "path": str(path),
        "ok": not problems,
        "problems": [{"file": p.file, "field": p.field, "message": p.message} for p in problems],
    }
    if spec is not None:
        document.update(name=spec.name, version=spec.version)
    return document


if __name__ == "__main__":
    sys.exit(main())
