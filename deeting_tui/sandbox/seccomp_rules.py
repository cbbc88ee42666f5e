"""What a sandboxed worker may still do at the syscall level, as a seccomp filter program.

The policy (``SeccompPolicy``) is a plain value the sandbox plan turns into; the tables
below name the syscalls every worker loses and those that may act on its own process only;
``filter_program`` compiles them into BPF for one architecture. Pure: nothing here touches
the running process, so tests evaluate the program directly.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import Any

from .seccomp_bpf import (
    ALLOW,
    BPF_MAX_INSTRUCTIONS,
    DENY,
    OFFSET_ARCH,
    OFFSET_NR,
    SECCOMP_RET_ERRNO,
    SECCOMP_RET_KILL_PROCESS,
    Assembler,
    SeccompError,
    bounded_fallocate,
    equals,
    flags_clear,
    ip_socket,
    self_only,
    tcp_client_socket,
)
from .syscall_table import ARCHES as _ARCHES

__all__ = [
    "CLONE_NEW_NAMESPACE_FLAGS",
    "CLONE_PARENT",
    "NETWORK_MODES",
    "SeccompPolicy",
    "filter_program",
]

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


_MSG_FASTOPEN = 0x20000000  # sendto/sendmsg that connects, past connect()'s checks
_PRIO_PROCESS = 0
_IOPRIO_WHO_PROCESS = 1


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


def _rules(policy: SeccompPolicy, nr: dict[str, int]) -> list[tuple[int, Any]]:
    """(syscall number, how to decide it): an action, or a function emitting a block that
    looks at the arguments and ends in a return. Anything not listed is allowed."""
    rules: list[tuple[int, Any]] = [(nr[name], DENY) for name in _ALWAYS_DENIED]
    # x86 only: port I/O and the LDT (CAP_SYS_RAWIO, and old kernel attack surface).
    rules += [(nr[name], DENY) for name in ("iopl", "ioperm", "modify_ldt") if name in nr]
    if not policy.exec_allowed:
        rules += [(nr["execve"], DENY), (nr["execveat"], DENY)]
    if not policy.watch_files:
        rules += [(nr[name], DENY) for name in ("inotify_init", "inotify_init1") if name in nr]
    # clone3 hides its flags behind a pointer BPF cannot follow; ENOSYS makes glibc fall back
    # to clone, whose flags we can check, so threads and subprocesses still work.
    rules.append((nr["clone3"], SECCOMP_RET_ERRNO | errno.ENOSYS))
    rules.append((nr["clone"], lambda asm: flags_clear(asm, 0, _CLONE_REFUSED)))
    rules.append((nr["personality"], lambda asm: equals(asm, 0, (_PERSONALITY_QUERY,))))
    own = policy.own_pid
    rules += [(nr[name], lambda asm: self_only(asm, 0, own)) for name in _SELF_ONLY]
    rules.append((nr["setpriority"], lambda asm: self_only(asm, 1, own, 0, _PRIO_PROCESS)))
    rules.append((nr["ioprio_set"], lambda asm: self_only(asm, 1, own, 0, _IOPRIO_WHO_PROCESS)))
    rules.append((nr["fallocate"], bounded_fallocate))
    rules += _network_rules(policy.network, nr)
    return rules


def _network_rules(mode: str, nr: dict[str, int]) -> list[tuple[int, Any]]:
    servers = ("bind", "listen", "accept", "accept4")
    if mode == "none":
        return [(nr[name], DENY) for name in ("socket", "connect", *servers)]
    if mode == "proxy":
        return [
            (nr["socket"], tcp_client_socket),
            *((nr[name], DENY) for name in servers),
            (nr["sendto"], lambda asm: flags_clear(asm, 3, _MSG_FASTOPEN)),
            (nr["sendmsg"], lambda asm: flags_clear(asm, 2, _MSG_FASTOPEN)),
            (nr["sendmmsg"], lambda asm: flags_clear(asm, 3, _MSG_FASTOPEN)),
        ]
    return [(nr["socket"], ip_socket)]


def filter_program(policy: SeccompPolicy, machine: str) -> list[tuple[int, int, int, int]]:
    """The BPF program for ``policy`` on ``machine``, as (code, jt, jf, k) instructions.

    Shape: check the architecture (anything else is killed), refuse x32, then one
    ``jeq nr`` per rule that skips over the rule's own block when the number differs. Every
    block ends in a return and jumps only inside itself, so no jump is ever long, however
    many rules there are; a syscall no rule names falls through to "allow".
    """
    arch = _ARCHES[machine]
    asm = Assembler()
    asm.load(OFFSET_ARCH)
    asm.jeq(arch.audit_arch, if_true=1)
    asm.ret(SECCOMP_RET_KILL_PROCESS)
    asm.load(OFFSET_NR)
    if arch.denies_x32:
        # x32 syscalls carry AUDIT_ARCH_X86_64 too; without this they would bypass the numbers.
        asm.jset(_X32_SYSCALL_BIT, if_false=1)
        asm.ret(DENY)
    for name in _FAST_PATH:
        if name in arch.syscalls:
            asm.jeq(arch.syscalls[name], if_false=1)
            asm.ret(ALLOW)
    for number, action in _rules(policy, arch.syscalls):
        skip = asm.fresh("next")
        asm.jeq(number, if_false=skip)
        if isinstance(action, int):
            asm.ret(action)
        else:
            action(asm)
        asm.label(skip)
    asm.ret(ALLOW)
    program = asm.assemble()
    if len(program) > BPF_MAX_INSTRUCTIONS:
        raise SeccompError(errno.E2BIG, f"seccomp: {len(program)} instructions is too many")
    return program
