"""Lint plugin folders (or zips) the way the kernel will judge them at install.

``python ci/lint.py plugins/*`` prints every problem of every plugin, one per line, prefixed by
the plugin's path, so a CI log reads like a compiler's. ``--json`` gives one document for
tools. Exit 0: all good; 1: any problem; 2: bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

try:
    import deeting_tui  # noqa: F401
except ImportError:  # run as a script from a checkout: the repo root is this file's parent's
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from deeting_tui.plugin.archive import ArchiveError, extract_zip
from deeting_tui.plugin.manifest import PluginSpec, Problem, check_plugin
from deeting_tui.terminal_text import neutralise_line

__all__ = ["lint_path", "main"]


def lint_path(path: Path) -> tuple[PluginSpec | None, list[Problem]]:
    """Check one folder, or one zip after a safe extraction (as an install would do)."""
    if not (path.is_file() and zipfile.is_zipfile(path)):
        return check_plugin(path)
    with tempfile.TemporaryDirectory(prefix="deeting-lint-") as tmp:
        try:
            root = extract_zip(path, Path(tmp) / "plugin")
        except ArchiveError as error:
            return None, [Problem(path.name, "", f"refused archive: {error}")]
        spec, problems = check_plugin(root)
    return spec, problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lint.py", description="Check Deeting plugin folders or zips."
    )
    parser.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="plugin folder or zip")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    if not args.paths:
        parser.print_usage(sys.stderr)
        print("lint.py: error: give at least one plugin folder or zip", file=sys.stderr)
        return 2
    results = [(path, *lint_path(path)) for path in args.paths]
    if args.json:
        print(json.dumps({"plugins": [_as_json(*result) for result in results]}, indent=2))
    else:
        for result in results:
            _print_plain(*result)
    return 1 if any(problems for _, _, problems in results) else 0


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
