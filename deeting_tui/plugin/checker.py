"""kimai.json + package.json + llm-tool.yaml + src/index.py → a checked :class:`PluginSpec`.

The same checker serves the kernel (install), CI (lint) and the registry builder, so a plugin
is refused for the same reasons everywhere. It reports every problem at once: an author fixing
a manifest should not have to run the linter once per mistake. What a checked plugin *is*
(the spec and its parts) is ``manifest.py``'s; this module is how a folder earns one.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Literal

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import Version

from deeting_tui.plugin._schema import human_errors, type_name, validator
from deeting_tui.plugin._tools import parse_tools
from deeting_tui.plugin.manifest import (
    TRIGGER_PRIORITY,
    ManifestError,
    PluginSpec,
    Problem,
    TriggerSpec,
    build_spec,
)
from deeting_tui.plugin.mcp_server import MCP_KEY, SERVER_DIR
from deeting_tui.plugin.requirements import REQUIREMENTS_FILE, RequirementsError, read_requirements
from deeting_tui.plugin.scopes import MESSAGES, Scope, ScopeError, parse_scope, reads_user_input
from deeting_tui.plugin.triggers import TriggerPattern, TriggerRegexError, compile_trigger
from deeting_tui.plugin.wheel_fetch import WHEEL_FILE_NAME
from deeting_tui.resources import core_renderer_names

__all__ = ["DEPS_DIR", "WHEELS_DIR", "Layout", "check_plugin", "load_plugin"]


KIMAI, PACKAGE, TOOLS, ENTRY = "kimai.json", "package.json", "llm-tool.yaml", "src/index.py"
MAX_MANIFEST_BYTES = 1 << 20

#: The dependency folders: ``wheels/`` holds the pinned wheels (vendored by a registry build,
#: or fetched by a folder install), ``deps/`` what an install unpacked from them. Neither is
#: the author's: a source folder must not have them.
WHEELS_DIR, DEPS_DIR = "wheels", "deps"

#: Where a plugin folder comes from, which decides what its dependency folders may hold:
#: an author's ``source`` has neither; an ``archive`` (a registry zip) may carry ``wheels/``
#: (only ``*.whl`` files of pinned distributions) but not ``deps/``; an ``installed`` copy
#: may have both. A ``generated`` folder is one ``deeting mcp add`` wrote: only it (and its
#: installed copy) may carry kimai.json's ``mcp`` object and the server's installation in
#: ``server/``, whose venv links to the machine's Python and is never walked for links.
Layout = Literal["source", "archive", "installed", "generated"]
_REQUIREMENTS_LINE = re.compile(r"requirements\.txt(:\d+)?: (.*)", re.DOTALL)


def load_plugin(path: Path, *, layout: Layout = "installed") -> PluginSpec:
    """The checked spec, or :class:`ManifestError` carrying every problem found."""
    spec, problems = check_plugin(path, layout=layout)
    if spec is None:
        raise ManifestError(problems)
    return spec


#: The schema's pattern for a renderer name: other strings get the schema's own message.
_RENDERER_NAME = re.compile(r"[a-z0-9][a-z0-9-]*").fullmatch


def check_plugin(
    path: Path, *, layout: Layout = "installed"
) -> tuple[PluginSpec | None, list[Problem]]:
    """Check a plugin folder; the spec is None exactly when the problem list is not empty.
    ``layout`` says where it comes from (see :data:`Layout`)."""
    root = Path(path)
    hint = "a plugin is a folder holding kimai.json, package.json, llm-tool.yaml, src/"
    if not root.is_dir():
        why = "is not a directory" if root.exists() else "does not exist"
        return None, [Problem("", "", f"{root} {why}: {hint}")]
    if not any(_exists(root / name) for name in (KIMAI, PACKAGE)):
        # Someone typed the wrong folder (their home, /): say so, without walking all of it.
        return None, [Problem("", "", f"{root} is not a plugin folder (no {KIMAI}): {hint}")]
    return _Checker(root, layout).run()


def _declares_mcp(root: Path) -> bool:
    """Whether kimai.json has an ``mcp`` object (read before the walk; the real check of the
    file comes later, this only decides whether ``server/`` is walked)."""
    try:
        kimai = json.loads((root / KIMAI).read_bytes()[:MAX_MANIFEST_BYTES])
    except (OSError, ValueError):
        return False
    return isinstance(kimai, dict) and isinstance(kimai.get(MCP_KEY), dict)


def _exists(path: Path) -> bool:
    try:
        return path.exists() or path.is_symlink()
    except OSError:  # unreadable: let the checker say so
        return True


class _Checker:
    """One pass over one folder, accumulating problems instead of raising."""

    def __init__(self, root: Path, layout: Layout = "installed") -> None:
        self.root = root
        self.layout = layout
        self.problems: list[Problem] = []
        self.escaped: set[str] = set()
        #: An MCP plugin of ours: its ``server/`` is the package manager's, not an author's.
        self.mcp = layout in ("generated", "installed") and _declares_mcp(root)

    def add(self, file: str, where: str, message: str) -> None:
        self.problems.append(Problem(file, where, message))

    def run(self) -> tuple[PluginSpec | None, list[Problem]]:
        self.check_symlinks()
        kimai = self.check_kimai()
        package = self.check_package(kimai)
        tools = self.check_tools()
        trigger = self.check_trigger(kimai, tools)
        self.check_entry()
        self.check_dependencies()
        if self.problems or kimai is None:
            return None, self.problems
        spec = build_spec(self.root, kimai, package or {}, tools or [], trigger)
        return spec, []

    def check_symlinks(self) -> None:
        """A link out of the folder would let a plugin ship (or read at install) foreign files."""
        real_root = self.root.resolve()
        for dirpath, dirnames, filenames in os.walk(self.root):
            if self.mcp and Path(dirpath) == self.root and SERVER_DIR in dirnames:
                dirnames.remove(SERVER_DIR)
            for name in [*dirnames, *filenames]:
                entry = Path(dirpath, name)
                try:
                    escapes = entry.is_symlink() and not entry.resolve().is_relative_to(real_root)
                except (OSError, RuntimeError) as error:  # unreadable, or a link loop
                    escapes, why = True, getattr(error, "strerror", None) or str(error)
                else:
                    why = "symlink points outside the plugin"
                if escapes:
                    rel = entry.relative_to(self.root).as_posix()
                    self.escaped.add(rel)
                    self.add(rel, "", why)

    def read(self, rel: str, missing: str) -> str | None:
        path = self.root / rel
        if rel in self.escaped:
            return None
        if not path.exists():
            self.add(rel, "", f"missing — {missing}")
            return None
        if not path.is_file():
            self.add(rel, "", "must be a file, not a folder")
            return None
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            self.add(rel, "", f"too large: over {MAX_MANIFEST_BYTES} bytes")
            return None
        try:
            return path.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as error:
            self.add(rel, "", f"cannot be read as UTF-8 text: {error}")
            return None

    def read_json(self, rel: str, missing: str) -> dict[str, Any] | None:
        text = self.read(rel, missing)
        if text is None:
            return None
        duplicates: list[str] = []
        try:
            document = json.loads(
                text,
                object_pairs_hook=lambda pairs: _no_duplicates(pairs, duplicates),
                parse_constant=_refuse_constant,
            )
        except json.JSONDecodeError as error:
            self.add(
                rel, "", f"not valid JSON (line {error.lineno}, column {error.colno}): {error.msg}"
            )
            return None
        except ValueError as error:
            self.add(rel, "", f"not valid JSON: {error}")
            return None
        for key in duplicates:
            self.add(rel, "", f"duplicate key {key!r}: JSON keys must be unique")
        if not isinstance(document, dict):
            self.add(rel, "", f"must be a JSON object, not {type_name(document)}")
            return None
        return document

    def check_kimai(self) -> dict[str, Any] | None:
        kimai = self.read_json(KIMAI, "the plugin's manifest (name, version, permissions…)")
        if kimai is None:
            return None
        for where, message in human_errors(validator("kimai.schema.json").iter_errors(kimai)):
            self.add(KIMAI, where, message)
        self.check_permissions(kimai.get("permissions"))
        self.check_events(kimai.get("events"), kimai.get("permissions"))
        self.check_renderer(kimai.get("renderer"))
        self.check_mcp(kimai.get(MCP_KEY))
        return kimai

    def check_mcp(self, section: object) -> None:
        """Only ``deeting mcp add`` writes an ``mcp`` object: from an author's folder or an
        archive it would make Deeting run a program the user never chose."""
        if section is None:
            return
        if not self.mcp:
            self.add(
                KIMAI,
                MCP_KEY,
                "only `deeting mcp add` writes an mcp object (to run an MCP server as a "
                "plugin: deeting mcp add NAME --pypi PKG | --npm PKG | --command -- PROGRAM)",
            )
            return
        if not isinstance(section, dict):
            return  # the schema said so
        entry, runtime = section.get("entry"), section.get("runtime")
        if not isinstance(entry, str):
            return
        if runtime == "command":
            if not entry.startswith("/"):
                self.add(KIMAI, "mcp.entry", f"{entry!r} must be an absolute path")
            return
        parts = Path(entry).parts
        if entry.startswith("/") or ".." in parts or not parts or parts[0] != SERVER_DIR:
            self.add(KIMAI, "mcp.entry", f"{entry!r} must be a path inside {SERVER_DIR}/")
        elif not (self.root / entry).is_file():
            self.add(KIMAI, "mcp.entry", f"{entry!r} is missing: reinstall with deeting mcp add")

    def check_renderer(self, renderer: object) -> None:
        """The core owns the renderers (docs/plugins.md#results-and-renderers): a name it does not
        know would draw every result as raw JSON, so it is refused here, where the author sees
        it."""
        known = core_renderer_names()
        if isinstance(renderer, str) and renderer not in known and _RENDERER_NAME(renderer):
            names = ", ".join(sorted(known))
            self.add(KIMAI, "renderer", f"{renderer!r} is not a core renderer (known: {names})")

    def check_permissions(self, permissions: object) -> None:
        if not isinstance(permissions, list):
            return
        seen: dict[Scope, int] = {}
        for index, text in enumerate(permissions):
            if not isinstance(text, str):
                continue  # the schema has already said so
            try:
                scope = parse_scope(text)
            except ScopeError as error:
                self.add(KIMAI, f"permissions[{index}]", str(error))
                continue
            if scope in seen:
                message = f"{str(scope)!r} is listed twice (also permissions[{seen[scope]}])"
                self.add(KIMAI, f"permissions[{index}]", message)
            seen.setdefault(scope, index)

    def check_events(self, events: object, permissions: object) -> None:
        """What the user types reaches a subscription only with their consent: a topic that
        carries it needs the ``messages`` scope declared, so the install asks for it."""
        if not isinstance(events, list):
            return
        declared = isinstance(permissions, list) and str(MESSAGES) in [
            p.strip() for p in permissions if isinstance(p, str)
        ]
        for index, event in enumerate(events):
            topic = event.get("topic") if isinstance(event, dict) else None
            if not isinstance(topic, str) or declared or not reads_user_input(topic):
                continue
            self.add(
                KIMAI,
                f"events[{index}].topic",
                f'{topic!r} delivers what the user types: add "{MESSAGES}" to permissions '
                "(the user is asked to allow it), or subscribe to narrower topics "
                "(like system.tick)",
            )

    def check_package(self, kimai: dict[str, Any] | None) -> dict[str, Any] | None:
        package = self.read_json(
            PACKAGE, "npm metadata: name and version, the same as kimai.json's"
        )
        if package is None or kimai is None:
            return package
        for key in ("name", "version"):
            expected, actual = kimai.get(key), package.get(key)
            if not isinstance(expected, str):
                continue  # kimai.json's own problem, reported there
            if actual is None:
                self.add(PACKAGE, key, f"missing (should be {expected!r}, as in kimai.json)")
            elif actual != expected:
                self.add(PACKAGE, key, f"{actual!r} does not match kimai.json's {expected!r}")
        return package

    def check_tools(self) -> list[dict[str, Any]] | None:
        """The tools, or None when llm-tool.yaml has problems (so later checks do not pile on)."""
        text = self.read(TOOLS, "the plugin's tools for the model (OpenAI function-calling spec)")
        if text is None:
            return None
        parsed = parse_tools(text)
        for where, message in parsed.problems:
            self.add(TOOLS, where, message)
        return None if parsed.problems else parsed.tools

    def check_trigger(
        self, kimai: dict[str, Any] | None, tools: list[dict[str, Any]] | None
    ) -> TriggerSpec | None:
        trigger = kimai.get("trigger") if kimai else None
        if not isinstance(trigger, dict) or not isinstance(trigger.get("regex"), str):
            return None
        try:
            pattern: TriggerPattern | None = compile_trigger(trigger["regex"])
        except TriggerRegexError as error:
            self.add(KIMAI, "trigger.regex", str(error))
            pattern = None
        if tools is None:
            return None  # llm-tool.yaml's problems are reported; naming its tools would guess
        tool = self.trigger_tool(trigger, tools)
        if tool is None:
            return None
        examples = self.trigger_examples(trigger.get("examples"))
        if pattern is not None:
            self.check_groups(pattern, tool)
            self.check_examples(pattern, examples)
        priority = trigger.get("priority", TRIGGER_PRIORITY)
        if not isinstance(priority, int | float) or isinstance(priority, bool):
            priority = TRIGGER_PRIORITY  # the schema has said so; no spec is built from this
        return TriggerSpec(trigger["regex"], tool["name"], int(priority), examples)

    @staticmethod
    def trigger_examples(examples: object) -> tuple[str, ...]:
        """The examples' strings (the schema reports anything else, so no spec is built)."""
        if not isinstance(examples, list):
            return ()
        return tuple(e for e in examples if isinstance(e, str))

    def check_examples(self, pattern: TriggerPattern, examples: tuple[str, ...]) -> None:
        """An example the trigger does not route would teach the user a message that goes to
        the assistant instead."""
        for index, example in enumerate(examples):
            if example and pattern.search(example) is None:
                where = f"trigger.examples[{index}]"
                self.add(KIMAI, where, f"{example!r} does not match the trigger's regex")

    def trigger_tool(
        self, trigger: dict[str, Any], tools: list[dict[str, Any]]
    ) -> dict[str, Any] | None:
        name = trigger.get("tool")
        if name is None:
            if not tools:
                self.add(KIMAI, "trigger", "there is no tool in llm-tool.yaml to route messages to")
            return tools[0] if tools else None
        tool = next((tool for tool in tools if tool["name"] == name), None)
        if tool is None and isinstance(name, str):
            names = ", ".join(tool["name"] for tool in tools) or "none"
            self.add(
                KIMAI, "trigger.tool", f"{name!r} is not a tool in llm-tool.yaml (tools: {names})"
            )
        return tool

    def check_groups(self, pattern: TriggerPattern, tool: dict[str, Any]) -> None:
        """Named groups become arguments by name, so each must be one the tool accepts."""
        properties = tool["parameters"].get("properties")
        if not isinstance(properties, dict) or not properties:
            return
        for group in pattern.groupindex:
            if group not in properties:
                known = ", ".join(properties)
                where = f"tool {tool['name']!r} (its parameters: {known})"
                message = f"group {group!r} is not a parameter of {where}"
                self.add(KIMAI, "trigger.regex", message)

    def check_entry(self) -> None:
        if ENTRY in self.escaped or self.mcp:
            return
        if not (self.root / ENTRY).is_file():
            self.add(ENTRY, "", "missing — the plugin's entry point")

    def check_dependencies(self) -> None:
        """requirements.txt is a complete lock of exact pins; ``wheels/`` and ``deps/`` are
        what the layout allows (see :data:`Layout`)."""
        pins: dict[tuple[str, Version], str] | None = None
        if REQUIREMENTS_FILE not in self.escaped:
            try:
                found = read_requirements(self.root)
            except RequirementsError as error:
                match = _REQUIREMENTS_LINE.fullmatch(error.message)
                where, message = (match[1] or "", match[2]) if match else ("", error.message)
                self.add(f"{REQUIREMENTS_FILE}{where}", "", message)
            else:
                pins = {(pin.name, Version(pin.version)): pin.requirement for pin in found}
        reserved = "is reserved for the plugin's dependencies"
        if self.layout == "source":
            for name in (WHEELS_DIR, DEPS_DIR):
                if _exists(self.root / name):
                    self.add(
                        f"{name}/",
                        "",
                        f"{reserved} (a registry build or an install makes it) — remove it, "
                        f"and list the dependencies in {REQUIREMENTS_FILE}",
                    )
            return
        if self.layout == "archive" and _exists(self.root / DEPS_DIR):
            self.add(
                f"{DEPS_DIR}/",
                "",
                f"{reserved}, made at install — an archive carries only {WHEELS_DIR}/",
            )
        self.check_wheels(pins)

    def check_wheels(self, pins: dict[tuple[str, Version], str] | None) -> None:
        folder = self.root / WHEELS_DIR
        if not _exists(folder):
            return
        if folder.is_symlink() or not folder.is_dir():
            self.add(f"{WHEELS_DIR}/", "", "must be a folder of *.whl files")
            return
        for entry in sorted(folder.iterdir()):
            rel = f"{WHEELS_DIR}/{entry.name}"
            if entry.is_symlink() or not entry.is_file() or not entry.name.endswith(".whl"):
                self.add(rel, "", f"{WHEELS_DIR}/ holds only wheel files (*.whl)")
                continue
            try:
                if not WHEEL_FILE_NAME.fullmatch(entry.name):
                    raise InvalidWheelFilename(entry.name)
                name, version, _build, _tags = parse_wheel_filename(entry.name)
            except InvalidWheelFilename:
                self.add(rel, "", "not a wheel's file name (NAME-VERSION-TAGS.whl)")
                continue
            # An installed copy was checked as what it came from; its wheels/ also holds what
            # a folder install resolved for pins that needed more than requirements.txt says.
            unpinned = pins is None or (canonicalize_name(name), version) not in pins
            if unpinned and self.layout == "archive":
                self.add(rel, "", f"{name} {version} is not pinned in {REQUIREMENTS_FILE}")


def _no_duplicates(pairs: list[tuple[str, Any]], duplicates: list[str]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            duplicates.append(key)
        document[key] = value
    return document


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")
