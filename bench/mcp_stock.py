"""A stock MCP server's ``tools/call`` through Deeting, against the same call from the
``mcp`` SDK's client directly.

The server is @modelcontextprotocol/server-everything from npm (pinned), its ``echo`` tool;
with ``--pypi`` it is mcp-server-time's ``get_current_time``. Both paths talk to the same
installed server:

- **SDK direct**: ``ClientSession`` over ``stdio_client``, the server a plain child process,
  unconfined: what an MCP host does for every tool call.
- **through Deeting**: ``supervisor.invoke`` — the call over the plugin worker's pipe, the
  worker's bridge calling the server (its child, inside the plugin's sandbox) with the same
  SDK, the result checked. This is the round trip the other benches call "through the
  supervisor" (bench/roundtrip.py), and the one the target is for.
- **kernel.call_tool**: the same plus what the kernel does around every call of every plugin:
  the arguments checked against the tool's schema and the call and its result written to the
  session (SQLite) as they happen. Shown so the whole cost is in view.

Target: through Deeting, p50 ≤ 1.2 x the direct p50 + 100 µs. ``python -m bench.mcp_stock [--n N]
[--pypi] [--json]``; the server is installed once into ``.cache/bench-mcp`` (a package
registry is needed the first time).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
from typing import Any

import orjson

from .common import REPO_ROOT, Latency, table_lines, verdict_lines

NPM_SERVER = "@modelcontextprotocol/server-everything@2026.8.31"
PYPI_SERVER = "mcp-server-time==2026.10.19"
CACHE = REPO_ROOT / ".cache" / "bench-mcp"
TARGET_RATIO, TARGET_EXTRA_US = 1.2, 100.0


def _call_for(pypi: bool) -> tuple[str, dict[str, Any]]:
    if pypi:
        return "get_current_time", {"timezone": "UTC"}
    return "echo", {"message": "hello"}


async def _installed(kernel: Any, pypi: bool) -> Any:
    """The server as plugin ``stock`` in this home (installed by ``mcp add`` itself)."""
    from deeting_tui.mcp.add import AddRequest, add_server

    source, package = ("pypi", PYPI_SERVER) if pypi else ("npm", NPM_SERVER)
    request = AddRequest(name="stock", source=source, package=package, yes=True)
    return await add_server(kernel, request)


async def _direct(argv: list[str], tool: str, args: dict[str, Any], n: int, warmup: int) -> Latency:
    from mcp.client.session import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = StdioServerParameters(command=argv[0], args=argv[1:], env={"PATH": "/usr/bin:/bin"})
    samples: list[float] = []
    with open(os.devnull, "w") as errlog:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            await session.list_tools()
            for _ in range(warmup):
                await session.call_tool(tool, args)
            clock = time.perf_counter
            for _ in range(n):
                began = clock()
                result = await session.call_tool(tool, args)
                samples.append(clock() - began)
                if result.is_error:
                    raise RuntimeError(f"the server failed the call: {result!r}")
    return Latency("mcp SDK client, direct (unconfined)", samples)


async def _through_deeting(
    kernel: Any, tool: str, args: dict[str, Any], n: int, warmup: int
) -> tuple[Latency, Latency]:
    session = kernel.open_session().id
    clock = time.perf_counter
    for _ in range(warmup):
        await kernel.call_tool(session, tool, args)
    kernel_samples = []
    for _ in range(n):
        began = clock()
        outcome = await kernel.call_tool(session, tool, args)
        kernel_samples.append(clock() - began)
        if not outcome.ok:
            raise RuntimeError(f"the call failed through Deeting: {outcome.error}")
    supervisor = kernel.loader.runtimes["stock"].supervisor
    worker_samples = []
    for _ in range(n):
        began = clock()
        await supervisor.invoke(tool, args)
        worker_samples.append(clock() - began)
    return (
        Latency("through Deeting (sandboxed worker + bridge)", worker_samples),
        Latency("kernel.call_tool (+ schema check, session write)", kernel_samples),
    )


async def measure(n: int, warmup: int, pypi: bool) -> dict[str, Any]:
    from deeting_tui.kernel.kernel import Kernel
    from deeting_tui.mcp.launch import launch_for
    from deeting_tui.paths import resolve_paths

    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-mcp-") as home:
        os.environ["DEETING_HOME"] = home
        os.environ.setdefault("PIP_CACHE_DIR", str(CACHE / "pip"))
        os.environ.setdefault("npm_config_cache", str(CACHE / "npm"))
        kernel = Kernel(resolve_paths())
        await kernel.start(ticker=False)
        try:
            began = time.perf_counter()
            report = await _installed(kernel, pypi)
            install_s = time.perf_counter() - began
            spec = report.spec
            assert spec.mcp is not None
            launch = launch_for(
                spec.root,
                spec.mcp,
                name=spec.name,
                data_dir=kernel.paths.plugin_data(spec.name),
                cache_dir=kernel.paths.plugin_cache(spec.name),
                env_values={},
                network=False,
                shell=False,
            )
            tool, args = _call_for(pypi)
            direct = await _direct(launch["argv"], tool, args, n, warmup)
            deeting, recorded = await _through_deeting(kernel, tool, args, n, warmup)
        finally:
            await kernel.shutdown()
    limit_us = TARGET_RATIO * direct.p50_us + TARGET_EXTRA_US
    return {
        "server": PYPI_SERVER if pypi else NPM_SERVER,
        "tool": tool,
        "install_s": round(install_s, 2),
        "direct": direct.as_json(),
        "deeting": deeting.as_json(),
        "kernel": recorded.as_json(),
        "ratio": round(deeting.p50_us / direct.p50_us, 3),
        "extra_us": round(deeting.p50_us - direct.p50_us, 1),
        "target_us": round(limit_us, 1),
        "pass": deeting.p50_us <= limit_us,
        "rows": [direct, deeting, recorded],
    }


def report_lines(figures: dict[str, Any]) -> list[str]:
    rows: list[tuple[str, ...]] = [("path", "n", "p50 µs", "p99 µs", "mean µs")]
    for latency in figures["rows"]:
        rows.append(
            (
                latency.name,
                str(len(latency.samples)),
                f"{latency.p50_us:,.0f}",
                f"{latency.p99_us:,.0f}",
                f"{latency.mean_us:,.0f}",
            )
        )
    lines = [f"{figures['server']} · tools/call {figures['tool']}", *table_lines(rows), ""]
    measured = f"{figures['deeting']['p50_us']:,.0f} µs p50 ({figures['ratio']}x direct)"
    limit = f"≤ 1.2 x {figures['direct']['p50_us']:,.0f} + 100 = {figures['target_us']:,.0f} µs"
    lines += verdict_lines([("stock call through Deeting", measured, limit, figures["pass"], 0)])
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.mcp_stock", description=__doc__)
    parser.add_argument("--n", type=int, default=500, help="calls per path (default 500)")
    parser.add_argument("--pypi", action="store_true", help="mcp-server-time instead")
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args(argv)
    figures = asyncio.run(measure(options.n, max(10, options.n // 10), options.pypi))
    if options.json:
        out = {k: v for k, v in figures.items() if k != "rows"}
        sys.stdout.buffer.write(orjson.dumps(out, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        print("\n".join(report_lines(figures)))
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
