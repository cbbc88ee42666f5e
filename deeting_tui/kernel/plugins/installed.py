"""The persisted record of installed plugins: version, source, enabled — restored at start.

state.json is also the *active pointer*: the version recorded for a plugin is the one that
runs. The CLI updater and a running chat are two processes sharing it, so every change is a
read-modify-write under a short file lock (neither loses the other's update), written
atomically, and a running kernel can :meth:`InstalledStore.reload` to see a pointer another
process swapped.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, fields, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson

from deeting_tui.errors import DeetingError

from ...atomic import write_json_atomic

try:
    import fcntl
except ImportError:  # pragma: no cover - not Linux or macOS: no cross-process lock
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("deeting.installed")

#: What a cheap ``stat`` says about state.json; a change means someone wrote it.
FileSignature = tuple[int, int, int, int]


class StateFileError(DeetingError):
    """state.json is unreadable; the message names it and what to do."""


class Cause(StrEnum):
    """Why the kernel (not the user) left a plugin disabled, stored beside the reason's words
    so a front end reads the cause instead of parsing the sentence."""

    NOT_GRANTED = "not granted"  # a declared scope has no grant
    REVOKED = "revoked"  # a scope it held was taken back
    CRASHED = "crashed"  # a crash loop: the supervisor gave up on it
    QUOTA = "quota"  # over its disk quota


@dataclass
class InstalledPlugin:
    name: str
    version: str
    source: str  # where it was installed from (folder, zip, registry)
    dev: bool  # a folder install: local code, not from a signed registry
    enabled: bool = False
    installed_at: float = 0.0
    disabled_reason: str | None = None  # why the kernel disabled it (crash loop, grants)
    previous: str | None = None  # the version kept on disk for rollback
    #: Where ``previous`` came from, when not from ``source`` (a bundled plugin upgraded from
    #: a registry keeps its bundled copy): a rollback makes it the source again.
    previous_source: str | None = None
    #: What ``disabled_reason`` is about (a :class:`Cause` value); None: the user disabled it.
    disabled_cause: str | None = None

    @property
    def cause(self) -> Cause | None:
        """The stored cause; an unknown word (a newer deeting wrote it) reads as none."""
        try:
            return Cause(self.disabled_cause) if self.disabled_cause else None
        except ValueError:
            return None


def _record(entry: dict[str, Any]) -> InstalledPlugin:
    """One stored entry; keys a newer deeting added are left out rather than refused."""
    known = {f.name for f in fields(InstalledPlugin)}
    return InstalledPlugin(**{key: value for key, value in entry.items() if key in known})


def file_signature(path: Path) -> FileSignature | None:
    """(mtime, size, inode, ctime) of ``path``, or None when it does not exist.

    Atomic writes replace the file, so the inode changes too: two writes of the same size
    within one clock tick still look different.
    """
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino, st.st_ctime_ns)


class InstalledStore:
    """state.json under the plugins folder; every change is written atomically at once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._plugins: dict[str, InstalledPlugin] = self._load()

    def _load(self) -> dict[str, InstalledPlugin]:
        try:
            raw = orjson.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {}
        except (OSError, orjson.JSONDecodeError) as exc:
            raise StateFileError(
                f"{self.path}: unreadable ({exc}); restore it from a backup or remove it "
                "and reinstall your plugins"
            ) from None
        try:
            entries: dict[str, Any] = raw["plugins"]
            return {name: _record(entry) for name, entry in entries.items()}
        except (TypeError, KeyError) as exc:
            raise StateFileError(f"{self.path}: malformed ({exc})") from None

    def _save(self) -> None:
        write_json_atomic(
            self.path, {"plugins": {n: asdict(p) for n, p in sorted(self._plugins.items())}}
        )

    def reload(self) -> None:
        """Re-read state.json (another process may have swapped a pointer).

        A damaged file raises StateFileError and the copy in memory is kept, so a running
        kernel goes on with what it knew.
        """
        self._plugins = self._load()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold state.json's lock file; a no-op where there is no ``fcntl``."""
        if fcntl is None:  # pragma: no cover
            yield
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _change(self, change: Callable[[dict[str, InstalledPlugin]], bool]) -> None:
        """Apply ``change`` to the latest state on disk and write it, under the lock.

        A damaged file is not re-read but overwritten with what this process knows (and
        logged): it is ours, and the write repairs it. ``change`` returns False when it
        found nothing to do, and nothing is written.
        """
        with self._locked():
            try:
                self.reload()
            except StateFileError as exc:
                log.warning("%s — rewriting it from memory", exc)
            if change(self._plugins):
                self._save()

    # -- queries -----------------------------------------------------------------------------

    def all(self) -> list[InstalledPlugin]:
        return [self._plugins[name] for name in sorted(self._plugins)]

    def get(self, name: str) -> InstalledPlugin | None:
        return self._plugins.get(name)

    def signature(self) -> FileSignature | None:
        return file_signature(self.path)

    # -- changes -----------------------------------------------------------------------------

    def put(self, plugin: InstalledPlugin) -> None:
        if not plugin.installed_at:
            plugin.installed_at = time.time()

        def change(plugins: dict[str, InstalledPlugin]) -> bool:
            plugins[plugin.name] = plugin
            return True

        self._change(change)

    def set_enabled(
        self, name: str, enabled: bool, reason: str | None = None, cause: Cause | None = None
    ) -> None:
        """Record enabled/disabled (with why, and its ``cause`` when the kernel did it); a
        no-op for a plugin another process has removed."""

        def change(plugins: dict[str, InstalledPlugin]) -> bool:
            plugin = plugins.get(name)
            if plugin is None:
                return False
            plugin.enabled = enabled
            plugin.disabled_reason = None if enabled else reason
            plugin.disabled_cause = None if enabled or cause is None else str(cause)
            return True

        self._change(change)

    def set_version(self, name: str, version: str, previous: str | None) -> InstalledPlugin:
        """Swap the active pointer: one atomic write of ``version`` and ``previous``.

        Raises KeyError when ``name`` is not installed (any more).
        """
        swapped: list[InstalledPlugin] = []

        def change(plugins: dict[str, InstalledPlugin]) -> bool:
            plugin = plugins[name]
            plugins[name] = replace(plugin, version=version, previous=previous)
            swapped.append(plugins[name])
            return True

        self._change(change)
        return swapped[0]

    def set_source(self, name: str, source: str, *, previous_source: str) -> None:
        """Record where the running version came from after an upgrade (from the registry,
        of a plugin that came bundled with deeting), and where the kept one did; a no-op for
        one another process removed."""

        def change(plugins: dict[str, InstalledPlugin]) -> bool:
            plugin = plugins.get(name)
            if plugin is None:
                return False
            kept = previous_source if previous_source != source else None
            plugins[name] = replace(plugin, source=source, previous_source=kept)
            return plugins[name] != plugin

        self._change(change)

    def swap_sources(self, name: str) -> None:
        """After a rollback: the version now running came from where the kept one did."""

        def change(plugins: dict[str, InstalledPlugin]) -> bool:
            plugin = plugins.get(name)
            if plugin is None or plugin.previous_source is None:
                return False
            plugins[name] = replace(
                plugin, source=plugin.previous_source, previous_source=plugin.source
            )
            return True

        self._change(change)

    def remove(self, name: str) -> None:
        self._change(lambda plugins: plugins.pop(name, None) is not None)
