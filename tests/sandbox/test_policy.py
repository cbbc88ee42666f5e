"""Scopes → sandbox plan, and the audit-hook guard's decisions (called directly: installing
an audit hook in the test process could never be undone)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from deeting_tui.plugin.scopes import network_hosts, parse_scope
from deeting_tui.sandbox.guard import Guard, SandboxDenied
from deeting_tui.sandbox.policy import (
    NETWORK_ANY,
    NETWORK_NONE,
    NETWORK_PROXY,
    SandboxPlan,
    describe_grants,
    plan_sandbox,
    python_installation,
)

ROOT = Path("/plugins/p/1.0.0")
DATA, CACHE, TMP = Path("/home/u/.d/data/p"), Path("/home/u/.d/cache/p"), Path("/tmp/p")


def plan(*scopes: str, proxy_port: int | None = None) -> SandboxPlan:
    return plan_sandbox(
        list(scopes),
        root=ROOT,
        data_dir=DATA,
        cache_dir=CACHE,
        tmp_dir=TMP,
        home=Path("/home/u"),
        pid=4242,
        proxy_port=proxy_port,
        kernel_pid=77,
    )


def test_no_scope_gives_only_the_baseline() -> None:
    p = plan()
    assert p.network == NETWORK_NONE and not p.exec_allowed and p.proxy_port is None
    assert p.write == (str(DATA), str(CACHE), str(TMP))
    assert str(ROOT) in p.read_exec and "/proc/4242/status" in p.read
    # Its own /proc entries, not the whole folder: no net/ (every socket of the machine's
    # network, the paths of the user's UNIX sockets), no task/, mounts or root link.
    assert not any(path in ("/proc/4242", "/proc/self", "/proc/thread-self") for path in p.read)
    assert not any(path.endswith(("/net", "/task", "/mounts", "/root")) for path in p.read)
    assert set(python_installation()) <= set(p.read_exec)
    assert "/dev/null" in p.devices
    assert "/etc/resolv.conf" not in p.read and "/usr/bin" not in p.read_exec
    assert not p.allows_read("/home/u/.ssh/id_rsa") and not p.allows_write("/etc/passwd")
    assert p.allows_write(str(DATA / "notes.json")) and not p.allows_write(str(DATA) + "-x")


def test_network_scopes() -> None:
    assert network_hosts(["network"]) is None
    assert network_hosts(["network:a.example.com", "shell", "network:a.example.com"]) == (
        "a.example.com",
    )
    assert network_hosts(["shell", "not a scope"]) == ()
    assert plan("network").network == NETWORK_ANY
    hosts = plan("network:api.example.com", proxy_port=4000)
    assert hosts.network == NETWORK_PROXY and hosts.proxy_port == 4000
    assert hosts.proxy_hosts == ("api.example.com",) and "/etc/ssl" in hosts.read
    # Hosts granted but no proxy running: nothing, never everything.
    assert plan("network:api.example.com").network == NETWORK_NONE
    assert plan("network", "network:a.example.com").network == NETWORK_ANY


def test_filesystem_scopes_expand_home_and_keep_their_mode() -> None:
    p = plan("filesystem:read:~/notes", "filesystem:write:/srv/out")
    assert "/home/u/notes" in p.read and "/srv/out" in p.write
    assert p.allows_read("/home/u/notes/a.txt") and not p.allows_write("/home/u/notes/a.txt")
    assert p.allows_write("/srv/out/x")
    everything = plan("filesystem")
    assert "/" in everything.write and everything.allows_write("/anything/at/all")


def test_shell_and_gpu() -> None:
    shell = plan("shell")
    assert shell.exec_allowed and "/usr/bin" in shell.read_exec and "/etc" in shell.read
    gpu = plan("gpu")
    assert not gpu.exec_allowed and "/sys/class/drm" in gpu.read
    assert all(d.startswith(("/dev/nvidia", "/dev/dri", "/dev/")) for d in gpu.devices)


def test_junk_scopes_never_widen_anything() -> None:
    assert plan("netwrk", "filesystem:read:relative/path", "") == plan()


def test_messages_opens_no_os_door() -> None:
    """It is the kernel's consent for delivering what the user types, nothing else."""
    assert plan("messages") == plan()
    assert describe_grants([parse_scope("messages")]) == describe_grants([])


def guard(*scopes: str, proxy_port: int | None = None) -> Guard:
    return Guard("p", plan(*scopes, proxy_port=proxy_port))


def test_guard_reports_the_missing_scope_as_data_not_as_a_command() -> None:
    """The kernel hears the scope itself, to offer the grant as a hint each front end
    phrases; no command is baked into the refusal the plugin (and the user) reads."""
    told: list[tuple[str, str | None]] = []
    g = Guard("p", plan(), lambda message, scope: told.append((message, scope)))
    with pytest.raises(SandboxDenied):
        g._hook("socket.__new__", (None, socket.AF_INET, socket.SOCK_STREAM, 0))
    with pytest.raises(SandboxDenied):
        g._hook("subprocess.Popen", ("/bin/ls", ["ls"], None, None))
    assert [scope for _, scope in told] == ["network", "shell"]
    assert all("deeting plugin" not in message for message, _ in told)


def test_guard_names_the_missing_scope_and_the_command() -> None:
    g = guard()
    with pytest.raises(SandboxDenied, match="has no 'network' permission") as info:
        g._hook("socket.__new__", (None, socket.AF_INET, socket.SOCK_STREAM, 0))
    # The plugin reads plain words; the grant goes to the kernel as the scope (see below).
    assert "declare it in kimai.json, and the user must grant it" in str(info.value)
    with pytest.raises(SandboxDenied, match="has no 'shell' permission: running '/bin/ls'"):
        g._hook("subprocess.Popen", ("/bin/ls", ["ls"], None, None))
    with pytest.raises(SandboxDenied, match=r"filesystem:read:/home/u/\.ssh/id_rsa"):
        g._hook("open", ("/home/u/.ssh/id_rsa", "r", os.O_RDONLY))
    with pytest.raises(SandboxDenied, match="filesystem:write:/etc/passwd"):
        g._hook("open", ("/etc/passwd", None, os.O_WRONLY))
    with pytest.raises(SandboxDenied, match="outside the plugin"):
        g._hook("os.kill", (77, 0))
    assert g.denials == 5


def test_guard_lets_through_what_the_plan_allows() -> None:
    g = guard()
    g._hook("socket.__new__", (None, socket.AF_UNIX, socket.SOCK_STREAM, 0))  # socketpair
    g._hook("open", (str(DATA / "notes.json"), "w", 0))
    g._hook("open", (str(ROOT / "src" / "index.py"), "r", 0))
    g._hook("open", (3, "r", 0))  # an fd it already has
    g._hook("os.kill", (os.getpid(), 0))
    g._hook("compile", (b"x", "<string>"))  # not watched
    assert g.denials == 0
    guard("shell")._hook("os.system", (b"ls",))
    guard("network")._hook("socket.connect", (None, ("10.0.0.1", 80)))


def test_guard_with_host_grants_allows_the_proxy_only() -> None:
    g = guard("network:api.example.com", proxy_port=4000)
    g._hook("socket.__new__", (None, socket.AF_INET, socket.SOCK_STREAM, 0))
    g._hook("socket.connect", (None, ("127.0.0.1", 4000)))
    with pytest.raises(SandboxDenied, match="through the proxy in HTTPS_PROXY"):
        g._hook("socket.connect", (None, ("93.184.216.34", 443)))
    with pytest.raises(SandboxDenied, match="UDP and raw sockets"):
        g._hook("socket.__new__", (None, socket.AF_INET, socket.SOCK_DGRAM, 0))
