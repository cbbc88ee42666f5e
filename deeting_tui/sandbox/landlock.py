"""Landlock: the kernel layer that confines a worker's filesystem, TCP ports and IPC scopes.

Landlock is deny-by-default for every access right a ruleset *handles*, so ``apply`` handles
every filesystem right the running kernel's ABI knows: a right this module forgets to list
would silently stay open. Rights that only newer ABIs know are masked away rather than
requested, so one policy works from ABI 1 up.

The calls go through ``syscall(2)`` with ctypes because glibc has no Landlock wrappers.
ctypes is imported inside the functions: the worker imports this module on its start-up path,
and a process that never sandboxes itself should not pay for ctypes.

Only x86_64 and aarch64 (little-endian, 64-bit) are supported: the syscall numbers below are
the shared "generic" numbers both use, and the struct layouts are checked for them. Anywhere
else ``abi_version()`` says 0 and ``apply`` does nothing.
"""

from __future__ import annotations

import errno
import os
import stat
import struct
import sys
from dataclasses import dataclass
from typing import Any

from . import syscalls

# Same numbers on x86_64 (arch/x86/entry/syscalls/syscall_64.tbl) and aarch64
# (include/uapi/asm-generic/unistd.h): syscalls added after 5.1 share one numbering.
NR_LANDLOCK_CREATE_RULESET = 444
NR_LANDLOCK_ADD_RULE = 445
NR_LANDLOCK_RESTRICT_SELF = 446

LANDLOCK_CREATE_RULESET_VERSION = 1 << 0

LANDLOCK_RULE_PATH_BENEATH = 1
LANDLOCK_RULE_NET_PORT = 2

# include/uapi/linux/landlock.h, with the ABI that introduced each right.
ACCESS_FS_EXECUTE = 1 << 0
ACCESS_FS_WRITE_FILE = 1 << 1
ACCESS_FS_READ_FILE = 1 << 2
ACCESS_FS_READ_DIR = 1 << 3
ACCESS_FS_REMOVE_DIR = 1 << 4
ACCESS_FS_REMOVE_FILE = 1 << 5
ACCESS_FS_MAKE_CHAR = 1 << 6
ACCESS_FS_MAKE_DIR = 1 << 7
ACCESS_FS_MAKE_REG = 1 << 8
ACCESS_FS_MAKE_SOCK = 1 << 9
ACCESS_FS_MAKE_FIFO = 1 << 10
ACCESS_FS_MAKE_BLOCK = 1 << 11
ACCESS_FS_MAKE_SYM = 1 << 12
ACCESS_FS_REFER = 1 << 13  # ABI 2
ACCESS_FS_TRUNCATE = 1 << 14  # ABI 3
ACCESS_FS_IOCTL_DEV = 1 << 15  # ABI 5

ACCESS_NET_BIND_TCP = 1 << 0  # ABI 4
ACCESS_NET_CONNECT_TCP = 1 << 1  # ABI 4

SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
SCOPE_SIGNAL = 1 << 1  # ABI 6

FIRST_ABI_WITH_REFER = 2
FIRST_ABI_WITH_TRUNCATE = 3
FIRST_ABI_WITH_NET = 4
FIRST_ABI_WITH_IOCTL_DEV = 5
FIRST_ABI_WITH_SCOPES = 6

_ALL_ABI1_FS_RIGHTS = (1 << 13) - 1  # EXECUTE .. MAKE_SYM

# The kernel rejects (EINVAL) a rule on a non-directory that carries directory-only rights.
_FILE_APPLICABLE_RIGHTS = (
    ACCESS_FS_EXECUTE
    | ACCESS_FS_WRITE_FILE
    | ACCESS_FS_READ_FILE
    | ACCESS_FS_TRUNCATE
    | ACCESS_FS_IOCTL_DEV
)

_READ_RIGHTS = ACCESS_FS_READ_FILE | ACCESS_FS_READ_DIR
# Never MAKE_CHAR or MAKE_BLOCK, whatever is granted: a device node made in a writable folder
# (/dev/kmsg's numbers, a disk's) is a door to the device itself, not a file. Creating one
# also needs CAP_MKNOD, which workers drop, but this layer must not rely on that one.
_WRITE_RIGHTS = (
    (_ALL_ABI1_FS_RIGHTS & ~(ACCESS_FS_EXECUTE | ACCESS_FS_MAKE_CHAR | ACCESS_FS_MAKE_BLOCK))
    | ACCESS_FS_REFER
    | ACCESS_FS_TRUNCATE
    | ACCESS_FS_IOCTL_DEV
)
_DEVICE_RIGHTS = (
    ACCESS_FS_READ_FILE | ACCESS_FS_WRITE_FILE | ACCESS_FS_READ_DIR | ACCESS_FS_IOCTL_DEV
)

# landlock_ruleset_attr grew a u64 per feature; the kernel rejects fields it does not know
# unless they are zero, so we pass exactly the prefix the running ABI understands.
_RULESET_ATTR = struct.Struct("=QQQ")
_PATH_BENEATH_ATTR = struct.Struct("=Qi")  # __attribute__((packed)): 12 bytes
_NET_PORT_ATTR = struct.Struct("=QQ")

_SUPPORTED_MACHINES = frozenset({"x86_64", "aarch64"})


class LandlockError(OSError):
    """A Landlock syscall failed while building or enforcing a ruleset.

    An OSError so callers can read ``errno``. Landlock is never left half-applied: restriction
    happens in the single final syscall (no_new_privs may already be set by then).
    """


@dataclass(frozen=True)
class LandlockRules:
    """What a sandboxed process may touch; everything else the ABI can restrict is denied.

    Paths may be files or directories; a directory grants its whole subtree. Paths that do
    not exist are skipped, so a policy can name optional locations.
    ``tcp_connect_ports`` / ``tcp_bind_ports``: None leaves that kind of TCP traffic
    unrestricted; a tuple (even empty) allows only those ports. TCP rules need ABI 4, scopes
    ABI 6; on older kernels those parts are not enforced.
    """

    read: tuple[str, ...] = ()
    read_exec: tuple[str, ...] = ()
    write: tuple[str, ...] = ()
    write_exec: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()
    tcp_connect_ports: tuple[int, ...] | None = None
    tcp_bind_ports: tuple[int, ...] | None = None
    scope_signals: bool = False
    scope_abstract_unix: bool = False


def _platform_supported() -> bool:
    return (
        sys.platform == "linux"
        and sys.maxsize > 2**32
        and sys.byteorder == "little"
        and os.uname().machine in _SUPPORTED_MACHINES
    )


def abi_version() -> int:
    """The highest Landlock ABI the kernel offers, or 0 when Landlock cannot be used here.

    0 covers non-Linux systems, other architectures, kernels built without Landlock (ENOSYS)
    and kernels where it is compiled in but not enabled at boot (EOPNOTSUPP).
    """
    if not _platform_supported():
        return 0
    try:
        import ctypes

        libc = syscalls.libc()
        result, _ = syscalls.syscall(
            libc,
            NR_LANDLOCK_CREATE_RULESET,
            ctypes.c_void_p(None),
            ctypes.c_size_t(0),
            ctypes.c_uint32(LANDLOCK_CREATE_RULESET_VERSION),
        )
    except Exception:
        return 0
    return max(result, 0)


def handled_fs_rights(abi: int) -> int:
    """Every filesystem right ``abi`` knows, i.e. everything a ruleset can deny there."""
    if abi < 1:
        return 0
    rights = _ALL_ABI1_FS_RIGHTS
    if abi >= FIRST_ABI_WITH_REFER:
        rights |= ACCESS_FS_REFER
    if abi >= FIRST_ABI_WITH_TRUNCATE:
        rights |= ACCESS_FS_TRUNCATE
    if abi >= FIRST_ABI_WITH_IOCTL_DEV:
        rights |= ACCESS_FS_IOCTL_DEV
    return rights


def _ruleset_attr_size(abi: int) -> int:
    if abi >= FIRST_ABI_WITH_SCOPES:
        return 24
    if abi >= FIRST_ABI_WITH_NET:
        return 16
    return 8


def _path_grants(rules: LandlockRules, handled_fs: int) -> dict[str, int]:
    """Path -> rights; a path named in several lists gets the union."""
    grants: dict[str, int] = {}
    for paths, rights in (
        (rules.read, _READ_RIGHTS),
        (rules.read_exec, _READ_RIGHTS | ACCESS_FS_EXECUTE),
        (rules.write, _WRITE_RIGHTS),
        (rules.write_exec, _WRITE_RIGHTS | ACCESS_FS_EXECUTE),
        (rules.devices, _DEVICE_RIGHTS),
    ):
        for path in paths:
            grants[path] = grants.get(path, 0) | (rights & handled_fs)
    return grants


def _port_grants(rules: LandlockRules) -> dict[int, int]:
    grants: dict[int, int] = {}
    for ports, right in (
        (rules.tcp_connect_ports, ACCESS_NET_CONNECT_TCP),
        (rules.tcp_bind_ports, ACCESS_NET_BIND_TCP),
    ):
        for port in ports or ():
            if not 0 <= port <= 0xFFFF:
                raise LandlockError(errno.EINVAL, f"landlock: TCP port out of range: {port}")
            grants[port] = grants.get(port, 0) | right
    return grants


def _open_path(path: str) -> int | None:
    """An O_PATH fd for ``path``, or None when it does not exist (the rule is then skipped)."""
    flags = getattr(os, "O_PATH", 0o10000000) | os.O_CLOEXEC
    try:
        return os.open(path, flags)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise LandlockError(
            exc.errno or errno.EIO, f"landlock: open({path!r}, O_PATH) failed: {exc.strerror}"
        ) from exc


def _fail(call: str, err: int) -> LandlockError:
    return LandlockError(
        err, f"landlock: {call} failed: {errno.errorcode.get(err, err)} ({os.strerror(err)})"
    )


def apply(rules: LandlockRules) -> int:
    """Restrict the calling thread, and every process it later creates, to ``rules``.

    Irreversible. Landlock binds the calling *thread* only: call this before the process
    starts any thread (asyncio's default executor, a logging thread...), or the other threads
    stay unrestricted. Sets PR_SET_NO_NEW_PRIVS first (idempotent), which Landlock requires
    from callers without CAP_SYS_ADMIN. Returns the ABI enforced, or 0 without doing anything
    when Landlock is unavailable. Raises LandlockError if a syscall fails.
    """
    abi = abi_version()
    if abi == 0:
        return 0

    import ctypes

    from deeting_tui.sandbox.seccomp import set_no_new_privs
    from deeting_tui.sandbox.seccomp_bpf import SeccompError

    handled_fs = handled_fs_rights(abi)
    handled_net = 0
    if abi >= FIRST_ABI_WITH_NET:
        if rules.tcp_connect_ports is not None:
            handled_net |= ACCESS_NET_CONNECT_TCP
        if rules.tcp_bind_ports is not None:
            handled_net |= ACCESS_NET_BIND_TCP
    scoped = 0
    if abi >= FIRST_ABI_WITH_SCOPES:
        if rules.scope_signals:
            scoped |= SCOPE_SIGNAL
        if rules.scope_abstract_unix:
            scoped |= SCOPE_ABSTRACT_UNIX_SOCKET
    port_grants = _port_grants(rules) if handled_net else {}

    libc = syscalls.libc()
    ruleset = ctypes.create_string_buffer(_RULESET_ATTR.pack(handled_fs, handled_net, scoped))
    ruleset_fd, err = syscalls.syscall(
        libc,
        NR_LANDLOCK_CREATE_RULESET,
        ruleset,
        ctypes.c_size_t(_ruleset_attr_size(abi)),
        ctypes.c_uint32(0),
    )
    if ruleset_fd < 0:
        raise _fail("landlock_create_ruleset", err)
    try:
        for path, rights in _path_grants(rules, handled_fs).items():
            _add_path_rule(libc, ruleset_fd, path, rights)
        for port, rights in port_grants.items():
            attr = _NET_PORT_ATTR.pack(rights & handled_net, port)
            _add_rule(libc, ruleset_fd, LANDLOCK_RULE_NET_PORT, attr, f"NET_PORT {port}")
        try:
            set_no_new_privs()
        except SeccompError as exc:
            raise LandlockError(exc.errno or errno.EPERM, f"landlock: {exc.strerror}") from exc
        result, err = syscalls.syscall(
            libc, NR_LANDLOCK_RESTRICT_SELF, ctypes.c_int(ruleset_fd), ctypes.c_uint32(0)
        )
        if result != 0:
            raise _fail("landlock_restrict_self", err)
    finally:
        os.close(ruleset_fd)
    return abi


def _add_path_rule(libc: Any, ruleset_fd: int, path: str, rights: int) -> None:

    fd = _open_path(path)
    if fd is None:
        return
    try:
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            rights &= _FILE_APPLICABLE_RIGHTS
        if rights == 0:  # the kernel answers ENOMSG to an empty rule
            return
        attr = _PATH_BENEATH_ATTR.pack(rights, fd)
        _add_rule(libc, ruleset_fd, LANDLOCK_RULE_PATH_BENEATH, attr, f"PATH_BENEATH {path!r}")
    finally:
        os.close(fd)


def _add_rule(libc: Any, ruleset_fd: int, rule_type: int, attr: bytes, what: str) -> None:
    """landlock_add_rule(2) with one packed rule attribute; raises LandlockError naming it."""
    import ctypes

    result, err = syscalls.syscall(
        libc,
        NR_LANDLOCK_ADD_RULE,
        ctypes.c_int(ruleset_fd),
        ctypes.c_int(rule_type),
        ctypes.create_string_buffer(attr),
        ctypes.c_uint32(0),
    )
    if result != 0:
        raise _fail(f"landlock_add_rule({what})", err)
