"""Network grants, attacked: a plugin holds exactly the network it was granted.

With host grants only (``network:HOST``) a plugin opens TCP client sockets to its checking
proxy and nothing else: no other protocol (MPTCP, SCTP, UDP, UNIX), no bind, no listen (not
even the autobind of a bare listen()), no TCP Fast Open, no direct connect past the proxy —
also not to another address on the proxy's own port number, which Landlock alone (ports, not
addresses) would allow; a granted *name* never leads to a private address (DNS rebinding).
Plain ``network`` is IP networking, servers included, and never a local UNIX socket.

Through the real kernel and a real worker; run as root, and again unprivileged by
test_unprivileged.py."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support import HOSTILE, hello, install_hostile, pong

from deeting_tui.kernel.kernel import Kernel
from deeting_tui.netproxy import proxy as netproxy
from deeting_tui.plugin.scopes import explain, parse_scope
from deeting_tui.sandbox.probe import probe
from deeting_tui.workers.supervisor import Supervisor

PLUGIN = HOSTILE / "network"

pytestmark = pytest.mark.skipif(
    not (probe().landlock_abi and probe().seccomp),
    reason=f"this machine cannot enforce the sandbox ({probe().level})",
)

#: Every way around a host grant: none may work.
AROUND_THE_PROXY = (
    "tcp_raw",
    "mptcp",
    "sctp",
    "listen_autobind",
    "bind",
    "mptcp_bind",
    "fast_open",
    "libc_connect",
    "udp",
    "unix",
    "unix_abstract",
    "unix_libc",
    "tcp_server",
)
UNIX = ("unix", "unix_abstract", "unix_libc")


@dataclass
class Services:
    """The user's local services a plugin must not reach unless granted."""

    pong_port: int
    http_port: int
    udp_port: int
    unix_path: str
    abstract_name: str

    def args(self, what: str) -> dict[str, Any]:
        if what in ("unix", "unix_libc"):
            return {"what": what, "path": self.unix_path}
        if what == "unix_abstract":
            return {"what": what, "path": self.abstract_name}
        if what == "udp":
            return {"what": what, "port": self.udp_port}
        return {"what": what, "port": self.pong_port}


@pytest.fixture
async def services(tmp_path: Path, home: Path) -> AsyncIterator[Services]:
    pinged = await asyncio.start_server(pong, "127.0.0.1", 0)
    http = await asyncio.start_server(hello, "127.0.0.1", 0)
    agent = tmp_path / "agent" / "ssh-agent.sock"  # like $SSH_AUTH_SOCK, docker.sock, D-Bus
    agent.parent.mkdir()
    unix = await asyncio.start_unix_server(pong, str(agent))
    abstract_name = f"deeting-test-{secrets.token_hex(6)}"
    abstract = await asyncio.start_unix_server(pong, "\0" + abstract_name)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    try:
        yield Services(
            pinged.sockets[0].getsockname()[1],
            http.sockets[0].getsockname()[1],
            udp.getsockname()[1],
            str(agent),
            abstract_name,
        )
    finally:
        udp.close()
        for server in (pinged, http, unix, abstract):
            server.close()
            await server.wait_closed()


async def _try(supervisor: Supervisor, **args: Any) -> dict[str, Any]:
    result = await supervisor.invoke("attempt", args)
    data: dict[str, Any] = result["data"]
    return data


async def _still_serving(supervisor: Supervisor, pid: int | None) -> None:
    """The same worker answers at once: nothing crashed, nothing hung."""
    answer = await asyncio.wait_for(_try(supervisor, what="proxy_env"), 5)
    assert answer["ok"]
    assert supervisor.pid == pid and supervisor.state == "ready"


async def test_a_host_grant_gives_tcp_clients_to_the_proxy_and_nothing_else(
    kernel: Kernel, services: Services, tmp_path: Path
) -> None:
    supervisor = await install_hostile(kernel, PLUGIN, tmp_path, ["network:127.0.0.1"])
    pid = supervisor.pid
    fetched = await _try(
        supervisor, what="proxy_get", url=f"http://127.0.0.1:{services.http_port}/"
    )
    assert fetched["ok"], fetched  # the granted host, through the proxy
    tunnelled = await _try(supervisor, what="tcp", port=services.pong_port)
    assert tunnelled["ok"], tunnelled  # a plain TCP client, tunnelled through the proxy

    results = {what: await _try(supervisor, **services.args(what)) for what in AROUND_THE_PROXY}
    escaped = {what: r["detail"] for what, r in results.items() if r["ok"]}
    assert escaped == {}, escaped
    await _still_serving(supervisor, pid)


async def test_the_proxy_port_number_is_no_door_to_other_addresses(
    kernel: Kernel, services: Services, tmp_path: Path
) -> None:
    """Landlock allows a TCP port, not an address: a service on another address that
    happens to listen on the proxy's port number must still be out of reach."""
    supervisor = await install_hostile(kernel, PLUGIN, tmp_path, ["network:127.0.0.1"])
    namespaces = (supervisor.sandbox or {}).get("namespaces", {})
    assert namespaces.get("net") is True, supervisor.sandbox  # its own network namespace
    proxy = (await _try(supervisor, what="proxy_env"))["detail"]
    port = int(proxy.rsplit(":", 1)[1])
    decoy = await asyncio.start_server(pong, "127.0.0.2", port)
    try:
        for what in ("tcp_raw", "libc_connect", "fast_open"):
            result = await _try(supervisor, what=what, host="127.0.0.2", port=port)
            assert not result["ok"], (what, result)
    finally:
        decoy.close()
        await decoy.wait_closed()
    await _still_serving(supervisor, supervisor.pid)


async def test_a_name_grant_never_reaches_a_private_address(
    kernel: Kernel, services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: whoever controls a granted name's DNS points it at the user's machine."""

    async def rebinding(host: str, port: int) -> list[str]:
        return ["127.0.0.1"] if host == "rebind.example" else []

    monkeypatch.setattr(netproxy, "resolve", rebinding)
    supervisor = await install_hostile(kernel, PLUGIN, tmp_path, ["network:rebind.example"])
    url = f"http://rebind.example:{services.http_port}/"
    refused = await _try(supervisor, what="proxy_get", url=url)
    assert not refused["ok"] and "403" in refused["detail"], refused
    tunnelled = await _try(supervisor, what="tcp", host="rebind.example", port=services.pong_port)
    assert not tunnelled["ok"], tunnelled
    assert "private network" in tunnelled["detail"], tunnelled
    log = kernel.paths.plugin_log("network").read_text()
    assert "may not connect to" in log or "private network" in log, log[-2000:]
    await _still_serving(supervisor, supervisor.pid)


async def test_a_grant_naming_the_address_itself_does_reach_it(
    kernel: Kernel, services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def rebinding(host: str, port: int) -> list[str]:
        return ["127.0.0.1"] if host == "printer.example" else []

    monkeypatch.setattr(netproxy, "resolve", rebinding)
    supervisor = await install_hostile(
        kernel, PLUGIN, tmp_path, ["network:printer.example", "network:127.0.0.1"]
    )
    url = f"http://printer.example:{services.http_port}/"
    assert (await _try(supervisor, what="proxy_get", url=url))["ok"]


async def test_plain_network_is_ip_networking_never_a_unix_socket(
    kernel: Kernel, services: Services, tmp_path: Path
) -> None:
    supervisor = await install_hostile(kernel, PLUGIN, tmp_path, ["network"])
    pid = supervisor.pid
    for what in ("tcp_raw", "libc_connect", "tcp_server", "udp"):
        result = await _try(supervisor, **services.args(what))
        assert result["ok"], (what, result)  # IP networking, servers included
    for what in UNIX:
        result = await _try(supervisor, **services.args(what))
        assert not result["ok"], (what, result)  # ssh-agent, docker.sock, D-Bus: no
    await _still_serving(supervisor, pid)


def test_the_consent_text_says_exactly_what_each_network_scope_allows() -> None:
    anything, risk = explain(parse_scope("network"))
    assert risk == "high"
    assert "listen" in anything and "UNIX" in anything
    host, risk = explain(parse_scope("network:api.example.com"))
    assert risk == "medium"
    assert "api.example.com" in host and "TCP" in host and "no listening" in host
    port, _ = explain(parse_scope("network:api.example.com:443"))
    assert "port 443" in port


def test_the_worker_is_not_left_alone_with_its_listener_fd() -> None:
    """The listener stays in the worker (the kernel copies it); a plugin accepting on it
    would only get its own connections, and seccomp refuses accept() in that mode anyway."""
    assert os.path.exists("/proc/self/fd")
