"""Capabilities: a worker holds none, whoever runs Deeting.

CI runs as root, and so do many container users: a root worker with its capabilities kept can
make device nodes, watch and block other processes' file access (fanotify), set the clock or
the host name, or take the CPU with SCHED_FIFO, whatever Landlock and seccomp say about files
and sockets. So before any plugin code runs, every set is emptied: the bounding set (what a
later exec could ever regain, needs CAP_SETPCAP), the ambient set, and the permitted,
effective and inheritable sets (capset). Securebits are locked so that uid 0 gains nothing
by exec either. A worker in a user namespace of its own holds a full set *in that namespace*
and sheds it the same way.

An unprivileged worker outside a user namespace holds nothing to begin with, but it cannot
empty its bounding set (no CAP_SETPCAP); with no_new_privs nothing can ever be gained through
it, and :func:`drop_all` reports it rather than failing.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass

from . import syscalls

PR_CAPBSET_DROP = 24
PR_SET_SECUREBITS = 28
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4

# include/uapi/linux/securebits.h: uid 0 is nothing special, and it stays that way.
SECBIT_NOROOT = 1 << 0
SECBIT_NOROOT_LOCKED = 1 << 1
SECBIT_NO_SETUID_FIXUP = 1 << 2
SECBIT_NO_SETUID_FIXUP_LOCKED = 1 << 3
SECBIT_KEEP_CAPS_LOCKED = 1 << 5
SECBIT_NO_CAP_AMBIENT_RAISE = 1 << 6
SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED = 1 << 7
LOCKED_SECUREBITS = (
    SECBIT_NOROOT
    | SECBIT_NOROOT_LOCKED
    | SECBIT_NO_SETUID_FIXUP
    | SECBIT_NO_SETUID_FIXUP_LOCKED
    | SECBIT_KEEP_CAPS_LOCKED
    | SECBIT_NO_CAP_AMBIENT_RAISE
    | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED
)

_LINUX_CAPABILITY_VERSION_3 = 0x20080522
_NR_CAPSET = {"x86_64": 126, "aarch64": 91}
_NR_PRCTL = {"x86_64": 157, "aarch64": 167}
_STATUS_FIELDS = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")


class CapabilityError(OSError):
    """A capability set could not be emptied; the worker must not run the plugin."""


@dataclass(frozen=True)
class Dropped:
    """What is left: every set as /proc/self/status shows it (hex masks), after the drop."""

    sets: dict[str, int]

    @property
    def none_left(self) -> bool:
        return not any(self.sets.values())

    @property
    def bounding_kept(self) -> bool:
        """Only the bounding set is left (unprivileged, no user namespace: harmless)."""
        return self.sets.get("CapBnd", 0) != 0 and not any(
            value for name, value in self.sets.items() if name != "CapBnd"
        )

    def describe(self) -> str:
        if self.none_left:
            return "all dropped"
        if self.bounding_kept:
            return "none held (bounding set kept: no CAP_SETPCAP; no_new_privs blocks regaining)"
        held = ", ".join(f"{name}={value:#x}" for name, value in self.sets.items() if value)
        return f"held: {held}"


def current_sets() -> dict[str, int]:
    """The five capability sets of this process, from /proc/self/status."""
    sets = dict.fromkeys(_STATUS_FIELDS, 0)
    with open("/proc/self/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in sets:
                sets[name] = int(value.strip(), 16)
    return sets


def _last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return 63  # unknown: try every bit a 64-bit mask can hold; EINVAL ends the walk


def drop_all() -> Dropped:
    """Empty every capability set of this (single-threaded) process; returns what is left.

    Raises CapabilityError only when the process held capabilities and could not give them
    up — running a plugin with them would be worse than not running it.
    """
    machine = os.uname().machine
    if machine not in _NR_CAPSET:
        raise CapabilityError(errno.ENOSYS, f"capabilities: unsupported machine {machine}")
    import ctypes

    libc = syscalls.libc()
    nr_prctl = _NR_PRCTL[machine]

    def prctl(option: int, arg2: int = 0, arg3: int = 0) -> tuple[int, int]:
        zero = ctypes.c_ulong(0)
        return syscalls.syscall(
            libc,
            nr_prctl,
            ctypes.c_int(option),
            ctypes.c_ulong(arg2),
            ctypes.c_ulong(arg3),
            zero,
            zero,
        )

    held = current_sets()
    if held["CapEff"]:
        # While CAP_SETPCAP is still effective: lock uid 0 out of exec-time gains.
        result, err = prctl(PR_SET_SECUREBITS, LOCKED_SECUREBITS)
        if result != 0 and err != errno.EPERM:
            raise CapabilityError(err, f"prctl(PR_SET_SECUREBITS): {os.strerror(err)}")
        for cap in range(_last_cap() + 1):
            result, err = prctl(PR_CAPBSET_DROP, cap)
            if result != 0 and err == errno.EINVAL:
                break  # past the last capability this kernel knows
            if result != 0 and err != errno.EPERM:
                raise CapabilityError(err, f"prctl(PR_CAPBSET_DROP, {cap}): {os.strerror(err)}")
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)  # EINVAL before 4.3: nothing to clear

    header = (ctypes.c_uint32 * 2)(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()  # two {effective, permitted, inheritable}, all zero
    result, err = syscalls.syscall(
        libc, _NR_CAPSET[machine], ctypes.byref(header), ctypes.byref(data)
    )
    if result != 0:
        raise CapabilityError(err, f"capset: {os.strerror(err)}")
    left = Dropped(current_sets())
    if not (left.none_left or left.bounding_kept):
        raise CapabilityError(errno.EPERM, f"capabilities still held after the drop: {left}")
    return left
