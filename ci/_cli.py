"""The command line the three plugin checkers share: ``PATH…`` and ``--json``, usage errors
exit 2, any failing plugin exits 1, and the same output shape (one line per finding, or one
JSON document ``{"plugins": [...]}``). One skeleton keeps lint, scan and smoke alike."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["parse", "plugin_parser", "report"]

R = TypeVar("R")


def plugin_parser(prog: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="plugin folder or zip")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    return parser


def parse(
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None,
    *,
    needs_paths: Callable[[argparse.Namespace], bool] = lambda _args: True,
) -> argparse.Namespace | int:
    """The parsed arguments, or the exit code when there is nothing to run (``--help``, bad
    usage, no PATH given): a checker returns its code instead of raising SystemExit."""
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    if needs_paths(args) and not args.paths:
        parser.print_usage(sys.stderr)
        print(f"{parser.prog}: error: give at least one plugin folder or zip", file=sys.stderr)
        return 2
    return args


def report(
    results: Sequence[R],
    as_json: bool,
    to_json: Callable[[R], dict[str, Any]],
    print_plain: Callable[[R], None],
    ok: Callable[[R], bool] = lambda result: bool(result.ok),  # type: ignore[attr-defined]
) -> int:
    """Print every result and return the exit code: 0 when all are ok (a result's ``ok``
    unless told otherwise), else 1."""
    if as_json:
        print(json.dumps({"plugins": [to_json(result) for result in results]}, indent=2))
    else:
        for result in results:
            print_plain(result)
    return 0 if all(ok(result) for result in results) else 1
