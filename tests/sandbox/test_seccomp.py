"""seccomp takes sockets, exec and kernel escape hatches away without breaking threads."""

from __future__ import annotations

import errno
import os
import struct
from collections.abc import Callable
from typing import Any

import pytest

from deeting_tui.sandbox import seccomp, seccomp_bpf, seccomp_rules, syscall_table

Child = Callable[..., dict[str, Any]]

needs_seccomp = pytest.mark.skipif(
    not seccomp.available(), reason="seccomp filters are not available here"
)
x86_64_only = pytest.mark.skipif(os.uname().machine != "x86_64", reason="x86_64 only")

APPLY = (
    "seccomp.apply(seccomp_rules.SeccompPolicy(params['network'], params['exec_allowed']))\n"
    "results['applied'] = True\n"
)

SYSCALL = """
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long

def syscall(number, *args):
    ctypes.set_errno(0)
    result = libc.syscall(ctypes.c_long(number), *(ctypes.c_long(a) for a in args))
    return [result, errno_name(ctypes.get_errno()) if result == -1 else None]

def errno_name(value):
    import errno
    return errno.errorcode.get(value, str(value))
"""


def run(
    child: Child, script: str, network: str = "none", exec_allowed: bool = False, **params: Any
) -> Any:
    out = child(APPLY + script, network=network, exec_allowed=exec_allowed, **params)
    assert out.pop("applied") is True
    return out


# --- The filter, run through a small classic-BPF interpreter (covers aarch64 here too) ---

RET_ALLOW = seccomp_bpf.SECCOMP_RET_ALLOW
RET_EPERM = seccomp_bpf.SECCOMP_RET_ERRNO | errno.EPERM
RET_ENOSYS = seccomp_bpf.SECCOMP_RET_ERRNO | errno.ENOSYS
RET_KILL = seccomp_bpf.SECCOMP_RET_KILL_PROCESS


def evaluate(program: list[tuple[int, int, int, int]], data: bytes) -> int:
    accumulator, pc = 0, 0
    while True:
        code, jt, jf, k = program[pc]
        pc += 1
        if code == 0x20:  # ld w abs
            accumulator = struct.unpack_from("<I", data, k)[0]
        elif code == 0x54:  # and k
            accumulator &= k
        elif code == 0x15:  # jeq k
            pc += jt if accumulator == k else jf
        elif code == 0x45:  # jset k
            pc += jt if accumulator & k else jf
        elif code == 0x06:  # ret k
            return k
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")


def seccomp_data(nr: int, arch: int, *args: int) -> bytes:
    padded = (list(args) + [0] * 6)[:6]
    return struct.pack("<iIQ6Q", nr, arch, 0, *padded)


ARCHES = syscall_table.ARCHES


def _decider(machine: str) -> Callable[..., int]:
    arch = ARCHES[machine]

    def decide(policy: seccomp_rules.SeccompPolicy, name_or_nr: str | int, *args: int) -> int:
        number = arch.syscalls[name_or_nr] if isinstance(name_or_nr, str) else name_or_nr
        program = seccomp_rules.filter_program(policy, machine)
        return evaluate(program, seccomp_data(number, arch.audit_arch, *args))

    return decide


MACHINES = pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
AF_UNIX, AF_INET, AF_INET6, AF_NETLINK, AF_PACKET, AF_VSOCK = 1, 2, 10, 16, 17, 40
SOCK_STREAM, SOCK_DGRAM, SOCK_RAW, SOCK_SEQPACKET = 1, 2, 3, 5
CLOEXEC_NONBLOCK = 0o2000000 | 0o4000
IPPROTO_TCP, IPPROTO_SCTP, IPPROTO_MPTCP = 6, 132, 262
MSG_FASTOPEN = 0x20000000


@MACHINES
def test_filter_decisions(machine: str) -> None:
    decide = _decider(machine)
    none = seccomp_rules.SeccompPolicy("none", exec_allowed=False)
    proxy = seccomp_rules.SeccompPolicy("proxy", exec_allowed=True)
    anything = seccomp_rules.SeccompPolicy("any", exec_allowed=True)
    getpid = 39 if machine == "x86_64" else 172

    assert decide(none, getpid) == RET_ALLOW
    wrong_arch = seccomp_rules.filter_program(none, machine)
    assert evaluate(wrong_arch, seccomp_data(getpid, 0x40000003)) == RET_KILL  # i386
    for name in seccomp_rules._ALWAYS_DENIED:
        assert decide(anything, name) == RET_EPERM, name
    assert decide(none, "execve") == RET_EPERM
    assert decide(none, "execveat") == RET_EPERM
    assert decide(proxy, "execve") == RET_ALLOW
    assert decide(none, "clone3") == RET_ENOSYS
    assert decide(none, "clone", 0x003D0F00) == RET_ALLOW  # pthread_create's flags
    assert decide(none, "clone", 0x01200011) == RET_ALLOW  # fork(): CHILD_SETTID|CLEARTID|SIGCHLD
    assert decide(none, "clone", 0x10000000 | 17) == RET_EPERM  # CLONE_NEWUSER | SIGCHLD
    assert decide(none, "clone", 0x40000000) == RET_EPERM  # CLONE_NEWNET
    assert decide(none, "clone", 0x00008000 | 17) == RET_EPERM  # CLONE_PARENT: not ours to reap
    assert decide(none, "personality", 0xFFFFFFFF) == RET_ALLOW
    # fallocate: only what RLIMIT_FSIZE bounds (KEEP_SIZE allocates past it in one call).
    assert decide(none, "fallocate", 3, 0, 0, 1 << 30) == RET_ALLOW  # plain
    assert decide(none, "fallocate", 3, 3, 0, 1 << 30) == RET_ALLOW  # punch a hole
    for mode in (0x01, 0x10, 0x11, 0x20, 0x40):  # keep size, zero, insert, unshare
        not_supported = seccomp_bpf.SECCOMP_RET_ERRNO | errno.EOPNOTSUPP
        assert decide(none, "fallocate", 3, mode) == not_supported
    assert decide(none, "personality", 0x0040000) == RET_EPERM  # ADDR_NO_RANDOMIZE
    if machine == "x86_64":
        assert decide(anything, 0x40000000 | getpid) == RET_EPERM  # x32 ABI


@MACHINES
def test_sockets_by_network_mode(machine: str) -> None:
    decide = _decider(machine)
    none = seccomp_rules.SeccompPolicy("none")
    proxy = seccomp_rules.SeccompPolicy("proxy")
    anything = seccomp_rules.SeccompPolicy("any")
    for family in (AF_UNIX, AF_INET, AF_INET6):
        assert decide(none, "socket", family, SOCK_STREAM) == RET_EPERM
    for name in ("bind", "listen", "connect", "accept", "accept4"):
        assert decide(none, name, 3) == RET_EPERM, name

    # Host grants: TCP clients only, so that the proxy is the only way out.
    for family in (AF_INET, AF_INET6):
        for proto in (0, IPPROTO_TCP):
            assert decide(proxy, "socket", family, SOCK_STREAM, proto) == RET_ALLOW
            assert decide(proxy, "socket", family, SOCK_STREAM | CLOEXEC_NONBLOCK, proto) == (
                RET_ALLOW
            )
        for proto in (IPPROTO_MPTCP, IPPROTO_SCTP, 0x100000006):  # a high word changes nothing
            expected = RET_ALLOW if proto == 0x100000006 else RET_EPERM
            assert decide(proxy, "socket", family, SOCK_STREAM, proto) == expected, proto
        for kind in (SOCK_DGRAM, SOCK_RAW, SOCK_SEQPACKET, SOCK_DGRAM | CLOEXEC_NONBLOCK):
            assert decide(proxy, "socket", family, kind) == RET_EPERM
    for family in (AF_UNIX, AF_NETLINK, AF_PACKET, AF_VSOCK):
        assert decide(proxy, "socket", family, SOCK_STREAM) == RET_EPERM
    for name in ("bind", "listen", "accept", "accept4"):
        assert decide(proxy, name, 3) == RET_EPERM, name
    assert decide(proxy, "connect", 3) == RET_ALLOW
    assert decide(proxy, "sendto", 3, 0, 10, 0) == RET_ALLOW
    assert decide(proxy, "sendto", 3, 0, 10, MSG_FASTOPEN) == RET_EPERM
    assert decide(proxy, "sendmsg", 3, 0, MSG_FASTOPEN | 0x40) == RET_EPERM
    assert decide(proxy, "sendmmsg", 3, 0, 1, MSG_FASTOPEN) == RET_EPERM
    assert decide(proxy, "sendmsg", 3, 0, 0x40) == RET_ALLOW  # MSG_DONTWAIT

    # Plain network: IP of any kind, servers too; never a UNIX socket.
    for family in (AF_INET, AF_INET6):
        for kind in (SOCK_STREAM, SOCK_DGRAM, SOCK_RAW):
            assert decide(anything, "socket", family, kind, IPPROTO_MPTCP) == RET_ALLOW
    assert decide(anything, "socket", AF_NETLINK, SOCK_RAW, 0) == RET_ALLOW  # NETLINK_ROUTE
    assert decide(anything, "socket", AF_NETLINK, SOCK_RAW, 4) == RET_EPERM  # SOCK_DIAG
    for family in (AF_UNIX, AF_PACKET, AF_VSOCK):
        assert decide(anything, "socket", family, SOCK_STREAM) == RET_EPERM
    for name in ("bind", "listen", "connect", "accept4"):
        assert decide(anything, name, 3) == RET_ALLOW, name
    socketpair = 53 if machine == "x86_64" else 199  # asyncio's self-pipe needs it everywhere
    for mode in (none, proxy, anything):
        assert decide(mode, socketpair, AF_UNIX, SOCK_STREAM) == RET_ALLOW


@MACHINES
def test_other_processes_are_out_of_reach(machine: str) -> None:
    decide = _decider(machine)
    policy = seccomp_rules.SeccompPolicy("none", own_pid=4242)
    for name in seccomp_rules._SELF_ONLY:
        assert decide(policy, name, 0) == RET_ALLOW, name
        assert decide(policy, name, 4242) == RET_ALLOW, name
        assert decide(policy, name, 1) == RET_EPERM, name
        assert decide(policy, name, 4243) == RET_EPERM, name
        # The kernel reads a pid_t: the high word is not a way to smuggle another pid past.
        assert decide(policy, name, (1 << 32) | 1) == RET_EPERM, name
    prio_process, prio_pgrp, prio_user = 0, 1, 2
    assert decide(policy, "setpriority", prio_process, 0, 10) == RET_ALLOW
    assert decide(policy, "setpriority", prio_process, 4242, 10) == RET_ALLOW
    assert decide(policy, "setpriority", prio_process, 1, 10) == RET_EPERM
    assert decide(policy, "setpriority", prio_pgrp, 0, 10) == RET_EPERM
    assert decide(policy, "setpriority", prio_user, 0, 10) == RET_EPERM
    who_process, who_pgrp, who_user = 1, 2, 3
    assert decide(policy, "ioprio_set", who_process, 0, 0) == RET_ALLOW
    assert decide(policy, "ioprio_set", who_process, 77, 0) == RET_EPERM
    assert decide(policy, "ioprio_set", who_pgrp, 0, 0) == RET_EPERM
    assert decide(policy, "ioprio_set", who_user, 0, 0) == RET_EPERM
    anyone = seccomp_rules.SeccompPolicy("none")  # no own pid given: only 0 means "me"
    assert decide(anyone, "prlimit64", 0) == RET_ALLOW
    assert decide(anyone, "prlimit64", 4242) == RET_EPERM


@MACHINES
def test_inotify_only_with_a_filesystem_scope(machine: str) -> None:
    decide = _decider(machine)
    watching = seccomp_rules.SeccompPolicy("none", watch_files=True)
    blind = seccomp_rules.SeccompPolicy("none")
    names = [n for n in ("inotify_init", "inotify_init1") if n in ARCHES[machine].syscalls]
    assert names
    for name in names:
        assert decide(watching, name, 0) == RET_ALLOW
        assert decide(blind, name, 0) == RET_EPERM


def _header_numbers(path: str) -> dict[str, int]:
    import re

    numbers: dict[str, int] = {}
    with open(path) as header:
        text = header.read()
    raw = dict(re.findall(r"#define (__NR3264_\w+)\s+(\d+)", text))
    for name, value in re.findall(r"#define __NR_(\w+)\s+(\w+)", text):
        if value.isdigit():
            numbers[name] = int(value)
        elif value in raw:
            numbers[name] = int(raw[value])
    return numbers


@pytest.mark.parametrize(
    ("machine", "header"),
    [
        ("x86_64", "/usr/include/x86_64-linux-gnu/asm/unistd_64.h"),
        ("aarch64", "/usr/include/asm-generic/unistd.h"),
    ],
)
def test_syscall_numbers_match_the_kernel_headers(machine: str, header: str) -> None:
    if not os.path.exists(header):
        pytest.skip(f"{header} is not installed (linux-libc-dev)")
    known = _header_numbers(header)
    ours = ARCHES[machine].syscalls
    checked = {name: number for name, number in ours.items() if name in known}
    assert len(checked) >= len(ours) - 2, sorted(set(ours) - set(known))
    assert {name: known[name] for name in checked} == checked


def test_policy_rejects_unknown_network_mode() -> None:
    with pytest.raises(ValueError):
        seccomp_rules.SeccompPolicy("udp", exec_allowed=False)


def test_unsupported_platform_degrades(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(seccomp, "_machine", lambda: None)
    assert seccomp.available() is False
    assert seccomp.no_new_privs_supported() is False
    with pytest.raises(seccomp_bpf.SeccompError) as raised:
        seccomp.apply(seccomp_rules.SeccompPolicy("any", exec_allowed=True))
    assert raised.value.errno == errno.ENOSYS
    with pytest.raises(seccomp_bpf.SeccompError):
        seccomp.set_no_new_privs()


# --- Applied, in a child ---


@needs_seccomp
def test_network_none_keeps_socketpair_and_asyncio(child: Child) -> None:
    out = run(
        child,
        """
import asyncio

def event_loop():
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(asyncio.sleep(0, result="ran"))
    finally:
        loop.close()

attempt("inet", lambda: socket.socket().close())
attempt("unix", lambda: socket.socket(socket.AF_UNIX).close())
attempt("socketpair", lambda: [s.close() for s in socket.socketpair()] and None)
attempt("loop", event_loop)
""",
    )
    assert out == {
        "inet": "PermissionError",
        "unix": "PermissionError",
        "socketpair": "ok",
        "loop": "ran",
    }


@needs_seccomp
def test_network_proxy_allows_only_tcp_client_sockets(child: Child) -> None:
    out = run(
        child,
        """
def make(family, kind):
    socket.socket(family, kind).close()

attempt("inet_stream", lambda: make(socket.AF_INET, socket.SOCK_STREAM))
attempt("inet_stream_nonblock",
        lambda: make(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK))
attempt("inet6_stream", lambda: make(socket.AF_INET6, socket.SOCK_STREAM))
attempt("unix_stream", lambda: make(socket.AF_UNIX, socket.SOCK_STREAM))
attempt("inet_dgram", lambda: make(socket.AF_INET, socket.SOCK_DGRAM))
attempt("unix_dgram", lambda: make(socket.AF_UNIX, socket.SOCK_DGRAM))
attempt("raw", lambda: make(socket.AF_INET, socket.SOCK_RAW))
attempt("netlink", lambda: make(socket.AF_NETLINK, socket.SOCK_RAW))
attempt("mptcp", lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262).close())
attempt("tcp_explicit", lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM, 6).close())

def listen_unbound():
    with socket.socket() as s:
        s.listen()

def bind_any():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))

attempt("listen", listen_unbound)
attempt("bind", bind_any)
""",
        network="proxy",
    )
    assert out["inet_stream"] == "ok"
    assert out["inet_stream_nonblock"] == "ok"
    assert out["inet6_stream"] != "PermissionError"  # EAFNOSUPPORT where IPv6 is off
    assert out["tcp_explicit"] == "ok"
    for name in ("unix_stream", "inet_dgram", "unix_dgram", "raw", "netlink", "mptcp"):
        assert out[name] == "PermissionError", name
    assert out["listen"] == "PermissionError"  # not even autobind on 0.0.0.0
    assert out["bind"] == "PermissionError"


@needs_seccomp
def test_network_any_is_ip_not_unix_sockets(child: Child) -> None:
    out = run(
        child,
        """
def serve():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()

attempt("udp", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).close())
attempt("server", serve)
attempt("unix", lambda: socket.socket(socket.AF_UNIX).close())
attempt("unix_dgram", lambda: socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).close())
attempt("socketpair", lambda: [s.close() for s in socket.socketpair()] and None)
""",
        network="any",
        exec_allowed=True,
    )
    assert out == {
        "udp": "ok",
        "server": "ok",
        "unix": "PermissionError",
        "unix_dgram": "PermissionError",
        "socketpair": "ok",
    }


EXEC = """
attempt("subprocess", lambda: subprocess.run(["/bin/true"]).returncode)
pid = os.fork()
if pid == 0:
    try:
        os.execv("/bin/true", ["/bin/true"])
    except PermissionError:
        os._exit(13)
    os._exit(99)
results["execv_exit"] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
"""


@needs_seccomp
def test_exec_denied(child: Child) -> None:
    out = run(child, EXEC + 'attempt("execv", lambda: os.execv("/bin/true", ["true"]))\n')
    assert out == {"subprocess": "PermissionError", "execv_exit": 13, "execv": "PermissionError"}


@needs_seccomp
def test_exec_allowed(child: Child) -> None:
    out = run(child, EXEC, exec_allowed=True)
    assert out == {"subprocess": 0, "execv_exit": 0}


@needs_seccomp
def test_threads_work_and_are_filtered_too(child: Child) -> None:
    out = child(
        """
go = threading.Event()
seen = {}

def early():
    go.wait()
    try:
        socket.socket().close()
        seen["early"] = "ok"
    except OSError as exc:
        seen["early"] = type(exc).__name__

before = threading.Thread(target=early)
before.start()
seccomp.apply(seccomp_rules.SeccompPolicy("none", False))
go.set()
before.join()
results["early_thread_socket"] = seen["early"]

def late():
    seen["late"] = "ran"

after = threading.Thread(target=late)
after.start()
after.join()
results["late_thread"] = seen.get("late")
with open("/proc/self/status") as status:
    results["no_new_privs"] = [l.split()[1] for l in status if l.startswith("NoNewPrivs")][0]
"""
    )
    assert out == {
        "early_thread_socket": "PermissionError",
        "late_thread": "ran",
        "no_new_privs": "1",
    }


@needs_seccomp
def test_escape_hatches_are_closed(child: Child) -> None:
    nr = syscall_table.ARCHES[os.uname().machine].syscalls
    out = run(
        child,
        SYSCALL
        + """
nr = params["nr"]
results["unshare_user"] = syscall(nr["unshare"], 0x10000000)
results["unshare_net"] = syscall(nr["unshare"], 0x40000000)
result = syscall(nr["clone"], 0x10000000 | 17, 0, 0, 0, 0)  # CLONE_NEWUSER | SIGCHLD
if result[0] == 0:
    os._exit(0)  # only if the filter failed open
results["clone_newuser"] = result
results["clone3"] = syscall(nr["clone3"], 0, 0)
results["ptrace"] = syscall(nr["ptrace"], 0)  # PTRACE_TRACEME
results["io_uring"] = syscall(nr["io_uring_setup"], 1, 0)
results["bpf"] = syscall(nr["bpf"], 0, 0, 0)
results["mount"] = syscall(nr["mount"], 0, 0, 0, 0, 0)
results["personality_query"] = syscall(nr["personality"], 0xFFFFFFFF)[1]
results["personality_set"] = syscall(nr["personality"], 0x0040000)
pid = os.fork()
if pid == 0:
    os._exit(7)
results["fork"] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
""",
        nr=nr,
    )
    for name in (
        "unshare_user",
        "unshare_net",
        "clone_newuser",
        "ptrace",
        "io_uring",
        "bpf",
        "mount",
        "personality_set",
    ):
        assert out[name] == [-1, "EPERM"], name
    assert out["clone3"] == [-1, "ENOSYS"]
    assert out["personality_query"] is None
    assert out["fork"] == 7


@needs_seccomp
@x86_64_only
def test_x32_syscalls_are_refused(child: Child) -> None:
    out = run(child, SYSCALL + 'results["x32_getpid"] = syscall(0x40000000 | 39)\n')
    assert out == {"x32_getpid": [-1, "EPERM"]}


@needs_seccomp
def test_no_new_privs_is_set(child: Child) -> None:
    out = child(
        """
seccomp.set_no_new_privs()
seccomp.set_no_new_privs()  # idempotent
with open("/proc/self/status") as status:
    results["no_new_privs"] = [l.split()[1] for l in status if l.startswith("NoNewPrivs")][0]
"""
    )
    assert out == {"no_new_privs": "1"}


@needs_seccomp
def test_other_processes_ipc_and_sessions_are_refused_live(child: Child) -> None:
    import resource

    nr = syscall_table.ARCHES[os.uname().machine].syscalls
    parent = os.getpid()
    before = (os.getpriority(os.PRIO_PROCESS, parent), resource.getrlimit(resource.RLIMIT_FSIZE))
    out = child(
        SYSCALL
        + """
import resource
nr, parent = params["nr"], params["parent"]
seccomp.apply(seccomp_rules.SeccompPolicy("none", own_pid=os.getpid()))
attempt("setsid", os.setsid)
attempt("setpgid", lambda: os.setpgid(0, 0))
attempt("prlimit_parent", lambda: resource.prlimit(parent, resource.RLIMIT_FSIZE, (1, 1)))
attempt("prlimit_self", lambda: resource.prlimit(0, resource.RLIMIT_CORE, (0, 0)) and None)
attempt("prlimit_own_pid", lambda: resource.prlimit(os.getpid(), resource.RLIMIT_CORE) and None)
attempt("renice_parent", lambda: os.setpriority(os.PRIO_PROCESS, parent, 19))
attempt("renice_group", lambda: os.setpriority(os.PRIO_PGRP, 0, 19))
attempt("renice_user", lambda: os.setpriority(os.PRIO_USER, os.getuid(), 19))
attempt("renice_self", lambda: os.setpriority(os.PRIO_PROCESS, 0, 1))
attempt("affinity_parent", lambda: os.sched_setaffinity(parent, {0}))
attempt("affinity_self", lambda: os.sched_setaffinity(0, os.sched_getaffinity(0)))
attempt("idle_parent", lambda: os.sched_setscheduler(parent, os.SCHED_IDLE, os.sched_param(0)))
results["ioprio_parent"] = syscall(nr["ioprio_set"], 1, parent, (3 << 13))
results["ioprio_self"] = syscall(nr["ioprio_set"], 1, 0, (2 << 13) | 4)
results["shmget"] = syscall(nr["shmget"], 0, 64 << 20, 0o1600)  # IPC_PRIVATE | IPC_CREAT
results["semget"] = syscall(nr["semget"], 0, 1, 0o1600)
results["msgget"] = syscall(nr["msgget"], 0, 0o1600)
attempt("memfd", lambda: os.close(os.memfd_create("x")))
results["fanotify"] = syscall(nr["fanotify_init"], 0, 0)
attempt("inotify", lambda: os.close(os.inotify_init()) if hasattr(os, "inotify_init") else None)

import ctypes  # libffi closures still work without memfd_create
callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int)(lambda x: x * 2)
results["ctypes_callback"] = callback(21)
""",
        nr=nr,
        parent=parent,
    )
    for name in (
        "setsid",
        "setpgid",
        "prlimit_parent",
        "renice_parent",
        "renice_group",
        "renice_user",
        "affinity_parent",
        "idle_parent",
        "memfd",
    ):
        assert out[name] == "PermissionError", (name, out[name])
    for name in ("prlimit_self", "prlimit_own_pid", "renice_self", "affinity_self"):
        assert out[name] == "ok", (name, out[name])
    for name in ("ioprio_parent", "shmget", "semget", "msgget", "fanotify"):
        assert out[name] == [-1, "EPERM"], (name, out[name])
    assert out["ioprio_self"] == [0, None]
    assert out["ctypes_callback"] == 42
    after = (os.getpriority(os.PRIO_PROCESS, parent), resource.getrlimit(resource.RLIMIT_FSIZE))
    assert after == before  # the test process itself was not touched


@needs_seccomp
def test_proxy_mode_refuses_tcp_fast_open(child: Child) -> None:
    out = run(
        child,
        """
def fast_open():
    with socket.socket() as s:
        s.sendto(b"GET / HTTP/1.0\\r\\n\\r\\n", 0x20000000, ("127.0.0.1", 9))

attempt("sendto_fastopen", fast_open)
""",
        network="proxy",
    )
    assert out == {"sendto_fastopen": "PermissionError"}


@MACHINES
def test_the_fast_path_never_shadows_a_rule(machine: str) -> None:
    nr = ARCHES[machine].syscalls
    for policy in (
        seccomp_rules.SeccompPolicy(network, exec_allowed, 4242, watch)
        for network in seccomp_rules.NETWORK_MODES
        for exec_allowed in (False, True)
        for watch in (False, True)
    ):
        ruled = {number for number, _ in seccomp_rules._rules(policy, nr)}
        fast = {nr[name] for name in seccomp_rules._FAST_PATH if name in nr}
        assert fast and not fast & ruled
        decide = _decider(machine)
        for name in seccomp_rules._FAST_PATH:
            if name in nr:
                assert decide(policy, name, 0, 0, 0) == RET_ALLOW
