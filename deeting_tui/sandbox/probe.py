"""Which OS sandbox layers this machine can enforce, asked without enforcing any.

The kernel decides how strongly plugins are confined; ``deeting doctor`` and the launcher need
to say so honestly instead of implying protection that is not there. Probing costs a few
syscalls and is cached for the life of the process.
"""

from __future__ import annotations

import functools
import os
import sys
from dataclasses import asdict, dataclass
from typing import Any

from deeting_tui.sandbox import landlock, seccomp, syscalls


@dataclass(frozen=True)
class Capabilities:
    platform: str
    landlock_abi: int
    seccomp: bool
    no_new_privs: bool
    root: bool
    #: A worker can have a network namespace of its own (host grants: only the proxy).
    network_namespaces: bool = False
    #: An unprivileged worker can have a user namespace (its task limit, its capabilities).
    user_namespaces: bool = False

    @property
    def level(self) -> str:
        if self.landlock_abi and self.seccomp:
            return f"enforced: landlock {self.landlock_abi} + seccomp"
        if self.landlock_abi:
            return f"partial: landlock {self.landlock_abi} only (no seccomp)"
        if self.seccomp:
            return "partial: seccomp only (no landlock)"
        return "guard-rail only"

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "level": self.level}


def _platform() -> str:
    machine = os.uname().machine if hasattr(os, "uname") else "unknown"
    return f"{sys.platform}-{machine}"


@functools.cache
def probe() -> Capabilities:
    """This machine's sandbox capabilities. Never raises; applies nothing to this process."""
    try:
        platform = _platform()
    except Exception:
        platform = sys.platform
    root = hasattr(os, "geteuid") and os.geteuid() == 0
    user_ns = not root and _can_unshare(_CLONE_NEWUSER)
    return Capabilities(
        platform=platform,
        landlock_abi=landlock.abi_version(),
        seccomp=seccomp.available(),
        no_new_privs=seccomp.no_new_privs_supported(),
        root=root,
        network_namespaces=_can_unshare(_CLONE_NEWNET | (0 if root else _CLONE_NEWUSER)),
        user_namespaces=user_ns,
    )


_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNET = 0x40000000


def _can_unshare(flags: int) -> bool:
    """Whether this machine lets us unshare ``flags``: tried in a forked child that exits at
    once, since a namespace cannot be left again. Never raises."""
    if not sys.platform.startswith("linux") or not hasattr(os, "fork"):
        return False
    try:
        libc = syscalls.libc()
        pid = os.fork()
    except Exception:
        return False
    if pid == 0:  # the child: one syscall, no Python cleanup
        try:
            os._exit(0 if libc.unshare(flags) == 0 else 1)
        finally:
            os._exit(1)
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        return False
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def _landlock_features(abi: int) -> str:
    if abi >= landlock.FIRST_ABI_WITH_SCOPES:
        return "filesystem, TCP ports, signal and abstract-socket scopes"
    if abi >= landlock.FIRST_ABI_WITH_NET:
        return "filesystem and TCP ports"
    return "filesystem only"


def describe(caps: Capabilities) -> list[str]:
    """Lines for a doctor-style report, one fact per line."""
    on_linux = caps.platform.startswith("linux")
    if caps.landlock_abi:
        landlock_line = (
            f"landlock: ABI {caps.landlock_abi} ({_landlock_features(caps.landlock_abi)})"
        )
    elif on_linux:
        landlock_line = "landlock: unavailable (kernel without Landlock, or not enabled at boot)"
    else:
        landlock_line = f"landlock: not on this platform ({caps.platform})"
    if caps.seccomp:
        seccomp_line = "seccomp: available"
    elif on_linux:
        seccomp_line = "seccomp: unavailable (kernel or architecture not supported)"
    else:
        seccomp_line = f"seccomp: not on this platform ({caps.platform})"
    if not caps.root:
        root_line = "running as root: no"
    elif caps.no_new_privs and (caps.landlock_abi or caps.seccomp):
        root_line = "running as root: yes — layers still apply (no_new_privs)"
    else:
        root_line = "running as root: yes — no OS layer confines plugins"
    return [
        f"sandbox: {caps.level}",
        f"platform: {caps.platform}",
        landlock_line,
        seccomp_line,
        f"no_new_privs: {'available' if caps.no_new_privs else 'unavailable'}",
        root_line,
        f"network namespaces: {'available' if caps.network_namespaces else 'refused here'}",
        "user namespaces: "
        + (
            "not needed (root)"
            if caps.root
            else "available"
            if caps.user_namespaces
            else "refused here"
        ),
    ]
