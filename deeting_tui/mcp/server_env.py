"""The environment values a user gave one MCP server (``mcp add --env``, an imported file's
``env``): API keys and the like, so stored like grants — in the user's data folder, private
to the user (0600), never in the plugin's folder (which the plugin can read) — and handed
only to that server's worker, which passes them to the server alone."""

from __future__ import annotations

import re
from pathlib import Path

import orjson

from deeting_tui.atomic import write_bytes_atomic
from deeting_tui.errors import DeetingError

__all__ = ["ENV_NAME", "ServerEnvError", "ServerEnvStore", "parse_env_assignment"]

#: A variable name a server may be given (what POSIX shells accept).
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
#: Variables the worker sets for every server itself: a user value would break the sandbox's
#: plumbing (the proxy, the interpreter's isolation) rather than configure the server.
RESERVED = frozenset(
    {
        "PATH",
        "HOME",
        "TMPDIR",
        "HTTPS_PROXY",
        "HTTP_PROXY",
        "https_proxy",
        "http_proxy",
        "NO_PROXY",
        "no_proxy",
        "NODE_OPTIONS",
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "PYTHONPATH",
        "PYTHONHOME",
    }
)
MAX_VALUE_BYTES = 32 * 1024


class ServerEnvError(DeetingError):
    """A bad ``KEY=VALUE``, or an unreadable env file."""


def parse_env_assignment(text: str) -> tuple[str, str]:
    """``KEY=VALUE`` as (key, value), or one line saying what is wrong with it."""
    key, sep, value = text.partition("=")
    if not sep:
        raise ServerEnvError(f"--env {text[:40]!r}: expected KEY=VALUE")
    check_env(key, value)
    return key, value


def check_env(key: str, value: str) -> None:
    if not ENV_NAME.fullmatch(key):
        raise ServerEnvError(
            f"env {key[:40]!r}: not a variable name (letters, digits and '_', not starting "
            "with a digit)"
        )
    if key in RESERVED:
        raise ServerEnvError(f"env {key}: set by Deeting for every server; it cannot be given")
    if "\0" in value or len(value.encode("utf-8", "surrogatepass")) > MAX_VALUE_BYTES:
        raise ServerEnvError(f"env {key}: the value has a NUL byte or is over 32 KiB")


class ServerEnvStore:
    """``mcp-env.json``: ``{"plugin": {"KEY": "value"}}``, written atomically, mode 0600."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _load(self) -> dict[str, dict[str, str]]:
        try:
            raw = orjson.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {}
        except (OSError, orjson.JSONDecodeError) as exc:
            raise ServerEnvError(
                f"{self.path}: unreadable ({exc}); fix or remove it (the MCP servers that "
                "need its values will then say which ones are missing)"
            ) from None
        if not isinstance(raw, dict) or not all(
            isinstance(v, dict) and all(isinstance(x, str) for x in v.values())
            for v in raw.values()
        ):
            raise ServerEnvError(f"{self.path}: expected an object of plugin → {{KEY: value}}")
        return raw

    def values(self, plugin: str) -> dict[str, str]:
        return dict(self._load().get(plugin, {}))

    def put(self, plugin: str, values: dict[str, str]) -> None:
        """Replace ``plugin``'s values (none: forget the plugin)."""
        for key, value in values.items():
            check_env(key, value)
        stored = self._load()
        if values:
            stored[plugin] = dict(values)
        elif plugin not in stored:
            return
        else:
            del stored[plugin]
        write_bytes_atomic(self.path, orjson.dumps(stored, option=orjson.OPT_INDENT_2), mode=0o600)
