"""Classic BPF for seccomp: the return actions, an assembler and the argument checks.

A seccomp filter is a program the kernel runs on every syscall, reading ``struct
seccomp_data`` as 32-bit words. Writing it by hand means typing jump offsets; the assembler
here computes them from named labels and refuses a jump BPF cannot encode. The checks below
are the blocks a rule emits to look at a syscall's arguments (flags, an own pid, a socket's
family and type); each ends in a return and jumps only inside itself.
"""

from __future__ import annotations

import errno

__all__ = [
    "ALLOW",
    "BPF_MAX_INSTRUCTIONS",
    "DENY",
    "OFFSET_ARCH",
    "OFFSET_NR",
    "SECCOMP_RET_ALLOW",
    "SECCOMP_RET_ERRNO",
    "SECCOMP_RET_KILL_PROCESS",
    "Assembler",
    "SeccompError",
    "bounded_fallocate",
    "equals",
    "flags_clear",
    "ip_socket",
    "self_only",
    "tcp_client_socket",
]

SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_ALLOW = 0x7FFF0000


# struct seccomp_data {int nr; u32 arch; u64 instruction_pointer; u64 args[6];}, read as
# 32-bit words. Both supported architectures are little-endian: an argument's low word
# comes first.
OFFSET_NR = 0
OFFSET_ARCH = 4
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
BPF_MAX_INSTRUCTIONS = 4096


_AF_INET, _AF_INET6, _AF_NETLINK = 2, 10, 16
_NETLINK_ROUTE = 0
_SOCK_STREAM = 1
_SOCK_TYPE_FLAGS = 0o4000 | 0o2000000  # SOCK_NONBLOCK | SOCK_CLOEXEC
_IPPROTO_TCP = 6


# fallocate modes that can allocate no more than RLIMIT_FSIZE lets a file hold: plain
# allocation (which also extends the file, so the limit applies) and punching holes.
# FALLOC_FL_KEEP_SIZE on its own allocates past the end with no limit at all, in one call
# (and ZERO_RANGE, INSERT_RANGE and UNSHARE_RANGE are not needed by anyone we know).
_FALLOC_FL_KEEP_SIZE, _FALLOC_FL_PUNCH_HOLE = 0x01, 0x02
_FALLOCATE_MODES = (0, _FALLOC_FL_KEEP_SIZE | _FALLOC_FL_PUNCH_HOLE)


class SeccompError(OSError):
    """Installing the filter or setting no_new_privs failed; no filter was installed."""


class Assembler:
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


ALLOW, DENY = SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO | errno.EPERM


def flags_clear(asm: Assembler, arg: int, mask: int) -> None:
    asm.load(_arg_low_word(arg))
    deny = asm.fresh("deny")
    asm.jset(mask, if_true=deny)
    asm.ret(ALLOW)
    asm.label(deny)
    asm.ret(DENY)


def equals(asm: Assembler, arg: int, values: tuple[int, ...]) -> None:
    """Allow when the argument's low word is one of ``values`` (the kernel reads these
    arguments as 32-bit ints, so the high word never matters to it)."""
    asm.load(_arg_low_word(arg))
    allow = asm.fresh("allow")
    for value in values:
        asm.jeq(value, if_true=allow)
    asm.ret(DENY)
    asm.label(allow)
    asm.ret(ALLOW)


def self_only(
    asm: Assembler, arg: int, own_pid: int, kind_arg: int | None = None, kind: int = 0
) -> None:
    """Allow when ``args[arg]`` names this process (0, or its own pid) — and, for syscalls
    that also say what kind of id that is, when ``args[kind_arg]`` is ``kind``."""
    targets = (0, own_pid) if own_pid else (0,)
    if kind_arg is None:
        equals(asm, arg, targets)
        return
    deny = asm.fresh("deny")
    asm.load(_arg_low_word(kind_arg))
    asm.jeq(kind, if_false=deny)
    equals(asm, arg, targets)
    asm.label(deny)
    asm.ret(DENY)


def bounded_fallocate(asm: Assembler) -> None:
    """Only modes RLIMIT_FSIZE bounds (the disk quota per file); the others fail as a
    filesystem says a mode is not supported, so callers fall back to writing."""
    asm.load(_arg_low_word(1))
    allow = asm.fresh("allow")
    for mode in _FALLOCATE_MODES:
        asm.jeq(mode, if_true=allow)
    asm.ret(SECCOMP_RET_ERRNO | errno.EOPNOTSUPP)
    asm.label(allow)
    asm.ret(ALLOW)


def tcp_client_socket(asm: Assembler) -> None:
    deny = asm.fresh("deny")
    kind = asm.fresh("kind")
    asm.load(_arg_low_word(0))
    asm.jeq(_AF_INET, if_true=kind)
    asm.jeq(_AF_INET6, if_true=kind, if_false=deny)
    asm.label(kind)
    asm.load(_arg_low_word(1))
    asm.and_(0xFFFFFFFF & ~_SOCK_TYPE_FLAGS)
    asm.jeq(_SOCK_STREAM, if_false=deny)
    equals(asm, 2, (0, _IPPROTO_TCP))
    asm.label(deny)
    asm.ret(DENY)


def ip_socket(asm: Assembler) -> None:
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
    asm.ret(ALLOW)
    asm.label(deny)
    asm.ret(DENY)
