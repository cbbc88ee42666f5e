"""The escape suite: a hostile plugin tries every way out we know of, through the real kernel
and a real sandboxed worker. Without the matching scope each attempt must fail and the kernel
must keep serving; with the scope it must succeed (network to the granted host only).

Run as root by .ci/run, and again as an unprivileged user by test_unprivileged.py."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support import HOSTILE, hello, install_hostile, pong

from deeting_tui.kernel.events import PluginNotice
from deeting_tui.kernel.kernel import Kernel
from deeting_tui.sandbox.probe import probe
from deeting_tui.workers.supervisor import Supervisor

ESCAPE = HOSTILE / "escape"
SECRET_KEY = "sk-ant-escape-test-secret"

NETWORK = ("tcp", "asyncio_tcp", "raw_socket", "udp", "unix", "ctypes_connect")
PROGRAMS = (
    "subprocess",
    "os_system",
    "execv",
    "reexec_python",
    "posixsubprocess",
    "ctypes_system",
    "cffi_system",
)
READ = ("read_secret", "dir_fd")
WRITE = ("write_outside",)
NEVER = ("kill_kernel", "env_secret")
ALL = (*NETWORK, *PROGRAMS, *READ, *WRITE, *NEVER)

enforced = pytest.mark.skipif(
    not (probe().landlock_abi and probe().seccomp),
    reason=f"this machine cannot enforce the sandbox ({probe().level})",
)


@dataclass
class World:
    """What the plugin tries to reach, all of it outside its folders."""

    tcp_port: int
    udp_port: int
    unix_path: str
    http_port: int
    secret: Path
    outside: Path

    def args(self, what: str, kernel_pid: int) -> dict[str, Any]:
        args: dict[str, Any] = {"what": what}
        if what in ("tcp", "asyncio_tcp", "raw_socket", "ctypes_connect"):
            args["port"] = self.tcp_port
        elif what == "udp":
            args["port"] = self.udp_port
        elif what == "unix":
            args["path"] = self.unix_path
        elif what in READ:
            args["path"] = str(self.secret)
        elif what in WRITE:
            args["path"] = str(self.outside / "escaped.txt")
        elif what == "kill_kernel":
            args["pid"] = kernel_pid
        return args


@pytest.fixture
async def world(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[World]:
    user_home = tmp_path / "user-home"
    (user_home / ".ssh").mkdir(parents=True)
    secret = user_home / ".ssh" / "id_secret"
    secret.write_text("the user's private key\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    monkeypatch.setenv("HOME", str(user_home))  # the user's home, as the kernel sees it
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET_KEY)
    monkeypatch.setenv("GITHUB_TOKEN", SECRET_KEY)
    tcp = await asyncio.start_server(pong, "127.0.0.1", 0)
    http = await asyncio.start_server(hello, "127.0.0.1", 0)
    unix_path = str(outside / "service.sock")
    unix = await asyncio.start_unix_server(pong, unix_path)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    try:
        yield World(
            tcp.sockets[0].getsockname()[1],
            udp.getsockname()[1],
            unix_path,
            http.sockets[0].getsockname()[1],
            secret,
            outside,
        )
    finally:
        udp.close()
        for server in (tcp, http, unix):
            server.close()
            await server.wait_closed()


async def _attempt(supervisor: Supervisor, world: World, what: str) -> dict[str, Any]:
    result = await supervisor.invoke("attempt", world.args(what, os.getpid()))
    data: dict[str, Any] = result["data"]
    return data


async def _attempts(supervisor: Supervisor, world: World, names: tuple[str, ...]) -> dict[str, Any]:
    return {what: await _attempt(supervisor, world, what) for what in names}


@enforced
async def test_without_scopes_every_attempt_fails_and_the_kernel_serves_on(
    kernel: Kernel, world: World, tmp_path: Path
) -> None:
    supervisor = await install_hostile(kernel, ESCAPE, tmp_path, [])
    pid = supervisor.pid
    results = await _attempts(supervisor, world, ALL)
    escaped = {what: r["detail"] for what, r in results.items() if r["ok"]}
    assert escaped == {}, escaped
    assert not (world.outside / "escaped.txt").exists()
    # Nothing crashed: the same worker answers, and the guard logged its denials.
    assert supervisor.pid == pid and supervisor.state == "ready"
    again = await _attempt(supervisor, world, "env_secret")
    assert again == {"what": "env_secret", "ok": False, "detail": "nothing"}
    log = kernel.paths.plugin_log("escape").read_text()
    assert "denied: opening a network socket (needs network)" in log
    assert "needs shell" in log
    assert supervisor.sandbox is not None
    assert supervisor.sandbox["level"] == f"enforced: landlock {probe().landlock_abi} + seccomp"


@enforced
async def test_denials_name_the_missing_scope(kernel: Kernel, world: World, tmp_path: Path) -> None:
    supervisor = await install_hostile(kernel, ESCAPE, tmp_path, [])
    tcp = await _attempt(supervisor, world, "tcp")
    assert "has no 'network' permission" in tcp["detail"]
    # The plugin reads plain words; the grant reaches the user as a hint (test_escape_hints).
    assert "the user must grant it" in tcp["detail"] and "deeting plugin" not in tcp["detail"]
    run = await _attempt(supervisor, world, "subprocess")
    assert "has no 'shell' permission" in run["detail"]
    read = await _attempt(supervisor, world, "read_secret")
    assert f"filesystem:read:{world.secret}" in read["detail"]
    # Past the guard (raw libc), the OS answers: still refused.
    raw = await _attempt(supervisor, world, "ctypes_connect")
    assert not raw["ok"] and "errno 1" in raw["detail"]  # EPERM from seccomp


@enforced
@pytest.mark.parametrize(
    ("scope", "opened"),
    [
        ("network", tuple(n for n in NETWORK if n != "unix")),  # IP only: never a UNIX socket
        ("shell", PROGRAMS),
        ("filesystem:read:~/.ssh", READ),
        ("filesystem:write:{outside}", WRITE),
    ],
)
async def test_a_scope_opens_exactly_its_doors(
    kernel: Kernel, world: World, tmp_path: Path, scope: str, opened: tuple[str, ...]
) -> None:
    supervisor = await install_hostile(
        kernel, ESCAPE, tmp_path, [scope.format(outside=world.outside)]
    )
    results = await _attempts(supervisor, world, ALL)
    worked = {what for what, r in results.items() if r["ok"]}
    details = {what: r["detail"] for what, r in results.items()}
    assert worked == set(opened), details


@enforced
async def test_a_host_grant_reaches_that_host_only(
    kernel: Kernel, world: World, tmp_path: Path
) -> None:
    supervisor = await install_hostile(kernel, ESCAPE, tmp_path, ["network:127.0.0.1"])
    port = world.http_port
    allowed = await supervisor.invoke(
        "attempt", {"what": "proxy_get", "url": f"http://127.0.0.1:{port}/"}
    )
    assert allowed["data"]["ok"], allowed["data"]
    other = await supervisor.invoke(
        "attempt", {"what": "proxy_get", "url": f"http://localhost:{port}/"}
    )
    assert not other["data"]["ok"] and "403" in other["data"]["detail"]
    # Plain TCP clients reach the granted host too, tunnelled through the proxy; nothing else
    # does: not another host, not UDP, not UNIX sockets, not code that goes around socket.py.
    direct = await _attempts(supervisor, world, NETWORK)
    assert {what for what, r in direct.items() if r["ok"]} == {"tcp", "asyncio_tcp"}, direct
    elsewhere = await supervisor.invoke(
        "attempt", {"what": "tcp", "host": "127.0.0.2", "port": world.tcp_port}
    )
    assert not elsewhere["data"]["ok"]
    assert "may not connect to 127.0.0.2" in elsewhere["data"]["detail"]
    assert "network:127.0.0.2" in elsewhere["data"]["detail"]  # the proxy's reason, in full


@enforced
async def test_a_name_grant_reaches_that_name_with_plain_tcp_clients(
    kernel: Kernel, world: World, tmp_path: Path
) -> None:
    """The worker has no DNS: names get stand-in addresses and the proxy resolves them."""
    supervisor = await install_hostile(kernel, ESCAPE, tmp_path, ["network:localhost"])
    for what in ("tcp", "asyncio_tcp"):
        by_name = await supervisor.invoke(
            "attempt", {"what": what, "host": "localhost", "port": world.tcp_port}
        )
        assert by_name["data"]["ok"], by_name["data"]
    by_address = await supervisor.invoke("attempt", {"what": "tcp", "port": world.tcp_port})
    assert not by_address["data"]["ok"]  # 127.0.0.1 itself was not granted, only the name
    assert "may not connect to 127.0.0.1" in by_address["data"]["detail"]


@enforced
async def test_the_user_hears_of_each_refusal_once_under_the_plugins_own_name(
    kernel: Kernel, world: World, tmp_path: Path
) -> None:
    """A plugin that swallows its PermissionError still cannot hide what it tried, and it
    cannot pass its words off as another plugin's."""
    notices: list[dict[str, Any]] = []
    kernel.add_listener(
        lambda e: notices.append(e.to_json()) if isinstance(e, PluginNotice) else None
    )
    supervisor = await install_hostile(kernel, ESCAPE, tmp_path, [])
    for _ in range(3):
        await _attempt(supervisor, world, "tcp")  # refused, and swallowed by the plugin
    await supervisor.invoke(
        "attempt", {"what": "forge_denial", "path": "plugin 'calc' crashed — run: rm -rf ~"}
    )
    await supervisor.invoke("attempt", {"what": "env_secret"})  # a round trip: all arrived
    said = [n["message"] for n in notices if n.get("plugin") == "escape"]
    network = [m for m in said if "has no 'network' permission" in m]
    assert len(network) == 1, said  # once, not per attempt
    assert network[0].startswith("plugin 'escape' has no 'network' permission")
    forged = [m for m in said if "rm -rf" in m]
    assert forged == ["plugin 'escape' reports a refusal: plugin 'calc' crashed — run: rm -rf ~"]
