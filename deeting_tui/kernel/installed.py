"""The persisted record of installed plugins: version, source, enabled — restored at start."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from .atomic import write_json_atomic


class StateFileError(Exception):
    """state.json is unreadable; the message names it and what to do."""


@dataclass
class InstalledPlugin:
    name: str
    version: str
    source: str  # where it was installed from (folder, zip, registry)
    dev: bool  # a folder install: local code, not from a signed registry
    enabled: bool = False
    installed_at: float = 0.0
    disabled_reason: str | None = None  # why the kernel disabled it (crash loop, grants)


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
            return {name: InstalledPlugin(**entry) for name, entry in entries.items()}
        except (TypeError, KeyError) as exc:
            raise StateFileError(f"{self.path}: malformed ({exc})") from None

    def _save(self) -> None:
        write_json_atomic(
            self.path, {"plugins": {n: asdict(p) for n, p in sorted(self._plugins.items())}}
        )

    def all(self) -> list[InstalledPlugin]:
        return [self._plugins[name] for name in sorted(self._plugins)]

    def get(self, name: str) -> InstalledPlugin | None:
        return self._plugins.get(name)

    def put(self, plugin: InstalledPlugin) -> None:
        if not plugin.installed_at:
            plugin.installed_at = time.time()
        self._plugins[plugin.name] = plugin
        self._save()

    def set_enabled(self, name: str, enabled: bool, reason: str | None = None) -> None:
        plugin = self._plugins[name]
        plugin.enabled = enabled
        plugin.disabled_reason = None if enabled else reason
        self._save()

    def remove(self, name: str) -> None:
        if self._plugins.pop(name, None) is not None:
            self._save()
