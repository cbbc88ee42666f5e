"""Installed plugins' manifests, read and validated once per content, and kept.

Validating a plugin (plugin/checker.py: JSON, YAML, every JSON schema, the trigger's RE2
compile, a walk of the folder) costs a few milliseconds and imports jsonschema; the kernel
needs every enabled plugin's spec at launch, and the chat's header asks for all of them every
two seconds. With hundreds of plugins installed that was most of a cold start.

So a validated spec is kept twice:

- **In memory**, per code folder, while the stat of its manifest files and entry point is
  unchanged (a stat is not a read: a refresh costs no parsing at all).
- **On disk**, in the cache folder, named by a digest of the manifest files' *content* (and
  this deeting's version, whose checks may differ). A new kernel reads three small files per
  plugin and rebuilds the spec from the kept document, without validating or importing the
  checker. An install or upgrade, which validates in full, rewrites the document.

Any change to a manifest gives another digest, so it is validated again; a kept document that
does not read back (damaged, from another format) is ignored and rewritten. Code put in place
by an install or upgrade is validated in full there, whatever is kept.

With the spec, the cache keeps what decides whether the plugin's worker may wait for its first
use (:func:`starts_at_launch`): read from the source once, never by running it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import orjson

from deeting_tui.plugin.manifest import (
    EventSubscription,
    Limits,
    PluginSpec,
    ToolSpec,
    TriggerSpec,
)
from deeting_tui.plugin.scopes import parse_scope

__all__ = [
    "KEPT_SPECS_LIMIT",
    "SourceFacts",
    "SpecCache",
    "starts_at_launch",
    "validate_plugin",
]

log = logging.getLogger("deeting.loader")

#: Bump when the kept document's shape changes: older documents are then validated again.
FORMAT = 1
#: The files whose content a spec is built from.
MANIFEST_FILES = ("kimai.json", "package.json", "llm-tool.yaml")
ENTRY = "src/index.py"
#: Kept documents beyond this many are pruned, oldest first (each is a few KiB).
KEPT_SPECS_LIMIT = 2000
#: A source bigger than this is not scanned for the facts (and counts as streaming).
MAX_SCANNED_SOURCE = 4 * 1024 * 1024

_STAMPED = ("", *(f"/{name}" for name in MANIFEST_FILES))
_DEFINES_ACTIVATE = re.compile(rb"^(?:async[ \t]+)?def[ \t]+activate[ \t]*\(", re.MULTILINE)
_PUSHES_STREAMS = b"push_stream"

Stamp = tuple[tuple[int, int, int, int] | None, ...]


@dataclass(frozen=True)
class SourceFacts:
    """What a plugin's source says about when it must run, read as text (never imported).

    ``activates``: its entry defines ``activate``; ``streams``: some source mentions
    ``push_stream``. Both are over-approximations: a plugin that only looks like one that
    streams from ``activate`` starts at launch, as every plugin did before."""

    activates: bool
    streams: bool


def validate_plugin(code: Path) -> PluginSpec:
    """The checker's full validation of installed code. Imported when first needed: it brings
    jsonschema, YAML and packaging, which a start from kept specs does without."""
    from deeting_tui.plugin.checker import load_plugin

    return load_plugin(code)


def starts_at_launch(spec: PluginSpec, facts: SourceFacts) -> bool:
    """Whether the plugin's worker starts with the kernel rather than on its first use.

    A plugin subscribed to the clock's tick would be started within a second anyway, and one
    that may push streams from ``activate`` (a live feed) has nothing that would wake it:
    both start at launch, as before. Every other plugin waits for its trigger, a tool call or
    a subscribed event."""
    if any(fnmatchcase("system.tick", event.topic) for event in spec.events):
        return True
    return facts.activates and facts.streams


@dataclass(frozen=True)
class _Entry:
    stamp: Stamp
    spec: PluginSpec
    facts: SourceFacts


class SpecCache:
    """Validated specs by code folder (memory) and content digest (``folder``, on disk).

    ``validate`` is the full check (the checker's, by default), called only when neither copy
    holds the content; it raises ManifestError for a damaged plugin, which is never kept.
    """

    def __init__(
        self,
        folder: Path | None,
        version: str,
        validate: Callable[[Path], PluginSpec] = validate_plugin,
    ) -> None:
        self.folder = folder
        self.version = version
        self.validate = validate
        self._memory: dict[Path, _Entry] = {}
        #: How many validations ran (the tests' and the bench's way to see the cache work).
        self.validations = 0

    def spec(self, code: Path) -> PluginSpec:
        return self._entry(code).spec

    def facts(self, code: Path) -> SourceFacts:
        return self._entry(code).facts

    def validated(self, code: Path, spec: PluginSpec) -> None:
        """Keep a spec just validated in full by an install or upgrade."""
        with contextlib.suppress(OSError):
            # Rewritten even when kept: a reinstall of the same manifests may bring other code.
            self._keep(code, spec, _stamp(code), replace=True)

    # -- lookup ------------------------------------------------------------------------------

    def _entry(self, code: Path) -> _Entry:
        stamp = _stamp(code)
        entry = self._memory.get(code)
        if entry is not None and entry.stamp == stamp:
            return entry
        try:
            digest: str | None = self._digest(code)
        except OSError:
            digest = None
        if digest is not None:
            kept = self._read(digest, code)
            if kept is not None:
                entry = _Entry(stamp, *kept)
                self._memory[code] = entry
                return entry
        self.validations += 1
        spec = self.validate(code)  # ManifestError: damaged, and nothing is kept
        return self._keep(code, spec, stamp, digest)

    def _keep(
        self,
        code: Path,
        spec: PluginSpec,
        stamp: Stamp,
        digest: str | None = None,
        *,
        replace: bool = False,
    ) -> _Entry:
        entry = _Entry(stamp, spec, _scan(code))
        self._memory[code] = entry
        self._write(digest or self._digest(code), spec, entry.facts, replace=replace)
        return entry

    def _digest(self, code: Path) -> str:
        """The content the spec depends on: the manifest files' bytes (and this deeting)."""
        h = hashlib.sha256(f"deeting-spec {FORMAT} {self.version}\n".encode())
        for name in MANIFEST_FILES:
            try:
                data = (code / name).read_bytes()
            except FileNotFoundError:
                data = b"\0missing"
            h.update(f"{name} {len(data)}\n".encode())
            h.update(data)
        return h.hexdigest()

    # -- the kept documents ------------------------------------------------------------------

    def _read(self, digest: str, code: Path) -> tuple[PluginSpec, SourceFacts] | None:
        if self.folder is None:
            return None
        try:
            document = orjson.loads((self.folder / f"{digest}.json").read_bytes())
            return _from_document(document, code)
        except FileNotFoundError:
            return None
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            log.info("kept spec %s unreadable (%s): validating again", digest[:12], exc)
            return None

    def _write(
        self, digest: str, spec: PluginSpec, facts: SourceFacts, *, replace: bool = False
    ) -> None:
        if self.folder is None:
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            path = self.folder / f"{digest}.json"
            if replace or not path.exists():
                # Renamed into place, not fsynced: a copy lost to a crash is validated again.
                tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
                tmp.write_bytes(orjson.dumps(_to_document(spec, facts)))
                os.replace(tmp, path)
                self._prune()
        except OSError as exc:  # a read-only cache costs speed, never a start
            log.info("could not keep the spec of %s: %s", spec.name, exc)

    def _prune(self) -> None:
        assert self.folder is not None
        kept = list(self.folder.glob("*.json"))
        if len(kept) <= KEPT_SPECS_LIMIT:
            return
        by_age = sorted(kept, key=lambda p: p.stat().st_mtime_ns)
        for path in by_age[: len(kept) - KEPT_SPECS_LIMIT]:
            with contextlib.suppress(OSError):
                path.unlink()


def _stamp(code: Path) -> Stamp:
    """The stat of the folder and the files a spec comes from (a reinstall replaces the
    folder: a new inode). Plain ``os.stat`` on strings: the header asks for every plugin's
    spec every two seconds, and pathlib's joins cost more than the stats."""
    base = os.fspath(code)
    stamp: list[tuple[int, int, int, int] | None] = []
    for name in _STAMPED:
        try:
            st = os.stat(base + name)
        except OSError:
            stamp.append(None)
        else:
            stamp.append((st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
    return tuple(stamp)


def _sources(code: Path) -> list[Path]:
    src = code / "src"
    if not src.is_dir():
        return []
    return sorted(path for path in src.rglob("*.py") if path.is_file() and not path.is_symlink())


def _scan(code: Path) -> SourceFacts:
    activates = streams = False
    for path in _sources(code):
        try:
            if path.stat().st_size > MAX_SCANNED_SOURCE:
                streams = True
                continue
            text = path.read_bytes()
        except OSError:
            continue
        streams = streams or _PUSHES_STREAMS in text
        if path == code / ENTRY:
            activates = _DEFINES_ACTIVATE.search(text) is not None
    return SourceFacts(activates, streams)


def _to_document(spec: PluginSpec, facts: SourceFacts) -> dict[str, Any]:
    trigger = spec.trigger
    return {
        "format": FORMAT,
        "name": spec.name,
        "version": spec.version,
        "description": spec.description,
        "author": spec.author,
        "license": spec.license,
        "permissions": [str(scope) for scope in spec.permissions],
        "trigger": None
        if trigger is None
        else {
            "regex": trigger.regex,
            "tool": trigger.tool,
            "priority": trigger.priority,
            "examples": list(trigger.examples),
        },
        "renderer": spec.renderer,
        "events": [[event.topic, event.priority] for event in spec.events],
        "tools": [
            {"name": t.name, "description": t.description, "parameters": t.parameters}
            for t in spec.tools
        ],
        "limits": asdict(spec.limits),
        "manifest": spec.manifest,
        "facts": {"activates": facts.activates, "streams": facts.streams},
    }


def _from_document(document: Any, code: Path) -> tuple[PluginSpec, SourceFacts]:
    """The spec a document kept; KeyError/TypeError/ValueError when it is not one."""
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ValueError("not a kept spec of this format")
    trigger = document["trigger"]
    spec = PluginSpec(
        root=code,
        name=_str(document["name"]),
        version=_str(document["version"]),
        description=_str(document["description"]),
        author=_str(document["author"]),
        license=_str(document["license"]),
        permissions=tuple(parse_scope(_str(text)) for text in document["permissions"]),
        trigger=None
        if trigger is None
        else TriggerSpec(
            _str(trigger["regex"]),
            _str(trigger["tool"]),
            int(trigger["priority"]),
            tuple(_str(example) for example in trigger["examples"]),
        ),
        renderer=None if document["renderer"] is None else _str(document["renderer"]),
        events=tuple(EventSubscription(_str(topic), int(p)) for topic, p in document["events"]),
        tools=tuple(
            ToolSpec(_str(t["name"]), _str(t["description"]), _dict(t["parameters"]))
            for t in document["tools"]
        ),
        limits=Limits(**document["limits"]),
        manifest=_dict(document["manifest"]),
    )
    facts = document["facts"]
    return spec, SourceFacts(bool(facts["activates"]), bool(facts["streams"]))


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, not {type(value).__name__}")
    return value


def _dict(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"expected an object, not {type(value).__name__}")
    return value
