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
from .syscall_table import ARCHES as _ARCHES

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
_BPF_MAX_INSTRUCTIONS = 4096

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
# A child whose parent is the worker's parent would be nobody's to reap or kill.
CLONE_PARENT = 0x00008000
_CLONE_REFUSED = CLONE_NEW_NAMESPACE_FLAGS | CLONE_PARENT
_PERSONALITY_QUERY = 0xFFFFFFFF

_AF_INET, _AF_INET6, _AF_NETLINK = 2, 10, 16
_NETLINK_ROUTE = 0
_SOCK_STREAM = 1
_SOCK_TYPE_FLAGS = 0o4000 | 0o2000000  # SOCK_NONBLOCK | SOCK_CLOEXEC
_IPPROTO_TCP = 6
_MSG_FASTOPEN = 0x20000000  # sendto/sendmsg that connects, past connect()'s checks
_PRIO_PROCESS = 0
_IOPRIO_WHO_PROCESS = 1
# fallocate modes that can allocate no more than RLIMIT_FSIZE lets a file hold: plain
# allocation (which also extends the file, so the limit applies) and punching holes.
# FALLOC_FL_KEEP_SIZE on its own allocates past the end with no limit at all, in one call
# (and ZERO_RANGE, INSERT_RANGE and UNSHARE_RANGE are not needed by anyone we know).
_FALLOC_FL_KEEP_SIZE, _FALLOC_FL_PUNCH_HOLE = 0x01, 0x02
_FALLOCATE_MODES = (0, _FALLOC_FL_KEEP_SIZE | _FALLOC_FL_PUNCH_HOLE)

NETWORK_MODES = ("none", "proxy", "any")


_ALWAYS_DENIED = (
    # Kernel attack surface and ways around the other layers.
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "process_madvise",
    "process_mrelease",
    "pidfd_getfd",
    "kcmp",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "open_by_handle_at",
    "name_to_handle_at",
    "keyctl",
    "add_key",
    "request_key",
    # The machine's configuration.
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
    "mount_setattr",
    "fsopen",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "acct",
    "swapon",
    "swapoff",
    "reboot",
    "syslog",
    "sethostname",
    "setdomainname",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "quotactl",
    "quotactl_fd",
    "vhangup",
    # Every process a plugin starts stays in its worker's process group, so that killing
    # the group ends them all (no daemon outlives its plugin).
    "setsid",
    "setpgid",
    # System V IPC outlives its creator and is shared by every process of the user.
    "shmget",
    "shmat",
    "shmdt",
    "shmctl",
    "semget",
    "semop",
    "semtimedop",
    "semctl",
    "msgget",
    "msgsnd",
    "msgrcv",
    "msgctl",
    # POSIX message queues: like System V IPC, they outlive their creator (/dev/mqueue).
    "mq_open",
    "mq_unlink",
    "mq_timedsend",
    "mq_timedreceive",
    "mq_notify",
    "mq_getsetattr",
    # Anonymous files: memory no folder quota sees.
    "memfd_create",
    "memfd_secret",
    # Watching other processes' file access (and, with permission events, blocking it).
    "fanotify_init",
    "fanotify_mark",
)

#: Syscalls that may only act on the calling process (or thread): their target is args[0].
_SELF_ONLY = (
    "prlimit64",
    "sched_setparam",
    "sched_setscheduler",
    "sched_setaffinity",
    "sched_setattr",
    "migrate_pages",
    "move_pages",
)

#: The worker's hot path (the RPC pipe, its event loop, the GIL), allowed before any rule is
#: looked at so that every call does not walk the whole list. None of them may ever have a
#: rule (a test checks).
_FAST_PATH = ("read", "write", "futex", "epoll_wait", "epoll_pwait", "poll", "ppoll")

_NR_PRCTL = {"x86_64": 157, "aarch64": 167}
_NR_SECCOMP = {"x86_64": 317, "aarch64": 277}


class SeccompError(OSError):
    """Installing the filter or setting no_new_privs failed; no filter was installed."""


@dataclass(frozen=True)
class SeccompPolicy:
    """What a worker may still do at the syscall level.

    ``network``: "none" — socket() fails for every family (socketpair() keeps working because
    asyncio's self-pipe needs it), and bind, listen, connect and accept with it; "proxy" —
    socket() only for TCP (AF_INET/AF_INET6, SOCK_STREAM, protocol 0 or IPPROTO_TCP: not
    MPTCP, SCTP, UDP, raw or UNIX), client side only (no bind, listen or accept, no
    MSG_FASTOPEN, which connects without passing connect()'s checks); where the connection
    goes is then Landlock's and the private network namespace's business; "any" — IP
    networking (AF_INET/AF_INET6 of any kind, and NETLINK_ROUTE to read the interfaces),
    servers included, but never a UNIX socket: ssh-agent, docker.sock or D-Bus are not "the
    network", and Landlock cannot stop a connect() to a socket file.

    ``own_pid``: besides 0 ("myself"), the pid that the self-only syscalls (prlimit64,
    setpriority, sched_set*, ioprio_set, migrate_pages, move_pages) may name. ``watch_files``:
    inotify, for plugins granted some filesystem scope; without one there is nothing outside
    its own folders it should learn about, not even when the kernel's files change.
    """

    network: str = "none"
    exec_allowed: bool = False
    own_pid: int = 0
    watch_files: bool = False

    def __post_init__(self) -> None:
        if self.network not in NETWORK_MODES:
            raise ValueError(
                f"seccomp network mode must be one of {NETWORK_MODES}: {self.network!r}"
            )
        if not 0 <= self.own_pid < 2**31:
            raise ValueError(f"seccomp own_pid out of range: {self.own_pid}")


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
        self._fresh = 0

    def fresh(self, name: str) -> str:
        """A label name not used before (each rule's block has its own)."""
        self._fresh += 1
        return f"{name}.{self._fresh}"

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


_ALLOW, _DENY = SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO | errno.EPERM


def _rules(policy: SeccompPolicy, nr: dict[str, int]) -> list[tuple[int, Any]]:
    """(syscall number, how to decide it): an action, or a function emitting a block that
    looks at the arguments and ends in a return. Anything not listed is allowed."""
    rules: list[tuple[int, Any]] = [(nr[name], _DENY) for name in _ALWAYS_DENIED]
    # x86 only: port I/O and the LDT (CAP_SYS_RAWIO, and old kernel attack surface).
    rules += [(nr[name], _DENY) for name in ("iopl", "ioperm", "modify_ldt") if name in nr]
    if not policy.exec_allowed:
        rules += [(nr["execve"], _DENY), (nr["execveat"], _DENY)]
    if not policy.watch_files:
        rules += [(nr[name], _DENY) for name in ("inotify_init", "inotify_init1") if name in nr]
    # clone3 hides its flags behind a pointer BPF cannot follow; ENOSYS makes glibc fall back
    # to clone, whose flags we can check, so threads and subprocesses still work.
    rules.append((nr["clone3"], SECCOMP_RET_ERRNO | errno.ENOSYS))
    rules.append((nr["clone"], lambda asm: _flags_clear(asm, 0, _CLONE_REFUSED)))
    rules.append((nr["personality"], lambda asm: _equals(asm, 0, (_PERSONALITY_QUERY,))))
    own = policy.own_pid
    rules += [(nr[name], lambda asm: _self_only(asm, 0, own)) for name in _SELF_ONLY]
    rules.append((nr["setpriority"], lambda asm: _self_only(asm, 1, own, 0, _PRIO_PROCESS)))
    rules.append((nr["ioprio_set"], lambda asm: _self_only(asm, 1, own, 0, _IOPRIO_WHO_PROCESS)))
    rules.append((nr["fallocate"], _bounded_fallocate))
    rules += _network_rules(policy.network, nr)
    return rules


def _network_rules(mode: str, nr: dict[str, int]) -> list[tuple[int, Any]]:
    servers = ("bind", "listen", "accept", "accept4")
    if mode == "none":
        return [(nr[name], _DENY) for name in ("socket", "connect", *servers)]
    if mode == "proxy":
        return [
            (nr["socket"], _tcp_client_socket),
            *((nr[name], _DENY) for name in servers),
            (nr["sendto"], lambda asm: _flags_clear(asm, 3, _MSG_FASTOPEN)),
            (nr["sendmsg"], lambda asm: _flags_clear(asm, 2, _MSG_FASTOPEN)),
            (nr["sendmmsg"], lambda asm: _flags_clear(asm, 3, _MSG_FASTOPEN)),
        ]
    return [(nr["socket"], _ip_socket)]


def _flags_clear(asm: _Assembler, arg: int, mask: int) -> None:
    asm.load(_arg_low_word(arg))
    deny = asm.fresh("deny")
    asm.jset(mask, if_true=deny)
    asm.ret(_ALLOW)
    asm.label(deny)
    asm.ret(_DENY)


def _equals(asm: _Assembler, arg: int, values: tuple[int, ...]) -> None:
    """Allow when the argument's low word is one of ``values`` (the kernel reads these
    arguments as 32-bit ints, so the high word never matters to it)."""
    asm.load(_arg_low_word(arg))
    allow = asm.fresh("allow")
    for value in values:
        asm.jeq(value, if_true=allow)
    asm.ret(_DENY)
    asm.label(allow)
    asm.ret(_ALLOW)


def _self_only(
    asm: _Assembler, arg: int, own_pid: int, kind_arg: int | None = None, kind: int = 0
) -> None:
    """Allow when ``args[arg]`` names this process (0, or its own pid) — and, for syscalls
    that also say what kind of id that is, when ``args[kind_arg]`` is ``kind``."""
    targets = (0, own_pid) if own_pid else (0,)
    if kind_arg is None:
        _equals(asm, arg, targets)
        return
    deny = asm.fresh("deny")
    asm.load(_arg_low_word(kind_arg))
    asm.jeq(kind, if_false=deny)
    _equals(asm, arg, targets)
    asm.label(deny)
    asm.ret(_DENY)


def _bounded_fallocate(asm: _Assembler) -> None:
    """Only modes RLIMIT_FSIZE bounds (the disk quota per file); the others fail as a
    filesystem says a mode is not supported, so callers fall back to writing."""
    asm.load(_arg_low_word(1))
    allow = asm.fresh("allow")
    for mode in _FALLOCATE_MODES:
        asm.jeq(mode, if_true=allow)
    asm.ret(SECCOMP_RET_ERRNO | errno.EOPNOTSUPP)
    asm.label(allow)
    asm.ret(_ALLOW)


def _tcp_client_socket(asm: _Assembler) -> None:
    deny = asm.fresh("deny")
    kind = asm.fresh("kind")
    asm.load(_arg_low_word(0))
    asm.jeq(_AF_INET, if_true=kind)
    asm.jeq(_AF_INET6, if_true=kind, if_false=deny)
    asm.label(kind)
    asm.load(_arg_low_word(1))
    asm.and_(0xFFFFFFFF & ~_SOCK_TYPE_FLAGS)
    asm.jeq(_SOCK_STREAM, if_false=deny)
    _equals(asm, 2, (0, _IPPROTO_TCP))
    asm.label(deny)
    asm.ret(_DENY)


def _ip_socket(asm: _Assembler) -> None:
    deny = asm.fresh("deny")
    allow = asm.fresh("allow")
    netlink = asm.fresh("netlink")
    asm.load(_arg_low_word(0))
    asm.jeq(_AF_INET, if_true=allow)
    asm.jeq(_AF_INET6, if_true=allow)
    asm.jeq(_AF_NETLINK, if_true=netlink, if_false=deny)
    asm.label(netlink)
    asm.load(_arg_low_word(2))
    asm.jeq(_NETLINK_ROUTE, if_true=allow, if_false=deny)
    asm.label(allow)
    asm.ret(_ALLOW)
    asm.label(deny)
    asm.ret(_DENY)


def filter_program(policy: SeccompPolicy, machine: str) -> list[tuple[int, int, int, int]]:
    """The BPF program for ``policy`` on ``machine``, as (code, jt, jf, k) instructions.

    Shape: check the architecture (anything else is killed), refuse x32, then one
    ``jeq nr`` per rule that skips over the rule's own block when the number differs. Every
    block ends in a return and jumps only inside itself, so no jump is ever long, however
    many rules there are; a syscall no rule names falls through to "allow".
    """
    arch = _ARCHES[machine]
    asm = _Assembler()
    asm.load(_OFFSET_ARCH)
    asm.jeq(arch.audit_arch, if_true=1)
    asm.ret(SECCOMP_RET_KILL_PROCESS)
    asm.load(_OFFSET_NR)
    if arch.denies_x32:
        # x32 syscalls carry AUDIT_ARCH_X86_64 too; without this they would bypass the numbers.
        asm.jset(_X32_SYSCALL_BIT, if_false=1)
        asm.ret(_DENY)
    for name in _FAST_PATH:
        if name in arch.syscalls:
            asm.jeq(arch.syscalls[name], if_false=1)
            asm.ret(_ALLOW)
    for number, action in _rules(policy, arch.syscalls):
        skip = asm.fresh("next")
        asm.jeq(number, if_false=skip)
        if isinstance(action, int):
            asm.ret(action)
        else:
            action(asm)
        asm.label(skip)
    asm.ret(_ALLOW)
    program = asm.assemble()
    if len(program) > _BPF_MAX_INSTRUCTIONS:
        raise SeccompError(errno.E2BIG, f"seccomp: {len(program)} instructions is too many")
    return program


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
