"""The escape suite for stock MCP servers: a hostile server (tests/fixtures/mcp/fake_server.py,
tool ``attack``) runs as its plugin's worker's child and tries the ways out a program has
that a plugin's Python does not go through (no audit hook watches the server: only the OS
layers do). Each attempt must fail and the kernel must keep serving.

Run as root by .ci/run, and again as an unprivileged user by test_unprivileged.py."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import call_line, events_of, fake_mcp_program

from deeting_tui.kernel.kernel import Kernel
from deeting_tui.mcp.add import AddRequest, add_server
from deeting_tui.sandbox.probe import probe

DEADLINE_S = 30.0

enforced = pytest.mark.skipif(
    not (probe().landlock_abi and probe().seccomp),
    reason=f"this machine cannot enforce the sandbox ({probe().level})",
)
pytestmark = enforced


@pytest.fixture
def program(tmp_path: Path) -> Path:
    return fake_mcp_program(tmp_path, "hostile-mcp")


@pytest.fixture
def unix_listener(tmp_path: Path) -> Iterator[str]:
    path = str(tmp_path / "agent.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    try:
        yield path
    finally:
        server.close()


async def _hostile(kernel: Kernel, program: Path) -> None:
    request = AddRequest(name="hostile", source="command", program=str(program), yes=True)
    await add_server(kernel, request)


async def _attack(kernel: Kernel, how: str, target: str = "") -> dict[str, Any]:
    line = f"/attack how={how}" + (f" target={target}" if target else "")
    return (await call_line(kernel, line, DEADLINE_S))[0]


async def _still_serving(kernel: Kernel) -> None:
    seen = events_of(kernel)
    await asyncio.wait_for(kernel.submit(kernel.open_session().id, "/echo message=ok"), DEADLINE_S)
    assert [e["text"] for e in seen if e["type"] == "tool_result"] == ["ok"]


async def test_a_server_cannot_write_outside_its_folders(
    kernel: Kernel, program: Path, tmp_path: Path
) -> None:
    await _hostile(kernel, program)
    target = tmp_path / "outside.txt"
    result = await _attack(kernel, "write", str(target))
    assert not result["ok"] and "Permission denied" in result["error"]
    assert not target.exists()
    await _still_serving(kernel)


async def test_a_server_cannot_read_another_plugins_data(kernel: Kernel, program: Path) -> None:
    await _hostile(kernel, program)
    other = kernel.paths.plugin_data("other")
    other.mkdir(parents=True)
    (other / "notes.db").write_text("private")
    result = await _attack(kernel, "python-again", str(other / "notes.db"))
    # Its own interpreter runs again (the runtime may), in the same sandbox: still no read.
    assert "private" not in (result.get("text") or "") + (result.get("error") or "")
    assert "Permission denied" in (result.get("text") or "") + (result.get("error") or "")
    await _still_serving(kernel)


async def test_a_server_cannot_signal_or_trace_the_kernel(kernel: Kernel, program: Path) -> None:
    await _hostile(kernel, program)
    killed = await _attack(kernel, "kill", str(os.getpid()))
    assert not killed["ok"] and "Operation not permitted" in killed["error"]
    traced = await _attack(kernel, "ptrace", str(os.getpid()))
    assert not traced["ok"]
    await _still_serving(kernel)


async def test_a_server_cannot_leave_its_session_or_outlive_its_plugin(
    kernel: Kernel, program: Path
) -> None:
    await _hostile(kernel, program)
    setsid = await _attack(kernel, "setsid")
    assert not setsid["ok"] and "Operation not permitted" in setsid["error"]
    daemon = await _attack(kernel, "daemon")
    assert daemon["ok"], daemon
    child = int(daemon["text"])
    os.kill(child, 0)  # alive while its plugin runs
    await kernel.loader.disable("hostile")
    await asyncio.wait_for(_gone(child), DEADLINE_S)


async def test_a_server_cannot_run_code_from_memory_or_reach_unix_sockets(
    kernel: Kernel, program: Path, unix_listener: str
) -> None:
    await _hostile(kernel, program)
    memfd = await _attack(kernel, "memfd")
    assert not memfd["ok"]
    unix = await _attack(kernel, "unix", unix_listener)
    assert not unix["ok"]
    await _still_serving(kernel)


async def test_the_server_stops_with_its_plugin(kernel: Kernel, program: Path) -> None:
    await _hostile(kernel, program)
    await _still_serving(kernel)
    runtime = kernel.loader.runtimes["hostile"]
    worker = runtime.supervisor.pid
    assert worker is not None
    children = _children(worker)
    assert children, "the server runs as the worker's child"
    await kernel.loader.disable("hostile")
    for pid in children:
        await asyncio.wait_for(_gone(pid), DEADLINE_S)


async def _gone(pid: int) -> None:
    """Until ``pid`` has ended (a zombie not reaped yet counts: it runs nothing)."""
    while True:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                if f.read().rsplit(b")", 1)[-1].split()[0] in (b"Z", b"X"):
                    return
        except OSError:
            return
        await asyncio.sleep(0.02)  # polling the process table


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []
