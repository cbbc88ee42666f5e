"""What a plugin's granted scopes mean for the OS: paths, network mode, exec, devices.

One pure function turns scopes into a :class:`SandboxPlan`; the worker hands the plan to
Landlock, seccomp and the audit-hook guard, and the kernel uses the same reading of the scopes
to decide whether a plugin needs a host-checking proxy. Keeping the mapping here, away from
the syscalls, makes it testable everywhere and keeps the layers in agreement.

The baseline (no scope at all) is what the interpreter needs to run and import: the Python
installation and system libraries (read + execute), the plugin's own code, its data, cache
and private temp folders (read + write), a few harmless device files, time-zone data, and
a few of its own ``/proc`` entries. Everything else is a scope.

A worker that runs a stock MCP server (:class:`ServerRuntime`) starts one program, its
server, and nothing else: execve is allowed, but Landlock lets it execute only the runtime's
own files (the interpreter or node, the dynamic loader); the system libraries, the Python
installation and the plugin's folder are readable, not executable. What the runtime needs to
start (the TLS configuration, besides the baseline's time zones and locales) is read-only.
"""

from __future__ import annotations

import functools
import glob
import sys
import sysconfig
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deeting_tui.plugin.scopes import Scope, expand_path, network_hosts, parsed_scopes

__all__ = [
    "NETWORK_ANY",
    "NETWORK_NONE",
    "NETWORK_PROXY",
    "SANDBOX_LINES",
    "SandboxPlan",
    "ServerRuntime",
    "describe_grants",
    "plan_sandbox",
]

#: The lines of describe_grants() a front end shows under "sandbox", in order.
SANDBOX_LINES = ("network", "files", "programs", "processes", "capabilities", "ipc")

NETWORK_NONE = "none"  # no socket() at all
NETWORK_PROXY = "proxy"  # TCP to the kernel's host-checking proxy only
NETWORK_ANY = "any"

SYSTEM_LIBRARIES = ("/lib", "/lib64", "/usr/lib", "/usr/lib64", "/usr/local/lib")
SYSTEM_BINARIES = ("/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/libexec")
BASE_READ = (
    "/etc/ld.so.cache",
    "/etc/localtime",
    "/etc/timezone",
    "/usr/share/zoneinfo",
    "/usr/share/locale",
)
# The worker's own /proc entries a library may read — not the whole /proc/PID folder: its
# net/ (every socket of the network namespace, the paths of the user's UNIX sockets), task/
# (which holds net/ again), mounts and root/cwd links say things about the machine and the
# user that are none of a plugin's business.
PROC_SELF_ENTRIES = (
    "fd",
    "fdinfo",
    "stat",
    "statm",
    "status",
    "cmdline",
    "comm",
    "limits",
    "io",
    "maps",
    "smaps",
    "smaps_rollup",
    "environ",
)
BASE_DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
NETWORK_READ = (
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/nsswitch.conf",
    "/etc/gai.conf",
    "/etc/host.conf",
    "/etc/services",
    "/etc/protocols",
    "/etc/ssl",
    "/etc/pki",
    "/etc/ca-certificates",
    "/usr/share/ca-certificates",
)
GPU_DEVICE_PATTERNS = ("/dev/nvidia*", "/dev/dri")
GPU_READ = ("/sys/class/drm", "/sys/devices", "/sys/bus/pci", "/proc/driver/nvidia")


#: Read-only files every MCP server's runtime may need to start: OpenSSL's configuration
#: (node aborts at start-up when it cannot read it; Python's ssl module reads it too).
RUNTIME_READ = ("/etc/ssl/openssl.cnf", "/usr/lib/ssl/openssl.cnf")


@dataclass(frozen=True)
class ServerRuntime:
    """What a stock MCP server's runtime may execute beyond the baseline: absolute paths of
    files, resolved (Landlock checks the file a link leads to). What it may read is the
    baseline's plus :data:`RUNTIME_READ`."""

    executables: tuple[str, ...]


@dataclass(frozen=True)
class SandboxPlan:
    """The concrete allowances for one worker; paths are absolute strings."""

    read: tuple[str, ...]
    read_exec: tuple[str, ...]
    write: tuple[str, ...]
    devices: tuple[str, ...]
    network: str  # NETWORK_NONE, NETWORK_PROXY or NETWORK_ANY
    proxy_port: int | None
    proxy_hosts: tuple[str, ...]
    exec_allowed: bool
    kernel_pid: int | None = None
    #: Some filesystem scope is granted, so the plugin may watch files (inotify).
    watch_files: bool = False
    #: The programs an MCP server's worker may start without ``shell`` (its runtime).
    runtime_exec: tuple[str, ...] = ()

    @property
    def may_execute(self) -> bool:
        """Whether execve is let through at all (Landlock then decides what may run)."""
        return self.exec_allowed or bool(self.runtime_exec)

    def allows_read(self, path: str) -> bool:
        return _under(path, (*self.read, *self.read_exec, *self.write, *self.devices))

    def allows_write(self, path: str) -> bool:
        return _under(path, (*self.write, *self.devices))


def plan_sandbox(
    scopes: Sequence[str | Scope],
    *,
    root: Path,
    data_dir: Path,
    cache_dir: Path,
    tmp_dir: Path | None,
    home: Path,
    pid: int,
    proxy_port: int | None = None,
    kernel_pid: int | None = None,
    runtime: ServerRuntime | None = None,
) -> SandboxPlan:
    """The allowances the granted ``scopes`` give a worker whose process id is ``pid``;
    ``runtime``: the worker runs a stock MCP server (see the module's docstring)."""
    parsed = parsed_scopes(scopes)
    kinds = {scope.kind for scope in parsed}
    # Both spellings: Landlock resolves /proc/self once, the guard compares text.
    own_proc = [f"/proc/{who}/{entry}" for who in (pid, "self") for entry in PROC_SELF_ENTRIES]
    read: list[str] = [*BASE_READ, *own_proc]
    read_exec: list[str] = [*python_installation(), *SYSTEM_LIBRARIES, str(root)]
    if runtime is not None:
        read, read_exec = [*read, *read_exec, *RUNTIME_READ], []
        read_exec.extend(runtime.executables)
    write: list[str] = [str(data_dir), str(cache_dir)]
    if tmp_dir is not None:
        write.append(str(tmp_dir))
    devices: list[str] = list(BASE_DEVICES)

    hosts = network_hosts(parsed)
    if hosts is None:
        network = NETWORK_ANY
    elif hosts and proxy_port is not None:
        network = NETWORK_PROXY
    else:
        network = NETWORK_NONE  # hosts granted but no proxy to reach them through: nothing
    if network != NETWORK_NONE:
        read.extend(NETWORK_READ)

    for scope in parsed:
        if scope.kind != "filesystem":
            continue
        if scope.target is None:
            write.append("/")
        else:
            target = str(expand_path(scope.target, home))
            (write if scope.mode == "write" else read).append(target)

    exec_allowed = "shell" in kinds
    if exec_allowed:
        # System programs, and the interpreter itself (a plugin may start Python again).
        read_exec.extend((*SYSTEM_BINARIES, sys.prefix, sys.base_prefix))
        if runtime is not None:  # programs there too (npm is a script under /usr/lib)
            read_exec.extend((*SYSTEM_LIBRARIES, *python_installation()))
        read_exec.append(str(Path(sys.executable).resolve().parent))
        read.append("/etc")
    if "gpu" in kinds:
        for pattern in GPU_DEVICE_PATTERNS:
            devices.extend(sorted(glob.glob(pattern)))
        read.extend(GPU_READ)

    return SandboxPlan(
        read=_unique(read),
        read_exec=_unique(read_exec),
        write=_unique(write),
        devices=_unique(devices),
        network=network,
        proxy_port=proxy_port if network == NETWORK_PROXY else None,
        proxy_hosts=hosts if network == NETWORK_PROXY and hosts else (),
        exec_allowed=exec_allowed,
        kernel_pid=kernel_pid,
        watch_files="filesystem" in kinds,
        runtime_exec=_unique(runtime.executables) if runtime is not None else (),
    )


@functools.cache
def python_installation() -> tuple[str, ...]:
    """What a worker's interpreter reads once plugin code may run: the standard library
    (with lib-dynload) of the base installation, its shared libraries and the folder of
    this package. Not site-packages: the worker's own libraries are loaded before the
    sandbox, and plugin code imports only its own deps/ (plugin_path.py), so a plugin that
    puts a venv's site folder back on sys.path still cannot read deeting's libraries from
    it. (A base installation's site folder under LIBDIR or /usr/lib stays readable with
    those folders: Landlock cannot cut a folder out of one it allows.) Deliberately not
    ``sys.path`` as a whole: its first entry may be the current directory, even ``/``."""
    base = sysconfig.get_paths(vars={"base": sys.base_prefix, "platbase": sys.base_exec_prefix})
    found = [base["stdlib"], base["platstdlib"]]
    libdir = sysconfig.get_config_var("LIBDIR")
    if isinstance(libdir, str):
        found.append(libdir)
    found.append(str(Path(__file__).resolve().parents[1]))  # deeting_tui, also when editable
    return tuple(found)


def _unique(paths: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(str(Path(p)) for p in paths if p))


def _under(path: str, roots: Iterable[str]) -> bool:
    for root in roots:
        if path == root or root == "/" or path.startswith(root.rstrip("/") + "/"):
            return True
    return False


def describe_grants(granted: Iterable[Scope]) -> dict[str, str]:
    """What this machine holds the plugin to, in words (no worker is started to find out):
    the level, what each kind of grant reaches, and each layer that enforces it here."""
    from .probe import probe

    caps = probe()
    granted = list(granted)
    hosts = network_hosts(granted)
    if hosts is None:
        network = "IP networking, any host, servers too; never UNIX sockets"
    elif hosts:
        network = "only " + ", ".join(hosts) + " over TCP, through a checking proxy"
        if caps.network_namespaces:
            network += " (its own network namespace: nothing else is reachable)"
        else:
            network += (
                " (no private network namespace on this machine: the proxy's port number "
                "on other addresses is not closed)"
            )
    else:
        network = "none"
    extra = [str(s) for s in granted if s.kind in ("filesystem", "gpu")]
    files = "its own folders" + (" + " + ", ".join(extra) if extra else "")
    programs = "may run programs" if any(s.kind == "shell" for s in granted) else "none"
    layers = _layers(caps)
    return {
        "level": caps.level,
        "network": network,
        "files": files,
        "programs": programs,
        **layers,
    }


def _layers(caps: Any) -> dict[str, str]:
    """Which OS layer enforces what on this machine, one line each."""
    if not (caps.landlock_abi or caps.seccomp):
        none = "not on this machine (guard-rail only)"
        return {"processes": none, "capabilities": none, "ipc": none}
    if caps.seccomp:
        processes = "its own only: no signals, limits, priorities or scheduling of others"
        ipc = "no System V IPC, no memfd, no new sessions or process groups"
    else:
        processes = "signals scoped by Landlock; limits and priorities not filtered (no seccomp)"
        ipc = "not filtered (no seccomp)"
    if caps.root:
        capabilities = "all dropped (bounding, ambient, permitted, effective, inheritable)"
    elif caps.user_namespaces:
        capabilities = "none held; a user namespace of its own, its task limit counted there"
    else:
        capabilities = "none held (not root); bounding set kept (no user namespaces here)"
    return {"processes": processes, "capabilities": capabilities, "ipc": ipc}
