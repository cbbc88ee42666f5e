"""A plugin's ``examples.yaml``: the calls ``ci/smoke.py`` makes, read and checked first.

Every problem in the file is reported at once, located by its field (``[2].expect.error``),
and every tool must have at least one example; only a file with no problem yields calls, so
a smoke run never half-runs a plugin whose examples are wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from deeting_tui.plugin.manifest import PluginSpec, Problem

__all__ = ["EXAMPLES_FILE", "Example", "load_examples"]

EXAMPLES_FILE = "examples.yaml"
MAX_EXAMPLES_BYTES = 1 << 20
ENTRY_KEYS = ("tool", "arguments", "expect")
EXPECT_KEYS = ("error", "summary_contains")
SHAPE = "a list of calls like '- {tool: NAME, arguments: {...}, expect: {error: false}}'"


@dataclass(frozen=True)
class Example:
    index: int
    tool: str
    arguments: dict[str, Any] = field(hash=False)
    error: bool = False
    summary_contains: str | None = None


class _Problems(list[Problem]):
    """Problems found in examples.yaml, each located by its field (``[2].expect.error``)."""

    def add(self, where: str, message: str) -> None:
        self.append(Problem(EXAMPLES_FILE, where, message))


def load_examples(root: Path, spec: PluginSpec) -> tuple[list[Example], list[Problem]]:
    """The plugin's example calls, or every reason they cannot be run (and no calls)."""
    problems = _Problems()
    document = _read_examples(root / EXAMPLES_FILE, problems)
    if problems:
        return [], problems
    if not isinstance(document, list) or not document:
        found = "an empty list" if document == [] else _kind(document)
        problems.add("", f"must be {SHAPE}, not {found}")
        return [], problems
    examples = [_example(index, entry, spec, problems) for index, entry in enumerate(document)]
    if problems:
        return [], problems
    called = {example.tool for example in examples if example is not None}
    for tool in spec.tools:
        if tool.name not in called:
            problems.add("", f"no example calls tool {tool.name!r}: every tool needs at least one")
    return ([], problems) if problems else ([e for e in examples if e is not None], [])


def _read_examples(path: Path, problems: _Problems) -> object:
    if not path.is_file():
        problems.add("", f"missing — {SHAPE}, at least one per tool")
        return None
    try:
        if path.stat().st_size > MAX_EXAMPLES_BYTES:
            problems.add("", f"too large: over {MAX_EXAMPLES_BYTES} bytes")
            return None
        return yaml.safe_load(path.read_text("utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problems.add("", f"not valid YAML{where}: {getattr(error, 'problem', None) or error}")
    except (OSError, UnicodeDecodeError) as error:
        problems.add("", f"cannot be read: {error}")
    return None


def _example(index: int, entry: object, spec: PluginSpec, problems: _Problems) -> Example | None:
    at, before = f"[{index}]", len(problems)
    if not isinstance(entry, dict):
        problems.add(at, f"must be a mapping with tool, arguments, expect — not {_kind(entry)}")
        return None
    for key in entry:
        if key not in ENTRY_KEYS:
            problems.add(f"{at}.{key}", f"unknown key (allowed: {', '.join(ENTRY_KEYS)})")
    tool, arguments = entry.get("tool"), entry.get("arguments", {})
    names = ", ".join(t.name for t in spec.tools) or "none"
    if not isinstance(tool, str) or not tool:
        problems.add(f"{at}.tool", f"missing: name the tool to call (tools: {names})")
    elif spec.tool(tool) is None:
        problems.add(f"{at}.tool", f"{tool!r} is not a tool of this plugin (tools: {names})")
    if not isinstance(arguments, dict) or not all(isinstance(k, str) for k in arguments):
        problems.add(
            f"{at}.arguments", f"must be a mapping of names to values, not {_kind(arguments)}"
        )
    error, contains = _expect(at, entry.get("expect"), problems)
    if len(problems) != before:
        return None
    return Example(index, str(tool), dict(arguments), error, contains)


def _expect(at: str, expect: object, problems: _Problems) -> tuple[bool, str | None]:
    if expect is None:
        return False, None
    if not isinstance(expect, dict):
        wanted = " and/or ".join(EXPECT_KEYS)
        problems.add(f"{at}.expect", f"must be a mapping with {wanted}, not {_kind(expect)}")
        return False, None
    for key in expect:
        if key not in EXPECT_KEYS:
            problems.add(f"{at}.expect.{key}", f"unknown key (allowed: {', '.join(EXPECT_KEYS)})")
    error, contains = expect.get("error", False), expect.get("summary_contains")
    if not isinstance(error, bool):
        problems.add(f"{at}.expect.error", f"must be true or false, not {error!r}")
    if contains is not None and (not isinstance(contains, str) or not contains.strip()):
        problems.add(
            f"{at}.expect.summary_contains", f"must be a non-empty string, not {contains!r}"
        )
    return error is True, contains if isinstance(contains, str) else None


def _kind(value: object) -> str:
    if value is None:
        return "nothing (an empty file or value)"
    names = {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}
    return names.get(type(value), f"a {type(value).__name__}")
