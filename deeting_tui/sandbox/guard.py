"""The audit-hook guard: friendly errors and a denial log, in front of the real sandbox.

Python audit hooks are easy to get around (``_posixsubprocess``, ctypes, cffi, ``dir_fd``,
re-exec), so this is not the boundary — Landlock and seccomp are. What it adds is the message:
instead of a bare ``[Errno 1] Operation not permitted`` from the kernel, plugin code (and its
author) gets ``PermissionError: plugin 'x' has no 'network' permission: …`` naming the scope
that would allow it and the command that grants it, and every denial is logged to the
plugin's log. Checks are lexical and cheap: one dict lookup for events it does not watch.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Callable
from typing import Any

from .policy import NETWORK_ANY, NETWORK_NONE, SandboxPlan

log = logging.getLogger("deeting.sandbox")

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_INET = (socket.AF_INET, socket.AF_INET6)
_AF_NETLINK = 16


class SandboxDenied(PermissionError):
    """Raised into plugin code for an action its grants do not allow."""


class Guard:
    """Checks audit events against a plan; installed once per worker, never removed."""

    def __init__(
        self,
        plugin: str,
        plan: SandboxPlan,
        report: Callable[[str, str | None], None] | None = None,
    ) -> None:
        self.plugin = plugin
        self.plan = plan
        self.denials = 0
        self._report = report
        self._reported: set[str] = set()
        self._busy = False  # logging a denial must not re-enter the hook
        self._handlers: dict[str, Callable[[tuple[Any, ...]], None]] = {
            "socket.__new__": self._socket_new,
            "socket.connect": self._socket_address,
            "socket.sendto": self._socket_address,
            "socket.bind": self._socket_bind,
            "subprocess.Popen": self._exec,
            "os.system": self._exec,
            "os.exec": self._exec,
            "os.posix_spawn": self._exec,
            "os.spawn": self._exec,
            "open": self._open,
            "os.listdir": self._read_path,
            "os.scandir": self._read_path,
            "os.remove": self._write_path,
            "os.rmdir": self._write_path,
            "os.mkdir": self._write_path,
            "os.rename": self._write_path,
            "os.truncate": self._write_path,
            "os.kill": self._kill,
            "os.killpg": self._kill,
        }

    def install(self) -> None:
        sys.addaudithook(self._hook)

    def _hook(self, event: str, args: tuple[Any, ...]) -> None:
        handler = self._handlers.get(event)
        if handler is not None and not self._busy:
            handler(args)

    def _deny(self, scope: str | None, what: str) -> None:
        self.denials += 1
        if scope is None:
            message = f"plugin '{self.plugin}' may not do this: {what}"
        else:
            # Plain words: the plugin's own code reads this. The fix (a grant) goes to the
            # kernel as the scope, for each front end to phrase (its command, its key).
            message = (
                f"plugin '{self.plugin}' has no '{scope}' permission: {what} — "
                f"declare it in kimai.json, and the user must grant it"
            )
        self._busy = True
        try:
            log.warning("denied: %s (%s)", what, f"needs {scope}" if scope else "never allowed")
            # The kernel tells the user (rate-limited there too); each refusal once from here,
            # so a plugin looping over a refused call cannot flood the pipe.
            key = f"{scope}|{what}"
            if self._report is not None and key not in self._reported and len(self._reported) < 64:
                self._reported.add(key)
                self._report(message, scope)
        finally:
            self._busy = False
        raise SandboxDenied(message)

    # -- network -----------------------------------------------------------------------------

    def _socket_new(self, args: tuple[Any, ...]) -> None:
        # AF_UNIX passes here: socketpair() (asyncio's self-pipe) raises this very event, and
        # seccomp refuses socket(AF_UNIX) itself, whatever is granted.
        family, kind, proto = args[1], args[2], args[3] if len(args) > 3 else 0
        if family == socket.AF_UNIX:
            return
        if self.plan.network == NETWORK_ANY:
            if family not in (*_INET, _AF_NETLINK):
                self._deny(None, f"opening a socket of family {family} (plugins get IP only)")
            return
        if self.plan.network == NETWORK_NONE:
            self._deny("network", "opening a network socket")
        if family in _INET and isinstance(kind, int) and kind & 0xF != socket.SOCK_STREAM:
            self._deny("network", "UDP and raw sockets (granted hosts are reached over TCP)")
        if family in _INET and proto not in (0, socket.IPPROTO_TCP):
            self._deny("network", f"protocol {proto} (granted hosts are reached over plain TCP)")

    def _socket_bind(self, args: tuple[Any, ...]) -> None:
        if self.plan.network == NETWORK_ANY:
            return
        address = args[1] if len(args) > 1 else None
        if isinstance(address, tuple):
            self._deny("network", f"listening on {address[0]}:{address[1]} (binding a socket)")

    def _socket_address(self, args: tuple[Any, ...]) -> None:
        address = args[1]
        if self.plan.network == NETWORK_ANY and isinstance(address, tuple):
            return
        if not isinstance(address, tuple) or len(address) < 2:
            self._deny(None, f"connecting to the UNIX socket {address!r} (never allowed)")
            return
        host, port = address[0], address[1]
        if self.plan.network == NETWORK_NONE:
            self._deny("network", f"connecting to {host}:{port}")
        if host in ("127.0.0.1", "localhost", "::1") and port == self.plan.proxy_port:
            return
        granted = ", ".join(f"network:{h}" for h in self.plan.proxy_hosts)
        self._deny(
            f"network:{host}",
            f"connecting to {host}:{port} directly; with {granted} connections go through "
            "the proxy in HTTPS_PROXY / HTTP_PROXY (urllib, httpx and requests use it)",
        )

    # -- programs ----------------------------------------------------------------------------

    def _exec(self, args: tuple[Any, ...]) -> None:
        if self.plan.exec_allowed:
            return
        program = _program(args)
        if program is not None and self._is_runtime(os.fsdecode(program)):
            return  # an MCP worker starting its server (Landlock still decides what runs)
        self._deny("shell", f"running {os.fsdecode(program or 'a program')!r}")

    def _is_runtime(self, program: str) -> bool:
        if not self.plan.runtime_exec:
            return False
        try:
            resolved = os.path.realpath(program)
        except (OSError, ValueError):
            return False
        return resolved in self.plan.runtime_exec

    # -- files -------------------------------------------------------------------------------

    def _open(self, args: tuple[Any, ...]) -> None:
        path, mode, flags = args[0], args[1], args[2]
        if isinstance(path, int):
            return  # an fd already open: nothing new is reached
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and mode is None and bool(flags & _WRITE_FLAGS)
        )
        self._check_path(path, writing)

    def _read_path(self, args: tuple[Any, ...]) -> None:
        if args and args[0] is not None and not isinstance(args[0], int):
            self._check_path(args[0], writing=False)

    def _write_path(self, args: tuple[Any, ...]) -> None:
        if args and not isinstance(args[0], int):
            self._check_path(args[0], writing=True)

    def _check_path(self, raw: Any, writing: bool) -> None:
        try:
            path = os.path.abspath(os.fsdecode(raw))
        except (TypeError, ValueError):
            return
        if writing:
            if not self.plan.allows_write(path):
                self._deny(f"filesystem:write:{path}", f"writing {path}")
        elif not self.plan.allows_read(path):
            self._deny(f"filesystem:read:{path}", f"reading {path}")

    # -- signals -----------------------------------------------------------------------------

    def _kill(self, args: tuple[Any, ...]) -> None:
        # Its own processes (Landlock's signal scope enforces the rest); never the kernel,
        # init, or every process at once.
        target = args[0]
        if isinstance(target, int) and target in (self.plan.kernel_pid, 1, -1):
            self._deny(None, f"sending a signal to process {target}, outside the plugin")


def _program(args: tuple[Any, ...]) -> str | bytes | None:
    """The program an exec audit event names: its first argument, or for
    ``subprocess.Popen`` (executable, args, cwd, env) with no executable, args' first."""
    if args and isinstance(args[0], str | bytes):
        return args[0]
    if len(args) > 1 and isinstance(args[1], list | tuple) and args[1]:
        first = args[1][0]
        if isinstance(first, str | bytes):
            return first
    return None
