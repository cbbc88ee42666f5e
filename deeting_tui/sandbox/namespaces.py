"""The namespaces a worker enters before its sandbox: a user namespace and a network one.

**User namespace** (unprivileged workers): Linux counts ``RLIMIT_NPROC`` per user namespace,
so a worker in one of its own can be held to ``limits.tasks`` processes and threads without
counting the user's other processes (root is exempt from RLIMIT_NPROC; its workers are
bounded by cgroups instead). The worker maps only its own uid and gid, so nothing it does
can act as anyone else, and it drops the capabilities the new namespace hands it.

**Network namespace** (plugins granted hosts only, ``network:HOST``): Landlock can say which
TCP *port* a worker may connect to, not which *address*, so with Landlock alone a worker
could reach any host on the proxy's port number. In a network namespace of its own the
worker has a loopback interface and nothing else: no route out, no other machine's service,
no local service of the user's. Its only way out is a listening socket made here, inside the
namespace, that the kernel takes over (``pidfd_getfd``) and serves as the plugin's checking
proxy; programs the plugin runs (``shell``) find it through ``HTTPS_PROXY`` like the plugin.

Both need the process to be single-threaded and run before no_new_privs, Landlock and
seccomp (which then forbids ``unshare`` for good). Where the machine refuses a namespace
(user namespaces disabled, a container's seccomp profile), the worker runs without it and
says so in its report: Landlock's port rule and seccomp still apply.
"""

from __future__ import annotations

import errno
import os
import resource
import socket
import struct
from dataclasses import dataclass, field

from . import syscalls

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
_NR_UNSHARE = {"x86_64": 272, "aarch64": 97}

_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1

#: Connections the proxy listener holds before the kernel accepts them.
LISTEN_BACKLOG = 128

# Keeps the listener open for the worker's lifetime: the kernel holds its own copy, and this
# one must not be garbage-collected (closing it would not stop the kernel's, but would free
# its fd number for a confusing reuse).
_kept: list[socket.socket] = []


@dataclass(frozen=True)
class Entered:
    """Which namespaces the worker is in now, and why not where it is not."""

    user: bool = False
    net: bool = False
    tasks_limit: int | None = None
    #: The proxy listener inside the network namespace: (fd in this process, port).
    listener: tuple[int, int] | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def as_json(self) -> dict[str, object]:
        report: dict[str, object] = {"user": self.user, "net": self.net}
        if self.tasks_limit is not None:
            report["tasks_limit"] = self.tasks_limit
        if self.listener is not None:
            report["listener_fd"], report["listener_port"] = self.listener
        if self.notes:
            report["notes"] = list(self.notes)
        return report


def enter(*, private_network: bool, tasks: int | None) -> Entered:
    """Enter what this worker needs: a user namespace unless root, a network namespace with
    a proxy listener when ``private_network``. Never raises for a namespace the machine
    refuses; the returned report says what happened."""
    machine = os.uname().machine
    if machine not in _NR_UNSHARE:
        return Entered(notes=(f"no namespaces on {machine}",))
    root = os.geteuid() == 0
    notes: list[str] = []
    user = False
    if not root:
        uid, gid = os.getuid(), os.getgid()  # unmapped (65534) once unshared: ask first
        user = _unshare(machine, CLONE_NEWUSER, notes, "user namespace")
        if user:
            _map_ids_to_themselves(uid, gid)
    net = False
    if private_network:
        if root or user:
            net = _unshare(machine, CLONE_NEWNET, notes, "network namespace")
        else:
            notes.append("network namespace: needs a user namespace, which was refused")
    listener = _proxy_listener() if net else None
    tasks_limit = None
    if user and tasks is not None:
        # Counted in this user namespace only: the plugin's own processes and threads.
        resource.setrlimit(resource.RLIMIT_NPROC, (tasks, tasks))
        tasks_limit = tasks
    return Entered(user, net, tasks_limit, listener, tuple(notes))


def _unshare(machine: str, flags: int, notes: list[str], what: str) -> bool:
    import ctypes

    result, err = syscalls.syscall(syscalls.libc(), _NR_UNSHARE[machine], ctypes.c_int(flags))
    if result == 0:
        return True
    notes.append(f"{what}: refused by this machine ({errno.errorcode.get(err, err)})")
    return False


def _map_ids_to_themselves(uid: int, gid: int) -> None:
    """Map our own uid and gid to themselves: files keep their owners, and nobody else's id
    exists in here. setgroups must be denied before an unprivileged gid_map is accepted."""
    for name, text in (
        ("setgroups", "deny"),
        ("uid_map", f"{uid} {uid} 1\n"),
        ("gid_map", f"{gid} {gid} 1\n"),
    ):
        with open(f"/proc/self/{name}", "w") as f:
            f.write(text)


def _proxy_listener() -> tuple[int, int]:
    """Bring up the namespace's loopback and listen on it; (fd, port)."""
    import fcntl

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as control:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack_from("16sH", fcntl.ioctl(control, _SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(control, _SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | _IFF_UP))
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(LISTEN_BACKLOG)
    _kept.append(listener)
    return listener.fileno(), int(listener.getsockname()[1])
