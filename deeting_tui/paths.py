"""Where Deeting keeps things: one function decides, so tests and users can move it all.

``DEETING_HOME`` puts config, data and cache under one folder (tests use a fresh one each);
otherwise platformdirs picks the platform's conventional places.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deeting_tui.errors import DeetingError

APP_NAME = "deeting"
#: Who may answer free text; config.toml, --provider and llm.select check this one list.
PROVIDERS = ("offline", "anthropic", "openai")


@dataclass(frozen=True)
class Paths:
    config_dir: Path
    data_dir: Path
    cache_dir: Path

    @property
    def config_file(self) -> Path:
        return self.config_dir / "config.toml"

    @property
    def plugins_dir(self) -> Path:
        """Installed plugin code: ``plugins/versions/NAME/VERSION``."""
        return self.data_dir / "plugins"

    @property
    def plugin_state_file(self) -> Path:
        return self.plugins_dir / "state.json"

    @property
    def grants_file(self) -> Path:
        return self.data_dir / "grants.json"

    @property
    def mcp_env_file(self) -> Path:
        """The values users gave MCP servers (``mcp add --env``): private, like grants."""
        return self.data_dir / "mcp-env.json"

    @property
    def sessions_db(self) -> Path:
        return self.data_dir / "sessions.sqlite3"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    def plugin_code(self, name: str, version: str) -> Path:
        return self.plugins_dir / "versions" / name / version

    def plugin_data(self, name: str) -> Path:
        return self.data_dir / "plugin-data" / name

    def plugin_cache(self, name: str) -> Path:
        return self.cache_dir / "plugins" / name

    def plugin_tmp(self, name: str) -> Path:
        return self.cache_dir / "tmp" / name

    def plugin_folders(self, name: str) -> tuple[Path, Path, Path]:
        """The folders a plugin writes in, which its disk quota covers: data, cache, temp."""
        return (self.plugin_data(name), self.plugin_cache(name), self.plugin_tmp(name))

    def plugin_log(self, name: str) -> Path:
        return self.logs_dir / f"{name}.log"


def resolve_paths(env: Mapping[str, str] | None = None) -> Paths:
    env = os.environ if env is None else env
    home = env.get("DEETING_HOME")
    if home:
        root = Path(home).expanduser().resolve()
        return Paths(config_dir=root, data_dir=root / "data", cache_dir=root / "cache")
    import platformdirs  # only needed without DEETING_HOME

    dirs = platformdirs.PlatformDirs(APP_NAME, appauthor=False)
    return Paths(
        config_dir=Path(dirs.user_config_dir),
        data_dir=Path(dirs.user_data_dir),
        cache_dir=Path(dirs.user_cache_dir),
    )


class ConfigError(DeetingError):
    """config.toml is unreadable or holds a value of the wrong kind."""


@dataclass(frozen=True)
class Config:
    tick_interval: float = 1.0
    provider: str | None = None
    model: str | None = None
    #: Seconds an on-demand plugin's worker may sit unused before it is stopped (0: never).
    idle_stop: float = 300.0


def load_config(paths: Paths) -> Config:
    """Read config.toml if present; a bad file is an error naming the key, never ignored."""
    path = paths.config_file
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return Config()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        data: dict[str, Any] = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    known = {"tick_interval", "provider", "model", "idle_stop"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{path}: unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})")
    tick = data.get("tick_interval", 1.0)
    if isinstance(tick, bool) or not isinstance(tick, int | float) or not 0.05 <= tick <= 3600:
        raise ConfigError(f"{path}: tick_interval must be a number of seconds in 0.05..3600")
    for key in ("provider", "model"):
        if key in data and not isinstance(data[key], str):
            raise ConfigError(f"{path}: {key} must be a string")
    if "provider" in data and data["provider"] not in PROVIDERS:
        raise ConfigError(
            f"{path}: provider {data['provider']!r} is not one of {', '.join(PROVIDERS)}"
        )
    idle = data.get("idle_stop", Config.idle_stop)
    if isinstance(idle, bool) or not isinstance(idle, int | float) or not 0 <= idle <= 86400:
        raise ConfigError(
            f"{path}: idle_stop must be a number of seconds in 0..86400 (0: never stop)"
        )
    return Config(float(tick), data.get("provider"), data.get("model"), float(idle))
