"""seccomp: the kernel layer that takes dangerous syscalls away from a worker.

Landlock decides *which* files and ports a worker reaches; seccomp removes whole kernel
interfaces that Landlock does not mediate (new namespaces, ptrace, io_uring, bpf, module
loading...) and, per policy, exec and socket creation. Denials return EPERM rather than
killing the process, so a plugin sees an ordinary PermissionError it can report.

The filter is classic BPF assembled here with ctypes, because libseccomp is not a
dependency. ctypes is imported inside the functions: the worker imports this module on its
start-up path. Only x86_64 and aarch64 are supported; elsewhere ``available()`` says False and
``apply`` raises SeccompError.

This module asks the kernel (is seccomp there, no_new_privs, install the filter); what the
filter says is seccomp_rules.py, and the BPF it is written in is seccomp_bpf.py.
"""

from __future__ import annotations

import errno
import os
import sys
from typing import Any

from . import syscalls
from .seccomp_bpf import SECCOMP_RET_ERRNO, SECCOMP_RET_KILL_PROCESS, SeccompError
from .seccomp_rules import SeccompPolicy, filter_program
from .syscall_table import ARCHES as _ARCHES

__all__ = ["apply", "available", "no_new_privs_supported", "set_no_new_privs"]

PR_GET_SECCOMP = 21
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39

SECCOMP_SET_MODE_FILTER = 1
SECCOMP_GET_ACTION_AVAIL = 2
SECCOMP_FILTER_FLAG_TSYNC = 1 << 0


_NR_PRCTL = {"x86_64": 157, "aarch64": 167}
_NR_SECCOMP = {"x86_64": 317, "aarch64": 277}


def _machine() -> str | None:
    """The supported architecture this process runs as, or None."""
    if sys.platform != "linux" or sys.maxsize <= 2**32 or sys.byteorder != "little":
        return None
    machine = os.uname().machine
    return machine if machine in _ARCHES else None


def _prctl(libc: Any, machine: str, option: int, arg: int = 0) -> tuple[int, int]:
    import ctypes

    zero = ctypes.c_ulong(0)
    return syscalls.syscall(
        libc, _NR_PRCTL[machine], ctypes.c_int(option), ctypes.c_ulong(arg), zero, zero, zero
    )


def _describe_errno(err: int) -> str:
    return f"{errno.errorcode.get(err, str(err))} ({os.strerror(err)})"


def set_no_new_privs() -> None:
    """Forbid the process (and its children) from ever gaining privileges through exec.

    Both Landlock and seccomp filters demand it from unprivileged callers, and it keeps a
    setuid binary from escaping the sandbox. Idempotent; it cannot be undone.
    """
    machine = _machine()
    if machine is None:
        raise SeccompError(errno.ENOSYS, "no_new_privs: unsupported platform")
    result, err = _prctl(syscalls.libc(), machine, PR_SET_NO_NEW_PRIVS, 1)
    if result != 0:
        raise SeccompError(err, f"prctl(PR_SET_NO_NEW_PRIVS) failed: {_describe_errno(err)}")


def no_new_privs_supported() -> bool:
    """Whether the kernel knows no_new_privs (asked without setting it). Never raises."""
    machine = _machine()
    if machine is None:
        return False
    try:
        result, _ = _prctl(syscalls.libc(), machine, PR_GET_NO_NEW_PRIVS)
    except Exception:
        return False
    return result >= 0


def available() -> bool:
    """Whether ``apply`` can work here: filter mode and the two return actions it uses exist.

    Asks the kernel without changing anything. Never raises.
    """
    machine = _machine()
    if machine is None:
        return False
    try:
        import ctypes

        libc = syscalls.libc()
        mode, _ = _prctl(libc, machine, PR_GET_SECCOMP)
        if mode < 0:  # EINVAL: kernel built without CONFIG_SECCOMP
            return False
        for action in (SECCOMP_RET_ERRNO, SECCOMP_RET_KILL_PROCESS):
            action_word = ctypes.c_uint32(action)
            result, _ = syscalls.syscall(
                libc,
                _NR_SECCOMP[machine],
                ctypes.c_uint(SECCOMP_GET_ACTION_AVAIL),
                ctypes.c_uint(0),
                ctypes.byref(action_word),
            )
            if result != 0:
                return False
    except Exception:
        return False
    return True


def apply(policy: SeccompPolicy) -> None:
    """Install ``policy`` on every thread of this process and on all its future children.

    Irreversible and cumulative (filters stack). Sets no_new_privs first. TSYNC synchronises
    the filter onto threads that already exist, so unlike Landlock this may run after
    threads have started. Raises SeccompError when unsupported here or when the kernel
    refuses.
    """
    machine = _machine()
    if machine is None:
        raise SeccompError(
            errno.ENOSYS, "seccomp: unsupported platform (needs Linux x86_64/aarch64)"
        )

    import ctypes

    class SockFilter(ctypes.Structure):
        _fields_ = (
            ("code", ctypes.c_uint16),
            ("jt", ctypes.c_uint8),
            ("jf", ctypes.c_uint8),
            ("k", ctypes.c_uint32),
        )

    class SockFprog(ctypes.Structure):
        _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter)))

    program = filter_program(policy, machine)
    instructions = (SockFilter * len(program))(*(SockFilter(*op) for op in program))
    fprog = SockFprog(len(program), instructions)

    set_no_new_privs()
    result, err = syscalls.syscall(
        syscalls.libc(),
        _NR_SECCOMP[machine],
        ctypes.c_uint(SECCOMP_SET_MODE_FILTER),
        ctypes.c_uint(SECCOMP_FILTER_FLAG_TSYNC),
        ctypes.byref(fprog),
    )
    if result > 0:
        raise SeccompError(
            errno.EBUSY, f"seccomp: thread {result} could not be synchronised (TSYNC)"
        )
    if result != 0:
        raise SeccompError(err, f"seccomp(SECCOMP_SET_MODE_FILTER) failed: {_describe_errno(err)}")
