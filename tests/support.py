"""Helpers shared by tests (importable as ``support``; tests/ is on pythonpath)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

from deeting_tui.kernel.kernel import Kernel
from deeting_tui.quota.watchdog import WatchdogPolicy
from deeting_tui.workers.supervisor import SupervisionPolicy, Supervisor

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
HOSTILE = FIXTURES / "hostile"
OFFICIAL = REPO / "plugins"
DEETING = [sys.executable, "-m", "deeting_tui"]

# Short grace and backoff so fault tests take milliseconds, not seconds; the logic is the same.
FAST_POLICY = SupervisionPolicy(kill_grace=0.3, stop_grace=2.0, backoff_base=0.01)
# The watchdog's rules with a short window, so limit tests take a second, not ten.
FAST_WATCHDOG = WatchdogPolicy(
    interval=0.1, cpu_window=1.0, idle_window=1.0, disk_interval=0.2, disk_after_call=0.0
)


def events_of(k: Kernel) -> list[dict[str, Any]]:
    """Subscribe to a kernel's events; returns the list that fills up, each as its JSON."""
    seen: list[dict[str, Any]] = []
    k.add_listener(lambda event: seen.append(event.to_json()))
    return seen


def fake_mcp_program(folder: Path, name: str = "fake-mcp") -> Path:
    """tests/fixtures/mcp/fake_server.py as a program on this machine: a script whose #! is
    the base Python, isolated (what ``mcp add --command`` takes), in ``folder``/bin."""
    program = folder / "bin" / name
    program.parent.mkdir(parents=True)
    interpreter = getattr(sys, "_base_executable", sys.executable)
    source = (FIXTURES / "mcp" / "fake_server.py").read_text("utf-8")
    program.write_text(f"#!{interpreter} -I\n{source}", "utf-8")
    program.chmod(0o755)
    return program


async def call_line(
    kernel: Kernel, line: str, deadline: float = 30.0
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Submit ``line`` in a new session; its one tool result, and every event it caused."""
    seen = events_of(kernel)
    await asyncio.wait_for(kernel.submit(kernel.open_session().id, line), deadline)
    (result,) = [e for e in seen if e["type"] == "tool_result"]
    return result, seen


def run_deeting(
    *args: str,
    home: Path,
    stdin: str | None = None,
    timeout: float = 60,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **(env or {}), "DEETING_HOME": str(home)}
    env.pop("DEETING_DEBUG", None)
    return subprocess.run(
        [*DEETING, *args],
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        cwd=REPO,
    )


async def pong(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A local service for the escape tests: answers ``ping`` with ``pong``."""
    if await reader.readline() == b"ping\n":
        writer.write(b"pong\n")
        await writer.drain()
    writer.close()


#: What :func:`hello` serves, so a test can tell the request really got there.
HELLO = b"hello from the host"


async def hello(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A local web server for the escape tests: one HTTP response, then close."""
    await reader.readuntil(b"\r\n\r\n")
    writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
        % (len(HELLO), HELLO)
    )
    await writer.drain()
    writer.close()


async def install_hostile(
    kernel: Kernel, fixture: Path, tmp_path: Path, scopes: list[str] | None = None
) -> Supervisor:
    """Install a hostile fixture plugin (its kimai.json's permissions replaced by
    ``scopes`` when given), granted everything it asks for; its running supervisor."""
    source = tmp_path / f"{fixture.name}-src"
    shutil.copytree(fixture, source)
    if scopes is not None:
        kimai = orjson.loads((source / "kimai.json").read_bytes())
        kimai["permissions"] = scopes
        (source / "kimai.json").write_bytes(orjson.dumps(kimai))
    report = await kernel.loader.install(source, yes=True)
    assert report.enabled, report.problem
    name = orjson.loads((source / "kimai.json").read_bytes())["name"]
    return kernel.loader.runtimes[name].supervisor
