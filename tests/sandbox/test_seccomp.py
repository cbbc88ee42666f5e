"""seccomp takes sockets, exec and kernel escape hatches away without breaking threads."""

from __future__ import annotations

import errno
import os
import struct
from collections.abc import Callable
from typing import Any

import pytest

from deeting_tui.sandbox import seccomp

Child = Callable[..., dict[str, Any]]

needs_seccomp = pytest.mark.skipif(
    not seccomp.available(), reason="seccomp filters are not available here"
)
x86_64_only = pytest.mark.skipif(os.uname().machine != "x86_64", reason="x86_64 only")

APPLY = (
    "seccomp.apply(seccomp.SeccompPolicy(params['network'], params['exec_allowed']))\n"
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

RET_ALLOW = seccomp.SECCOMP_RET_ALLOW
RET_EPERM = seccomp.SECCOMP_RET_ERRNO | errno.EPERM
RET_ENOSYS = seccomp.SECCOMP_RET_ERRNO | errno.ENOSYS
RET_KILL = seccomp.SECCOMP_RET_KILL_PROCESS


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


ARCHES = {"x86_64": seccomp._X86_64, "aarch64": seccomp._AARCH64}


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_filter_decisions(machine: str) -> None:
    arch = ARCHES[machine]
    nr = arch.syscalls

    def decide(policy: seccomp.SeccompPolicy, name_or_nr: str | int, *args: int) -> int:
        number = nr[name_or_nr] if isinstance(name_or_nr, str) else name_or_nr
        program = seccomp.filter_program(policy, machine)
        return evaluate(program, seccomp_data(number, arch.audit_arch, *args))

    none = seccomp.SeccompPolicy("none", exec_allowed=False)
    stream = seccomp.SeccompPolicy("stream", exec_allowed=True)
    anything = seccomp.SeccompPolicy("any", exec_allowed=True)
    getpid = 39 if machine == "x86_64" else 172

    assert decide(none, getpid) == RET_ALLOW
    wrong_arch = seccomp.filter_program(none, machine)
    assert evaluate(wrong_arch, seccomp_data(getpid, 0x40000003)) == RET_KILL  # i386
    for name in seccomp._ALWAYS_DENIED:
        assert decide(anything, name) == RET_EPERM, name
    assert decide(none, "execve") == RET_EPERM
    assert decide(none, "execveat") == RET_EPERM
    assert decide(stream, "execve") == RET_ALLOW
    assert decide(none, "clone3") == RET_ENOSYS
    assert decide(none, "clone", 0x003D0F00) == RET_ALLOW  # pthread_create's flags
    assert decide(none, "clone", 0x10000000 | 17) == RET_EPERM  # CLONE_NEWUSER | SIGCHLD
    assert decide(none, "clone", 0x40000000) == RET_EPERM  # CLONE_NEWNET
    assert decide(none, "personality", 0xFFFFFFFF) == RET_ALLOW
    assert decide(none, "personality", 0x0040000) == RET_EPERM  # ADDR_NO_RANDOMIZE

    af_unix, af_inet, af_inet6, af_netlink, af_packet = 1, 2, 10, 16, 17
    stream_type, dgram, raw = 1, 2, 3
    cloexec_nonblock = 0o2000000 | 0o4000
    assert decide(stream, "socket", af_unix, stream_type) == RET_EPERM  # socket files: no
    for family in (af_unix, af_inet, af_inet6):
        assert decide(none, "socket", family, stream_type) == RET_EPERM
    for family in (af_inet, af_inet6):
        assert decide(stream, "socket", family, stream_type) == RET_ALLOW
        assert decide(stream, "socket", family, stream_type | cloexec_nonblock) == RET_ALLOW
        assert decide(stream, "socket", family, dgram | cloexec_nonblock) == RET_EPERM
        assert decide(stream, "socket", family, raw) == RET_EPERM
    assert decide(stream, "socket", af_netlink, stream_type) == RET_EPERM
    assert decide(stream, "socket", af_packet, raw) == RET_EPERM
    assert decide(anything, "socket", af_packet, raw) == RET_ALLOW
    if machine == "x86_64":
        assert decide(anything, 0x40000000 | getpid) == RET_EPERM  # x32 ABI


def test_policy_rejects_unknown_network_mode() -> None:
    with pytest.raises(ValueError):
        seccomp.SeccompPolicy("udp", exec_allowed=False)


def test_unsupported_platform_degrades(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(seccomp, "_machine", lambda: None)
    assert seccomp.available() is False
    assert seccomp.no_new_privs_supported() is False
    with pytest.raises(seccomp.SeccompError) as raised:
        seccomp.apply(seccomp.SeccompPolicy("any", exec_allowed=True))
    assert raised.value.errno == errno.ENOSYS
    with pytest.raises(seccomp.SeccompError):
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
def test_network_stream_allows_only_stream_sockets(child: Child) -> None:
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
""",
        network="stream",
    )
    assert out["inet_stream"] == "ok"
    assert out["inet_stream_nonblock"] == "ok"
    assert out["inet6_stream"] != "PermissionError"  # EAFNOSUPPORT where IPv6 is off
    for name in ("unix_stream", "inet_dgram", "unix_dgram", "raw", "netlink"):
        assert out[name] == "PermissionError", name


@needs_seccomp
def test_network_any_leaves_sockets_alone(child: Child) -> None:
    out = run(
        child,
        'attempt("udp", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).close())\n',
        network="any",
        exec_allowed=True,
    )
    assert out == {"udp": "ok"}


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
seccomp.apply(seccomp.SeccompPolicy("none", False))
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
    nr = seccomp._ARCHES[os.uname().machine].syscalls
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
