"""Servers no one here wrote, installed from the registries at test time (tests/mcp_support.py
keeps their install trees in .cache/mcp), each added with ``mcp add`` and called through the
real kernel and its sandboxed worker: mcp-server-time and mcp-server-fetch from PyPI,
@modelcontextprotocol/server-everything and server-filesystem from npm.

``mcp add``'s package-manager step is replaced by a copy of the cached tree (the installers
have their own tests, test_installers.py); everything after it is the product's. One test runs
the whole command as a user would, pip included."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from mcp_support import STOCK, cached_tree, tool_cache_env
from support import call_line, run_deeting

import deeting_tui.mcp.add as add_module
from deeting_tui.kernel.kernel import Kernel
from deeting_tui.mcp.add import AddRequest, add_server

DEADLINE_S = 60.0


@pytest.fixture
def from_cache(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """``mcp add`` takes the server from the test cache instead of the registry."""

    def use(name: str) -> None:
        tree, cached = cached_tree(name)

        def install(request: AddRequest, root: Path, on_line: Any) -> Any:
            shutil.copytree(tree / "server", root / "server", symlinks=True)
            done = cached.installed
            return add_module._Runtime(
                done.runtime, done.entry, done.package, done.version, done.description
            )

        monkeypatch.setattr(add_module, "_install_runtime", install)

    return use


async def _add(
    kernel: Kernel, name: str, *grants: str, args: tuple[str, ...] = (), env: Any = None
) -> Any:
    stock = STOCK[name]
    request = AddRequest(
        name=name,
        source=stock.registry,
        package=stock.spec,
        args=list(args),
        grants=list(grants),
        env=dict(env or {}),
        yes=True,
    )
    return await add_server(kernel, request)


async def _call(kernel: Kernel, line: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    return await call_line(kernel, line, DEADLINE_S)


@pytest.fixture
async def web(tmp_path: Path) -> AsyncIterator[tuple[int, int]]:
    """Two loopback HTTP servers: (the one granted, another one)."""

    async def page(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        path = request.split(b" ", 2)[1]
        if path == b"/robots.txt":
            body, status = b"User-agent: *\nAllow: /\n", b"200 OK"
        else:
            body = b"<html><head><title>Stock</title></head><body><h1>Hello stock</h1>"
            body += b"<p>" + b"A paragraph of text for the article. " * 20 + b"</p></body></html>"
            status = b"200 OK"
        writer.write(
            b"HTTP/1.1 "
            + status
            + b"\r\nContent-Type: text/html\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\nConnection: close\r\n\r\n"
            + body
        )
        await writer.drain()
        writer.close()

    granted = await asyncio.start_server(page, "127.0.0.1", 0)
    other = await asyncio.start_server(page, "127.0.0.1", 0)
    try:
        yield granted.sockets[0].getsockname()[1], other.sockets[0].getsockname()[1]
    finally:
        granted.close()
        other.close()


async def test_time_answers_in_its_sandbox(kernel: Kernel, from_cache: Any) -> None:
    from_cache("time")
    report = await _add(kernel, "time")
    assert {t.name for t in report.spec.tools} == {"get_current_time", "convert_time"}
    result, _ = await _call(kernel, "/get_current_time timezone=Asia/Tokyo")
    assert result["ok"], result
    assert result["data"]["timezone"] == "Asia/Tokyo"  # the zone data is readable
    assert result["data"]["datetime"].endswith("+09:00")
    converted, _ = await _call(
        kernel, "/convert_time source_timezone=UTC time=12:00 target_timezone=Europe/Paris"
    )
    assert converted["ok"], converted


async def test_fetch_reaches_the_granted_port_only(
    kernel: Kernel, from_cache: Any, web: tuple[int, int]
) -> None:
    from_cache("fetch")
    granted, other = web
    await _add(kernel, "fetch", f"network:127.0.0.1:{granted}", args=("--allow-private-ips",))
    result, _ = await _call(kernel, f"/fetch url=http://127.0.0.1:{granted}/")
    assert result["ok"], result
    assert "Hello stock" in result["text"]
    refused, _ = await _call(kernel, f"/fetch url=http://127.0.0.1:{other}/")
    assert not refused["ok"]
    assert f"network:127.0.0.1:{other} would allow it" in refused["error"]
    # It looked for node and, finding none on its PATH, stayed pure Python: no refusal of a
    # program, no npm install.
    log = kernel.paths.plugin_log("fetch").read_text("utf-8", "replace")
    assert "PermissionError" not in log


async def test_everything_tools_progress_structure_and_list_changes(
    kernel: Kernel, from_cache: Any
) -> None:
    from_cache("everything")
    report = await _add(kernel, "everything")
    names = {t.name for t in report.spec.tools}
    assert {"echo", "get-structured-content", "trigger-long-running-operation"} <= names
    echo, seen = await _call(kernel, "/echo message=stock")
    assert echo["ok"] and echo["text"] == "Echo: stock"
    # The server announces tools/list_changed as it starts: the list is unchanged, so
    # nothing is refused and nobody is told of a change.
    assert not any("changed" in json.dumps(e) for e in seen if e["type"] == "notice")
    structured, _ = await _call(kernel, "/get-structured-content location=Chicago")
    assert structured["ok"] and structured["data"]["temperature"] == 36
    assert structured["renderer"] == "key-value"
    slow, seen = await _call(kernel, "/trigger-long-running-operation duration=1 steps=4")
    assert slow["ok"], slow
    fractions = [round(e["fraction"], 2) for e in seen if e["type"] == "progress"]
    assert fractions == [0.25, 0.5, 0.75, 1.0]
    env, _ = await _call(kernel, "/get-env")
    shown = (
        json.loads(env["text"].split("\n", 1)[-1])
        if env["text"].startswith("{") is False
        else json.loads(env["text"])
    )
    assert "DEETING_HOME" not in shown and "PYTHONPATH" not in shown


async def test_filesystem_started_with_two_folders_reads_only_the_granted_one(
    kernel: Kernel, from_cache: Any, tmp_path: Path
) -> None:
    from_cache("filesystem")
    granted, other = tmp_path / "granted", tmp_path / "other"
    for folder in (granted, other):
        folder.mkdir()
        (folder / "note.txt").write_text(f"in {folder.name}\n")
    await _add(kernel, "filesystem", f"filesystem:read:{granted}", args=(str(granted), str(other)))
    listed, _ = await _call(kernel, f"/list_directory path={granted}")
    assert listed["ok"] and "note.txt" in listed["text"], listed
    read, _ = await _call(kernel, f"/read_text_file path={granted / 'note.txt'}")
    assert read["ok"] and "in granted" in read["text"]
    # The server believes it may (it was started with both folders); the OS says no.
    refused, _ = await _call(kernel, f"/read_text_file path={other / 'note.txt'}")
    assert not refused["ok"]
    assert "EACCES" in refused["error"] or "denied" in refused["error"].lower()
    assert f"deeting plugin grant filesystem filesystem:read:{other}" in refused["error"]
    written, _ = await _call(kernel, f"/write_file path={granted / 'new.txt'} content=x")
    assert not written["ok"]  # granted read, not write
    assert not (granted / "new.txt").exists()


def test_add_time_from_pypi_then_ask_it_from_a_script(tmp_path: Path) -> None:
    """What the issue asks to be shown, as a user types it (pip runs: the package cache
    in .cache/mcp keeps it fast and offline after the first run)."""
    cached_tree("time")  # skips when PyPI cannot be reached and nothing is cached
    home = tmp_path / "home"
    env = tool_cache_env()
    added = run_deeting(
        "mcp", "add", "time", "--pypi", STOCK["time"].spec, home=home, env=env, timeout=300
    )
    assert added.returncode == 0, added.stderr
    assert "tools (pinned): get_current_time, convert_time" in added.stdout
    asked = run_deeting(
        "--script", "-", home=home, stdin="/get_current_time timezone=UTC\n", timeout=120
    )
    assert asked.returncode == 0, asked.stderr
    assert '"timezone": "UTC"' in asked.stdout


async def test_a_node_servers_fetch_goes_through_the_proxy_to_the_granted_port_only(
    kernel: Kernel, from_cache: Any, web: tuple[int, int]
) -> None:
    """Node 20's fetch ignores HTTPS_PROXY: the preload mcp add installs makes it use the
    proxy, whose port is the only one the plugin's network namespace can reach."""
    from_cache("everything")
    granted, other = web
    await _add(kernel, "everything", f"network:127.0.0.1:{granted}")
    line = "/gzip-file-as-resource name=page.gz outputType=resource data={url}"
    fetched, _ = await _call(kernel, line.format(url=f"http://127.0.0.1:{granted}/page"))
    assert fetched["ok"], fetched
    assert "page.gz" in fetched["text"]
    refused, _ = await _call(kernel, line.format(url=f"http://127.0.0.1:{other}/page"))
    assert not refused["ok"]
    assert f"network:127.0.0.1:{other} would allow it" in refused["error"]
