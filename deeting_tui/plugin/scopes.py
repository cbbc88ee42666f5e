"""The permission scope grammar, shared by the manifest checker and the kernel's grant store.

A scope is what a plugin asks for and what a user grants. Keeping parsing, canonical text and
the ``covers`` relation in one small module means a scope written in kimai.json, typed after
``--grant`` and stored in the grant database are all compared the same way.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from deeting_tui.errors import DeetingError

__all__ = [
    "MESSAGES",
    "SCOPE_KINDS",
    "USER_INPUT_TOPICS",
    "Scope",
    "ScopeError",
    "covers",
    "expand_path",
    "explain",
    "network_hosts",
    "parse_scope",
    "parsed_scopes",
    "reads_user_input",
]

#: ``messages`` opens no OS door (the sandbox ignores it): it is the kernel's own consent for
#: delivering what the user types to a plugin's ``events`` subscription.
SCOPE_KINDS = ("network", "filesystem", "shell", "gpu", "messages")
#: The topics that carry the user's own input; a subscription to any of them needs MESSAGES.
USER_INPUT_TOPICS = ("user.message", "user.image")
FILESYSTEM_MODES = ("read", "write")

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_PORT = re.compile(r"^[0-9]{1,5}$")


class ScopeError(DeetingError, ValueError):
    """A scope's text does not follow the grammar; the message says what to write instead."""


@dataclass(frozen=True)
class Scope:
    """One permission. ``mode`` is only used by filesystem scopes, ``target`` is a host or path."""

    kind: str
    mode: str | None = None
    target: str | None = None

    def __str__(self) -> str:
        return ":".join(part for part in (self.kind, self.mode, self.target) if part is not None)


def reads_user_input(topic_pattern: str) -> bool:
    """Whether an ``events`` subscription (``user.message``, ``user.*``, ``*``…) would be
    delivered what the user types or sends; the same matching as the kernel's bus."""
    return any(
        topic_pattern == topic or ("*" in topic_pattern and fnmatchcase(topic, topic_pattern))
        for topic in USER_INPUT_TOPICS
    )


def parse_scope(text: str) -> Scope:
    """Parse scope text into its canonical form, so equal permissions compare equal."""
    if not isinstance(text, str):
        raise ScopeError(f"a scope must be a string, not {type(text).__name__}")
    text = text.strip()
    kind, sep, rest = text.partition(":")
    if kind not in SCOPE_KINDS:
        hint = (
            f"; scope kinds are lowercase: {kind.lower()!r}" if kind.lower() in SCOPE_KINDS else ""
        )
        raise ScopeError(f"{kind!r} is not a scope ({', '.join(SCOPE_KINDS)}){hint}")
    if not sep:
        return Scope(kind)
    if kind == "network":
        return Scope("network", target=_parse_host(rest))
    if kind == "filesystem":
        return _parse_filesystem(rest)
    raise ScopeError(f"{kind!r} takes nothing after it: write just {kind!r}, not {text!r}")


def _parse_host(text: str) -> str:
    """Accept ``[*.]name[:port]``, an IPv4 address or ``[v6]``; lower-case it, as DNS does."""
    if not text:
        raise ScopeError("'network:' needs a host after 'network:' (or write just 'network')")
    host, port = _split_port(text.lower())
    if host == "*":
        raise ScopeError("'network:*' is not a host: write just 'network' for any host")
    if host.startswith("[") and host.endswith("]"):
        _check_ipv6(host[1:-1], text)
    elif not _is_ipv4(host):
        _check_dns_name(host.removeprefix("*."), text)
    return host if port is None else f"{host}:{port}"


def _split_port(text: str) -> tuple[str, str | None]:
    if text.startswith("["):
        host, _, after = text.partition("]")
        host += "]"
        if not after:
            return host, None
        if not after.startswith(":"):
            raise ScopeError(f"bad host {text!r}: expected ':PORT' after ']'")
        return host, _check_port(after[1:], text)
    if text.count(":") > 1:
        raise ScopeError(f"bad host {text!r}: write IPv6 addresses in brackets, like [::1]")
    host, sep, port = text.partition(":")
    return host, _check_port(port, text) if sep else None


def _check_port(port: str, text: str) -> str:
    if not _PORT.match(port) or not 1 <= int(port) <= 65535:
        raise ScopeError(f"bad port in {text!r}: a port is a number from 1 to 65535")
    return str(int(port))


def _is_ipv4(host: str) -> bool:
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return True


def _check_ipv6(host: str, text: str) -> None:
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        raise ScopeError(f"bad host {text!r}: {host!r} is not an IPv6 address") from None


def _check_dns_name(host: str, text: str) -> None:
    labels = host.split(".")
    if "*" in host:
        raise ScopeError(f"bad host {text!r}: a wildcard may only be a leading '*.'")
    if not host or len(host) > 253 or not all(_LABEL.match(label) for label in labels):
        raise ScopeError(
            f"bad host {text!r}: a host name is dot-separated labels of letters, digits "
            "and '-' (like api.example.com), optionally starting with '*.' and ending with ':PORT'"
        )


def _parse_filesystem(text: str) -> Scope:
    mode, sep, path = text.partition(":")
    if mode not in FILESYSTEM_MODES:
        raise ScopeError(f"filesystem mode must be read or write, not {mode!r}")
    if not sep or not path:
        raise ScopeError(
            f"'filesystem:{mode}:' needs a path after it, like filesystem:{mode}:~/notes"
        )
    return Scope("filesystem", mode=mode, target=_normalise_path(path))


def _normalise_path(path: str) -> str:
    """Canonical path text, so prefix checks cannot be fooled by ``//``, ``.`` or ``..``."""
    if path == "~" or path.startswith("~/"):
        head, rest = "~", path[1:]
    elif path.startswith("/"):
        head, rest = "", path
    else:
        raise ScopeError(f"filesystem path must be absolute or start with ~, not {path!r}")
    if "\0" in path:
        raise ScopeError("filesystem path must not contain a NUL character")
    parts = [part for part in rest.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise ScopeError(f"filesystem path must not contain '..' components: {path!r}")
    joined = "/".join(parts)
    if head == "~":
        return f"~/{joined}" if joined else "~"
    return f"/{joined}"


def covers(granted: Scope, wanted: Scope) -> bool:
    """Whether holding ``granted`` is enough to do what ``wanted`` asks."""
    if granted == wanted:
        return True
    if granted.kind != wanted.kind:
        return False
    if granted.target is None and granted.mode is None:
        return True  # a bare kind ('network', 'filesystem', 'shell', …) covers the whole kind
    if granted.kind == "network":
        return wanted.target is not None and _host_covers(granted.target or "", wanted.target)
    if granted.kind == "filesystem" and wanted.mode is not None:
        if granted.mode == "read" and wanted.mode != "read":
            return False
        return _path_covers(granted.target or "", wanted.target or "")
    return False


def _host_covers(granted: str, wanted: str) -> bool:
    """A host without a port covers every port; ``*.x`` covers any name below x, not x itself."""
    g_host, g_port = _split_port(granted)
    w_host, w_port = _split_port(wanted)
    if g_port is not None and g_port != w_port:
        return False
    if g_host.startswith("*."):
        return w_host.endswith(g_host[1:]) and not w_host.startswith("[")
    return g_host == w_host


def _path_covers(granted: str, wanted: str) -> bool:
    """Prefix by whole components: /data covers /data/x but not /database.

    ``~`` and absolute paths are never compared with each other: which home is meant is only
    known at run time, and saying no is the safe answer.
    """
    g_parts, w_parts = _components(granted), _components(wanted)
    return g_parts[0] == w_parts[0] and w_parts[: len(g_parts)] == g_parts


def _components(path: str) -> list[str]:
    head = "~" if path.startswith("~") else "/"
    return [head, *(part for part in path.removeprefix("~").split("/") if part)]


def expand_path(path: str, home: Path | None = None) -> Path:
    """Turn a scope's path into a real one; ``home`` lets the kernel and tests pin ``~``."""
    if path == "~" or path.startswith("~/"):
        base = home if home is not None else Path.home()
        return base / path[2:] if len(path) > 2 else base
    return Path(path)


def parsed_scopes(scopes: Iterable[str | Scope]) -> list[Scope]:
    """Scopes as Scope objects; text that does not parse is dropped (it can never widen)."""
    out = []
    for scope in scopes:
        try:
            out.append(scope if isinstance(scope, Scope) else parse_scope(scope))
        except ScopeError:
            continue  # the grant store only holds parsed scopes; never widen on junk
    return out


def network_hosts(scopes: Iterable[str | Scope]) -> tuple[str, ...] | None:
    """None: any host (a bare ``network`` grant); else the granted hosts (maybe none)."""
    hosts = []
    for scope in parsed_scopes(scopes):
        if scope.kind != "network":
            continue
        if scope.target is None:
            return None
        hosts.append(scope.target)
    return tuple(dict.fromkeys(hosts))


def explain(scope: Scope) -> tuple[str, str]:
    """What granting ``scope`` lets a plugin do, in plain words — exactly what the sandbox
    then allows, no more and no less — and a risk level (``low``, ``medium``, ``high``)
    for dialogs to colour."""
    if scope.kind == "network":
        if scope.target is None:
            return (
                "network: may connect to any address over IP (the internet, your network, "
                "this machine's ports) and listen for connections; never local UNIX "
                "sockets (ssh-agent, docker, D-Bus)",
                "high",
            )
        host, port = _split_port(scope.target)
        where = f"port {port}" if port is not None else "any port"
        literal = host.startswith("[") or _is_ipv4(host)
        which = where if literal else f"public addresses, {where}"
        return (
            f"network: {scope.target} — TCP connections to this host only ({which}), "
            "through Deeting's proxy; no listening",
            "medium",
        )
    if scope.kind == "filesystem":
        if scope.target is None:
            return "filesystem: may read and change every file you can", "high"
        if scope.mode == "write":
            return f"filesystem: {scope.target} — may read, change and delete files here", "high"
        return f"filesystem: {scope.target} — may read files here", "medium"
    if scope.kind == "shell":
        return (
            "shell: may run programs from the system folders; they stay inside the plugin's "
            "sandbox, with its permissions and limits",
            "high",
        )
    if scope.kind == "gpu":
        return "gpu: may use the graphics card (/dev/dri, /dev/nvidia*)", "low"
    if scope.kind == "messages":
        return (
            "messages: reads every message you type and every image you send "
            "(those no plugin's trigger takes first)",
            "high",
        )
    return str(scope), "high"


MESSAGES = Scope("messages")
