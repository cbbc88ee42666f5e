"""seccomp: the kernel layer that takes dangerous syscalls away from a worker.

Landlock decides *which* files and ports a worker reaches; seccomp removes whole kernel
interfaces that Landlock does not mediate (new namespaces, ptrace, io_uring, bpf, module
loading...) and, per policy, exec and socket creation. Denials return EPERM rather than
killing the process, so a plugin sees an ordinary PermissionError it can report.

The filter is classic BPF assembled here with ctypes, because libseccomp is not a
dependency. ctypes is imported inside the functions: the worker imports this module on its
start-up path. Only x86_64 and aarch64 are supported; elsewhere ``available()`` says False and
``apply`` raises SeccompError.
"""

from __future__ import annotations

import errno
import os
import sys
from dataclasses import dataclass
from typing import Any

from . import syscalls

PR_GET_SECCOMP = 21
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39

SECCOMP_SET_MODE_FILTER = 1
SECCOMP_GET_ACTION_AVAIL = 2
SECCOMP_FILTER_FLAG_TSYNC = 1 << 0

SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_ALLOW = 0x7FFF0000

# struct seccomp_data {int nr; u32 arch; u64 instruction_pointer; u64 args[6];}, read as
# 32-bit words. Both supported architectures are little-endian: an argument's low word
# comes first.
_OFFSET_NR = 0
_OFFSET_ARCH = 4
_OFFSET_ARGS = 16


def _arg_low_word(index: int) -> int:
    return _OFFSET_ARGS + 8 * index


# Classic BPF opcodes (linux/bpf_common.h).
_BPF_LD_W_ABS = 0x00 | 0x00 | 0x20
_BPF_JEQ_K = 0x05 | 0x10 | 0x00
_BPF_JSET_K = 0x05 | 0x40 | 0x00
_BPF_AND_K = 0x04 | 0x50 | 0x00
_BPF_RET_K = 0x06 | 0x00
_BPF_MAX_JUMP = 255

_X32_SYSCALL_BIT = 0x40000000

CLONE_NEW_NAMESPACE_FLAGS = (
    0x00020000  # CLONE_NEWNS
    | 0x02000000  # CLONE_NEWCGROUP
    | 0x04000000  # CLONE_NEWUTS
    | 0x08000000  # CLONE_NEWIPC
    | 0x10000000  # CLONE_NEWUSER
    | 0x20000000  # CLONE_NEWPID
    | 0x40000000  # CLONE_NEWNET
)
_PERSONALITY_QUERY = 0xFFFFFFFF

_AF_INET, _AF_INET6 = 2, 10
_SOCK_STREAM = 1
_SOCK_TYPE_FLAGS = 0o4000 | 0o2000000  # SOCK_NONBLOCK | SOCK_CLOEXEC

NETWORK_MODES = ("none", "stream", "any")


class _Arch:
    # A plain class, not a dataclass: the decorator's code generation costs start-up time.
    def __init__(self, audit_arch: int, syscalls: dict[str, int], denies_x32: bool) -> None:
        self.audit_arch = audit_arch
        self.syscalls = syscalls
        self.denies_x32 = denies_x32


_ALWAYS_DENIED = (
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "unshare",
    "setns",
    "open_by_handle_at",
    "name_to_handle_at",
    "keyctl",
    "add_key",
    "request_key",
    "acct",
    "swapon",
    "swapoff",
    "reboot",
    "syslog",
    "mount_setattr",
    "fsopen",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "pidfd_getfd",
)

# Syscalls added since 5.1 share one numbering on every architecture.
_COMMON_NEW_SYSCALLS = {
    "io_uring_setup": 425,
    "io_uring_enter": 426,
    "io_uring_register": 427,
    "open_tree": 428,
    "move_mount": 429,
    "fsopen": 430,
    "fsmount": 432,
    "fspick": 433,
    "clone3": 435,
    "pidfd_getfd": 438,
    "mount_setattr": 442,
}

# arch/x86/entry/syscalls/syscall_64.tbl
_X86_64 = _Arch(
    audit_arch=0xC000003E,  # EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE
    denies_x32=True,
    syscalls={
        **_COMMON_NEW_SYSCALLS,
        "socket": 41,
        "clone": 56,
        "execve": 59,
        "ptrace": 101,
        "syslog": 103,
        "personality": 135,
        "pivot_root": 155,
        "chroot": 161,
        "acct": 163,
        "mount": 165,
        "umount2": 166,
        "swapon": 167,
        "swapoff": 168,
        "reboot": 169,
        "init_module": 175,
        "delete_module": 176,
        "kexec_load": 246,
        "add_key": 248,
        "request_key": 249,
        "keyctl": 250,
        "unshare": 272,
        "perf_event_open": 298,
        "name_to_handle_at": 303,
        "open_by_handle_at": 304,
        "setns": 308,
        "process_vm_readv": 310,
        "process_vm_writev": 311,
        "finit_module": 313,
        "kexec_file_load": 320,
        "bpf": 321,
        "execveat": 322,
        "userfaultfd": 323,
    },
)

# include/uapi/asm-generic/unistd.h (aarch64 has no legacy fork/open family).
_AARCH64 = _Arch(
    audit_arch=0xC00000B7,  # EM_AARCH64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE
    denies_x32=False,
    syscalls={
        **_COMMON_NEW_SYSCALLS,
        "umount2": 39,
        "mount": 40,
        "pivot_root": 41,
        "chroot": 51,
        "acct": 89,
        "personality": 92,
        "unshare": 97,
        "kexec_load": 104,
        "init_module": 105,
        "delete_module": 106,
        "syslog": 116,
        "ptrace": 117,
        "reboot": 142,
        "socket": 198,
        "add_key": 217,
        "request_key": 218,
        "keyctl": 219,
        "clone": 220,
        "execve": 221,
        "swapon": 224,
        "swapoff": 225,
        "perf_event_open": 241,
        "name_to_handle_at": 264,
        "open_by_handle_at": 265,
        "setns": 268,
        "process_vm_readv": 270,
        "process_vm_writev": 271,
        "finit_module": 273,
        "bpf": 280,
        "execveat": 281,
        "userfaultfd": 282,
        "kexec_file_load": 294,
    },
)

_ARCHES = {"x86_64": _X86_64, "aarch64": _AARCH64}
_NR_PRCTL = {"x86_64": 157, "aarch64": 167}
_NR_SECCOMP = {"x86_64": 317, "aarch64": 277}


class SeccompError(OSError):
    """Installing the filter or setting no_new_privs failed; no filter was installed."""


@dataclass(frozen=True)
class SeccompPolicy:
    """What a worker may still do at the syscall level.

    ``network``: "none" — socket() fails for every family, while socketpair() keeps working
    because asyncio's self-pipe needs it; "stream" — socket() only for AF_INET/AF_INET6
    SOCK_STREAM (TCP then goes through the proxy and Landlock's port rules; UDP, raw and UNIX
    sockets are refused — Landlock cannot stop a connect() to a socket file); "any" — socket()
    unrestricted.
    """

    network: str = "none"
    exec_allowed: bool = False

    def __post_init__(self) -> None:
        if self.network not in NETWORK_MODES:
            raise ValueError(
                f"seccomp network mode must be one of {NETWORK_MODES}: {self.network!r}"
            )


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


class _Assembler:
    """Classic BPF with named forward labels, so the jump offsets are computed, not typed."""

    def __init__(self) -> None:
        self._code: list[tuple[int, int | str, int | str, int]] = []
        self._labels: dict[str, int] = {}

    def label(self, name: str) -> None:
        self._labels[name] = len(self._code)

    def load(self, offset: int) -> None:
        self._code.append((_BPF_LD_W_ABS, 0, 0, offset))

    def and_(self, mask: int) -> None:
        self._code.append((_BPF_AND_K, 0, 0, mask))

    def jeq(self, value: int, if_true: int | str = 0, if_false: int | str = 0) -> None:
        self._code.append((_BPF_JEQ_K, if_true, if_false, value))

    def jset(self, mask: int, if_true: int | str = 0, if_false: int | str = 0) -> None:
        self._code.append((_BPF_JSET_K, if_true, if_false, mask))

    def ret(self, action: int) -> None:
        self._code.append((_BPF_RET_K, 0, 0, action))

    def assemble(self) -> list[tuple[int, int, int, int]]:
        program: list[tuple[int, int, int, int]] = []
        for index, (code, if_true, if_false, k) in enumerate(self._code):
            program.append((code, self._offset(index, if_true), self._offset(index, if_false), k))
        return program

    def _offset(self, index: int, target: int | str) -> int:
        if isinstance(target, int):
            return target
        offset = self._labels[target] - index - 1
        if not 0 <= offset <= _BPF_MAX_JUMP:
            raise SeccompError(errno.E2BIG, f"seccomp: jump to {target!r} out of BPF range")
        return offset


def filter_program(policy: SeccompPolicy, machine: str) -> list[tuple[int, int, int, int]]:
    """The BPF program for ``policy`` on ``machine``, as (code, jt, jf, k) instructions."""
    arch = _ARCHES[machine]
    nr = arch.syscalls
    deny = SECCOMP_RET_ERRNO | errno.EPERM
    asm = _Assembler()

    asm.load(_OFFSET_ARCH)
    asm.jeq(arch.audit_arch, if_false="kill")
    asm.load(_OFFSET_NR)
    if arch.denies_x32:
        # x32 syscalls carry AUDIT_ARCH_X86_64 too; without this they would bypass the numbers.
        asm.jset(_X32_SYSCALL_BIT, if_true="deny")
    denied = list(_ALWAYS_DENIED)
    if not policy.exec_allowed:
        denied += ["execve", "execveat"]
    if policy.network == "none":
        denied.append("socket")
    for name in denied:
        asm.jeq(nr[name], if_true="deny")
    # clone3 hides its flags behind a pointer BPF cannot follow; ENOSYS makes glibc fall back
    # to clone, whose flags we can check, so threads and subprocesses still work.
    asm.jeq(nr["clone3"], if_true="enosys")
    asm.jeq(nr["clone"], if_true="clone")
    asm.jeq(nr["personality"], if_true="personality")
    if policy.network == "stream":
        asm.jeq(nr["socket"], if_true="socket")
    asm.ret(SECCOMP_RET_ALLOW)

    asm.label("clone")
    asm.load(_arg_low_word(0))  # flags are args[0] on both x86_64 and aarch64
    asm.jset(CLONE_NEW_NAMESPACE_FLAGS, if_true="deny", if_false="allow")

    asm.label("personality")
    asm.load(_arg_low_word(0))
    asm.jeq(_PERSONALITY_QUERY, if_true="allow", if_false="deny")

    if policy.network == "stream":
        asm.label("socket")
        asm.load(_arg_low_word(0))
        asm.jeq(_AF_INET, if_true="socket_type")
        asm.jeq(_AF_INET6, if_true="socket_type", if_false="deny")
        asm.label("socket_type")
        asm.load(_arg_low_word(1))
        asm.and_(0xFFFFFFFF & ~_SOCK_TYPE_FLAGS)
        asm.jeq(_SOCK_STREAM, if_true="allow", if_false="deny")

    asm.label("allow")
    asm.ret(SECCOMP_RET_ALLOW)
    asm.label("deny")
    asm.ret(deny)
    asm.label("enosys")
    asm.ret(SECCOMP_RET_ERRNO | errno.ENOSYS)
    asm.label("kill")
    asm.ret(SECCOMP_RET_KILL_PROCESS)
    return asm.assemble()


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
